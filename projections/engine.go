package projections

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/metrics"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/internal/pgdb"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations is the engine's schema: checkpoints, dead letters, and the rm
// and reporting schemas.
func Migrations() pgdb.Migration {
	return pgdb.Embedded("projection", migrationFiles, "migrations")
}

// Config configures an Engine. Pool and Store are required.
type Config struct {
	Pool   *pgxpool.Pool
	Store  eventstore.Store
	Logger *slog.Logger
	// Registerer receives the Watermill router metrics and the engine's own
	// gauges. prometheus.DefaultRegisterer by default.
	Registerer prometheus.Registerer
	// Retries an event gets before it is dead-lettered (or halts a critical
	// projection). 5 by default.
	MaxRetries int
	// RetryInterval is the first retry's wait, doubling up to 2s. 50ms by default.
	RetryInterval time.Duration
	// LeaseRetry is how often a process without a projection's lease tries
	// to take it. 1s by default: a dead holder is replaced within about that.
	LeaseRetry time.Duration
	// RebuildBatch is how many events a rebuild writes per transaction. 2000 by default.
	RebuildBatch int
	// ReadAhead is how many events already in the log a live handler may
	// apply in the transaction of the message it was given, after it. 256
	// by default; 1 turns it off. See handler.
	ReadAhead int
}

func (c Config) withDefaults() (Config, error) {
	if c.Pool == nil || c.Store == nil {
		return c, errors.New("projections: Config needs Pool and Store")
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.DefaultRegisterer
	}
	if c.ReadAhead <= 0 {
		c.ReadAhead = 256
	}
	if c.MaxRetries <= 0 {
		c.MaxRetries = 5
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = 50 * time.Millisecond
	}
	if c.LeaseRetry <= 0 {
		c.LeaseRetry = time.Second
	}
	if c.RebuildBatch <= 0 {
		c.RebuildBatch = 2000
	}
	return c, nil
}

// Engine runs projections.
type Engine struct {
	cfg         Config
	projections []Projection
	byName      map[string]Projection
	metrics     *engineMetrics
}

// New checks the projections and prepares an engine; Setup and Run start it.
func New(cfg Config, ps ...Projection) (*Engine, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, projections: ps, byName: map[string]Projection{}, metrics: newEngineMetrics(cfg.Registerer)}
	tables := map[string]string{}
	for _, p := range ps {
		if !nameRE.MatchString(p.Name()) {
			return nil, fmt.Errorf("projections: name %q: want lower-case letters, digits and _", p.Name())
		}
		if _, dup := e.byName[p.Name()]; dup {
			return nil, fmt.Errorf("projections: %q registered twice", p.Name())
		}
		for _, t := range p.Tables() {
			if other, dup := tables[t]; dup {
				return nil, fmt.Errorf("projections: table %q of %q is %q's already; rm view names must be unique", t, p.Name(), other)
			}
			tables[t] = p.Name()
		}
		e.byName[p.Name()] = p
	}
	return e, nil
}

// Projections lists the engine's projections.
func (e *Engine) Projections() []Projection { return e.projections }

