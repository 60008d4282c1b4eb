package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/patient"
	"github.com/portico-health/portico/eventstore"
)

// RegisterPatient adds a patient to the acting staff member's clinic.
type RegisterPatient struct {
	FirstName   string
	LastName    string
	DateOfBirth string
	Email       string
}

// RegisterPatient registers a patient in the actor's clinic. The id derives
// from the command id, so a retried request (same Idempotency-Key) finds the
// patient it made instead of making another.
func (h *Handlers) RegisterPatient(ctx context.Context, meta Meta, cmd RegisterPatient) (uuid.UUID, error) {
	meta = meta.withDefaults()
	if err := requireRole(meta, patientManagers); err != nil || meta.Actor.ClinicID == uuid.Nil {
		return uuid.Nil, domain.Forbidden("only clinic staff (admin or staff role) register patients")
	}
	id := uuid.NewSHA1(bootstrapNamespace, []byte("patient:"+meta.CommandID))
	p := &patient.Patient{}
	stream := eventstore.StreamName(patient.Category, id.String())
	if err := h.load(ctx, stream, p); err != nil {
		return uuid.Nil, err
	}
	if !domain.IsNew(p) {
		return id, nil // the retried request's patient
	}
	if err := p.Register(id, meta.Actor.ClinicID, cmd.FirstName, cmd.LastName, cmd.DateOfBirth, cmd.Email, h.now()); err != nil {
		return uuid.Nil, err
	}
	return id, h.save(ctx, meta, meta.Actor.ClinicID, stream, p)
}

// loadPatientOfClinic loads a patient the actor's clinic may act on. Another
// clinic's patient is "not found", so ids cannot be probed.
func (h *Handlers) loadPatientOfClinic(ctx context.Context, meta Meta, id uuid.UUID) (*patient.Patient, string, error) {
	p := &patient.Patient{}
	stream := eventstore.StreamName(patient.Category, id.String())
	if err := h.load(ctx, stream, p); err != nil {
		return nil, "", err
	}
	if domain.IsNew(p) || meta.Actor.Kind != "staff" || p.ClinicID != meta.Actor.ClinicID {
		return nil, "", domain.NotFound("patient")
	}
	return p, stream, nil
}

// PatientClinic is the clinic of a patient, from the patient's stream, or
// not_found.
func (h *Handlers) PatientClinic(ctx context.Context, id uuid.UUID) (uuid.UUID, error) {
	p := &patient.Patient{}
	if err := h.load(ctx, eventstore.StreamName(patient.Category, id.String()), p); err != nil {
		return uuid.Nil, err
	}
	if domain.IsNew(p) {
		return uuid.Nil, domain.NotFound("patient")
	}
	return p.ClinicID, nil
}

// Patient is a patient as its stream says now, or not_found. Callers check
// that the reader may see it.
func (h *Handlers) Patient(ctx context.Context, id uuid.UUID) (*patient.Patient, error) {
	p := &patient.Patient{}
	if err := h.load(ctx, eventstore.StreamName(patient.Category, id.String()), p); err != nil {
		return nil, err
	}
	if domain.IsNew(p) {
		return nil, domain.NotFound("patient")
	}
	return p, nil
}
