package readapi_test

import (
	"bytes"
	"net/http"
	"testing"
	"time"
)

func (p *portal) uploadForm(name string, data []byte) string {
	p.t.Helper()
	body, ct := multipartBody(p.t, map[string]string{"name": name}, "intake.pdf", "application/pdf", data)
	rec := p.staff.send("POST", "/api/v1/intake-forms", ct, bytes.NewReader(body), int64(len(body)))
	if rec.Code != http.StatusCreated {
		p.t.Fatalf("upload form = %d %s", rec.Code, rec.Body)
	}
	return decoded(rec)["id"].(string)
}

func assignmentsOf(body map[string]any) []map[string]any {
	var out []map[string]any
	list, _ := body["intake_forms"].([]any)
	for _, x := range list {
		out = append(out, x.(map[string]any))
	}
	return out
}

func TestIntakeFormsAssignedDownloadedAndReturned(t *testing.T) {
	p := newPortal(t)
	blank := pdfFile("blank history form")
	formID := p.uploadForm("Developmental history", blank)

	// Forms can come with the invitation, with a message.
	first, c1 := p.patientWithParent("Noah", "pat@family.example")
	second, _ := p.patientWithParent("Emma", "pat@family.example")
	if c, body := p.staff.do("POST", "/api/v1/patients/"+first+"/portal-invitations", map[string]any{
		"contact_id": c1, "intake_form_ids": []string{formID}, "intake_forms_message": "Please bring it back before the first visit.",
	}); c != http.StatusAccepted {
		t.Fatalf("invite with forms = %d %v", c, body)
	}
	tok, msg := p.token("pat@family.example", 1, "/invite")
	if bytes.Contains([]byte(msg.Text), []byte("Developmental")) {
		t.Error("the email names the form")
	}
	code, body := p.accept(tok, "a family passphrase")
	if code != http.StatusOK {
		t.Fatalf("accept = %d %v", code, body)
	}
	parent := p.signedIn(body)

	var aid string
	eventually(t, "the assigned form is listed with its message", func() bool {
		c, body := parent.do("GET", "/api/v1/portal/patients/"+first+"/intake-forms", nil)
		list := assignmentsOf(body)
		if c != http.StatusOK || len(list) != 1 || list[0]["message"] != "Please bring it back before the first visit." || list[0]["form_name"] != "Developmental history" {
			return false
		}
		aid = list[0]["assignment_id"].(string)
		return true
	})
	// The other child has none; its list is empty, not the first child's.
	if _, body := parent.do("GET", "/api/v1/portal/patients/"+second+"/intake-forms", nil); len(assignmentsOf(body)) != 0 {
		t.Errorf("the second child shows the first child's forms: %v", body)
	}
	rec := parent.send("GET", "/api/v1/portal/patients/"+first+"/intake-forms/"+aid+"/download", "", nil, 0)
	if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), blank) || rec.Header().Get("Content-Type") != "application/pdf" {
		t.Fatalf("download blank = %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	// Under the other child the assignment is not found.
	if rec := parent.send("GET", "/api/v1/portal/patients/"+second+"/intake-forms/"+aid+"/download", "", nil, 0); rec.Code != http.StatusNotFound {
		t.Errorf("download under another child = %d, want 404", rec.Code)
	}

	ret := func(data []byte, name string) int {
		body, ct := multipartBody(t, nil, name, "application/pdf", data)
		rec := parent.send("POST", "/api/v1/portal/patients/"+first+"/intake-forms/"+aid+"/return", ct, bytes.NewReader(body), int64(len(body)))
		return rec.Code
	}
	if c := ret(pdfFile("completed v1"), "done.pdf"); c != http.StatusCreated {
		t.Fatalf("return = %d", c)
	}
	// A disguised file is refused with nothing stored.
	if c := ret([]byte("MZ\x90\x00 this is a program"), "done.pdf"); c != http.StatusUnsupportedMediaType {
		t.Errorf("disguised return = %d, want 415", c)
	}
	p.clock.Advance(time.Minute)
	second2 := pdfFile("completed v2")
	if c := ret(second2, "done-again.pdf"); c != http.StatusCreated {
		t.Fatalf("second return = %d", c)
	}
	eventually(t, "staff see the second return, with its time", func() bool {
		c, body := p.staff.do("GET", "/api/v1/patients/"+first+"/intake-forms", nil)
		list := assignmentsOf(body)
		if c != http.StatusOK || len(list) != 1 {
			return false
		}
		r, _ := list[0]["returned"].(map[string]any)
		return r != nil && r["returns"] == float64(2) && r["name"] == "done-again.pdf" && r["returned_at"] != nil
	})
	rec = p.staff.send("GET", "/api/v1/patients/"+first+"/intake-forms/"+aid+"/returned", "", nil, 0)
	if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), second2) {
		t.Errorf("staff download of the returned form = %d", rec.Code)
	}
	// Staff assign directly too; a form of another clinic is refused.
	if c, body := p.staff.do("POST", "/api/v1/patients/"+second+"/intake-forms", map[string]any{"form_id": formID, "message": "For Emma"}); c != http.StatusCreated {
		t.Errorf("assign = %d %v", c, body)
	}
	other := signIn(t, p.a, p.h, "Other Clinic", "desk@other.example")
	p.secrets = append(p.secrets, other.token)
	otherForm := func() string {
		body, ct := multipartBody(t, map[string]string{"name": "Theirs"}, "f.pdf", "application/pdf", pdfFile("theirs"))
		rec := other.send("POST", "/api/v1/intake-forms", ct, bytes.NewReader(body), int64(len(body)))
		return decoded(rec)["id"].(string)
	}()
	if c, body := p.staff.do("POST", "/api/v1/patients/"+second+"/intake-forms", map[string]any{"form_id": otherForm}); c != http.StatusBadRequest {
		t.Errorf("assign another clinic's form = %d %v, want 400", c, body)
	}
	if c, _ := other.do("GET", "/api/v1/patients/"+first+"/intake-forms", nil); c != http.StatusNotFound {
		t.Errorf("another clinic reads the forms = %d, want 404", c)
	}
	p.assertNoSecrets()
}
