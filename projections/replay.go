package projections

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/portico-health/portico/eventstore"
)

// AsOf is a past moment of the log: everything up to and including a
// position, or everything recorded up to a time.
type AsOf struct {
	Position eventstore.Position
	Time     time.Time
}

func (a AsOf) includes(e eventstore.Envelope) bool {
	if a.Position != 0 && e.Position > a.Position {
		return false
	}
	if !a.Time.IsZero() && e.Metadata.RecordedAt.After(a.Time) {
		return false
	}
	return true
}

// PatientSnapshotter is a projection that can show what it held for one
// patient, for `portalctl replay`.
type PatientSnapshotter interface {
	PatientSnapshot(ctx context.Context, q pgx.Tx, schema string, patientID uuid.UUID) (any, error)
}

// ReplayResult is what an as-of replay saw.
type ReplayResult struct {
	Events   int64
	Position eventstore.Position // last event applied
	Skipped  int64               // unknown event types passed over
}

// Replay rebuilds every projection from the start of the log up to asOf
// into a scratch schema and hands it to read. The whole replay runs in one
// transaction that is always rolled back, so the scratch schema is dropped
// after, even if the process dies midway, and nobody else ever sees it.
func (e *Engine) Replay(ctx context.Context, asOf AsOf, read func(ctx context.Context, tx pgx.Tx, schema string, res ReplayResult) error) error {
	if asOf.Position == 0 && asOf.Time.IsZero() {
		return errors.New("projections: replay needs a position or a time")
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "replay_" + hex.EncodeToString(b)
	tx, err := e.cfg.Pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // the point: nothing of the replay is kept

	if _, err := tx.Exec(ctx, `CREATE SCHEMA `+pgx.Identifier{schema}.Sanitize()); err != nil {
		return err
	}
	w := newWriter(tx, schema)
	var cats []string
	for _, p := range e.projections {
		if err := p.Setup(ctx, w); err != nil {
			return err
		}
		cats = append(cats, p.Categories()...)
	}
	// Projections share categories (patient is the patients' and the
	// history's); a filter is a set, so each event is read once.
	// Tables must exist before the inserts of the first page are prepared.
	if err := w.Flush(ctx); err != nil {
		return err
	}
	var res ReplayResult
	after := eventstore.Start
	for done := false; !done; {
		page, err := e.cfg.Store.ReadAll(ctx, after, e.cfg.RebuildBatch, eventstore.Filter{Categories: cats})
		if err != nil {
			return err
		}
		done = len(page) < e.cfg.RebuildBatch
		for _, env := range page {
			if !asOf.includes(env) {
				done = true
				break
			}
			for _, p := range e.projections {
				if !(eventstore.Filter{Categories: p.Categories()}).Matches(env.Stream) {
					continue
				}
				err := p.Apply(ctx, w, env)
				if errors.Is(err, ErrUnknownEvent) {
					res.Skipped++
					continue
				}
				if err != nil {
					return err
				}
			}
			res.Events++
			res.Position = env.Position
			after = env.Position
		}
		if err := w.Flush(ctx); err != nil {
			return err
		}
	}
	return read(ctx, tx, schema, res)
}