// Setup migrates the engine's tables and gives every projection a live
// generation with its tables and rm views, if it has none yet.
func (e *Engine) Setup(ctx context.Context) error {
	if err := pgdb.Migrate(ctx, e.cfg.Pool, Migrations()); err != nil {
		return err
	}
	for _, p := range e.projections {
		err := pgx.BeginFunc(ctx, e.cfg.Pool, func(tx pgx.Tx) error {
			// Two processes starting at once must not both create generation 1.
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, leaseClass+1, leaseKey(p.Name())); err != nil {
				return err
			}
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM projection.checkpoints WHERE name = $1 AND state = 'live'`, p.Name()).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			var gen int
			if err := tx.QueryRow(ctx, `SELECT coalesce(max(generation), 0) + 1 FROM projection.checkpoints WHERE name = $1`, p.Name()).Scan(&gen); err != nil {
				return err
			}
			if err := createGeneration(ctx, tx, p, gen, "live"); err != nil {
				return err
			}
			return e.switchViews(ctx, tx, p, schemaFor(p.Name(), gen))
		})
		if err != nil {
			return fmt.Errorf("projections: set up %s: %w", p.Name(), err)
		}
	}
	return nil
}

func createGeneration(ctx context.Context, tx pgx.Tx, p Projection, gen int, state string) error {
	schema := schemaFor(p.Name(), gen)
	if _, err := tx.Exec(ctx, `CREATE SCHEMA `+pgx.Identifier{schema}.Sanitize()); err != nil {
		return err
	}
	w := newWriter(tx, schema)
	if err := p.Setup(ctx, w); err != nil {
		return err
	}
	if err := w.Flush(ctx); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `INSERT INTO projection.checkpoints (name, generation, state) VALUES ($1, $2, $3)`, p.Name(), gen, state)
	return err
}

// switchViews points p's rm views at schema and re-creates every reporting
// view (dropping an rm view cascades to the reporting views over it).
func (e *Engine) switchViews(ctx context.Context, tx pgx.Tx, p Projection, schema string) error {
	for _, t := range p.Tables() {
		view := "rm." + pgx.Identifier{t}.Sanitize()
		if _, err := tx.Exec(ctx, `DROP VIEW IF EXISTS `+view+` CASCADE`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE VIEW `+view+` AS SELECT * FROM `+pgx.Identifier{schema, t}.Sanitize()); err != nil {
			return err
		}
	}
	for _, q := range e.projections {
		for _, stmt := range q.ReportingViews() {
			// In a savepoint: a failed statement would abort the whole
			// transaction, and one failure here is expected.
			sp, err := tx.Begin(ctx)
			if err != nil {
				return err
			}
			if _, err := sp.Exec(ctx, stmt); err != nil {
				_ = sp.Rollback(ctx)
				// A view over a projection that has no live generation yet
				// waits for that projection's own setup.
				if isUndefinedTable(err) {
					continue
				}
				return fmt.Errorf("reporting view of %s: %w", q.Name(), err)
			}
			if err := sp.Commit(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// liveGeneration returns p's live generation.
func (e *Engine) liveGeneration(ctx context.Context, name string) (int, error) {
	var gen int
	err := e.cfg.Pool.QueryRow(ctx, `SELECT generation FROM projection.checkpoints WHERE name = $1 AND state = 'live'`, name).Scan(&gen)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("projections: %s has no live generation (run Setup)", name)
	}
	return gen, err
}

// Run runs every projection until ctx ends: each waits for its lease, then
// follows the log through its own Watermill router.
func (e *Engine) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, p := range e.projections {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.runProjection(ctx, p)
		}()
	}
	go e.reportLag(ctx)
	wg.Wait()
	return nil
}

func (e *Engine) runProjection(ctx context.Context, p Projection) {
	log := e.cfg.Logger.With("projection", p.Name())
	for ctx.Err() == nil {
		l, err := acquireLease(ctx, e.cfg.Pool, p.Name(), e.cfg.LeaseRetry)
		if err != nil {
			return
		}
		log.Info("projection lease taken")
		runCtx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-l.Lost():
				log.Warn("projection lease lost; stopping this runner")
				cancel()
			case <-runCtx.Done():
			}
		}()
		err = e.runRouter(runCtx, cancel, p)
		cancel()
		l.release()
		if err != nil && ctx.Err() == nil {
			log.Error("projection runner stopped; restarting", "err", err)
			sleep(ctx, e.cfg.LeaseRetry)
		}
	}
}

// errRetired stops a runner whose generation a rebuild has replaced; the
// runner then starts again on the new live generation.
var errRetired = errors.New("projections: generation retired by a rebuild")

