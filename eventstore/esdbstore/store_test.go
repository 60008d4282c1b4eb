package esdbstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/portico-health/portico/eventstore"
)

func TestExpectedRevision(t *testing.T) {
	cases := []struct {
		in   eventstore.ExpectedVersion
		want esdb.ExpectedRevision
	}{
		{eventstore.Any(), esdb.Any{}},
		{eventstore.NoStream(), esdb.NoStream{}},
		{eventstore.Exactly(0), esdb.NoStream{}},
		{eventstore.Exactly(1), esdb.Revision(0)},
		{eventstore.Exactly(42), esdb.Revision(41)},
	}
	for _, c := range cases {
		if got := expectedRevision(c.in); got != c.want {
			t.Errorf("expectedRevision(%s) = %#v, want %#v", c.in, got, c.want)
		}
	}
}

// newESDBError builds the value the client returns, &esdb.Error{code, err}.
// Its fields are unexported, so they are set through reflect.
func newESDBError(code esdb.ErrorCode, cause error) *esdb.Error {
	e := new(esdb.Error)
	v := reflect.ValueOf(e).Elem()
	set := func(name string, val any) {
		f := v.FieldByName(name)
		reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Set(reflect.ValueOf(val))
	}
	set("code", code)
	if cause != nil {
		set("err", cause)
	}
	return e
}

func TestErrorCode(t *testing.T) {
	wrong := newESDBError(esdb.ErrorCodeWrongExpectedVersion, errors.New("wrong expected version: expecting '0' but got '1'"))
	if wrong.Code() != esdb.ErrorCodeWrongExpectedVersion {
		t.Fatalf("test helper built code %v", wrong.Code())
	}
	cases := []struct {
		name   string
		err    error
		code   esdb.ErrorCode
		hasOne bool
	}{
		{"bare", wrong, esdb.ErrorCodeWrongExpectedVersion, true},
		// The client wraps some errors, e.g. "could not send append request. Reason: %w".
		{"wrapped", fmt.Errorf("could not send append request. Reason: %w", wrong), esdb.ErrorCodeWrongExpectedVersion, true},
		{"not found", newESDBError(esdb.ErrorCodeResourceNotFound, nil), esdb.ErrorCodeResourceNotFound, true},
		{"plain", errors.New("boom"), 0, false},
		{"nil", nil, 0, false},
	}
	for _, c := range cases {
		code, ok := errorCode(c.err)
		if ok != c.hasOne || code != c.code {
			t.Errorf("%s: errorCode = %v, %v; want %v, %v", c.name, code, ok, c.code, c.hasOne)
		}
	}
	if !isNotFound(newESDBError(esdb.ErrorCodeResourceNotFound, errors.New("stream 'x' is not found"))) {
		t.Error("isNotFound missed ErrorCodeResourceNotFound")
	}
	if isNotFound(wrong) {
		t.Error("isNotFound took a wrong-expected-version error")
	}
	// esdb.FromError's bool is true only for nil: it is no test for "is an esdb error".
	if _, ok := esdb.FromError(wrong); ok {
		t.Error("esdb.FromError's bool changed meaning; errorCode's comment is stale")
	}
}

// A closed client fails every call with ErrorCodeConnectionClosed, the error
// that renewIfDead reacts to; this one comes from the client itself.
func TestClosedClientError(t *testing.T) {
	cfg, err := esdb.ParseConnectionString("esdb://127.0.0.1:1?tls=false")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = esdb.NoopLogging()
	client, err := esdb.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	client.Close()
	_, err = client.AppendToStream(t.Context(), "x-1", esdb.AppendToStreamOptions{}, esdb.EventData{EventType: "t"})
	if code, ok := errorCode(err); !ok || code != esdb.ErrorCodeConnectionClosed {
		t.Fatalf("closed client error = %v, code %v", err, code)
	}
}

