package audittrail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/portico-health/portico/domain/audit"
	"github.com/portico-health/portico/eventstore"
)

// Report is what Verify found.
type Report struct {
	// OK is true when the event log, the rows of rm.phi_access and the kept
	// heads all agree and every chain verifies.
	OK bool `json:"ok"`
	// Checked counts the access records of the event log that were checked
	// (the log is the source of truth; Rows counts the rows).
	Checked int `json:"checked"`
	// Chains counts the chains found in the log or in the rows.
	Chains int `json:"chains"`
	// FirstBad is the first bad record: chains in sorted order, and within
	// the bad chain the lowest record number any check found wrong.
	FirstBad *audit.Problem `json:"first_bad,omitempty"`
	// Heads are every chain's head in the event log, sorted by chain, for an
	// auditor to keep outside the database. A bad chain's head is its last
	// record before the problem.
	Heads []audit.Head `json:"heads"`

	// Rows counts the rows of rm.phi_access that were checked.
	Rows int `json:"rows"`
	// Checkpoint is the projection's position when the rows were read: an
	// event after it may have no row yet (projection lag), one at or before
	// it must have its row.
	Checkpoint uint64 `json:"checkpoint"`
	// Problems holds the first problem of every bad chain, chains in sorted
	// order; FirstBad is the first of them.
	Problems []audit.Problem `json:"problems,omitempty"`
}

