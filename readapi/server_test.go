package readapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/portico-health/portico/internal/testapp"
	"github.com/portico-health/portico/readapi"
)

func get(t *testing.T, h http.Handler, path string) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	var body map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	return rec, body
}

func TestHealthAndReadiness(t *testing.T) {
	a := testapp.New(t)
	h := readapi.New(readapi.Deps{Ready: []readapi.Check{
		{Name: "database", Run: a.Pool.Ping},
		{Name: "eventstore", Run: a.Store.Ping},
	}})
	if rec, body := get(t, h, "/healthz"); rec.Code != 200 || body["status"] != "ok" {
		t.Fatalf("healthz = %d %v", rec.Code, body)
	}
	if rec, body := get(t, h, "/readyz"); rec.Code != 200 || body["status"] != "ready" {
		t.Fatalf("readyz = %d %v", rec.Code, body)
	}
	if rec, _ := get(t, h, "/metrics"); rec.Code != 200 {
		t.Fatalf("metrics = %d", rec.Code)
	}
}

func TestReadinessFailsWhenADependencyIsDown(t *testing.T) {
	h := readapi.New(readapi.Deps{Ready: []readapi.Check{
		{Name: "database", Run: func(context.Context) error { return nil }},
		{Name: "eventstore", Run: func(context.Context) error { return errors.New("connection refused") }},
	}})
	rec, body := get(t, h, "/readyz")
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("readyz with a failing check = %d", rec.Code)
	}
	checks, _ := body["checks"].(map[string]any)
	if checks["eventstore"] != "failing" || checks["database"] != "ok" {
		t.Fatalf("checks = %v", checks)
	}
}

func TestUnknownRoutesAnswerProblemDetails(t *testing.T) {
	h := readapi.New(readapi.Deps{})
	rec, body := get(t, h, "/api/v1/no-such-thing?name=Jane+Doe")
	if rec.Code != 404 || rec.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("unknown route = %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	for _, field := range []string{"type", "title", "status", "code"} {
		if body[field] == nil {
			t.Errorf("problem lacks %q: %v", field, body)
		}
	}
	if body["code"] != "not_found" || rec.Header().Get("X-Correlation-ID") == "" {
		t.Fatalf("problem = %v, correlation id %q", body, rec.Header().Get("X-Correlation-ID"))
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/healthz", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST /healthz = %d, want 405", rec.Code)
	}
}
