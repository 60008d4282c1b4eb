// Package patients is the read model of a clinic's patients and their
// contacts: what staff search and open. Rows carry the stream version they
// reflect, so an event applied again changes nothing.
package patients

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/portico-health/portico/domain/patient"
	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/projections"
)

// Projection keeps rm.patients and rm.patient_contacts.
type Projection struct{}

var (
	_ projections.Projection         = Projection{}
	_ projections.BatchApplier       = Projection{}
	_ projections.PatientSnapshotter = Projection{}
)

func (Projection) Name() string         { return "patients" }
func (Projection) Categories() []string { return []string{patient.Category} }
func (Projection) Critical() bool       { return false }
func (Projection) Tables() []string     { return []string{"patients", "patient_contacts"} }

func (Projection) Setup(_ context.Context, w *projections.Writer) error {
	w.Queue(`CREATE TABLE ` + w.T("patients") + ` (
		patient_id    uuid        PRIMARY KEY,
		clinic_id     uuid        NOT NULL,
		first_name    text        NOT NULL,
		last_name     text        NOT NULL,
		date_of_birth date        NOT NULL,
		email         text,
		registered_at timestamptz NOT NULL,
		version       bigint      NOT NULL)`)
	w.Queue(`CREATE INDEX ON ` + w.T("patients") + ` (clinic_id, lower(last_name), lower(first_name))`)
	w.Queue(`CREATE TABLE ` + w.T("patient_contacts") + ` (
		contact_id   uuid        PRIMARY KEY,
		patient_id   uuid        NOT NULL,
		clinic_id    uuid        NOT NULL,
		name         text        NOT NULL,
		relationship text        NOT NULL,
		email        text        NOT NULL,
		added_at     timestamptz NOT NULL,
		version      bigint      NOT NULL)`)
	w.Queue(`CREATE INDEX ON ` + w.T("patient_contacts") + ` (patient_id)`)
	return nil
}

// ReportingViews: patients and contacts per clinic (docs/reporting.md).
func (Projection) ReportingViews() []string {
	return []string{`CREATE OR REPLACE VIEW reporting.patients_per_clinic AS
		SELECT p.clinic_id,
		       count(*)                                  AS patients,
		       count(*) FILTER (WHERE p.email IS NOT NULL) AS patients_with_email,
		       coalesce(sum(c.contacts), 0)::bigint      AS contacts,
		       min(p.registered_at)                      AS first_registered_at,
		       max(p.registered_at)                      AS last_registered_at
		FROM rm.patients p
		LEFT JOIN (SELECT patient_id, count(*) AS contacts FROM rm.patient_contacts GROUP BY patient_id) c USING (patient_id)
		GROUP BY p.clinic_id`}
}

// The upserts of Apply and ApplyBatch. Both guard on the row's version, so
// an event applied again changes nothing.
const (
	upsertPatient = ` AS t (patient_id, clinic_id, first_name, last_name, date_of_birth, email, registered_at, version)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (patient_id) DO UPDATE SET first_name = excluded.first_name, last_name = excluded.last_name,
				date_of_birth = excluded.date_of_birth, email = excluded.email, version = excluded.version
			WHERE t.version < excluded.version`
	insertContact = ` (contact_id, patient_id, clinic_id, name, relationship, email, added_at, version)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (contact_id) DO NOTHING`
	upsertPatients = ` AS t (patient_id, clinic_id, first_name, last_name, date_of_birth, email, registered_at, version)
			SELECT u.patient_id, u.clinic_id, u.first_name, u.last_name, u.date_of_birth::date, u.email, u.registered_at, u.version
			FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[], $8::bigint[])
				AS u(patient_id, clinic_id, first_name, last_name, date_of_birth, email, registered_at, version)
			ON CONFLICT (patient_id) DO UPDATE SET first_name = excluded.first_name, last_name = excluded.last_name,
				date_of_birth = excluded.date_of_birth, email = excluded.email, version = excluded.version
			WHERE t.version < excluded.version`
	insertContacts = ` (contact_id, patient_id, clinic_id, name, relationship, email, added_at, version)
			SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::timestamptz[], $8::bigint[])
			ON CONFLICT (contact_id) DO NOTHING`
)

