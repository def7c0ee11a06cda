package inbox_test

import (
	"context"
	"io/fs"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/example/sagasuite/platform/inbox"
	"github.com/example/sagasuite/platform/postgrestest"
)

// Recording a message and pruning old ids read a million-row inbox
// through its indexes.
func TestEveryQueryUsesAnIndexAtAMillionMessages(t *testing.T) {
	ctx := context.Background()
	// Ten days of ids, the oldest first.
	pool := postgrestest.Large(t, map[string]fs.FS{"inbox": inbox.Migrations()}, `INSERT INTO inbox (consumer, event_id, processed_at)
		SELECT 'orders', 'e-' || g, now() - make_interval(secs => (1000000 - g) * 0.864) FROM generate_series(0, 999999) g`, "inbox")
	rpool, rec := postgrestest.Recording(t, pool)
	if err := pgx.BeginFunc(ctx, rpool, func(tx pgx.Tx) error {
		if _, err := inbox.Record(ctx, tx, "orders", "e-new"); err != nil {
			return err
		}
		_, err := inbox.RecordAll(ctx, tx, "orders", []string{"e-5", "e-newer", "e-new"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := inbox.Prune(ctx, rpool, time.Now().Add(-7*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	postgrestest.NoSeqScans(t, pool, rec.Statements(), "inbox")
}
