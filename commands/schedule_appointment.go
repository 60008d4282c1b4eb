package commands

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/appointment"
	"github.com/portico-health/portico/eventstore"
)

// ScheduleAppointment books an appointment for a patient of the actor's clinic.
type ScheduleAppointment struct {
	PatientID          uuid.UUID
	StartsAt, EndsAt   time.Time
	Provider, Location string
	Kind               string
}

func appointmentStream(id uuid.UUID) string {
	return eventstore.StreamName(appointment.Category, id.String())
}

// ScheduleAppointment records AppointmentScheduled in a stream of its own;
// the id derives from the command id, so a retried request books once.
func (h *Handlers) ScheduleAppointment(ctx context.Context, meta Meta, cmd ScheduleAppointment) (uuid.UUID, error) {
	meta = meta.withDefaults()
	if err := requireRole(meta, patientManagers); err != nil {
		return uuid.Nil, err
	}
	p, _, err := h.loadPatientOfClinic(ctx, meta, cmd.PatientID)
	if err != nil {
		return uuid.Nil, err
	}
	id := uuid.NewSHA1(bootstrapNamespace, []byte("appointment:"+meta.CommandID))
	a := &appointment.Appointment{}
	if err := h.load(ctx, appointmentStream(id), a); err != nil {
		return uuid.Nil, err
	}
	if err := a.Schedule(appointment.Scheduled{
		AppointmentID: id, PatientID: p.ID, ClinicID: p.ClinicID,
		StartsAt: cmd.StartsAt, EndsAt: cmd.EndsAt, Provider: cmd.Provider, Location: cmd.Location, Kind: cmd.Kind,
	}); err != nil {
		return uuid.Nil, err
	}
	return id, h.save(ctx, meta, p.ClinicID, appointmentStream(id), a)
}

// loadAppointmentOfClinic loads an appointment the actor's clinic may act
// on; another clinic's is not found.
func (h *Handlers) loadAppointmentOfClinic(ctx context.Context, meta Meta, id uuid.UUID) (*appointment.Appointment, error) {
	if err := requireRole(meta, patientManagers); err != nil {
		return nil, err
	}
	a := &appointment.Appointment{}
	if err := h.load(ctx, appointmentStream(id), a); err != nil {
		return nil, err
	}
	if domain.IsNew(a) || a.ClinicID != meta.Actor.ClinicID {
		return nil, domain.NotFound("appointment")
	}
	return a, nil
}
