package commands

import (
	"context"

	"github.com/google/uuid"
)

// AddPatientContact records a contact (parent, guardian, …) on a patient's chart.
type AddPatientContact struct {
	PatientID    uuid.UUID
	Name         string
	Relationship string
	Email        string
}

// AddPatientContact adds the contact; only staff of the patient's clinic may.
func (h *Handlers) AddPatientContact(ctx context.Context, meta Meta, cmd AddPatientContact) (uuid.UUID, error) {
	meta = meta.withDefaults()
	if err := requireRole(meta, patientManagers); err != nil {
		return uuid.Nil, err
	}
	p, stream, err := h.loadPatientOfClinic(ctx, meta, cmd.PatientID)
	if err != nil {
		return uuid.Nil, err
	}
	id := uuid.NewSHA1(bootstrapNamespace, []byte("contact:"+meta.CommandID))
	if err := p.AddContact(id, cmd.Name, cmd.Relationship, cmd.Email); err != nil {
		return uuid.Nil, err
	}
	return id, h.save(ctx, meta, p.ClinicID, stream, p)
}
