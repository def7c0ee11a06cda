package election_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/example/sagasuite/platform/discovery"
	"github.com/example/sagasuite/platform/election"
	"github.com/example/sagasuite/platform/etcdtest"
	"github.com/example/sagasuite/platform/observe"
	"github.com/example/sagasuite/platform/postgrestest"
)

func client(t *testing.T, eps []string) *clientv3.Client {
	t.Helper()
	cli, err := discovery.Dial(eps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// Exactly one of two instances runs the job; when the leader crashes
// (its client dies, its lease expires) the other takes over within 2×TTL
// with a higher fencing token.
func TestOneLeaderAndFailover(t *testing.T) {
	eps := etcdtest.Endpoints(t)
	var running atomic.Int32
	var mu sync.Mutex
	tokens := map[string]int64{}
	job := func(id string) func(ctx context.Context, token int64) error {
		return func(ctx context.Context, token int64) error {
			if n := running.Add(1); n != 1 {
				t.Errorf("%d jobs running at once", n)
			}
			mu.Lock()
			tokens[id] = token
			mu.Unlock()
			<-ctx.Done()
			running.Add(-1)
			return nil
		}
	}
	aCli, bCli := client(t, eps), client(t, eps)
	a, _ := election.New(aCli, observe.Discard(), election.Config{Name: "job", InstanceID: "a", TTL: time.Second})
	b, _ := election.New(bCli, observe.Discard(), election.Config{Name: "job", InstanceID: "b", TTL: time.Second})
	actx, acancel := context.WithCancel(context.Background())
	defer acancel()
	go func() { _ = a.Run(actx, job("a")) }()
	deadline := time.Now().Add(5 * time.Second)
	for !a.IsLeader() {
		if time.Now().After(deadline) {
			t.Fatal("a never led")
		}
		time.Sleep(5 * time.Millisecond)
	}
	bctx, bcancel := context.WithCancel(context.Background())
	defer bcancel()
	go func() { _ = b.Run(bctx, job("b")) }()
	time.Sleep(300 * time.Millisecond)
	if b.IsLeader() {
		t.Fatal("two leaders")
	}
	if leader, _ := b.Leader(context.Background()); leader != "a" {
		t.Fatalf("leader %q, want a", leader)
	}
	// Crash a: its client dies without resigning; the lease expires.
	aCli.Close()
	crashed := time.Now()
	bRuns := func() bool { // b's job has started (leading is set just before it runs)
		mu.Lock()
		defer mu.Unlock()
		return tokens["b"] != 0
	}
	for !bRuns() {
		if time.Since(crashed) > 2*time.Second {
			t.Fatal("b did not take over within 2×TTL")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("failover after %v (TTL 1 s)", time.Since(crashed))
	if !b.IsLeader() {
		t.Fatal("b runs the job but does not report leading")
	}
	mu.Lock()
	defer mu.Unlock()
	if tokens["b"] <= tokens["a"] {
		t.Fatalf("tokens a=%d b=%d: the new term must have the higher token", tokens["a"], tokens["b"])
	}
}

// A deposed leader that still believes it leads cannot write: its token is
// lower than the one the new leader wrote with.
func TestStaleLeaderWritesAreFenced(t *testing.T) {
	pool := postgrestest.Pool(t, map[string]fs.FS{"election": election.Migrations()})
	ctx := context.Background()
	write := func(token int64) error {
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return election.Fence(ctx, tx, "expiry", token) })
	}
	if err := write(10); err != nil { // the old leader's term
		t.Fatal(err)
	}
	if err := write(15); err != nil { // a new leader was elected
		t.Fatal(err)
	}
	if err := write(10); !errors.Is(err, election.ErrFenced) {
		t.Fatalf("stale leader's write: %v, want ErrFenced", err)
	}
	if err := write(15); err != nil { // the current leader keeps writing
		t.Fatal(err)
	}
}

// BenchmarkFailover measures leader death (its client dies, as with
// kill -9: the lease is left to expire) to the new leader's first job run,
// over 10 deaths, with a 1 s TTL; it reports the median.
// Run: go test -run x -bench Failover -benchtime 1x ./election
func BenchmarkFailover(b *testing.B) {
	eps := etcdtest.Endpoints(b)
	for b.Loop() {
		var times []time.Duration
		for i := range 10 {
			started := make(chan string, 2)
			run := func(id string, cli *clientv3.Client) context.CancelFunc {
				e, _ := election.New(cli, observe.Discard(), election.Config{Name: fmt.Sprintf("bench-%d", i), InstanceID: id, TTL: time.Second})
				ctx, cancel := context.WithCancel(context.Background())
				go func() {
					_ = e.Run(ctx, func(ctx context.Context, token int64) error {
						started <- id
						<-ctx.Done()
						return nil
					})
				}()
				return cancel
			}
			aCli, _ := discovery.Dial(eps)
			bCli, _ := discovery.Dial(eps)
			cancelA := run("a", aCli)
			if id := <-started; id != "a" {
				b.Fatalf("first leader %s", id)
			}
			cancelB := run("b", bCli)
			time.Sleep(100 * time.Millisecond)
			aCli.Close() // dies without resigning
			died := time.Now()
			if id := <-started; id != "b" {
				b.Fatalf("second leader %s", id)
			}
			times = append(times, time.Since(died))
			cancelA()
			cancelB()
			bCli.Close()
		}
		sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
		b.ReportMetric(float64(times[4]+times[5])/2/float64(time.Millisecond), "median-failover-ms")
		b.ReportMetric(float64(times[9])/float64(time.Millisecond), "max-failover-ms")
	}
}

// etcd loses its data (a new cluster; `make clean` keeps PostgreSQL): its
// revisions start again from 1, far below the tokens the fencing table
// holds. The new leader's token still outranks them (a new epoch), so its
// job runs instead of being fenced off for ever; and a leader of the old
// cluster, still writing with its old token, is fenced.
func TestTokensOutrankTheFencingTableAfterEtcdLosesItsData(t *testing.T) {
	pool := postgrestest.Pool(t, map[string]fs.FS{"election": election.Migrations()})
	ctx := context.Background()
	runOnce := func(eps []string) (token int64, err error) {
		cli := client(t, eps)
		ran := make(chan struct{})
		var once sync.Once
		scan := func(ctx context.Context, tok int64) (int, error) {
			werr := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return election.Fence(ctx, tx, "expiry", tok) })
			once.Do(func() { token, err = tok, werr; close(ran) })
			return 0, werr
		}
		s, serr := election.Setup(ctx, cli, pool, scan, observe.Discard(),
			election.Config{Name: "expiry", InstanceID: "a", TTL: time.Second, Every: 10 * time.Millisecond})
		if serr != nil {
			t.Fatal(serr)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- s.Run(rctx) }()
		select {
		case <-ran:
		case <-time.After(10 * time.Second):
			t.Fatal("the singleton never ran")
		}
		cancel()
		<-done
		return token, err
	}
	old := etcdtest.Endpoints(t)
	oldCli := client(t, old)
	for i := range 300 { // an old cluster with a long history: high revisions
		if _, err := oldCli.Put(ctx, "/filler", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	first, err := runOnce(old)
	if err != nil {
		t.Fatal(err)
	}
	second, err := runOnce(etcdtest.Endpoints(t)) // a fresh cluster: revisions from 1
	if err != nil {
		t.Fatalf("the leader of a fresh etcd is fenced off: %v (its token %d, the table's %d)", err, second, first)
	}
	if second <= first {
		t.Fatalf("token %d after etcd lost its data, %d before: want higher", second, first)
	}
	stale := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return election.Fence(ctx, tx, "expiry", first) })
	if !errors.Is(stale, election.ErrFenced) {
		t.Fatalf("the old cluster's leader writing with token %d: %v, want ErrFenced", first, stale)
	}
}
