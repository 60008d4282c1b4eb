// Package activities is the read model of Home Activities: what the portal
// lists for a patient and prints one by one.
package activities

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/activity"
	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/projections"
)

// Projection keeps rm.home_activities.
type Projection struct{}

var _ projections.Projection = Projection{}

func (Projection) Name() string             { return "activities" }
func (Projection) Categories() []string     { return []string{activity.Category} }
func (Projection) Critical() bool           { return false }
func (Projection) Tables() []string         { return []string{"home_activities"} }
func (Projection) ReportingViews() []string { return nil }

func (Projection) Setup(_ context.Context, w *projections.Writer) error {
	w.Queue(`CREATE TABLE ` + w.T("home_activities") + ` (
		activity_id   uuid        PRIMARY KEY,
		patient_id    uuid        NOT NULL,
		clinic_id     uuid        NOT NULL,
		title         text        NOT NULL,
		instructions  text        NOT NULL,
		frequency     text,
		assigned_at   timestamptz NOT NULL,
		-- assigned_seq is the log position of the assignment: the order of
		-- activities assigned within one clock tick.
		assigned_seq  bigint      NOT NULL,
		unassigned_at timestamptz,
		version       bigint      NOT NULL)`)
	w.Queue(`CREATE INDEX ON ` + w.T("home_activities") + ` (patient_id, assigned_at DESC, assigned_seq DESC) WHERE unassigned_at IS NULL`)
	w.Queue(`CREATE INDEX ON ` + w.T("home_activities") + ` (clinic_id, assigned_at)`)
	return nil
}

func (Projection) Apply(_ context.Context, w *projections.Writer, e eventstore.Envelope) error {
	t := w.T("home_activities")
	switch e.Type {
	case activity.Assigned{}.EventType():
		var d activity.Assigned
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return err
		}
		w.Queue(`INSERT INTO `+t+` (activity_id, patient_id, clinic_id, title, instructions, frequency, assigned_at, assigned_seq, version)
			VALUES ($1, $2, $3, $4, $5, nullif($6, ''), $7, $8, $9) ON CONFLICT (activity_id) DO NOTHING`,
			d.ActivityID, d.PatientID, d.ClinicID, d.Title, d.Instructions, d.Frequency, e.Metadata.RecordedAt, int64(e.Position), e.Version)
	case activity.Unassigned{}.EventType():
		var d activity.Unassigned
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return err
		}
		w.Queue(`UPDATE `+t+` SET unassigned_at = $2, version = $3 WHERE activity_id = $1 AND version < $3`,
			d.ActivityID, e.Metadata.RecordedAt, e.Version)
	default:
		return projections.Unknown(e)
	}
	return nil
}

// Activity is an assigned activity as the portal shows it.
type Activity struct {
	ID           uuid.UUID `json:"id"`
	ClinicID     uuid.UUID `json:"-"`
	Title        string    `json:"title"`
	Instructions string    `json:"instructions"`
	Frequency    *string   `json:"frequency"`
	AssignedAt   time.Time `json:"assigned_at"`
	Version      int64     `json:"version"`
}

// Querier is a pool or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

const columns = `activity_id, clinic_id, title, instructions, frequency, assigned_at, version`

func scan(r pgx.CollectableRow) (Activity, error) {
	var a Activity
	err := r.Scan(&a.ID, &a.ClinicID, &a.Title, &a.Instructions, &a.Frequency, &a.AssignedAt, &a.Version)
	return a, err
}

// OfPatient lists a patient's assigned (not unassigned) activities, newest
// first (in the order they were assigned, within one clock tick).
func OfPatient(ctx context.Context, q Querier, patientID uuid.UUID, limit int) ([]Activity, error) {
	rows, err := q.Query(ctx, `SELECT `+columns+` FROM rm.home_activities
		WHERE patient_id = $1 AND unassigned_at IS NULL
		ORDER BY assigned_at DESC, assigned_seq DESC LIMIT $2`, patientID, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scan)
}

// One is an assigned activity of a patient; an unassigned one, or another
// patient's, is not found.
func One(ctx context.Context, q Querier, patientID, activityID uuid.UUID) (Activity, error) {
	rows, err := q.Query(ctx, `SELECT `+columns+` FROM rm.home_activities
		WHERE activity_id = $1 AND patient_id = $2 AND unassigned_at IS NULL`, activityID, patientID)
	if err != nil {
		return Activity{}, err
	}
	a, err := pgx.CollectExactlyOneRow(rows, scan)
	if errors.Is(err, pgx.ErrNoRows) {
		return Activity{}, domain.NotFound("home activity")
	}
	return a, err
}
