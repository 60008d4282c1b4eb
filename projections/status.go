package projections

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portico-health/portico/eventstore"
)

type engineMetrics struct {
	lagEvents   *prometheus.GaugeVec
	lagSeconds  *prometheus.GaugeVec
	halted      *prometheus.GaugeVec
	deadLetters *prometheus.CounterVec
	unknown     *prometheus.CounterVec
}

func newEngineMetrics(r prometheus.Registerer) *engineMetrics {
	m := &engineMetrics{
		lagEvents: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "portico", Subsystem: "projection", Name: "lag_events",
			Help: "Events of the projection's categories committed but not yet applied."}, []string{"projection"}),
		lagSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "portico", Subsystem: "projection", Name: "lag_seconds",
			Help: "Age of the oldest event not yet applied (0 when caught up)."}, []string{"projection"}),
		halted: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "portico", Subsystem: "projection", Name: "halted",
			Help: "1 while a critical projection is halted on an event it cannot apply."}, []string{"projection"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "portico", Subsystem: "projection", Name: "dead_letters_total",
			Help: "Events a projection recorded as dead letters and skipped."}, []string{"projection"}),
		unknown: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "portico", Subsystem: "projection", Name: "unknown_events_total",
			Help: "Events of unknown type a projection skipped live."}, []string{"projection", "type"}),
	}
	m.lagEvents = register(r, m.lagEvents)
	m.lagSeconds = register(r, m.lagSeconds)
	m.halted = register(r, m.halted)
	m.deadLetters = register(r, m.deadLetters)
	m.unknown = register(r, m.unknown)
	return m
}

// register reuses a collector registered before (several engines in one
// process, as in tests).
func register[C prometheus.Collector](r prometheus.Registerer, c C) C {
	if err := r.Register(c); err != nil {
		if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
			return are.ExistingCollector.(C)
		}
	}
	return c
}

// Status is one projection's health, as GET /api/v1/projections and
// `portalctl projections status` show it.
type Status struct {
	Name       string     `json:"name"`
	Generation int        `json:"generation"`
	Position   uint64     `json:"position"`
	LagEvents  int64      `json:"lag_events"` // capped at lagCap; -1 if unknown
	LagSeconds float64    `json:"lag_seconds"`
	State      string     `json:"state"` // running, catching_up, halted, rebuilding, stopped
	Running    bool       `json:"running"`
	Critical   bool       `json:"critical"`
	Dead       int64      `json:"dead_letters"`
	Skipped    int64      `json:"skipped_unknown"`
	UpdatedAt  time.Time  `json:"updated_at"`
	HaltedAt   *time.Time `json:"halted_at,omitempty"`
	HaltedErr  string     `json:"halted_error,omitempty"`
	Rebuilding *Rebuild   `json:"rebuilding,omitempty"`
}

// Rebuild is a generation being built beside the live one.
type Rebuild struct {
	Generation int    `json:"generation"`
	Position   uint64 `json:"position"`
}

// Counter is what a store offers to count lag exactly (the Postgres store
// does: its positions are gap-free). Without it, lag is counted by reading,
// up to lagCap.
type Counter interface {
	CountAfter(ctx context.Context, after eventstore.Position, filter eventstore.Filter) (int64, error)
}

const lagCap = 100000

// catchingUpAfter is the lag beyond which a running projection is said to be
// catching up rather than live.
const catchingUpAfter = 1000

// lag measures how far a projection is behind the log.
func (e *Engine) lag(ctx context.Context, p Projection, pos eventstore.Position) (int64, float64, error) {
	filter := eventstore.Filter{Categories: p.Categories()}
	first, err := e.cfg.Store.ReadAll(ctx, pos, 1, filter)
	if err != nil || len(first) == 0 {
		return 0, 0, err
	}
	seconds := time.Since(first[0].Metadata.RecordedAt).Seconds()
	if c, ok := e.cfg.Store.(Counter); ok {
		n, err := c.CountAfter(ctx, pos, filter)
		return min(n, lagCap), seconds, err
	}
	var n int64
	after := pos
	for n < lagCap {
		page, err := e.cfg.Store.ReadAll(ctx, after, 1000, filter)
		if err != nil {
			return -1, seconds, err
		}
		n += int64(len(page))
		if len(page) < 1000 {
			break
		}
		after = page[len(page)-1].Position
	}
	return n, seconds, nil
}

