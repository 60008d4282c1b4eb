// Package esdbstore is the EventStoreDB event store, Portico's production store.
//
// It maps the eventstore port onto EventStoreDB's own concepts: a Portico
// stream is an EventStoreDB stream of the same name, a stream version is the
// event's revision plus one, and a Position is the event's commit position in
// EventStoreDB's transaction log, so the global log is the $all stream with
// the server's own system events left out.
package esdbstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/portico-health/portico/eventstore"
)

// Store is the EventStoreDB event store.
type Store struct {
	cfg *esdb.Configuration

	// root ends when the store closes; every call and subscription runs under it.
	root context.Context
	stop context.CancelFunc
	ops  sync.WaitGroup

	mu     sync.RWMutex
	client *esdb.Client
	closed bool
}

var _ eventstore.Store = (*Store)(nil)

// Open connects to the EventStoreDB server named by an esdb:// (or
// esdb+discover://) connection string and checks that it answers.
func Open(ctx context.Context, connection string) (*Store, error) {
	cfg, err := esdb.ParseConnectionString(connection)
	if err != nil {
		// A url.Error repeats the whole URL, password included.
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("eventstore: EventStoreDB connection string: %w", err)
	}
	cfg.Logger = clientLog
	client, err := esdb.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("eventstore: EventStoreDB client: %w", err)
	}
	root, stop := context.WithCancel(context.Background())
	s := &Store{cfg: cfg, client: client, root: root, stop: stop}
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// clientLog sends the client library's log lines to slog. The library logs
// at error level every subscription that drops, including the ones this store
// closes or resubscribes on purpose, so nothing it says is worth more than a
// warning here.
func clientLog(level esdb.LogLevel, format string, args ...any) {
	msg := "esdb client: " + fmt.Sprintf(format, args...)
	switch level {
	case esdb.LogWarn, esdb.LogError:
		slog.Warn(msg)
	default:
		slog.Debug(msg)
	}
}

// Close stops every subscription, waits for calls in flight, and closes the
// connection.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.stop()
	s.ops.Wait()
	return s.client.Close()
}

// begin admits one call: it fails with ErrClosed once the store is closed,
// and ties ctx to the store's life so that Close cuts the call short.
func (s *Store) begin(ctx context.Context) (context.Context, *esdb.Client, func(), error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, nil, nil, eventstore.ErrClosed
	}
	s.ops.Add(1)
	ctx, cancel := context.WithCancel(ctx)
	unhook := context.AfterFunc(s.root, cancel)
	return ctx, s.client, func() {
		unhook()
		cancel()
		s.ops.Done()
	}, nil
}

