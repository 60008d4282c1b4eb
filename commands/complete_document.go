package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/document"
	"github.com/portico-health/portico/eventstore"
)

// CompleteDocument publishes a completed document of a patient of the
// actor's clinic. The file is already stored (internal/blobstore); the
// command names it.
type CompleteDocument struct {
	PatientID uuid.UUID
	Type      string
	Title     string
	File      document.File
}

func documentStream(id uuid.UUID) string {
	return eventstore.StreamName(document.Category, id.String())
}

// CompleteDocument records DocumentCompleted in a stream of its own; the id
// derives from the command id, so a retried request publishes once.
func (h *Handlers) CompleteDocument(ctx context.Context, meta Meta, cmd CompleteDocument) (uuid.UUID, error) {
	meta = meta.withDefaults()
	if err := requireRole(meta, patientManagers); err != nil {
		return uuid.Nil, err
	}
	p, _, err := h.loadPatientOfClinic(ctx, meta, cmd.PatientID)
	if err != nil {
		return uuid.Nil, err
	}
	id := uuid.NewSHA1(bootstrapNamespace, []byte("document:"+meta.CommandID))
	d := &document.Document{}
	if err := h.load(ctx, documentStream(id), d); err != nil {
		return uuid.Nil, err
	}
	if err := d.Complete(document.Completed{
		DocumentID: id, PatientID: p.ID, ClinicID: p.ClinicID, Type: cmd.Type, Title: cmd.Title, File: cmd.File,
	}); err != nil {
		return uuid.Nil, err
	}
	return id, h.save(ctx, meta, p.ClinicID, documentStream(id), d)
}

// loadDocumentOfClinic loads a document the actor's clinic may act on;
// another clinic's is not found.
func (h *Handlers) loadDocumentOfClinic(ctx context.Context, meta Meta, id uuid.UUID) (*document.Document, error) {
	if err := requireRole(meta, patientManagers); err != nil {
		return nil, err
	}
	d := &document.Document{}
	if err := h.load(ctx, documentStream(id), d); err != nil {
		return nil, err
	}
	if domain.IsNew(d) || d.ClinicID != meta.Actor.ClinicID {
		return nil, domain.NotFound("document")
	}
	return d, nil
}
