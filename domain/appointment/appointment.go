// Package appointment is one appointment of a patient at a clinic:
// scheduled, perhaps rescheduled, perhaps cancelled.
package appointment

import (
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain"
)

// Category is the event stream category of appointments.
const Category = "appointment"

// Kinds of appointment a clinic books.
var Kinds = []string{"evaluation", "therapy", "follow_up", "consultation", "telehealth", "other"}

// Scheduled: staff booked an appointment.
type Scheduled struct {
	AppointmentID uuid.UUID `json:"appointment_id"`
	PatientID     uuid.UUID `json:"patient_id"`
	ClinicID      uuid.UUID `json:"clinic_id"`
	StartsAt      time.Time `json:"starts_at"`
	EndsAt        time.Time `json:"ends_at"`
	Provider      string    `json:"provider"`
	Location      string    `json:"location"`
	Kind          string    `json:"kind"`
}

func (Scheduled) EventType() string { return "AppointmentScheduled" }

// Rescheduled: the appointment moved.
type Rescheduled struct {
	AppointmentID uuid.UUID `json:"appointment_id"`
	PatientID     uuid.UUID `json:"patient_id"`
	StartsAt      time.Time `json:"starts_at"`
	EndsAt        time.Time `json:"ends_at"`
}

func (Rescheduled) EventType() string { return "AppointmentRescheduled" }

// Cancelled: the appointment will not take place.
type Cancelled struct {
	AppointmentID uuid.UUID `json:"appointment_id"`
	PatientID     uuid.UUID `json:"patient_id"`
	Reason        string    `json:"reason,omitempty"`
}

func (Cancelled) EventType() string { return "AppointmentCancelled" }

func init() { domain.Register(Scheduled{}, Rescheduled{}, Cancelled{}) }

// Appointment is the aggregate.
type Appointment struct {
	domain.Root
	Scheduled
	Cancelled bool
}

// Apply is the appointment's one transition function.
func (a *Appointment) Apply(e domain.Event) {
	switch e := e.(type) {
	case Scheduled:
		a.Scheduled = e
	case Rescheduled:
		a.StartsAt, a.EndsAt = e.StartsAt, e.EndsAt
	case Cancelled:
		a.Cancelled = true
	}
}

func checkTimes(bad map[string]string, starts, ends time.Time) {
	if starts.IsZero() || starts.Year() < 2000 || starts.Year() > 2200 {
		bad["starts_at"] = "a time such as 2026-12-01T09:00:00Z"
	}
	if ends.IsZero() || !ends.After(starts) || ends.Sub(starts) > 12*time.Hour {
		bad["ends_at"] = "a time after starts_at, at most 12 hours later"
	}
}

func text(bad map[string]string, field, v string, max int, required bool) string {
	v = strings.Join(strings.Fields(v), " ")
	if (required && v == "") || len(v) > max {
		if required {
			bad[field] = "1 to " + strconv.Itoa(max) + " characters"
		} else {
			bad[field] = "at most " + strconv.Itoa(max) + " characters"
		}
	}
	return v
}

// Schedule decides a new appointment.
func (a *Appointment) Schedule(e Scheduled) error {
	bad := map[string]string{}
	checkTimes(bad, e.StartsAt, e.EndsAt)
	e.Provider = text(bad, "provider", e.Provider, 200, true)
	e.Location = text(bad, "location", e.Location, 200, true)
	e.Kind = strings.ToLower(strings.TrimSpace(e.Kind))
	known := false
	for _, k := range Kinds {
		known = known || k == e.Kind
	}
	if !known {
		bad["kind"] = "one of " + strings.Join(Kinds, ", ")
	}
	if len(bad) > 0 {
		return domain.Invalid(bad)
	}
	if !domain.IsNew(a) {
		return nil // a retried command
	}
	e.StartsAt, e.EndsAt = e.StartsAt.UTC(), e.EndsAt.UTC()
	domain.Record(a, e)
	return nil
}

// Reschedule moves a live appointment.
func (a *Appointment) Reschedule(starts, ends time.Time) error {
	bad := map[string]string{}
	checkTimes(bad, starts, ends)
	if len(bad) > 0 {
		return domain.Invalid(bad)
	}
	if a.Cancelled {
		return domain.Conflict("appointment_cancelled", "a cancelled appointment cannot be rescheduled; schedule a new one")
	}
	if a.StartsAt.Equal(starts) && a.EndsAt.Equal(ends) {
		return nil
	}
	domain.Record(a, Rescheduled{AppointmentID: a.AppointmentID, PatientID: a.PatientID, StartsAt: starts.UTC(), EndsAt: ends.UTC()})
	return nil
}

// Cancel cancels the appointment; cancelling again records nothing.
func (a *Appointment) Cancel(reason string) error {
	bad := map[string]string{}
	reason = text(bad, "reason", reason, 500, false)
	if len(bad) > 0 {
		return domain.Invalid(bad)
	}
	if a.Cancelled {
		return nil
	}
	domain.Record(a, Cancelled{AppointmentID: a.AppointmentID, PatientID: a.PatientID, Reason: reason})
	return nil
}
