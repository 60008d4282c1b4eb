// Package pgstore is the Postgres event store, Portico's embedded default.
//
// Appends are serialised through one row (eventstore.head) whose lock each
// appending transaction holds until it commits. Global positions are therefore
// gap-free and handed out in commit order, and a reader that asks for
// "position > N" can never pass an event that commits later. The price is that
// appends commit one transaction at a time; the store wins the throughput back
// with group commit: committer goroutines gather the appends waiting at that
// moment and commit them in one transaction, each still checked against its
// own expected version. A group goes to Postgres in one round trip, so the
// head lock is held only while the database runs it (commitOptimistic).
// docs/architecture.md compares the alternatives.
package pgstore

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/internal/pgdb"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations is the event store's schema.
func Migrations() pgdb.Migration {
	return pgdb.Embedded("eventstore", migrationFiles, "migrations")
}

// notifyChannel carries a wake-up hint after each commit. It is only a hint:
// subscribers poll as well, so a lost notification delays, never loses, an event.
const notifyChannel = "eventstore_appended"

// Config tunes the store. The zero value is ready to use.
type Config struct {
	// MaxBatchEvents caps how many events one group commit writes. 2000 by default.
	MaxBatchEvents int
	// Committers is how many groups may be in flight at once. 2 by default:
	// while one group's round trip is under way the next gathers and sends
	// its own, which waits in Postgres for the head lock and not here.
	Committers int
	// PollInterval is how often an idle subscription reads the log even
	// without a notification. 1s by default.
	PollInterval time.Duration
	// ReadBatch is how many events a subscription fetches per query. 500 by default.
	ReadBatch int
	// Linger is how long a subscription woken by a commit waits before it
	// reads, so that commits arriving meanwhile are read, and projected,
	// together. 10ms by default; under a steady stream of small commits
	// (an access record per PHI read) it turns hundreds of reads and
	// projection transactions a second into tens. Negative: no wait.
	Linger time.Duration
	// Logger receives operational warnings. slog.Default() by default.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.MaxBatchEvents <= 0 {
		c.MaxBatchEvents = 2000
	}
	if c.Committers <= 0 {
		c.Committers = 2
	}
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.Linger == 0 {
		c.Linger = 10 * time.Millisecond
	}
	if c.ReadBatch <= 0 {
		c.ReadBatch = 500
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Store is the Postgres event store.
type Store struct {
	pool *pgxpool.Pool
	// committers are the group committers' own connections, planned for
	// key lookups only (committerSettings).
	committers *pgxpool.Pool
	cfg        Config
	reqs       chan *appendRequest
	wake       broadcaster
	heads      categoryHeads
	closed     chan struct{}
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	once       sync.Once
}

var _ eventstore.Store = (*Store)(nil)

// Open migrates the event store schema and starts the store on pool. The pool
// stays the caller's: Close does not close it.
func Open(ctx context.Context, pool *pgxpool.Pool, cfg Config) (*Store, error) {
	if err := pgdb.Migrate(ctx, pool, Migrations()); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	pc := pool.Config()
	pc.MaxConns, pc.MinConns = int32(cfg.Committers), 0
	for k, v := range committerSettings {
		pc.ConnConfig.RuntimeParams[k] = v
	}
	committers, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	s := &Store{
		pool:       pool,
		committers: committers,
		cfg:        cfg,
		reqs:       make(chan *appendRequest, 1024),
		closed:     make(chan struct{}),
		cancel:     cancel,
	}
	s.wake.init()
	s.wg.Add(1 + cfg.Committers)
	for range cfg.Committers {
		go s.appendLoop(runCtx)
	}
	go s.listenLoop(runCtx)
	return s, nil
}

// Close stops the store. Appends waiting to be committed fail with ErrClosed.
func (s *Store) Close() error {
	s.once.Do(func() {
		close(s.closed)
		s.cancel()
		s.wg.Wait()
		s.committers.Close()
	})
	return nil
}

// Ping checks the database.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

type appendRequest struct {
	ctx      context.Context
	stream   string
	expected eventstore.ExpectedVersion
	events   []eventstore.EventData
	done     chan appendResponse
}

type appendResponse struct {
	result eventstore.AppendResult
	err    error
}

// Append implements eventstore.Store.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	if err := eventstore.ValidateEvents(stream, events); err != nil {
		return eventstore.AppendResult{}, err
	}
	now := time.Now().UTC()
	normalised := make([]eventstore.EventData, len(events))
	for i, e := range events {
		if len(e.Data) == 0 {
			e.Data = json.RawMessage(`{}`)
		}
		if e.SchemaVersion <= 0 {
			e.SchemaVersion = 1
		}
		if e.Metadata.RecordedAt.IsZero() {
			e.Metadata.RecordedAt = now
		}
		// Postgres keeps microseconds; trim now so what is returned by a read
		// equals what was appended.
		e.Metadata.RecordedAt = e.Metadata.RecordedAt.UTC().Truncate(time.Microsecond)
		normalised[i] = e
	}
	req := &appendRequest{ctx: ctx, stream: stream, expected: expected, events: normalised, done: make(chan appendResponse, 1)}
	select {
	case s.reqs <- req:
	case <-s.closed:
		return eventstore.AppendResult{}, eventstore.ErrClosed
	case <-ctx.Done():
		return eventstore.AppendResult{}, ctx.Err()
	}
	select {
	case resp := <-req.done:
		return resp.result, resp.err
	case <-ctx.Done():
		// The append may still commit; a retry with the same event ids is
		// idempotent, so the caller can find out safely.
		return eventstore.AppendResult{}, ctx.Err()
	}
}

