package esdbstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/portico-health/portico/eventstore"
)

// Subscribe implements eventstore.Store with a catch-up subscription to $all,
// filtered on the server. One goroutine follows the server's subscription and
// hands events to Next one at a time; when the subscription drops it
// resubscribes from the last event it handed out or skipped.
func (s *Store) Subscribe(ctx context.Context, after eventstore.Position, filter eventstore.Filter) (eventstore.Subscription, error) {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, eventstore.ErrClosed
	}
	s.ops.Add(1)
	s.mu.RUnlock()

	runCtx, cancel := context.WithCancel(ctx)
	unhook := context.AfterFunc(s.root, cancel)
	sub := &subscription{
		store:  s,
		ctx:    runCtx,
		filter: filter,
		events: make(chan eventstore.Envelope),
		done:   make(chan struct{}),
		cancel: cancel,
	}
	go func() {
		defer s.ops.Done()
		err := sub.run(runCtx, cursorAfter(after))
		switch {
		case sub.closed.Load() || s.root.Err() != nil:
			err = eventstore.ErrClosed
		case ctx.Err() != nil:
			err = ctx.Err()
		default:
			err = fmt.Errorf("eventstore: subscription: %w", err)
		}
		sub.err = err
		unhook()
		cancel()
		close(sub.done)
	}()
	return sub, nil
}

type subscription struct {
	store *Store
	// ctx is the pump's: it ends with Subscribe's ctx, Close, or the store.
	ctx    context.Context
	filter eventstore.Filter
	// events is unbuffered: an event is handed over only when Next asks, so
	// the position the pump resumes from is always one the caller received.
	events chan eventstore.Envelope
	done   chan struct{}
	err    error // why the pump stopped; written before done is closed
	cancel context.CancelFunc
	closed atomic.Bool
	once   sync.Once
}

// Next implements eventstore.Subscription.
func (sub *subscription) Next(ctx context.Context) (eventstore.Envelope, error) {
	if sub.closed.Load() {
		return eventstore.Envelope{}, eventstore.ErrClosed
	}
	if sub.ctx.Err() != nil {
		// The subscription is ending. The pump may be offering one more
		// event still, and a select would take it as readily as the end:
		// wait for the end, so that a Next after Subscribe's ctx ended
		// reliably reports it.
		select {
		case <-sub.done:
			return eventstore.Envelope{}, sub.err
		case <-ctx.Done():
			return eventstore.Envelope{}, ctx.Err()
		}
	}
	select {
	case env := <-sub.events:
		return env, nil
	case <-sub.done:
		return eventstore.Envelope{}, sub.err
	case <-ctx.Done():
		return eventstore.Envelope{}, ctx.Err()
	}
}

// Close implements eventstore.Subscription.
func (sub *subscription) Close() error {
	sub.once.Do(func() {
		sub.closed.Store(true)
		sub.cancel()
	})
	<-sub.done
	return nil
}

// run follows $all from cur until ctx ends or an error that resubscribing
// cannot cure.
func (sub *subscription) run(ctx context.Context, cur cursor) error {
	var wait backoff
	for {
		err := sub.follow(ctx, &cur, &wait)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if permanent(err) {
			return err
		}
		delay := wait.next()
		slog.Warn("eventstore: EventStoreDB subscription dropped; resubscribing", "err", err, "after_position", cur.pos, "retry_in", delay)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// follow runs one server subscription from cur until it drops. cur moves past
// every event handed to Next or skipped, and an event at or before cur is
// never handed out, so a resubscription neither repeats nor loses an event
// whether or not the server repeats the one at its start position.
func (sub *subscription) follow(ctx context.Context, cur *cursor, wait *backoff) error {
	client := sub.store.currentClient()
	es, err := client.SubscribeToAll(ctx, esdb.SubscribeToAllOptions{
		From:   cur.from(),
		Filter: subscriptionFilter(sub.filter),
	})
	if err != nil {
		sub.store.renewIfDead(client, err)
		return err
	}
	defer es.Close()
	for {
		msg := es.Recv()
		if msg.SubscriptionDropped != nil {
			if msg.SubscriptionDropped.Error != nil {
				return msg.SubscriptionDropped.Error
			}
			return errors.New("subscription dropped")
		}
		wait.reset() // the server is answering
		ev := msg.EventAppeared
		if ev == nil {
			continue // checkpoints, caught-up and fell-behind notices
		}
		pos := positionOf(ev)
		if !cur.before(pos) {
			continue
		}
		if !passes(ev, sub.filter) {
			cur.move(pos)
			continue
		}
		env, err := decodeEvent(ev)
		if err != nil {
			return err
		}
		select {
		case sub.events <- env:
			cur.move(pos)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// subscriptionFilter is the server-side filter for a Filter: no system events,
// and with categories, only streams named "<category>-…". Stream names are
// never system names here (those start with '$'), and the events are checked
// again on arrival, so a prefix filter needs no event-type part.
func subscriptionFilter(f eventstore.Filter) *esdb.SubscriptionFilter {
	if len(f.Categories) == 0 {
		return esdb.ExcludeSystemEventsFilter()
	}
	prefixes := make([]string, len(f.Categories))
	for i, c := range f.Categories {
		prefixes[i] = c + "-"
	}
	return &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: prefixes}
}

// permanent reports whether resubscribing cannot help: an event this store
// cannot decode would come back every time, and so would refused credentials.
func permanent(err error) bool {
	if errors.Is(err, errDecode) {
		return true
	}
	code, ok := errorCode(err)
	return ok && (code == esdb.ErrorCodeUnauthenticated || code == esdb.ErrorCodeAccessDenied)
}

// backoff spaces resubscriptions: 100ms, doubling to 5s, back to 100ms once
// the server answers again.
type backoff struct{ last time.Duration }

const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

func (b *backoff) next() time.Duration {
	if b.last == 0 {
		b.last = minBackoff
	} else {
		b.last = min(2*b.last, maxBackoff)
	}
	return b.last
}

func (b *backoff) reset() { b.last = 0 }
