package commands

import (
	"context"
	"strings"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/clinic"
	"github.com/portico-health/portico/domain/emailclaim"
	"github.com/portico-health/portico/domain/staff"
	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/internal/password"
)

// Bootstrap creates a clinic and its first administrator.
type Bootstrap struct {
	ClinicName    string
	AdminEmail    string
	AdminName     string
	AdminPassword string
}

// BootstrapResult says what Bootstrap found or made.
type BootstrapResult struct {
	ClinicID uuid.UUID
	AdminID  uuid.UUID
	// Created is false when everything already existed.
	Created bool
}

var bootstrapNamespace = uuid.MustParse("9d3a6f0c-52b1-5c47-8e2d-1f7b4a6c3e90")

// Bootstrap derives the clinic's and the administrator's ids from the clinic
// name and the email, and every event id from those, so running it again
// with the same arguments changes nothing, and a run cut short completes.
func (h *Handlers) Bootstrap(ctx context.Context, cmd Bootstrap) (BootstrapResult, error) {
	name := strings.TrimSpace(cmd.ClinicName)
	email, ok := emailclaim.Normalise(cmd.AdminEmail)
	if !ok {
		return BootstrapResult{}, domain.Invalid(map[string]string{"admin_email": "a valid email address is required"})
	}
	if p := password.Problem(cmd.AdminPassword); p != "" {
		return BootstrapResult{}, domain.Invalid(map[string]string{"admin_password": p})
	}
	clinicID := uuid.NewSHA1(bootstrapNamespace, []byte("clinic:"+strings.ToLower(name)))
	adminID := uuid.NewSHA1(bootstrapNamespace, []byte("admin:"+clinicID.String()+":"+email))
	meta := Meta{Actor: System("portalctl"), CommandID: "bootstrap:" + adminID.String()}
	res := BootstrapResult{ClinicID: clinicID, AdminID: adminID}

	c := &clinic.Clinic{}
	stream := eventstore.StreamName(clinic.Category, clinicID.String())
	if err := h.load(ctx, stream, c); err != nil {
		return res, err
	}
	if !domain.IsNew(c) && c.FirstAdminID != adminID {
		return res, domain.Conflict("already_bootstrapped", "clinic %q exists with another first administrator; add staff with `portalctl staff add`", c.Name)
	}
	if domain.IsNew(c) {
		if err := c.Register(clinicID, name, adminID); err != nil {
			return res, err
		}
		res.Created = true
		if err := h.save(ctx, meta, clinicID, stream, c); err != nil {
			return res, err
		}
	}

	acct := &staff.Account{}
	if err := h.load(ctx, eventstore.StreamName(staff.Category, adminID.String()), acct); err != nil {
		return res, err
	}
	if acct.HasPassword {
		return res, nil
	}
	res.Created = true
	adminName := cmd.AdminName
	if adminName == "" {
		adminName = "Administrator"
	}
	_, err := h.AddStaffMember(ctx, meta, AddStaffMember{
		StaffID: adminID, ClinicID: clinicID, Email: email, Name: adminName,
		Role: staff.RoleAdmin, Password: cmd.AdminPassword,
	})
	return res, err
}
