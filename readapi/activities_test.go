package readapi_test

// Home Activities over HTTP: staff assign and unassign; a portal user with
// the "activities" permission lists each patient's and prints them as PDFs.
// And the portal handout, customised with the clinic's contact.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/portico-health/portico/commands"
	"github.com/portico-health/portico/domain/audit"
	"github.com/portico-health/portico/domain/staff"
	"github.com/portico-health/portico/internal/config"
	"github.com/portico-health/portico/internal/pdfdoc/pdftext"
	"github.com/portico-health/portico/readapi"
)

// fetchBytes sends a request and answers the status, the headers and the body
// as bytes (a PDF).
func (c client) fetchBytes(method, path string, body any) (int, http.Header, []byte) {
	c.t.Helper()
	var buf bytes.Buffer
	if body != nil {
		_ = json.NewEncoder(&buf).Encode(body)
	}
	req := httptest.NewRequest(method, path, &buf)
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	rec := httptest.NewRecorder()
	c.h.ServeHTTP(rec, req)
	return rec.Code, rec.Header(), rec.Body.Bytes()
}

// pdfTextOf checks an answer is a PDF that parses, and returns its text.
func pdfTextOf(t *testing.T, code int, h http.Header, body []byte) string {
	t.Helper()
	if code != http.StatusOK || h.Get("Content-Type") != "application/pdf" {
		t.Fatalf("answer = %d %s %.200s, want 200 application/pdf", code, h.Get("Content-Type"), body)
	}
	text, _, err := pdftext.Extract(body)
	if err != nil {
		t.Fatalf("the PDF does not parse: %v", err)
	}
	return text
}

// pdfTextAt GETs a PDF and returns its text.
func (c client) pdfTextAt(path string) string {
	c.t.Helper()
	st, h, body := c.fetchBytes("GET", path, nil)
	return pdfTextOf(c.t, st, h, body)
}

func pdfSays(t *testing.T, text string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(text, pdftext.Collapse(w)) {
			t.Errorf("the PDF does not say %q; it says %q", w, text)
		}
	}
}

func (p *portal) assignActivity(pid, title, instructions, frequency string) string {
	p.t.Helper()
	body := map[string]string{"title": title, "instructions": instructions}
	if frequency != "" {
		body["frequency"] = frequency
	}
	code, res := p.staff.do("POST", "/api/v1/patients/"+pid+"/home-activities", body)
	if code != http.StatusCreated {
		p.t.Fatalf("assign = %d %v", code, res)
	}
	return res["id"].(string)
}

func activityList(body map[string]any) []map[string]any {
	var out []map[string]any
	list, _ := body["home_activities"].([]any)
	for _, x := range list {
		out = append(out, x.(map[string]any))
	}
	return out
}

func activityIDs(body map[string]any) []string {
	var ids []string
	for _, a := range activityList(body) {
		ids = append(ids, a["id"].(string))
	}
	return ids
}

