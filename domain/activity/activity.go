// Package activity is one Home Activity a clinic assigned to a patient:
// exercises or practice to do at home, with instructions and how often.
// Assigned, perhaps later unassigned.
package activity

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain"
)

// Category is the event stream category of home activities.
const Category = "homeactivity"

// Limits of what staff write, in characters.
const (
	MaxTitle        = 200
	MaxInstructions = 5000
	MaxFrequency    = 200
)

// Assigned: staff gave a patient a home activity.
type Assigned struct {
	ActivityID   uuid.UUID `json:"activity_id"`
	PatientID    uuid.UUID `json:"patient_id"`
	ClinicID     uuid.UUID `json:"clinic_id"`
	Title        string    `json:"title"`
	Instructions string    `json:"instructions"`
	Frequency    string    `json:"frequency,omitempty"`
}

func (Assigned) EventType() string { return "HomeActivityAssigned" }

// Unassigned: the patient no longer has the activity.
type Unassigned struct {
	ActivityID uuid.UUID `json:"activity_id"`
	PatientID  uuid.UUID `json:"patient_id"`
}

func (Unassigned) EventType() string { return "HomeActivityUnassigned" }

func init() { domain.Register(Assigned{}, Unassigned{}) }

// Activity is the aggregate.
type Activity struct {
	domain.Root
	Assigned
	Unassigned bool
}

// Apply is the activity's one transition function.
func (a *Activity) Apply(e domain.Event) {
	switch e := e.(type) {
	case Assigned:
		a.Assigned = e
	case Unassigned:
		a.Unassigned = true
	}
}

// line is a one-line text: runs of white space become one space.
func line(bad map[string]string, field, v string, max int, required bool) string {
	v = strings.Join(strings.Fields(v), " ")
	check(bad, field, v, max, required)
	return v
}

// paragraphs is a text whose line breaks matter (instructions, steps):
// each line is trimmed, runs of blank lines become one, other control
// characters go.
func paragraphs(bad map[string]string, field, v string, max int, required bool) string {
	v = strings.ReplaceAll(strings.ReplaceAll(v, "\r\n", "\n"), "\r", "\n")
	var lines []string
	blank := false
	for _, l := range strings.Split(v, "\n") {
		l = strings.Join(strings.FieldsFunc(l, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
		if l == "" {
			blank = len(lines) > 0
			continue
		}
		if blank {
			lines = append(lines, "")
			blank = false
		}
		lines = append(lines, l)
	}
	v = strings.Join(lines, "\n")
	check(bad, field, v, max, required)
	return v
}

func check(bad map[string]string, field, v string, max int, required bool) {
	n := utf8.RuneCountInString(v)
	switch {
	case required && (v == "" || n > max):
		bad[field] = "1 to " + strconv.Itoa(max) + " characters"
	case n > max:
		bad[field] = "at most " + strconv.Itoa(max) + " characters"
	}
}

// Assign decides a new home activity.
func (a *Activity) Assign(e Assigned) error {
	bad := map[string]string{}
	e.Title = line(bad, "title", e.Title, MaxTitle, true)
	e.Instructions = paragraphs(bad, "instructions", e.Instructions, MaxInstructions, true)
	e.Frequency = line(bad, "frequency", e.Frequency, MaxFrequency, false)
	if len(bad) > 0 {
		return domain.Invalid(bad)
	}
	if !domain.IsNew(a) {
		return nil // a retried command
	}
	domain.Record(a, e)
	return nil
}

// Unassign takes the activity away; unassigning again records nothing.
func (a *Activity) Unassign() error {
	if a.Unassigned {
		return nil
	}
	domain.Record(a, Unassigned{ActivityID: a.ActivityID, PatientID: a.PatientID})
	return nil
}
