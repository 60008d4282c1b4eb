package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/intakeform"
)

// ReturnIntakeForm hands back a completed form through the portal. The API
// has checked the caller's grant to the patient and stored the file.
type ReturnIntakeForm struct {
	PatientID    uuid.UUID
	AssignmentID uuid.UUID
	File         intakeform.File
}

// ReturnIntakeForm records IntakeFormReturned; the assignment must be the
// patient's.
func (h *Handlers) ReturnIntakeForm(ctx context.Context, meta Meta, cmd ReturnIntakeForm) error {
	meta = meta.withDefaults()
	if meta.Actor.Kind != "portal" {
		return domain.Forbidden("intake forms are returned through the portal")
	}
	by, _ := uuid.Parse(meta.Actor.ID)
	a, err := h.IntakeAssignment(ctx, cmd.PatientID, cmd.AssignmentID)
	if err != nil {
		return err
	}
	_, err = h.update(ctx, meta, a.ClinicID, intakeAssignmentStream(cmd.AssignmentID), func() domain.Aggregate { return &intakeform.Assignment{} }, func(x domain.Aggregate) error {
		return x.(*intakeform.Assignment).Return(cmd.File, by)
	})
	return err
}

// IntakeAssignment is a patient's assignment, or not_found.
func (h *Handlers) IntakeAssignment(ctx context.Context, patientID, id uuid.UUID) (*intakeform.Assignment, error) {
	a := &intakeform.Assignment{}
	if err := h.load(ctx, intakeAssignmentStream(id), a); err != nil {
		return nil, err
	}
	if domain.IsNew(a) || a.PatientID != patientID {
		return nil, domain.NotFound("intake form")
	}
	return a, nil
}
