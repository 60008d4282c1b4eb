package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/clinic"
	"github.com/portico-health/portico/domain/emailclaim"
	"github.com/portico-health/portico/domain/staff"
	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/internal/password"
)

// AddStaffMember creates a staff account of a clinic with a password.
type AddStaffMember struct {
	// StaffID may be fixed by the caller (bootstrap derives it, so a re-run
	// finds the same account); uuid.Nil draws a new one.
	StaffID  uuid.UUID
	ClinicID uuid.UUID
	Email    string
	Name     string
	Role     staff.Role
	Password string
}

// AddStaffMember claims the email, creates the account, then stores the
// password hash and records that it was set. Every step is idempotent, so a
// run cut short can simply be repeated.
func (h *Handlers) AddStaffMember(ctx context.Context, meta Meta, cmd AddStaffMember) (uuid.UUID, error) {
	meta = meta.withDefaults()
	email, ok := emailclaim.Normalise(cmd.Email)
	bad := map[string]string{}
	if !ok {
		bad["email"] = "a valid email address is required"
	}
	if p := password.Problem(cmd.Password); p != "" {
		bad["password"] = p
	}
	if _, ok := staff.ParseRole(string(cmd.Role)); !ok {
		bad["role"] = "one of admin, staff, billing, auditor"
	}
	if len(bad) > 0 {
		return uuid.Nil, domain.Invalid(bad)
	}
	c := &clinic.Clinic{}
	if err := h.load(ctx, eventstore.StreamName(clinic.Category, cmd.ClinicID.String()), c); err != nil {
		return uuid.Nil, err
	}
	if domain.IsNew(c) {
		return uuid.Nil, domain.NotFound("clinic")
	}
	id := cmd.StaffID
	if id == uuid.Nil {
		id = uuid.New()
	}

	claim := &emailclaim.Claim{}
	claimStream := eventstore.StreamName(emailclaim.Category, emailclaim.StreamID(email))
	if err := h.load(ctx, claimStream, claim); err != nil {
		return uuid.Nil, err
	}
	if err := claim.Take(id, "staff"); err != nil {
		return uuid.Nil, err
	}
	if err := h.save(ctx, meta, cmd.ClinicID, claimStream, claim); err != nil {
		return uuid.Nil, err
	}

	acct := &staff.Account{}
	stream := eventstore.StreamName(staff.Category, id.String())
	if err := h.load(ctx, stream, acct); err != nil {
		return uuid.Nil, err
	}
	if domain.IsNew(acct) {
		if err := acct.Create(id, cmd.ClinicID, email, cmd.Name, cmd.Role); err != nil {
			return uuid.Nil, err
		}
	}
	if !acct.HasPassword {
		hash, err := password.Hash(cmd.Password)
		if err != nil {
			return uuid.Nil, err
		}
		if err := h.creds.setIfAbsent(ctx, id, hash); err != nil {
			return uuid.Nil, err
		}
		if err := acct.SetPassword(); err != nil {
			return uuid.Nil, err
		}
	}
	return id, h.save(ctx, meta, cmd.ClinicID, stream, acct)
}
