package e2e

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/example/sagasuite/platform/etcdtest"
	"github.com/example/sagasuite/platform/kafkatest"
)

// A service outlives its dependencies going away (it waits for them, not
// ready meanwhile), and stops within its deadline (8 s) even when etcd and
// the broker are already gone: no teardown call may wait on a dead one.
func TestStopsWithinItsDeadlineWhenDependenciesAreGone(t *testing.T) {
	brokers, stopKafka, err := kafkatest.Start()
	if err != nil {
		t.Fatal(err)
	}
	etcd, stopEtcd, err := etcdtest.Start()
	if err != nil {
		stopKafka()
		t.Fatal(err)
	}
	port, _ := freePort()
	db := suite.dbPrefix + "_stop"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, suite.adminURL); err == nil {
			_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)")
			conn.Close(ctx)
		}
	})
	name := "inventory-stop"
	suite.urls[name] = "http://127.0.0.1:" + port
	if err := start(name, "inventory", []string{"HTTP_ADDR=127.0.0.1:" + port, "INSTANCE_ID=" + name,
		"ETCD_ENDPOINTS=" + strings.Join(etcd, ","), "DATABASE_URL=" + suite.adminURL, "DATABASE_NAME=" + db,
		"KAFKA_BROKERS=" + strings.Join(brokers, ","), "ADMIN_TOKEN=" + adminToken, "LEADER_TTL=1s"}); err != nil {
		t.Fatal(err)
	}
	p := suite.procs[name]
	delete(suite.procs, name) // stopped here, not by the suite
	if err := waitReady(name, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	stopKafka()
	stopEtcd()
	time.Sleep(5 * time.Second) // long enough for every client to notice
	if err := p.cmd.Process.Signal(syscall.Signal(0)); err != nil {
		b, _ := os.ReadFile(p.log)
		t.Fatalf("the service died when its dependencies went away (%v): it must keep running and wait for them\n%s", err, tail(string(b), 10))
	}

	began := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	exited := make(chan struct{})
	go func() {
		for p.cmd.Process.Signal(syscall.Signal(0)) == nil {
			time.Sleep(20 * time.Millisecond)
		}
		close(exited)
	}()
	select {
	case <-exited:
		t.Logf("stopped %v after SIGTERM, with etcd and the broker gone", time.Since(began).Round(time.Millisecond))
	case <-time.After(9 * time.Second):
		_ = p.cmd.Process.Kill()
		t.Fatalf("still running %v after SIGTERM with its dependencies gone", time.Since(began))
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
