package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/intakeform"
	"github.com/portico-health/portico/eventstore"
)

// UploadIntakeForm adds a blank form, already stored as a file, to the
// actor's clinic library.
type UploadIntakeForm struct {
	Name string
	File intakeform.File
}

func intakeFormStream(id uuid.UUID) string {
	return eventstore.StreamName(intakeform.FormCategory, id.String())
}

func intakeAssignmentStream(id uuid.UUID) string {
	return eventstore.StreamName(intakeform.AssignmentCategory, id.String())
}

// UploadIntakeForm records IntakeFormUploaded.
func (h *Handlers) UploadIntakeForm(ctx context.Context, meta Meta, cmd UploadIntakeForm) (uuid.UUID, error) {
	meta = meta.withDefaults()
	if err := requireRole(meta, patientManagers); err != nil {
		return uuid.Nil, err
	}
	id := uuid.NewSHA1(bootstrapNamespace, []byte("intakeform:"+meta.CommandID))
	f := &intakeform.Form{}
	if err := h.load(ctx, intakeFormStream(id), f); err != nil {
		return uuid.Nil, err
	}
	if err := f.Upload(intakeform.FormUploaded{FormID: id, ClinicID: meta.Actor.ClinicID, Name: cmd.Name, File: cmd.File}); err != nil {
		return uuid.Nil, err
	}
	return id, h.save(ctx, meta, meta.Actor.ClinicID, intakeFormStream(id), f)
}

// IntakeForm is a blank form of a clinic, or not_found.
func (h *Handlers) IntakeForm(ctx context.Context, clinicID, id uuid.UUID) (*intakeform.Form, error) {
	f := &intakeform.Form{}
	if err := h.load(ctx, intakeFormStream(id), f); err != nil {
		return nil, err
	}
	if domain.IsNew(f) || f.ClinicID != clinicID {
		return nil, domain.NotFound("intake form")
	}
	return f, nil
}