// fail turns a client error into the store's: ErrClosed when Close cut the
// call short, the caller's own context error when its ctx ended.
func (s *Store) fail(ctx context.Context, client *esdb.Client, what string, err error) error {
	if s.root.Err() != nil {
		return eventstore.ErrClosed
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	s.renewIfDead(client, err)
	return fmt.Errorf("eventstore: %s: %w", what, err)
}

// renewIfDead replaces a client that has given up for good. When the
// client's node discovery fails (about a second of refused connections, e.g.
// while the server restarts) its connection loop exits and every later call
// fails with ErrorCodeConnectionClosed, forever; only a new client recovers.
// The dead one is not closed: closing its request channel would panic any
// goroutine still blocked sending to the loop that has gone.
func (s *Store) renewIfDead(client *esdb.Client, err error) {
	if code, ok := errorCode(err); !ok || code != esdb.ErrorCodeConnectionClosed {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.client != client {
		return
	}
	fresh, err := esdb.NewClient(s.cfg)
	if err != nil {
		return // only a configuration that Open already accepted can fail here
	}
	s.client = fresh
	slog.Warn("eventstore: EventStoreDB client lost its connection for good; reconnecting with a new one")
}

func (s *Store) currentClient() *esdb.Client {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.client
}

// Ping reads the last event of $all: it needs a live connection and the
// read rights on $all that ReadAll and Subscribe need too.
func (s *Store) Ping(ctx context.Context) error {
	ctx, client, done, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer done()
	rs, err := client.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	if err != nil {
		return s.fail(ctx, client, "ping", err)
	}
	defer rs.Close()
	if _, err := rs.Recv(); err != nil && !errors.Is(err, io.EOF) {
		return s.fail(ctx, client, "ping", err)
	}
	return nil
}

// Append implements eventstore.Store.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	if err := eventstore.ValidateEvents(stream, events); err != nil {
		return eventstore.AppendResult{}, err
	}
	proposed, err := encodeEvents(events, time.Now())
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	ctx, client, done, err := s.begin(ctx)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	defer done()

	if res, retried, err := precheck(ctx, client, stream, expected, events); err != nil {
		var ce *eventstore.ConflictError
		if errors.Is(err, eventstore.ErrInvalidEvent) || errors.As(err, &ce) {
			return eventstore.AppendResult{}, err
		}
		return eventstore.AppendResult{}, s.fail(ctx, client, "append to "+stream, err)
	} else if retried {
		return res, nil
	}

	wr, err := client.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{ExpectedRevision: expectedRevision(expected)}, proposed...)
	if err != nil {
		if code, ok := errorCode(err); ok && code == esdb.ErrorCodeWrongExpectedVersion {
			return eventstore.AppendResult{}, &eventstore.ConflictError{
				Stream:   stream,
				Expected: expected,
				Actual:   currentVersion(ctx, client, stream),
			}
		}
		return eventstore.AppendResult{}, s.fail(ctx, client, "append to "+stream, err)
	}
	res := eventstore.AppendResult{Version: int64(wr.NextExpectedVersion) + 1, Position: eventstore.Position(wr.CommitPosition)}
	// The server answers an append it recognised as a retry without a
	// position (the client reports 0). And for a write of several events it is
	// not documented whether the position is the first event's or the last's:
	// each event of a write has its own position (commit = prepare = its own
	// log position), so when commit and prepare agree the answer could be the
	// first event's. Read the last event's position back in both cases.
	if wr.CommitPosition == 0 || (len(events) > 1 && wr.CommitPosition == wr.PreparePosition) {
		pos, err := eventPosition(ctx, client, stream, wr.NextExpectedVersion)
		if err != nil {
			// The events are stored. A retry of the same append finds them.
			return eventstore.AppendResult{}, s.fail(ctx, client, "append to "+stream+": read back position", err)
		}
		res.Position = pos
	}
	return res, nil
}

// expectedRevision maps an expected version onto EventStoreDB's expected
// revision: revisions count from 0 where versions count from 1.
func expectedRevision(e eventstore.ExpectedVersion) esdb.ExpectedRevision {
	v, exact := e.Version()
	switch {
	case !exact:
		return esdb.Any{}
	case v == 0:
		return esdb.NoStream{}
	default:
		return esdb.Revision(uint64(v - 1))
	}
}

// errorCode is the code of the client's *esdb.Error in err's chain.
// (esdb.FromError is no help: its bool is true only for a nil error.)
func errorCode(err error) (esdb.ErrorCode, bool) {
	var e *esdb.Error
	if errors.As(err, &e) && e != nil {
		return e.Code(), true
	}
	return 0, false
}

func isNotFound(err error) bool {
	code, ok := errorCode(err)
	return ok && code == esdb.ErrorCodeResourceNotFound
}

// retryWindow is how many of a stream's latest events an append searches
// for its own event ids before writing, when the server would not (see
// precheck).
//
// EventStoreDB knows where an id is stored only through a cache of recent
// ids, and consults it for expected revision Any alone; for an expected
// revision it compares the ids with the events right after that revision,
// and for an expected revision equal to the stream's current one it checks
// nothing and writes (IndexWriter.CheckCommit in the server). So the store
// reads the end of the stream itself. The limit: ids stored further back than
// retryWindow events are not seen, and two copies of one Any append racing
// each other can both miss and both write (the server's cache may still catch
// the second). Appends that must be exactly-once use an expected version.
const retryWindow = 256