// appendLoop is the group committer: whatever appends are waiting when the
// previous transaction ends go into the next one together.
func (s *Store) appendLoop(ctx context.Context) {
	defer s.wg.Done()
	batch := make([]*appendRequest, 0, 64)
	for {
		batch = batch[:0]
		select {
		case req := <-s.reqs:
			batch = append(batch, req)
		case <-s.closed:
			s.failPending(eventstore.ErrClosed)
			return
		}
		n := len(batch[0].events)
	gather:
		for n < s.cfg.MaxBatchEvents {
			select {
			case req := <-s.reqs:
				batch = append(batch, req)
				n += len(req.events)
			default:
				break gather
			}
		}
		s.commit(ctx, batch)
	}
}

func (s *Store) failPending(err error) {
	for {
		select {
		case req := <-s.reqs:
			req.done <- appendResponse{err: err}
		default:
			return
		}
	}
}

// storedEvent is an event id already in the log, for idempotency checks.
type storedEvent struct {
	stream   string
	version  int64
	position eventstore.Position
}

// commit decides and writes one group of appends in one transaction.
func (s *Store) commit(ctx context.Context, batch []*appendRequest) {
	live := batch[:0:0]
	for _, req := range batch {
		if err := req.ctx.Err(); err != nil {
			req.done <- appendResponse{err: err}
			continue
		}
		live = append(live, req)
	}
	if len(live) == 0 {
		return
	}
	results, err := s.commitOptimistic(ctx, live)
	if err != nil {
		// A version that moved, an id already stored (a retry), or a
		// broken connection: the checked path decides each append alone.
		results, err = s.commitTx(ctx, live)
	}
	if err != nil {
		if ctx.Err() != nil {
			err = eventstore.ErrClosed
		}
		for _, req := range live {
			req.done <- appendResponse{err: fmt.Errorf("eventstore: append to %s: %w", req.stream, err)}
		}
		return
	}
	for i, req := range live {
		req.done <- results[i]
	}
	s.wake.signal()
}

// errNotOptimistic sends a group the checked way without trying.
var errNotOptimistic = errors.New("pgstore: group needs the checked commit")

