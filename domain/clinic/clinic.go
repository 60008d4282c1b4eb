// Package clinic is the clinic aggregate: a practice that runs the portal.
package clinic

import (
	"strings"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain"
)

// Category is the event stream category of clinics.
const Category = "clinic"

// Registered: a clinic started using Portico.
type Registered struct {
	ClinicID uuid.UUID `json:"clinic_id"`
	Name     string    `json:"name"`
	// FirstAdminID is the administrator created with the clinic, so a
	// repeated bootstrap can tell its own clinic from someone else's.
	FirstAdminID uuid.UUID `json:"first_admin_id"`
}

func (Registered) EventType() string { return "ClinicRegistered" }

func init() { domain.Register(Registered{}) }

// Clinic is the aggregate.
type Clinic struct {
	domain.Root
	ID           uuid.UUID
	Name         string
	FirstAdminID uuid.UUID
	// Contact is how portal users reach the clinic (contact.go).
	Contact Contact
	// options are the Clinic Options (options.go); nil: the defaults.
	options *Options
}

// Apply is the clinic's one transition function.
func (c *Clinic) Apply(e domain.Event) {
	switch e := e.(type) {
	case Registered:
		c.ID, c.Name, c.FirstAdminID = e.ClinicID, e.Name, e.FirstAdminID
	case ContactSet:
		c.Contact = e.Contact
	case OptionsChanged:
		c.applyOptions(e)
	}
}

// Register decides a new clinic.
func (c *Clinic) Register(id uuid.UUID, name string, firstAdmin uuid.UUID) error {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 200 {
		return domain.Invalid(map[string]string{"name": "a clinic name of 1 to 200 characters is required"})
	}
	if !domain.IsNew(c) {
		return domain.Conflict("conflict", "clinic %s is already registered", id)
	}
	domain.Record(c, Registered{ClinicID: id, Name: name, FirstAdminID: firstAdmin})
	return nil
}
