// Package document is a completed document of a patient (an evaluation, a
// progress note, a letter, …) that the clinic publishes to the portal, and
// may retract. The file itself is a blob (internal/blobstore); the events
// hold only its address, size, media type and name.
package document

import (
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain"
)

// Category is the event stream category of documents.
const Category = "document"

// Types of completed document, a fixed list. A clinic may hide any of them
// from the portal (Clinic Options, domain/clinic).
var Types = []string{"evaluation", "progress_note", "treatment_plan", "discharge_summary", "letter", "other"}

// KnownType reports whether t is one of Types.
func KnownType(t string) bool { return slices.Contains(Types, t) }

// MaxTitle is the longest title, in characters.
const MaxTitle = 200

// File is a stored file as events name it: content address, size, media
// type (judged by content) and the name it was uploaded under.
type File struct {
	SHA256    string `json:"sha256"`
	Size      int64  `json:"size"`
	MediaType string `json:"media_type"`
	Name      string `json:"name"`
}

// Completed: staff published a completed document of a patient.
type Completed struct {
	DocumentID uuid.UUID `json:"document_id"`
	PatientID  uuid.UUID `json:"patient_id"`
	ClinicID   uuid.UUID `json:"clinic_id"`
	Type       string    `json:"type"`
	Title      string    `json:"title"`
	File       File      `json:"file"`
}

func (Completed) EventType() string { return "DocumentCompleted" }

// Retracted: staff withdrew a published document; the portal no longer
// shows it. History keeps it.
type Retracted struct {
	DocumentID uuid.UUID `json:"document_id"`
	PatientID  uuid.UUID `json:"patient_id"`
	Reason     string    `json:"reason,omitempty"`
}

func (Retracted) EventType() string { return "DocumentRetracted" }

func init() { domain.Register(Completed{}, Retracted{}) }

// Document is the aggregate.
type Document struct {
	domain.Root
	Completed
	Retracted bool
}

// Apply is the document's one transition function.
func (d *Document) Apply(e domain.Event) {
	switch e := e.(type) {
	case Completed:
		d.Completed = e
	case Retracted:
		d.Retracted = true
	}
}

// Normalise checks a document's type and title before anything is stored
// (the upload handler calls it before it stores the file), answering them
// as they would be recorded.
func Normalise(typ, title string) (string, string, error) {
	bad := map[string]string{}
	typ = strings.ToLower(strings.TrimSpace(typ))
	if !KnownType(typ) {
		bad["type"] = "one of " + strings.Join(Types, ", ")
	}
	title = strings.Join(strings.Fields(title), " ")
	if title == "" || utf8.RuneCountInString(title) > MaxTitle {
		bad["title"] = "1 to " + strconv.Itoa(MaxTitle) + " characters"
	}
	if len(bad) > 0 {
		return "", "", domain.Invalid(bad)
	}
	return typ, title, nil
}

func checkFile(bad map[string]string, f File) {
	ok := len(f.SHA256) == 64 && f.Size > 0 && f.MediaType != "" && f.Name != "" && utf8.RuneCountInString(f.Name) <= 255
	for _, c := range []byte(f.SHA256) {
		ok = ok && (c >= '0' && c <= '9' || c >= 'a' && c <= 'f')
	}
	if !ok {
		bad["file"] = "a stored file (address, size, media type and name)"
	}
}

// Complete decides a new completed document. Completing it again (a
// retried request) records nothing.
func (d *Document) Complete(e Completed) error {
	typ, title, err := Normalise(e.Type, e.Title)
	bad := map[string]string{}
	if de, ok := domain.AsError(err); ok {
		bad = de.Fields
	}
	checkFile(bad, e.File)
	if len(bad) > 0 {
		return domain.Invalid(bad)
	}
	if !domain.IsNew(d) {
		return nil
	}
	e.Type, e.Title = typ, title
	domain.Record(d, e)
	return nil
}

// Retract withdraws the document; retracting again records nothing.
func (d *Document) Retract(reason string) error {
	reason = strings.Join(strings.Fields(reason), " ")
	if utf8.RuneCountInString(reason) > 500 {
		return domain.Invalid(map[string]string{"reason": "at most 500 characters"})
	}
	if d.Retracted {
		return nil
	}
	domain.Record(d, Retracted{DocumentID: d.DocumentID, PatientID: d.PatientID, Reason: reason})
	return nil
}
