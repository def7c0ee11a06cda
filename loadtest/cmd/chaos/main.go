// Command chaos checks the suite's invariants under faults. It starts the
// whole suite on this machine (its own ports, data directories and
// scratch databases, beside any `make dev`), offers a steady open-model
// load, and runs a seeded schedule of faults: kill -9 and restart of each
// kind of process (orders, payments, an inventory replica, psp, the
// broker with its data dir, etcd), paused consumption, provider error
// storms and latency, duplicated deliveries and a poison message. Then it
// heals everything, lets the suite quiesce and checks what must hold
// after any run:
//
//   - every accepted order has exactly one terminal status (one terminal
//     event), and no order was created twice;
//   - stock is conserved: available + reserved + committed is what was seeded;
//   - every CONFIRMED order has exactly one AUTHORIZED payment and its
//     reservations COMMITTED;
//   - every CANCELLED or REJECTED order holds neither money nor stock;
//   - every outbox and every planned provider call drains to zero;
//   - every dead letter is accounted for (only the poison it injected).
//
// It writes a JSON report (-out) and a text summary, and exits non-zero
// when an invariant fails. The same seed gives the same schedule.
//
//	make chaos                                   # under 3 minutes, seed 1
//	go run ./loadtest/cmd/chaos -seed 7 -duration 10m -rate 40 -every 15s
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
}

type options struct {
	seed     uint64
	rate     float64
	duration time.Duration
	every    time.Duration
	quiesce  time.Duration
	bin      string
	dir      string
	out      string
	dbURL    string
	portBase int
	keep     bool
	// brokerPause is how long the broker-pause fault stops it.
	brokerPause time.Duration
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var o options
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the fault schedule and the load mix")
	fs.Float64Var(&o.rate, "rate", 30, "orders per second (open model)")
	fs.DurationVar(&o.duration, "duration", 100*time.Second, "how long to place orders and inject faults")
	fs.DurationVar(&o.every, "every", 9*time.Second, "one fault per this interval")
	fs.DurationVar(&o.quiesce, "quiesce", 90*time.Second, "how long the healed suite may take to settle")
	fs.StringVar(&o.bin, "bin", "bin", "directory of the built binaries (make build)")
	fs.StringVar(&o.dir, "dir", "", "work directory for logs and data (default: a new temporary one)")
	fs.StringVar(&o.out, "out", "chaos-report.json", "where to write the JSON report")
	fs.IntVar(&o.portBase, "port-base", 20000, "ports used: base+81.., base+92 (Kafka), base+379 (etcd), base+1081..")
	fs.BoolVar(&o.keep, "keep", false, "keep the scratch databases and the work directory")
	fs.DurationVar(&o.brokerPause, "broker-pause", 30*time.Second, "how long the broker-pause fault stops the broker")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.dbURL = getenv("DATABASE_URL")
	if o.dbURL == "" {
		o.dbURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	if o.rate <= 0 || o.rate > 1000 || o.duration < 10*time.Second || o.duration > 2*time.Hour || o.every < 2*time.Second {
		return fmt.Errorf("want 0 < rate <= 1000, 10s <= duration <= 2h, every >= 2s")
	}
	if o.dir == "" {
		d, err := os.MkdirTemp("", "sagasuite-chaos-")
		if err != nil {
			return err
		}
		o.dir = d
	}
	keepDir := o.keep
	defer func() {
		if !keepDir {
			_ = os.RemoveAll(o.dir)
		}
	}()
	rng := rand.New(rand.NewPCG(o.seed, 0x5a6a)) // #nosec G404 -- a seeded generator makes chaos runs reproducible

	s, err := newSuite(o)
	if err != nil {
		return err
	}
	if !o.keep {
		defer s.dropDatabases()
	}
	defer s.stop()
	fmt.Fprintf(stdout, "chaos: seed %d, %v at %.0f orders/s, a fault every %v; logs in %s\n", o.seed, o.duration, o.rate, o.every, filepath.Join(o.dir, "logs"))
	started := time.Now()
	if err := s.start(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "chaos: suite ready after %v\n", time.Since(started).Round(100*time.Millisecond))

	schedule := plan(rng, o.duration, o.every)
	lctx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	loadDone := make(chan loadResult, 1)
	go func() { loadDone <- offer(lctx, s, o, rand.New(rand.NewPCG(o.seed, 0x10ad))) }() // #nosec G404 -- a seeded generator makes chaos runs reproducible
	faults := inject(ctx, lctx, s, schedule, stdout)
	load := <-loadDone
	if ctx.Err() != nil {
		return ctx.Err()
	}

	fmt.Fprintf(stdout, "chaos: load done (%d accepted), healing and letting the suite settle\n", len(load.accepted))
	healStart := time.Now()
	if err := s.heal(ctx); err != nil {
		return fmt.Errorf("heal: %w", err)
	}
	rep := report{Seed: o.seed, Rate: o.rate, Duration: o.duration.String(), Faults: faults, Load: load.summary()}
	rep.Invariants, rep.Outcomes, rep.DeadLetters = settle(ctx, s, load, o.quiesce)
	rep.Invariants = append(rep.Invariants, faultsHeld(faults), nothingShedWhileTheBrokerPaused(faults, load))
	rep.SettledIn = time.Since(healStart).Round(100 * time.Millisecond).String()
	rep.Passed = true
	for _, inv := range rep.Invariants {
		rep.Passed = rep.Passed && inv.Passed
	}
	b, _ := json.MarshalIndent(rep, "", "  ")
	if err := os.WriteFile(o.out, b, 0o600); err != nil {
		return err
	}
	rep.print(stdout)
	fmt.Fprintf(stdout, "chaos: report written to %s\n", o.out)
	if !rep.Passed {
		keepDir = true
		return fmt.Errorf("invariants failed (seed %d); logs kept in %s", o.seed, filepath.Join(o.dir, "logs"))
	}
	return nil
}
