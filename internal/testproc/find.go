package testproc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Required reports whether a missing test server fails the test instead of
// skipping it: CI=true or PORTICO_REQUIRE_MAILPIT=1 (.ci/run sets the latter).
func Required() bool {
	return os.Getenv("CI") == "true" || os.Getenv("PORTICO_REQUIRE_MAILPIT") == "1"
}

// Binary is the path of the test server name: from the variable env if set,
// else PATH, GOBIN or GOPATH/bin (where `go install` puts it). A missing one
// fails t when Required, else skips it saying how to install it.
func Binary(t testing.TB, env, name, installHint string) string {
	t.Helper()
	bin, err := find(env, name)
	if err != nil {
		if Required() {
			t.Fatalf("%v (required because CI=true or PORTICO_REQUIRE_MAILPIT=1); install it with %s", err, installHint)
		}
		t.Skipf("skipped: %v; install it with %s", err, installHint)
	}
	return bin
}

type found struct {
	once sync.Once
	bin  string
	err  error
}

var lookups sync.Map // name -> *found: each binary is looked for once per test binary

func find(env, name string) (string, error) {
	v, _ := lookups.LoadOrStore(name, &found{})
	f := v.(*found)
	f.once.Do(func() { f.bin, f.err = look(env, name) })
	return f.bin, f.err
}

func look(env, name string) (string, error) {
	if p := os.Getenv(env); p != "" {
		if isExecutable(p) {
			return p, nil
		}
		return "", fmt.Errorf("%s=%s is not an executable file", env, p)
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	var dirs []string
	if out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output(); err == nil {
		// One line each, GOBIN's empty when unset.
		lines := strings.Split(string(out), "\n")
		if gobin := strings.TrimSpace(lines[0]); gobin != "" {
			dirs = append(dirs, gobin)
		}
		if len(lines) > 1 {
			for _, gp := range filepath.SplitList(strings.TrimSpace(lines[1])) {
				dirs = append(dirs, filepath.Join(gp, "bin"))
			}
		}
	} else if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin")) // go's default GOPATH
	}
	for _, d := range dirs {
		if p := filepath.Join(d, name); isExecutable(p) {
			return p, nil
		}
	}
	return "", errors.New(name + " not found on PATH nor in " + strings.Join(dirs, ", "))
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}
