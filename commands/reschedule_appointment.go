package commands

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// RescheduleAppointment moves an appointment.
type RescheduleAppointment struct {
	AppointmentID    uuid.UUID
	StartsAt, EndsAt time.Time
}

// RescheduleAppointment records AppointmentRescheduled unless nothing moves.
func (h *Handlers) RescheduleAppointment(ctx context.Context, meta Meta, cmd RescheduleAppointment) error {
	meta = meta.withDefaults()
	a, err := h.loadAppointmentOfClinic(ctx, meta, cmd.AppointmentID)
	if err != nil {
		return err
	}
	if err := a.Reschedule(cmd.StartsAt, cmd.EndsAt); err != nil {
		return err
	}
	return h.save(ctx, meta, a.ClinicID, appointmentStream(a.AppointmentID), a)
}