// Apply writes one event. Ids are sent as [16]byte: pgx encodes those as
// binary uuids directly, where a uuid.UUID goes through its driver.Valuer
// string, a failed encode plan and a parse (a quarter of a rebuild's Go CPU).
func (Projection) Apply(_ context.Context, w *projections.Writer, e eventstore.Envelope) error {
	switch e.Type {
	case patient.Registered{}.EventType():
		var d patient.Registered
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return err
		}
		w.Queue(`INSERT INTO `+w.T("patients")+upsertPatient,
			[16]byte(d.PatientID), [16]byte(d.ClinicID), d.FirstName, d.LastName, d.DateOfBirth, optional(d.Email), e.Metadata.RecordedAt, e.Version)
	case patient.ContactAdded{}.EventType():
		var d patient.ContactAdded
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return err
		}
		clinic, err := clinicOf(e)
		if err != nil {
			return err
		}
		w.Queue(`INSERT INTO `+w.T("patient_contacts")+insertContact,
			[16]byte(d.ContactID), [16]byte(d.PatientID), clinic, d.Name, d.Relationship, d.Email, e.Metadata.RecordedAt, e.Version)
	default:
		return projections.Unknown(e)
	}
	return nil
}

// ApplyBatch writes a page of events in a rebuild with one multi-row
// statement per table instead of one statement per event, leaving the
// tables as Apply would event by event. A patient registered twice in the
// page (which the aggregate never records, but a log may hold) starts a new
// statement, since one upsert cannot touch a row twice.
func (Projection) ApplyBatch(_ context.Context, w *projections.Writer, events []eventstore.Envelope) error {
	var ps patientRows
	var cs contactRows
	inPage := map[uuid.UUID]bool{}
	for _, e := range events {
		switch e.Type {
		case patient.Registered{}.EventType():
			var d patient.Registered
			if err := json.Unmarshal(e.Data, &d); err != nil {
				return fmt.Errorf("position %d: %w", e.Position, err)
			}
			if inPage[d.PatientID] {
				ps.queue(w)
				ps = patientRows{}
				clear(inPage)
			}
			inPage[d.PatientID] = true
			ps.add(d, e)
		case patient.ContactAdded{}.EventType():
			var d patient.ContactAdded
			if err := json.Unmarshal(e.Data, &d); err != nil {
				return fmt.Errorf("position %d: %w", e.Position, err)
			}
			clinic, err := clinicOf(e)
			if err != nil {
				return fmt.Errorf("position %d: %w", e.Position, err)
			}
			// In page order, so the first of two adds of one contact wins, as
			// ON CONFLICT DO NOTHING event by event would have it.
			cs.add(d, clinic, e)
		default:
			return projections.Unknown(e)
		}
	}
	ps.queue(w)
	cs.queue(w)
	return nil
}

type patientRows struct {
	id, clinic        [][16]byte
	first, last, born []string
	email             []*string
	registered        []time.Time
	version           []int64
}

func (r *patientRows) add(d patient.Registered, e eventstore.Envelope) {
	r.id = append(r.id, d.PatientID)
	r.clinic = append(r.clinic, d.ClinicID)
	r.first = append(r.first, d.FirstName)
	r.last = append(r.last, d.LastName)
	r.born = append(r.born, d.DateOfBirth)
	r.email = append(r.email, optional(d.Email))
	r.registered = append(r.registered, e.Metadata.RecordedAt)
	r.version = append(r.version, e.Version)
}

func (r *patientRows) queue(w *projections.Writer) {
	if len(r.id) > 0 {
		w.Queue(`INSERT INTO `+w.T("patients")+upsertPatients, r.id, r.clinic, r.first, r.last, r.born, r.email, r.registered, r.version)
	}
}

type contactRows struct {
	id, patient, clinic       [][16]byte
	name, relationship, email []string
	added                     []time.Time
	version                   []int64
}

func (r *contactRows) add(d patient.ContactAdded, clinic [16]byte, e eventstore.Envelope) {
	r.id = append(r.id, d.ContactID)
	r.patient = append(r.patient, d.PatientID)
	r.clinic = append(r.clinic, clinic)
	r.name = append(r.name, d.Name)
	r.relationship = append(r.relationship, d.Relationship)
	r.email = append(r.email, d.Email)
	r.added = append(r.added, e.Metadata.RecordedAt)
	r.version = append(r.version, e.Version)
}

