// Command stackcheck asks each backend of the compose stack whether it
// holds this run's telemetry (platform/stackcheck), retrying each check
// until it passes or -wait runs out (spans, profiles and the service graph
// arrive seconds after the request that made them). It prints one line a
// check and exits 1 when any failed. The compose workflow runs it inside
// the stack's network after the k6 smoke scenario:
//
//	stackcheck -since 1733300000 -prometheus http://prometheus:9090 -tempo http://tempo:3200 \
//	  -loki http://loki:3100 -pyroscope http://pyroscope:4040 -grafana http://grafana:3000
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/example/sagasuite/platform/stackcheck"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "stackcheck:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("stackcheck", flag.ContinueOnError)
	prometheus := fs.String("prometheus", "http://localhost:9090", "Prometheus")
	tempo := fs.String("tempo", "", "Tempo's HTTP API (not published by compose: run inside its network); empty skips the trace check")
	loki := fs.String("loki", "http://localhost:3100", "Loki; empty skips")
	pyroscope := fs.String("pyroscope", "http://localhost:4040", "Pyroscope; empty skips")
	grafana := fs.String("grafana", "http://localhost:3000", "Grafana; empty skips")
	dashboards := fs.Int("dashboards", 9, "dashboards Grafana must serve (tag sagasuite)")
	since := fs.Int64("since", 0, "unix seconds the run began (default: -wait ago)")
	services := fs.String("services", "orders,inventory,payments,psp", "services every trace and profile must include")
	wait := fs.Duration("wait", 3*time.Minute, "how long each check may take to pass")
	every := fs.Duration("every", 5*time.Second, "how often a failing check is tried again")
	graph := fs.Bool("service-graph", true, "check Tempo's service graph in Prometheus")
	if err := fs.Parse(args); err != nil {
		return err
	}
	start := time.Unix(*since, 0)
	if *since == 0 {
		start = time.Now().Add(-*wait)
	}
	c := stackcheck.Checker{HTTP: &http.Client{Timeout: 10 * time.Second}, Since: start, Services: strings.Split(*services, ",")}
	failed := 0
	check := func(name string, f func(context.Context) (string, error)) {
		began := time.Now()
		deadline := began.Add(*wait)
		for {
			detail, err := f(ctx)
			if err == nil {
				fmt.Fprintf(out, "ok    %-13s %s (after %v)\n", name, detail, time.Since(began).Round(time.Second))
				return
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				fmt.Fprintf(out, "FAIL  %-13s %v\n", name, err)
				failed++
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(*every):
			}
		}
	}

	var traceID string
	check("prometheus", func(ctx context.Context) (string, error) {
		id, err := c.Metrics(ctx, *prometheus)
		traceID = id
		return "saga metrics, exemplar trace " + id, err
	})
	if *tempo != "" {
		check("tempo", func(ctx context.Context) (string, error) {
			if traceID == "" {
				return "", errors.New("no exemplar trace id to look up (see prometheus)")
			}
			return "trace " + traceID + " spans " + *services, c.Trace(ctx, *tempo, traceID)
		})
	}
	if *graph {
		want := []stackcheck.Edge{{Client: "orders", Server: "inventory"}, {Client: "payments", Server: "psp"}, {Client: "orders", Server: "postgresql"}}
		check("service-graph", func(ctx context.Context) (string, error) {
			return fmt.Sprintf("edges %v and one through Kafka", want), c.ServiceGraph(ctx, *prometheus, want)
		})
	}
	if *loki != "" {
		check("loki", func(ctx context.Context) (string, error) {
			svc, err := c.Logs(ctx, *loki)
			return "a log line of " + svc + " with a trace_id", err
		})
	}
	if *pyroscope != "" {
		check("pyroscope", func(ctx context.Context) (string, error) {
			return "CPU profiles of " + *services, c.Profiles(ctx, *pyroscope)
		})
	}
	if *grafana != "" {
		ds := []string{"prometheus", "tempo", "loki", "pyroscope"}
		check("grafana", func(ctx context.Context) (string, error) {
			return fmt.Sprintf("%d+ dashboards, datasources %v healthy", *dashboards, ds), c.Grafana(ctx, *grafana, *dashboards, ds)
		})
	}
	if failed > 0 {
		return fmt.Errorf("%d checks failed", failed)
	}
	return ctx.Err()
}