// commitOptimistic writes a group as one statement, on the bet that every
// append in it will succeed, as almost all do: it takes the head lock (the
// UPDATE of eventstore.head), checks the expected versions (a mismatch
// raises an error), inserts the events with positions and versions computed
// in the database, moves the streams and notifies, and commits as the
// statement ends. One statement rather than a transaction of nine: each
// statement costs Postgres more to start, lock and finish than these rows
// cost to write, and the audit trail commits hundreds of small groups a
// second (docs/performance.md).
//
// The statement's snapshot is taken before it waits for the head lock, so
// its reads of eventstore.streams may miss an append that committed while
// it waited. Such an append wrote the very (stream, version) rows this one
// would write, so the unique index refuses the insert; any error rolls the
// group back and commitTx decides it append by append, under the lock.
func (s *Store) commitOptimistic(ctx context.Context, batch []*appendRequest) ([]appendResponse, error) {
	var (
		streams    []string // one per append, with its expected version, event count and category
		wants      []int64
		counts     []int64
		categories []string
		seen       = make(map[string]bool, len(batch))
		ids        = make(map[uuid.UUID]bool)
		rows       eventRows
		voff       []int64 // per event: its place within its append
		slot       []int32 // per event: its append's place in the group (1-based)
	)
	for i, req := range batch {
		if seen[req.stream] {
			// Two appends to one stream: the second's expected version
			// depends on the first, which only the checked path follows.
			return nil, errNotOptimistic
		}
		seen[req.stream] = true
		streams = append(streams, req.stream)
		want := int64(-1)
		if v, exact := req.expected.Version(); exact {
			want = v
		}
		wants = append(wants, want)
		counts = append(counts, int64(len(req.events)))
		categories = append(categories, eventstore.Category(req.stream))
		for k, e := range req.events {
			if ids[e.ID] {
				return nil, errNotOptimistic
			}
			ids[e.ID] = true
			rows.add(0, 0, req.stream, e)
			voff = append(voff, int64(k+1))
			slot = append(slot, int32(i+1))
		}
	}
	n := int64(rows.len())
	cats := uniqueCategories(rows.category)
	payload := strings.Join(cats, ",")
	if len(payload) > 7000 { // see notifyPayload
		payload = ""
	}

	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var (
		base    int64
		current []int64
	)
	err := s.committers.QueryRow(ctx, commitGroup,
		rows.id, rows.category, voff, slot, rows.typ, rows.schema, rows.data, rows.meta, rows.recorded,
		n, streams, wants, categories, counts, notifyChannel, payload).Scan(&base, &current, nil)
	if err != nil {
		return nil, err
	}

	results := make([]appendResponse, len(batch))
	position := base
	for i := range batch {
		position += counts[i]
		results[i] = appendResponse{result: eventstore.AppendResult{
			Version:  current[i] + counts[i],
			Position: eventstore.Position(position),
		}}
	}
	s.heads.note(cats, position)
	return results, nil
}

// committerSettings keep one generic plan of commitGroup per connection,
// made of key lookups only. Planning it afresh for every group cost more CPU
// than running it. A generic plan made while eventstore.streams was small
// would otherwise join it by a sequential scan or a hash forever after (seen
// without autovacuum: a 1M-event seed slowing from 8,000 to 4,000 events/s),
// so on these connections only nested loops over indexes are on the menu:
// the statement touches a handful of rows by key whatever the log's size.
var committerSettings = map[string]string{
	"plan_cache_mode":   "force_generic_plan",
	"enable_seqscan":    "off",
	"enable_hashjoin":   "off",
	"enable_mergejoin":  "off",
	"enable_bitmapscan": "off",
}

// commitGroup is commitOptimistic's statement. The CTE chk is read by the
// events insert so that its check runs before any row is written; plain SQL
// has no RAISE, so a stale expected version aborts through a cast that
// cannot succeed, evaluated only for a mismatch.
const commitGroup = `WITH h AS (
	UPDATE eventstore.head SET position = position + $10 WHERE id RETURNING position - $10 AS base
), cur AS (
	SELECT u.s, u.w, u.c, u.n, u.i, coalesce(st.version, 0) AS v
	FROM unnest($11::text[], $12::bigint[], $13::text[], $14::bigint[]) WITH ORDINALITY AS u(s, w, c, n, i)
	LEFT JOIN eventstore.streams st ON st.stream = u.s
), chk AS (
	SELECT array_agg(v ORDER BY i) AS versions,
		max(CASE WHEN w >= 0 AND w <> v THEN ('eventstore: stale expected version for ' || s)::int END) AS never
	FROM cur
), ev AS (
	INSERT INTO eventstore.events
		(position, event_id, stream, category, version, type, schema_version, data, metadata, recorded_at)
	SELECT h.base + u.o, u.id, ($11::text[])[u.a], u.c, chk.versions[u.a] + u.vo, u.t, u.sv, u.d, u.m, u.r
	FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::int[], $5::text[], $6::int[], $7::text[], $8::text[], $9::timestamptz[])
		WITH ORDINALITY AS u(id, c, vo, a, t, sv, d, m, r, o)
	CROSS JOIN h CROSS JOIN chk
	WHERE chk.never IS NULL
), su AS (
	INSERT INTO eventstore.streams (stream, category, version)
	SELECT s, c, v + n FROM cur
	ON CONFLICT (stream) DO UPDATE SET version = excluded.version
)
SELECT h.base, chk.versions,
	pg_notify($15, CASE WHEN $16::text = '' THEN (h.base + $10)::text ELSE (h.base + $10)::text || ' ' || $16::text END)
FROM h CROSS JOIN chk`

