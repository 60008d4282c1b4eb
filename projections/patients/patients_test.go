package patients_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/portico-health/portico/domain/patient"
	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/eventstore/pgstore"
	"github.com/portico-health/portico/internal/pgdb"
	"github.com/portico-health/portico/internal/testpg"
	"github.com/portico-health/portico/projections"
	"github.com/portico-health/portico/projections/patients"
)

// A rebuild writes whole pages with ApplyBatch; the live path applies event
// by event with Apply. Whatever the page size, both must leave the same rows,
// also for what the aggregate never records but a log may hold: a patient
// registered twice, a contact added twice.
func TestBatchedRebuildEqualsLiveEventByEvent(t *testing.T) {
	ctx := context.Background()
	pool, err := pgdb.Open(ctx, testpg.NewURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	store, err := pgstore.Open(ctx, pool, pgstore.Config{PollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	engine := func(batch int) *projections.Engine {
		e, err := projections.New(projections.Config{Pool: pool, Store: store, Logger: slog.New(slog.DiscardHandler),
			Registerer: prometheus.NewRegistry(), LeaseRetry: 100 * time.Millisecond, RebuildBatch: batch}, patients.Projection{})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Setup(ctx); err != nil {
			t.Fatal(err)
		}
		return e
	}

	clinic := uuid.New()
	appendEvents := func(stream string, events ...any) eventstore.AppendResult {
		t.Helper()
		var data []eventstore.EventData
		for _, e := range events {
			b, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			typ := e.(interface{ EventType() string }).EventType()
			data = append(data, eventstore.EventData{ID: uuid.New(), Type: typ, Data: b,
				Metadata: eventstore.Metadata{ClinicID: clinic.String(), ActorKind: "staff"}})
		}
		res, err := store.Append(ctx, stream, eventstore.Any(), data...)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	registered := func(id uuid.UUID, first, email string) patient.Registered {
		return patient.Registered{PatientID: id, ClinicID: clinic, FirstName: first, LastName: "Lee", DateOfBirth: "2012-03-04", Email: email}
	}
	contact := func(p, c uuid.UUID, name string) patient.ContactAdded {
		return patient.ContactAdded{PatientID: p, ContactID: c, Name: name, Relationship: "parent", Email: name + "@example.org"}
	}

	var last eventstore.AppendResult
	for i := range 40 {
		id := uuid.New()
		stream := eventstore.StreamName(patient.Category, id.String())
		email := ""
		if i%3 != 0 {
			email = fmt.Sprintf("p%d@example.org", i)
		}
		events := []any{registered(id, fmt.Sprintf("P%d", i), email)}
		for c := range i % 4 {
			events = append(events, contact(id, uuid.New(), fmt.Sprintf("c%d-%d", i, c)))
		}
		switch i % 10 {
		case 3: // registered again, at a higher version, right after
			events = append(events, registered(id, "Again", "again@example.org"))
		case 7: // one contact added twice: the first stays
			c := uuid.New()
			events = append(events, contact(id, c, "first"), contact(id, c, "second"))
		}
		last = appendEvents(stream, events...)
	}

	// The live path.
	live := engine(300)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = live.Run(runCtx); close(done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var pos int64
		if err := pool.QueryRow(ctx, `SELECT position FROM projection.checkpoints WHERE name = 'patients' AND state = 'live'`).Scan(&pos); err != nil {
			t.Fatal(err)
		}
		if pos >= int64(last.Position) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("live projection stuck at %d of %d", pos, last.Position)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	<-done
	if _, err := pool.Exec(ctx, `CREATE TABLE public.patients_live AS SELECT * FROM rm.patients;
		CREATE TABLE public.contacts_live AS SELECT * FROM rm.patient_contacts`); err != nil {
		t.Fatal(err)
	}

	// Rebuilds with pages that hold everything, and pages that cut between
	// the duplicates and around them.
	for _, batch := range []int{2000, 2, 3, 7} {
		res, err := engine(batch).Rebuild(ctx, "patients", nil)
		if err != nil {
			t.Fatalf("rebuild in pages of %d: %v", batch, err)
		}
		if res.Position != uint64(last.Position) {
			t.Fatalf("rebuild in pages of %d stopped at %d, want %d", batch, res.Position, last.Position)
		}
		for _, c := range []struct{ live, rebuilt string }{
			{"public.patients_live", "rm.patients"},
			{"public.contacts_live", "rm.patient_contacts"},
		} {
			var onlyLive, onlyRebuilt, n int64
			err := pool.QueryRow(ctx, fmt.Sprintf(`SELECT
				(SELECT count(*) FROM (SELECT * FROM %[1]s EXCEPT ALL SELECT * FROM %[2]s) d),
				(SELECT count(*) FROM (SELECT * FROM %[2]s EXCEPT ALL SELECT * FROM %[1]s) d),
				(SELECT count(*) FROM %[2]s)`, c.live, c.rebuilt)).Scan(&onlyLive, &onlyRebuilt, &n)
			if err != nil {
				t.Fatal(err)
			}
			if onlyLive != 0 || onlyRebuilt != 0 || n == 0 {
				t.Fatalf("pages of %d: %s has %d rows, %d only live, %d only rebuilt", batch, c.rebuilt, n, onlyLive, onlyRebuilt)
			}
		}
	}
	var first, again, kept string
	if err := pool.QueryRow(ctx, `SELECT
			(SELECT count(*) FILTER (WHERE first_name = 'Again') FROM rm.patients)::text,
			(SELECT count(*) FILTER (WHERE email IS NULL) FROM rm.patients)::text,
			(SELECT string_agg(name, ',' ORDER BY name) FROM rm.patient_contacts WHERE name IN ('first', 'second'))`).Scan(&again, &first, &kept); err != nil {
		t.Fatal(err)
	}
	if again != "4" || first != "12" || kept != "first,first,first,first" {
		t.Fatalf("re-registered %s (want 4), without email %s (want 12), twice-added contacts kept %q (want first x4)", again, first, kept)
	}

	// An event type the projection does not know fails the rebuild.
	appendEvents(eventstore.StreamName(patient.Category, uuid.NewString()), unknownEvent{})
	if _, err := engine(2000).Rebuild(ctx, "patients", nil); !errors.Is(err, projections.ErrUnknownEvent) {
		t.Fatalf("rebuild over an unknown event = %v, want ErrUnknownEvent", err)
	}
}

type unknownEvent struct{}

func (unknownEvent) EventType() string { return "PatientTeleported" }
