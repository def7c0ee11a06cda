package observe_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/example/sagasuite/platform/admission"
	"github.com/example/sagasuite/platform/breaker"
	"github.com/example/sagasuite/platform/bulkhead"
	"github.com/example/sagasuite/platform/discovery"
	"github.com/example/sagasuite/platform/election"
	"github.com/example/sagasuite/platform/eventstore"
	"github.com/example/sagasuite/platform/faults"
	"github.com/example/sagasuite/platform/httpserver"
	"github.com/example/sagasuite/platform/inbox"
	"github.com/example/sagasuite/platform/kafka"
	"github.com/example/sagasuite/platform/observe"
	"github.com/example/sagasuite/platform/outbox"
	"github.com/example/sagasuite/platform/postgres"
	"github.com/example/sagasuite/platform/projection"
	"github.com/example/sagasuite/platform/retry"
	"github.com/example/sagasuite/platform/sidecar"
)

type noProjection struct{}

func (noProjection) Apply(*pgx.Batch, string, eventstore.Event) error { return nil }

type noPublisher struct{}

func (noPublisher) Publish(context.Context, string, ...kafka.Event) error { return nil }

// Every platform component refuses, at start, a bundle that lacks a
// provider: wiring that forgot one fails loudly instead of reporting
// nowhere. Each is given everything else it needs, so the bundle is the
// only reason to refuse. No dependency is contacted: the check comes
// before any I/O.
func TestEveryComponentRefusesAnIncompleteBundle(t *testing.T) {
	ctx := context.Background()
	// Lazy: neither connects before it is used.
	pool, err := pgxpool.New(ctx, "postgres://nobody@127.0.0.1:1/none")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()

	tel := observe.Discard()
	tel.MeterProvider = nil // the one forgotten provider
	components := map[string]func() error{
		"admission": func() error { _, err := admission.New(tel, admission.Settings{Name: "x"}); return err },
		"breaker":   func() error { _, err := breaker.New(tel, breaker.Settings{Name: "x"}); return err },
		"bulkhead":  func() error { _, err := bulkhead.New(tel, bulkhead.Settings{Name: "x"}); return err },
		"budget":    func() error { _, err := retry.NewBudget(tel, retry.BudgetSettings{Name: "x"}); return err },
		"server":    func() error { _, err := httpserver.New(tel, httpserver.Config{}); return err },
		"publisher": func() error {
			_, err := kafka.NewPublisher(tel, kafka.PublisherConfig{Brokers: []string{"127.0.0.1:1"}})
			return err
		},
		"consumer": func() error {
			_, err := kafka.NewConsumer(kafka.HandlerFunc(func(context.Context, kafka.Message) error { return nil }), tel,
				kafka.ConsumerConfig{Brokers: []string{"127.0.0.1:1"}, Group: "g", Topics: []string{"t"}})
			return err
		},
		"kafka retry": func() error { _, err := kafka.Retry(tel, 0); return err },
		"kafka": func() error {
			_, err := kafka.Connect(ctx, kafka.Settings{Brokers: []string{"127.0.0.1:1"}}, tel, "t")
			return err
		},
		"relay":  func() error { _, err := outbox.NewRelay(pool, noPublisher{}, tel, outbox.RelayConfig{}); return err },
		"outbox": func() error { _, err := outbox.Setup(ctx, pool, noPublisher{}, tel, outbox.RelayConfig{}); return err },
		"inbox":  func() error { _, err := inbox.Setup(ctx, pool, tel, inbox.Config{Consumer: "c"}); return err },
		"projection": func() error {
			_, err := projection.New(pool, noProjection{}, tel, projection.Config{Name: "p", Table: "t"})
			return err
		},
		"database": func() error {
			_, err := postgres.Connect(ctx, postgres.Settings{URL: "postgres://nobody@127.0.0.1:1/none", Name: "x"}, tel, postgres.Config{})
			return err
		},
		"elector": func() error {
			_, err := election.New(cli, tel, election.Config{Name: "e", InstanceID: "i"})
			return err
		},
		"singleton": func() error {
			_, err := election.Setup(ctx, cli, pool, func(context.Context, int64) (int, error) { return 0, nil }, tel,
				election.Config{Name: "e", InstanceID: "i", Every: 1})
			return err
		},
		"resolver": func() error { _, err := discovery.NewResolver(cli, "s", tel); return err },
		"faults":   func() error { return new(faults.Injector).Export(tel) },
		"sidecar":  func() error { return sidecar.Run(ctx, cli, tel, sidecar.Config{}) },
	}
	for name, start := range components {
		if err := start(); !errors.Is(err, observe.ErrIncomplete) {
			t.Errorf("%s started without a meter provider: %v", name, err)
		}
	}
}
