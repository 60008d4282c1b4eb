// Package projections turns the event log into Postgres read models.
//
// Each Projection is fed by a Watermill subscriber over the event store's
// global feed (subscriber.go) and runs as one handler of a Watermill router
// (engine.go) with retry, recoverer, correlation and Prometheus middleware.
// A projection writes its rows and its checkpoint in one transaction, so an
// event is applied effectively once; rows also carry the stream version they
// reflect, so a replayed event changes nothing.
//
// Tables live in a schema per generation (proj_<name>_g<n>). Readers use the
// stable views of schema rm, which a rebuild switches to a new generation in
// one transaction once it has caught up (rebuild.go). Reporting views in
// schema reporting sit on the rm views.
package projections

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"github.com/jackc/pgx/v5"

	"github.com/portico-health/portico/eventstore"
)

// Projection keeps one read model.
type Projection interface {
	// Name is the checkpoint key: renaming a projection rebuilds it.
	Name() string
	// Categories are the stream categories it reads.
	Categories() []string
	// Critical projections halt on an event they cannot apply and never skip
	// it (the PHI access trail); the others dead-letter it and go on.
	Critical() bool
	// Setup creates the projection's tables in schema.
	Setup(ctx context.Context, w *Writer) error
	// Tables are the tables that get an rm view, in dependency order.
	Tables() []string
	// ReportingViews are CREATE OR REPLACE VIEW statements over rm views,
	// re-run after every switch.
	ReportingViews() []string
	// Apply writes one event. Return ErrUnknownEvent for an event of the
	// projection's categories that it does not know.
	Apply(ctx context.Context, w *Writer, e eventstore.Envelope) error
}

// SideEffects marks a handler that acts on the world (sends email, calls
// Stripe) instead of keeping tables. It runs live like any projection, but is
// never rebuilt or replayed: that would act again. SideEffects says what it
// does, for the refusal.
type SideEffects interface {
	SideEffects() string
}

// ErrUnknownEvent marks an event type a projection does not know. Live, it
// is counted and skipped; in a rebuild it fails the rebuild.
var ErrUnknownEvent = errors.New("projections: unknown event type")

// Unknown wraps ErrUnknownEvent with the event's type.
func Unknown(e eventstore.Envelope) error {
	return fmt.Errorf("%w %q at position %d", ErrUnknownEvent, e.Type, e.Position)
}

// Writer is how a projection writes: statements are queued and sent in one
// round trip per event live, and per page of events in a rebuild. A query
// first flushes what is queued, so a projection reads its own writes.
type Writer struct {
	tx     txConn
	schema string
	batch  *pgx.Batch
}

// txConn is a transaction: a pgx.Tx, or a connection on which the engine
// opened one itself to save the round trips of BEGIN and COMMIT.
type txConn interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

func newWriter(tx txConn, schema string) *Writer {
	return &Writer{tx: tx, schema: schema, batch: &pgx.Batch{}}
}

// Schema is the quoted schema of the generation being written.
func (w *Writer) Schema() string { return pgx.Identifier{w.schema}.Sanitize() }

// T qualifies a table name with the generation's schema.
func (w *Writer) T(table string) string { return w.Schema() + "." + pgx.Identifier{table}.Sanitize() }

// Queue adds a statement to send.
func (w *Writer) Queue(sql string, args ...any) { w.batch.Queue(sql, args...) }

// Query flushes queued statements, then runs a query.
func (w *Writer) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if err := w.Flush(ctx); err != nil {
		return nil, err
	}
	return w.tx.Query(ctx, sql, args...)
}

// QueryRow flushes queued statements, then runs a one-row query.
func (w *Writer) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if err := w.Flush(ctx); err != nil {
		return errRow{err}
	}
	return w.tx.QueryRow(ctx, sql, args...)
}

// Flush sends the queued statements.
func (w *Writer) Flush(ctx context.Context) error {
	if w.batch.Len() == 0 {
		return nil
	}
	b := w.batch
	w.batch = &pgx.Batch{}
	return w.tx.SendBatch(ctx, b).Close()
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,40}$`)

// schemaFor names a generation's schema.
func schemaFor(name string, generation int) string {
	return fmt.Sprintf("proj_%s_g%d", name, generation)
}

func isNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }
