package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/eventstore/pgstore"
)

// A group commit is first tried in one round trip on the bet that every
// append in it succeeds; when one does not, the group is decided append by
// append. Whatever the grouping, a stale expected version and a re-sent
// append must not cost the others their events.
func TestGroupWithAConflictAndARetryCommitsTheRest(t *testing.T) {
	ctx := context.Background()
	s, _ := pgstore.OpenTestStore(t, pgstore.Config{})

	ev := func() eventstore.EventData {
		return eventstore.EventData{ID: uuid.New(), Type: "Happened", Data: []byte(`{}`)}
	}
	if _, err := s.Append(ctx, "thing-contested", eventstore.NoStream(), ev(), ev()); err != nil {
		t.Fatal(err)
	}
	resent := ev()
	first, err := s.Append(ctx, "thing-resent", eventstore.NoStream(), resent)
	if err != nil {
		t.Fatal(err)
	}

	for round := range 20 {
		var wg sync.WaitGroup
		const n = 16
		errs := make([]error, n+2)
		results := make([]eventstore.AppendResult, n+2)
		for i := range n {
			wg.Go(func() {
				stream := fmt.Sprintf("thing-%d-%d", round, i)
				results[i], errs[i] = s.Append(ctx, stream, eventstore.NoStream(), ev(), ev(), ev())
			})
		}
		wg.Go(func() { // stale: the stream is at version 2
			results[n], errs[n] = s.Append(ctx, "thing-contested", eventstore.Exactly(1), ev())
		})
		wg.Go(func() { // a retry of an append that committed long ago
			results[n+1], errs[n+1] = s.Append(ctx, "thing-resent", eventstore.NoStream(), resent)
		})
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("round %d: append %d: %v", round, i, errs[i])
			}
			if results[i].Version != 3 {
				t.Fatalf("round %d: append %d ended at version %d, want 3", round, i, results[i].Version)
			}
		}
		var conflict *eventstore.ConflictError
		if !errors.As(errs[n], &conflict) {
			t.Fatalf("round %d: stale append: %v, want a conflict", round, errs[n])
		}
		if errs[n+1] != nil || results[n+1] != first {
			t.Fatalf("round %d: re-sent append: %+v, %v; want %+v", round, results[n+1], errs[n+1], first)
		}
	}

	// Every committed event sits at its own gap-free position.
	all, err := s.ReadAll(ctx, 0, 10_000, eventstore.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if want := 2 + 1 + 20*16*3; len(all) != want {
		t.Fatalf("%d events in the log, want %d", len(all), want)
	}
	for i, e := range all {
		if int64(e.Position) != int64(i+1) {
			t.Fatalf("event %d at position %d: the log has a gap", i, e.Position)
		}
	}
}
