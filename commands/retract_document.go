package commands

import (
	"context"

	"github.com/google/uuid"
)

// RetractDocument withdraws a published document from the portal.
type RetractDocument struct {
	DocumentID uuid.UUID
	Reason     string
}

// RetractDocument records DocumentRetracted; retracting twice is one
// retraction.
func (h *Handlers) RetractDocument(ctx context.Context, meta Meta, cmd RetractDocument) error {
	meta = meta.withDefaults()
	d, err := h.loadDocumentOfClinic(ctx, meta, cmd.DocumentID)
	if err != nil {
		return err
	}
	if err := d.Retract(cmd.Reason); err != nil {
		return err
	}
	return h.save(ctx, meta, d.ClinicID, documentStream(d.DocumentID), d)
}
