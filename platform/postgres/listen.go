package postgres

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// listen turns NOTIFYs on channel into wake-ups (at most one pending) until
// ctx ends, reconnecting after failures.
func listen(ctx context.Context, pool *pgxpool.Pool, channel string, wake chan<- struct{}, log *slog.Logger) {
	for ctx.Err() == nil {
		err := listenOnce(ctx, pool, channel, wake)
		if ctx.Err() != nil {
			return
		}
		log.WarnContext(ctx, "listen failed, polling until it reconnects", "channel", channel, "error", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func listenOnce(ctx context.Context, pool *pgxpool.Pool, channel string, wake chan<- struct{}) error {
	pc, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	conn := pc.Hijack() // a listening connection must not go back to the pool
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+quoteIdent(channel)); err != nil {
		return err
	}
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		select {
		case wake <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
}

func quoteIdent(s string) string {
	out := []byte{'"'}
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			out = append(out, '"')
		}
		out = append(out, s[i])
	}
	return string(append(out, '"'))
}

// Wait values a Follow step returns besides a delay.
const (
	// Now runs the step again at once: there is more to do.
	Now time.Duration = 0
	// Idle waits for the next notification or poll.
	Idle time.Duration = -1
)

// FollowConfig tunes Follow. The zero value is valid.
type FollowConfig struct {
	// Poll is the safety-net interval behind NOTIFY; 0 means 1 s.
	Poll time.Duration
	// Gather is how long to wait after a notification so that one step
	// serves the writes of that moment rather than one write each.
	Gather time.Duration
}

// Follow runs step until ctx ends: again at once or after a delay when the
// step says so, otherwise when channel is notified or Poll passes. A
// failing step is retried with backoff (100 ms doubling to 5 s) and logged.
// This is the loop of every worker that follows a table: the outbox relay,
// projectors.
func Follow(ctx context.Context, pool *pgxpool.Pool, channel string, cfg FollowConfig, log *slog.Logger,
	step func(ctx context.Context) (wait time.Duration, err error)) {
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	wake := make(chan struct{}, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		listen(ctx, pool, channel, wake, log)
	}()
	defer wg.Wait()
	ticker := time.NewTicker(cfg.Poll)
	defer ticker.Stop()
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		wait, err := step(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.WarnContext(ctx, "step failed, will retry", "channel", channel, "error", err, "backoff", backoff)
			wait, backoff = backoff, min(backoff*2, 5*time.Second)
		} else {
			backoff = 100 * time.Millisecond
		}
		switch {
		case wait == Now:
			continue
		case wait > 0:
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
			continue
		}
		select {
		case <-ctx.Done():
		case <-wake:
			if cfg.Gather > 0 {
				time.Sleep(cfg.Gather)
			}
		case <-ticker.C:
		}
	}
}
