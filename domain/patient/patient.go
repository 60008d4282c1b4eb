// Package patient is the patient aggregate: the person a clinic serves, and
// the contacts (parents, guardians, …) recorded on the patient's chart.
package patient

import (
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/emailclaim"
)

// Category is the event stream category of patients.
const Category = "patient"

// Registered: a clinic registered a patient.
type Registered struct {
	PatientID   uuid.UUID `json:"patient_id"`
	ClinicID    uuid.UUID `json:"clinic_id"`
	FirstName   string    `json:"first_name"`
	LastName    string    `json:"last_name"`
	DateOfBirth string    `json:"date_of_birth"` // YYYY-MM-DD
	Email       string    `json:"email,omitempty"`
}

func (Registered) EventType() string { return "PatientRegistered" }

// ContactAdded: a contact was recorded on the patient's chart.
type ContactAdded struct {
	PatientID    uuid.UUID `json:"patient_id"`
	ContactID    uuid.UUID `json:"contact_id"`
	Name         string    `json:"name"`
	Relationship string    `json:"relationship"`
	Email        string    `json:"email"`
}

func (ContactAdded) EventType() string { return "PatientContactAdded" }

func init() { domain.Register(Registered{}, ContactAdded{}) }

// Relationships a contact may have to the patient.
var Relationships = []string{"parent", "guardian", "spouse", "partner", "child", "sibling", "grandparent", "caregiver", "other"}

// Contact is a contact on the chart.
type Contact struct {
	ID           uuid.UUID
	Name         string
	Relationship string
	Email        string
}

// Patient is the aggregate.
type Patient struct {
	domain.Root
	ID        uuid.UUID
	ClinicID  uuid.UUID
	FirstName string
	LastName  string
	Email     string
	Contacts  map[uuid.UUID]Contact
}

// Apply is the patient's one transition function.
func (p *Patient) Apply(e domain.Event) {
	switch e := e.(type) {
	case Registered:
		p.ID, p.ClinicID, p.FirstName, p.LastName, p.Email = e.PatientID, e.ClinicID, e.FirstName, e.LastName, e.Email
		p.Contacts = map[uuid.UUID]Contact{}
	case ContactAdded:
		p.Contacts[e.ContactID] = Contact{ID: e.ContactID, Name: e.Name, Relationship: e.Relationship, Email: e.Email}
	}
}

func name(bad map[string]string, field, v string) string {
	v = strings.Join(strings.Fields(v), " ")
	if v == "" || len(v) > 100 {
		bad[field] = "1 to 100 characters"
	}
	return v
}

// Register decides a new patient of a clinic.
func (p *Patient) Register(id, clinicID uuid.UUID, first, last, dob, email string, today time.Time) error {
	bad := map[string]string{}
	first, last = name(bad, "first_name", first), name(bad, "last_name", last)
	born, err := time.Parse(time.DateOnly, dob)
	if err != nil || born.Year() < 1900 || born.After(today) {
		bad["date_of_birth"] = "a date (YYYY-MM-DD) between 1900 and today"
	}
	if email != "" {
		var ok bool
		if email, ok = emailclaim.Normalise(email); !ok {
			bad["email"] = "a valid email address, or none"
		}
	}
	if len(bad) > 0 {
		return domain.Invalid(bad)
	}
	if !domain.IsNew(p) {
		return domain.Conflict("conflict", "patient %s exists already", id)
	}
	domain.Record(p, Registered{PatientID: id, ClinicID: clinicID, FirstName: first, LastName: last, DateOfBirth: born.Format(time.DateOnly), Email: email})
	return nil
}

// AddContact records a contact on the chart.
func (p *Patient) AddContact(id uuid.UUID, contactName, relationship, email string) error {
	bad := map[string]string{}
	contactName = name(bad, "name", contactName)
	relationship = strings.ToLower(strings.TrimSpace(relationship))
	known := false
	for _, r := range Relationships {
		known = known || r == relationship
	}
	if !known {
		bad["relationship"] = "one of " + strings.Join(Relationships, ", ")
	}
	email, ok := emailclaim.Normalise(email)
	if !ok {
		bad["email"] = "a valid email address is required to invite a contact"
	}
	if len(bad) > 0 {
		return domain.Invalid(bad)
	}
	if _, exists := p.Contacts[id]; exists {
		return nil // a retried add
	}
	for _, c := range p.Contacts {
		if c.Email == email {
			return domain.Conflict("conflict", "a contact with this email is already on the chart")
		}
	}
	domain.Record(p, ContactAdded{PatientID: p.ID, ContactID: id, Name: contactName, Relationship: relationship, Email: email})
	return nil
}