func TestHomeActivitiesAssignListPrintUnassign(t *testing.T) {
	p := newPortal(t)
	parent, first, second := p.parentOfTwo("pat@family.example")
	steps := "Stand near a wall, holding on lightly.\nLift one foot and hold it for thirty seconds, then switch feet. " +
		"Do three rounds on each side and stop if anything hurts; tell your therapist at the next visit how it went."
	balance := p.assignActivity(first, "Balance on one foot", steps, "Twice a day")
	breathing := p.assignActivity(first, "Breathing – belly breaths", "Lie down.\r\n\r\n\r\nBreathe in for four, out for six.", "")
	theirs := p.assignActivity(second, "Reading aloud", "Read one page aloud to a parent.", "Every evening")

	var listed map[string]any
	eventually(t, "the first child's activities, newest first", func() bool {
		c, body := parent.do("GET", "/api/v1/portal/patients/"+first+"/home-activities", nil)
		ids := activityIDs(body)
		listed = body
		return c == http.StatusOK && len(ids) == 2 && ids[0] == breathing && ids[1] == balance
	})
	got := activityList(listed)
	if got[1]["title"] != "Balance on one foot" || got[1]["instructions"] != steps || got[1]["frequency"] != "Twice a day" {
		t.Errorf("listed activity = %v", got[1])
	}
	if got[0]["frequency"] != nil || got[0]["instructions"] != "Lie down.\n\nBreathe in for four, out for six." {
		t.Errorf("an activity without frequency, with blank lines = %v", got[0])
	}
	eventually(t, "the second child's activities only", func() bool {
		c, body := parent.do("GET", "/api/v1/portal/patients/"+second+"/home-activities", nil)
		ids := activityIDs(body)
		return c == http.StatusOK && len(ids) == 1 && ids[0] == theirs
	})

	// The printable sheet says what was assigned, to whom, by which clinic.
	st, h, pdf := parent.fetchBytes("GET", "/api/v1/portal/patients/"+first+"/home-activities/"+balance+"/print", nil)
	text := pdfTextOf(t, st, h, pdf)
	pdfSays(t, text, "Harbor Therapy", "Noah", "Balance on one foot", steps, "Twice a day", "Home Activity")
	if strings.Contains(text, "Emma") || strings.Contains(text, "Rivera") {
		t.Errorf("the sheet names someone else, or the last name: %q", text)
	}
	if cd := h.Get("Content-Disposition"); !strings.Contains(cd, balance) || h.Get("Cache-Control") != "no-store" {
		t.Errorf("headers = %v", h)
	}
	// The print is recorded as a print, on behalf of the child, with the hash of the PDF.
	sum := sha256.Sum256(pdf)
	var printed *audit.Access
	for _, r := range accessRecords(t, p.a) {
		if r.Route == "GET /api/v1/portal/patients/:pid/home-activities/:hid/print" && r.BodySHA256 == hex.EncodeToString(sum[:]) {
			printed = &r
		}
	}
	if printed == nil {
		t.Fatal("no access record of the print")
	}
	if printed.Subtype != audit.SubtypePrint || printed.Outcome != audit.OutcomeSuccess || printed.Agent.OnBehalfOf.String() != first ||
		len(printed.Entities) != 2 || printed.Entities[1].ID.String() != balance {
		t.Errorf("access record of the print = %+v", printed)
	}

	// Another child's activity under this child's path, or an unknown one, is not found.
	for _, path := range []string{
		"/api/v1/portal/patients/" + second + "/home-activities/" + balance + "/print",
		"/api/v1/portal/patients/" + first + "/home-activities/" + theirs + "/print",
		"/api/v1/portal/patients/" + first + "/home-activities/" + uuid.NewString() + "/print",
		"/api/v1/portal/patients/" + first + "/home-activities/not-a-uuid/print",
	} {
		if c, _, body := parent.fetchBytes("GET", path, nil); c != http.StatusNotFound && c != http.StatusBadRequest {
			t.Errorf("GET %s = %d %.200s, want 404", path, c, body)
		}
	}
	// A portal user unlinked from the children sees nothing of them.
	stranger, _ := p.parentOfTwoStrangers()
	for _, path := range []string{"/api/v1/portal/patients/" + first + "/home-activities", "/api/v1/portal/patients/" + first + "/home-activities/" + balance + "/print"} {
		if c, _, _ := stranger.fetchBytes("GET", path, nil); c != http.StatusNotFound {
			t.Errorf("GET %s by an unlinked portal user = %d, want 404", path, c)
		}
	}

	// Unassigning takes it off the list and out of print; again changes nothing.
	if c, body := p.staff.do("POST", "/api/v1/home-activities/"+balance+"/unassign", nil); c != http.StatusNoContent {
		t.Fatalf("unassign = %d %v", c, body)
	}
	eventually(t, "the unassigned activity leaves the list", func() bool {
		_, body := parent.do("GET", "/api/v1/portal/patients/"+first+"/home-activities", nil)
		ids := activityIDs(body)
		return len(ids) == 1 && ids[0] == breathing
	})
	if c, _, _ := parent.fetchBytes("GET", "/api/v1/portal/patients/"+first+"/home-activities/"+balance+"/print", nil); c != http.StatusNotFound {
		t.Errorf("printing an unassigned activity = %d, want 404", c)
	}
	if c, _ := p.staff.do("POST", "/api/v1/home-activities/"+balance+"/unassign", nil); c != http.StatusNoContent {
		t.Errorf("unassigning again = %d, want 204", c)
	}

	// Bad input is a clear problem naming the fields; nothing is assigned.
	for _, bad := range []map[string]any{
		{"title": "", "instructions": "x"},
		{"title": "   ", "instructions": "x"},
		{"title": "Hop", "instructions": " \n "},
		{"title": strings.Repeat("t", 201), "instructions": "x"},
		{"title": "Hop", "instructions": strings.Repeat("i", 5001)},
		{"title": "Hop", "instructions": "x", "frequency": strings.Repeat("f", 201)},
		{"title": 42, "instructions": "x"},
	} {
		c, body := p.staff.do("POST", "/api/v1/patients/"+first+"/home-activities", bad)
		if c != http.StatusBadRequest || code(body) != "validation_failed" {
			t.Errorf("assign %v = %d %v, want 400 validation_failed", bad, c, body)
		}
	}
	// Staff routes are for staff of the patient's clinic; portal routes for portal users.
	if c, _ := parent.do("POST", "/api/v1/patients/"+first+"/home-activities", map[string]string{"title": "x", "instructions": "y"}); c != http.StatusForbidden {
		t.Errorf("a portal user assigns = %d, want 403", c)
	}
	if c, _ := p.staff.do("GET", "/api/v1/portal/patients/"+first+"/home-activities", nil); c != http.StatusForbidden {
		t.Errorf("staff read the portal route = %d, want 403", c)
	}
	otherClinic := signIn(t, p.a, p.h, "Other Clinic", "desk@other.example")
	p.secrets = append(p.secrets, otherClinic.token)
	if c, _ := otherClinic.do("POST", "/api/v1/patients/"+first+"/home-activities", map[string]string{"title": "x", "instructions": "y"}); c != http.StatusNotFound {
		t.Errorf("another clinic assigns = %d, want 404", c)
	}
	if c, _ := otherClinic.do("POST", "/api/v1/home-activities/"+breathing+"/unassign", nil); c != http.StatusNotFound {
		t.Errorf("another clinic unassigns = %d, want 404", c)
	}
	if c, _ := p.staff.do("POST", "/api/v1/home-activities/"+uuid.NewString()+"/unassign", nil); c != http.StatusNotFound {
		t.Errorf("unassigning an unknown activity = %d, want 404", c)
	}
	p.caughtUp()
	_, body := parent.do("GET", "/api/v1/portal/patients/"+first+"/home-activities", nil)
	if ids := activityIDs(body); len(ids) != 1 {
		t.Errorf("after the refused requests the list is %v", ids)
	}
	p.assertNoSecrets()
}

