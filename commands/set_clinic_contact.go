package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/clinic"
	"github.com/portico-health/portico/domain/staff"
	"github.com/portico-health/portico/eventstore"
)

// SetClinicContact sets how portal users reach the actor's clinic (phone,
// email, free text), as the portal handout prints it.
type SetClinicContact struct {
	Contact clinic.Contact
}

var clinicAdmins = []string{string(staff.RoleAdmin)}

func clinicStream(id uuid.UUID) string { return eventstore.StreamName(clinic.Category, id.String()) }

// SetClinicContact records ClinicContactSet unless nothing changes. Only an
// administrator of the clinic may. The clinic's stream is shared with other
// settings, so a concurrent change there is retried, not refused.
func (h *Handlers) SetClinicContact(ctx context.Context, meta Meta, cmd SetClinicContact) (clinic.Contact, error) {
	meta = meta.withDefaults()
	if err := requireRole(meta, clinicAdmins); err != nil || meta.Actor.ClinicID == uuid.Nil {
		return clinic.Contact{}, domain.Forbidden("only an administrator of the clinic sets its contact")
	}
	agg, err := h.update(ctx, meta, meta.Actor.ClinicID, clinicStream(meta.Actor.ClinicID),
		func() domain.Aggregate { return &clinic.Clinic{} },
		func(a domain.Aggregate) error { return a.(*clinic.Clinic).SetContact(cmd.Contact) })
	if err != nil {
		return clinic.Contact{}, err
	}
	return agg.(*clinic.Clinic).Contact, nil
}

// ClinicState is a clinic as its stream says now (name, contact, …), or
// not_found. Callers check that the reader may see it.
func (h *Handlers) ClinicState(ctx context.Context, id uuid.UUID) (*clinic.Clinic, error) {
	c := &clinic.Clinic{}
	if err := h.load(ctx, clinicStream(id), c); err != nil {
		return nil, err
	}
	if domain.IsNew(c) {
		return nil, domain.NotFound("clinic")
	}
	return c, nil
}
