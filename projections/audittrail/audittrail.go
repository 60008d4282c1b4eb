// Package audittrail projects the PHI access trail (domain/audit) into
// rm.phi_access, where auditors and patients query it. It is critical: an
// access record it cannot apply halts it (and /readyz says so) instead of
// being skipped. Its table refuses UPDATE and DELETE, whoever asks; each row
// keeps the whole record, so Verify can check the rows as well as the log.
package audittrail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/portico-health/portico/domain/audit"
	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/projections"
)

// Projection keeps rm.phi_access.
type Projection struct{}

var _ projections.Projection = Projection{}

func (Projection) Name() string         { return "audittrail" }
func (Projection) Categories() []string { return []string{audit.Category} }
func (Projection) Critical() bool       { return true }
func (Projection) Tables() []string     { return []string{"phi_access"} }

func (Projection) Setup(_ context.Context, w *projections.Writer) error {
	t := w.T("phi_access")
	w.Queue(`CREATE TABLE ` + t + ` (
		record_id      uuid        PRIMARY KEY,
		chain          uuid        NOT NULL,
		seq            bigint      NOT NULL,
		position       bigint      NOT NULL,
		recorded       timestamptz NOT NULL,
		subtype        text        NOT NULL,
		outcome        text        NOT NULL,
		actor_id       text        NOT NULL,
		actor_kind     text        NOT NULL,
		actor_role     text        NOT NULL,
		clinic_id      uuid,
		on_behalf_of   uuid,
		patients       uuid[]      NOT NULL,
		route          text        NOT NULL,
		status         int         NOT NULL,
		record         json        NOT NULL,
		hash           text        NOT NULL) WITH (toast_tuple_target = 8160)`)
	w.Queue(`CREATE INDEX ON ` + t + ` (recorded DESC, record_id)`)
	w.Queue(`CREATE INDEX ON ` + t + ` USING gin (patients)`)
	w.Queue(`CREATE INDEX ON ` + t + ` (actor_id, recorded DESC)`)
	w.Queue(`CREATE INDEX ON ` + t + ` (chain, seq)`)
	// Rows are facts: nobody, the API's role included, edits or removes
	// them. A rebuild writes a new generation and drops the old schema.
	w.Queue(`CREATE FUNCTION ` + w.Schema() + `.phi_access_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'the PHI access trail is append-only'; END $$`)
	w.Queue(`CREATE TRIGGER phi_access_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON ` + t +
		` FOR EACH STATEMENT EXECUTE FUNCTION ` + w.Schema() + `.phi_access_append_only()`)
	return nil
}

// ReportingViews: accesses per clinic, day, kind and outcome (docs/reporting.md).
func (Projection) ReportingViews() []string {
	return []string{`CREATE OR REPLACE VIEW reporting.phi_access_daily AS
		SELECT clinic_id, date_trunc('day', recorded)::date AS day, actor_kind, subtype, outcome, count(*) AS accesses
		FROM rm.phi_access
		GROUP BY clinic_id, date_trunc('day', recorded), actor_kind, subtype, outcome`}
}

func (p Projection) Apply(ctx context.Context, w *projections.Writer, e eventstore.Envelope) error {
	return p.ApplyBatch(ctx, w, []eventstore.Envelope{e})
}

var _ projections.BatchApplier = Projection{}

// ApplyBatch writes records with one multi-row insert: live, for a
// read-ahead page; in a rebuild, for a page of the log. The records travel
// as appended and Postgres takes the columns out of them: decoding each record in Go and sending its fields back as seventeen
// arrays cost more than the insert. The record column keeps the event's
// JSON as appended (the hash inside it is ignored by every reader, which
// takes the hash column); absent agent fields become ” or NULL as Verify
// expects.
func (Projection) ApplyBatch(_ context.Context, w *projections.Writer, events []eventstore.Envelope) error {
	records := make([]string, len(events))
	positions := make([]int64, len(events))
	for i, e := range events {
		if e.Type != (audit.Access{}).EventType() {
			return projections.Unknown(e)
		}
		records[i], positions[i] = string(e.Data), int64(e.Position)
	}
	w.Queue(`INSERT INTO `+w.T("phi_access")+` (record_id, chain, seq, position, recorded, subtype, outcome, actor_id, actor_kind, actor_role,
			clinic_id, on_behalf_of, patients, route, status, record, hash)
		SELECT x.record_id, x.chain, x.seq, u.p, x.recorded, coalesce(x.subtype, ''), coalesce(x.outcome, ''),
			coalesce(ag.id, ''), coalesce(ag.kind, ''), coalesce(ag.role, ''),
			nullif(ag.clinic_id, '00000000-0000-0000-0000-000000000000'), nullif(ag.on_behalf_of, '00000000-0000-0000-0000-000000000000'),
			coalesce(x.patients, '{}'), coalesce(x.route, ''), coalesce(x.status, 0), r.j, coalesce(x.hash, '')
		FROM unnest($1::text[], $2::bigint[]) AS u(rd, p)
		CROSS JOIN LATERAL (SELECT u.rd::json AS j) r
		CROSS JOIN LATERAL json_to_record(r.j) AS x(record_id uuid, chain uuid, seq bigint, recorded timestamptz,
			subtype text, outcome text, agent json, patients uuid[], route text, status int, hash text)
		CROSS JOIN LATERAL json_to_record(coalesce(x.agent, '{}')) AS ag(id text, kind text, role text, clinic_id uuid, on_behalf_of uuid)
		ON CONFLICT (record_id) DO NOTHING`, records, positions)
	return nil
}

