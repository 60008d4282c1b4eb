package readapi_test

import (
	"net/http"
	"testing"
	"time"
)

// parentOfTwo signs in a parent linked to two children of the clinic.
func (p *portal) parentOfTwo(email string) (parent client, first, second string) {
	p.t.Helper()
	first, c1 := p.patientWithParent("Noah", email)
	second, c2 := p.patientWithParent("Emma", email)
	p.invite(first, c1)
	tok, _ := p.token(email, 1, "/invite")
	code, body := p.accept(tok, "a family passphrase")
	if code != http.StatusOK {
		p.t.Fatalf("accept = %d %v", code, body)
	}
	parent = p.signedIn(body)
	p.invite(second, c2)
	return parent, first, second
}

func (p *portal) schedule(pid string, in time.Duration, provider string) string {
	p.t.Helper()
	start := p.clock.Now().Add(in).Truncate(time.Minute)
	code, body := p.staff.do("POST", "/api/v1/patients/"+pid+"/appointments", map[string]any{
		"starts_at": start, "ends_at": start.Add(45 * time.Minute), "provider": provider, "location": "Room 2", "kind": "therapy",
	})
	if code != http.StatusCreated {
		p.t.Fatalf("schedule = %d %v", code, body)
	}
	return body["id"].(string)
}

func appointmentIDs(body map[string]any) []string {
	var ids []string
	list, _ := body["appointments"].([]any)
	for _, x := range list {
		ids = append(ids, x.(map[string]any)["id"].(string))
	}
	return ids
}

func TestPortalAppointmentsPerPatientUpcomingOnly(t *testing.T) {
	p := newPortal(t)
	parent, first, second := p.parentOfTwo("pat@family.example")
	later := p.schedule(first, 48*time.Hour, "Dr. Lane")
	sooner := p.schedule(first, 24*time.Hour, "Dr. Lane")
	past := p.schedule(first, -48*time.Hour, "Dr. Lane")
	cancelled := p.schedule(first, 72*time.Hour, "Dr. Lane")
	other := p.schedule(second, 24*time.Hour, "Dr. Kim")
	if c, body := p.staff.do("POST", "/api/v1/appointments/"+cancelled+"/cancel", map[string]string{"reason": "provider ill"}); c != http.StatusNoContent {
		t.Fatalf("cancel = %d %v", c, body)
	}
	if c, body := p.staff.do("POST", "/api/v1/appointments/"+cancelled+"/reschedule", map[string]any{"starts_at": time.Now().Add(time.Hour), "ends_at": time.Now().Add(2 * time.Hour)}); c != http.StatusConflict {
		t.Errorf("rescheduling a cancelled appointment = %d %v, want 409", c, body)
	}
	_ = past
	eventually(t, "the first child's upcoming appointments", func() bool {
		c, body := parent.do("GET", "/api/v1/portal/patients/"+first+"/appointments", nil)
		ids := appointmentIDs(body)
		return c == http.StatusOK && len(ids) == 2 && ids[0] == sooner && ids[1] == later
	})
	eventually(t, "the second child's", func() bool {
		c, body := parent.do("GET", "/api/v1/portal/patients/"+second+"/appointments", nil)
		ids := appointmentIDs(body)
		return c == http.StatusOK && len(ids) == 1 && ids[0] == other
	})
	// Rescheduling moves it; the list follows.
	newStart := p.clock.Now().Add(96 * time.Hour).Truncate(time.Minute)
	if c, body := p.staff.do("POST", "/api/v1/appointments/"+sooner+"/reschedule", map[string]any{"starts_at": newStart, "ends_at": newStart.Add(time.Hour)}); c != http.StatusNoContent {
		t.Fatalf("reschedule = %d %v", c, body)
	}
	eventually(t, "the rescheduled appointment moves to the end", func() bool {
		_, body := parent.do("GET", "/api/v1/portal/patients/"+first+"/appointments", nil)
		ids := appointmentIDs(body)
		return len(ids) == 2 && ids[0] == later && ids[1] == sooner
	})
	// Bad input is a clear problem; another clinic's staff cannot touch it.
	if c, body := p.staff.do("POST", "/api/v1/patients/"+first+"/appointments", map[string]any{"starts_at": newStart, "ends_at": newStart.Add(-time.Hour), "provider": "", "location": "x", "kind": "surgery"}); c != http.StatusBadRequest || body["code"] != "validation_failed" {
		t.Errorf("bad appointment = %d %v", c, body)
	}
	otherClinic := signIn(t, p.a, p.h, "Other Clinic", "desk@other.example")
	if c, _ := otherClinic.do("POST", "/api/v1/appointments/"+later+"/cancel", nil); c != http.StatusNotFound {
		t.Errorf("another clinic cancels = %d, want 404", c)
	}
	if c, _ := otherClinic.do("POST", "/api/v1/patients/"+first+"/appointments", map[string]any{"starts_at": newStart, "ends_at": newStart.Add(time.Hour), "provider": "x", "location": "x", "kind": "therapy"}); c != http.StatusNotFound {
		t.Errorf("another clinic schedules = %d, want 404", c)
	}
	p.assertNoSecrets()
}
