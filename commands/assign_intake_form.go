package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain/intakeform"
)

// AssignIntakeForm assigns a form of the clinic's library to a patient.
type AssignIntakeForm struct {
	PatientID    uuid.UUID
	FormID       uuid.UUID
	Message      string
	InvitationID *uuid.UUID // set when the form came with an invitation
}

// AssignIntakeForm records IntakeFormAssigned in a stream of its own.
func (h *Handlers) AssignIntakeForm(ctx context.Context, meta Meta, cmd AssignIntakeForm) (uuid.UUID, error) {
	meta = meta.withDefaults()
	if err := requireRole(meta, patientManagers); err != nil {
		return uuid.Nil, err
	}
	p, _, err := h.loadPatientOfClinic(ctx, meta, cmd.PatientID)
	if err != nil {
		return uuid.Nil, err
	}
	form := &intakeform.Form{}
	if err := h.load(ctx, intakeFormStream(cmd.FormID), form); err != nil {
		return uuid.Nil, err
	}
	id := uuid.NewSHA1(bootstrapNamespace, []byte("intakeassignment:"+meta.CommandID+":"+cmd.FormID.String()))
	a := &intakeform.Assignment{}
	if err := h.load(ctx, intakeAssignmentStream(id), a); err != nil {
		return uuid.Nil, err
	}
	if err := a.Assign(intakeform.Assigned{
		AssignmentID: id, PatientID: p.ID, ClinicID: p.ClinicID, FormID: cmd.FormID, Message: cmd.Message, InvitationID: cmd.InvitationID,
	}, form); err != nil {
		return uuid.Nil, err
	}
	return id, h.save(ctx, meta, p.ClinicID, intakeAssignmentStream(id), a)
}
