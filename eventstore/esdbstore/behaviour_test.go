package esdbstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/portico-health/portico/eventstore"
)

// These tests run the store through the real client against fakeESDB.

func openFake(t *testing.T) (*Store, *fakeESDB) {
	t.Helper()
	f := newFakeESDB(t)
	s, err := Open(t.Context(), f.url())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, f
}

func event(typ string) eventstore.EventData {
	return eventstore.EventData{
		ID:       uuid.New(),
		Type:     typ,
		Data:     json.RawMessage(`{"n":1}`),
		Metadata: eventstore.Metadata{ClinicID: "c1", CommandID: "cmd"},
	}
}

func mustAppend(t *testing.T, s *Store, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) eventstore.AppendResult {
	t.Helper()
	res, err := s.Append(t.Context(), stream, expected, events...)
	if err != nil {
		t.Fatalf("append to %s: %v", stream, err)
	}
	return res
}

func mustRead(t *testing.T, s *Store, stream string) []eventstore.Envelope {
	t.Helper()
	envs, err := s.ReadStream(t.Context(), stream, 1, 1000)
	if err != nil {
		t.Fatalf("read %s: %v", stream, err)
	}
	return envs
}

func TestAppendAndReadStream(t *testing.T) {
	s, _ := openFake(t)
	a, b, c := event("a"), event("b"), event("c")
	res := mustAppend(t, s, "patient-1", eventstore.NoStream(), a, b)
	if res.Version != 2 {
		t.Fatalf("version after 2 events = %d", res.Version)
	}
	res = mustAppend(t, s, "patient-1", eventstore.Exactly(2), c)
	if res.Version != 3 {
		t.Fatalf("version after 3 events = %d", res.Version)
	}

	envs := mustRead(t, s, "patient-1")
	if len(envs) != 3 {
		t.Fatalf("read %d events, want 3", len(envs))
	}
	for i, want := range []eventstore.EventData{a, b, c} {
		got := envs[i]
		if got.ID != want.ID || got.Type != want.Type || got.Stream != "patient-1" || got.Version != int64(i+1) ||
			string(got.Data) != string(want.Data) || got.SchemaVersion != 1 || got.Metadata.ClinicID != "c1" || got.Metadata.RecordedAt.IsZero() {
			t.Errorf("event %d read back as %+v", i, got)
		}
		if i > 0 && got.Position <= envs[i-1].Position {
			t.Errorf("positions not increasing: %d then %d", envs[i-1].Position, got.Position)
		}
	}
	if res.Position != envs[2].Position {
		t.Errorf("append returned position %d, the event is at %d", res.Position, envs[2].Position)
	}

	part, err := s.ReadStream(t.Context(), "patient-1", 2, 1)
	if err != nil || len(part) != 1 || part[0].Version != 2 {
		t.Fatalf("ReadStream(from 2, limit 1) = %+v, %v", part, err)
	}
	if part, err := s.ReadStream(t.Context(), "patient-1", 4, 10); err != nil || len(part) != 0 {
		t.Fatalf("ReadStream past the end = %+v, %v", part, err)
	}
	if none, err := s.ReadStream(t.Context(), "patient-404", 1, 10); err != nil || len(none) != 0 {
		t.Fatalf("missing stream read as %+v, %v; want empty", none, err)
	}
	if none, err := s.ReadStream(t.Context(), "patient-1", 1, 0); err != nil || len(none) != 0 {
		t.Fatalf("limit 0 read as %+v, %v; want empty", none, err)
	}
}

func TestAppendValidates(t *testing.T) {
	s, f := openFake(t)
	for _, c := range []struct {
		stream string
		events []eventstore.EventData
	}{
		{"Bad-1", []eventstore.EventData{event("a")}},
		{"patient-1", nil},
		{"patient-1", []eventstore.EventData{{ID: uuid.New(), Type: "a", Data: json.RawMessage(`{`)}}},
	} {
		if _, err := s.Append(t.Context(), c.stream, eventstore.Any(), c.events...); !errors.Is(err, eventstore.ErrInvalidEvent) {
			t.Errorf("append %s %v: err = %v, want ErrInvalidEvent", c.stream, c.events, err)
		}
	}
	if f.count("patient-1") != 0 {
		t.Error("an invalid append wrote")
	}
}

