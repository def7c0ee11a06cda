// Package etcdtest gives tests (and make dev) an etcd: TEST_ETCD_ENDPOINTS
// when set, else an embedded server (go.etcd.io/etcd/server/v3/embed) with
// fast elections, so a lease of 1 s is allowed.
package etcdtest

import (
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Embedded starts an etcd server in dir listening on clientPort (0: any)
// and returns its client endpoint and a stop function.
func Embedded(dir string, clientPort int) (endpoint string, stop func(), err error) {
	cfg := embed.NewConfig()
	cfg.Dir = dir
	cfg.Name = "dev"
	cfg.TickMs, cfg.ElectionMs = 10, 100 // ready in ~60 ms; minimum lease TTL 1 s
	cfg.LogLevel = "error"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	client, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", clientPort))
	peer, _ := url.Parse("http://127.0.0.1:0")
	if clientPort != 0 {
		peer, _ = url.Parse(fmt.Sprintf("http://127.0.0.1:%d", clientPort+1))
	}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*client}, []url.URL{*client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*peer}, []url.URL{*peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return "", nil, fmt.Errorf("start etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		e.Close()
		return "", nil, fmt.Errorf("etcd not ready in 30 s")
	}
	return e.Clients[0].Addr().String(), e.Close, nil
}

// Endpoints returns etcd endpoints for t: TEST_ETCD_ENDPOINTS, else an
// embedded server stopped when t ends.
func Endpoints(t testing.TB) []string {
	t.Helper()
	eps, stop, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return eps
}

// Start is Endpoints for code without a testing.TB (TestMain).
func Start() ([]string, func(), error) {
	if v := os.Getenv("TEST_ETCD_ENDPOINTS"); v != "" {
		return strings.Split(v, ","), func() {}, nil
	}
	dir, err := os.MkdirTemp("", "etcdtest-")
	if err != nil {
		return nil, nil, err
	}
	ep, stop, err := Embedded(dir, 0)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, nil, err
	}
	return []string{ep}, func() { stop(); _ = os.RemoveAll(dir) }, nil
}
