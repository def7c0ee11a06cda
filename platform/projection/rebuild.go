package projection

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/example/sagasuite/platform/eventstore"
)

// RequestRebuild asks Run to rebuild the read model in the background;
// ErrRebuildRunning when one is queued or under way. Status reports progress.
func (p *Projector) RequestRebuild() error {
	p.mu.Lock()
	running := p.status.Rebuild.Running
	if !running {
		now := time.Now().UTC()
		p.status.Rebuild = RebuildStatus{Running: true, StartedAt: &now}
	}
	p.mu.Unlock()
	if running {
		return ErrRebuildRunning
	}
	p.rebuild <- struct{}{}
	return nil
}

func (p *Projector) rebuilds(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.rebuild:
		}
		err := p.Rebuild(ctx)
		if err != nil && ctx.Err() == nil {
			p.log.ErrorContext(ctx, "projection rebuild failed", "projection", p.cfg.Name, "error", err)
		}
	}
}

// Rebuild replays every event into a fresh copy of the table, then, holding
// the live projection's lock, catches up the last events and swaps the copy
// in with the checkpoint, in one transaction. Readers see the old table
// until the swap and the complete new one after it; the live projector
// pauses only for the final catch-up.
func (p *Projector) Rebuild(ctx context.Context) (err error) {
	rebuildLock := lockKey("projection-rebuild:" + p.cfg.Name)
	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, rebuildLock).Scan(&locked); err != nil {
		return err
	}
	if !locked {
		p.finishRebuild(ErrRebuildRunning)
		return ErrRebuildRunning // another replica is rebuilding
	}
	defer func() { _, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, rebuildLock) }()
	defer func() { p.finishRebuild(err) }()

	live := pgx.Identifier{p.cfg.Table}.Sanitize()
	fresh := pgx.Identifier{p.cfg.Table + "_rebuild"}.Sanitize()
	old := pgx.Identifier{p.cfg.Table + "_old"}.Sanitize()
	scratch := p.cfg.Name + ":rebuild"
	var total int64
	if err := p.pool.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&total); err != nil {
		return err
	}
	now := time.Now().UTC()
	p.mu.Lock()
	p.status.Rebuild = RebuildStatus{Running: true, Total: total, StartedAt: &now}
	p.mu.Unlock()
	if _, err := p.pool.Exec(ctx, fmt.Sprintf(`DROP TABLE IF EXISTS %s; CREATE TABLE %s (LIKE %s INCLUDING ALL)`, fresh, fresh, live)); err != nil {
		return fmt.Errorf("create %s: %w", fresh, err)
	}
	if _, err := p.pool.Exec(ctx, `DELETE FROM projection_checkpoints WHERE name = $1`, scratch); err != nil {
		return err
	}
	// Bulk of the work, beside the live projector.
	cp := eventstore.Checkpoint{}
	for {
		n := 0
		err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
			var err error
			cp, n, err = p.catchUp(ctx, tx, p.cfg.Table+"_rebuild", scratch, cp)
			return err
		})
		if err != nil {
			return fmt.Errorf("rebuild %s: %w", p.cfg.Name, err)
		}
		if n == 0 {
			break
		}
	}
	// The switch: pause the live projector, apply what came meanwhile, swap.
	return pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, p.lock); err != nil {
			return err
		}
		for {
			var n int
			var err error
			if cp, n, err = p.catchUp(ctx, tx, p.cfg.Table+"_rebuild", scratch, cp); err != nil {
				return err
			}
			if n == 0 {
				break
			}
		}
		_, err := tx.Exec(ctx, fmt.Sprintf(`ALTER TABLE %s RENAME TO %s; ALTER TABLE %s RENAME TO %s; DROP TABLE %s`,
			live, old, fresh, live, old))
		if err != nil {
			return fmt.Errorf("swap in the rebuilt %s: %w", p.cfg.Table, err)
		}
		_, err = tx.Exec(ctx, `INSERT INTO projection_checkpoints (name, transaction_id, position) VALUES ($1, $2, $3)
			ON CONFLICT (name) DO UPDATE SET transaction_id = EXCLUDED.transaction_id, position = EXCLUDED.position, updated_at = now()`,
			p.cfg.Name, int64(cp.TxID), cp.Position) // #nosec G115 -- a PostgreSQL xid8 is below 2^63
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM projection_checkpoints WHERE name = $1`, scratch)
		return err
	})
}

// catchUp applies one batch after the checkpoint stored as checkpoint (cp)
// into table and reports how many. It reads as the live projector does:
// a transaction in flight in another database holds nothing back (with
// ReadAll's wait for every transaction on the server, a long one anywhere
// made the rebuild take "nothing to read" for "caught up" and swap in a
// model without the events it held back).
func (p *Projector) catchUp(ctx context.Context, tx pgx.Tx, table, checkpoint string, cp eventstore.Checkpoint) (eventstore.Checkpoint, int, error) {
	events, _, err := afterCheckpoint.Read(ctx, tx, checkpoint, p.cfg.BatchSize)
	if err != nil || len(events) == 0 {
		return cp, 0, err
	}
	cp, parked, err := p.apply(ctx, tx, table, checkpoint, events)
	if err != nil {
		return cp, 0, err
	}
	for _, pk := range parked {
		p.log.ErrorContext(ctx, "rebuild parked an event it cannot apply", "projection", p.cfg.Name,
			"stream_id", pk.event.StreamID, "version", pk.event.Version, "type", pk.event.Type, "error", pk.err)
	}
	p.mu.Lock()
	p.status.Rebuild.Applied += int64(len(events))
	p.mu.Unlock()
	return cp, len(events), nil
}

func (p *Projector) finishRebuild(err error) {
	now := time.Now().UTC()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.status.Rebuild.Running = false
	p.status.Rebuild.FinishedAt = &now
	p.status.Rebuild.Error = ""
	if err != nil && !errors.Is(err, context.Canceled) {
		p.status.Rebuild.Error = err.Error()
	}
}
