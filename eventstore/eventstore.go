// Package eventstore is Portico's event store port: the one interface that the
// Postgres store (eventstore/pgstore, the embedded default) and the EventStoreDB
// store (eventstore/esdbstore, production) implement, and that the shared
// contract suite (eventstore/contract) holds them both to.
//
// The event log is the only source of truth. Everything else (read models,
// checkpoints, search indexes) can be rebuilt from it, so the port is small and
// explicit about the guarantees the rest of the system leans on:
//
//   - Append checks the expected version of the stream and fails with one typed
//     *ConflictError when it does not match; a retried append whose event ids are
//     already stored at that place succeeds without writing twice.
//   - The global log is read in commit order, and a subscriber sees every
//     committed event exactly once, in that order, resumable from a Position.
package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Store is the event store port.
type Store interface {
	// Append writes events at the end of stream if the stream's current version
	// matches expected. It returns the stream's new version and the global
	// position of the last event written (or found, for an idempotent retry).
	Append(ctx context.Context, stream string, expected ExpectedVersion, events ...EventData) (AppendResult, error)

	// ReadStream returns up to limit events of stream with version >= from, in
	// version order. A stream that does not exist reads as empty.
	ReadStream(ctx context.Context, stream string, from int64, limit int) ([]Envelope, error)

	// ReadAll returns up to limit events of the global log whose position is
	// after the given one, in commit order.
	ReadAll(ctx context.Context, after Position, limit int, filter Filter) ([]Envelope, error)

	// Subscribe follows the global log from after the given position: every
	// committed event exactly once, in commit order, until ctx ends or the
	// subscription is closed.
	Subscribe(ctx context.Context, after Position, filter Filter) (Subscription, error)

	// Ping reports whether the store can be reached (for /readyz).
	Ping(ctx context.Context) error

	Close() error
}

// Subscription delivers the global log one event at a time. The caller decides
// when to ask for the next one, so a consumer that has not finished (acked) an
// event never receives the one after it.
type Subscription interface {
	// Next blocks until the next event is committed, ctx ends, or the
	// subscription fails beyond recovery.
	Next(ctx context.Context) (Envelope, error)
	Close() error
}

// Lookahead is a Subscription that can show the events it has already
// fetched after the one Next last returned, without consuming them: Next
// still returns each in turn. A consumer may apply them early (the
// projections' read-ahead) instead of reading the same events again.
type Lookahead interface {
	// Buffered returns up to max of the events already fetched, in order.
	Buffered(max int) []Envelope
	// Skip drops the buffered events up to and including through, as if
	// Next had returned them: the consumer has applied them already, so
	// Next goes on with the first event after through.
	Skip(through Position)
}

// Position is a place in the global log. Start is before the first event.
// In the Postgres store it is the event's gap-free sequence number; in
// EventStoreDB it is the event's commit position in the transaction file.
type Position uint64

// Start is the position before the first event of the log.
const Start Position = 0

// Filter narrows the global log to some stream categories. The zero Filter
// passes everything except the store's own system events.
type Filter struct {
	Categories []string
}

// Matches reports whether the filter passes a stream name.
func (f Filter) Matches(stream string) bool {
	if len(f.Categories) == 0 {
		return true
	}
	c := Category(stream)
	for _, want := range f.Categories {
		if c == want {
			return true
		}
	}
	return false
}

// ExpectedVersion is what Append expects the stream's version to be.
// Stream versions count events: the first event of a stream has version 1, and
// a stream's version is the version of its last event (0 for no stream).
type ExpectedVersion struct {
	kind    expectKind
	version int64
}

type expectKind uint8

const (
	expectAny expectKind = iota
	expectNoStream
	expectExact
)

// Any appends whatever the stream's version is. No concurrency check.
func Any() ExpectedVersion { return ExpectedVersion{kind: expectAny} }

// NoStream appends only if the stream has no events yet.
func NoStream() ExpectedVersion { return ExpectedVersion{kind: expectNoStream} }

// Exactly appends only if the stream's version is v. Exactly(0) is NoStream.
func Exactly(v int64) ExpectedVersion {
	if v <= 0 {
		return NoStream()
	}
	return ExpectedVersion{kind: expectExact, version: v}
}

// IsAny reports whether no concurrency check is asked for.
func (e ExpectedVersion) IsAny() bool { return e.kind == expectAny }

// IsNoStream reports whether the stream must not exist yet.
func (e ExpectedVersion) IsNoStream() bool { return e.kind == expectNoStream }

// Version is the exact version expected, and whether one is.
// NoStream expects version 0.
func (e ExpectedVersion) Version() (int64, bool) {
	switch e.kind {
	case expectExact:
		return e.version, true
	case expectNoStream:
		return 0, true
	}
	return 0, false
}

// Matches reports whether a stream at version current satisfies e.
func (e ExpectedVersion) Matches(current int64) bool {
	v, exact := e.Version()
	return !exact || v == current
}