func (s *Store) commitTx(ctx context.Context, batch []*appendRequest) ([]appendResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	// BEGIN travels with the first batch and COMMIT with the second: a group
	// costs two round trips, not four. Each round trip is also a wait for the
	// Postgres backend to be scheduled, and on a busy host that wait, not the
	// WAL flush, is what a commit costs (docs/performance.md).
	defer releaseAfterTx(conn)

	streamNames := make([]string, 0, len(batch))
	var ids []uuid.UUID
	for _, req := range batch {
		streamNames = append(streamNames, req.stream)
		for _, e := range req.events {
			ids = append(ids, e.ID)
		}
	}

	// One round trip: take the head lock, then (under it) read the versions
	// of the streams involved and any of the event ids already stored.
	var head int64
	versions := make(map[string]int64, len(batch))
	stored := make(map[uuid.UUID]storedEvent)
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	// A cached generic plan for `= ANY($1)` made while the tables were nearly
	// empty stays a sequential scan as they grow (seen when autovacuum is off),
	// so the lookups below are planned for the ids actually sent.
	b.Queue(`SET LOCAL plan_cache_mode = force_custom_plan`)
	b.Queue(`SELECT position FROM eventstore.head WHERE id FOR UPDATE`).QueryRow(func(row pgx.Row) error {
		return row.Scan(&head)
	})
	b.Queue(`SELECT stream, version FROM eventstore.streams WHERE stream = ANY($1)`, streamNames).Query(func(rows pgx.Rows) error {
		var name string
		var v int64
		_, err := pgx.ForEachRow(rows, []any{&name, &v}, func() error { versions[name] = v; return nil })
		return err
	})
	b.Queue(`SELECT event_id, stream, version, position FROM eventstore.events WHERE event_id = ANY($1)`, ids).Query(func(rows pgx.Rows) error {
		var id uuid.UUID
		var se storedEvent
		var pos int64
		_, err := pgx.ForEachRow(rows, []any{&id, &se.stream, &se.version, &pos}, func() error {
			se.position = eventstore.Position(pos)
			stored[id] = se
			return nil
		})
		return err
	})
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return nil, err
	}

	var rows eventRows
	written := make(map[string]bool, len(batch))
	results := make([]appendResponse, len(batch))
	position := head
	for i, req := range batch {
		current := versions[req.stream]
		if res, found, err := idempotent(req, stored); found {
			results[i] = appendResponse{result: res, err: err}
			continue
		}
		if !req.expected.Matches(current) {
			results[i] = appendResponse{err: &eventstore.ConflictError{Stream: req.stream, Expected: req.expected, Actual: current}}
			continue
		}
		for _, e := range req.events {
			position++
			current++
			rows.add(position, current, req.stream, e)
			// A retry of this very append later in the same group is idempotent.
			stored[e.ID] = storedEvent{stream: req.stream, version: current, position: eventstore.Position(position)}
		}
		versions[req.stream] = current
		written[req.stream] = true
		results[i] = appendResponse{result: eventstore.AppendResult{Version: current, Position: eventstore.Position(position)}}
	}
	if rows.len() == 0 {
		_, err := conn.Exec(ctx, `COMMIT`)
		return results, err
	}

	touched := make([]string, 0, len(written))
	touchedCategories := make([]string, 0, len(written))
	touchedVersions := make([]int64, 0, len(written))
	for name := range written {
		touched = append(touched, name)
		touchedCategories = append(touchedCategories, eventstore.Category(name))
		touchedVersions = append(touchedVersions, versions[name])
	}
	b = &pgx.Batch{}
	b.Queue(`INSERT INTO eventstore.events
		(position, event_id, stream, category, version, type, schema_version, data, metadata, recorded_at)
		SELECT p, id, s, c, v, t, sv, d, m, r
		FROM unnest($1::bigint[], $2::uuid[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::int[], $8::text[], $9::text[], $10::timestamptz[])
		AS u(p, id, s, c, v, t, sv, d, m, r)`,
		rows.position, rows.id, rows.stream, rows.category, rows.version, rows.typ, rows.schema, rows.data, rows.meta, rows.recorded)
	b.Queue(`INSERT INTO eventstore.streams (stream, category, version)
		SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])
		ON CONFLICT (stream) DO UPDATE SET version = excluded.version`,
		touched, touchedCategories, touchedVersions)
	b.Queue(`UPDATE eventstore.head SET position = $1 WHERE id`, position)
	cats := uniqueCategories(rows.category)
	b.Queue(`SELECT pg_notify($1, $2)`, notifyChannel, notifyPayload(position, cats))
	b.Queue(`COMMIT`)
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return nil, err
	}
	s.heads.note(cats, position)
	return results, nil
}

