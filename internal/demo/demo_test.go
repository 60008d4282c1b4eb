package demo_test

import (
	"context"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/portico-health/portico/commands"
	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/activity"
	"github.com/portico-health/portico/domain/clinic"
	"github.com/portico-health/portico/domain/document"
	"github.com/portico-health/portico/domain/intakeform"
	"github.com/portico-health/portico/domain/patient"
	"github.com/portico-health/portico/domain/staff"
	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/internal/blobstore"
	"github.com/portico-health/portico/internal/demo"
	"github.com/portico-health/portico/internal/pdfdoc/pdftext"
	"github.com/portico-health/portico/internal/testapp"
)

func TestDemoLoadsOnceAndEveryoneCanSignIn(t *testing.T) {
	a := testapp.New(t)
	ctx := context.Background()
	s, err := demo.Load(ctx, a.Commands, a.Blobs)
	if err != nil {
		t.Fatal(err)
	}
	count := func() int {
		evs, err := a.Store.ReadAll(ctx, eventstore.Start, 100000, eventstore.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		return len(evs)
	}
	blobCount := func() int {
		var n int
		if err := a.Pool.QueryRow(ctx, `SELECT count(*) FROM blobs`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	first, firstBlobs := count(), blobCount()
	if _, err := demo.Load(ctx, a.Commands, a.Blobs); err != nil {
		t.Fatal(err)
	}
	if again := count(); again != first {
		t.Errorf("loading the demo again wrote %d events", again-first)
	}
	if again := blobCount(); again != firstBlobs {
		t.Errorf("loading the demo again stored %d more files", again-firstBlobs)
	}
	for _, who := range []struct{ email, password, kind string }{
		{s.AdminEmail, s.AdminPassword, "staff"}, {s.StaffEmail, s.StaffPassword, "staff"}, {s.ParentEmail, s.ParentPassword, "portal"},
	} {
		acct, err := a.Commands.SignIn(ctx, commands.SignIn{Email: who.email, Password: who.password})
		if err != nil || acct.Kind != who.kind {
			t.Errorf("sign in as %s = %+v, %v", who.email, acct, err)
		}
	}
	parent, err := a.Commands.SignIn(ctx, commands.SignIn{Email: s.ParentEmail, Password: s.ParentPassword})
	if err != nil {
		t.Fatal(err)
	}
	u, err := a.Commands.PortalUser(ctx, parent.ID)
	if err != nil || len(u.Active()) != 2 {
		t.Errorf("the demo parent is linked to %d patients, want 2 (%v)", len(u.Active()), err)
	}
}

// TestDemoHasPatientServices checks the demo has what a portal user comes
// for: documents of several types with real PDF files, Home Activities, an
// intake form assigned with a message, and the clinic's contact.
func TestDemoHasPatientServices(t *testing.T) {
	a := testapp.New(t)
	ctx := context.Background()
	s, err := demo.Load(ctx, a.Commands, a.Blobs)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := a.Store.ReadAll(ctx, eventstore.Start, 100000, eventstore.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	names := map[uuid.UUID]string{} // patient id: first name
	types := map[string]int{}
	var docs []document.Completed
	var acts []activity.Assigned
	var forms []intakeform.FormUploaded
	var assigned []intakeform.Assigned
	for _, env := range evs {
		types[env.Type]++
		e, err := domain.Decode(env.Type, env.Data)
		if err != nil {
			t.Fatal(err)
		}
		switch e := e.(type) {
		case patient.Registered:
			names[e.PatientID] = e.FirstName
		case document.Completed:
			docs = append(docs, e)
		case activity.Assigned:
			acts = append(acts, e)
		case intakeform.FormUploaded:
			forms = append(forms, e)
		case intakeform.Assigned:
			assigned = append(assigned, e)
		}
	}

	docTypes := map[string][]string{} // first name: document types
	for _, d := range docs {
		docTypes[names[d.PatientID]] = append(docTypes[names[d.PatientID]], d.Type)
		text := readPDF(t, a.Blobs, d.File.SHA256, d.File.MediaType)
		if !strings.Contains(text, d.Title) {
			t.Errorf("the file of document %q reads %q", d.Title, text)
		}
	}
	var all []string
	for _, ts := range docTypes {
		all = append(all, ts...)
	}
	slices.Sort(all)
	if len(docTypes["Mia"]) == 0 || len(docTypes["Leo"]) == 0 || len(slices.Compact(all)) < 2 {
		t.Errorf("documents by patient = %v, want documents of several types for Mia and Leo", docTypes)
	}

	if len(acts) != 2 {
		t.Errorf("%d home activities, want 2", len(acts))
	}
	for _, act := range acts {
		if names[act.PatientID] != "Mia" && names[act.PatientID] != "Leo" {
			t.Errorf("home activity %q is for %q, want Mia or Leo", act.Title, names[act.PatientID])
		}
	}

	if len(forms) != 1 {
		t.Fatalf("%d intake forms in the library, want 1", len(forms))
	}
	if text := readPDF(t, a.Blobs, forms[0].File.SHA256, forms[0].File.MediaType); !strings.Contains(text, forms[0].Name) {
		t.Errorf("the blank form %q reads %q", forms[0].Name, text)
	}
	if len(assigned) != 1 || names[assigned[0].PatientID] != "Leo" || assigned[0].FormID != forms[0].FormID || assigned[0].Message == "" {
		t.Errorf("intake form assignments = %+v, want the form assigned to Leo with a message", assigned)
	}

	clinicID := uuid.MustParse(s.ClinicID)
	c, err := a.Commands.ClinicState(ctx, clinicID)
	if err != nil {
		t.Fatal(err)
	}
	if c.Contact.Phone == "" || c.Contact.Email == "" || c.Contact.Text == "" || types["ClinicContactSet"] != 1 {
		t.Errorf("clinic contact = %+v after %d ClinicContactSet, want phone, email and text set once", c.Contact, types["ClinicContactSet"])
	}

	// An administrator's own contact survives loading the demo again.
	admin, err := a.Commands.SignIn(ctx, commands.SignIn{Email: s.AdminEmail, Password: s.AdminPassword})
	if err != nil {
		t.Fatal(err)
	}
	mine := clinic.Contact{Phone: "555 0199"}
	if _, err := a.Commands.SetClinicContact(ctx, commands.Meta{
		Actor: commands.Actor{ID: admin.ID.String(), Kind: "staff", Role: string(staff.RoleAdmin), ClinicID: clinicID},
	}, commands.SetClinicContact{Contact: mine}); err != nil {
		t.Fatal(err)
	}
	if _, err := demo.Load(ctx, a.Commands, a.Blobs); err != nil {
		t.Fatal(err)
	}
	if c, err := a.Commands.ClinicState(ctx, clinicID); err != nil || c.Contact != mine {
		t.Errorf("after loading again the contact is %+v (%v), want the administrator's %+v", c.Contact, err, mine)
	}

	desc := s.Describe("http://portal.example")
	for _, want := range []string{s.StaffEmail, s.ParentEmail, "documents", "Home Activity", "intake form"} {
		if !strings.Contains(desc, want) {
			t.Errorf("Describe() does not mention %q:\n%s", want, desc)
		}
	}
}

// readPDF opens a stored file, checks it is a PDF and answers its text.
func readPDF(t *testing.T, blobs blobstore.Store, sha, mediaType string) string {
	t.Helper()
	if mediaType != blobstore.PDF {
		t.Errorf("file %s has media type %q, want %s", sha, mediaType, blobstore.PDF)
	}
	r, b, err := blobs.Open(context.Background(), sha)
	if err != nil {
		t.Fatalf("open %s: %v", sha, err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if b.MediaType != blobstore.PDF {
		t.Errorf("stored file %s has media type %q", sha, b.MediaType)
	}
	text, _, err := pdftext.Extract(data)
	if err != nil {
		t.Fatalf("file %s: %v", sha, err)
	}
	return pdftext.Collapse(text)
}
