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
	"github.com/portico-health/portico/domain/billing"
	"github.com/portico-health/portico/domain/clinic"
	"github.com/portico-health/portico/domain/document"
	"github.com/portico-health/portico/domain/intakeform"
	"github.com/portico-health/portico/domain/staff"
	"github.com/portico-health/portico/internal/blobstore"
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
// both children, upcoming appointments, completed documents of several
// types (PDFs kept in blobs), Home Activities, an intake form in the
// clinic's library assigned with a message, and the clinic's contact.
func Load(ctx context.Context, h *commands.Handlers, blobs blobstore.Store) (Summary, error) {
	if blobs == nil {
		return Summary{}, fmt.Errorf("demo: no blob store for the demo's files")
	}
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

	// Completed documents, one file each.
	for _, d := range []struct {
		step    string
		patient uuid.UUID
		typ     string
		file    demoFile
	}{
		{"document-mia-progress", mia, "progress_note", demoFile{
			Name: "mia-progress-note.pdf", Title: "Occupational therapy progress note", About: "Patient: Mia Rivera",
			Body: []string{
				"Mia attended four sessions this month. She now holds a pencil with a tripod grasp for short tasks and copies a circle and a cross without help.",
				"Next: cutting along a curved line, buttons on her own coat.",
			}}},
		{"document-mia-plan", mia, "treatment_plan", demoFile{
			Name: "mia-treatment-plan.pdf", Title: "Occupational therapy treatment plan", About: "Patient: Mia Rivera",
			Body: []string{
				"Goals for the next twelve weeks: fine motor strength and control for writing; dressing on her own; tolerating new textures at meals.",
				"Weekly 45-minute sessions with Dr. Lane, OT, and Home Activities between them.",
			}}},
		{"document-leo-evaluation", leo, "evaluation", demoFile{
			Name: "leo-speech-screening.pdf", Title: "Speech and language screening", About: "Patient: Leo Rivera",
			Body: []string{
				"Leo was screened by Pat Kim, SLP. He follows two-step directions and uses two- and three-word phrases; some sounds (k, g) are not yet in place.",
				"Recommendation: a full speech-language evaluation, scheduled with the clinic.",
			}}},
	} {
		b, err := d.file.store(ctx, blobs)
		if err != nil {
			return s, err
		}
		if _, err := h.CompleteDocument(ctx, meta(d.step), commands.CompleteDocument{
			PatientID: d.patient, Type: d.typ, Title: d.file.Title,
			File: document.File{SHA256: b.SHA256, Size: b.Size, MediaType: b.MediaType, Name: b.Name},
		}); err != nil {
			return s, fmt.Errorf("demo document: %w", err)
		}
	}

	// Home Activities, one for each child.
	for _, a := range []struct {
		step    string
		patient uuid.UUID
		cmd     commands.AssignHomeActivity
	}{
		{"activity-mia", mia, commands.AssignHomeActivity{
			Title:        "Putty squeeze and pinch",
			Instructions: "Hide five beads in the therapy putty. Mia finds them using only her thumb and first two fingers, then rolls the putty into a snake.\nStop when her hand tires.",
			Frequency:    "once a day",
		}},
		{"activity-leo", leo, commands.AssignHomeActivity{
			Title:        "Picture book naming",
			Instructions: "Look at a picture book together. Point to a picture, name it slowly, and wait for Leo to try the word. Praise every try.",
			Frequency:    "3 times a week",
		}},
	} {
		a.cmd.PatientID = a.patient
		if _, err := h.AssignHomeActivity(ctx, meta(a.step), a.cmd); err != nil {
			return s, fmt.Errorf("demo home activity: %w", err)
		}
	}

	// A blank intake form in the clinic's library, assigned to Leo before
	// his evaluation.
	formFile := demoFile{
		Name: "developmental-history.pdf", Title: "Developmental history questionnaire",
		Body: []string{
			"Child's name: ______________________   Date of birth: ____________",
			"1. When did your child first sit, walk and say single words?",
			"2. What worries you most about your child's speech, play or daily routines?",
			"3. Any hearing tests, ear infections or hospital stays? Please describe.",
			"Please return this form through the patient portal before the first visit.",
		},
	}
	fb, err := formFile.store(ctx, blobs)
	if err != nil {
		return s, err
	}
	form, err := h.UploadIntakeForm(ctx, meta("intake-form"), commands.UploadIntakeForm{
		Name: formFile.Title,
		File: intakeform.File{SHA256: fb.SHA256, Size: fb.Size, MediaType: fb.MediaType, Name: fb.Name},
	})
	if err != nil {
		return s, fmt.Errorf("demo intake form: %w", err)
	}
	if _, err := h.AssignIntakeForm(ctx, meta("intake-leo"), commands.AssignIntakeForm{
		PatientID: leo, FormID: form,
		Message: "Please fill this in before Leo's evaluation and return it here. It helps Pat Kim plan the visit.",
	}); err != nil {
		return s, fmt.Errorf("demo intake form: %w", err)
	}

	// How portal users reach the clinic, unless an administrator set it
	// already: loading again must not undo their change.
	c, err := h.ClinicState(ctx, res.ClinicID)
	if err != nil {
		return s, err
	}
	if err := loadBilling(ctx, h, c, meta, mia, leo); err != nil {
		return s, err
	}
	if c.Contact == (clinic.Contact{}) {
		if _, err := h.SetClinicContact(ctx, meta("clinic-contact"), commands.SetClinicContact{Contact: DemoContact}); err != nil {
			return s, fmt.Errorf("demo clinic contact: %w", err)
		}
	}
	return s, nil
}

