package mail

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

var expires = time.Date(2026, 3, 14, 9, 30, 0, 0, time.FixedZone("CET", 3600))

func TestInvitation(t *testing.T) {
	link := "https://portal.example/invite?token=abc123"
	m := Invitation("Sunrise Therapy", link, expires)
	if m.Subject != "Sunrise Therapy invites you to its patient portal" {
		t.Fatalf("subject %q", m.Subject)
	}
	if m.To != "" || m.ID != "" {
		t.Fatalf("To and ID are the caller's: %+v", m)
	}
	for _, body := range []string{m.Text, m.HTML} {
		for _, want := range []string{"Sunrise Therapy", link, "24 hours", "Saturday 14 March 2026 at 08:30 UTC", "did not expect", "Forgot password"} {
			if !strings.Contains(body, want) {
				t.Errorf("body lacks %q:\n%s", want, body)
			}
		}
	}
	checkHTML(t, m, link)
}

func TestPasswordReset(t *testing.T) {
	link := "https://portal.example/reset-password?token=abc123"
	m := PasswordReset("Sunrise Therapy", link, expires)
	if m.Subject != "Reset your Sunrise Therapy patient portal password" {
		t.Fatalf("subject %q", m.Subject)
	}
	for _, body := range []string{m.Text, m.HTML} {
		for _, want := range []string{"Sunrise Therapy", link, "1 hour", "Saturday 14 March 2026 at 08:30 UTC", "did not ask"} {
			if !strings.Contains(body, want) {
				t.Errorf("body lacks %q:\n%s", want, body)
			}
		}
		if strings.Contains(body, "24 hours") {
			t.Errorf("reset says 24 hours:\n%s", body)
		}
	}
	checkHTML(t, m, link)
}

// checkHTML: a whole document with a language and title, no external
// resources, and the link as the only URL.
func checkHTML(t *testing.T, m Message, link string) {
	t.Helper()
	h := m.HTML
	for _, want := range []string{"<!DOCTYPE html>", `<html lang="en">`, "<title>" + m.Subject + "</title>", `<meta charset="utf-8">`, `href="` + link + `"`} {
		if !strings.Contains(h, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	for _, banned := range []string{"<img", "<link", "<script", "src=", "url(", "@import"} {
		if strings.Contains(h, banned) {
			t.Errorf("HTML has %q", banned)
		}
	}
	for _, u := range regexp.MustCompile(`https?://[^\s"<]+`).FindAllString(h+m.Text, -1) {
		if u != link {
			t.Errorf("unexpected URL %q", u)
		}
	}
}

func TestTemplatesEscapeAndStayOnOneLine(t *testing.T) {
	m := Invitation("  Smith & <b>Sons</b>\r\nBcc: x@evil.example ", `https://p.example/invite?token=a"b&c=<d>`, expires)
	if strings.ContainsAny(m.Subject, "\r\n") {
		t.Fatalf("subject spans lines: %q", m.Subject)
	}
	if m.Subject != "Smith & <b>Sons</b> Bcc: x@evil.example invites you to its patient portal" {
		t.Fatalf("subject %q", m.Subject)
	}
	if strings.Contains(m.HTML, "<b>Sons") || !strings.Contains(m.HTML, "Smith &amp; &lt;b&gt;Sons") {
		t.Fatalf("clinic name not escaped in HTML:\n%s", m.HTML)
	}
	if strings.Contains(m.HTML, `token=a"b`) {
		t.Fatalf("link not escaped in HTML:\n%s", m.HTML)
	}
	// A link that is not http(s) never becomes a clickable href.
	m = PasswordReset("C", "javascript:alert(1)", expires)
	if strings.Contains(m.HTML, `href="javascript:`) {
		t.Fatalf("javascript: href:\n%s", m.HTML)
	}
}

func TestTemplatesWithoutClinicNameOrExpiry(t *testing.T) {
	m := Invitation(" ", "https://p.example/invite?token=x", time.Time{})
	if m.Subject != "Your clinic invites you to its patient portal" {
		t.Fatalf("subject %q", m.Subject)
	}
	if strings.Contains(m.Text, "until") || !strings.Contains(m.Text, "valid for 24 hours.") {
		t.Fatalf("text:\n%s", m.Text)
	}
}

// The emails say nothing about a patient: the template data has only the
// clinic, the link and the expiry, so a name given nowhere cannot appear.
func TestTemplatesCarryNoPatientData(t *testing.T) {
	for _, m := range []Message{
		Invitation("Clinic", "https://p.example/invite?token=x", expires),
		PasswordReset("Clinic", "https://p.example/reset-password?token=x", expires),
	} {
		for _, word := range []string{"patient's", "appointment", "diagnos", "date of birth", "{{"} {
			if strings.Contains(strings.ToLower(m.Text+m.HTML), word) {
				t.Errorf("%q mentions %q", m.Subject, word)
			}
		}
	}
}
