// Package phiaudit appends PHI access records (domain/audit) to the event
// store before the data they describe leaves the API.
//
// Each process writes chains of its own (streams phiaudit-<chain>, fresh
// chain ids per start), so processes never contend for a chain's next
// number. Within a process, requests hand their records to a queue that
// Writers goroutines serve, one chain each: a writer links whatever is
// waiting (group commit: one append for every record that queued while its
// previous append was in flight) and answers each request once its record
// is durable. Auditing then costs a
// request a share of one append, not an append of its own.
package phiaudit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain/audit"
	"github.com/portico-health/portico/eventstore"
)

// Auditor records accesses. The API depends on this, so a benchmark can
// measure it against a recorder that records nothing; no configuration of
// portald can turn auditing off.
type Auditor interface {
	// Record makes a record durable and returns it linked into its chain.
	Record(ctx context.Context, a audit.Access) (audit.Access, error)
}

// ErrUnavailable wraps every failure to store a record; the API answers
// 503 and shows nothing.
var ErrUnavailable = errors.New("phiaudit: the access record could not be stored")

// maxBatch bounds the records of one append.
const maxBatch = 256

type pending struct {
	a    audit.Access
	done chan result
}

type result struct {
	a   audit.Access
	err error
}

// Recorder is the process's writer of one chain.
type Recorder struct {
	store    eventstore.Store
	source   audit.Source
	logger   *slog.Logger
	chains   []*chain
	queue    chan pending
	stop     chan struct{}
	exited   chan struct{} // closed when every writer has returned
	wg       sync.WaitGroup
	closeErr sync.Once
}

// chain is one writer's chain: its stream and its last record.
type chain struct {
	id      uuid.UUID
	stream  string
	last    *audit.Access // nil before the chain's first record
	version int64
}

// Writers is how many chains, each with its own writer, a process appends
// to at once. One is the default: it waits for each append before the next,
// and everything that queued meanwhile goes into the next one, so records per
// append grow with load. Since pgstore sends a group in one round trip, more
// writers only split the same records into more, smaller appends, each with
// its own per-commit cost (measured: 0.5x unaudited throughput with one
// writer against 0.4x with four; docs/performance.md).
const Writers = 1

// Option changes a default of NewRecorder.
type Option func(*options)

type options struct{ writers int }

// WithWriters sets how many chains and writers the recorder runs (Writers by
// default). Tests that follow one chain use 1.
func WithWriters(n int) Option { return func(o *options) { o.writers = n } }

