package linktoken

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func keys(t *testing.T, b byte) *Keys {
	t.Helper()
	k, err := New(bytes.Repeat([]byte{b}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestRoundTripAndRefusals(t *testing.T) {
	k := keys(t, 1)
	subject, nonce := uuid.New(), uuid.New()
	exp := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	tok := k.Make(PurposeReset, subject, nonce, exp)
	if strings.ContainsAny(tok, "+/=") {
		t.Fatalf("token %q is not URL-safe", tok)
	}
	c, err := k.Parse(PurposeReset, tok)
	if err != nil || c.Subject != subject || c.Nonce != nonce || !c.Expires.Equal(exp) {
		t.Fatalf("Parse = %+v, %v", c, err)
	}
	if _, err := k.Parse(PurposeInvitation, tok); err != ErrInvalid {
		t.Errorf("another purpose: %v, want ErrInvalid", err)
	}
	if _, err := keys(t, 2).Parse(PurposeReset, tok); err != ErrInvalid {
		t.Errorf("another key: %v, want ErrInvalid", err)
	}
	// Flip each character: every forgery is refused.
	for i := range tok {
		b := []byte(tok)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		if _, err := k.Parse(PurposeReset, string(b)); err != ErrInvalid {
			t.Fatalf("changed at %d: %v, want ErrInvalid", i, err)
		}
	}
	for _, bad := range []string{"", "x", tok + "A", tok[:len(tok)-1]} {
		if _, err := k.Parse(PurposeReset, bad); err != ErrInvalid {
			t.Errorf("Parse(%q) = %v", bad, err)
		}
	}
}

func TestKeyRules(t *testing.T) {
	if _, err := New(make([]byte, 16)); err == nil {
		t.Error("a 128-bit key was accepted")
	}
	hexKey := strings.Repeat("ab", 32)
	if b, err := ParseKey(hexKey); err != nil || len(b) != 32 {
		t.Errorf("ParseKey(hex) = %d bytes, %v", len(b), err)
	}
	if _, err := ParseKey("short"); err == nil {
		t.Error("a short key was accepted")
	}
}