// Status reports every projection.
func (e *Engine) Status(ctx context.Context) ([]Status, error) {
	out := make([]Status, 0, len(e.projections))
	for _, p := range e.projections {
		s := Status{Name: p.Name(), Critical: p.Critical(), LagEvents: -1}
		rows, err := e.cfg.Pool.Query(ctx, `SELECT generation, position, state, updated_at, skipped_unknown, halted_at, coalesce(halted_error, '')
			FROM projection.checkpoints WHERE name = $1 AND state <> 'retired' ORDER BY generation`, p.Name())
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var gen int
			var pos, skipped int64
			var state, haltedErr string
			var updated time.Time
			var halted *time.Time
			if err := rows.Scan(&gen, &pos, &state, &updated, &skipped, &halted, &haltedErr); err != nil {
				rows.Close()
				return nil, err
			}
			if state == "rebuilding" {
				s.Rebuilding = &Rebuild{Generation: gen, Position: uint64(pos)}
				continue
			}
			s.Generation, s.Position, s.UpdatedAt, s.Skipped, s.HaltedAt, s.HaltedErr = gen, uint64(pos), updated, skipped, halted, haltedErr
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if err := e.cfg.Pool.QueryRow(ctx, `SELECT count(*) FROM projection.dead_letters WHERE name = $1 AND NOT resolved`, p.Name()).Scan(&s.Dead); err != nil {
			return nil, err
		}
		if err := e.cfg.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND classid = $1 AND objid = $2 AND objsubid = 2 AND granted)`,
			uint32(leaseClass), uint32(leaseKey(p.Name()))).Scan(&s.Running); err != nil {
			return nil, err
		}
		s.LagEvents, s.LagSeconds, err = e.lag(ctx, p, eventstore.Position(s.Position))
		if err != nil {
			return nil, err
		}
		switch {
		case s.HaltedAt != nil:
			s.State = "halted"
		case s.Rebuilding != nil:
			s.State = "rebuilding"
		case !s.Running:
			s.State = "stopped"
		case s.LagEvents > catchingUpAfter:
			s.State = "catching_up"
		default:
			s.State = "running"
		}
		out = append(out, s)
	}
	return out, nil
}

// Ready fails when a critical projection is halted (for /readyz).
func (e *Engine) Ready(ctx context.Context) error {
	var name string
	err := e.cfg.Pool.QueryRow(ctx, `SELECT name FROM projection.checkpoints WHERE state = 'live' AND halted_at IS NOT NULL LIMIT 1`).Scan(&name)
	if err == nil {
		if p, ok := e.byName[name]; ok && p.Critical() {
			return &haltedError{name}
		}
		return nil
	}
	if isNoRows(err) {
		return nil
	}
	return err
}

type haltedError struct{ name string }

func (h *haltedError) Error() string { return "critical projection " + h.name + " is halted" }

// reportLag keeps the lag gauges fresh for Prometheus.
func (e *Engine) reportLag(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, p := range e.projections {
			var pos int64
			if err := e.cfg.Pool.QueryRow(ctx, `SELECT position FROM projection.checkpoints WHERE name = $1 AND state = 'live'`, p.Name()).Scan(&pos); err != nil {
				continue
			}
			n, secs, err := e.lag(ctx, p, eventstore.Position(pos))
			if err != nil {
				continue
			}
			e.metrics.lagEvents.WithLabelValues(p.Name()).Set(float64(n))
			e.metrics.lagSeconds.WithLabelValues(p.Name()).Set(secs)
		}
	}
}
