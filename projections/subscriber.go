package projections

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/portico-health/portico/eventstore"
)

// Metadata keys of the messages LogSubscriber produces. "name" is the key
// Watermill's own CQRS components read an event's type from.
const (
	MetaName          = "name"
	MetaStream        = "stream"
	MetaVersion       = "version"
	MetaPosition      = "position"
	MetaSchemaVersion = "schema_version"
	MetaCorrelationID = "correlation_id"
	MetaCausationID   = "causation_id"
	MetaEventMetadata = "event_metadata"
)

// StartFunc tells a subscription where to start: the consumer's checkpoint.
// It is asked again after every drop, so a resubscription resumes from what
// was last committed.
type StartFunc func(ctx context.Context, topic string) (eventstore.Position, error)

// LogSubscriber is a Watermill message.Subscriber over an event store's
// global feed, for Postgres and EventStoreDB alike. It keeps one message in
// flight per subscription: the next event is sent only after the previous
// one is acked; a nacked one is sent again after a backoff.
type LogSubscriber struct {
	Store  eventstore.Store
	Start  StartFunc
	Filter func(topic string) eventstore.Filter
	Logger *slog.Logger
	// NackBackoff bounds the wait before a nacked event is sent again.
	NackBackoffMin, NackBackoffMax time.Duration

	mu     sync.Mutex
	closed bool
	cancel []context.CancelFunc
	wg     sync.WaitGroup
}

var _ message.Subscriber = (*LogSubscriber)(nil)

// Subscribe implements message.Subscriber. The topic names the consumer (a
// projection); the channel closes when ctx ends or the subscriber is closed.
func (s *LogSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, eventstore.ErrClosed
	}
	ctx, cancel := context.WithCancel(ctx)
	s.cancel = append(s.cancel, cancel)
	s.wg.Add(1)
	s.mu.Unlock()

	out := make(chan *message.Message)
	go func() {
		defer s.wg.Done()
		defer close(out)
		s.run(ctx, topic, out)
	}()
	return out, nil
}

// Close implements message.Subscriber.
func (s *LogSubscriber) Close() error {
	s.mu.Lock()
	s.closed = true
	for _, c := range s.cancel {
		c()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

func (s *LogSubscriber) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func (s *LogSubscriber) backoffBounds() (time.Duration, time.Duration) {
	lo, hi := s.NackBackoffMin, s.NackBackoffMax
	if lo <= 0 {
		lo = 100 * time.Millisecond
	}
	if hi < lo {
		hi = 30 * time.Second
	}
	return lo, hi
}

// run subscribes, delivers, and resubscribes from the last acked position
// after a drop, until ctx ends.
func (s *LogSubscriber) run(ctx context.Context, topic string, out chan<- *message.Message) {
	var filter eventstore.Filter
	if s.Filter != nil {
		filter = s.Filter(topic)
	}
	lo, hi := s.backoffBounds()
	dropBackoff := lo
	for ctx.Err() == nil {
		from, err := s.Start(ctx, topic)
		if err == nil {
			err = s.follow(ctx, topic, from, filter, out)
		}
		if ctx.Err() != nil {
			return
		}
		s.logger().Warn("projection subscription dropped; resubscribing from its checkpoint", "topic", topic, "err", err, "retry_in", dropBackoff)
		if !sleep(ctx, dropBackoff) {
			return
		}
		dropBackoff = min(dropBackoff*2, hi)
	}
}

func (s *LogSubscriber) follow(ctx context.Context, topic string, from eventstore.Position, filter eventstore.Filter, out chan<- *message.Message) error {
	sub, err := s.Store.Subscribe(ctx, from, filter)
	if err != nil {
		return err
	}
	defer sub.Close()
	lo, hi := s.backoffBounds()
	for {
		env, err := sub.Next(ctx)
		if err != nil {
			return err
		}
		nackBackoff := lo
		for {
			msg := ToMessage(env)
			msg.SetContext(withLookahead(ctx, sub))
			select {
			case out <- msg:
			case <-ctx.Done():
				return ctx.Err()
			}
			select {
			case <-msg.Acked():
			case <-msg.Nacked():
				if !sleep(ctx, nackBackoff) {
					return ctx.Err()
				}
				nackBackoff = min(nackBackoff*2, hi)
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
			break
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// ToMessage turns a stored event into a Watermill message.
func ToMessage(e eventstore.Envelope) *message.Message {
	msg := message.NewMessage(e.ID.String(), []byte(e.Data))
	md, _ := json.Marshal(e.Metadata) // strings and a time: cannot fail
	msg.Metadata.Set(MetaName, e.Type)
	msg.Metadata.Set(MetaStream, e.Stream)
	msg.Metadata.Set(MetaVersion, strconv.FormatInt(e.Version, 10))
	msg.Metadata.Set(MetaPosition, strconv.FormatUint(uint64(e.Position), 10))
	msg.Metadata.Set(MetaSchemaVersion, strconv.Itoa(e.SchemaVersion))
	msg.Metadata.Set(MetaCorrelationID, e.Metadata.CorrelationID)
	msg.Metadata.Set(MetaCausationID, e.Metadata.CausationID)
	msg.Metadata.Set(MetaEventMetadata, string(md))
	return msg
}

// FromMessage recovers the stored event from a message made by ToMessage.
func FromMessage(msg *message.Message) (eventstore.Envelope, error) {
	var e eventstore.Envelope
	id, err := uuid.Parse(msg.UUID)
	if err != nil {
		return e, err
	}
	version, err1 := strconv.ParseInt(msg.Metadata.Get(MetaVersion), 10, 64)
	position, err2 := strconv.ParseUint(msg.Metadata.Get(MetaPosition), 10, 64)
	schema, err3 := strconv.Atoi(msg.Metadata.Get(MetaSchemaVersion))
	if err := errors.Join(err1, err2, err3); err != nil {
		return e, err
	}
	e = eventstore.Envelope{
		ID: id, Stream: msg.Metadata.Get(MetaStream), Version: version, Position: eventstore.Position(position),
		Type: msg.Metadata.Get(MetaName), SchemaVersion: schema, Data: json.RawMessage(msg.Payload),
	}
	if err := json.Unmarshal([]byte(msg.Metadata.Get(MetaEventMetadata)), &e.Metadata); err != nil {
		return e, err
	}
	return e, nil
}

type lookaheadKey struct{}

// withLookahead lets the handler of a message see the events its
// subscription has already fetched after it (eventstore.Lookahead), for the
// read-ahead. Only one message of a subscription is in flight, so they stay
// put while the handler runs.
func withLookahead(ctx context.Context, sub eventstore.Subscription) context.Context {
	if l, ok := sub.(eventstore.Lookahead); ok {
		return context.WithValue(ctx, lookaheadKey{}, l)
	}
	return ctx
}

// buffered are up to max events that follow the message of ctx in its
// subscription and were fetched already; none when the store cannot say.
func buffered(ctx context.Context, max int) []eventstore.Envelope {
	if l, ok := ctx.Value(lookaheadKey{}).(eventstore.Lookahead); ok {
		return l.Buffered(max)
	}
	return nil
}

// skipBuffered tells the subscription of ctx's message that the handler
// applied its buffered events up to through, so that they are not sent as
// messages only to be skipped: under load each such message cost more
// (a goroutine, the middleware, an ack round) than applying the event.
func skipBuffered(ctx context.Context, through eventstore.Position) {
	if l, ok := ctx.Value(lookaheadKey{}).(eventstore.Lookahead); ok {
		l.Skip(through)
	}
}