func TestAppendPositionIsTheLastEvents(t *testing.T) {
	for _, first := range []bool{false, true} {
		t.Run(fmt.Sprintf("server answers with first event's position: %v", first), func(t *testing.T) {
			s, f := openFake(t)
			f.mu.Lock()
			f.positionOfFirst = first
			f.mu.Unlock()
			res := mustAppend(t, s, "patient-1", eventstore.NoStream(), event("a"), event("b"), event("c"))
			envs := mustRead(t, s, "patient-1")
			if res.Version != 3 || res.Position != envs[2].Position {
				t.Fatalf("append returned %+v; last event is at %d", res, envs[2].Position)
			}
		})
	}
}

func TestConflict(t *testing.T) {
	s, f := openFake(t)
	mustAppend(t, s, "patient-1", eventstore.NoStream(), event("a"), event("b"))
	for _, c := range []struct {
		stream   string
		expected eventstore.ExpectedVersion
		actual   int64
	}{
		{"patient-1", eventstore.NoStream(), 2},
		{"patient-1", eventstore.Exactly(1), 2},
		{"patient-1", eventstore.Exactly(5), 2},
		{"patient-2", eventstore.Exactly(1), 0},
	} {
		_, err := s.Append(t.Context(), c.stream, c.expected, event("x"))
		var ce *eventstore.ConflictError
		if !errors.As(err, &ce) || !errors.Is(err, eventstore.ErrConflict) {
			t.Fatalf("%s expecting %s: err = %v, want a ConflictError", c.stream, c.expected, err)
		}
		if ce.Stream != c.stream || ce.Expected != c.expected || ce.Actual != c.actual {
			t.Errorf("conflict = %+v, want stream %s expected %s actual %d", ce, c.stream, c.expected, c.actual)
		}
	}
	if f.count("patient-1") != 2 || f.count("patient-2") != 0 {
		t.Error("a conflicting append wrote")
	}
}

func TestIdempotentRetries(t *testing.T) {
	s, f := openFake(t)

	a, b := event("a"), event("b")
	first := mustAppend(t, s, "patient-1", eventstore.NoStream(), a, b)
	mustAppend(t, s, "patient-1", eventstore.Exactly(2), event("later"))
	if again := mustAppend(t, s, "patient-1", eventstore.NoStream(), a, b); again != first {
		t.Errorf("NoStream retry = %+v, first append = %+v", again, first)
	}

	c := event("c")
	third := mustAppend(t, s, "patient-1", eventstore.Exactly(3), c)
	if again := mustAppend(t, s, "patient-1", eventstore.Exactly(3), c); again != third {
		t.Errorf("Exactly retry = %+v, first append = %+v", again, third)
	}
	if n := f.count("patient-1"); n != 4 {
		t.Fatalf("stream has %d events after retries, want 4", n)
	}

	d, e := event("d"), event("e")
	anyFirst := mustAppend(t, s, "patient-2", eventstore.Any(), d, e)
	mustAppend(t, s, "patient-2", eventstore.Any(), event("other"))
	if again := mustAppend(t, s, "patient-2", eventstore.Any(), d, e); again != anyFirst {
		t.Errorf("Any retry = %+v, first append = %+v", again, anyFirst)
	}
	if n := f.count("patient-2"); n != 3 {
		t.Fatalf("stream has %d events after an Any retry, want 3", n)
	}
	if _, err := s.Append(t.Context(), "patient-2", eventstore.Any(), e, event("new")); !errors.Is(err, eventstore.ErrInvalidEvent) {
		t.Errorf("Any append reusing one stored id: err = %v, want ErrInvalidEvent", err)
	}
	if _, err := s.Append(t.Context(), "patient-2", eventstore.Any(), e, d); !errors.Is(err, eventstore.ErrInvalidEvent) {
		t.Errorf("Any append of stored ids out of order: err = %v, want ErrInvalidEvent", err)
	}
	if n := f.count("patient-2"); n != 3 {
		t.Fatalf("a refused Any append wrote: %d events", n)
	}

	// Exact versions: the server writes stored ids again when the expected
	// revision is the current one, so the store must refuse them itself.
	if _, err := s.Append(t.Context(), "patient-1", eventstore.Exactly(4), a, b); !errors.Is(err, eventstore.ErrConflict) {
		t.Errorf("exact append of a stored append at the stream's end: err = %v, want a conflict", err)
	}
	if _, err := s.Append(t.Context(), "patient-1", eventstore.Exactly(4), event("new"), c); !errors.Is(err, eventstore.ErrInvalidEvent) {
		t.Errorf("exact append reusing one stored id at the stream's end: err = %v, want ErrInvalidEvent", err)
	}
	if _, err := s.Append(t.Context(), "patient-1", eventstore.Exactly(2), event("later"), event("new")); !errors.Is(err, eventstore.ErrConflict) {
		t.Errorf("exact append of new ids behind the stream's end: err = %v, want a conflict", err)
	}
	if _, err := s.Append(t.Context(), "patient-1", eventstore.NoStream(), a, event("new")); !errors.Is(err, eventstore.ErrConflict) {
		t.Errorf("append partly matching the stored one at its place: err = %v, want a conflict", err)
	}
	if n := f.count("patient-1"); n != 4 {
		t.Fatalf("a refused exact append wrote: %d events", n)
	}
}