// Querier is a pool or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Filter selects access records.
type Filter struct {
	ClinicID  uuid.UUID // required: auditors see their clinic's trail
	PatientID uuid.UUID
	ActorID   string
	From, To  time.Time
	// Before pages: records older than this cursor.
	Before *Cursor
	Limit  int
}

// Cursor is a page boundary, newest first.
type Cursor struct {
	Recorded time.Time
	RecordID uuid.UUID
}

// Encode writes a cursor for a URL.
func (c Cursor) Encode() string {
	return c.Recorded.UTC().Format(time.RFC3339Nano) + "_" + c.RecordID.String()
}

// ParseCursor reads Encode's output.
func ParseCursor(s string) (Cursor, error) {
	ts, id, ok := strings.Cut(s, "_")
	t, err1 := time.Parse(time.RFC3339Nano, ts)
	u, err2 := uuid.Parse(id)
	if !ok || err1 != nil || err2 != nil {
		return Cursor{}, errors.New("audittrail: bad cursor")
	}
	return Cursor{Recorded: t, RecordID: u}, nil
}

// Find returns access records, newest first, and the cursor of the next page
// (nil at the end). A record is the clinic's when its agent is the clinic's
// staff or it names one of the clinic's patients.
func Find(ctx context.Context, q Querier, f Filter) ([]audit.Access, *Cursor, error) {
	where := []string{`(clinic_id = $1 OR patients && (SELECT coalesce(array_agg(patient_id), '{}') FROM rm.patients WHERE clinic_id = $1))`}
	args := []any{f.ClinicID}
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if f.PatientID != uuid.Nil {
		add(`patients @> ARRAY[$%d::uuid]`, f.PatientID)
	}
	if f.ActorID != "" {
		add(`actor_id = $%d`, f.ActorID)
	}
	if !f.From.IsZero() {
		add(`recorded >= $%d`, f.From)
	}
	if !f.To.IsZero() {
		add(`recorded < $%d`, f.To)
	}
	if f.Before != nil {
		args = append(args, f.Before.Recorded, f.Before.RecordID)
		where = append(where, fmt.Sprintf(`(recorded, record_id) < ($%d, $%d)`, len(args)-1, len(args)))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 10000) // the export's page; the API bounds each endpoint's own

	rows, err := q.Query(ctx, `SELECT record, hash FROM rm.phi_access WHERE `+strings.Join(where, " AND ")+
		fmt.Sprintf(` ORDER BY recorded DESC, record_id DESC LIMIT %d`, limit+1), args...)
	if err != nil {
		return nil, nil, err
	}
	out, err := pgx.CollectRows(rows, scanRecord)
	if err != nil {
		return nil, nil, err
	}
	var next *Cursor
	if len(out) > limit {
		out = out[:limit]
		last := out[len(out)-1]
		next = &Cursor{Recorded: last.Recorded, RecordID: last.RecordID}
	}
	return out, next, nil
}

// Chains reads every chain's rows in stored order (by seq). Verify reads
// the rows itself, with the columns it compares to each record.
func Chains(ctx context.Context, q Querier) (map[uuid.UUID][]audit.Access, error) {
	rows, err := q.Query(ctx, `SELECT record, hash FROM rm.phi_access ORDER BY chain, seq, position`)
	if err != nil {
		return nil, err
	}
	chains := map[uuid.UUID][]audit.Access{}
	defer rows.Close()
	for rows.Next() {
		var raw []byte
		var hash string
		if err := rows.Scan(&raw, &hash); err != nil {
			return nil, err
		}
		var a audit.Access
		if err := json.Unmarshal(raw, &a); err != nil {
			return nil, err
		}
		// The row's hash column is what an editor would have to change too.
		a.Hash = hash
		chains[a.Chain] = append(chains[a.Chain], a)
	}
	return chains, rows.Err()
}

// SortedChains are the ids of chains, in a stable order.
func SortedChains(chains map[uuid.UUID][]audit.Access) []uuid.UUID {
	ids := make([]uuid.UUID, 0, len(chains))
	for id := range chains {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].String() < ids[j].String() })
	return ids
}

// All returns every access record that f selects, oldest first, for the
// operator's export (portalctl audit export). Unlike Find it is not paged
// and f.ClinicID may be left out: then every clinic's records are selected.
// Before and Limit are ignored.
func All(ctx context.Context, q Querier, f Filter) ([]audit.Access, error) {
	where := []string{"true"}
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if f.ClinicID != uuid.Nil {
		add(`(clinic_id = $%[1]d OR patients && (SELECT coalesce(array_agg(patient_id), '{}') FROM rm.patients WHERE clinic_id = $%[1]d))`, f.ClinicID)
	}
	if f.PatientID != uuid.Nil {
		add(`patients @> ARRAY[$%d::uuid]`, f.PatientID)
	}
	if f.ActorID != "" {
		add(`actor_id = $%d`, f.ActorID)
	}
	if !f.From.IsZero() {
		add(`recorded >= $%d`, f.From)
	}
	if !f.To.IsZero() {
		add(`recorded < $%d`, f.To)
	}
	rows, err := q.Query(ctx, `SELECT record, hash FROM rm.phi_access WHERE `+strings.Join(where, " AND ")+
		` ORDER BY recorded, record_id`, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanRecord)
}

// scanRecord reads a row's record with its hash: the record column is the
// canonical form, which leaves the hash out.
func scanRecord(r pgx.CollectableRow) (audit.Access, error) {
	var a audit.Access
	var raw []byte
	var hash string
	if err := r.Scan(&raw, &hash); err != nil {
		return a, err
	}
	err := json.Unmarshal(raw, &a)
	a.Hash = hash
	return a, err
}
