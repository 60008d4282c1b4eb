package password

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestProblemRefusesCommonPasswords(t *testing.T) {
	for _, pw := range []string{"password1", "iloveyou", "Password1", "ILOVEYOU", "iLoveYou", "12345678", "qwertyuiop", "trustno1"} {
		if got := Problem(pw); got != TooCommon {
			t.Errorf("Problem(%q) = %q, want %q", pw, got, TooCommon)
		}
	}
}

func TestProblemKeepsTheLengthRules(t *testing.T) {
	for pw, want := range map[string]string{
		"":                          "at least 8 characters",
		"123456":                    "at least 8 characters", // common too, but the length says it first
		"abcdefg":                   "at least 8 characters",
		"ééééééé":                   "at least 8 characters", // 7 characters, 14 bytes
		strings.Repeat("x", 257):    "at most 256 characters",
		strings.Repeat("xq7", 85):   "",
		"ffdv-marigold-quench-4817": "",
	} {
		if got := Problem(pw); got != want {
			t.Errorf("Problem(%.20q…) = %q, want %q", pw, got, want)
		}
	}
}

func TestProblemAcceptsUncommonPasswords(t *testing.T) {
	for _, pw := range []string{
		"velvet otter juggles seventeen lanterns",
		"k9#Qm2vL!pX7",
		"correct horse battery", // a phrase with spaces: no listed password has one
		"password1 but longer and mine",
	} {
		if got := Problem(pw); got != "" {
			t.Errorf("Problem(%q) = %q, want acceptable", pw, got)
		}
	}
}

// The passwords the demo and the repository's tests set must stay acceptable,
// or the demo and those tests break. (internal/demo is not imported: it pulls
// in the command handlers.)
func TestDemoAndTestPasswordsAreNotCommon(t *testing.T) {
	for _, pw := range []string{
		"harbor-demo-admin", // internal/demo.AdminPassword
		"correct horse battery",
		"another long password",
		"long enough password",
		"long enough pw",
		"front desk password",
	} {
		if got := Problem(pw); got != "" {
			t.Errorf("Problem(%q) = %q, want acceptable", pw, got)
		}
	}
}

// The shipped list is what the notice says: one lowercase password a line,
// each at least MinLength characters, no repeats, and all of it loaded.
func TestCommonListIsWellFormed(t *testing.T) {
	lines := strings.Split(strings.TrimSuffix(commonList, "\n"), "\n")
	if len(lines) < 10000 {
		t.Fatalf("the list has %d lines; was it truncated?", len(lines))
	}
	seen := make(map[string]bool, len(lines))
	for i, w := range lines {
		switch {
		case utf8.RuneCountInString(w) < MinLength:
			t.Errorf("line %d %q is shorter than %d characters", i+1, w, MinLength)
		case w != strings.ToLower(w):
			t.Errorf("line %d %q is not lowercase", i+1, w)
		case strings.TrimSpace(w) != w || w == "":
			t.Errorf("line %d %q has surrounding space", i+1, w)
		case seen[w]:
			t.Errorf("line %d %q is a repeat", i+1, w)
		}
		seen[w] = true
	}
	if CommonCount() != len(lines) {
		t.Fatalf("CommonCount() = %d, want %d", CommonCount(), len(lines))
	}
	if lines[0] != "password" {
		t.Errorf("first line %q, want the most common, \"password\"", lines[0])
	}
}

func TestHashAndVerify(t *testing.T) {
	h, err := Hash("velvet otter juggles")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q does not carry the argon2id floor", h)
	}
	if !Verify("velvet otter juggles", h) || Verify("velvet otter juggle", h) || Verify("velvet otter juggles", "garbage") {
		t.Fatal("Verify disagrees with Hash")
	}
}

func BenchmarkProblem(b *testing.B) {
	CommonCount()
	for b.Loop() {
		Problem("velvet otter juggles seventeen lanterns")
	}
}
