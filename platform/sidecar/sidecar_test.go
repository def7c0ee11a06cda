package sidecar_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/example/sagasuite/platform/discovery"
	"github.com/example/sagasuite/platform/etcdtest"
	"github.com/example/sagasuite/platform/observe"
	"github.com/example/sagasuite/platform/sidecar"
)

// Registered only while ready; gone soon after the service dies; gone at
// once when the sidecar stops.
func TestRegistersOnlyWhileReady(t *testing.T) {
	eps := etcdtest.Endpoints(t)
	cli, err := discovery.Dial(eps)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	var ready atomic.Bool
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	r, _ := discovery.NewResolver(cli, "inventory", observe.Discard())
	rctx, rcancel := context.WithCancel(context.Background())
	defer rcancel()
	go func() { _ = r.Run(rctx) }()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- sidecar.Run(ctx, cli, observe.Discard(), sidecar.Config{
			Instance: discovery.Instance{Service: "inventory", ID: "i-1", Addr: svc.URL},
			ReadyURL: svc.URL + "/readyz", TTL: time.Second, Interval: 50 * time.Millisecond,
		})
	}()
	count := func() int { return len(r.Instances()) }
	wait := func(what string, want int, within time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		for count() != want {
			if time.Since(start) > within {
				t.Fatalf("%s: %d instances after %v, want %d", what, count(), within, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
		return time.Since(start)
	}
	time.Sleep(200 * time.Millisecond)
	if count() != 0 {
		t.Fatal("registered before the service was ready")
	}
	ready.Store(true)
	wait("ready", 1, time.Second)
	ready.Store(false) // e.g. its database went away
	wait("not ready", 0, time.Second)
	ready.Store(true)
	wait("ready again", 1, time.Second)
	cancel() // the sidecar shuts down: deregistered at once
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// At once: etcd holds no registration when Run returns, a second
	// before the lease (TTL 1 s) would have expired. The resolver's view
	// follows through its watch, which a busy machine delays: it is given
	// half the TTL.
	got, err := cli.Get(context.Background(), discovery.Prefix+"inventory/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || got.Count != 0 {
		t.Fatalf("registrations in etcd once the sidecar stopped: %v (%v), want 0", got, err)
	}
	wait("sidecar stopped", 0, 500*time.Millisecond)
	ready.Store(false)
}

// The service dies outright (kill -9): it is out of rotation within a
// check interval, long before the lease would expire.
func TestDeadServiceLeavesRotation(t *testing.T) {
	eps := etcdtest.Endpoints(t)
	cli, err := discovery.Dial(eps)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	r, _ := discovery.NewResolver(cli, "inventory", observe.Discard())
	rctx, rcancel := context.WithCancel(context.Background())
	defer rcancel()
	go func() { _ = r.Run(rctx) }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		_ = sidecar.Run(ctx, cli, observe.Discard(), sidecar.Config{
			Instance: discovery.Instance{Service: "inventory", ID: "i-1", Addr: svc.URL},
			ReadyURL: svc.URL + "/readyz", TTL: 5 * time.Second, Interval: 50 * time.Millisecond,
		})
	}()
	for len(r.Instances()) != 1 {
		time.Sleep(5 * time.Millisecond)
	}
	svc.Close()
	start := time.Now()
	for len(r.Instances()) != 0 {
		if time.Since(start) > time.Second {
			t.Fatal("a dead service stayed registered")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("out of rotation after %v (lease TTL 5 s)", time.Since(start))
}

// One or two failed readiness checks (a blip of the service's database, a
// GC pause) do not take the instance out of rotation; Failures in a row do.
func TestABlipDoesNotDeregister(t *testing.T) {
	eps := etcdtest.Endpoints(t)
	cli, err := discovery.Dial(eps)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	var failing atomic.Int32 // checks still to fail
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() > 0 {
			failing.Add(-1)
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer svc.Close()
	r, _ := discovery.NewResolver(cli, "inventory", observe.Discard())
	rctx, rcancel := context.WithCancel(context.Background())
	defer rcancel()
	go func() { _ = r.Run(rctx) }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		_ = sidecar.Run(ctx, cli, observe.Discard(), sidecar.Config{
			Instance: discovery.Instance{Service: "inventory", ID: "i-1", Addr: svc.URL},
			ReadyURL: svc.URL + "/readyz", TTL: 5 * time.Second, Interval: 50 * time.Millisecond, Failures: 3,
		})
	}()
	for len(r.Instances()) != 1 {
		time.Sleep(5 * time.Millisecond)
	}
	failing.Store(2)
	for deadline := time.Now().Add(500 * time.Millisecond); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if len(r.Instances()) != 1 {
			t.Fatal("two failed checks took the instance out of rotation")
		}
	}
	failing.Store(1000)
	start := time.Now()
	for len(r.Instances()) != 0 {
		if time.Since(start) > 2*time.Second {
			t.Fatal("failing readiness did not deregister")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