// NewRecorder starts this process's chains. instance names the process in
// every record's source.
func NewRecorder(store eventstore.Store, instance string, logger *slog.Logger, opts ...Option) *Recorder {
	o := options{writers: Writers}
	for _, opt := range opts {
		opt(&o)
	}
	o.writers = max(o.writers, 1)
	if logger == nil {
		logger = slog.Default()
	}
	r := &Recorder{
		store:  store,
		source: audit.Source{Service: "portico", Instance: instance},
		logger: logger,
		queue:  make(chan pending, 4*maxBatch),
		stop:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	for range o.writers {
		id := uuid.New()
		c := &chain{id: id, stream: eventstore.StreamName(audit.Category, id.String())}
		r.chains = append(r.chains, c)
		r.wg.Add(1)
		go r.run(c)
	}
	go func() { r.wg.Wait(); close(r.exited) }()
	return r
}

// Chain is the first of the recorder's chains: with one writer, its chain.
func (r *Recorder) Chain() uuid.UUID { return r.chains[0].id }

// Chains are the ids of this process's chains.
func (r *Recorder) Chains() []uuid.UUID {
	ids := make([]uuid.UUID, len(r.chains))
	for i, c := range r.chains {
		ids[i] = c.id
	}
	return ids
}

// Record queues a record and waits until it is durable (or fails).
func (r *Recorder) Record(ctx context.Context, a audit.Access) (audit.Access, error) {
	if a.RecordID == uuid.Nil {
		a.RecordID = uuid.New()
	}
	if a.Recorded.IsZero() {
		a.Recorded = time.Now()
	}
	a.Source = r.source
	a.Action = audit.Action(a.Subtype)
	p := pending{a: a, done: make(chan result, 1)}
	select {
	case r.queue <- p:
	case <-r.stop:
		return audit.Access{}, fmt.Errorf("%w: shutting down", ErrUnavailable)
	case <-ctx.Done():
		return audit.Access{}, fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	}
	// Once queued, the record is written whatever the caller does: a
	// request that gave up may still have been recorded, never the reverse.
	select {
	case res := <-p.done:
		return res.a, res.err
	case <-r.exited:
		// Queued as the writer stopped: answered if it was drained.
		select {
		case res := <-p.done:
			return res.a, res.err
		default:
			return audit.Access{}, fmt.Errorf("%w: shutting down", ErrUnavailable)
		}
	}
}

// Close writes what is queued and stops the writer.
func (r *Recorder) Close() {
	r.closeErr.Do(func() { close(r.stop) })
	r.wg.Wait()
}

func (r *Recorder) run(c *chain) {
	defer r.wg.Done()
	for {
		var first pending
		select {
		case first = <-r.queue:
		case <-r.stop:
			// Drain: nothing queued is left unanswered.
			for {
				select {
				case p := <-r.queue:
					r.write(c, []pending{p})
				default:
					return
				}
			}
		}
		batch := []pending{first}
	more:
		for len(batch) < maxBatch {
			select {
			case p := <-r.queue:
				batch = append(batch, p)
			default:
				break more
			}
		}
		r.write(c, batch)
	}
}

// write links a batch after the chain's last record and appends it in one
// go. On failure every request of the batch is told, and the chain's state
// is read back from the store, since an append that reported an error may
// still have committed.
func (r *Recorder) write(c *chain, batch []pending) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	linked := make([]audit.Access, len(batch))
	events := make([]eventstore.EventData, len(batch))
	prev := c.last
	for i, p := range batch {
		a, data := audit.LinkEncoded(p.a, c.id, prev)
		linked[i] = a
		prev = &linked[i]
		events[i] = eventstore.EventData{
			ID:            a.RecordID,
			Type:          a.EventType(),
			SchemaVersion: 1,
			Data:          data,
			Metadata: eventstore.Metadata{
				ClinicID:      clinicOf(a),
				ActorID:       a.Agent.ID,
				ActorKind:     a.Agent.Kind,
				ActorRole:     a.Agent.Role,
				CorrelationID: a.CorrelationID,
				RecordedAt:    a.Recorded,
			},
		}
	}
	res, err := r.store.Append(ctx, c.stream, eventstore.Exactly(c.version), events...)
	if err != nil {
		r.fail(c, batch, err)
		r.reload(ctx, c)
		return
	}
	c.version = res.Version
	c.last = &linked[len(linked)-1]
	for i, p := range batch {
		p.done <- result{a: linked[i]}
	}
}

func (r *Recorder) fail(c *chain, batch []pending, err error) {
	r.logger.Error("PHI access records could not be stored", "count", len(batch), "chain", c.id, "err", err)
	for _, p := range batch {
		p.done <- result{err: fmt.Errorf("%w: %w", ErrUnavailable, err)}
	}
}

// reload reads the chain's last record back after a failed append.
func (r *Recorder) reload(ctx context.Context, c *chain) {
	var last *audit.Access
	var version int64
	for from := int64(1); ; {
		page, err := r.store.ReadStream(ctx, c.stream, from, 500)
		if err != nil {
			r.logger.Error("PHI access chain could not be read back", "chain", c.id, "err", err)
			return // the next append's expected version will tell
		}
		for _, e := range page {
			var a audit.Access
			if json.Unmarshal(e.Data, &a) == nil {
				last, version = &a, e.Version
			}
		}
		if len(page) < 500 {
			break
		}
		from = page[len(page)-1].Version + 1
	}
	c.last, c.version = last, version
}

func clinicOf(a audit.Access) string {
	if a.Agent.ClinicID != uuid.Nil {
		return a.Agent.ClinicID.String()
	}
	return ""
}

// Nop records nothing. Only benchmarks use it, to measure what auditing
// costs; nothing in portald's configuration reaches it.
type Nop struct{}

func (Nop) Record(_ context.Context, a audit.Access) (audit.Access, error) { return a, nil }
