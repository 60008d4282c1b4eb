// Package intakeform holds a clinic's blank intake forms and their
// assignments to patients: a form is assigned (by staff, or with an
// invitation) with an optional message, and the portal user returns it
// completed. A second return replaces the first; both stay in the history.
package intakeform

import (
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain"
)

// Categories of the two streams.
const (
	FormCategory       = "intakeform"
	AssignmentCategory = "intakeassignment"
)

// File is a stored file (internal/blobstore) as events name it: content
// address, size, media type and the name it was given.
type File struct {
	SHA256    string `json:"sha256"`
	Size      int64  `json:"size"`
	MediaType string `json:"media_type"`
	Name      string `json:"name"`
}

// FormUploaded: staff added a blank form to the clinic's library.
type FormUploaded struct {
	FormID   uuid.UUID `json:"form_id"`
	ClinicID uuid.UUID `json:"clinic_id"`
	Name     string    `json:"name"`
	File     File      `json:"file"`
}

func (FormUploaded) EventType() string { return "IntakeFormUploaded" }

// Assigned: a form was assigned to a patient.
type Assigned struct {
	AssignmentID uuid.UUID  `json:"assignment_id"`
	PatientID    uuid.UUID  `json:"patient_id"`
	ClinicID     uuid.UUID  `json:"clinic_id"`
	FormID       uuid.UUID  `json:"form_id"`
	FormName     string     `json:"form_name"`
	Message      string     `json:"message,omitempty"`
	InvitationID *uuid.UUID `json:"invitation_id,omitempty"`
}

func (Assigned) EventType() string { return "IntakeFormAssigned" }

// Returned: the completed form came back through the portal.
type Returned struct {
	AssignmentID uuid.UUID `json:"assignment_id"`
	PatientID    uuid.UUID `json:"patient_id"`
	File         File      `json:"file"`
	ReturnedBy   uuid.UUID `json:"returned_by"`
}

func (Returned) EventType() string { return "IntakeFormReturned" }

func init() { domain.Register(FormUploaded{}, Assigned{}, Returned{}) }

// Form is a blank form.
type Form struct {
	domain.Root
	FormUploaded
}

// Apply is the form's one transition function.
func (f *Form) Apply(e domain.Event) {
	if e, ok := e.(FormUploaded); ok {
		f.FormUploaded = e
	}
}

// Upload decides a new form.
func (f *Form) Upload(e FormUploaded) error {
	e.Name = strings.Join(strings.Fields(e.Name), " ")
	if e.Name == "" || len(e.Name) > 200 {
		return domain.Invalid(map[string]string{"name": "1 to 200 characters"})
	}
	if !domain.IsNew(f) {
		return nil
	}
	domain.Record(f, e)
	return nil
}

// Assignment is one form assigned to one patient.
type Assignment struct {
	domain.Root
	Assigned
	Returns    int
	LastReturn *File
	ReturnedAt time.Time
}

// Apply is the assignment's one transition function.
func (a *Assignment) Apply(e domain.Event) {
	switch e := e.(type) {
	case Assigned:
		a.Assigned = e
	case Returned:
		f := e.File
		a.Returns++
		a.LastReturn = &f
	}
}

// Assign decides a new assignment of a clinic's form.
func (a *Assignment) Assign(e Assigned, form *Form) error {
	bad := map[string]string{}
	e.Message = strings.TrimSpace(e.Message)
	if len(e.Message) > 2000 {
		bad["message"] = "at most 2000 characters"
	}
	if domain.IsNew(form) || form.ClinicID != e.ClinicID {
		bad["form_id"] = "no such form in this clinic's library"
	}
	if len(bad) > 0 {
		return domain.Invalid(bad)
	}
	if !domain.IsNew(a) {
		return nil
	}
	e.FormName = form.Name
	domain.Record(a, e)
	return nil
}

// Return records a completed form; a later return replaces an earlier one.
func (a *Assignment) Return(f File, by uuid.UUID) error {
	if domain.IsNew(a) {
		return domain.NotFound("intake form")
	}
	if a.LastReturn != nil && a.LastReturn.SHA256 == f.SHA256 {
		return nil // the same file again: a retried upload
	}
	domain.Record(a, Returned{AssignmentID: a.AssignmentID, PatientID: a.PatientID, File: f, ReturnedBy: by})
	return nil
}