func (r *contactRows) queue(w *projections.Writer) {
	if len(r.id) > 0 {
		w.Queue(`INSERT INTO `+w.T("patient_contacts")+insertContacts, r.id, r.patient, r.clinic, r.name, r.relationship, r.email, r.added, r.version)
	}
}

// clinicOf is the clinic of a contact event, from its metadata.
func clinicOf(e eventstore.Envelope) ([16]byte, error) {
	id, err := uuid.Parse(e.Metadata.ClinicID)
	if err != nil {
		return id, fmt.Errorf("clinic id %q of %s event: %w", e.Metadata.ClinicID, e.Type, err)
	}
	return id, nil
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Patient is a row of the read model.
type Patient struct {
	ID           uuid.UUID `json:"id"`
	ClinicID     uuid.UUID `json:"clinic_id"`
	FirstName    string    `json:"first_name"`
	LastName     string    `json:"last_name"`
	DateOfBirth  string    `json:"date_of_birth"`
	Email        string    `json:"email,omitempty"`
	RegisteredAt time.Time `json:"registered_at"`
	Version      int64     `json:"version"`
	Contacts     []Contact `json:"contacts"`
}

// Contact is a contact row.
type Contact struct {
	ID           uuid.UUID `json:"id"`
	Name         string    `json:"name"`
	Relationship string    `json:"relationship"`
	Email        string    `json:"email"`
}

// Querier is a pool or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Search finds a clinic's patients whose name starts with, or whose date of
// birth equals, query; all of them for an empty query. Newest first.
func Search(ctx context.Context, q Querier, schema string, clinicID uuid.UUID, query string, limit int) ([]Patient, error) {
	return find(ctx, q, schema, `p.clinic_id = $1 AND ($2 = ''
			OR lower(p.last_name) LIKE lower($2) || '%' OR lower(p.first_name) LIKE lower($2) || '%'
			OR lower(p.first_name || ' ' || p.last_name) LIKE lower($2) || '%'
			OR p.date_of_birth::text = $2)`, limit, clinicID, escapeLike(query))
}

// Get returns one patient of a clinic, or nil.
func Get(ctx context.Context, q Querier, schema string, clinicID, patientID uuid.UUID) (*Patient, error) {
	found, err := find(ctx, q, schema, `p.clinic_id = $1 AND p.patient_id = $2`, 1, clinicID, patientID)
	if err != nil || len(found) == 0 {
		return nil, err
	}
	return &found[0], nil
}

func find(ctx context.Context, q Querier, schema, where string, limit int, args ...any) ([]Patient, error) {
	s := pgx.Identifier{schema}.Sanitize()
	rows, err := q.Query(ctx, `SELECT p.patient_id, p.clinic_id, p.first_name, p.last_name, p.date_of_birth::text, coalesce(p.email, ''), p.registered_at, p.version,
			coalesce(json_agg(json_build_object('id', c.contact_id, 'name', c.name, 'relationship', c.relationship, 'email', c.email)
				ORDER BY c.added_at) FILTER (WHERE c.contact_id IS NOT NULL), '[]')
		FROM `+s+`.patients p LEFT JOIN `+s+`.patient_contacts c USING (patient_id)
		WHERE `+where+`
		GROUP BY p.patient_id, p.clinic_id, p.first_name, p.last_name, p.date_of_birth, p.email, p.registered_at, p.version
		ORDER BY p.registered_at DESC, p.patient_id
		LIMIT `+strconv.Itoa(limit), args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Patient, error) {
		var p Patient
		var contacts []byte
		if err := r.Scan(&p.ID, &p.ClinicID, &p.FirstName, &p.LastName, &p.DateOfBirth, &p.Email, &p.RegisteredAt, &p.Version, &contacts); err != nil {
			return p, err
		}
		return p, json.Unmarshal(contacts, &p.Contacts)
	})
}

func escapeLike(s string) string {
	out := make([]rune, 0, len(s))
	for _, r := range s {
		if r == '%' || r == '_' || r == '\\' {
			out = append(out, '\\')
		}
		out = append(out, r)
	}
	return string(out)
}

// PatientSnapshot shows the patient's row and contacts in schema.
func (Projection) PatientSnapshot(ctx context.Context, tx pgx.Tx, schema string, patientID uuid.UUID) (any, error) {
	found, err := find(ctx, tx, schema, `p.patient_id = $1`, 1, patientID)
	if err != nil || len(found) == 0 {
		return nil, err
	}
	return found[0], nil
}
