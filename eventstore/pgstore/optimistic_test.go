package pgstore

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/portico-health/portico/eventstore"
)

// The one-statement commit is the fast path every group tries first; the
// checked path behind it would hide a statement that always failed, so it is
// pinned here: a group commits in it with the right versions and positions,
// and a stale expected version makes it fail without writing anything.
func TestOneStatementCommitDecidesAGroup(t *testing.T) {
	ctx := context.Background()
	s, _ := OpenTestStore(t, Config{})
	ev := func() eventstore.EventData {
		return eventstore.EventData{ID: uuid.New(), Type: "Happened", Data: []byte(`{"n":1}`)}
	}
	if _, err := s.Append(ctx, "thing-a", eventstore.NoStream(), ev(), ev()); err != nil {
		t.Fatal(err)
	}
	group := func(reqs ...*appendRequest) ([]appendResponse, error) {
		for _, r := range reqs {
			r.ctx = ctx
			for i := range r.events {
				r.events[i].Metadata.RecordedAt = r.events[i].Metadata.RecordedAt.UTC()
			}
		}
		return s.commitOptimistic(ctx, reqs)
	}
	res, err := group(
		&appendRequest{stream: "thing-a", expected: eventstore.Exactly(2), events: []eventstore.EventData{ev()}},
		&appendRequest{stream: "thing-b", expected: eventstore.NoStream(), events: []eventstore.EventData{ev(), ev()}},
		&appendRequest{stream: "other-c", expected: eventstore.Any(), events: []eventstore.EventData{ev()}},
	)
	if err != nil {
		t.Fatalf("the one-statement commit failed: %v", err)
	}
	want := []eventstore.AppendResult{{Version: 3, Position: 3}, {Version: 2, Position: 5}, {Version: 1, Position: 6}}
	for i, r := range res {
		if r.err != nil || r.result != want[i] {
			t.Fatalf("append %d: %+v, %v; want %+v", i, r.result, r.err, want[i])
		}
	}
	b, err := s.ReadStream(ctx, "thing-b", 1, 10)
	if err != nil || len(b) != 2 || b[0].Position != 4 || b[1].Version != 2 || string(b[1].Data) != `{"n":1}` {
		t.Fatalf("thing-b reads back as %+v, %v", b, err)
	}

	if _, err := group(
		&appendRequest{stream: "thing-d", expected: eventstore.NoStream(), events: []eventstore.EventData{ev()}},
		&appendRequest{stream: "thing-a", expected: eventstore.Exactly(2), events: []eventstore.EventData{ev()}},
	); err == nil {
		t.Fatal("a stale expected version committed")
	}
	if d, _ := s.ReadStream(ctx, "thing-d", 1, 10); len(d) != 0 {
		t.Fatalf("the failed group left %d events of its other append", len(d))
	}
	if head, err := s.Head(ctx); err != nil || head != 6 {
		t.Fatalf("head %d, %v after the failed group; want 6", head, err)
	}
}
