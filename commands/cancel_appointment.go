package commands

import (
	"context"

	"github.com/google/uuid"
)

// CancelAppointment cancels an appointment.
type CancelAppointment struct {
	AppointmentID uuid.UUID
	Reason        string
}

// CancelAppointment records AppointmentCancelled; cancelling twice is one
// cancellation.
func (h *Handlers) CancelAppointment(ctx context.Context, meta Meta, cmd CancelAppointment) error {
	meta = meta.withDefaults()
	a, err := h.loadAppointmentOfClinic(ctx, meta, cmd.AppointmentID)
	if err != nil {
		return err
	}
	if err := a.Cancel(cmd.Reason); err != nil {
		return err
	}
	return h.save(ctx, meta, a.ClinicID, appointmentStream(a.AppointmentID), a)
}
