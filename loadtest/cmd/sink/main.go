// Command sink accepts OTLP/HTTP (traces, logs, metrics) and Pyroscope
// ingest requests and discards them: the telemetry backend of the
// overhead A/B (loadtest/overhead.sh), so that what is measured is the
// cost of producing and sending telemetry, not of storing it.
//
//	go run ./loadtest/cmd/sink -otlp 127.0.0.1:14318 -pyroscope 127.0.0.1:14040
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
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "sink:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("sink", flag.ContinueOnError)
	otlp := fs.String("otlp", "127.0.0.1:14318", "OTLP/HTTP listen address")
	pyro := fs.String("pyroscope", "127.0.0.1:14040", "Pyroscope ingest listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	discard := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf") // an empty Export*ServiceResponse
		w.WriteHeader(http.StatusOK)
	})
	errc := make(chan error, 2)
	var servers []*http.Server
	for _, addr := range []string{*otlp, *pyro} {
		srv := &http.Server{Addr: addr, Handler: discard, ReadHeaderTimeout: 5 * time.Second}
		servers = append(servers, srv)
		go func() { errc <- srv.ListenAndServe() }()
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	for _, srv := range servers {
		if err := srv.Close(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	return nil
}
