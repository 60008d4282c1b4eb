// Package mail sends Portico's outbound email: invitations and password
// resets (PRODUCT.md). Emails carry no PHI — only who sent them and a link —
// and the link's token is a secret, so nothing here writes a body or a token
// into a log or an error.
//
// Use NewSMTP when PORTAL_SMTP_URL is set and NewLog when it is not; build
// the messages with Invitation and PasswordReset, then set To and ID.
package mail

import (
	"context"
	"regexp"
	"strings"
)

// Message is one email to one recipient.
type Message struct {
	To      string // the recipient's address
	Subject string
	Text    string // the text/plain body
	HTML    string // the text/html alternative; optional
	// ID is a stable message id, e.g. derived from the id of the event that
	// caused the email, sent as the Message-ID header ("<ID@sender-domain>",
	// or as is when it already has an @) so that a resend after a crash
	// can be recognised as a duplicate. Empty means a random id.
	ID string
}

// Sender delivers messages. Send returns once the message is handed over
// (to the SMTP server, or to the log); its errors never contain the body.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// tokenValue matches the value of every query parameter whose name ends in
// "token" — "token=", "reset_token=", also percent-encoded ("token%3D") — up
// to the next delimiter of a URL, an HTML attribute or a sentence.
var tokenValue = regexp.MustCompile(`(?i)(token(?:=|%3D))[^&\s"'<>#;,)\]]+`)

// Redact replaces every token query value in s with REDACTED:
// "https://p.example/invite?token=abc&x=1" becomes
// "https://p.example/invite?token=REDACTED&x=1".
func Redact(s string) string {
	return tokenValue.ReplaceAllString(s, "${1}REDACTED")
}

// messageIDValue is the Message-ID header value (without angle brackets)
// for id, with domain as its right-hand side when id has none. Characters
// that may not stand in a Message-ID are replaced by "_", so the result is
// stable for a given id.
func messageIDValue(id, domain string) string {
	id = strings.TrimSpace(id)
	id = strings.TrimSuffix(strings.TrimPrefix(id, "<"), ">")
	left, right := id, domain
	if i := strings.LastIndexByte(id, '@'); i >= 0 {
		left, right = id[:i], id[i+1:]
	}
	left, right = dotAtom(left), dotAtom(right)
	if right == "" {
		right = "portico.invalid"
	}
	if left == "" {
		left = "_"
	}
	return left + "@" + right
}

// dotAtom maps s onto RFC 5322 dot-atom-text: atext characters separated by
// single dots.
func dotAtom(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9',
			strings.ContainsRune("!#$%&'*+-/=?^_`{|}~", r):
			b.WriteRune(r)
		case r == '.':
			b.WriteByte('.')
		default:
			b.WriteByte('_')
		}
	}
	parts := strings.Split(b.String(), ".")
	kept := parts[:0]
	for _, p := range parts {
		if p != "" {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, ".")
}

// oneLine reports whether s can go into a header as it is.
func oneLine(s string) bool { return !strings.ContainsAny(s, "\r\n") }
