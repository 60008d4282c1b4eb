package commands

import (
	"context"

	"github.com/google/uuid"
)

// UnassignHomeActivity takes a Home Activity away from its patient.
type UnassignHomeActivity struct {
	ActivityID uuid.UUID
}

// UnassignHomeActivity records HomeActivityUnassigned; unassigning twice is
// one unassignment.
func (h *Handlers) UnassignHomeActivity(ctx context.Context, meta Meta, cmd UnassignHomeActivity) error {
	meta = meta.withDefaults()
	a, err := h.loadActivityOfClinic(ctx, meta, cmd.ActivityID)
	if err != nil {
		return err
	}
	if err := a.Unassign(); err != nil {
		return err
	}
	return h.save(ctx, meta, a.ClinicID, activityStream(a.ActivityID), a)
}
