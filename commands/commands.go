// Package commands is Portico's write side: one small handler per command.
// Each loads the aggregate it needs from the event store, lets the domain
// decide, and appends what the domain recorded with the version it loaded, so
// a concurrent change surfaces as a conflict instead of being overwritten.
package commands

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/internal/linktoken"
	"github.com/portico-health/portico/internal/sessions"
)

// Actor is who issues a command.
type Actor struct {
	ID       string
	Kind     string // staff, portal, system, stripe
	Role     string
	ClinicID uuid.UUID
}

// System is the actor of operator tools such as portalctl.
func System(tool string) Actor { return Actor{ID: tool, Kind: "system"} }

// Meta travels with a command into every event it causes.
type Meta struct {
	Actor         Actor
	CorrelationID string
	CausationID   string
	// CommandID identifies this command; event ids derive from it, so a
	// retried command (same Idempotency-Key) writes nothing twice.
	CommandID string
}

func (m Meta) withDefaults() Meta {
	if m.CommandID == "" {
		m.CommandID = uuid.NewString()
	}
	if m.CorrelationID == "" {
		m.CorrelationID = m.CommandID
	}
	return m
}

func (m Meta) event(clinicID uuid.UUID, now time.Time) eventstore.Metadata {
	md := eventstore.Metadata{
		ActorID:       m.Actor.ID,
		ActorKind:     m.Actor.Kind,
		ActorRole:     m.Actor.Role,
		CorrelationID: m.CorrelationID,
		CausationID:   m.CausationID,
		CommandID:     m.CommandID,
		RecordedAt:    now,
	}
	if clinicID != uuid.Nil {
		md.ClinicID = clinicID.String()
	}
	return md
}

// Handlers runs commands. Each command is a method in a file of its own name.
type Handlers struct {
	store    eventstore.Store
	creds    *credentials
	sessions *sessions.Store
	tokens   *linktoken.Keys
	now      func() time.Time
	// cards starts card payments (Stripe); nil when none is configured.
	cards CardPayments
}

// Option changes a default of New.
type Option func(*Handlers)

// WithClock sets the clock that decides expiry (invitations, reset links,
// the end of sessions) and stamps events. Tests move it by hand.
func WithClock(now func() time.Time) Option {
	return func(h *Handlers) {
		if now != nil {
			h.now = func() time.Time { return now().UTC() }
		}
	}
}

// WithLinkKeys sets the keys of emailed links (invitations, password
// resets). Without them those commands refuse every link.
func WithLinkKeys(k *linktoken.Keys) Option { return func(h *Handlers) { h.tokens = k } }

// New makes the command handlers over an event store and the database that
// keeps credentials and sessions.
func New(store eventstore.Store, pool *pgxpool.Pool, opts ...Option) *Handlers {
	h := &Handlers{store: store, creds: &credentials{pool: pool}, now: func() time.Time { return time.Now().UTC() }}
	for _, o := range opts {
		o(h)
	}
	h.sessions = sessions.New(pool, sessions.WithClock(h.now))
	return h
}

// Now is the handlers' clock.
func (h *Handlers) Now() time.Time { return h.now() }

// LinkKeys are the keys of emailed links, for the mailer that writes them.
func (h *Handlers) LinkKeys() *linktoken.Keys { return h.tokens }

const readPage = 500

// load replays a stream into agg. A missing stream leaves agg new.
func (h *Handlers) load(ctx context.Context, stream string, agg domain.Aggregate) error {
	root := agg.AggregateRoot()
	for from := int64(1); ; {
		page, err := h.store.ReadStream(ctx, stream, from, readPage)
		if err != nil {
			return err
		}
		for _, env := range page {
			e, err := domain.Decode(env.Type, env.Data)
			if err != nil {
				return fmt.Errorf("load %s: %w", stream, err)
			}
			agg.Apply(e)
			root.Loaded(env.Version)
		}
		if len(page) < readPage {
			return nil
		}
		from = page[len(page)-1].Version + 1
	}
}

// save appends what agg recorded since it was loaded, expecting the stream to
// be still at the loaded version.
func (h *Handlers) save(ctx context.Context, meta Meta, clinicID uuid.UUID, stream string, agg domain.Aggregate) error {
	root := agg.AggregateRoot()
	pending := root.Pending()
	if len(pending) == 0 {
		return nil
	}
	md := meta.event(clinicID, h.now())
	events := make([]eventstore.EventData, len(pending))
	for i, e := range pending {
		data, err := marshal(e)
		if err != nil {
			return err
		}
		events[i] = eventstore.EventData{
			// The stream is part of the seed: one command may write to several streams.
			ID:            eventstore.DeterministicID(meta.CommandID+"/"+stream, int(root.Version())+i),
			Type:          e.EventType(),
			SchemaVersion: 1,
			Data:          data,
			Metadata:      md,
		}
	}
	res, err := h.store.Append(ctx, stream, eventstore.Exactly(root.Version()), events...)
	if errors.Is(err, eventstore.ErrConflict) || (errors.Is(err, eventstore.ErrInvalidEvent) && h.streamMoved(ctx, stream, root.Version())) {
		// An id "stored elsewhere" after the stream moved on is a conflict
		// too: a concurrent run of the same command that loaded another
		// version and decided other events (a Stripe refund reconciled by
		// one delivery, recorded alone by its duplicate) stored some of
		// these ids. Deciding again on the new version resolves it.
		return domain.Conflict("concurrent_update", "someone else changed this at the same time; try again")
	}
	if err != nil {
		return err
	}
	root.Saved(res.Version)
	return nil
}

// streamMoved reports whether stream has events beyond version.
func (h *Handlers) streamMoved(ctx context.Context, stream string, version int64) bool {
	page, err := h.store.ReadStream(ctx, stream, version+1, 1)
	return err == nil && len(page) > 0
}

// update loads an aggregate, lets decide record events on it and saves
// them, loading again and deciding again when someone else wrote to the
// stream in between. Use it where a conflict means "try again" rather than
// "refuse" (an account's stream is written by staff and by its owner).
func (h *Handlers) update(ctx context.Context, meta Meta, clinicID uuid.UUID, stream string, fresh func() domain.Aggregate, decide func(domain.Aggregate) error) (domain.Aggregate, error) {
	for attempt := 0; ; attempt++ {
		agg := fresh()
		if err := h.load(ctx, stream, agg); err != nil {
			return nil, err
		}
		if err := decide(agg); err != nil {
			return nil, err
		}
		err := h.save(ctx, meta, clinicID, stream, agg)
		if err == nil {
			return agg, nil
		}
		if de, ok := domain.AsError(err); !ok || de.Code != "concurrent_update" || attempt == 4 {
			return nil, err
		}
	}
}
