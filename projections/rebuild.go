package projections

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portico-health/portico/eventstore"
)

// RebuildResult says what a rebuild did.
type RebuildResult struct {
	Name       string
	Generation int
	Events     int64
	Position   uint64
	Took       time.Duration
}

// Rebuild builds projection name from the start of the log into a new
// generation through the batched path (many events per transaction) while
// the live generation keeps serving, then switches the rm views to it in one
// transaction once it has caught up. An unknown event type fails it.
func (e *Engine) Rebuild(ctx context.Context, name string, progress func(position uint64, events int64)) (RebuildResult, error) {
	p, ok := e.byName[name]
	if !ok {
		return RebuildResult{}, fmt.Errorf("projections: no projection %q", name)
	}
	if se, ok := p.(SideEffects); ok {
		return RebuildResult{}, fmt.Errorf("projections: %s is never rebuilt: %s, and a rebuild would do it again", name, se.SideEffects())
	}
	start := time.Now()
	res := RebuildResult{Name: name}

	// One rebuild of a projection at a time, across processes.
	lockConn, err := e.cfg.Pool.Acquire(ctx)
	if err != nil {
		return res, err
	}
	defer lockConn.Release()
	var got bool
	if err := lockConn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, $2)`, leaseClass+2, leaseKey(name)).Scan(&got); err != nil {
		return res, err
	}
	if !got {
		return res, fmt.Errorf("projections: %s is being rebuilt by another process", name)
	}
	defer lockConn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1, $2)`, leaseClass+2, leaseKey(name)) //nolint:errcheck

	// A rebuild left behind by a crash is abandoned: start clean.
	if err := e.dropGenerations(ctx, name, "rebuilding"); err != nil {
		return res, err
	}
	err = pgx.BeginFunc(ctx, e.cfg.Pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(generation), 0) + 1 FROM projection.checkpoints WHERE name = $1`, name).Scan(&res.Generation); err != nil {
			return err
		}
		return createGeneration(ctx, tx, p, res.Generation, "rebuilding")
	})
	if err != nil {
		return res, err
	}
	schema := schemaFor(name, res.Generation)

	// Catch up in batches, outside any lock the live path needs. The next
	// page is read while the current one is written.
	pos := eventstore.Start
	filter := eventstore.Filter{Categories: p.Categories()}
	ahead := e.readAhead(ctx, pos, filter)
	for {
		r := <-ahead
		if r.err != nil {
			return res, r.err
		}
		full := len(r.page) >= e.cfg.RebuildBatch
		if full {
			ahead = e.readAhead(ctx, r.page[len(r.page)-1].Position, filter)
		}
		if err := e.applyPage(ctx, e.cfg.Pool, p, res.Generation, schema, r.page, true); err != nil {
			if full {
				<-ahead // no read left running against a pool the caller may close
			}
			return res, err
		}
		if len(r.page) > 0 {
			res.Events += int64(len(r.page))
			pos = r.page[len(r.page)-1].Position
		}
		if progress != nil {
			progress(uint64(pos), res.Events)
		}
		if !full {
			break
		}
	}

	// Switch: hold the live checkpoint's row lock (the live handler waits),
	// apply the last events that arrived meanwhile, and swap the views.
	var oldGen int
	err = pgx.BeginFunc(ctx, e.cfg.Pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT generation FROM projection.checkpoints WHERE name = $1 AND state = 'live' FOR UPDATE`, name).Scan(&oldGen)
		if err != nil && !isNoRows(err) {
			return err
		}
		for {
			n, next, err := e.applyBatch(ctx, tx, p, res.Generation, schema, pos, e.cfg.RebuildBatch)
			if err != nil {
				return err
			}
			res.Events += n
			pos = next
			if n < int64(e.cfg.RebuildBatch) {
				break
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE projection.checkpoints SET state = 'retired', updated_at = now() WHERE name = $1 AND state = 'live'`, name); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE projection.checkpoints SET state = 'live', updated_at = now() WHERE name = $1 AND generation = $2`, name, res.Generation); err != nil {
			return err
		}
		return e.switchViews(ctx, tx, p, schema)
	})
	if err != nil {
		return res, err
	}
	res.Position = uint64(pos)
	res.Took = time.Since(start)
	// Readers now use the new tables; the old ones go once nobody holds them.
	if err := e.dropGenerations(ctx, name, "retired"); err != nil {
		e.cfg.Logger.Warn("projections: old generation not dropped yet; the next rebuild retries", "projection", name, "err", err)
	}
	return res, nil
}

// BatchApplier is a Projection that can write a whole page of events at
// once. A rebuild then calls ApplyBatch once per page instead of Apply once
// per event, so a projection can write many rows per statement. The result
// must be the tables Apply would leave event by event, and an unknown event
// type must fail it with ErrUnknownEvent as Apply does.
type BatchApplier interface {
	ApplyBatch(ctx context.Context, w *Writer, events []eventstore.Envelope) error
}

// querier is a pool or a transaction.
type querier interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

type readResult struct {
	page []eventstore.Envelope
	err  error
}

// readAhead reads the next page of a rebuild in the background.
func (e *Engine) readAhead(ctx context.Context, after eventstore.Position, filter eventstore.Filter) <-chan readResult {
	out := make(chan readResult, 1)
	go func() {
		page, err := e.cfg.Store.ReadAll(ctx, after, e.cfg.RebuildBatch, filter)
		out <- readResult{page, err}
	}()
	return out
}

