// Package intakeforms is the read model of a clinic's blank intake forms
// and their assignments to patients, with what came back and when.
package intakeforms

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/portico-health/portico/domain/intakeform"
	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/projections"
)

// Projection keeps rm.intake_forms and rm.intake_assignments.
type Projection struct{}

var _ projections.Projection = Projection{}

func (Projection) Name() string { return "intakeforms" }
func (Projection) Categories() []string {
	return []string{intakeform.FormCategory, intakeform.AssignmentCategory}
}
func (Projection) Critical() bool   { return false }
func (Projection) Tables() []string { return []string{"intake_forms", "intake_assignments"} }

func (Projection) Setup(_ context.Context, w *projections.Writer) error {
	w.Queue(`CREATE TABLE ` + w.T("intake_forms") + ` (
		form_id     uuid        PRIMARY KEY,
		clinic_id   uuid        NOT NULL,
		name        text        NOT NULL,
		sha256      text        NOT NULL,
		size        bigint      NOT NULL,
		media_type  text        NOT NULL,
		file_name   text        NOT NULL,
		uploaded_at timestamptz NOT NULL)`)
	w.Queue(`CREATE TABLE ` + w.T("intake_assignments") + ` (
		assignment_id       uuid        PRIMARY KEY,
		patient_id          uuid        NOT NULL,
		clinic_id           uuid        NOT NULL,
		form_id             uuid        NOT NULL,
		form_name           text        NOT NULL,
		message             text        NOT NULL,
		invitation_id       uuid,
		assigned_at         timestamptz NOT NULL,
		returns             int         NOT NULL DEFAULT 0,
		returned_at         timestamptz,
		returned_sha256     text,
		returned_size       bigint,
		returned_media_type text,
		returned_name       text,
		version             bigint      NOT NULL)`)
	w.Queue(`CREATE INDEX ON ` + w.T("intake_assignments") + ` (patient_id, assigned_at)`)
	return nil
}

// ReportingViews: intake forms assigned and returned per clinic and week.
func (Projection) ReportingViews() []string {
	return []string{`CREATE OR REPLACE VIEW reporting.intake_forms_weekly AS
		SELECT clinic_id,
		       (date_trunc('week', assigned_at AT TIME ZONE 'UTC'))::date AS week,
		       count(*)                                         AS assigned,
		       count(*) FILTER (WHERE returned_at IS NOT NULL)  AS returned,
		       count(*) FILTER (WHERE invitation_id IS NOT NULL) AS with_invitation
		FROM rm.intake_assignments
		GROUP BY clinic_id, date_trunc('week', assigned_at AT TIME ZONE 'UTC')`}
}

func (Projection) Apply(_ context.Context, w *projections.Writer, e eventstore.Envelope) error {
	switch e.Type {
	case intakeform.FormUploaded{}.EventType():
		var d intakeform.FormUploaded
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return err
		}
		w.Queue(`INSERT INTO `+w.T("intake_forms")+` (form_id, clinic_id, name, sha256, size, media_type, file_name, uploaded_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (form_id) DO NOTHING`,
			d.FormID, d.ClinicID, d.Name, d.File.SHA256, d.File.Size, d.File.MediaType, d.File.Name, e.Metadata.RecordedAt)
	case intakeform.Assigned{}.EventType():
		var d intakeform.Assigned
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return err
		}
		w.Queue(`INSERT INTO `+w.T("intake_assignments")+` (assignment_id, patient_id, clinic_id, form_id, form_name, message, invitation_id, assigned_at, version)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (assignment_id) DO NOTHING`,
			d.AssignmentID, d.PatientID, d.ClinicID, d.FormID, d.FormName, d.Message, d.InvitationID, e.Metadata.RecordedAt, e.Version)
	case intakeform.Returned{}.EventType():
		var d intakeform.Returned
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return err
		}
		w.Queue(`UPDATE `+w.T("intake_assignments")+` SET returns = returns + 1, returned_at = $2, returned_sha256 = $3, returned_size = $4,
				returned_media_type = $5, returned_name = $6, version = $7
			WHERE assignment_id = $1 AND version < $7`,
			d.AssignmentID, e.Metadata.RecordedAt, d.File.SHA256, d.File.Size, d.File.MediaType, d.File.Name, e.Version)
	default:
		return projections.Unknown(e)
	}
	return nil
}

// Returned is the latest completed file of an assignment.
type Returned struct {
	At        time.Time `json:"returned_at"`
	SHA256    string    `json:"sha256"`
	Size      int64     `json:"size"`
	MediaType string    `json:"media_type"`
	Name      string    `json:"name"`
	Returns   int       `json:"returns"`
}

// Assignment is a row as staff and portal see it.
type Assignment struct {
	ID         uuid.UUID `json:"assignment_id"`
	FormID     uuid.UUID `json:"form_id"`
	FormName   string    `json:"form_name"`
	Message    string    `json:"message,omitempty"`
	AssignedAt time.Time `json:"assigned_at"`
	Returned   *Returned `json:"returned,omitempty"`
	Version    int64     `json:"version"`
}

// Querier is a pool or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// OfPatient lists a patient's assignments, newest first.
func OfPatient(ctx context.Context, q Querier, patientID uuid.UUID) ([]Assignment, error) {
	rows, err := q.Query(ctx, `SELECT assignment_id, form_id, form_name, message, assigned_at, returns, returned_at,
			coalesce(returned_sha256, ''), coalesce(returned_size, 0), coalesce(returned_media_type, ''), coalesce(returned_name, ''), version
		FROM rm.intake_assignments WHERE patient_id = $1 ORDER BY assigned_at DESC, assignment_id`, patientID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Assignment, error) {
		var a Assignment
		var returns int
		var at *time.Time
		var ret Returned
		if err := r.Scan(&a.ID, &a.FormID, &a.FormName, &a.Message, &a.AssignedAt, &returns, &at, &ret.SHA256, &ret.Size, &ret.MediaType, &ret.Name, &a.Version); err != nil {
			return a, err
		}
		if at != nil {
			ret.At, ret.Returns = *at, returns
			a.Returned = &ret
		}
		return a, nil
	})
}
