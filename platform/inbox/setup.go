package inbox

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/example/sagasuite/platform/config"
	"github.com/example/sagasuite/platform/kafka"
	"github.com/example/sagasuite/platform/lifecycle"
	"github.com/example/sagasuite/platform/observe"
	"github.com/example/sagasuite/platform/postgres"
)

// Config of a consumer's inbox.
type Config struct {
	// Consumer names whose applied IDs these are: the consumer group.
	Consumer string
	// Retention is how long applied IDs are kept for deduplication; 0
	// means 7 days, Kafka's default retention. Keep it longer than any
	// redelivery can take.
	Retention time.Duration
	// Committed runs after each message's transaction ends (it is the
	// place to wake the outbox relay and projectors of this process that
	// follow what the handlers write); nil: nothing.
	Committed func()
}

// RetentionFromEnv reads INBOX_RETENTION (default 7 days).
func RetentionFromEnv(env *config.Env) time.Duration {
	return env.Duration("INBOX_RETENTION", 7*24*time.Hour)
}

// Inbox is one consumer's inbox: the component a service adds to its
// process (Run prunes old IDs hourly) and the adapter that makes its
// handlers apply each message once (Handler).
type Inbox struct {
	pool *pgxpool.Pool
	cfg  Config
	tel  observe.Bundle
}

// Setup creates the inbox table in pool's database (if it is not there
// yet) and returns the inbox of cfg.Consumer, reporting through tel.
func Setup(ctx context.Context, pool *pgxpool.Pool, tel observe.Bundle, cfg Config) (*Inbox, error) {
	if err := tel.For("inbox " + cfg.Consumer); err != nil {
		return nil, err
	}
	if err := postgres.Migrate(ctx, pool, "inbox", Migrations()); err != nil {
		return nil, err
	}
	if cfg.Retention <= 0 {
		cfg.Retention = 7 * 24 * time.Hour
	}
	return &Inbox{pool: pool, cfg: cfg, tel: tel}, nil
}

// Handler runs the route of each message's type once per message, in a
// transaction that records the message's ID (handler). A
// type routed to nil is skipped without a transaction: it changes
// nothing, so there is nothing to deduplicate (and a saga's consumers
// ignore about half of what they read).
func (i *Inbox) Handler(routes Routes) kafka.Handler {
	inner := handler(i.pool, i.cfg.Consumer, Route(routes), i.tel.MeterProvider)
	return kafka.HandlerFunc(func(ctx context.Context, m kafka.Message) error {
		if routes.ignores(m.Type) {
			return nil
		}
		defer i.committed()
		return inner.Handle(ctx, m)
	})
}

// Batch applies a batch of messages in one transaction that records their
// IDs (batch), for kafka.ConsumerConfig.Batch beside
// Handler(routes); types routed to nil are left out, as in Handler.
func (i *Inbox) Batch(routes Routes) kafka.BatchHandler { return i.BatchLocking(routes, nil) }

// BatchLocking is Batch for handlers that lock rows other messages share
// (inventory's product rows): lock runs in the batch's transaction once
// its IDs are recorded, on the messages applied for the first time, and
// takes every lock their handlers will take, in one order, so that two
// batches never deadlock.
func (i *Inbox) BatchLocking(routes Routes, lock LockFunc) kafka.BatchHandler {
	inner := batch(i.pool, i.cfg.Consumer, Route(routes), lock, i.tel.MeterProvider)
	return kafka.BatchFunc(func(ctxs []context.Context, msgs []kafka.Message) error {
		var keepCtxs []context.Context
		var keep []kafka.Message
		for j, m := range msgs {
			if !routes.ignores(m.Type) {
				keepCtxs, keep = append(keepCtxs, ctxs[j]), append(keep, m)
			}
		}
		if len(keep) == 0 {
			return nil
		}
		defer i.committed()
		return inner.HandleBatch(keepCtxs, keep)
	})
}

// committed runs Config.Committed, after a rollback too: a wake-up too
// many costs the relay one empty look.
func (i *Inbox) committed() {
	if i.cfg.Committed != nil {
		i.cfg.Committed()
	}
}

// Lifecycle: run beside the server.
func (i *Inbox) Lifecycle() lifecycle.Parts { return lifecycle.Parts{Run: i.Run} }

// Run forgets applied IDs older than Retention, hourly, until ctx ends.
// Replicas may prune at once: deleting twice is harmless.
func (i *Inbox) Run(ctx context.Context) error {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		n, err := Prune(ctx, i.pool, time.Now().Add(-i.cfg.Retention))
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			i.tel.Logger.WarnContext(ctx, "prune inbox", "error", err)
		case n > 0:
			i.tel.Logger.InfoContext(ctx, "inbox pruned", "ids", n, "older_than", i.cfg.Retention)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
