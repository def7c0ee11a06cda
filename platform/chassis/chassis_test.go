package chassis_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/example/sagasuite/platform/chassis"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func status(t *testing.T, url, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// With ADMIN_ADDR set, the admin routes (faults, consumption, pprof) are
// served on that listener only, still behind the token; the public port
// answers 404 for them.
func TestAdminRoutesOnTheirOwnListener(t *testing.T) {
	public, admin := freeAddr(t), freeAddr(t)
	cfg := chassis.Config{Name: "chassis-test", HTTPAddr: public, AdminAddr: admin, AdminToken: "tok", StopTimeout: 2 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- chassis.Run(ctx, cfg, func(string) string { return "" }, io.Discard, func(*chassis.Service) error { return nil })
	}()
	deadline := time.Now().Add(5 * time.Second)
	for status(t, "http://"+public+"/healthz", "") != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("the service did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for path, want := range map[string]int{"/admin/faults": http.StatusOK, "/admin/consumption": http.StatusOK, "/admin/debug/pprof/": http.StatusOK} {
		if got := status(t, "http://"+admin+path, "tok"); got != want {
			t.Errorf("admin listener %s: %d, want %d", path, got, want)
		}
		if got := status(t, "http://"+admin+path, ""); got != http.StatusUnauthorized {
			t.Errorf("admin listener %s without the token: %d, want 401", path, got)
		}
		if got := status(t, "http://"+public+path, "tok"); got != http.StatusNotFound {
			t.Errorf("public listener %s: %d, want 404", path, got)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the service did not stop")
	}
}
