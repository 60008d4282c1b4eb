// Package demo loads a demo clinic through the same commands staff and
// operators use, so what a newcomer sees is what the product does. Every
// command carries a fixed command id, so loading it again changes nothing.
package demo

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/portico-health/portico/commands"
	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/staff"
	"github.com/portico-health/portico/internal/linktoken"
)

// Sign-in details printed for newcomers. They are demo data, not secrets.
const (
	ClinicName     = "Harbor Pediatric Therapy"
	AdminEmail     = "admin@harbor.example"
	AdminPassword  = "harbor-demo-admin"
	StaffEmail     = "frontdesk@harbor.example"
	StaffPassword  = "harbor-demo-staff"
	ParentEmail    = "sam.rivera@family.example"
	ParentPassword = "harbor-demo-parent"
)

// Summary tells a newcomer how to sign in.
type Summary struct {
	ClinicID       string
	AdminEmail     string
	AdminPassword  string
	StaffEmail     string
	StaffPassword  string
	ParentEmail    string
	ParentPassword string
	Created        bool
}

// Load creates the demo clinic: an administrator, a front-desk member, two
// children and an adult patient, a parent with a portal account linked to
// both children, and upcoming appointments.
func Load(ctx context.Context, h *commands.Handlers) (Summary, error) {
	res, err := h.Bootstrap(ctx, commands.Bootstrap{
		ClinicName:    ClinicName,
		AdminEmail:    AdminEmail,
		AdminName:     "Avery Admin",
		AdminPassword: AdminPassword,
	})
	if err != nil {
		return Summary{}, err
	}
	s := Summary{ClinicID: res.ClinicID.String(), AdminEmail: AdminEmail, AdminPassword: AdminPassword,
		StaffEmail: StaffEmail, StaffPassword: StaffPassword, ParentEmail: ParentEmail, ParentPassword: ParentPassword, Created: res.Created}
	admin := commands.Actor{ID: res.AdminID.String(), Kind: "staff", Role: string(staff.RoleAdmin), ClinicID: res.ClinicID}
	meta := func(step string) commands.Meta {
		return commands.Meta{Actor: admin, CommandID: "demo:" + step}
	}
	if _, err := h.AddStaffMember(ctx, meta("staff"), commands.AddStaffMember{
		StaffID: uuid.NewSHA1(res.ClinicID, []byte("demo-staff")), ClinicID: res.ClinicID,
		Email: StaffEmail, Name: "Flynn Frontdesk", Role: staff.RoleStaff, Password: StaffPassword,
	}); err != nil {
		return s, fmt.Errorf("demo staff: %w", err)
	}

	mia, err := h.RegisterPatient(ctx, meta("patient-mia"), commands.RegisterPatient{FirstName: "Mia", LastName: "Rivera", DateOfBirth: "2018-05-01"})
	if err != nil {
		return s, fmt.Errorf("demo patient: %w", err)
	}
	leo, err := h.RegisterPatient(ctx, meta("patient-leo"), commands.RegisterPatient{FirstName: "Leo", LastName: "Rivera", DateOfBirth: "2020-09-14"})
	if err != nil {
		return s, fmt.Errorf("demo patient: %w", err)
	}
	if _, err := h.RegisterPatient(ctx, meta("patient-jordan"), commands.RegisterPatient{FirstName: "Jordan", LastName: "Okafor", DateOfBirth: "1987-02-20", Email: "jordan.okafor@example.org"}); err != nil {
		return s, fmt.Errorf("demo patient: %w", err)
	}
	parentOf := map[uuid.UUID]uuid.UUID{}
	for _, child := range []uuid.UUID{mia, leo} {
		c, err := h.AddPatientContact(ctx, meta("contact-"+child.String()), commands.AddPatientContact{PatientID: child, Name: "Sam Rivera", Relationship: "parent", Email: ParentEmail})
		if err != nil {
			return s, fmt.Errorf("demo contact: %w", err)
		}
		parentOf[child] = c
	}

	// The parent accepts the first invitation with the demo password, as
	// the link in the email would let them.
	for i, child := range []uuid.UUID{mia, leo} {
		cid := parentOf[child]
		inv, err := h.InvitePortalUser(ctx, meta("invite-"+child.String()), commands.InvitePortalUser{PatientID: child, ContactID: &cid})
		if err != nil {
			return s, fmt.Errorf("demo invitation: %w", err)
		}
		if i > 0 {
			continue
		}
		invitation, err := h.Invitation(ctx, inv.InvitationID)
		if err != nil {
			return s, err
		}
		if invitation.Accepted || h.LinkKeys() == nil {
			continue
		}
		token := h.LinkKeys().Make(linktoken.PurposeInvitation, inv.InvitationID, uuid.Nil, invitation.ExpiresAt)
		if _, err := h.AcceptInvitation(ctx, commands.Meta{CommandID: "demo:accept"}, commands.AcceptInvitation{Token: token, Password: ParentPassword}); err != nil {
			if de, ok := domain.AsError(err); !ok || (de.Code != "token_used" && de.Code != "invitation_expired") {
				return s, fmt.Errorf("demo acceptance: %w", err)
			}
		}
	}

	// Appointments from the first load's day on; a later load keeps them.
	day := time.Now().UTC().Truncate(24 * time.Hour)
	for i, a := range []struct {
		patient    uuid.UUID
		inDays     int
		hour       int
		provider   string
		kind       string
		durationMn int
	}{
		{mia, 2, 15, "Dr. Lane, OT", "therapy", 45},
		{mia, 9, 15, "Dr. Lane, OT", "therapy", 45},
		{leo, 3, 10, "Pat Kim, SLP", "evaluation", 90},
	} {
		start := day.Add(time.Duration(a.inDays)*24*time.Hour + time.Duration(a.hour)*time.Hour)
		if _, err := h.ScheduleAppointment(ctx, meta(fmt.Sprintf("appointment-%d", i)), commands.ScheduleAppointment{
			PatientID: a.patient, StartsAt: start, EndsAt: start.Add(time.Duration(a.durationMn) * time.Minute),
			Provider: a.provider, Location: "Harbor clinic, room " + fmt.Sprint(i+1), Kind: a.kind,
		}); err != nil {
			return s, fmt.Errorf("demo appointment: %w", err)
		}
	}
	return s, nil
}

// Describe is what a newcomer reads after loading the demo.
func (s Summary) Describe(publicURL string) string {
	return fmt.Sprintf(`Portico demo clinic %q is ready.
  Administrator:  %s / %s
  Front desk:     %s / %s
  Parent (portal): %s / %s   (linked to Mia and Leo Rivera)
  Sign in:        POST %s/api/v1/auth/login {"email":…,"password":…}
`, ClinicName, s.AdminEmail, s.AdminPassword, s.StaffEmail, s.StaffPassword, s.ParentEmail, s.ParentPassword, publicURL)
}
