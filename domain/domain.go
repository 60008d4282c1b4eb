// Package domain holds what Portico decides: aggregates that validate a
// command against their state, then record past-tense events; state changes
// only in each aggregate's one Apply function, whether the event was just
// recorded or replayed from the log.
package domain

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sync"
)

// Event is something that happened, named in the past tense.
type Event interface {
	EventType() string
}

// Aggregate is a consistency boundary kept in one event stream.
type Aggregate interface {
	// Apply changes state for one event. It must not fail: events are facts.
	Apply(Event)
	// Root gives the aggregate's version bookkeeping and pending events.
	AggregateRoot() *Root
}

// Root tracks what an aggregate loaded and what it recorded since.
// Embed it in an aggregate.
type Root struct {
	version int64
	pending []Event
}

// AggregateRoot lets an embedding aggregate satisfy Aggregate.
func (c *Root) AggregateRoot() *Root { return c }

// Version is the stream version the aggregate was loaded at.
func (c *Root) Version() int64 { return c.version }

// Pending are the events recorded since loading, in order.
func (c *Root) Pending() []Event { return c.pending }

// Loaded marks events as replayed from the store up to version.
func (c *Root) Loaded(version int64) { c.version = version }

// Saved clears pending events after they reached the store.
func (c *Root) Saved(version int64) {
	c.version = version
	c.pending = nil
}

// Record applies a new event to a and remembers it for saving.
func Record(a Aggregate, e Event) {
	a.Apply(e)
	ch := a.AggregateRoot()
	ch.pending = append(ch.pending, e)
}

// IsNew reports whether the aggregate has no stored or recorded events.
func IsNew(a Aggregate) bool {
	ch := a.AggregateRoot()
	return ch.version == 0 && len(ch.pending) == 0
}

var (
	registryMu sync.RWMutex
	registry   = map[string]reflect.Type{}
)

// Register makes event types decodable from the log. Call it from the init of
// the package that defines them.
func Register(events ...Event) {
	registryMu.Lock()
	defer registryMu.Unlock()
	for _, e := range events {
		t := reflect.TypeOf(e)
		if prev, ok := registry[e.EventType()]; ok && prev != t {
			panic(fmt.Sprintf("domain: event type %q registered twice (%v and %v)", e.EventType(), prev, t))
		}
		registry[e.EventType()] = t
	}
}

// Decode turns a stored event back into its Go value.
func Decode(eventType string, data []byte) (Event, error) {
	registryMu.RLock()
	t, ok := registry[eventType]
	registryMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("domain: unknown event type %q", eventType)
	}
	v := reflect.New(t)
	if err := json.Unmarshal(data, v.Interface()); err != nil {
		return nil, fmt.Errorf("domain: decode %s: %w", eventType, err)
	}
	return v.Elem().Interface().(Event), nil
}

// Known reports whether an event type is registered.
func Known(eventType string) bool {
	registryMu.RLock()
	defer registryMu.RUnlock()
	_, ok := registry[eventType]
	return ok
}
