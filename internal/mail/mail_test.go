package mail

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestRedact(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"https://p.example/invite?token=abc-123_XYZ", "https://p.example/invite?token=REDACTED"},
		{"https://p.example/invite?token=abc&next=/home", "https://p.example/invite?token=REDACTED&next=/home"},
		{"https://p.example/r?a=1&token=abc#frag", "https://p.example/r?a=1&token=REDACTED#frag"},
		{`<a href="https://p.example/invite?token=abc">x</a>`, `<a href="https://p.example/invite?token=REDACTED">x</a>`},
		{`href='/x?token=abc'`, `href='/x?token=REDACTED'`},
		{"https://p.example/x?a=1&amp;token=abc&amp;b=2", "https://p.example/x?a=1&amp;token=REDACTED&amp;b=2"},
		{"open https://p.example/invite?token=abc. Then", "open https://p.example/invite?token=REDACTED Then"},
		{"(https://p.example/invite?token=abc)", "(https://p.example/invite?token=REDACTED)"},
		{"two: ?token=a and ?TOKEN=b", "two: ?token=REDACTED and ?TOKEN=REDACTED"},
		{"?reset_token=a&access_token=b", "?reset_token=REDACTED&access_token=REDACTED"},
		{"next=%2Finvite%3Ftoken%3Dabc", "next=%2Finvite%3Ftoken%3DREDACTED"},
		{"line1?token=abc\nline2", "line1?token=REDACTED\nline2"},
		{"no token here, token= empty", "no token here, token= empty"},
		{"", ""},
	} {
		if got := Redact(c.in); got != c.want {
			t.Errorf("Redact(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestRedactRemovesEveryTokenOfTheTemplates(t *testing.T) {
	const secret = "s3cr3t-T0ken_value"
	for _, m := range []Message{
		Invitation("Clinic", "https://p.example/invite?token="+secret, time.Now()),
		PasswordReset("Clinic", "https://p.example/reset-password?token="+secret, time.Now()),
	} {
		for _, body := range []string{m.Text, m.HTML} {
			if r := Redact(body); strings.Contains(r, secret) || strings.Contains(r, "s3cr3t") {
				t.Fatalf("token survives redaction:\n%s", r)
			}
		}
	}
}

func TestMessageIDValue(t *testing.T) {
	for _, c := range []struct{ id, domain, want string }{
		{"0191c5a2-7e4b-7c1e-9f1a-2b3c4d5e6f70", "clinic.example", "0191c5a2-7e4b-7c1e-9f1a-2b3c4d5e6f70@clinic.example"},
		{"<abc@host.example>", "clinic.example", "abc@host.example"},
		{"invitation-42:3", "clinic.example", "invitation-42_3@clinic.example"},
		{"a b\"c", "", "a_b_c@portico.invalid"},
		{".a..b.", "x.example", "a.b@x.example"},
		{"@", "x.example", "_@portico.invalid"},
	} {
		if got := messageIDValue(c.id, c.domain); got != c.want {
			t.Errorf("messageIDValue(%q, %q) = %q, want %q", c.id, c.domain, got, c.want)
		}
		if got := messageIDValue(c.id, c.domain); got != messageIDValue(c.id, c.domain) {
			t.Errorf("not stable: %q", got)
		}
	}
}

func TestLogSenderRedactsAndSendsNothing(t *testing.T) {
	var buf bytes.Buffer
	s := NewLog(slog.New(slog.NewTextHandler(&buf, nil)))
	m := Invitation("Sunrise Therapy", "https://portal.example/invite?token=SECRET123", time.Date(2026, 1, 2, 15, 4, 0, 0, time.UTC))
	m.To, m.ID = "parent@example.com", "evt-1"
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"p***@example.com", "Sunrise Therapy invites you to its patient portal", "token=REDACTED", "evt-1", "level=INFO"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "SECRET123") {
		t.Fatalf("log has the token:\n%s", out)
	}
	if strings.Contains(out, "parent@example.com") {
		t.Fatalf("log has the whole address:\n%s", out)
	}
	if strings.Count(out, "\n") != 1 {
		t.Fatalf("want one log record:\n%s", out)
	}
}
