// Package contract is the one test suite every eventstore.Store implementation
// runs. A store passes it or it is not a Portico event store.
//
// The suite never assumes the log is empty: each test writes to streams of a
// category of its own and reads the global log filtered to that category, so
// it can run against a shared EventStoreDB server as well as a fresh database.
package contract

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/portico-health/portico/eventstore"
)

// Factory opens a store for one test. The suite closes it.
type Factory func(t *testing.T) eventstore.Store

// Options sizes the heavier tests and says what a store promises beyond the port.
type Options struct {
	// Writers and EventsPerWriter size the concurrent-writers test, which
	// checks that a subscriber sees every committed event exactly once while
	// writers commit out of order. Zero picks 20 × 500.
	Writers         int
	EventsPerWriter int
	// OpenPeer, if set, opens another handle on the same log as primary (as a
	// second process would), so concurrent writers commit through separate
	// connections and transactions. Nil shares primary.
	OpenPeer func(t *testing.T, primary eventstore.Store) eventstore.Store
	// GapFreePositions: the store promises that positions are consecutive, so
	// a refused append burns none.
	GapFreePositions bool
}

func (o Options) withDefaults() Options {
	if o.Writers <= 0 {
		o.Writers = 20
	}
	if o.EventsPerWriter <= 0 {
		o.EventsPerWriter = 500
	}
	return o
}

