package readapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/portico-health/portico/commands"
	"github.com/portico-health/portico/internal/app"
	"github.com/portico-health/portico/internal/testapp"
	"github.com/portico-health/portico/readapi"
)

type client struct {
	t     *testing.T
	h     http.Handler
	token string
}

func (c client) do(method, path string, body any, headers ...string) (int, map[string]any) {
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
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	c.h.ServeHTTP(rec, req)
	var out map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, out
}

// portico starts a whole Portico with its projections running.
func portico(t *testing.T) (*app.App, http.Handler) {
	a := testapp.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = a.Engine.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return a, checkOpenAPI(t, readapi.New(readapi.Deps{Pool: a.Pool, Store: a.Store, Commands: a.Commands, Engine: a.Engine, Audit: a.Audit}))
}

func signIn(t *testing.T, a *app.App, h http.Handler, clinic, email string) client {
	t.Helper()
	if _, err := a.Commands.Bootstrap(context.Background(), commands.Bootstrap{ClinicName: clinic, AdminEmail: email, AdminPassword: "long enough password"}); err != nil {
		t.Fatal(err)
	}
	c := client{t: t, h: h}
	code, body := c.do("POST", "/api/v1/auth/login", map[string]string{"email": email, "password": "long enough password"})
	if code != 200 {
		t.Fatalf("login = %d %v", code, body)
	}
	c.token = body["token"].(string)
	return c
}

// eventually retries a read until the projection has caught up.
func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStaffRegisterSearchAndAddContacts(t *testing.T) {
	a, h := portico(t)
	harbor := signIn(t, a, h, "Harbor Therapy", "admin@harbor.example")
	lakeside := signIn(t, a, h, "Lakeside Clinic", "admin@lakeside.example")

	code, body := harbor.do("POST", "/api/v1/patients", map[string]any{"first_name": "Mia", "last_name": "Okafor", "date_of_birth": "2017-04-02"}, "Idempotency-Key", "k1")
	if code != 201 {
		t.Fatalf("register = %d %v", code, body)
	}
	mia := body["id"].(string)
	// The same request again, retried with its key: the same patient, not a second one.
	if code, again := harbor.do("POST", "/api/v1/patients", map[string]any{"first_name": "Mia", "last_name": "Okafor", "date_of_birth": "2017-04-02"}, "Idempotency-Key", "k1"); code != 201 || again["id"] != mia {
		t.Fatalf("retried register = %d %v, want the same id %s", code, again, mia)
	}
	code, body = harbor.do("POST", "/api/v1/patients/"+mia+"/contacts", map[string]any{"name": "Ada Okafor", "relationship": "parent", "email": "ada@example.com"})
	if code != 201 {
		t.Fatalf("add contact = %d %v", code, body)
	}
	harbor.do("POST", "/api/v1/patients", map[string]any{"first_name": "Leo", "last_name": "Brandt", "date_of_birth": "2015-09-30"})

	var found []any
	eventually(t, "both patients searchable", func() bool {
		_, body := harbor.do("GET", "/api/v1/patients", nil)
		found, _ = body["patients"].([]any)
		return len(found) == 2
	})
	_, body = harbor.do("GET", "/api/v1/patients?query=oka", nil)
	found, _ = body["patients"].([]any)
	if len(found) != 1 {
		t.Fatalf("search 'oka' = %v", body)
	}
	p := found[0].(map[string]any)
	contacts, _ := p["contacts"].([]any)
	if p["first_name"] != "Mia" || p["date_of_birth"] != "2017-04-02" || len(contacts) != 1 {
		t.Fatalf("found %v", p)
	}
	if _, body = harbor.do("GET", "/api/v1/patients?query=2015-09-30", nil); len(body["patients"].([]any)) != 1 {
		t.Fatalf("search by date of birth = %v", body)
	}

	// Another clinic sees none of it and cannot act on it.
	if _, body = lakeside.do("GET", "/api/v1/patients", nil); len(body["patients"].([]any)) != 0 {
		t.Fatalf("another clinic sees %v", body)
	}
	if code, body = lakeside.do("POST", "/api/v1/patients/"+mia+"/contacts", map[string]any{"name": "X", "relationship": "parent", "email": "x@example.com"}); code != 404 || body["code"] != "not_found" {
		t.Fatalf("another clinic adding a contact = %d %v, want 404", code, body)
	}
	// Without a session: 401.
	anon := client{t: t, h: h}
	if code, body = anon.do("GET", "/api/v1/patients", nil); code != 401 || body["code"] != "unauthenticated" {
		t.Fatalf("anonymous search = %d %v", code, body)
	}
}

func TestBadPatientInputIsAClearProblemAndStoresNothing(t *testing.T) {
	a, h := portico(t)
	c := signIn(t, a, h, "Harbor Therapy", "admin@harbor.example")
	cases := []struct {
		body  any
		field string
	}{
		{map[string]any{"first_name": "", "last_name": "X", "date_of_birth": "2017-04-02"}, "first_name"},
		{map[string]any{"first_name": "A", "last_name": "X", "date_of_birth": "02/04/2017"}, "date_of_birth"},
		{map[string]any{"first_name": "A", "last_name": "X", "date_of_birth": "2999-01-01"}, "date_of_birth"},
		{map[string]any{"first_name": "A", "last_name": "X", "date_of_birth": "2017-04-02", "email": "nope"}, "email"},
	}
	for _, tc := range cases {
		code, body := c.do("POST", "/api/v1/patients", tc.body)
		errs, _ := body["errors"].(map[string]any)
		if code != 400 || body["code"] != "validation_failed" || errs[tc.field] == nil {
			t.Errorf("%v = %d %v, want 400 naming %s", tc.body, code, body, tc.field)
		}
	}
	if code, body := c.do("POST", "/api/v1/patients", "not an object"); code != 400 || body["code"] != "validation_failed" {
		t.Errorf("a JSON string body = %d %v", code, body)
	}
	if code, body := c.do("POST", "/api/v1/patients/not-a-uuid/contacts", map[string]any{}); code != 404 {
		t.Errorf("contact on a malformed id = %d %v", code, body)
	}
	if code, body := c.do("GET", "/api/v1/patients?limit=0", nil); code != 400 {
		t.Errorf("limit=0 = %d %v", code, body)
	}
	evs, err := a.Store.ReadAll(context.Background(), 0, 1000, eventstoreFilter("patient"))
	if err != nil || len(evs) != 0 {
		t.Fatalf("refused requests stored %d patient events (%v)", len(evs), err)
	}
}

func TestProjectionStatusIsForAdmins(t *testing.T) {
	a, h := portico(t)
	c := signIn(t, a, h, "Harbor Therapy", "admin@harbor.example")
	code, body := c.do("GET", "/api/v1/projections", nil)
	if code != 200 {
		t.Fatalf("projections = %d %v", code, body)
	}
	list, _ := body["projections"].([]any)
	if len(list) == 0 || list[0].(map[string]any)["name"] != "patients" {
		t.Fatalf("projections = %v", body)
	}
	if code, _ := (client{t: t, h: h}).do("GET", "/api/v1/projections", nil); code != 401 {
		t.Fatalf("anonymous projections = %d", code)
	}
}
