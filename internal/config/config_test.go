package config

import (
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaultsAreValidAndMatchTheContract(t *testing.T) {
	c, err := FromEnv(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:8080" || c.EventStore != "postgres" ||
		c.DatabaseURL != "postgres://postgres@127.0.0.1:5432/portico?sslmode=disable" ||
		c.PublicURL != "http://127.0.0.1:8080" || c.EmailFrom != "portal@localhost" {
		t.Fatalf("defaults differ from API.md: %+v", c)
	}
}

func TestBadSettingsAreNamed(t *testing.T) {
	_, err := FromEnv(env(map[string]string{
		"PORTAL_EVENTSTORE": "esdb",
		"PORTAL_HTTP_ADDR":  "nope",
		"PORTAL_PUBLIC_URL": "ftp://x",
		"PORTAL_SMTP_URL":   "http://mail",
	}))
	if err == nil {
		t.Fatal("bad settings accepted")
	}
	for _, name := range []string{"PORTAL_ESDB_URL", "PORTAL_HTTP_ADDR", "PORTAL_PUBLIC_URL", "PORTAL_SMTP_URL"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
	if _, err := FromEnv(env(map[string]string{"PORTAL_EVENTSTORE": "kafka"})); err == nil || !strings.Contains(err.Error(), "PORTAL_EVENTSTORE") {
		t.Errorf("unknown event store accepted: %v", err)
	}
	if _, err := FromEnv(env(map[string]string{"PORTAL_EVENTSTORE": "esdb", "PORTAL_ESDB_URL": "esdb://127.0.0.1:2113?tls=false"})); err != nil {
		t.Errorf("esdb with url refused: %v", err)
	}
}

func TestASecretKeyIsNeverTakenForThePublishableOne(t *testing.T) {
	_, err := FromEnv(env(map[string]string{"PORTAL_STRIPE_PUBLISHABLE_KEY": "sk_test_123"}))
	if err == nil || !strings.Contains(err.Error(), "PORTAL_STRIPE_PUBLISHABLE_KEY") {
		t.Fatalf("a secret key would reach every browser; got %v", err)
	}
	c, err := FromEnv(env(map[string]string{"PORTAL_STRIPE_PUBLISHABLE_KEY": "pk_test_123"}))
	if err != nil || c.StripePublishableKey != "pk_test_123" {
		t.Fatalf("publishable key not read: %+v %v", c.StripePublishableKey, err)
	}
}

func TestTimeZoneIsAnIANAName(t *testing.T) {
	for _, bad := range []string{"Mars/Olympus", "Local", "UTC+5 or so"} {
		if _, err := FromEnv(env(map[string]string{"PORTAL_TIME_ZONE": bad})); err == nil || !strings.Contains(err.Error(), "PORTAL_TIME_ZONE") {
			t.Errorf("PORTAL_TIME_ZONE=%q accepted: %v", bad, err)
		}
	}
	c, err := FromEnv(env(map[string]string{"PORTAL_TIME_ZONE": "America/Chicago"}))
	if err != nil || c.Location().String() != "America/Chicago" {
		t.Fatalf("America/Chicago = %v, %v", c.Location(), err)
	}
	if c, _ := FromEnv(env(nil)); c.Location() != time.Local {
		t.Errorf("unset: %v, want the server's local zone", c.Location())
	}
}