func (e *Engine) runRouter(ctx context.Context, stop context.CancelFunc, p Projection) error {
	gen, err := e.liveGeneration(ctx, p.Name())
	if err != nil {
		return err
	}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 30 * time.Second}, watermill.NewSlogLoggerWithLevelMapping(
		e.cfg.Logger.With("projection", p.Name()), map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug}))
	if err != nil {
		return err
	}
	metrics.NewPrometheusMetricsBuilder(e.cfg.Registerer, "portico", "projection").AddPrometheusRouterMetrics(router)
	router.AddMiddleware(
		middleware.CorrelationID,
		e.poisonMiddleware(p, gen, stop),
		middleware.Retry{
			MaxRetries:      e.cfg.MaxRetries,
			InitialInterval: e.cfg.RetryInterval,
			MaxInterval:     2 * time.Second,
			Multiplier:      2,
			ShouldRetry: func(params middleware.RetryParams) bool {
				return !errors.Is(params.Err, errRetired) && !errors.Is(params.Err, context.Canceled)
			},
			Logger: watermill.NopLogger{},
		}.Middleware,
		middleware.Recoverer,
	)
	sub := &LogSubscriber{
		Store:  e.cfg.Store,
		Logger: e.cfg.Logger,
		Start: func(ctx context.Context, _ string) (eventstore.Position, error) {
			var pos int64
			err := e.cfg.Pool.QueryRow(ctx, `SELECT position FROM projection.checkpoints WHERE name = $1 AND generation = $2`, p.Name(), gen).Scan(&pos)
			return eventstore.Position(pos), err
		},
		Filter: func(string) eventstore.Filter { return eventstore.Filter{Categories: p.Categories()} },
	}
	router.AddConsumerHandler(p.Name(), p.Name(), sub, e.handler(p, gen))
	go func() {
		<-ctx.Done()
		_ = router.Close() // finishes the message in hand, then stops
	}()
	return router.Run(ctx)
}

// handler applies one event and advances the checkpoint in one transaction.
//
// Read-ahead: when more events of the projection's categories are already in
// the log after the message's, the handler applies up to ReadAhead-1 of them
// in the same transaction and moves the checkpoint past the last. Their own
// messages then find the checkpoint beyond them and are acknowledged without
// work. Under load (every PHI read appends an access record) this turns one
// durable commit per event into one per page, and the projection keeps up.
// Read-ahead only ever changes how many events share a transaction: if the
// transaction fails with read-ahead, it is retried at once without, so a bad
// event is met as its own message, with its own retries and dead letter.
func (e *Engine) handler(p Projection, gen int) message.NoPublishHandlerFunc {
	schema := schemaFor(p.Name(), gen)
	// committed is the position this handler last committed the checkpoint
	// at; only the lease holder runs it, and checkpoints only move forward.
	var committed atomic.Uint64
	return func(msg *message.Message) error {
		// Applied already by an earlier read-ahead of this handler: skip
		// without a round trip, and before decoding the message, since under
		// load most messages are such. (Anything else applied already, before
		// a restart, is caught under the checkpoint's lock below.)
		if pos, err := strconv.ParseUint(msg.Metadata.Get(MetaPosition), 10, 64); err == nil && pos <= committed.Load() {
			return nil
		}
		env, err := FromMessage(msg)
		if err != nil {
			return fmt.Errorf("projections: malformed message %s: %w", msg.UUID, err)
		}
		ctx := msg.Context()
		var last eventstore.Envelope // the last event the transaction applied
		unknown := false
		fromBuffer := false // the read-ahead came from the subscription's buffer
		apply := func(readAhead int) error {
			last, fromBuffer = eventstore.Envelope{}, false
			return e.inTx(ctx, func(tx txConn, final *pgx.Batch) (bool, error) {
				var pos int64
				var state string
				// The row lock also serialises this handler against a rebuild's
				// switch and against any second runner that slipped its lease.
				err := tx.QueryRow(ctx, `SELECT position, state FROM projection.checkpoints WHERE name = $1 AND generation = $2 FOR UPDATE`, p.Name(), gen).Scan(&pos, &state)
				if isNoRows(err) {
					return false, errRetired // a rebuild replaced this generation and dropped it
				}
				if err != nil {
					return false, err
				}
				if state == "retired" {
					return false, errRetired
				}
				if uint64(env.Position) <= uint64(pos) {
					return false, nil // applied already: effectively once
				}
				w := newWriter(tx, schema)
				if b, ok := p.(BatchApplier); ok && readAhead > 1 {
					// The message and what follows it, in one call: a
					// projection that can writes them with one statement. An
					// unknown event fails the batch, and the retry without
					// read-ahead meets it alone.
					all, buf, err := e.ahead(ctx, p, env, readAhead-1)
					fromBuffer = buf
					if err != nil {
						return false, err
					}
					all = append([]eventstore.Envelope{env}, all...)
					if err := b.ApplyBatch(ctx, w, all); err != nil {
						return false, err
					}
					last = all[len(all)-1]
				} else {
					err = p.Apply(ctx, w, env)
					if errors.Is(err, ErrUnknownEvent) {
						unknown = true
						final.Queue(`UPDATE projection.checkpoints SET position = $3, event_time = $4, updated_at = now(), skipped_unknown = skipped_unknown + 1
						WHERE name = $1 AND generation = $2`, p.Name(), gen, int64(env.Position), env.Metadata.RecordedAt)
						return true, nil
					}
					if err != nil {
						return false, err
					}
					last = env
					if readAhead > 1 {
						page, buf, err := e.ahead(ctx, p, env, readAhead-1)
						fromBuffer = buf
						if err != nil {
							return false, err
						}
						for _, next := range page {
							if err := p.Apply(ctx, w, next); err != nil {
								if errors.Is(err, ErrUnknownEvent) {
									break // counted when its own message comes
								}
								return false, err
							}
							last = next
						}
					}
				}
				// What the projection queued travels with the checkpoint and
				// the COMMIT.
				final.QueuedQueries = append(final.QueuedQueries, w.batch.QueuedQueries...)
				w.batch = &pgx.Batch{}
				final.Queue(`UPDATE projection.checkpoints SET position = $3, event_time = $4, updated_at = now(),
				halted_at = NULL, halted_position = NULL, halted_error = NULL
				WHERE name = $1 AND generation = $2`, p.Name(), gen, int64(last.Position), last.Metadata.RecordedAt)
				return true, nil
			})
		}
		err = apply(e.cfg.ReadAhead)
		if err != nil && e.cfg.ReadAhead > 1 && !errors.Is(err, errRetired) && ctx.Err() == nil {
			unknown = false
			err = apply(1)
		}
		if err == nil {
			committed.Store(max(committed.Load(), uint64(last.Position)))
			if fromBuffer {
				skipBuffered(ctx, last.Position)
			}
			e.metrics.halted.WithLabelValues(p.Name()).Set(0)
			if unknown {
				e.metrics.unknown.WithLabelValues(p.Name(), env.Type).Inc()
				e.cfg.Logger.Warn("projection skipped an unknown event type", "projection", p.Name(), "type", env.Type, "position", env.Position)
			}
		}
		return err
	}
}

