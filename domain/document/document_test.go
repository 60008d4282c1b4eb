package document

import (
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain"
)

func file() File {
	return File{SHA256: strings.Repeat("ab", 32), Size: 10, MediaType: "application/pdf", Name: "a.pdf"}
}

func TestCompleteValidatesThenRecordsOnce(t *testing.T) {
	d := &Document{}
	err := d.Complete(Completed{DocumentID: uuid.New(), Type: "surgery", Title: " ", File: File{SHA256: "../x"}})
	de, ok := domain.AsError(err)
	if !ok || de.Fields["type"] == "" || de.Fields["title"] == "" || de.Fields["file"] == "" {
		t.Fatalf("bad document = %v", err)
	}
	id := uuid.New()
	if err := d.Complete(Completed{DocumentID: id, Type: " Progress_Note ", Title: "  Session   one ", File: file()}); err != nil {
		t.Fatal(err)
	}
	if len(d.Pending()) != 1 || d.Type != "progress_note" || d.Title != "Session one" {
		t.Fatalf("recorded %v as %+v", d.Pending(), d.Completed)
	}
	if err := d.Complete(Completed{DocumentID: id, Type: "letter", Title: "x", File: file()}); err != nil || len(d.Pending()) != 1 {
		t.Fatalf("completing again = %v, %d events", err, len(d.Pending()))
	}
	if err := d.Retract("wrong chart"); err != nil || !d.Retracted {
		t.Fatal(err)
	}
	if err := d.Retract(""); err != nil || len(d.Pending()) != 2 {
		t.Fatalf("retracting again = %v, %d events", err, len(d.Pending()))
	}
	if _, ok := d.Pending()[1].(Retracted); !ok {
		t.Fatalf("events = %v", d.Pending())
	}
}
