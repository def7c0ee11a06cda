package postgres

import (
	"context"
	"log/slog"
	"time"
)

// Signal is an in-process wake-up with at most one pending: a writer
// raises it after its transaction committed, the worker that follows the
// table it wrote (the outbox relay, a projector) waits on it in Follow.
//
// It replaces NOTIFY, which writers used to send inside each transaction:
// PostgreSQL serialises the commits of every transaction that notified
// (one cluster-wide lock held through the commit), which capped the whole
// machine's write rate. Every writer of these tables runs in the process
// of the worker that follows them; a worker of another replica finds the
// rows at its next step or poll.
type Signal struct{ c chan struct{} }

// NewSignal returns a signal with nothing pending.
func NewSignal() *Signal { return &Signal{c: make(chan struct{}, 1)} }

// Raise wakes the follower, or does nothing when a wake-up is already
// pending: a burst of commits costs one step.
func (s *Signal) Raise() {
	select {
	case s.c <- struct{}{}:
	default:
	}
}

// Wait values a Follow step returns besides a delay.
const (
	// Now runs the step again at once: there is more to do.
	Now time.Duration = 0
	// Idle waits for the next signal or poll.
	Idle time.Duration = -1
)

// FollowConfig tunes Follow. The zero value is valid.
type FollowConfig struct {
	// Poll is the safety-net interval behind the signal, for rows that
	// another process wrote; 0 means 1 s.
	Poll time.Duration
	// Gather is how long to wait after a signal so that one step serves
	// the writes of that moment rather than one write each.
	Gather time.Duration
}

// Follow runs step until ctx ends: again at once or after a delay (which
// a signal cuts short) when the step says so, otherwise when wake is
// raised or Poll passes. A failing
// step is retried with backoff (100 ms doubling to 5 s) and logged. This
// is the loop of every worker that follows a table: the outbox relay,
// projectors. name labels its log lines.
func Follow(ctx context.Context, name string, wake *Signal, cfg FollowConfig, log *slog.Logger,
	step func(ctx context.Context) (wait time.Duration, err error)) {
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	ticker := time.NewTicker(cfg.Poll)
	defer ticker.Stop()
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		wait, err := step(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.WarnContext(ctx, "step failed, will retry", "worker", name, "error", err, "backoff", backoff)
			wait, backoff = backoff, min(backoff*2, 5*time.Second)
		} else {
			backoff = 100 * time.Millisecond
		}
		switch {
		case wait == Now:
			continue
		case wait > 0 && err == nil:
			select { // a signal cuts the delay short
			case <-ctx.Done():
			case <-wake.c:
				gather(cfg.Gather)
			case <-time.After(wait):
			}
			continue
		case wait > 0: // a failure's backoff
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
			continue
		}
		select {
		case <-ctx.Done():
		case <-wake.c:
			gather(cfg.Gather)
		case <-ticker.C:
		}
	}
}

// gather waits d so that one step serves the writes of that moment.
func gather(d time.Duration) {
	if d > 0 {
		time.Sleep(d)
	}
}
