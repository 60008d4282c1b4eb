// Package teststripe gives a test a real stripe-mock process
// (github.com/stripe/stripe-mock, pinned at v0.203.0), started on a free
// port and stopped when the test ends, and signs webhook payloads the way
// Stripe does.
//
// stripe-mock is found through PORTICO_STRIPE_MOCK, on PATH, then in
// $(go env GOBIN) and $(go env GOPATH)/bin. Without it the test is skipped
// with the reason, unless CI=true or PORTICO_REQUIRE_MAILPIT=1 (the switch
// that makes every test server mandatory), where it fails. Install it with:
//
//	go install github.com/stripe/stripe-mock@v0.203.0
package teststripe

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/portico-health/portico/internal/testproc"
)

// InstallHint is the command that installs the pinned stripe-mock.
const InstallHint = "go install github.com/stripe/stripe-mock@v0.203.0"

// Test credentials: stripe-mock accepts any key of the right shape.
const (
	SecretKey     = "sk_test_porticoMock123"
	WebhookSecret = "whsec_portico_test_secret"
)

// Mock is a running stripe-mock owned by one test.
type Mock struct {
	base string
}

// URL is the API base for PORTAL_STRIPE_API_BASE.
func (m *Mock) URL() string { return m.base }

// Start runs a stripe-mock for t and returns once it answers.
func Start(t testing.TB) *Mock {
	t.Helper()
	bin := testproc.Binary(t, "PORTICO_STRIPE_MOCK", "stripe-mock", InstallHint)
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("teststripe: %v", err)
		}
		tlsPort, err := freePort()
		if err != nil {
			t.Fatalf("teststripe: %v", err)
		}
		m := &Mock{base: "http://127.0.0.1:" + strconv.Itoa(port)}
		if lastErr = m.run(t, bin, port, tlsPort); lastErr == nil {
			return m
		}
	}
	t.Fatalf("teststripe: stripe-mock did not start: %v", lastErr)
	return nil
}

// run starts stripe-mock on port, and its HTTPS listener (unused, but
// always on) on tlsPort, so that tests in parallel do not share its default.
func (m *Mock) run(t testing.TB, bin string, port, tlsPort int) error {
	return testproc.Run(t, "stripe-mock", bin,
		[]string{"-http-addr", "127.0.0.1:" + strconv.Itoa(port), "-https-addr", "127.0.0.1:" + strconv.Itoa(tlsPort)}, m.ready)
}

func (m *Mock) ready() bool {
	req, _ := http.NewRequest("GET", m.base+"/v1/payment_intents", nil)
	req.Header.Set("Authorization", "Bearer "+SecretKey)
	resp, err := (&http.Client{Timeout: time.Second}).Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Sign is the Stripe-Signature header of payload signed with the test
// webhook secret at time at (v1 scheme, as Stripe signs).
func Sign(payload []byte, at time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: WebhookSecret, Timestamp: at}).Header
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
