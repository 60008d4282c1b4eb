package password

import (
	_ "embed"
	"strings"
	"sync"
)

// commonList is the shipped list of common passwords: one a line, lowercase,
// each at least MinLength characters, most common first. It is derived from
// zxcvbn-ts (MIT); common-passwords.NOTICE says how, and carries the licence.
//
//go:embed common-passwords.txt
var commonList string

// TooCommon is Problem's reason for a password on the common list.
const TooCommon = "this password is too common; choose another"

// common is the list as a set, built on first use.
var common = sync.OnceValue(func() map[string]struct{} {
	set := make(map[string]struct{}, strings.Count(commonList, "\n")+1)
	for line := range strings.Lines(commonList) {
		if w := strings.TrimRight(line, "\r\n"); w != "" {
			set[w] = struct{}{}
		}
	}
	return set
})

// IsCommon reports whether pw is on the list of common passwords, ignoring
// case ("Password1" is as common as "password1").
func IsCommon(pw string) bool {
	_, ok := common()[strings.ToLower(pw)]
	return ok
}

// CommonCount is the number of passwords on the list.
func CommonCount() int { return len(common()) }