// loadBilling enrols the demo clinic in payment processing (on the first
// load only: an administrator's later change stays), issues an invoice to
// each child, and records a desk payment against Mia's.
func loadBilling(ctx context.Context, h *commands.Handlers, c *clinic.Clinic, meta func(string) commands.Meta, mia, leo uuid.UUID) error {
	if c.Version() == 0 || !c.CurrentOptions().PaymentProcessingEnabled {
		acct, err := h.BillingAccount(ctx, mia)
		if err != nil {
			return err
		}
		if len(acct.Invoices) > 0 {
			return nil // enrolled once, then turned off by an administrator
		}
		enabled := true
		if _, err := h.SetClinicOptions(ctx, meta("clinic-payments"), commands.SetClinicOptions{PaymentProcessingEnabled: &enabled}); err != nil {
			return fmt.Errorf("demo payments: %w", err)
		}
	}
	due := time.Now().UTC().AddDate(0, 0, 30).Format(time.DateOnly)
	miaInvoice, err := h.IssueInvoice(ctx, meta("invoice-mia"), commands.IssueInvoice{PatientID: mia, Currency: clinic.DefaultCurrency, DueDate: due,
		Lines: []billing.Line{{Description: "Occupational therapy session (45 min)", AmountCents: 12000}, {Description: "Therapy putty and beads", AmountCents: 1850}}})
	if err != nil {
		return fmt.Errorf("demo invoice: %w", err)
	}
	if _, err := h.IssueInvoice(ctx, meta("invoice-leo"), commands.IssueInvoice{PatientID: leo, Currency: clinic.DefaultCurrency, DueDate: due,
		Lines: []billing.Line{{Description: "Speech and language screening", AmountCents: 9500}}}); err != nil {
		return fmt.Errorf("demo invoice: %w", err)
	}
	if _, err := h.RecordPayment(ctx, meta("payment-mia"), commands.RecordPayment{PatientID: mia, AmountCents: 5000,
		Currency: clinic.DefaultCurrency, Method: "cash", InvoiceID: &miaInvoice}); err != nil {
		return fmt.Errorf("demo payment: %w", err)
	}
	return nil
}

// DemoContact is how the demo clinic's portal users reach it.
var DemoContact = clinic.Contact{
	Phone: "(555) 010-0142",
	Email: "frontdesk@harbor.example",
	Text:  "Front desk open Monday to Friday, 8am to 5pm.\nParking behind the building.",
}

// Describe is what a newcomer reads after loading the demo.
func (s Summary) Describe(publicURL string) string {
	return fmt.Sprintf(`Portico demo clinic %q is ready.
  Administrator:  %s / %s
  Front desk:     %s / %s
  Parent (portal): %s / %s   (linked to Mia and Leo Rivera)
  Sign in:        POST %s/api/v1/auth/login {"email":…,"password":…}
  The parent sees, under each child: upcoming appointments; completed
  documents (Mia: a progress note and a treatment plan; Leo: a speech and
  language screening), each a PDF to view or print; a Home Activity with a
  printable sheet; and, for Leo, an intake form to download, fill in and
  return, with a message from the clinic. The clinic takes payments: Mia
  has an invoice of 138.50 USD with 50.00 paid in cash at the desk (a
  receipt to print), Leo one of 95.00 USD to pay by card.
  Portal handout: GET %s/api/v1/clinic/portal-handout (as staff; it prints
  the clinic's contact)
`, ClinicName, s.AdminEmail, s.AdminPassword, s.StaffEmail, s.StaffPassword, s.ParentEmail, s.ParentPassword, publicURL, publicURL)
}
