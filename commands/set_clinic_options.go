package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/clinic"
	"github.com/portico-health/portico/eventstore"
)

// SetClinicOptions changes the actor's clinic's Clinic Options. A nil field
// keeps its current value.
type SetClinicOptions struct {
	HiddenDocumentTypes      *[]string
	ShowBalanceAndInvoices   *bool
	PaymentProcessingEnabled *bool
	AllowPrepayment          *bool
	Currency                 *string
}

// SetClinicOptions records ClinicOptionsChanged unless nothing changes, and
// answers the options as they are then. Only an administrator of the clinic
// may. The clinic's stream is shared with its other settings, so a
// concurrent change there is decided again, not refused.
func (h *Handlers) SetClinicOptions(ctx context.Context, meta Meta, cmd SetClinicOptions) (clinic.Options, error) {
	meta = meta.withDefaults()
	if err := requireRole(meta, []string{"admin"}); err != nil || meta.Actor.ClinicID == uuid.Nil {
		return clinic.Options{}, domain.Forbidden("only an administrator of the clinic changes its Clinic Options")
	}
	stream := eventstore.StreamName(clinic.Category, meta.Actor.ClinicID.String())
	agg, err := h.update(ctx, meta, meta.Actor.ClinicID, stream,
		func() domain.Aggregate { return &clinic.Clinic{} },
		func(a domain.Aggregate) error {
			c := a.(*clinic.Clinic)
			o := c.CurrentOptions()
			if cmd.HiddenDocumentTypes != nil {
				o.HiddenDocumentTypes = *cmd.HiddenDocumentTypes
			}
			if cmd.ShowBalanceAndInvoices != nil {
				o.ShowBalanceAndInvoices = *cmd.ShowBalanceAndInvoices
			}
			if cmd.PaymentProcessingEnabled != nil {
				o.PaymentProcessingEnabled = *cmd.PaymentProcessingEnabled
			}
			if cmd.AllowPrepayment != nil {
				o.AllowPrepayment = *cmd.AllowPrepayment
			}
			if cmd.Currency != nil {
				o.Currency = *cmd.Currency
			}
			return c.SetOptions(o)
		})
	if err != nil {
		return clinic.Options{}, err
	}
	return agg.(*clinic.Clinic).CurrentOptions(), nil
}

// ClinicOptions are a clinic's Clinic Options as its stream says now, or
// not_found. Callers check that the reader may see them.
func (h *Handlers) ClinicOptions(ctx context.Context, clinicID uuid.UUID) (clinic.Options, error) {
	c := &clinic.Clinic{}
	if err := h.load(ctx, eventstore.StreamName(clinic.Category, clinicID.String()), c); err != nil {
		return clinic.Options{}, err
	}
	if domain.IsNew(c) {
		return clinic.Options{}, domain.NotFound("clinic")
	}
	return c.CurrentOptions(), nil
}