// applyBatch reads up to limit events after pos and applies them with the
// checkpoint in one transaction (a nested one when q is a transaction).
func (e *Engine) applyBatch(ctx context.Context, q querier, p Projection, gen int, schema string, pos eventstore.Position, limit int) (int64, eventstore.Position, error) {
	page, err := e.cfg.Store.ReadAll(ctx, pos, limit, eventstore.Filter{Categories: p.Categories()})
	if err != nil || len(page) == 0 {
		return 0, pos, err
	}
	if err := e.applyPage(ctx, q, p, gen, schema, page, false); err != nil {
		return 0, pos, err
	}
	return int64(len(page)), page[len(page)-1].Position, nil
}

// applyPage applies a page of events with the checkpoint in one transaction.
// With lazy, the commit does not wait for its WAL flush: a rebuild cut short
// by a crash is dropped and started over (Rebuild begins by dropping any
// generation left rebuilding), and the switch's own durable commit flushes
// everything written before it.
func (e *Engine) applyPage(ctx context.Context, q querier, p Projection, gen int, schema string, page []eventstore.Envelope, lazy bool) error {
	if len(page) == 0 {
		return nil
	}
	return pgx.BeginFunc(ctx, q, func(tx pgx.Tx) error {
		w := newWriter(tx, schema)
		if lazy {
			w.Queue(`SET LOCAL synchronous_commit = off`)
		}
		if b, ok := p.(BatchApplier); ok {
			if err := b.ApplyBatch(ctx, w, page); err != nil {
				if errors.Is(err, ErrUnknownEvent) {
					return fmt.Errorf("rebuild of %s refused: %w (teach the projection this event first)", p.Name(), err)
				}
				return fmt.Errorf("rebuild of %s at positions %d-%d: %w", p.Name(), page[0].Position, page[len(page)-1].Position, err)
			}
		} else {
			for _, env := range page {
				if err := p.Apply(ctx, w, env); err != nil {
					if errors.Is(err, ErrUnknownEvent) {
						return fmt.Errorf("rebuild of %s refused: %w (teach the projection this event first)", p.Name(), err)
					}
					return fmt.Errorf("rebuild of %s at position %d (%s): %w", p.Name(), env.Position, env.Type, err)
				}
			}
		}
		last := page[len(page)-1]
		w.Queue(`UPDATE projection.checkpoints SET position = $3, event_time = $4, updated_at = now() WHERE name = $1 AND generation = $2`,
			p.Name(), gen, int64(last.Position), last.Metadata.RecordedAt)
		return w.Flush(ctx)
	})
}

// dropGenerations removes the schemas and checkpoints of p's generations in state.
func (e *Engine) dropGenerations(ctx context.Context, name, state string) error {
	rows, err := e.cfg.Pool.Query(ctx, `SELECT generation FROM projection.checkpoints WHERE name = $1 AND state = $2`, name, state)
	if err != nil {
		return err
	}
	gens, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return err
	}
	for _, gen := range gens {
		err := pgx.BeginFunc(ctx, e.cfg.Pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '5s'`); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schemaFor(name, gen)}.Sanitize()+` CASCADE`); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `DELETE FROM projection.checkpoints WHERE name = $1 AND generation = $2`, name, gen)
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// RetryDeadLetters applies a projection's unresolved dead letters again, in
// order, after a fix; each one that now applies is marked resolved in the same
// transaction. It returns how many were resolved and how many still fail.
func (e *Engine) RetryDeadLetters(ctx context.Context, name string) (resolved, failed int, err error) {
	p, ok := e.byName[name]
	if !ok {
		return 0, 0, fmt.Errorf("projections: no projection %q", name)
	}
	gen, err := e.liveGeneration(ctx, name)
	if err != nil {
		return 0, 0, err
	}
	rows, err := e.cfg.Pool.Query(ctx, `SELECT id, position FROM projection.dead_letters WHERE name = $1 AND generation = $2 AND NOT resolved ORDER BY position`, name, gen)
	if err != nil {
		return 0, 0, err
	}
	type dl struct {
		id  int64
		pos int64
	}
	letters, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (dl, error) {
		var d dl
		return d, r.Scan(&d.id, &d.pos)
	})
	if err != nil {
		return 0, 0, err
	}
	for _, d := range letters {
		page, err := e.cfg.Store.ReadAll(ctx, eventstore.Position(d.pos-1), 1, eventstore.Filter{})
		if err != nil {
			return resolved, failed, err
		}
		if len(page) == 0 || int64(page[0].Position) != d.pos {
			return resolved, failed, fmt.Errorf("projections: dead letter %d: event at position %d not found", d.id, d.pos)
		}
		applyErr := pgx.BeginFunc(ctx, e.cfg.Pool, func(tx pgx.Tx) error {
			w := newWriter(tx, schemaFor(name, gen))
			if err := p.Apply(ctx, w, page[0]); err != nil {
				return err
			}
			if err := w.Flush(ctx); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `UPDATE projection.dead_letters SET resolved = true, retried_at = now() WHERE id = $1`, d.id)
			return err
		})
		if applyErr != nil {
			failed++
			_, _ = e.cfg.Pool.Exec(ctx, `UPDATE projection.dead_letters SET retried_at = now(), error = $2 WHERE id = $1`, d.id, applyErr.Error())
			continue
		}
		resolved++
	}
	return resolved, failed, nil
}
