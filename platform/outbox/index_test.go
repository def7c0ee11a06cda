package outbox_test

import (
	"context"
	"io/fs"
	"testing"

	"github.com/example/sagasuite/platform/observe"
	"github.com/example/sagasuite/platform/outbox"
	"github.com/example/sagasuite/platform/postgrestest"
)

// A relay behind a million-row backlog reads and deletes its batches
// through the primary key. (Backlog, the metrics gauge, counts the whole
// table by nature; the outbox is near empty when the relay keeps up.)
func TestRelayQueriesUseAnIndexAtAMillionRows(t *testing.T) {
	pool := postgrestest.Large(t, map[string]fs.FS{"outbox": outbox.Migrations()}, `INSERT INTO outbox (topic, event_key, event_id, event_type, event_source, event_time, data)
		SELECT 'orders.events', 'o-' || g, 'e-' || g, 'orders.placed', '/orders', now(), '{}' FROM generate_series(0, 999999) g`, "outbox")
	rpool, rec := postgrestest.Recording(t, pool)
	relay, err := outbox.NewRelay(rpool, &slowPublisher{calling: make(chan struct{}, 1)}, observe.Discard(), outbox.RelayConfig{BatchSize: 500})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := relay.PublishBatch(context.Background()); err != nil || n != 500 {
		t.Fatalf("published %d, %v", n, err)
	}
	postgrestest.NoSeqScans(t, pool, rec.Statements(), "outbox")
}