// parentOfTwoStrangers signs in a portal user linked to a child of the
// clinic other than Noah and Emma.
func (p *portal) parentOfTwoStrangers() (client, string) {
	p.t.Helper()
	pid, contact := p.patientWithParent("Otto", "otto@family.example")
	p.invite(pid, contact)
	tok, _ := p.token("otto@family.example", 1, "/invite")
	c, body := p.accept(tok, "otto's own passphrase")
	if c != http.StatusOK {
		p.t.Fatalf("accept = %d %v", c, body)
	}
	return p.signedIn(body), pid
}

func TestHomeActivitiesNeedTheActivitiesPermission(t *testing.T) {
	p := newPortal(t)
	const email = "kai@family.example"
	allowed, c1 := p.patientWithParent("Zoë", email)
	withheld, c2 := p.patientWithParent("Ben", email)
	p.invite(allowed, c1)
	tok, _ := p.token(email, 1, "/invite")
	c, body := p.accept(tok, "kai's own passphrase")
	if c != http.StatusOK {
		t.Fatalf("accept = %d %v", c, body)
	}
	parent := p.signedIn(body)
	// The second child's grant allows documents and forms, not activities.
	if c, body := p.staff.do("POST", "/api/v1/patients/"+withheld+"/portal-invitations", map[string]any{"contact_id": c2, "permissions": []string{"documents", "forms"}}); c != http.StatusAccepted {
		t.Fatalf("invite = %d %v", c, body)
	}
	mine := p.assignActivity(allowed, "Écrire son prénom", "Write your first name, slowly: Zoë.", "Daily")
	hidden := p.assignActivity(withheld, "Hop", "Hop on one foot.", "")

	eventually(t, "the allowed child's activity", func() bool {
		c, body := parent.do("GET", "/api/v1/portal/patients/"+allowed+"/home-activities", nil)
		ids := activityIDs(body)
		return c == http.StatusOK && len(ids) == 1 && ids[0] == mine
	})
	// An accented name and title print in the sheet as they were written.
	st, h, pdf := parent.fetchBytes("GET", "/api/v1/portal/patients/"+allowed+"/home-activities/"+mine+"/print", nil)
	pdfSays(t, pdfTextOf(t, st, h, pdf), "Zoë", "Écrire son prénom", "Write your first name, slowly: Zoë.", "Daily")

	p.caughtUp()
	for _, path := range []string{
		"/api/v1/portal/patients/" + withheld + "/home-activities",
		"/api/v1/portal/patients/" + withheld + "/home-activities/" + hidden + "/print",
	} {
		if c, _, body := parent.fetchBytes("GET", path, nil); c != http.StatusNotFound {
			t.Errorf("GET %s without the activities permission = %d %.200s, want 404", path, c, body)
		}
	}
	// The refusal is recorded as denied.
	denied := false
	for _, r := range accessRecords(t, p.a) {
		if r.Route == "GET /api/v1/portal/patients/:pid/home-activities/:hid/print" && r.Outcome == audit.OutcomeDenied &&
			len(r.Patients) == 1 && r.Patients[0].String() == withheld {
			denied = true
		}
	}
	if !denied {
		t.Error("the refused print is not in the access records")
	}
	// Granting the permission opens it at the next request.
	if c, body := p.staff.do("POST", "/api/v1/patients/"+withheld+"/portal-invitations", map[string]any{"contact_id": c2, "permissions": []string{"activities"}}); c != http.StatusAccepted {
		t.Fatalf("invite = %d %v", c, body)
	}
	if c, body := parent.do("GET", "/api/v1/portal/patients/"+withheld+"/home-activities", nil); c != http.StatusOK || len(activityIDs(body)) != 1 {
		t.Errorf("with the activities permission = %d %v", c, body)
	}
	p.assertNoSecrets()
}

