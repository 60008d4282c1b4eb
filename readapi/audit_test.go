package readapi_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portico-health/portico/domain/audit"
	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/internal/app"
	"github.com/portico-health/portico/readapi"
)

// accessRecords reads every access record from the event log.
func accessRecords(t *testing.T, a *app.App) []audit.Access {
	t.Helper()
	evs, err := a.Store.ReadAll(context.Background(), eventstore.Start, 10000, eventstore.Filter{Categories: []string{audit.Category}})
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Access
	for _, e := range evs {
		var r audit.Access
		if err := json.Unmarshal(e.Data, &r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// raw does a request and returns the status and the exact body bytes.
func (c client) raw(method, path string) (int, []byte) {
	c.t.Helper()
	req := httptest.NewRequest(method, path, nil)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("User-Agent", "portico-test")
	rec := httptest.NewRecorder()
	c.h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

func TestPHIReadsAreRecordedWithTheBodyHash(t *testing.T) {
	a, h := portico(t)
	staff := signIn(t, a, h, "Harbor Therapy", "front@harbor.example")
	code, body := staff.do("POST", "/api/v1/patients", map[string]string{"first_name": "Mia", "last_name": "Rivera", "date_of_birth": "2018-05-01"})
	if code != http.StatusCreated {
		t.Fatalf("register = %d %v", code, body)
	}
	pid := body["id"].(string)
	var got []byte
	eventually(t, "the patient is searchable", func() bool {
		c, b := staff.raw("GET", "/api/v1/patients?query=Mia")
		got = b
		return c == http.StatusOK && bytes.Contains(b, []byte(pid))
	})
	sum := sha256.Sum256(got)
	var found *audit.Access
	for _, r := range accessRecords(t, a) {
		if r.BodySHA256 == hex.EncodeToString(sum[:]) {
			found = &r
		}
	}
	if found == nil {
		t.Fatal("no access record carries the SHA-256 of the body delivered")
	}
	if found.Outcome != audit.OutcomeSuccess || found.Subtype != audit.SubtypeQuery || found.Action != "E" ||
		found.Agent.Kind != "staff" || found.Agent.Role != "admin" || found.Purpose != audit.PurposeTreatment ||
		found.Route != "GET /api/v1/patients" || found.Agent.UserAgent != "portico-test" || found.Source.Service != "portico" ||
		len(found.Patients) != 1 || found.Patients[0].String() != pid || found.Entities[0].Version != 1 || found.Hash == "" {
		t.Errorf("access record = %+v", *found)
	}

	// A refused attempt is recorded, without the data: no session …
	if c, _ := (client{t: t, h: h}).raw("GET", "/api/v1/patients/"+pid+"/portal-users"); c != http.StatusUnauthorized {
		t.Fatalf("no session = %d", c)
	}
	// … and another clinic's staff.
	other := signIn(t, a, h, "Other Clinic", "desk@other.example")
	if c, _ := other.raw("GET", "/api/v1/patients/"+pid+"/portal-users"); c != http.StatusNotFound {
		t.Fatalf("other clinic = %d", c)
	}
	var anonymous, otherClinic bool
	for _, r := range accessRecords(t, a) {
		if r.Route != "GET /api/v1/patients/:pid/portal-users" || r.Outcome != audit.OutcomeDenied || len(r.Patients) != 1 || r.Patients[0].String() != pid {
			continue
		}
		anonymous = anonymous || (r.Agent.Kind == "anonymous" && r.Status == http.StatusUnauthorized)
		otherClinic = otherClinic || (r.Agent.Kind == "staff" && r.Status == http.StatusNotFound)
	}
	if !anonymous || !otherClinic {
		t.Errorf("denied attempts recorded: anonymous %v, other clinic %v; want both", anonymous, otherClinic)
	}

	// Auditors read the trail; reading it is recorded too; the chain verifies.
	auditorsBefore := len(accessRecords(t, a))
	eventually(t, "the trail is projected", func() bool {
		c, b := staff.do("GET", "/api/v1/audit/access?patient_id="+pid, nil)
		recs, _ := b["records"].([]any)
		return c == http.StatusOK && len(recs) >= 3
	})
	if len(accessRecords(t, a)) <= auditorsBefore {
		t.Error("reading the audit trail was not recorded")
	}
	c, export := staff.raw("GET", "/api/v1/audit/access/export?patient_id="+pid)
	if c != http.StatusOK {
		t.Fatalf("export = %d %s", c, export)
	}
	lines := 0
	sc := bufio.NewScanner(bytes.NewReader(export))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev["resourceType"] != "AuditEvent" {
			t.Fatalf("export line %d: %v %s", lines+1, err, sc.Text())
		}
		lines++
	}
	if lines < 3 {
		t.Errorf("export has %d lines", lines)
	}
	c, verify := staff.do("GET", "/api/v1/audit/verify", nil)
	if c != http.StatusOK || verify["ok"] != true {
		t.Errorf("verify = %d %v", c, verify)
	}
	c, hist := staff.do("GET", "/api/v1/audit/patients/"+pid+"/history", nil)
	events, _ := hist["events"].([]any)
	if c != http.StatusOK || len(events) == 0 || events[0].(map[string]any)["type"] != "PatientRegistered" {
		t.Errorf("history = %d %v", c, hist)
	}
	if c, _ := other.raw("GET", "/api/v1/audit/patients/"+pid+"/history"); c != http.StatusNotFound {
		t.Errorf("another clinic's admin reads the history: %d", c)
	}
}

// failingAuditor stands for an event store that cannot take the record.
type failingAuditor struct{}

func (failingAuditor) Record(context.Context, audit.Access) (audit.Access, error) {
	return audit.Access{}, errors.New("event store down")
}

func TestPHIIsWithheldWhenTheAccessCannotBeRecorded(t *testing.T) {
	a, h := portico(t)
	staff := signIn(t, a, h, "Harbor Therapy", "front@harbor.example")
	code, body := staff.do("POST", "/api/v1/patients", map[string]string{"first_name": "Zanzibar", "last_name": "Quill", "date_of_birth": "2018-05-01"})
	if code != http.StatusCreated {
		t.Fatalf("register = %d %v", code, body)
	}
	pid := body["id"].(string)
	eventually(t, "the patient is searchable", func() bool {
		c, b := staff.raw("GET", "/api/v1/patients?query=Zan")
		return c == http.StatusOK && bytes.Contains(b, []byte(pid))
	})
	broken := readapi.New(readapi.Deps{Pool: a.Pool, Store: a.Store, Commands: a.Commands, Engine: a.Engine, Audit: failingAuditor{}})
	down := client{t: t, h: broken, token: staff.token}
	for _, path := range []string{"/api/v1/patients?query=Zan", "/api/v1/me", "/api/v1/patients/" + pid + "/portal-users"} {
		c, b := down.raw("GET", path)
		if c != http.StatusServiceUnavailable || !strings.Contains(string(b), "audit_unavailable") {
			t.Errorf("GET %s with the audit down = %d %s, want 503 audit_unavailable", path, c, b)
		}
		for _, phi := range []string{"Zanzibar", "Quill", "2018-05-01", pid} {
			if strings.Contains(string(b), phi) && !strings.Contains(path, phi) {
				t.Errorf("GET %s with the audit down leaked %q", path, phi)
			}
		}
	}
}

// stallingAuditor records for real, then never returns: the process "dies"
// between the durable record and the response.
type stallingAuditor struct {
	inner interface {
		Record(context.Context, audit.Access) (audit.Access, error)
	}
	recorded chan audit.Access
}

func (s stallingAuditor) Record(ctx context.Context, a audit.Access) (audit.Access, error) {
	r, err := s.inner.Record(ctx, a)
	if err == nil {
		s.recorded <- r
	}
	<-ctx.Done()
	return audit.Access{}, ctx.Err()
}

func TestTheRecordExistsBeforeAnyByteIsSent(t *testing.T) {
	a, h := portico(t)
	staff := signIn(t, a, h, "Harbor Therapy", "front@harbor.example")
	stall := stallingAuditor{inner: a.Audit, recorded: make(chan audit.Access, 1)}
	dying := readapi.New(readapi.Deps{Pool: a.Pool, Store: a.Store, Commands: a.Commands, Audit: stall})
	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequest("GET", "/api/v1/me", nil).WithContext(ctx)
	req.Header.Set("Authorization", "Bearer "+staff.token)
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() { dying.ServeHTTP(rec, req); close(done) }()
	var r audit.Access
	select {
	case r = <-stall.recorded:
	case <-time.After(10 * time.Second):
		t.Fatal("no record was made")
	}
	// The process is "killed" here: nothing has been written to the client…
	if rec.Body.Len() != 0 {
		t.Fatalf("bytes left before the record was durable: %q", rec.Body.String())
	}
	cancel()
	<-done
	// … and the record is in the log.
	found := false
	for _, x := range accessRecords(t, a) {
		found = found || x.RecordID == r.RecordID
	}
	if !found {
		t.Error("the access record is not in the event log")
	}
	if strings.Contains(rec.Body.String(), "front@harbor.example") {
		t.Error("the account was sent although the request died")
	}
}
