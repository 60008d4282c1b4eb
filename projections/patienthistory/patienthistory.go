// Package patienthistory indexes every change about a patient — whatever
// its stream — so an auditor can read a patient's whole history in log order
// (GET /audit/patients/{pid}/history). A change is about a patient when its
// data names one (patient_id). PHI access records are not copied here: they
// are as many as the reads, and rm.phi_access holds them already; Of merges
// the two by log position.
package patienthistory

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/projections"
)

// Projection keeps rm.patient_events.
type Projection struct{}

var _ projections.Projection = Projection{}

func (Projection) Name() string { return "patienthistory" }

// Categories: every stream of a patient's changes. The PHI access chains are
// left out (see the package comment); a category whose events name no
// patient costs a transaction per event for nothing.
func (Projection) Categories() []string {
	return []string{"patient", "portaluser", "invitation", "appointment", "intakeassignment", "document", "homeactivity", "billing"}
}
func (Projection) Critical() bool           { return false }
func (Projection) Tables() []string         { return []string{"patient_events"} }
func (Projection) ReportingViews() []string { return nil }

func (Projection) Setup(_ context.Context, w *projections.Writer) error {
	w.Queue(`CREATE TABLE ` + w.T("patient_events") + ` (
		patient_id  uuid        NOT NULL,
		position    bigint      NOT NULL,
		event_id    uuid        NOT NULL,
		stream      text        NOT NULL,
		version     bigint      NOT NULL,
		type        text        NOT NULL,
		recorded_at timestamptz NOT NULL,
		actor_id    text        NOT NULL,
		actor_kind  text        NOT NULL,
		actor_role  text        NOT NULL,
		data        jsonb       NOT NULL,
		PRIMARY KEY (patient_id, position))`)
	return nil
}

func (Projection) Apply(_ context.Context, w *projections.Writer, e eventstore.Envelope) error {
	var names struct {
		PatientID *uuid.UUID  `json:"patient_id"`
		Patients  []uuid.UUID `json:"patients"`
	}
	if json.Unmarshal(e.Data, &names) != nil {
		return nil // not an object: names no patient
	}
	ids := names.Patients
	if names.PatientID != nil {
		ids = append(ids, *names.PatientID)
	}
	seen := map[uuid.UUID]bool{}
	for _, id := range ids {
		if id == uuid.Nil || seen[id] {
			continue
		}
		seen[id] = true
		w.Queue(`INSERT INTO `+w.T("patient_events")+` (patient_id, position, event_id, stream, version, type, recorded_at, actor_id, actor_kind, actor_role, data)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING`,
			id, int64(e.Position), e.ID, e.Stream, e.Version, e.Type, e.Metadata.RecordedAt,
			e.Metadata.ActorID, e.Metadata.ActorKind, e.Metadata.ActorRole, string(e.Data))
	}
	return nil
}

// Event is one entry of a patient's history.
type Event struct {
	Position   int64           `json:"position"`
	EventID    uuid.UUID       `json:"event_id"`
	Stream     string          `json:"stream"`
	Version    int64           `json:"version"`
	Type       string          `json:"type"`
	RecordedAt time.Time       `json:"recorded_at"`
	ActorID    string          `json:"actor_id,omitempty"`
	ActorKind  string          `json:"actor_kind,omitempty"`
	ActorRole  string          `json:"actor_role,omitempty"`
	Data       json.RawMessage `json:"data"`
}

// Querier is a pool or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Of returns a patient's events in log order after a position, at most limit.
func Of(ctx context.Context, q Querier, patientID uuid.UUID, after int64, limit int) ([]Event, error) {
	rows, err := q.Query(ctx, `SELECT * FROM (
			SELECT position, event_id, stream, version, type, recorded_at, actor_id, actor_kind, actor_role, data::json
			FROM rm.patient_events WHERE patient_id = $1 AND position > $2
			UNION ALL
			SELECT position, record_id, 'phiaudit-' || chain, seq, 'PHIAccessRecorded', recorded, actor_id, actor_kind, actor_role, record::json
			FROM rm.phi_access WHERE patients @> ARRAY[$1::uuid] AND position > $2
		) h ORDER BY position LIMIT $3`, patientID, after, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Event, error) {
		var ev Event
		var data []byte
		err := r.Scan(&ev.Position, &ev.EventID, &ev.Stream, &ev.Version, &ev.Type, &ev.RecordedAt, &ev.ActorID, &ev.ActorKind, &ev.ActorRole, &data)
		ev.Data = data
		return ev, err
	})
}