func TestPortalHandoutIsCustomisedWithTheClinicsContact(t *testing.T) {
	p := newPortal(t)
	ctx := context.Background()
	const url = "https://portal.harbor.example"
	h := checkOpenAPI(t, readapi.New(readapi.Deps{Pool: p.a.Pool, Store: p.a.Store, Commands: p.a.Commands, Audit: p.a.Audit, Clock: p.clock.Now, PublicURL: url}))
	admin := client{t: t, h: h, token: p.staff.token}

	res, err := p.a.Commands.Bootstrap(ctx, commands.Bootstrap{ClinicName: "Harbor Therapy", AdminEmail: "front@harbor.example", AdminPassword: "long enough password"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.a.Commands.AddStaffMember(ctx, commands.Meta{Actor: commands.System("test")}, commands.AddStaffMember{
		ClinicID: res.ClinicID, Email: "desk@harbor.example", Name: "Desk", Role: staff.RoleStaff, Password: "long enough password",
	}); err != nil {
		t.Fatal(err)
	}
	c, body := client{t: t, h: h}.do("POST", "/api/v1/auth/login", map[string]string{"email": "desk@harbor.example", "password": "long enough password"})
	if c != http.StatusOK {
		t.Fatalf("login = %d %v", c, body)
	}
	desk := client{t: t, h: h, token: body["token"].(string)}
	p.secrets = append(p.secrets, desk.token)

	// Before any contact is set the handout still says what the portal offers and where.
	text := desk.pdfTextAt("/api/v1/clinic/portal-handout")
	pdfSays(t, text, "Harbor Therapy", url, "View upcoming appointments", "completed documents", "Home Activities",
		"intake forms", "Forgot password")

	// An administrator sets the contact; staff may read it, not set it.
	contact := map[string]string{"phone": " +1 (555) 010-2030 ", "email": "Hello@Harbor.example", "text": "Open Monday–Friday, 8 to 5.\r\nAsk for Renée at the front desk."}
	c, got := admin.do("PUT", "/api/v1/clinic/contact", contact)
	if c != http.StatusOK || got["phone"] != "+1 (555) 010-2030" || got["email"] != "hello@harbor.example" ||
		got["text"] != "Open Monday–Friday, 8 to 5.\nAsk for Renée at the front desk." {
		t.Fatalf("PUT /clinic/contact = %d %v", c, got)
	}
	if c, again := desk.do("GET", "/api/v1/clinic/contact", nil); c != http.StatusOK || again["phone"] != got["phone"] || again["text"] != got["text"] {
		t.Errorf("GET /clinic/contact = %d %v", c, again)
	}
	if c, body := desk.do("PUT", "/api/v1/clinic/contact", contact); c != http.StatusForbidden {
		t.Errorf("staff set the contact = %d %v, want 403", c, body)
	}
	for _, bad := range []map[string]any{
		{"email": "not an address"},
		{"phone": "call us"},
		{"phone": strings.Repeat("5", 41)},
		{"text": strings.Repeat("t", 1001)},
		{"text": 7},
	} {
		if c, body := admin.do("PUT", "/api/v1/clinic/contact", bad); c != http.StatusBadRequest || code(body) != "validation_failed" {
			t.Errorf("PUT /clinic/contact %v = %d %v, want 400 validation_failed", bad, c, body)
		}
	}

	text = desk.pdfTextAt("/api/v1/clinic/portal-handout")
	pdfSays(t, text, "Harbor Therapy", url, "+1 (555) 010-2030", "hello@harbor.example",
		"Open Monday–Friday, 8 to 5. Ask for Renée at the front desk.")
	if strings.Contains(strings.ToLower(text), "payment") {
		t.Errorf("the handout of a clinic without payment processing mentions payments: %q", text)
	}

	// With payment processing enabled in Clinic Options, the handout lists payments.
	adminMeta := commands.Meta{Actor: commands.Actor{ID: res.AdminID.String(), Kind: "staff", Role: "admin", ClinicID: res.ClinicID}}
	enabled := true
	if _, err := p.a.Commands.SetClinicOptions(ctx, adminMeta, commands.SetClinicOptions{PaymentProcessingEnabled: &enabled}); err != nil {
		t.Fatal(err)
	}
	text = admin.pdfTextAt("/api/v1/clinic/portal-handout")
	pdfSays(t, text, "credit card payments", "receipts")

	// Another clinic's handout is its own.
	other := signIn(t, p.a, h, "Lakeside Clinic", "admin@lakeside.example")
	p.secrets = append(p.secrets, other.token)
	text = other.pdfTextAt("/api/v1/clinic/portal-handout")
	pdfSays(t, text, "Lakeside Clinic", url)
	if strings.Contains(text, "Harbor") || strings.Contains(text, "010-2030") {
		t.Errorf("Lakeside's handout shows Harbor's details: %q", text)
	}
	if c, got := other.do("GET", "/api/v1/clinic/contact", nil); c != http.StatusOK || got["phone"] != "" {
		t.Errorf("Lakeside's contact = %d %v", c, got)
	}

	// Portal users and strangers get no handout; without a portal address there is none.
	parent, _, _ := p.parentOfTwo("pat@family.example")
	if c, _ := (client{t: t, h: h, token: parent.token}).do("GET", "/api/v1/clinic/portal-handout", nil); c != http.StatusForbidden {
		t.Errorf("a portal user = %d, want 403", c)
	}
	if c, _ := (client{t: t, h: h}).do("GET", "/api/v1/clinic/portal-handout", nil); c != http.StatusUnauthorized {
		t.Errorf("no session = %d, want 401", c)
	}
	if c, body := p.staff.do("GET", "/api/v1/clinic/portal-handout", nil); c != http.StatusServiceUnavailable || code(body) != "not_configured" {
		t.Errorf("without PublicURL = %d %v, want 503 not_configured", c, body)
	}
	p.assertNoSecrets()
}

// TestPrintedDatesAreTheClinicsDay: a sheet printed late in the day says
// the clinic's date (PORTAL_TIME_ZONE), not the server's UTC one.
func TestPrintedDatesAreTheClinicsDay(t *testing.T) {
	// A zone whose date differs from UTC's right now: far east late in the
	// UTC day, far west early in it.
	zone := "Pacific/Kiritimati" // UTC+14
	if time.Now().UTC().Hour() < 10 {
		zone = "Pacific/Pago_Pago" // UTC-11
	}
	p := newPortal(t, func(c *config.Config) { c.TimeZone = zone })
	parent, first, _ := p.parentOfTwo("day@family.example")
	hid := p.assignActivity(first, "Balance on one foot", "Hold for thirty seconds.", "")
	eventually(t, "the activity listed", func() bool {
		c, body := parent.do("GET", "/api/v1/portal/patients/"+first+"/home-activities", nil)
		return c == http.StatusOK && len(activityIDs(body)) == 1
	})
	loc, err := time.LoadLocation(zone)
	if err != nil {
		t.Fatal(err)
	}
	now := p.clock.Now()
	local, utc := now.In(loc).Format("January 2, 2006"), now.UTC().Format("January 2, 2006")
	if local == utc {
		t.Fatalf("test set-up: %s and UTC share the date %s", zone, utc)
	}
	text := parent.pdfTextAt("/api/v1/portal/patients/" + first + "/home-activities/" + hid + "/print")
	pdfSays(t, text, "Assigned: "+local, "Printed "+local)
	if strings.Contains(text, pdftext.Collapse(utc)) {
		t.Errorf("the sheet gives the UTC date %s: %q", utc, text)
	}
}
