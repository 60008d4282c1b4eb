package pgstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/eventstore/pgstore"
)

// The projections' read-ahead applies what Buffered shows, and then skips
// those events when Next returns them: Buffered must show exactly the events
// Next returns next, in order, without consuming any.
func TestBufferedShowsWhatNextReturnsNext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, _ := pgstore.OpenTestStore(t, pgstore.Config{ReadBatch: 4})
	for i := range 10 {
		cat := "wanted"
		if i%3 == 0 {
			cat = "other"
		}
		if _, err := s.Append(ctx, cat+"-"+uuid.NewString(), eventstore.Any(), eventstore.EventData{ID: uuid.New(), Type: "Happened"}); err != nil {
			t.Fatal(err)
		}
	}
	sub, err := s.Subscribe(ctx, eventstore.Start, eventstore.Filter{Categories: []string{"wanted"}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	l, ok := sub.(eventstore.Lookahead)
	if !ok {
		t.Fatal("the Postgres subscription offers no lookahead")
	}
	var got []eventstore.Position
	for len(got) < 6 {
		e, err := sub.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e.Position)
		ahead := l.Buffered(100)
		again := l.Buffered(100)
		if len(ahead) != len(again) {
			t.Fatalf("Buffered consumed events: %d, then %d", len(ahead), len(again))
		}
		if len(ahead) > 0 && ahead[0].Position <= e.Position {
			t.Fatalf("Buffered after %d starts at %d", e.Position, ahead[0].Position)
		}
		if capped := l.Buffered(1); len(ahead) > 0 && (len(capped) != 1 || capped[0].Position != ahead[0].Position) {
			t.Fatalf("Buffered(1) = %v, want the first of %v", capped, ahead)
		}
		for _, b := range ahead {
			next, err := sub.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if next.Position != b.Position || next.ID != b.ID {
				t.Fatalf("Next returned %d, Buffered had shown %d", next.Position, b.Position)
			}
			got = append(got, next.Position)
		}
	}
	// Positions 2, 3, 5, 6, 8, 9 are the "wanted" ones (every third is other).
	want := []eventstore.Position{2, 3, 5, 6, 8, 9}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("positions %v, want %v", got, want)
		}
	}
}

// When the read-ahead has applied what Buffered showed, Skip drops those
// events, so that they never travel as messages only to be skipped; Next
// then goes on after them, reading the log again once the buffer is spent.
func TestSkipDropsTheAppliedEventsAndNextGoesOn(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, _ := pgstore.OpenTestStore(t, pgstore.Config{ReadBatch: 4})
	for range 10 {
		if _, err := s.Append(ctx, "wanted-"+uuid.NewString(), eventstore.Any(), eventstore.EventData{ID: uuid.New(), Type: "Happened"}); err != nil {
			t.Fatal(err)
		}
	}
	sub, err := s.Subscribe(ctx, eventstore.Start, eventstore.Filter{Categories: []string{"wanted"}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	l := sub.(eventstore.Lookahead)
	first, err := sub.Next(ctx) // position 1; 2, 3 and 4 are buffered
	if err != nil {
		t.Fatal(err)
	}
	if ahead := l.Buffered(100); len(ahead) != 3 || ahead[0].Position != 2 {
		t.Fatalf("after %d Buffered shows %v, want positions 2 to 4", first.Position, ahead)
	}
	l.Skip(3) // applied 2 and 3 with 1
	next, err := sub.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if next.Position != 4 {
		t.Fatalf("after Skip(3) Next returned %d, want 4", next.Position)
	}
	l.Skip(4) // nothing buffered up to 4 any more: no effect
	l.Skip(2)
	var got []eventstore.Position
	for range 6 {
		e, err := sub.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e.Position)
	}
	for i, p := range got {
		if p != eventstore.Position(5+i) {
			t.Fatalf("after the buffer Next returned %v, want 5 to 10", got)
		}
	}
}