// releaseAfterTx returns the connection of a group commit to the pool. A
// group that failed part way left its transaction open or aborted: it is
// rolled back, and a connection that cannot even do that is closed, never
// handed to the next user in a transaction.
func releaseAfterTx(conn *pgxpool.Conn) {
	if conn.Conn().PgConn().TxStatus() != 'I' {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(ctx, `ROLLBACK`); err != nil {
			_ = conn.Conn().Close(ctx)
		}
	}
	conn.Release()
}

func uniqueCategories(all []string) []string {
	var out []string
	for _, c := range all {
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// notifyPayload is "<position> <category>,<category>…": the categories let
// a subscription of other categories sleep on instead of reading.
func notifyPayload(position int64, cats []string) string {
	p := strconv.FormatInt(position, 10) + " " + strings.Join(cats, ",")
	if len(p) > 7000 { // NOTIFY payloads stop at 8000 bytes: then say only where
		return strconv.FormatInt(position, 10)
	}
	return p
}

// categoryHeads is the newest position this process knows of, per category,
// from its own commits and other processes' notifications: a hint that lets
// a woken subscription skip a read that would find nothing. A payload
// without categories raises all, which wakes every subscription.
type categoryHeads struct {
	mu  sync.Mutex
	m   map[string]int64
	all int64
}

func (h *categoryHeads) note(cats []string, position int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(cats) == 0 {
		h.all = max(h.all, position)
		return
	}
	if h.m == nil {
		h.m = map[string]int64{}
	}
	for _, c := range cats {
		h.m[c] = max(h.m[c], position)
	}
}

func (h *categoryHeads) noteNotification(payload string) {
	pos, cats, _ := strings.Cut(payload, " ")
	p, err := strconv.ParseInt(pos, 10, 64)
	if err != nil {
		p = math.MaxInt64 // unreadable: wake everyone
	}
	var list []string
	if cats != "" {
		list = strings.Split(cats, ",")
	}
	h.note(list, p)
}

// advanced reports whether something past after may match filter.
func (h *categoryHeads) advanced(filter eventstore.Filter, after eventstore.Position) bool {
	if len(filter.Categories) == 0 {
		return true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.all > int64(after) {
		return true
	}
	for _, c := range filter.Categories {
		if h.m[c] > int64(after) {
			return true
		}
	}
	return false
}

// idempotent reports whether req's events are all stored already at the
// place req asked for; then the append succeeds without writing. Some but not
// all of them stored, or stored elsewhere, is a conflict: the ids were reused
// for different events.
func idempotent(req *appendRequest, stored map[uuid.UUID]storedEvent) (eventstore.AppendResult, bool, error) {
	first, ok := stored[req.events[0].ID]
	if !ok {
		for _, e := range req.events[1:] {
			if _, ok := stored[e.ID]; ok {
				return eventstore.AppendResult{}, true, reused(req, e.ID)
			}
		}
		return eventstore.AppendResult{}, false, nil
	}
	if want, exact := req.expected.Version(); exact && first.version != want+1 {
		return eventstore.AppendResult{}, true, &eventstore.ConflictError{Stream: req.stream, Expected: req.expected, Actual: first.version - 1}
	}
	last := first
	for i, e := range req.events {
		se, ok := stored[e.ID]
		if !ok || se.stream != req.stream || se.version != first.version+int64(i) {
			return eventstore.AppendResult{}, true, reused(req, e.ID)
		}
		last = se
	}
	return eventstore.AppendResult{Version: last.version, Position: last.position}, true, nil
}

func reused(req *appendRequest, id uuid.UUID) error {
	return fmt.Errorf("%w: event id %s is already stored elsewhere than this append to %s", eventstore.ErrInvalidEvent, id, req.stream)
}

// eventRows holds one group's new events column by column for one unnest insert.
type eventRows struct {
	position, version []int64
	id                []uuid.UUID
	stream, category  []string
	typ, data, meta   []string
	schema            []int32
	recorded          []time.Time
}

func (r *eventRows) len() int { return len(r.position) }

func (r *eventRows) add(position, version int64, stream string, e eventstore.EventData) {
	meta, _ := json.Marshal(e.Metadata) // a struct of strings and a time cannot fail to marshal
	r.position = append(r.position, position)
	r.version = append(r.version, version)
	r.id = append(r.id, e.ID)
	r.stream = append(r.stream, stream)
	r.category = append(r.category, eventstore.Category(stream))
	r.typ = append(r.typ, e.Type)
	r.schema = append(r.schema, int32(e.SchemaVersion))
	r.data = append(r.data, string(e.Data))
	r.meta = append(r.meta, string(meta))
	r.recorded = append(r.recorded, e.Metadata.RecordedAt)
}

const selectEnvelope = `SELECT position, event_id, stream, version, type, schema_version, data, metadata FROM eventstore.events `

// ReadStream implements eventstore.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, from int64, limit int) ([]eventstore.Envelope, error) {
	if from < 1 {
		from = 1
	}
	rows, err := s.pool.Query(ctx, selectEnvelope+`WHERE stream = $1 AND version >= $2 ORDER BY version LIMIT $3`, stream, from, limit)
	if err != nil {
		return nil, fmt.Errorf("eventstore: read %s: %w", stream, err)
	}
	return scanEnvelopes(rows, limit)
}

// inCategoryAfter selects a category's events after a position (alias ev)
// in a form only the (category, position) index can serve. Written as
// "category = c AND position > p", Postgres may walk the position index
// instead and filter, betting on an early match for its LIMIT: it did, for a
// generic plan (and for any plan inside a LATERAL, where the category is not
// known), and stepped over every access record after a projection's
// position on each read (142 ms at 150,000 records, growing with the trail).
// Row comparisons give the position index nothing to bet on.
func inCategoryAfter(category, position string) string {
	return `(ev.category, ev.position) > (` + category + `, ` + position + `) AND (ev.category, ev.position) <= (` + category + `, 9223372036854775807)`
}

// The reads of some categories after a position ($1): a page of one
// category ($3) or of several ($3, merged) of at most $2 events, and a count
// of several ($2).
var (
	readCategorySQL   = selectEnvelope + `ev WHERE ` + inCategoryAfter("$3", "$1") + ` ORDER BY ev.category, ev.position LIMIT $2`
	readCategoriesSQL = `SELECT e.position, e.event_id, e.stream, e.version, e.type, e.schema_version, e.data, e.metadata
		FROM unnest($3::text[]) AS c(category)
		CROSS JOIN LATERAL (SELECT * FROM eventstore.events ev
			WHERE ` + inCategoryAfter("c.category", "$1") + ` ORDER BY ev.category, ev.position LIMIT $2) e
		ORDER BY e.position LIMIT $2`
	countCategoriesSQL = `SELECT coalesce(sum(x.n), 0)::bigint FROM unnest($2::text[]) AS c(category)
		CROSS JOIN LATERAL (SELECT count(*) AS n FROM eventstore.events ev WHERE ` + inCategoryAfter("c.category", "$1") + `) x`
)

// distinct is a filter's categories once each: the per-category reads
// would return a category named twice twice over.
func distinct(categories []string) []string {
	out := slices.Clone(categories)
	slices.Sort(out)
	return slices.Compact(out)
}

// ReadAll implements eventstore.Store.
func (s *Store) ReadAll(ctx context.Context, after eventstore.Position, limit int, filter eventstore.Filter) ([]eventstore.Envelope, error) {
	var rows pgx.Rows
	var err error
	switch len(filter.Categories) {
	case 0:
		rows, err = s.pool.Query(ctx, selectEnvelope+`WHERE position > $1 ORDER BY position LIMIT $2`, int64(after), limit)
	case 1:
		rows, err = s.pool.Query(ctx, readCategorySQL, int64(after), limit, filter.Categories[0])
	default:
		// Each category is read along its own index and the pages merged.
		rows, err = s.pool.Query(ctx, readCategoriesSQL, int64(after), limit, distinct(filter.Categories))
	}
	if err != nil {
		return nil, fmt.Errorf("eventstore: read all: %w", err)
	}
	return scanEnvelopes(rows, limit)
}

func scanEnvelopes(rows pgx.Rows, capacity int) ([]eventstore.Envelope, error) {
	// capacity is the caller's limit, not the expected count: loading an
	// aggregate of a few events asked for a page of 1,000 and allocated
	// ~250 KB each time (under the audit benchmark, most of the process's
	// allocation). Growing from a small start costs a few copies at most.
	out := make([]eventstore.Envelope, 0, min(capacity, 16))
	var e eventstore.Envelope
	var data, meta []byte
	var pos int64
	_, err := pgx.ForEachRow(rows, []any{&pos, &e.ID, &e.Stream, &e.Version, &e.Type, &e.SchemaVersion, &data, &meta}, func() error {
		e.Position = eventstore.Position(pos)
		e.Data = append(json.RawMessage(nil), data...)
		e.Metadata = eventstore.Metadata{}
		if err := json.Unmarshal(meta, &e.Metadata); err != nil {
			return fmt.Errorf("event %d metadata: %w", e.Position, err)
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("eventstore: scan: %w", err)
	}
	return out, nil
}

// Head returns the position of the last committed event.
func (s *Store) Head(ctx context.Context) (eventstore.Position, error) {
	var p int64
	// Reading head without the lock sees the last committed value.
	err := s.pool.QueryRow(ctx, `SELECT position FROM eventstore.head WHERE id`).Scan(&p)
	return eventstore.Position(p), err
}

// listenLoop turns Postgres notifications from every process appending to
// this database into wake-ups for this process's subscriptions.
func (s *Store) listenLoop(ctx context.Context) {
	defer s.wg.Done()
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.listen(ctx)
		if ctx.Err() != nil {
			return
		}
		s.cfg.Logger.Warn("eventstore: listen connection lost; subscriptions fall back to polling until it is back", "err", err, "retry_in", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

func (s *Store) listen(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return err
	}
	s.wake.signal() // something may have been committed while we were not listening
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		s.heads.noteNotification(n.Payload)
		s.wake.signal()
	}
}

// broadcaster wakes every waiting subscription at once.
type broadcaster struct {
	mu sync.Mutex
	ch chan struct{}
}

func (b *broadcaster) init() { b.ch = make(chan struct{}) }

// wait returns a channel closed at the next signal. Take it before reading,
// so a commit between the read and the wait is not missed.
func (b *broadcaster) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ch
}

func (b *broadcaster) signal() {
	b.mu.Lock()
	defer b.mu.Unlock()
	close(b.ch)
	b.ch = make(chan struct{})
}

// Subscribe implements eventstore.Store.
func (s *Store) Subscribe(ctx context.Context, after eventstore.Position, filter eventstore.Filter) (eventstore.Subscription, error) {
	select {
	case <-s.closed:
		return nil, eventstore.ErrClosed
	default:
	}
	return &subscription{store: s, ctx: ctx, after: after, filter: filter, closed: make(chan struct{})}, nil
}

type subscription struct {
	store     *Store
	ctx       context.Context // the subscription's lifetime, from Subscribe
	after     eventstore.Position
	filter    eventstore.Filter
	buf       []eventstore.Envelope
	closed    chan struct{}
	closeOnce sync.Once
}

// Next implements eventstore.Subscription. The poll loop is the data path;
// notifications only cut the wait short.
func (sub *subscription) Next(ctx context.Context) (eventstore.Envelope, error) {
	backoff := 50 * time.Millisecond
	for {
		select {
		case <-sub.closed:
			return eventstore.Envelope{}, eventstore.ErrClosed
		case <-sub.store.closed:
			return eventstore.Envelope{}, eventstore.ErrClosed
		case <-sub.ctx.Done():
			return eventstore.Envelope{}, sub.ctx.Err()
		default:
		}
		if len(sub.buf) > 0 {
			e := sub.buf[0]
			sub.buf = sub.buf[1:]
			sub.after = e.Position
			return e, nil
		}
		woken := sub.store.wake.wait()
		events, err := sub.store.ReadAll(ctx, sub.after, sub.store.cfg.ReadBatch, sub.filter)
		if err != nil {
			if ctx.Err() != nil {
				return eventstore.Envelope{}, ctx.Err()
			}
			sub.store.cfg.Logger.Warn("eventstore: subscription read failed; retrying", "err", err, "retry_in", backoff)
			woken = nil // wait out the backoff, not the next commit
		} else if len(events) > 0 {
			sub.buf = events
			backoff = 50 * time.Millisecond
			continue
		}
		wait := sub.store.cfg.PollInterval
		if err != nil {
			wait = backoff
			backoff = min(backoff*2, 5*time.Second)
		}
		timer := time.NewTimer(wait)
	waiting:
		for {
			select {
			case <-woken:
				// A commit of other categories only: sleep on without a
				// read. The channel is taken before the check, so a commit
				// noted in between still wakes us.
				if sub.store.heads.advanced(sub.filter, sub.after) {
					sub.linger(ctx)
					break waiting
				}
				woken = sub.store.wake.wait()
				if sub.store.heads.advanced(sub.filter, sub.after) {
					sub.linger(ctx)
					break waiting
				}
			case <-timer.C:
				break waiting // the poll: read whatever the hints say
			case <-ctx.Done():
				timer.Stop()
				return eventstore.Envelope{}, ctx.Err()
			case <-sub.ctx.Done():
				break waiting
			case <-sub.closed:
				timer.Stop()
				return eventstore.Envelope{}, eventstore.ErrClosed
			case <-sub.store.closed:
				timer.Stop()
				return eventstore.Envelope{}, eventstore.ErrClosed
			}
		}
		timer.Stop()
	}
}

// linger waits Config.Linger after a wake-up, so that the read that follows
// takes the commits that arrive meanwhile too.
func (sub *subscription) linger(ctx context.Context) {
	if d := sub.store.cfg.Linger; d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		case <-sub.ctx.Done():
		case <-sub.closed:
		}
	}
}

// Buffered implements eventstore.Lookahead.
func (sub *subscription) Buffered(max int) []eventstore.Envelope {
	return slices.Clone(sub.buf[:min(max, len(sub.buf))])
}

// Skip implements eventstore.Lookahead.
func (sub *subscription) Skip(through eventstore.Position) {
	n := 0
	for n < len(sub.buf) && sub.buf[n].Position <= through {
		n++
	}
	if n > 0 {
		sub.after = sub.buf[n-1].Position
		sub.buf = sub.buf[n:]
	}
}

var _ eventstore.Lookahead = (*subscription)(nil)

// Close implements eventstore.Subscription.
func (sub *subscription) Close() error {
	sub.closeOnce.Do(func() { close(sub.closed) })
	return nil
}

// CountAfter counts the events after a position that pass filter: exact lag
// for projections, since positions are gap-free.
func (s *Store) CountAfter(ctx context.Context, after eventstore.Position, filter eventstore.Filter) (int64, error) {
	var n int64
	var err error
	if len(filter.Categories) == 0 {
		var head int64
		err = s.pool.QueryRow(ctx, `SELECT position FROM eventstore.head WHERE id`).Scan(&head)
		n = max(head-int64(after), 0)
	} else {
		// Counted along each category's own index (inCategoryAfter): a
		// projection's lag gauge, every 5 s, had counted by walking the
		// position index over the whole audit trail after its checkpoint.
		err = s.pool.QueryRow(ctx, countCategoriesSQL, int64(after), distinct(filter.Categories)).Scan(&n)
	}
	return n, err
}