// precheck decides, before anything is written, what the server would get
// wrong about event ids already stored in stream:
//
//   - With Any, the events all stored at consecutive versions are a retry:
//     the append succeeds without writing (retried). Some of them stored, or
//     stored out of order, is ids reused for other events: ErrInvalidEvent.
//   - With an exact version v ≥ 1 while the stream is at v, any of the ids
//     stored is a reuse at another place than where they were first
//     appended, which the server would write again: the first event's id
//     stored is a conflict (as in the Postgres store), another's
//     ErrInvalidEvent.
//
// Everything else is left to the server, which decides it atomically: an
// exact version whose ids are stored right after it is a retry; one whose ids
// are partly stored there, or not at all while the stream has moved on, is a
// wrong expected version; NoStream on an existing stream likewise.
func precheck(ctx context.Context, client *esdb.Client, stream string, expected eventstore.ExpectedVersion, events []eventstore.EventData) (eventstore.AppendResult, bool, error) {
	v, exact := expected.Version()
	if exact && v == 0 {
		return eventstore.AppendResult{}, false, nil // nothing is stored in a stream that does not exist
	}
	tail, err := readTail(ctx, client, stream, events)
	if err != nil {
		return eventstore.AppendResult{}, false, err
	}
	if tail.none() {
		return eventstore.AppendResult{}, false, nil
	}
	if !exact {
		res, ok := tail.retry()
		if !ok {
			return eventstore.AppendResult{}, false, tail.reused(stream, events)
		}
		return res, true, nil
	}
	if tail.version != v {
		return eventstore.AppendResult{}, false, nil // the server answers: a retry or a conflict
	}
	if tail.found[0] != nil {
		return eventstore.AppendResult{}, false, &eventstore.ConflictError{Stream: stream, Expected: expected, Actual: tail.version}
	}
	return eventstore.AppendResult{}, false, tail.reused(stream, events)
}

// tail is what the end of a stream says about an append's event ids.
type tail struct {
	// version is the stream's version when read: 0 for no stream.
	version int64
	// found[i] is where events[i]'s id is stored, nil if not among the
	// stream's last retryWindow events.
	found []*esdb.ResolvedEvent
}

// readTail reads stream backwards from its end, for at most retryWindow
// events, looking for the ids of events. It stops at the first event's id:
// the rest of a retried append has been seen by then.
func readTail(ctx context.Context, client *esdb.Client, stream string, events []eventstore.EventData) (tail, error) {
	t := tail{found: make([]*esdb.ResolvedEvent, len(events))}
	index := make(map[uuid.UUID]int, len(events))
	for i, e := range events {
		index[e.ID] = i
	}
	rs, err := client.ReadStream(ctx, stream, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, retryWindow)
	if err != nil {
		if isNotFound(err) {
			return t, nil
		}
		return t, err
	}
	defer rs.Close()
	for first := true; ; first = false {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) || isNotFound(err) {
			return t, nil
		}
		if err != nil {
			return t, err
		}
		rec := ev.OriginalEvent()
		if first {
			t.version = int64(rec.EventNumber) + 1
		}
		i, ok := index[rec.EventID]
		if !ok {
			continue
		}
		t.found[i] = ev
		if i == 0 {
			return t, nil
		}
	}
}

// none reports whether none of the ids is stored.
func (t tail) none() bool {
	for _, ev := range t.found {
		if ev != nil {
			return false
		}
	}
	return true
}

// retry is the result of the earlier append, if every id is stored at
// consecutive versions, in order.
func (t tail) retry() (eventstore.AppendResult, bool) {
	first := t.found[0]
	if first == nil {
		return eventstore.AppendResult{}, false
	}
	for i, ev := range t.found {
		if ev == nil || ev.OriginalEvent().EventNumber != first.OriginalEvent().EventNumber+uint64(i) {
			return eventstore.AppendResult{}, false
		}
	}
	last := t.found[len(t.found)-1]
	return eventstore.AppendResult{Version: int64(last.OriginalEvent().EventNumber) + 1, Position: positionOf(last)}, true
}

// reused is the error for ids stored elsewhere than this append.
func (t tail) reused(stream string, events []eventstore.EventData) error {
	for i, ev := range t.found {
		if ev != nil {
			return fmt.Errorf("%w: event id %s is already stored in %s at version %d, not as part of this same append", eventstore.ErrInvalidEvent, events[i].ID, stream, ev.OriginalEvent().EventNumber+1)
		}
	}
	return fmt.Errorf("%w: event ids reused in %s", eventstore.ErrInvalidEvent, stream)
}

