package election

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/example/sagasuite/platform/lifecycle"
	"github.com/example/sagasuite/platform/observe"
	"github.com/example/sagasuite/platform/postgres"
)

// Job is singleton work: it runs only while this instance leads, with the
// term's fencing token to pass to Fence in each write transaction.
type Job func(ctx context.Context, token int64) error

// Scan is one pass of a periodic singleton job: it does what is due,
// passing token to Fence in each write transaction, and reports how many
// things it did.
type Scan func(ctx context.Context, token int64) (int, error)

// Singleton is a periodic job run on one instance at a time: the
// component a service adds to its process. Each run is counted in
// singleton.runs{election, outcome} (ok, error, fenced), and the leader
// exports singleton.last_success{election}, the time of its last
// successful run (of the start of its term until the first), so an alert
// says when a singleton has stopped doing its work although it has a
// leader: its writes fenced off, or failing.
type Singleton struct {
	*Elector
	every time.Duration
	scan  Scan

	runs metric.Int64Counter
	mu   sync.Mutex
	last time.Time // last success, or the start of this term; zero while not leading
}

// Setup creates the fencing table in pool's database (the one the job
// writes to, if it is not there yet) and returns a singleton elected
// through cli under cfg.Name that runs scan every cfg.Every while leading.
// A new epoch (etcd without one) starts above the epochs of pool's fencing
// table, so its tokens outrank every token written before.
func Setup(ctx context.Context, cli *clientv3.Client, pool *pgxpool.Pool, scan Scan, tel observe.Bundle, cfg Config) (*Singleton, error) {
	if cfg.Every <= 0 || scan == nil {
		return nil, errors.New("election: a singleton needs a scan and its interval")
	}
	e, err := New(cli, tel, cfg)
	if err != nil {
		return nil, err
	}
	if err := postgres.Migrate(ctx, pool, "election", Migrations()); err != nil {
		return nil, err
	}
	e.floor = func(ctx context.Context) (int64, error) {
		var epoch int64
		err := pool.QueryRow(ctx, `SELECT coalesce(max(token >> 40), 0) FROM fencing_tokens`).Scan(&epoch)
		return epoch, err
	}
	s := &Singleton{Elector: e, every: cfg.Every, scan: scan}
	meter := tel.Meter("github.com/example/sagasuite/platform/election")
	if s.runs, err = meter.Int64Counter("singleton.runs", metric.WithDescription(
		"Runs of a singleton job on its leader, by outcome: ok, error, fenced (a newer leader's token was seen)."), metric.WithUnit("{run}")); err != nil {
		return nil, err
	}
	last, err := meter.Float64ObservableGauge("singleton.last_success", metric.WithDescription(
		"Unix time of the leader's last successful run of a singleton job (the start of its term until the first); only the leader reports it."),
		metric.WithUnit("s"))
	if err != nil {
		return nil, err
	}
	attrs := metric.WithAttributes(attribute.String("election", cfg.Name))
	_, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		s.mu.Lock()
		at := s.last
		s.mu.Unlock()
		if !at.IsZero() && s.IsLeader() {
			o.ObserveFloat64(last, float64(at.UnixNano())/1e9, attrs)
		}
		return nil
	}, last)
	return s, err
}

// Lifecycle: run beside the server.
func (s *Singleton) Lifecycle() lifecycle.Parts { return lifecycle.Parts{Run: s.Run} }

// Run campaigns and runs the scan while leading, until ctx ends.
func (s *Singleton) Run(ctx context.Context) error { return s.Elector.Run(ctx, s.periodic) }

// Scan runs one pass now with token, and counts it: what the loop does
// every interval, and what tests call.
func (s *Singleton) Scan(ctx context.Context, token int64) (int, error) {
	n, err := s.scan(ctx, token)
	outcome := "ok"
	switch {
	case errors.Is(err, ErrFenced):
		outcome = "fenced"
	case err != nil:
		outcome = "error"
	default:
		s.mu.Lock()
		s.last = time.Now()
		s.mu.Unlock()
	}
	if ctx.Err() == nil {
		s.runs.Add(ctx, 1, metric.WithAttributes(attribute.String("election", s.cfg.Name), attribute.String("outcome", outcome)))
	}
	return n, err
}

func (s *Singleton) periodic(ctx context.Context, token int64) error {
	s.mu.Lock()
	s.last = time.Now() // the term's start stands for its last success until the first
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.last = time.Time{}
		s.mu.Unlock()
	}()
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		n, err := s.Scan(ctx, token)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, ErrFenced):
			// A newer leader wrote: this term is over. Resign and
			// campaign again (Run), rather than fail every run.
			return fmt.Errorf("%s: %w", s.cfg.Name, err)
		case err != nil:
			s.tel.Logger.WarnContext(ctx, "singleton run failed", "election", s.cfg.Name, "error", err)
		case n > 0:
			s.tel.Logger.InfoContext(ctx, "singleton run", "election", s.cfg.Name, "done", n)
		}
	}
}
