// Package password hashes and checks passwords with argon2id.
package password

import (
	"unicode/utf8"

	"github.com/alexedwards/argon2id"
)

// params follow OWASP's argon2id minimum (19 MiB, 2 passes, 1 lane), which
// DESIGN.md fixes as our floor.
var params = &argon2id.Params{Memory: 19 * 1024, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// MinLength and MaxLength bound a password in characters. No composition
// rules: length and a check against common passwords do more good.
const (
	MinLength = 8
	MaxLength = 256
)

// Problem says why a password is refused, or "" when it is acceptable: it
// must have MinLength to MaxLength characters and not be on the shipped list
// of common passwords (IsCommon, case-insensitive).
func Problem(pw string) string {
	n := utf8.RuneCountInString(pw)
	switch {
	case n < MinLength:
		return "at least 8 characters"
	case n > MaxLength:
		return "at most 256 characters"
	case IsCommon(pw):
		return TooCommon
	}
	return ""
}

// Hash returns the PHC-formatted argon2id hash of pw.
func Hash(pw string) (string, error) { return argon2id.CreateHash(pw, params) }

// Verify reports whether pw matches hash, in constant time.
func Verify(pw, hash string) bool {
	ok, err := argon2id.ComparePasswordAndHash(pw, hash)
	return err == nil && ok
}