// inTx runs fn in a transaction on a connection of its own, in three round
// trips where pgx.BeginFunc takes four: BEGIN travels with fn's first query,
// then the statements fn queues go together, then COMMIT. Under a steady stream of access
// records each round trip was a wake-up of a Postgres backend and of this
// process, and these were most of what a projection transaction cost. fn
// returns whether to commit; anything else rolls back.
func (e *Engine) inTx(ctx context.Context, fn func(tx txConn, final *pgx.Batch) (bool, error)) (err error) {
	conn, err := e.cfg.Pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if conn.Conn().PgConn().TxStatus() != 'I' {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if _, rerr := conn.Exec(rctx, `ROLLBACK`); rerr != nil {
				_ = conn.Conn().Close(rctx)
			}
		}
		conn.Release()
	}()
	tx := &deferredBegin{conn: conn}
	final := &pgx.Batch{}
	commit, err := fn(tx, final)
	if err != nil || !commit {
		return err
	}
	if !tx.begun {
		final = prepend(`BEGIN`, final)
	}
	if err := conn.SendBatch(ctx, final).Close(); err != nil {
		return err
	}
	// COMMIT goes alone, after the writes are through: a process that dies
	// while they run leaves a transaction that Postgres rolls back, never
	// one it commits on the strength of a COMMIT already in its socket.
	_, err = conn.Exec(ctx, `COMMIT`)
	return err
}

// deferredBegin opens its transaction with the first statement sent.
type deferredBegin struct {
	conn  *pgxpool.Conn
	begun bool
}

func (d *deferredBegin) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if !d.begun {
		if _, err := d.conn.Exec(ctx, `BEGIN`); err != nil {
			return nil, err
		}
		d.begun = true
	}
	return d.conn.Query(ctx, sql, args...)
}

func (d *deferredBegin) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if d.begun {
		return d.conn.QueryRow(ctx, sql, args...)
	}
	d.begun = true
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	b.Queue(sql, args...)
	br := d.conn.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		return errRow{err}
	}
	return batchRow{br}
}

