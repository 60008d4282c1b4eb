package testproc

import "testing"

func TestRequired(t *testing.T) {
	t.Setenv("CI", "")
	t.Setenv("PORTICO_REQUIRE_MAILPIT", "")
	if Required() {
		t.Fatal("required without CI")
	}
	t.Setenv("CI", "true")
	if !Required() {
		t.Fatal("not required on CI")
	}
	t.Setenv("CI", "")
	t.Setenv("PORTICO_REQUIRE_MAILPIT", "1")
	if !Required() {
		t.Fatal("not required with PORTICO_REQUIRE_MAILPIT=1")
	}
}
