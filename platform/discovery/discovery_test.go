package discovery_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/example/sagasuite/platform/discovery"
	"github.com/example/sagasuite/platform/etcdtest"
	"github.com/example/sagasuite/platform/observe"
)

func client(t testing.TB, eps []string) *clientv3.Client {
	t.Helper()
	cli, err := discovery.Dial(eps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func resolver(t testing.TB, cli *clientv3.Client, service string) *discovery.Resolver {
	t.Helper()
	r, err := discovery.NewResolver(cli, service, observe.Discard())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	<-r.Ready()
	return r
}

func waitFor(t testing.TB, what string, within time.Duration, ok func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !ok() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

func TestRegisterResolveDeregisterExpire(t *testing.T) {
	eps := etcdtest.Endpoints(t)
	cli := client(t, eps)
	r := resolver(t, cli, "inventory")
	if _, err := r.Pick(); !errors.Is(err, discovery.ErrNoInstances) {
		t.Fatalf("empty: %v", err)
	}
	ctx := context.Background()
	a, err := discovery.Register(ctx, cli, discovery.Instance{Service: "inventory", ID: "a", Addr: "http://a"}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// b renews through its own client, which we will kill.
	bcli := client(t, eps)
	if _, err := discovery.Register(ctx, bcli, discovery.Instance{Service: "inventory", ID: "b", Addr: "http://b"}, time.Second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both visible", 2*time.Second, func() bool { return len(r.Instances()) == 2 })
	seen := map[string]int{}
	for range 10 {
		in, _ := r.Pick()
		seen[in.Addr]++
	}
	if seen["http://a"] != 5 || seen["http://b"] != 5 {
		t.Fatalf("round robin: %v", seen)
	}
	// Clean shutdown: gone at once.
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	took := waitFor(t, "a gone", time.Second, func() bool { return len(r.Instances()) == 1 })
	t.Logf("deregistered instance gone after %v", took)
	// A crash: renewals stop, the entry expires within the TTL.
	bcli.Close()
	took = waitFor(t, "b expired", 3*time.Second, func() bool { return len(r.Instances()) == 0 })
	t.Logf("crashed instance gone after %v (TTL 1 s)", took)
}

// BenchmarkPick is what discovery adds to a call with a warm cache.
// Target: under 1 µs.
func BenchmarkPick(b *testing.B) {
	cli := client(b, etcdtest.Endpoints(b))
	ctx := context.Background()
	for i := range 3 {
		if _, err := discovery.Register(ctx, cli, discovery.Instance{Service: "s", ID: fmt.Sprint(i), Addr: "http://x"}, 5*time.Second); err != nil {
			b.Fatal(err)
		}
	}
	r := resolver(b, cli, "s")
	waitFor(b, "three", 2*time.Second, func() bool { return len(r.Instances()) == 3 })
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := r.Pick(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