func TestPositionEncoding(t *testing.T) {
	if got := esdbPosition(1788); got != (esdb.Position{Commit: 1788, Prepare: 1788}) {
		t.Errorf("esdbPosition(1788) = %+v", got)
	}

	start := cursorAfter(eventstore.Start)
	if _, ok := start.from().(esdb.Start); !ok {
		t.Errorf("cursor at Start reads from %#v, want esdb.Start{}", start.from())
	}
	if !start.before(0) || !start.before(5) {
		t.Error("a cursor at Start must let every event through")
	}

	c := cursorAfter(1788)
	if got := c.from(); got != (esdb.Position{Commit: 1788, Prepare: 1788}) {
		t.Errorf("cursor at 1788 reads from %#v", got)
	}
	if c.before(1788) || c.before(1000) || !c.before(1789) {
		t.Error("a cursor at 1788 must pass only positions after 1788")
	}
	c.move(2000)
	if c.before(2000) || !c.before(2001) {
		t.Error("move did not move the cursor")
	}

	commit := uint64(77)
	ev := &esdb.ResolvedEvent{Event: &esdb.RecordedEvent{Position: esdb.Position{Commit: 99, Prepare: 99}}, Commit: &commit}
	if got := positionOf(ev); got != 99 {
		t.Errorf("positionOf prefers the recorded event's commit position: got %d", got)
	}
	ev.Event.Position = esdb.Position{}
	if got := positionOf(ev); got != 77 {
		t.Errorf("positionOf falls back to the read's commit position: got %d", got)
	}
}

// resolved is the event the client hands back for a stored esdb.EventData.
func resolved(stream string, revision, position uint64, d esdb.EventData, created time.Time) *esdb.ResolvedEvent {
	ct := "application/octet-stream"
	if d.ContentType == esdb.ContentTypeJson {
		ct = "application/json"
	}
	return &esdb.ResolvedEvent{Event: &esdb.RecordedEvent{
		EventID:      d.EventID,
		EventType:    d.EventType,
		ContentType:  ct,
		StreamID:     stream,
		EventNumber:  revision,
		Position:     esdb.Position{Commit: position, Prepare: position},
		CreatedDate:  created,
		Data:         d.Data,
		UserMetadata: d.Metadata,
	}}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	recorded := time.Date(2025, 3, 4, 5, 6, 7, 891_234_567, time.FixedZone("CET", 3600))
	now := time.Date(2025, 1, 1, 0, 0, 0, 123_456_789, time.UTC)
	in := []eventstore.EventData{
		{
			ID:            uuid.New(),
			Type:          "patient.registered",
			SchemaVersion: 3,
			Data:          json.RawMessage(`{"name":"Ada"}`),
			Metadata: eventstore.Metadata{
				ClinicID: "c1", ActorID: "a1", ActorKind: "staff", ActorRole: "vet",
				CorrelationID: "corr", CausationID: "cause", CommandID: "cmd",
				RecordedAt: recorded,
			},
		},
		{ID: uuid.New(), Type: "patient.noted"}, // no data, schema version or time
	}
	proposed, err := encodeEvents(in, now)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range proposed {
		if p.EventID != in[i].ID || p.EventType != in[i].Type || p.ContentType != esdb.ContentTypeJson {
			t.Errorf("event %d proposed as %+v", i, p)
		}
	}
	if string(proposed[1].Data) != `{}` {
		t.Errorf("empty data stored as %q, want {}", proposed[1].Data)
	}
	var raw map[string]any
	if err := json.Unmarshal(proposed[0].Metadata, &raw); err != nil {
		t.Fatal(err)
	}
	if raw["schema_version"] != float64(3) || raw["clinic_id"] != "c1" {
		t.Errorf("user metadata %s lacks the schema version or Portico's metadata", proposed[0].Metadata)
	}

	for i, p := range proposed {
		got, err := decodeEvent(resolved("patient-1", uint64(i), 5000+uint64(i)*100, p, now))
		if err != nil {
			t.Fatal(err)
		}
		want := eventstore.Envelope{
			ID:            in[i].ID,
			Stream:        "patient-1",
			Version:       int64(i) + 1,
			Position:      eventstore.Position(5000 + i*100),
			Type:          in[i].Type,
			SchemaVersion: in[i].SchemaVersion,
			Data:          in[i].Data,
			Metadata:      in[i].Metadata,
		}
		switch i {
		case 0:
			want.Metadata.RecordedAt = recorded.UTC().Truncate(time.Microsecond)
		case 1:
			want.SchemaVersion = 1
			want.Data = json.RawMessage(`{}`)
			want.Metadata.RecordedAt = now.Truncate(time.Microsecond)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("event %d round trip:\n got %+v\nwant %+v", i, got, want)
		}
	}
}