// currentVersion reads a stream's version after a conflict: -1 if that fails.
func currentVersion(ctx context.Context, client *esdb.Client, stream string) int64 {
	rs, err := client.ReadStream(ctx, stream, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	if err != nil {
		if isNotFound(err) {
			return 0
		}
		return -1
	}
	defer rs.Close()
	ev, err := rs.Recv()
	switch {
	case err == nil:
		return int64(ev.OriginalEvent().EventNumber) + 1
	case errors.Is(err, io.EOF) || isNotFound(err):
		return 0
	}
	return -1
}

// eventPosition reads the global position of the event at revision of stream.
func eventPosition(ctx context.Context, client *esdb.Client, stream string, revision uint64) (eventstore.Position, error) {
	rs, err := client.ReadStream(ctx, stream, esdb.ReadStreamOptions{Direction: esdb.Forwards, From: esdb.Revision(revision)}, 1)
	if err != nil {
		return 0, err
	}
	defer rs.Close()
	ev, err := rs.Recv()
	if errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("event %d of %s not found", revision, stream)
	}
	if err != nil {
		return 0, err
	}
	return positionOf(ev), nil
}

// ReadStream implements eventstore.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, from int64, limit int) ([]eventstore.Envelope, error) {
	ctx, client, done, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	out := make([]eventstore.Envelope, 0, min(max(limit, 0), 1024))
	if limit <= 0 {
		return out, nil
	}
	from = max(from, 1)
	rs, err := client.ReadStream(ctx, stream, esdb.ReadStreamOptions{Direction: esdb.Forwards, From: esdb.Revision(uint64(from - 1))}, uint64(limit))
	if err != nil {
		if isNotFound(err) {
			return out, nil
		}
		return nil, s.fail(ctx, client, "read "+stream, err)
	}
	defer rs.Close()
	for len(out) < limit {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) || isNotFound(err) {
			break
		}
		if err != nil {
			return nil, s.fail(ctx, client, "read "+stream, err)
		}
		env, err := decodeEvent(ev)
		if err != nil {
			return nil, err
		}
		out = append(out, env)
	}
	return out, nil
}

// ReadAll implements eventstore.Store. The client reads $all without a
// server-side filter, so system events and other categories are skipped here,
// a page at a time.
func (s *Store) ReadAll(ctx context.Context, after eventstore.Position, limit int, filter eventstore.Filter) ([]eventstore.Envelope, error) {
	ctx, client, done, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	out := make([]eventstore.Envelope, 0, min(max(limit, 0), 1024))
	if limit <= 0 {
		return out, nil
	}
	cur := cursorAfter(after)
	page := readAllPage(limit)
	for {
		read, err := readAllPageInto(ctx, client, &cur, page, limit, filter, &out)
		if err != nil {
			if errors.Is(err, errDecode) {
				return nil, err
			}
			return nil, s.fail(ctx, client, "read all", err)
		}
		if len(out) >= limit || read < page {
			return out, nil
		}
	}
}

// readAllPage sizes the pages ReadAll reads: enough for limit events and a
// few system events in one round trip, with a floor for filtered reads that
// skip most of what they read.
func readAllPage(limit int) int {
	return min(max(limit+1, 64), 1024)
}

// readAllPageInto reads one page of $all from cur (inclusive: reads from a
// position start with the event at it) and appends the events after cur that
// pass filter. It returns how many events the page held.
func readAllPageInto(ctx context.Context, client *esdb.Client, cur *cursor, page, limit int, filter eventstore.Filter, out *[]eventstore.Envelope) (int, error) {
	rs, err := client.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Forwards, From: cur.from()}, uint64(page))
	if err != nil {
		return 0, err
	}
	defer rs.Close()
	read := 0
	for len(*out) < limit {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return read, err
		}
		read++
		pos := positionOf(ev)
		if !cur.before(pos) {
			continue
		}
		cur.move(pos)
		if !passes(ev, filter) {
			continue
		}
		env, err := decodeEvent(ev)
		if err != nil {
			return read, err
		}
		*out = append(*out, env)
	}
	return read, nil
}

// cursor is a place in $all: before everything, or at one event. A Position
// holds the event's commit position only; for an event written outside an
// explicit transaction (every event this store writes, and every event
// EventStoreDB v20+ writes) the prepare position equals the commit position,
// so the pair is rebuilt exactly from one number.
type cursor struct {
	pos uint64
	set bool
}

func cursorAfter(p eventstore.Position) cursor {
	return cursor{pos: uint64(p), set: p != eventstore.Start}
}

// from is where the server should start: $all's start, or the event at cur.
func (c cursor) from() esdb.AllPosition {
	if !c.set {
		return esdb.Start{}
	}
	return esdbPosition(eventstore.Position(c.pos))
}

// before reports whether an event at pos comes after the cursor.
func (c cursor) before(pos eventstore.Position) bool {
	return !c.set || uint64(pos) > c.pos
}

