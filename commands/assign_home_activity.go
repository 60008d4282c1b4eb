package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/activity"
	"github.com/portico-health/portico/eventstore"
)

// AssignHomeActivity gives a patient of the actor's clinic a Home Activity.
type AssignHomeActivity struct {
	PatientID    uuid.UUID
	Title        string
	Instructions string
	Frequency    string // optional: "twice a day", "3 times a week"
}

func activityStream(id uuid.UUID) string {
	return eventstore.StreamName(activity.Category, id.String())
}

// AssignHomeActivity records HomeActivityAssigned in a stream of its own;
// the id derives from the command id, so a retried request assigns once.
func (h *Handlers) AssignHomeActivity(ctx context.Context, meta Meta, cmd AssignHomeActivity) (uuid.UUID, error) {
	meta = meta.withDefaults()
	if err := requireRole(meta, patientManagers); err != nil {
		return uuid.Nil, err
	}
	p, _, err := h.loadPatientOfClinic(ctx, meta, cmd.PatientID)
	if err != nil {
		return uuid.Nil, err
	}
	id := uuid.NewSHA1(bootstrapNamespace, []byte("homeactivity:"+meta.CommandID))
	a := &activity.Activity{}
	if err := h.load(ctx, activityStream(id), a); err != nil {
		return uuid.Nil, err
	}
	if err := a.Assign(activity.Assigned{
		ActivityID: id, PatientID: p.ID, ClinicID: p.ClinicID,
		Title: cmd.Title, Instructions: cmd.Instructions, Frequency: cmd.Frequency,
	}); err != nil {
		return uuid.Nil, err
	}
	return id, h.save(ctx, meta, p.ClinicID, activityStream(id), a)
}

// loadActivityOfClinic loads a home activity the actor's clinic may act on;
// another clinic's is not found.
func (h *Handlers) loadActivityOfClinic(ctx context.Context, meta Meta, id uuid.UUID) (*activity.Activity, error) {
	if err := requireRole(meta, patientManagers); err != nil {
		return nil, err
	}
	a := &activity.Activity{}
	if err := h.load(ctx, activityStream(id), a); err != nil {
		return nil, err
	}
	if domain.IsNew(a) || a.ClinicID != meta.Actor.ClinicID {
		return nil, domain.NotFound("home activity")
	}
	return a, nil
}
