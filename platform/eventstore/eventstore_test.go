package eventstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/example/sagasuite/platform/eventstore"
	"github.com/example/sagasuite/platform/postgrestest"
)

func ev(typ string, n int) eventstore.NewEvent {
	return eventstore.NewEvent{Type: typ, Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n)),
		Metadata: map[string]string{"trace_id": "abc"}, OccurredAt: time.Now().UTC().Truncate(time.Microsecond)}
}

func TestAppendLoadReadAll(t *testing.T) {
	pool := postgrestest.Pool(t, map[string]fs.FS{"eventstore": eventstore.Migrations()})
	ctx := context.Background()
	appendTx := func(stream string, expected int64, events ...eventstore.NewEvent) (int64, error) {
		var v int64
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			var err error
			v, err = eventstore.Append(ctx, tx, stream, expected, events...)
			return err
		})
		return v, err
	}
	if v, err := appendTx("a", 0, ev("Created", 1), ev("Changed", 2)); err != nil || v != 2 {
		t.Fatalf("append: v=%d err=%v", v, err)
	}
	if _, err := appendTx("b", 0, ev("Created", 3)); err != nil {
		t.Fatal(err)
	}
	if v, err := appendTx("a", 2, ev("Changed", 4)); err != nil || v != 3 {
		t.Fatalf("append at 2: v=%d err=%v", v, err)
	}
	for _, stale := range []int64{0, 1, 2, 5} {
		if _, err := appendTx("a", stale, ev("Stale", 9)); !errors.Is(err, eventstore.ErrVersionConflict) {
			t.Errorf("append at stale version %d: %v, want ErrVersionConflict", stale, err)
		}
	}
	got, err := eventstore.Load(ctx, pool, "a")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Type != "Created" || got[2].Version != 3 || string(got[2].Data) != `{"n": 4}` || got[0].Metadata["trace_id"] != "abc" {
		t.Fatalf("load a: %+v", got)
	}
	all, err := eventstore.ReadAll(ctx, pool, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 4 {
		t.Fatalf("read all: %d events", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i].Position <= all[i-1].Position {
			t.Fatalf("positions not increasing: %d then %d", all[i-1].Position, all[i].Position)
		}
	}
	if page, _ := eventstore.ReadAll(ctx, pool, all[1].Position, 1); len(page) != 1 || page[0].Position != all[2].Position {
		t.Fatalf("read after %d: %+v", all[1].Position, page)
	}
	if none, err := eventstore.Load(ctx, pool, "missing"); err != nil || len(none) != 0 {
		t.Fatalf("unknown stream: %v %v", none, err)
	}
}

// Concurrent writers at the same expected version: exactly one wins, the
// others get ErrVersionConflict, and no event is lost or duplicated.
func TestConcurrentAppendsExactlyOneWins(t *testing.T) {
	pool := postgrestest.Pool(t, map[string]fs.FS{"eventstore": eventstore.Migrations()})
	ctx := context.Background()
	const writers = 8
	for round := int64(0); round < 5; round++ {
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		start := make(chan struct{})
		for i := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs <- pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
					_, err := eventstore.Append(ctx, tx, "hot", round, ev("Tick", i))
					return err
				})
			}()
		}
		close(start)
		wg.Wait()
		close(errs)
		wins := 0
		for err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, eventstore.ErrVersionConflict):
				t.Fatalf("unexpected error: %v", err)
			}
		}
		if wins != 1 {
			t.Fatalf("round %d: %d writers won, want 1", round, wins)
		}
	}
	got, _ := eventstore.Load(ctx, pool, "hot")
	if len(got) != 5 {
		t.Fatalf("stream has %d events, want 5", len(got))
	}
}