// seedLog writes patients, invoices and the server's own events, interleaved.
func seedLog(t *testing.T, s *Store, f *fakeESDB, n int) (patients []eventstore.Envelope) {
	t.Helper()
	for i := range n {
		stream := "patient-" + strconv.Itoa(i%3)
		mustAppend(t, s, stream, eventstore.Any(), event("patient.noted"))
		mustAppend(t, s, "invoice-"+strconv.Itoa(i), eventstore.Any(), event("invoice.sent"))
		f.system("$$"+stream, "$metadata")
		f.system("$ce-patient", "$>")
	}
	all, err := s.ReadAll(t.Context(), eventstore.Start, 10*n, eventstore.Filter{Categories: []string{"patient"}})
	if err != nil {
		t.Fatal(err)
	}
	return all
}

func TestReadAll(t *testing.T) {
	s, f := openFake(t)
	patients := seedLog(t, s, f, 5)
	if len(patients) != 5 {
		t.Fatalf("read %d patient events, want 5", len(patients))
	}

	everything, err := s.ReadAll(t.Context(), eventstore.Start, 100, eventstore.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(everything) != 10 {
		t.Fatalf("read %d events in all, want 10 (no system events)", len(everything))
	}
	for i, e := range everything {
		if e.Stream[0] == '$' || e.Type[0] == '$' {
			t.Errorf("system event %s/%s in the global log", e.Stream, e.Type)
		}
		if i > 0 && e.Position <= everything[i-1].Position {
			t.Errorf("global log out of order at %d", i)
		}
	}

	after, err := s.ReadAll(t.Context(), patients[1].Position, 2, eventstore.Filter{Categories: []string{"patient"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != 2 || after[0].ID != patients[2].ID || after[1].ID != patients[3].ID {
		t.Fatalf("ReadAll after patient 2, limit 2 = %v; want patients 3 and 4", ids(after))
	}
	if last, err := s.ReadAll(t.Context(), patients[4].Position, 10, eventstore.Filter{Categories: []string{"patient"}}); err != nil || len(last) != 0 {
		t.Fatalf("ReadAll after the last patient = %v, %v", ids(last), err)
	}
	if none, err := s.ReadAll(t.Context(), eventstore.Start, 0, eventstore.Filter{}); err != nil || len(none) != 0 {
		t.Fatalf("ReadAll limit 0 = %v, %v", ids(none), err)
	}
}

// A filtered read whose matches are far apart spans several pages.
func TestReadAllAcrossPages(t *testing.T) {
	s, f := openFake(t)
	var want []uuid.UUID
	for i := range 3 {
		e := event("patient.noted")
		want = append(want, e.ID)
		mustAppend(t, s, "patient-1", eventstore.Any(), e)
		for j := range 150 {
			f.system("$stats", "$statsCollected")
			if j%2 == 0 {
				mustAppend(t, s, "invoice-"+strconv.Itoa(i), eventstore.Any(), event("invoice.sent"))
			}
		}
	}
	got, err := s.ReadAll(t.Context(), eventstore.Start, 10, eventstore.Filter{Categories: []string{"patient"}})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(ids(got)) != fmt.Sprint(want) {
		t.Fatalf("read %v, want %v", ids(got), want)
	}
	two, err := s.ReadAll(t.Context(), eventstore.Start, 2, eventstore.Filter{Categories: []string{"patient"}})
	if err != nil || fmt.Sprint(ids(two)) != fmt.Sprint(want[:2]) {
		t.Fatalf("read %v, %v; want %v", ids(two), err, want[:2])
	}
}

func ids(envs []eventstore.Envelope) []uuid.UUID {
	out := make([]uuid.UUID, len(envs))
	for i, e := range envs {
		out[i] = e.ID
	}
	return out
}

func next(t *testing.T, sub eventstore.Subscription) eventstore.Envelope {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	env, err := sub.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return env
}

func expectQuiet(t *testing.T, sub eventstore.Subscription) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if env, err := sub.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next = %+v, %v; want nothing", env, err)
	}
}

func TestSubscribe(t *testing.T) {
	s, f := openFake(t)
	patients := seedLog(t, s, f, 4)
	filter := eventstore.Filter{Categories: []string{"patient"}}

	sub, err := s.Subscribe(t.Context(), eventstore.Start, filter)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for i, want := range patients {
		if got := next(t, sub); got.ID != want.ID || got.Position != want.Position {
			t.Fatalf("event %d = %s@%d, want %s@%d", i, got.ID, got.Position, want.ID, want.Position)
		}
	}
	expectQuiet(t, sub) // the invoices and system events were skipped, not queued
	live := event("patient.noted")
	mustAppend(t, s, "invoice-9", eventstore.Any(), event("invoice.sent"))
	f.system("$ce-patient", "$>")
	mustAppend(t, s, "patient-9", eventstore.Any(), live)
	if got := next(t, sub); got.ID != live.ID || got.Stream != "patient-9" || got.Version != 1 {
		t.Fatalf("live event = %+v", got)
	}

	// From a position: strictly after it.
	from, err := s.Subscribe(t.Context(), patients[1].Position, filter)
	if err != nil {
		t.Fatal(err)
	}
	defer from.Close()
	if got := next(t, from); got.ID != patients[2].ID {
		t.Fatalf("subscription after patient 2 starts with %s, want patient 3 %s", got.ID, patients[2].ID)
	}

	// Unfiltered: everything but the server's own events.
	all, err := s.Subscribe(t.Context(), eventstore.Start, eventstore.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	defer all.Close()
	for range 9 {
		if got := next(t, all); got.Stream[0] == '$' || got.Type[0] == '$' {
			t.Fatalf("system event %s/%s delivered", got.Stream, got.Type)
		}
	}
}

func TestSubscribeResubscribesWithoutRepeatingOrSkipping(t *testing.T) {
	s, f := openFake(t)
	f.mu.Lock()
	f.dropAfter = 2
	f.mu.Unlock()
	var want []eventstore.EventData
	for i := range 7 {
		e := event("patient.noted")
		want = append(want, e)
		mustAppend(t, s, "patient-"+strconv.Itoa(i), eventstore.Any(), e)
		mustAppend(t, s, "invoice-"+strconv.Itoa(i), eventstore.Any(), event("invoice.sent"))
	}
	sub, err := s.Subscribe(t.Context(), eventstore.Start, eventstore.Filter{Categories: []string{"patient"}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	var got []eventstore.Envelope
	for range want {
		got = append(got, next(t, sub))
	}
	for i := range want {
		if got[i].ID != want[i].ID {
			t.Fatalf("event %d = %s, want %s", i, got[i].ID, want[i].ID)
		}
	}
	expectQuiet(t, sub)

	// Every resubscription starts at the last event handed out.
	from := f.subscriptions()
	wantFrom := []string{"start"}
	for i := 1; i < len(got); i += 2 {
		wantFrom = append(wantFrom, strconv.FormatUint(uint64(got[i].Position), 10))
	}
	if len(from) < len(wantFrom) || fmt.Sprint(from[:len(wantFrom)]) != fmt.Sprint(wantFrom) {
		t.Fatalf("subscribed from %v, want %v", from, wantFrom)
	}
}

func TestSubscriptionEnds(t *testing.T) {
	s, f := openFake(t)
	seedLog(t, s, f, 1)

	sub, err := s.Subscribe(t.Context(), eventstore.Start, eventstore.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	next(t, sub)        // the patient
	next(t, sub)        // the invoice
	expectQuiet(t, sub) // a Next that times out leaves the subscription usable
	mustAppend(t, s, "patient-7", eventstore.Any(), event("x"))
	if got := next(t, sub); got.Stream != "patient-7" {
		t.Fatalf("after a timed-out Next: %+v", got)
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.Next(t.Context()); !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("Next after Close: %v", err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	sub, err = s.Subscribe(ctx, eventstore.Start, eventstore.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	next(t, sub)
	cancel()
	if _, err := sub.Next(t.Context()); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next after the Subscribe context ended: %v", err)
	}
	sub.Close()

	sub, err = s.Subscribe(t.Context(), eventstore.Start, eventstore.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := sub.Next(t.Context()); !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("Next after the store closed: %v", err)
	}
	if _, err := s.Append(t.Context(), "patient-1", eventstore.Any(), event("x")); !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	if _, err := s.ReadStream(t.Context(), "patient-1", 1, 1); !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("ReadStream after Close: %v", err)
	}
	if _, err := s.Subscribe(t.Context(), eventstore.Start, eventstore.Filter{}); !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("Subscribe after Close: %v", err)
	}
	if err := s.Ping(t.Context()); !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("Ping after Close: %v", err)
	}
}

// When the server is gone long enough, the client's node discovery gives up
// and the client never works again; the store must replace it.
func TestSurvivesServerRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the client to give up on a stopped server")
	}
	s, f := openFake(t)
	mustAppend(t, s, "patient-1", eventstore.Any(), event("a"))
	sub, err := s.Subscribe(t.Context(), eventstore.Start, eventstore.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	next(t, sub)
	original := s.currentClient()

	addr := f.addr
	f.stop()
	time.Sleep(3 * time.Second)
	f.start(t, addr)

	// Calls may fail while the store notices; the subscription must not.
	deadline := time.Now().Add(20 * time.Second)
	var pingErr error
	for pingErr = s.Ping(t.Context()); pingErr != nil && time.Now().Before(deadline); pingErr = s.Ping(t.Context()) {
		time.Sleep(200 * time.Millisecond)
	}
	if pingErr != nil {
		t.Fatalf("store did not recover: %v", pingErr)
	}
	later := event("b")
	mustAppend(t, s, "patient-1", eventstore.Any(), later)
	if got := next(t, sub); got.ID != later.ID {
		t.Fatalf("after the restart the subscription delivered %s, want %s", got.ID, later.ID)
	}
	// Three seconds down is well past the client's ten discovery attempts.
	if s.currentClient() == original {
		t.Error("the client that gave up was not replaced")
	}
}

func TestPingAndOpen(t *testing.T) {
	s, _ := openFake(t)
	if err := s.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(t.Context(), "http://user:secret@localhost:2113"); err == nil {
		t.Fatal("Open accepted a non-esdb URL")
	}
	_, err := Open(t.Context(), "esdb://admin:secret@localhost:notaport?tls=false")
	if err == nil {
		t.Fatal("Open accepted a bad port")
	}
	if s := err.Error(); strings.Contains(s, "secret") {
		t.Fatalf("error leaks the password: %s", s)
	}
}