func (e ExpectedVersion) String() string {
	switch e.kind {
	case expectNoStream:
		return "no stream"
	case expectExact:
		return fmt.Sprintf("version %d", e.version)
	}
	return "any"
}

// AppendResult tells where an append landed.
type AppendResult struct {
	// Version is the stream's version after the append: the version of its
	// last event.
	Version int64
	// Position is the global position of the last event appended.
	Position Position
}

// EventData is an event to append. Its ID makes appends idempotent: derive it
// from the command that caused the event (see DeterministicID) so a retried
// command writes nothing twice.
type EventData struct {
	ID            uuid.UUID
	Type          string
	SchemaVersion int
	Data          json.RawMessage
	Metadata      Metadata
}

// Metadata is what every event carries besides its data: who did it, for which
// clinic, and which request and command caused it.
type Metadata struct {
	ClinicID      string    `json:"clinic_id,omitempty"`
	ActorID       string    `json:"actor_id,omitempty"`
	ActorKind     string    `json:"actor_kind,omitempty"` // staff, portal, system, stripe
	ActorRole     string    `json:"actor_role,omitempty"`
	CorrelationID string    `json:"correlation_id,omitempty"`
	CausationID   string    `json:"causation_id,omitempty"`
	CommandID     string    `json:"command_id,omitempty"`
	RecordedAt    time.Time `json:"recorded_at"`
}

// Envelope is a stored event as it is read back.
type Envelope struct {
	ID            uuid.UUID
	Stream        string
	Version       int64
	Position      Position
	Type          string
	SchemaVersion int
	Data          json.RawMessage
	Metadata      Metadata
}

// ConflictError is the one error a concurrency conflict surfaces as, whatever
// the store. Actual is -1 when the store could not tell the current version.
type ConflictError struct {
	Stream   string
	Expected ExpectedVersion
	Actual   int64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("eventstore: stream %q: expected %s, found version %d", e.Stream, e.Expected, e.Actual)
}

// ErrConflict matches any *ConflictError with errors.Is.
var ErrConflict = errors.New("eventstore: wrong expected version")

// Is makes errors.Is(err, ErrConflict) true for every *ConflictError.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// ErrInvalidEvent is returned for an append the store refuses before writing:
// a malformed stream name, an event without id or type, data that is not JSON.
var ErrInvalidEvent = errors.New("eventstore: invalid event")

// ErrClosed is returned by a store or subscription used after Close.
var ErrClosed = errors.New("eventstore: closed")

// StreamName builds a stream name: "<category>-<id>".
func StreamName(category, id string) string { return category + "-" + id }

// Category is the part of a stream name before the first '-'.
func Category(stream string) string {
	if i := strings.IndexByte(stream, '-'); i >= 0 {
		return stream[:i]
	}
	return stream
}

// ValidateStreamName checks the "<category>-<id>" shape: a lower-case category
// of letters, digits and '_', and a non-empty id.
func ValidateStreamName(stream string) error {
	i := strings.IndexByte(stream, '-')
	if i <= 0 || i == len(stream)-1 {
		return fmt.Errorf("%w: stream name %q is not <category>-<id>", ErrInvalidEvent, stream)
	}
	for _, r := range stream[:i] {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return fmt.Errorf("%w: stream category %q must be lower-case letters, digits or _", ErrInvalidEvent, stream[:i])
		}
	}
	if strings.HasPrefix(stream, "$") {
		return fmt.Errorf("%w: stream names starting with $ are reserved", ErrInvalidEvent)
	}
	return nil
}

// ValidateEvents checks what both stores require of an append.
func ValidateEvents(stream string, events []EventData) error {
	if err := ValidateStreamName(stream); err != nil {
		return err
	}
	if len(events) == 0 {
		return fmt.Errorf("%w: nothing to append", ErrInvalidEvent)
	}
	seen := make(map[uuid.UUID]struct{}, len(events))
	for i, e := range events {
		if e.ID == uuid.Nil {
			return fmt.Errorf("%w: event %d has no id", ErrInvalidEvent, i)
		}
		if _, dup := seen[e.ID]; dup {
			return fmt.Errorf("%w: event id %s appears twice", ErrInvalidEvent, e.ID)
		}
		seen[e.ID] = struct{}{}
		if e.Type == "" {
			return fmt.Errorf("%w: event %d has no type", ErrInvalidEvent, i)
		}
		if len(e.Data) > 0 && !json.Valid(e.Data) {
			return fmt.Errorf("%w: event %d data is not JSON", ErrInvalidEvent, i)
		}
	}
	return nil
}

// idNamespace roots every deterministic event id of Portico.
var idNamespace = uuid.MustParse("6f1d7c2e-4b8a-5e3f-9c61-2a7d0b5e8f14")

// DeterministicID derives an event id from the id of the command that caused
// it and the event's index among that command's events (UUIDv5), so a retried
// command produces the same ids and the store writes nothing twice.
func DeterministicID(commandID string, index int) uuid.UUID {
	return uuid.NewSHA1(idNamespace, fmt.Appendf(nil, "%s/%d", commandID, index))
}