func TestDecodeForeignAndBrokenEvents(t *testing.T) {
	created := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	foreign := resolved("legacy-1", 0, 10, esdb.EventData{EventID: uuid.New(), EventType: "legacy", Data: []byte(`{}`)}, created)
	env, err := decodeEvent(foreign)
	if err != nil {
		t.Fatal(err)
	}
	if env.SchemaVersion != 1 || !env.Metadata.RecordedAt.Equal(created) || env.Metadata.ClinicID != "" {
		t.Errorf("event without Portico metadata read as %+v", env)
	}

	broken := resolved("legacy-1", 1, 20, esdb.EventData{EventID: uuid.New(), EventType: "legacy", Metadata: []byte(`not json`)}, created)
	if _, err := decodeEvent(broken); !errors.Is(err, errDecode) {
		t.Fatalf("broken metadata: err = %v, want errDecode", err)
	}
	if !permanent(fmt.Errorf("wrapped: %w", errDecode)) {
		t.Error("an undecodable event must stop a subscription, not loop it")
	}
	if permanent(errors.New("connection reset")) || permanent(newESDBError(esdb.ErrorUnavailable, nil)) {
		t.Error("transient errors must be retried")
	}
	if !permanent(newESDBError(esdb.ErrorCodeAccessDenied, nil)) || !permanent(newESDBError(esdb.ErrorCodeUnauthenticated, nil)) {
		t.Error("refused credentials must stop a subscription")
	}
}

func TestSubscriptionFilter(t *testing.T) {
	all := subscriptionFilter(eventstore.Filter{})
	if !reflect.DeepEqual(all, esdb.ExcludeSystemEventsFilter()) {
		t.Errorf("zero filter = %+v, want ExcludeSystemEventsFilter", all)
	}
	got := subscriptionFilter(eventstore.Filter{Categories: []string{"patient", "invoice"}})
	want := &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{"patient-", "invoice-"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("category filter = %+v, want %+v", got, want)
	}
}

func TestPassesSkipsSystemEvents(t *testing.T) {
	ev := func(stream, typ string) *esdb.ResolvedEvent {
		return &esdb.ResolvedEvent{Event: &esdb.RecordedEvent{StreamID: stream, EventType: typ}}
	}
	patients := eventstore.Filter{Categories: []string{"patient"}}
	cases := []struct {
		ev     *esdb.ResolvedEvent
		filter eventstore.Filter
		want   bool
	}{
		{ev("patient-1", "patient.registered"), eventstore.Filter{}, true},
		{ev("patient-1", "patient.registered"), patients, true},
		{ev("patients_archive-1", "x"), patients, false},
		{ev("invoice-1", "invoice.sent"), patients, false},
		{ev("$$patient-1", "$metadata"), eventstore.Filter{}, false},
		{ev("$ce-patient", "$>"), eventstore.Filter{}, false},
		{ev("$stats-127.0.0.1:2113", "$statsCollected"), eventstore.Filter{}, false},
		{ev("patient-1", "$streamDeleted"), patients, false},
		{&esdb.ResolvedEvent{}, eventstore.Filter{}, false},
	}
	for _, c := range cases {
		if got := passes(c.ev, c.filter); got != c.want {
			rec := c.ev.OriginalEvent()
			t.Errorf("passes(%+v, %v) = %v, want %v", rec, c.filter.Categories, got, c.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	var b backoff
	want := []time.Duration{100, 200, 400, 800, 1600, 3200, 5000, 5000}
	for i, w := range want {
		if got := b.next(); got != w*time.Millisecond {
			t.Fatalf("step %d: %v, want %v", i, got, w*time.Millisecond)
		}
	}
	b.reset()
	if got := b.next(); got != minBackoff {
		t.Fatalf("after reset: %v, want %v", got, minBackoff)
	}
}

func TestReadAllPage(t *testing.T) {
	for _, c := range []struct{ limit, want int }{{1, 64}, {63, 64}, {100, 101}, {5000, 1024}} {
		if got := readAllPage(c.limit); got != c.want {
			t.Errorf("readAllPage(%d) = %d, want %d", c.limit, got, c.want)
		}
	}
}