// Verify checks the PHI access trail in both places it is kept, and that
// the two agree:
//
//   - the event log: every stream of category phiaudit, one chain each,
//     read in stream-version order. Each event must hold an access record
//     of its chain whose number is the event's stream version and whose
//     record id is the event's id; the records must link (audit.Verify);
//     and the log's global order must keep each chain's records in order.
//   - the rows of rm.phi_access, read per chain by seq: each row's columns
//     must say what its record says, and the records must link.
//   - both together: the rows are the log's records, the same ids and
//     hashes at the same places, with no row the log lacks. A record the
//     log has and the rows lack is allowed only after the projection's
//     checkpoint (projection lag); at or before it, it was removed.
//
// Each head in kept (an auditor's copy) must still be in the log with the
// same hash (audit.CheckHead): that alone finds records cut off the end of a
// chain in both places at once.
//
// Verify reads everything into memory; the error is for failing to read, not
// for what was read.
func Verify(ctx context.Context, pool *pgxpool.Pool, store eventstore.Store, kept []audit.Head) (Report, error) {
	// The rows and the checkpoint from one snapshot: the projection writes
	// its rows and advances its checkpoint in one transaction, so every
	// event at or before the checkpoint has its row in this snapshot.
	var checkpoint int64
	var rows map[uuid.UUID][]storedRow
	var nrows int
	err := pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT position FROM projection.checkpoints WHERE name = $1 AND state = 'live'`, Projection{}.Name()).Scan(&checkpoint)
		if errors.Is(err, pgx.ErrNoRows) {
			return errors.New("audittrail: the projection has no live generation (run Setup)")
		}
		if err != nil {
			return err
		}
		rows, nrows, err = readRows(ctx, tx)
		return err
	})
	if err != nil {
		return Report{}, fmt.Errorf("audittrail: read rm.phi_access: %w", err)
	}
	// The log after the snapshot: whatever was at or before the checkpoint
	// then is in it now (the log is append-only, or else it was tampered
	// with, which is what we look for).
	logs, nevents, err := readLog(ctx, store)
	if err != nil {
		return Report{}, fmt.Errorf("audittrail: read the event log: %w", err)
	}

	keptBy := map[uuid.UUID][]audit.Head{}
	ids := map[uuid.UUID]bool{}
	for _, h := range kept {
		keptBy[h.Chain] = append(keptBy[h.Chain], h)
		ids[h.Chain] = true
	}
	for id := range logs {
		ids[id] = true
	}
	for id := range rows {
		ids[id] = true
	}
	chains := make([]uuid.UUID, 0, len(ids))
	for id := range ids {
		chains = append(chains, id)
	}
	sort.Slice(chains, func(i, j int) bool { return chains[i].String() < chains[j].String() })

	rep := Report{Checked: nevents, Rows: nrows, Checkpoint: uint64(checkpoint), Heads: []audit.Head{}}
	for _, id := range chains {
		_, inLog := logs[id]
		_, inRows := rows[id]
		if inLog || inRows {
			rep.Chains++
		}
		head, p := verifyChain(id, logs[id], rows[id], keptBy[id], checkpoint)
		if head.Seq > 0 {
			rep.Heads = append(rep.Heads, head)
		}
		if p != nil {
			rep.Problems = append(rep.Problems, *p)
		}
	}
	rep.OK = len(rep.Problems) == 0
	if !rep.OK {
		first := rep.Problems[0]
		rep.FirstBad = &first
	}
	return rep, nil
}

// logEntry is one event of a chain's stream.
type logEntry struct {
	version  int64
	position eventstore.Position
	id       uuid.UUID
	rec      audit.Access
	bad      string // why the event is not a readable access record
}

// storedRow is one row of rm.phi_access.
type storedRow struct {
	rec      audit.Access // from the record column, Hash from the hash column
	position int64
	bad      string // how the row's columns disagree with its record
}

// readLog reads every phiaudit stream, grouped by chain, in global order.
func readLog(ctx context.Context, store eventstore.Store) (map[uuid.UUID][]logEntry, int, error) {
	const page = 1000
	out := map[uuid.UUID][]logEntry{}
	n := 0
	prefix := audit.Category + "-"
	for after := eventstore.Start; ; {
		events, err := store.ReadAll(ctx, after, page, eventstore.Filter{Categories: []string{audit.Category}})
		if err != nil {
			return nil, 0, err
		}
		for _, e := range events {
			n++
			chain, err := uuid.Parse(strings.TrimPrefix(e.Stream, prefix))
			if err != nil || !strings.HasPrefix(e.Stream, prefix) {
				// Not a chain's stream: report it under the nil chain.
				out[uuid.Nil] = append(out[uuid.Nil], logEntry{version: e.Version, position: e.Position, id: e.ID,
					bad: fmt.Sprintf("event log: stream %q (position %d) is not an access chain", e.Stream, e.Position)})
				continue
			}
			le := logEntry{version: e.Version, position: e.Position, id: e.ID}
			if e.Type != (audit.Access{}).EventType() {
				le.bad = fmt.Sprintf("event log: event %d of the chain (position %d) is a %q, not an access record (inserted)", e.Version, e.Position, e.Type)
			} else if err := json.Unmarshal(e.Data, &le.rec); err != nil {
				le.bad = fmt.Sprintf("event log: event %d of the chain (position %d) cannot be read as an access record (edited): %v", e.Version, e.Position, err)
			}
			out[chain] = append(out[chain], le)
		}
		if len(events) < page {
			return out, n, nil
		}
		after = events[len(events)-1].Position
	}
}

// readRows reads rm.phi_access per chain, in stored order (by seq), and
// checks each row's columns against its record. It is Chains, but it also
// keeps each row's position and compares the columns that queries filter on
// (patients, actor, time…): a row whose record is intact but whose patients
// column was changed would drop out of a patient's access log unseen.
func readRows(ctx context.Context, q Querier) (map[uuid.UUID][]storedRow, int, error) {
	rows, err := q.Query(ctx, `SELECT record_id, chain, seq, position, recorded, subtype, outcome, actor_id, actor_kind, actor_role,
			clinic_id, on_behalf_of, patients, route, status, record, hash
		FROM rm.phi_access ORDER BY chain, seq, position, record_id`)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	out := map[uuid.UUID][]storedRow{}
	n := 0
	for rows.Next() {
		var c rowColumns
		var raw []byte
		var hash string
		var clinic, behalf *uuid.UUID
		if err := rows.Scan(&c.recordID, &c.chain, &c.seq, &c.position, &c.recorded, &c.subtype, &c.outcome, &c.actorID, &c.actorKind, &c.actorRole,
			&clinic, &behalf, &c.patients, &c.route, &c.status, &raw, &hash); err != nil {
			return nil, 0, err
		}
		n++
		if clinic != nil {
			c.clinic = *clinic
		}
		if behalf != nil {
			c.behalf = *behalf
		}
		r := storedRow{position: c.position}
		if err := json.Unmarshal(raw, &r.rec); err != nil {
			r.bad = fmt.Sprintf("rm.phi_access: the row's record cannot be read (edited): %v", err)
		} else {
			// The row's hash column is what an editor would have to change too.
			r.rec.Hash = hash
			r.bad = c.mismatch(r.rec)
		}
		// Rows are placed by their columns: that is the order readers see.
		out[c.chain] = append(out[c.chain], r)
	}
	return out, n, rows.Err()
}

type rowColumns struct {
	recordID, chain, clinic, behalf                        uuid.UUID
	seq, position                                          int64
	recorded                                               time.Time
	subtype, outcome, actorID, actorKind, actorRole, route string
	patients                                               []uuid.UUID
	status                                                 int
}

// mismatch says how the columns disagree with the record Apply made them
// from, or "".
func (c rowColumns) mismatch(a audit.Access) string {
	if c.recordID != a.RecordID || c.chain != a.Chain || c.seq != a.Seq {
		return fmt.Sprintf("rm.phi_access: the row stored as record %d of chain %s holds record %d of chain %s (rows moved, reordered or forged)", c.seq, c.chain, a.Seq, a.Chain)
	}
	patients := a.Patients
	if patients == nil {
		patients = []uuid.UUID{}
	}
	var col string
	switch {
	case !c.recorded.Equal(a.Recorded):
		col = "recorded"
	case c.subtype != a.Subtype:
		col = "subtype"
	case c.outcome != a.Outcome:
		col = "outcome"
	case c.actorID != a.Agent.ID:
		col = "actor_id"
	case c.actorKind != a.Agent.Kind:
		col = "actor_kind"
	case c.actorRole != a.Agent.Role:
		col = "actor_role"
	case c.clinic != a.Agent.ClinicID:
		col = "clinic_id"
	case c.behalf != a.Agent.OnBehalfOf:
		col = "on_behalf_of"
	case !slices.Equal(c.patients, patients):
		col = "patients"
	case c.route != a.Route:
		col = "route"
	case c.status != a.Status:
		col = "status"
	default:
		return ""
	}
	return fmt.Sprintf("rm.phi_access: the row's %s column does not match its record (edited)", col)
}

// candidates collects a chain's problems; the one with the lowest record
// number wins, and on a tie the one found first (log, rows, the two
// together, kept heads).
type candidates struct{ best *audit.Problem }

func (c *candidates) add(p audit.Problem) {
	if c.best == nil || p.Seq < c.best.Seq {
		c.best = &p
	}
}

func (c *candidates) addPrefixed(prefix string, p *audit.Problem) {
	if p != nil {
		q := *p
		q.Reason = prefix + q.Reason
		c.add(q)
	}
}

// verifyChain checks one chain in the log, in the rows, across the two and
// against the kept heads. It returns the chain's head in the log.
func verifyChain(chain uuid.UUID, log []logEntry, rows []storedRow, kept []audit.Head, checkpoint int64) (audit.Head, *audit.Problem) {
	var found candidates

	// The event log, in stream-version order.
	byVersion := slices.Clone(log)
	sort.SliceStable(byVersion, func(i, j int) bool { return byVersion[i].version < byVersion[j].version })
	recs := make([]audit.Access, 0, len(byVersion))
	entries := make([]logEntry, 0, len(byVersion))
	for _, e := range byVersion {
		switch {
		case e.bad != "":
			found.add(audit.Problem{Chain: chain, Seq: e.version, Reason: e.bad})
			continue
		case e.rec.Seq != e.version:
			found.add(audit.Problem{Chain: chain, Seq: e.version, Reason: fmt.Sprintf(
				"event log: the chain's event %d holds record %d (events moved, reordered or forged)", e.version, e.rec.Seq)})
		case e.rec.RecordID != e.id:
			found.add(audit.Problem{Chain: chain, Seq: e.version, Reason: fmt.Sprintf(
				"event log: event %s holds record %s (edited or forged)", e.id, e.rec.RecordID)})
		}
		recs = append(recs, e.rec)
		entries = append(entries, e)
	}
	head, p := audit.Verify(chain, recs)
	found.addPrefixed("event log: ", p)

	// The global order must keep the chain's records in order: the first
	// place where position order and version order differ names the record
	// that was moved behind another.
	for i := range log {
		if log[i].version != byVersion[i].version {
			found.add(audit.Problem{Chain: chain, Seq: byVersion[i].version, Reason: fmt.Sprintf(
				"event log: record %d comes before it in the global log (events moved or inserted)", log[i].version)})
			break
		}
	}

	// The rows, in seq order.
	rowRecs := make([]audit.Access, 0, len(rows))
	for i, r := range rows {
		if r.bad != "" {
			found.add(audit.Problem{Chain: chain, Seq: int64(i + 1), Reason: r.bad})
		}
		rowRecs = append(rowRecs, r.rec)
	}
	_, p = audit.Verify(chain, rowRecs)
	found.addPrefixed("rm.phi_access: ", p)

	// The two together, record by record.
	for i := 0; i < max(len(rows), len(entries)); i++ {
		seq := int64(i + 1)
		if i >= len(entries) {
			found.add(audit.Problem{Chain: chain, Seq: seq, Reason: fmt.Sprintf(
				"rm.phi_access has a row the event log lacks (record %s: forged, or its event removed)", rows[i].rec.RecordID)})
			break
		}
		e := entries[i]
		if i >= len(rows) {
			if int64(e.position) <= checkpoint {
				found.add(audit.Problem{Chain: chain, Seq: seq, Reason: fmt.Sprintf(
					"rm.phi_access lacks the event log's record %s though the projection is past it (position %d, checkpoint %d): row removed",
					e.rec.RecordID, e.position, checkpoint)})
			}
			break // the rest is projection lag
		}
		r := rows[i]
		switch {
		case r.rec.RecordID != e.rec.RecordID || r.rec.Hash != e.rec.Hash:
			found.add(audit.Problem{Chain: chain, Seq: seq, Reason: "rm.phi_access and the event log hold different records here (one of them edited, inserted or removed)"})
		case r.position != int64(e.position):
			found.add(audit.Problem{Chain: chain, Seq: seq, Reason: fmt.Sprintf(
				"the row says position %d but the event is at position %d (events or rows moved)", r.position, e.position)})
		default:
			continue
		}
		break
	}

	// The heads an auditor kept.
	for _, k := range kept {
		if p := audit.CheckHead(k, recs); p != nil {
			p.Chain = chain
			found.addPrefixed("event log: ", p)
		}
	}
	return head, found.best
}
