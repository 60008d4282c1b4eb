// Package appointments is the read model of appointments: what the portal
// lists as upcoming and what the clinic's weekly reports count.
package appointments

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/portico-health/portico/domain/appointment"
	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/projections"
)

// Projection keeps rm.appointments.
type Projection struct{}

var _ projections.Projection = Projection{}

func (Projection) Name() string         { return "appointments" }
func (Projection) Categories() []string { return []string{appointment.Category} }
func (Projection) Critical() bool       { return false }
func (Projection) Tables() []string     { return []string{"appointments"} }

func (Projection) Setup(_ context.Context, w *projections.Writer) error {
	w.Queue(`CREATE TABLE ` + w.T("appointments") + ` (
		appointment_id uuid        PRIMARY KEY,
		patient_id     uuid        NOT NULL,
		clinic_id      uuid        NOT NULL,
		starts_at      timestamptz NOT NULL,
		ends_at        timestamptz NOT NULL,
		provider       text        NOT NULL,
		location       text        NOT NULL,
		kind           text        NOT NULL,
		scheduled_at   timestamptz NOT NULL,
		cancelled_at   timestamptz,
		cancel_reason  text,
		version        bigint      NOT NULL)`)
	w.Queue(`CREATE INDEX ON ` + w.T("appointments") + ` (patient_id, starts_at) WHERE cancelled_at IS NULL`)
	w.Queue(`CREATE INDEX ON ` + w.T("appointments") + ` (clinic_id, starts_at)`)
	return nil
}

// ReportingViews: appointments per clinic and week (docs/reporting.md).
func (Projection) ReportingViews() []string {
	return []string{`CREATE OR REPLACE VIEW reporting.appointments_weekly AS
		SELECT clinic_id,
		       (date_trunc('week', starts_at AT TIME ZONE 'UTC'))::date AS week,
		       count(*)                                        AS scheduled,
		       count(*) FILTER (WHERE cancelled_at IS NOT NULL) AS cancelled,
		       count(*) FILTER (WHERE cancelled_at IS NULL)     AS kept
		FROM rm.appointments
		GROUP BY clinic_id, date_trunc('week', starts_at AT TIME ZONE 'UTC')`}
}

func (Projection) Apply(_ context.Context, w *projections.Writer, e eventstore.Envelope) error {
	t := w.T("appointments")
	switch e.Type {
	case appointment.Scheduled{}.EventType():
		var d appointment.Scheduled
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return err
		}
		w.Queue(`INSERT INTO `+t+` (appointment_id, patient_id, clinic_id, starts_at, ends_at, provider, location, kind, scheduled_at, version)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (appointment_id) DO NOTHING`,
			d.AppointmentID, d.PatientID, d.ClinicID, d.StartsAt, d.EndsAt, d.Provider, d.Location, d.Kind, e.Metadata.RecordedAt, e.Version)
	case appointment.Rescheduled{}.EventType():
		var d appointment.Rescheduled
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return err
		}
		w.Queue(`UPDATE `+t+` SET starts_at = $2, ends_at = $3, version = $4 WHERE appointment_id = $1 AND version < $4`,
			d.AppointmentID, d.StartsAt, d.EndsAt, e.Version)
	case appointment.Cancelled{}.EventType():
		var d appointment.Cancelled
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return err
		}
		w.Queue(`UPDATE `+t+` SET cancelled_at = $2, cancel_reason = nullif($3, ''), version = $4 WHERE appointment_id = $1 AND version < $4`,
			d.AppointmentID, e.Metadata.RecordedAt, d.Reason, e.Version)
	default:
		return projections.Unknown(e)
	}
	return nil
}

// Appointment is a row as the portal shows it.
type Appointment struct {
	ID       uuid.UUID `json:"id"`
	StartsAt time.Time `json:"starts_at"`
	EndsAt   time.Time `json:"ends_at"`
	Provider string    `json:"provider"`
	Location string    `json:"location"`
	Kind     string    `json:"kind"`
	Version  int64     `json:"version"`
}

// Querier is a pool or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Upcoming lists a patient's appointments that are not cancelled and not
// over at now, soonest first.
func Upcoming(ctx context.Context, q Querier, patientID uuid.UUID, now time.Time, limit int) ([]Appointment, error) {
	rows, err := q.Query(ctx, `SELECT appointment_id, starts_at, ends_at, provider, location, kind, version
		FROM rm.appointments
		WHERE patient_id = $1 AND cancelled_at IS NULL AND ends_at > $2
		ORDER BY starts_at, appointment_id LIMIT $3`, patientID, now, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Appointment, error) {
		var a Appointment
		err := r.Scan(&a.ID, &a.StartsAt, &a.EndsAt, &a.Provider, &a.Location, &a.Kind, &a.Version)
		return a, err
	})
}