// Run runs the whole suite against stores made by newStore.
func Run(t *testing.T, newStore Factory, opts Options) {
	opts = opts.withDefaults()
	open := func(t *testing.T) eventstore.Store {
		s := newStore(t)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	t.Run("AppendReadRoundTrip", func(t *testing.T) { testRoundTrip(t, open(t)) })
	t.Run("MissingStreamReadsEmpty", func(t *testing.T) { testMissingStream(t, open(t)) })
	t.Run("ReadStreamFromVersion", func(t *testing.T) { testReadStreamFrom(t, open(t)) })
	t.Run("ExpectedVersions", func(t *testing.T) { testExpectedVersions(t, open(t), opts) })
	t.Run("InvalidAppendsAreRefused", func(t *testing.T) { testInvalid(t, open(t)) })
	t.Run("ConcurrentAppendersOneStream", func(t *testing.T) { testConcurrentOneStream(t, open(t)) })
	t.Run("IdempotentReappend", func(t *testing.T) { testIdempotent(t, open(t)) })
	t.Run("GlobalFeedOrder", func(t *testing.T) { testGlobalOrder(t, open(t)) })
	t.Run("ResumeFromPosition", func(t *testing.T) { testResume(t, open(t)) })
	t.Run("SubscriptionSeesLiveAppends", func(t *testing.T) { testLive(t, open(t)) })
	t.Run("ConcurrentWritersSubscriberSeesEveryEventOnce", func(t *testing.T) { testConcurrentWriters(t, open(t), opts) })
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// newCategory gives a test stream names no other test or run shares.
func newCategory() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "ct" + hex.EncodeToString(b)
}

func event(typ string, n int) eventstore.EventData {
	return eventstore.EventData{
		ID:            uuid.New(),
		Type:          typ,
		SchemaVersion: 1,
		Data:          json.RawMessage(fmt.Sprintf(`{"n":%d,"note":"é ✓"}`, n)),
		Metadata: eventstore.Metadata{
			ClinicID:      "c1",
			ActorID:       "a1",
			ActorKind:     "staff",
			ActorRole:     "admin",
			CorrelationID: "corr",
			CausationID:   "cause",
			CommandID:     "cmd",
			RecordedAt:    time.Date(2026, 11, 26, 10, 0, 0, 123456000, time.UTC),
		},
	}
}

func events(typ string, n int) []eventstore.EventData {
	out := make([]eventstore.EventData, n)
	for i := range out {
		out[i] = event(typ, i)
	}
	return out
}

func mustAppend(t *testing.T, s eventstore.Store, stream string, exp eventstore.ExpectedVersion, evs ...eventstore.EventData) eventstore.AppendResult {
	t.Helper()
	res, err := s.Append(ctxFor(t, 30*time.Second), stream, exp, evs...)
	if err != nil {
		t.Fatalf("append %d events to %s (expected %s): %v", len(evs), stream, exp, err)
	}
	return res
}

func readStream(t *testing.T, s eventstore.Store, stream string) []eventstore.Envelope {
	t.Helper()
	got, err := s.ReadStream(ctxFor(t, 30*time.Second), stream, 1, 100000)
	if err != nil {
		t.Fatalf("read %s: %v", stream, err)
	}
	return got
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

func testRoundTrip(t *testing.T, s eventstore.Store) {
	stream := eventstore.StreamName(newCategory(), uuid.NewString())
	in := events("ThingHappened", 3)
	in[2].SchemaVersion = 2
	res := mustAppend(t, s, stream, eventstore.NoStream(), in...)
	if res.Version != 3 {
		t.Fatalf("version after 3 events = %d, want 3", res.Version)
	}
	got := readStream(t, s, stream)
	if len(got) != 3 {
		t.Fatalf("read %d events, want 3", len(got))
	}
	for i, e := range got {
		w := in[i]
		if e.ID != w.ID || e.Stream != stream || e.Version != int64(i+1) || e.Type != w.Type || e.SchemaVersion != w.SchemaVersion {
			t.Errorf("event %d = {%s %s v%d %s s%d}, want {%s %s v%d %s s%d}", i, e.ID, e.Stream, e.Version, e.Type, e.SchemaVersion, w.ID, stream, i+1, w.Type, w.SchemaVersion)
		}
		if !jsonEqual(e.Data, w.Data) {
			t.Errorf("event %d data = %s, want %s", i, e.Data, w.Data)
		}
		if !e.Metadata.RecordedAt.Equal(w.Metadata.RecordedAt) {
			t.Errorf("event %d recorded at %v, want %v", i, e.Metadata.RecordedAt, w.Metadata.RecordedAt)
		}
		gm, wm := e.Metadata, w.Metadata
		gm.RecordedAt, wm.RecordedAt = time.Time{}, time.Time{}
		if gm != wm {
			t.Errorf("event %d metadata = %+v, want %+v", i, gm, wm)
		}
		if i > 0 && e.Position <= got[i-1].Position {
			t.Errorf("positions not increasing: %d then %d", got[i-1].Position, e.Position)
		}
	}
	if res.Position != got[2].Position {
		t.Errorf("append returned position %d, last event is at %d", res.Position, got[2].Position)
	}
}

func testMissingStream(t *testing.T, s eventstore.Store) {
	got, err := s.ReadStream(ctxFor(t, 10*time.Second), eventstore.StreamName(newCategory(), "nobody"), 1, 10)
	if err != nil || len(got) != 0 {
		t.Fatalf("missing stream read = %d events, %v; want empty, nil", len(got), err)
	}
}

func testReadStreamFrom(t *testing.T, s eventstore.Store) {
	stream := eventstore.StreamName(newCategory(), uuid.NewString())
	in := events("Counted", 10)
	mustAppend(t, s, stream, eventstore.NoStream(), in...)
	got, err := s.ReadStream(ctxFor(t, 10*time.Second), stream, 4, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Version != 4 || got[2].Version != 6 || got[0].ID != in[3].ID {
		t.Fatalf("read from 4 limit 3 = %v", versions(got))
	}
	got, err = s.ReadStream(ctxFor(t, 10*time.Second), stream, 11, 10)
	if err != nil || len(got) != 0 {
		t.Fatalf("read past the end = %d events, %v", len(got), err)
	}
}

func versions(es []eventstore.Envelope) []int64 {
	out := make([]int64, len(es))
	for i, e := range es {
		out[i] = e.Version
	}
	return out
}

func wantConflict(t *testing.T, err error, stream string, expected eventstore.ExpectedVersion, actual int64) {
	t.Helper()
	if !errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("append expecting %s: err = %v, want a conflict", expected, err)
	}
	var ce *eventstore.ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("conflict is %T, want *eventstore.ConflictError", err)
	}
	if ce.Stream != stream || ce.Expected != expected {
		t.Errorf("conflict = %+v, want stream %s expected %s", ce, stream, expected)
	}
	if ce.Actual != -1 && ce.Actual != actual {
		t.Errorf("conflict actual version = %d, want %d", ce.Actual, actual)
	}
}

func testExpectedVersions(t *testing.T, s eventstore.Store, opts Options) {
	cat := newCategory()
	ctx := ctxFor(t, 30*time.Second)
	a := eventstore.StreamName(cat, "a")

	// NoStream on a missing stream, then on an existing one.
	first := mustAppend(t, s, a, eventstore.NoStream(), event("E", 1))
	_, err := s.Append(ctx, a, eventstore.NoStream(), event("E", 2))
	wantConflict(t, err, a, eventstore.NoStream(), 1)

	// Exactly: right, too low, too high.
	mustAppend(t, s, a, eventstore.Exactly(1), event("E", 3))
	_, err = s.Append(ctx, a, eventstore.Exactly(1), event("E", 4))
	wantConflict(t, err, a, eventstore.Exactly(1), 2)
	_, err = s.Append(ctx, a, eventstore.Exactly(7), event("E", 5))
	wantConflict(t, err, a, eventstore.Exactly(7), 2)

	// Exactly on a missing stream; Exactly(0) means no stream.
	b := eventstore.StreamName(cat, "b")
	_, err = s.Append(ctx, b, eventstore.Exactly(3), event("E", 6))
	wantConflict(t, err, b, eventstore.Exactly(3), 0)
	mustAppend(t, s, b, eventstore.Exactly(0), event("E", 7))

	// Any, on a missing stream and on an existing one.
	c := eventstore.StreamName(cat, "c")
	mustAppend(t, s, c, eventstore.Any(), event("E", 8))
	last := mustAppend(t, s, a, eventstore.Any(), event("E", 9))
	if last.Version != 3 {
		t.Errorf("Any append landed at version %d, want 3", last.Version)
	}

	// Refused appends wrote nothing.
	if got := readStream(t, s, a); len(got) != 3 {
		t.Errorf("stream a has %d events, want 3", len(got))
	}
	if got := readStream(t, s, b); len(got) != 1 {
		t.Errorf("stream b has %d events, want 1", len(got))
	}
	if opts.GapFreePositions {
		all, err := s.ReadAll(ctx, first.Position-1, 100, eventstore.Filter{Categories: []string{cat}})
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i < len(all); i++ {
			if all[i].Position != all[i-1].Position+1 {
				t.Errorf("positions %d then %d: a refused append burned a position", all[i-1].Position, all[i].Position)
			}
		}
	}
}

func testInvalid(t *testing.T, s eventstore.Store) {
	ctx := ctxFor(t, 10*time.Second)
	cat := newCategory()
	bad := event("E", 1)
	bad.Data = json.RawMessage(`{not json`)
	noID := event("E", 1)
	noID.ID = uuid.Nil
	noType := event("E", 1)
	noType.Type = ""
	dup := event("E", 1)
	cases := map[string]struct {
		stream string
		evs    []eventstore.EventData
	}{
		"no category":   {"nodash", []eventstore.EventData{event("E", 1)}},
		"upper case":    {"Bad-1", []eventstore.EventData{event("E", 1)}},
		"system stream": {"$all-1", []eventstore.EventData{event("E", 1)}},
		"no events":     {eventstore.StreamName(cat, "x"), nil},
		"bad json":      {eventstore.StreamName(cat, "x"), []eventstore.EventData{bad}},
		"no id":         {eventstore.StreamName(cat, "x"), []eventstore.EventData{noID}},
		"no type":       {eventstore.StreamName(cat, "x"), []eventstore.EventData{noType}},
		"same id twice": {eventstore.StreamName(cat, "x"), []eventstore.EventData{dup, dup}},
	}
	for name, c := range cases {
		if _, err := s.Append(ctx, c.stream, eventstore.Any(), c.evs...); !errors.Is(err, eventstore.ErrInvalidEvent) {
			t.Errorf("%s: err = %v, want ErrInvalidEvent", name, err)
		}
	}
	if got := readStream(t, s, eventstore.StreamName(cat, "x")); len(got) != 0 {
		t.Errorf("refused appends stored %d events", len(got))
	}
}

// testConcurrentOneStream races appenders on one stream, round after round,
// all expecting the same version: exactly one may win each round.
func testConcurrentOneStream(t *testing.T, s eventstore.Store) {
	stream := eventstore.StreamName(newCategory(), uuid.NewString())
	const racers, rounds = 8, 25
	for round := range rounds {
		var wins, conflicts atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for r := range racers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, err := s.Append(context.Background(), stream, eventstore.Exactly(int64(round)), event("Raced", r))
				switch {
				case err == nil:
					wins.Add(1)
				case errors.Is(err, eventstore.ErrConflict):
					conflicts.Add(1)
				default:
					t.Errorf("round %d: %v", round, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if wins.Load() != 1 || conflicts.Load() != racers-1 {
			t.Fatalf("round %d: %d wins and %d conflicts, want 1 and %d", round, wins.Load(), conflicts.Load(), racers-1)
		}
	}
	got := readStream(t, s, stream)
	if len(got) != rounds {
		t.Fatalf("stream has %d events, want %d", len(got), rounds)
	}
	for i, e := range got {
		if e.Version != int64(i+1) {
			t.Fatalf("event %d has version %d", i, e.Version)
		}
	}
}

func testIdempotent(t *testing.T, s eventstore.Store) {
	ctx := ctxFor(t, 30*time.Second)
	cat := newCategory()
	stream := eventstore.StreamName(cat, "x")
	batch := events("Once", 2)
	first := mustAppend(t, s, stream, eventstore.NoStream(), batch...)

	// The same append again, as a retried command would send it.
	again := mustAppend(t, s, stream, eventstore.NoStream(), batch...)
	if again != first {
		t.Errorf("retried append = %+v, want the first result %+v", again, first)
	}
	mustAppend(t, s, stream, eventstore.Any(), batch...)

	// Still idempotent once the stream has moved on.
	more := event("Later", 3)
	mustAppend(t, s, stream, eventstore.Exactly(2), more)
	if res := mustAppend(t, s, stream, eventstore.NoStream(), batch...); res != first {
		t.Errorf("retry after the stream moved on = %+v, want %+v", res, first)
	}
	if res := mustAppend(t, s, stream, eventstore.Exactly(2), more); res.Version != 3 {
		t.Errorf("retry of the third event = %+v, want version 3", res)
	}
	if got := readStream(t, s, stream); len(got) != 3 {
		t.Fatalf("stream has %d events after retries, want 3", len(got))
	}

	// The same ids at another place are not a retry.
	if _, err := s.Append(ctx, stream, eventstore.Exactly(3), batch...); err == nil {
		t.Error("re-appending stored ids at another version succeeded")
	}
	if got := readStream(t, s, stream); len(got) != 3 {
		t.Fatalf("stream has %d events after a refused reuse of ids, want 3", len(got))
	}
	// Concurrent retries of one append write it once.
	other := eventstore.StreamName(cat, "y")
	one := events("Once", 3)
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Append(context.Background(), other, eventstore.NoStream(), one...); err != nil {
				t.Errorf("concurrent retry: %v", err)
			}
		}()
	}
	wg.Wait()
	if got := readStream(t, s, other); len(got) != 3 {
		t.Fatalf("concurrent retries stored %d events, want 3", len(got))
	}
}

func readAll(t *testing.T, s eventstore.Store, after eventstore.Position, batch int, cat string) []eventstore.Envelope {
	t.Helper()
	ctx := ctxFor(t, 30*time.Second)
	var out []eventstore.Envelope
	for {
		page, err := s.ReadAll(ctx, after, batch, eventstore.Filter{Categories: []string{cat}})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		after = page[len(page)-1].Position
	}
}

func testGlobalOrder(t *testing.T, s eventstore.Store) {
	cat := newCategory()
	var want []uuid.UUID
	var firstPos eventstore.Position
	for i := range 9 {
		stream := eventstore.StreamName(cat, fmt.Sprint(i%3))
		e := event("Ordered", i)
		res := mustAppend(t, s, stream, eventstore.Any(), e)
		if i == 0 {
			firstPos = res.Position
		}
		want = append(want, e.ID)
	}
	for _, batch := range []int{1, 2, 4, 100} {
		got := readAll(t, s, eventstore.Start, batch, cat)
		if len(got) != len(want) {
			t.Fatalf("batch %d: read %d events, want %d", batch, len(got), len(want))
		}
		for i, e := range got {
			if e.ID != want[i] {
				t.Fatalf("batch %d: event %d is %s, want %s (append order)", batch, i, e.ID, want[i])
			}
			if i > 0 && e.Position <= got[i-1].Position {
				t.Fatalf("batch %d: positions not increasing", batch)
			}
		}
		if got[0].Position != firstPos {
			t.Fatalf("first event at %d, append said %d", got[0].Position, firstPos)
		}
	}
	// Other categories are filtered out, and an unfiltered read contains ours.
	if got := readAll(t, s, eventstore.Start, 50, newCategory()); len(got) != 0 {
		t.Errorf("an unused category reads %d events", len(got))
	}
	page, err := s.ReadAll(ctxFor(t, 10*time.Second), firstPos-1, 1, eventstore.Filter{})
	if err != nil || len(page) != 1 || page[0].ID != want[0] {
		t.Errorf("unfiltered read from just before our first event = %v, %v", page, err)
	}
	// A filter is a set: a category named twice (several projections'
	// categories put together, as a replay does) reads each event once.
	other := newCategory()
	twice, err := s.ReadAll(ctxFor(t, 10*time.Second), eventstore.Start, 100, eventstore.Filter{Categories: []string{cat, other, cat}})
	if err != nil || len(twice) != len(want) {
		t.Fatalf("a filter naming the category twice read %d events (%v), want %d", len(twice), err, len(want))
	}
	for i, e := range twice {
		if e.ID != want[i] {
			t.Fatalf("a filter naming the category twice: event %d is %s, want %s", i, e.ID, want[i])
		}
	}
}

func next(t *testing.T, sub eventstore.Subscription) eventstore.Envelope {
	t.Helper()
	e, err := sub.Next(ctxFor(t, 20*time.Second))
	if err != nil {
		t.Fatalf("subscription next: %v", err)
	}
	return e
}

func testResume(t *testing.T, s eventstore.Store) {
	cat := newCategory()
	in := events("Resumed", 8)
	for i, e := range in {
		mustAppend(t, s, eventstore.StreamName(cat, fmt.Sprint(i%2)), eventstore.Any(), e)
	}
	filter := eventstore.Filter{Categories: []string{cat}}
	sub, err := s.Subscribe(t.Context(), eventstore.Start, filter)
	if err != nil {
		t.Fatal(err)
	}
	var checkpoint eventstore.Position
	for i := range 5 {
		e := next(t, sub)
		if e.ID != in[i].ID {
			t.Fatalf("event %d is %s, want %s", i, e.ID, in[i].ID)
		}
		checkpoint = e.Position
	}
	_ = sub.Close()
	if _, err := sub.Next(context.Background()); err == nil {
		t.Error("Next after Close returned an event")
	}

	sub, err = s.Subscribe(t.Context(), checkpoint, filter)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for i := 5; i < 8; i++ {
		if e := next(t, sub); e.ID != in[i].ID {
			t.Fatalf("after resuming, event %d is %s, want %s", i, e.ID, in[i].ID)
		}
	}
	page, err := s.ReadAll(ctxFor(t, 10*time.Second), checkpoint, 10, filter)
	if err != nil || len(page) != 3 || page[0].ID != in[5].ID {
		t.Fatalf("read all after checkpoint = %d events, %v", len(page), err)
	}
}

func testLive(t *testing.T, s eventstore.Store) {
	cat := newCategory()
	sub, err := s.Subscribe(t.Context(), eventstore.Start, eventstore.Filter{Categories: []string{cat}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	got := make(chan eventstore.Envelope, 1)
	go func() {
		e, err := sub.Next(ctxFor(t, 20*time.Second))
		if err == nil {
			got <- e
		}
		close(got)
	}()
	time.Sleep(100 * time.Millisecond) // let the subscriber reach the end of the log and wait
	e := event("Live", 1)
	mustAppend(t, s, eventstore.StreamName(cat, "1"), eventstore.NoStream(), e)
	select {
	case g, ok := <-got:
		if !ok || g.ID != e.ID {
			t.Fatalf("subscriber got %v, %v; want the live event", g.ID, ok)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the live event never arrived")
	}
}

// testConcurrentWriters is the late-commit-gap test: many writers commit
// out of order while a subscriber follows the log; it must see every
// committed event exactly once, in commit order.
func testConcurrentWriters(t *testing.T, s eventstore.Store, opts Options) {
	cat := newCategory()
	filter := eventstore.Filter{Categories: []string{cat}}
	total := opts.Writers * opts.EventsPerWriter
	writers := []eventstore.Store{s}
	if opts.OpenPeer != nil {
		for range 3 {
			peer := opts.OpenPeer(t, s)
			t.Cleanup(func() { _ = peer.Close() })
			writers = append(writers, peer)
		}
	}

	sub, err := s.Subscribe(t.Context(), eventstore.Start, filter)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	var committed sync.Map // event id → stream
	ctx := ctxFor(t, 10*time.Minute)
	var wg sync.WaitGroup
	for w := range opts.Writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			store := writers[w%len(writers)]
			stream := eventstore.StreamName(cat, fmt.Sprint(w))
			for i := range opts.EventsPerWriter {
				e := event("Written", i)
				if _, err := store.Append(ctx, stream, eventstore.Exactly(int64(i)), e); err != nil {
					t.Errorf("writer %d event %d: %v", w, i, err)
					return
				}
				committed.Store(e.ID, stream)
			}
		}()
	}

	seen := make(map[uuid.UUID]bool, total)
	lastVersion := map[string]int64{}
	var last eventstore.Position
	for len(seen) < total {
		// Each event must follow the previous one promptly; a stall means an
		// event was skipped (or the writers failed).
		nextCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		e, err := sub.Next(nextCtx)
		cancel()
		if err != nil {
			t.Fatalf("subscriber stopped after %d of %d events: %v", len(seen), total, err)
		}
		if seen[e.ID] {
			t.Fatalf("event %s delivered twice", e.ID)
		}
		seen[e.ID] = true
		if e.Position <= last {
			t.Fatalf("position %d after %d: out of order", e.Position, last)
		}
		last = e.Position
		if e.Version != lastVersion[e.Stream]+1 {
			t.Fatalf("stream %s: version %d after %d", e.Stream, e.Version, lastVersion[e.Stream])
		}
		lastVersion[e.Stream] = e.Version
	}
	wg.Wait()
	missing := 0
	committed.Range(func(k, _ any) bool {
		if !seen[k.(uuid.UUID)] {
			missing++
		}
		return true
	})
	if missing > 0 {
		t.Fatalf("%d committed events never reached the subscriber", missing)
	}
	// Nothing more arrives: the subscriber saw the whole log.
	quiet, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if e, err := sub.Next(quiet); err == nil {
		t.Fatalf("an extra event %s arrived after all %d", e.ID, total)
	}
}