func (c *cursor) move(pos eventstore.Position) {
	c.pos, c.set = uint64(pos), true
}

// esdbPosition is a Position as the client takes it.
func esdbPosition(p eventstore.Position) esdb.Position {
	return esdb.Position{Commit: uint64(p), Prepare: uint64(p)}
}

// positionOf is an event's commit position.
func positionOf(ev *esdb.ResolvedEvent) eventstore.Position {
	if rec := ev.OriginalEvent(); rec != nil && rec.Position.Commit != 0 {
		return eventstore.Position(rec.Position.Commit)
	}
	if ev.Commit != nil {
		return eventstore.Position(*ev.Commit)
	}
	return 0
}

// isSystem reports whether an event is EventStoreDB's own: stream metadata,
// projections' links, statistics and the like, all of which have a type or a
// stream name starting with '$'.
func isSystem(rec *esdb.RecordedEvent) bool {
	return strings.HasPrefix(rec.EventType, "$") || strings.HasPrefix(rec.StreamID, "$")
}

// passes reports whether an event of the global log belongs to Portico and
// to the filter's categories.
func passes(ev *esdb.ResolvedEvent, filter eventstore.Filter) bool {
	rec := ev.OriginalEvent()
	return rec != nil && !isSystem(rec) && filter.Matches(rec.StreamID)
}

// storedMetadata is an event's user metadata in EventStoreDB: Portico's
// metadata, plus the schema version that EventStoreDB has no field for.
type storedMetadata struct {
	eventstore.Metadata
	SchemaVersion int `json:"schema_version"`
}

// encodeEvents turns events into the client's, filled in as the Postgres
// store fills them: {} for no data, schema version 1 by default, and a
// recorded time (UTC, to the microsecond, as Postgres keeps it) of now.
func encodeEvents(events []eventstore.EventData, now time.Time) ([]esdb.EventData, error) {
	now = now.UTC()
	out := make([]esdb.EventData, len(events))
	for i, e := range events {
		data := []byte(e.Data)
		if len(data) == 0 {
			data = []byte(`{}`)
		}
		md := storedMetadata{Metadata: e.Metadata, SchemaVersion: e.SchemaVersion}
		if md.SchemaVersion <= 0 {
			md.SchemaVersion = 1
		}
		if md.RecordedAt.IsZero() {
			md.RecordedAt = now
		}
		md.RecordedAt = md.RecordedAt.UTC().Truncate(time.Microsecond)
		meta, err := json.Marshal(md)
		if err != nil {
			return nil, fmt.Errorf("%w: event %d metadata: %v", eventstore.ErrInvalidEvent, i, err)
		}
		out[i] = esdb.EventData{
			EventID:     e.ID,
			EventType:   e.Type,
			ContentType: esdb.ContentTypeJson,
			Data:        data,
			Metadata:    meta,
		}
	}
	return out, nil
}

// errDecode marks a stored event this store cannot read: retrying will not help.
var errDecode = errors.New("eventstore: undecodable event")

// decodeEvent turns a stored event back into an Envelope. An event without
// Portico metadata (written by another tool) reads with empty metadata,
// schema version 1 and the server's creation time.
func decodeEvent(ev *esdb.ResolvedEvent) (eventstore.Envelope, error) {
	rec := ev.OriginalEvent()
	if rec == nil {
		return eventstore.Envelope{}, fmt.Errorf("%w: read result without an event", errDecode)
	}
	var md storedMetadata
	if len(rec.UserMetadata) > 0 {
		if err := json.Unmarshal(rec.UserMetadata, &md); err != nil {
			return eventstore.Envelope{}, fmt.Errorf("%w: %s@%d metadata: %v", errDecode, rec.StreamID, rec.EventNumber, err)
		}
	}
	if md.SchemaVersion <= 0 {
		md.SchemaVersion = 1
	}
	if md.RecordedAt.IsZero() {
		md.RecordedAt = rec.CreatedDate
	}
	return eventstore.Envelope{
		ID:            rec.EventID,
		Stream:        rec.StreamID,
		Version:       int64(rec.EventNumber) + 1,
		Position:      positionOf(ev),
		Type:          rec.EventType,
		SchemaVersion: md.SchemaVersion,
		Data:          json.RawMessage(rec.Data),
		Metadata:      md.Metadata,
	}, nil
}