func (d *deferredBegin) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if !d.begun {
		d.begun = true
		b = prepend(`BEGIN`, b)
	}
	return d.conn.SendBatch(ctx, b)
}

// batchRow is the one row of the query sent after BEGIN.
type batchRow struct{ br pgx.BatchResults }

func (r batchRow) Scan(dest ...any) error {
	err := r.br.QueryRow().Scan(dest...)
	if cerr := r.br.Close(); err == nil {
		err = cerr
	}
	return err
}

// prepend puts sql before b's statements.
func prepend(sql string, b *pgx.Batch) *pgx.Batch {
	out := &pgx.Batch{QueuedQueries: make([]*pgx.QueuedQuery, 0, b.Len()+1)}
	out.Queue(sql)
	out.QueuedQueries = append(out.QueuedQueries, b.QueuedQueries...)
	return out
}

// ahead are up to max events of p's categories after env for the
// read-ahead: those its subscription has fetched already or, when it has
// none, a read of the log.
func (e *Engine) ahead(ctx context.Context, p Projection, env eventstore.Envelope, max int) (page []eventstore.Envelope, fromBuffer bool, err error) {
	if page := buffered(ctx, max); len(page) > 0 {
		return page, true, nil
	}
	page, err = e.cfg.Store.ReadAll(ctx, env.Position, max, eventstore.Filter{Categories: p.Categories()})
	return page, false, err
}

// poisonMiddleware decides what happens to an event that failed every retry:
// an ordinary projection records it in the dead-letter table, together with
// the checkpoint moving past it, and goes on; a critical one halts on it.
func (e *Engine) poisonMiddleware(p Projection, gen int, stop context.CancelFunc) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			out, err := h(msg)
			if err == nil {
				return out, nil
			}
			if errors.Is(err, errRetired) {
				stop()
				return nil, err
			}
			// Failing because we are shutting down or lost the lease says
			// nothing about the event: leave it for the next runner.
			if msg.Context().Err() != nil {
				return nil, err
			}
			env, decodeErr := FromMessage(msg)
			if decodeErr != nil {
				return nil, err
			}
			ctx := context.WithoutCancel(msg.Context())
			if p.Critical() {
				e.metrics.halted.WithLabelValues(p.Name()).Set(1)
				e.cfg.Logger.Error("critical projection halted: it will not skip this event", "projection", p.Name(), "position", env.Position, "type", env.Type, "err", err)
				_, _ = e.cfg.Pool.Exec(ctx, `UPDATE projection.checkpoints SET halted_at = coalesce(halted_at, now()), halted_position = $3, halted_error = $4
					WHERE name = $1 AND generation = $2`, p.Name(), gen, int64(env.Position), err.Error())
				return nil, err // nacked: sent again after a backoff, never skipped
			}
			dlErr := pgx.BeginFunc(ctx, e.cfg.Pool, func(tx pgx.Tx) error {
				var pos int64
				if err := tx.QueryRow(ctx, `SELECT position FROM projection.checkpoints WHERE name = $1 AND generation = $2 FOR UPDATE`, p.Name(), gen).Scan(&pos); err != nil {
					return err
				}
				if uint64(env.Position) <= uint64(pos) {
					return nil
				}
				if _, err := tx.Exec(ctx, `INSERT INTO projection.dead_letters (name, generation, position, event_id, stream, type, error)
					VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (name, generation, position) DO NOTHING`,
					p.Name(), gen, int64(env.Position), env.ID, env.Stream, env.Type, err.Error()); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, `UPDATE projection.checkpoints SET position = $3, event_time = $4, updated_at = now() WHERE name = $1 AND generation = $2`,
					p.Name(), gen, int64(env.Position), env.Metadata.RecordedAt)
				return err
			})
			if dlErr != nil {
				return nil, errors.Join(err, dlErr) // nacked: try again later
			}
			e.metrics.deadLetters.WithLabelValues(p.Name()).Inc()
			e.cfg.Logger.Error("projection dead-lettered an event and went on", "projection", p.Name(), "position", env.Position, "type", env.Type, "err", err)
			return nil, nil
		}
	}
}

func isUndefinedTable(err error) bool {
	var pgErr interface{ SQLState() string }
	return errors.As(err, &pgErr) && pgErr.SQLState() == "42P01"
}
