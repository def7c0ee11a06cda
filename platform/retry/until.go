package retry

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Until calls f until it succeeds or ctx ends, backing off from 100 ms to
// 2 s and logging each failure on log (nil: slog.Default). It is the wait
// for a dependency that may still be starting (make dev, compose): bound
// ctx with how long a start may take.
func Until(ctx context.Context, log *slog.Logger, what string, f func(ctx context.Context) error) error {
	if log == nil {
		log = slog.Default()
	}
	backoff := 100 * time.Millisecond
	for {
		err := f(ctx)
		if err == nil {
			return nil
		}
		log.Warn("waiting for "+what, "error", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w", what, err)
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}
