package stripepay_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/portico-health/portico/internal/stripepay"
	"github.com/portico-health/portico/internal/teststripe"
)

func TestCreatePaymentIntentAgainstStripeMock(t *testing.T) {
	m := teststripe.Start(t)
	c, err := stripepay.New(stripepay.Config{SecretKey: teststripe.SecretKey, WebhookSecret: teststripe.WebhookSecret, APIBase: m.URL()})
	if err != nil {
		t.Fatal(err)
	}
	pid := uuid.New()
	in, err := c.CreatePaymentIntent(context.Background(), stripepay.IntentRequest{
		PaymentID: pid, PatientID: uuid.New(), ClinicID: uuid.New(), AmountCents: 4500, Currency: "USD", Description: "Harbor",
	})
	if err != nil {
		t.Fatal(err)
	}
	if in.ID == "" || in.ClientSecret == "" {
		t.Fatalf("intent = %+v", in)
	}
	if got := stripepay.IdempotencyKey(pid); got != "portico-payment-"+pid.String() {
		t.Fatalf("idempotency key = %q", got)
	}
}

func TestVerifyRefusesBadAndOldSignatures(t *testing.T) {
	c, err := stripepay.New(stripepay.Config{SecretKey: "sk_test_x", WebhookSecret: teststripe.WebhookSecret})
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte(`{"id":"evt_1","object":"event","type":"payment_intent.succeeded","created":1700000000,
		"data":{"object":{"id":"pi_1","object":"payment_intent","amount":500,"amount_received":500,"currency":"usd",
		"metadata":{"payment_id":"` + uuid.NewString() + `"}}}}`)
	o, err := c.Verify(payload, teststripe.Sign(payload, time.Now()))
	if err != nil || o.PaymentIntentID != "pi_1" || o.AmountCents != 500 || o.Currency != "USD" || o.PaymentID == uuid.Nil {
		t.Fatalf("verify = %+v, %v", o, err)
	}
	for name, header := range map[string]string{
		"none":     "",
		"old":      teststripe.Sign(payload, time.Now().Add(-10*time.Minute)),
		"tampered": teststripe.Sign(append([]byte(" "), payload...), time.Now()),
	} {
		if _, err := c.Verify(payload, header); !errors.Is(err, stripepay.ErrSignature) {
			t.Errorf("%s signature: %v, want ErrSignature", name, err)
		}
	}
}
