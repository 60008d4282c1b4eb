package webportal_test

// The billing pages against the real payments API (not a fake): the field
// names the pages read are the ones readapi/payments.go answers, a receipt
// passes through with its headers, and a clinic that takes no payments (the
// API answers 403 payment_processing_disabled on every billing route) shows
// no failure, only that billing is not shown.

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestBillingPagesReadTheRealPaymentsAPI(t *testing.T) {
	_, h, sum := demoPortal(t)
	call := func(method, path, token string, body any) (int, http.Header, []byte) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req := httptest.NewRequest(method, path, rd)
		req.Header.Set("Content-Type", "application/json")
		if strings.HasPrefix(path, "/api/") {
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
		} else {
			req.AddCookie(&http.Cookie{Name: "portico_session", Value: token})
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Header(), rec.Body.Bytes()
	}
	login := func(email, password string) string {
		t.Helper()
		code, _, body := call("POST", "/api/v1/auth/login", "", map[string]string{"email": email, "password": password})
		var out struct{ Token string }
		if err := json.Unmarshal(body, &out); code != http.StatusOK || err != nil || out.Token == "" {
			t.Fatalf("login %s = %d %s", email, code, body)
		}
		return out.Token
	}
	parent := login(sum.ParentEmail, sum.ParentPassword)
	var me struct {
		Patients []struct {
			PatientID string `json:"patient_id"`
			Name      string `json:"name"`
		} `json:"patients"`
	}
	_, _, body := call("GET", "/api/v1/me", parent, nil)
	if err := json.Unmarshal(body, &me); err != nil {
		t.Fatal(err)
	}
	mia := ""
	for _, p := range me.Patients {
		if strings.HasPrefix(p.Name, "Mia") {
			mia = p.PatientID
		}
	}
	if mia == "" {
		t.Fatalf("no Mia in %s", body)
	}

	// The demo: Mia's invoice of 138.50 USD, 50.00 paid in cash.
	var page string
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _, b := call("GET", "/patients/"+mia+"/billing", parent, nil)
		page = string(b)
		if code == http.StatusOK && strings.Contains(page, "$88.50") && strings.Contains(page, "$50.00") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the billing page never showed the demo account: %d\n%s", code, page)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, want := range []string{"$138.50", "Partly paid", "$88.50 to pay", "Cash", "Print receipt", "pay?amount=88.50&amp;currency=USD"} {
		if !strings.Contains(page, want) {
			t.Errorf("the billing page lacks %q", want)
		}
	}
	i := strings.Index(page, "/payments/")
	j := strings.Index(page[i:], "/receipt")
	if i < 0 || j < 0 {
		t.Fatalf("no receipt link:\n%s", page)
	}
	code, hdr, pdf := call("GET", "/patients/"+mia+page[i:i+j]+"/receipt", parent, nil)
	if code != http.StatusOK || hdr.Get("Content-Type") != "application/pdf" || !bytes.HasPrefix(pdf, []byte("%PDF")) ||
		!strings.HasPrefix(hdr.Get("Content-Disposition"), `inline; filename="receipt-R-`) || hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("receipt = %d %v %.20q", code, hdr, pdf)
	}

	// The clinic stops taking payments: the page hides billing, it does
	// not report three failures.
	admin := login(sum.AdminEmail, sum.AdminPassword)
	if code, _, b := call("PUT", "/api/v1/clinic/options", admin, map[string]any{"payment_processing_enabled": false}); code != http.StatusOK {
		t.Fatalf("options = %d %s", code, b)
	}
	code, _, b := call("GET", "/patients/"+mia+"/billing", parent, nil)
	page = string(b)
	if code != http.StatusOK || !strings.Contains(page, "does not show billing") || strings.Contains(page, `class="warn"`) {
		t.Fatalf("billing of a clinic without payments = %d\n%s", code, page)
	}
}
