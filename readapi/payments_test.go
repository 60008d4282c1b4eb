package readapi_test

// Payments over HTTP against a real stripe-mock: invoices, card payments
// started through the portal, Stripe's webhooks signed with the test
// secret (repeated, reordered, forged), desk payments, receipts, Clinic
// Options, and that no secret is ever stored or logged.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/internal/config"
	"github.com/portico-health/portico/internal/teststripe"
)

// newPayingPortal is a portal with Stripe pointed at a stripe-mock of the
// test's own; enrolled says whether the clinic takes payments.
func newPayingPortal(t *testing.T, enrolled bool) *portal {
	t.Helper()
	mock := teststripe.Start(t)
	p := newPortal(t, func(c *config.Config) {
		c.StripeSecretKey = teststripe.SecretKey
		c.StripeWebhookKey = teststripe.WebhookSecret
		c.StripeAPIBase = mock.URL()
	})
	p.secrets = append(p.secrets, teststripe.SecretKey, teststripe.WebhookSecret)
	if enrolled {
		p.setOptions(map[string]any{"payment_processing_enabled": true})
	}
	return p
}

func (p *portal) setOptions(o map[string]any) {
	p.t.Helper()
	if code, body := p.staff.do("PUT", "/api/v1/clinic/options", o); code != http.StatusOK {
		p.t.Fatalf("set options = %d %v", code, body)
	}
}

func (p *portal) issueInvoice(pid string, cents ...int64) string {
	p.t.Helper()
	var lines []map[string]any
	for i, c := range cents {
		lines = append(lines, map[string]any{"description": fmt.Sprintf("Therapy session %d", i+1), "amount_cents": c})
	}
	code, body := p.staff.do("POST", "/api/v1/patients/"+pid+"/invoices", map[string]any{
		"lines": lines, "currency": "usd", "due_date": p.clock.Now().AddDate(0, 0, 30).Format(time.DateOnly)})
	if code != http.StatusCreated {
		p.t.Fatalf("issue invoice = %d %v", code, body)
	}
	return body["id"].(string)
}

// startPayment starts a card payment as the parent and returns the payment
// id, its PaymentIntent's id and the patient's clinic, from what was
// recorded.
func (p *portal) startPayment(parent client, pid string, cents int64, invoice string) (paymentID, intentID, clinicID string) {
	p.t.Helper()
	body := map[string]any{"amount_cents": cents, "currency": "USD"}
	if invoice != "" {
		body["invoice_id"] = invoice
	}
	code, res := parent.do("POST", "/api/v1/portal/patients/"+pid+"/payments", body)
	if code != http.StatusCreated {
		p.t.Fatalf("start payment = %d %v", code, res)
	}
	secret, _ := res["client_secret"].(string)
	if !strings.Contains(secret, "_secret_") {
		p.t.Fatalf("client secret = %q", secret)
	}
	p.secrets = append(p.secrets, secret)
	paymentID = res["payment_id"].(string)
	for _, e := range p.events("CardPaymentStarted") {
		var d struct {
			PaymentID string `json:"payment_id"`
			IntentID  string `json:"payment_intent_id"`
		}
		_ = json.Unmarshal(e.Data, &d)
		if d.PaymentID == paymentID {
			return paymentID, d.IntentID, e.Metadata.ClinicID
		}
	}
	p.t.Fatalf("no CardPaymentStarted for %s", paymentID)
	return
}

// events are the stored events of a type.
func (p *portal) events(typ string) []eventstore.Envelope {
	p.t.Helper()
	var out []eventstore.Envelope
	for after := eventstore.Position(0); ; {
		page, err := p.a.Store.ReadAll(context.Background(), after, 1000, eventstore.Filter{})
		if err != nil {
			p.t.Fatal(err)
		}
		for _, e := range page {
			if e.Type == typ {
				out = append(out, e)
			}
		}
		if len(page) < 1000 {
			return out
		}
		after = page[len(page)-1].Position
	}
}

// webhook posts a payload with a Stripe-Signature header.
func (p *portal) webhook(payload []byte, signature string) (int, map[string]any) {
	p.t.Helper()
	req := httptest.NewRequest("POST", "/api/v1/webhooks/stripe", strings.NewReader(string(payload)))
	req.Header.Set("Content-Type", "application/json")
	if signature != "" {
		req.Header.Set("Stripe-Signature", signature)
	}
	rec := httptest.NewRecorder()
	p.h.ServeHTTP(rec, req)
	var body map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	return rec.Code, body
}

func (p *portal) signedWebhook(payload []byte) (int, map[string]any) {
	return p.webhook(payload, teststripe.Sign(payload, time.Now()))
}

func stripeEvent(id, typ string, object map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{
		"id": id, "object": "event", "type": typ, "api_version": "2023-10-16", "created": time.Now().Unix(), "livemode": false,
		"data": map[string]any{"object": object},
	})
	return b
}

func metadata(paymentID, patientID, clinicID string) map[string]any {
	return map[string]any{"payment_id": paymentID, "patient_id": patientID, "clinic_id": clinicID}
}

func card() map[string]any {
	return map[string]any{"type": "card", "card": map[string]any{"brand": "visa", "last4": "4242"}}
}

func succeededEvent(evt, intent, paymentID, pid, clinicID string, cents int64) []byte {
	return stripeEvent(evt, "payment_intent.succeeded", map[string]any{
		"id": intent, "object": "payment_intent", "amount": cents, "amount_received": cents, "currency": "usd", "status": "succeeded",
		"metadata": metadata(paymentID, pid, clinicID),
		"latest_charge": map[string]any{"id": "ch_" + intent, "object": "charge", "amount": cents, "currency": "usd",
			"payment_method_details": card()},
	})
}

func refundedEvent(evt, intent, paymentID, pid, clinicID string, cents, refunded int64) []byte {
	return stripeEvent(evt, "charge.refunded", map[string]any{
		"id": "ch_" + intent, "object": "charge", "amount": cents, "amount_captured": cents, "amount_refunded": refunded,
		"currency": "usd", "paid": true, "refunded": refunded == cents, "status": "succeeded", "payment_intent": intent,
		"metadata": metadata(paymentID, pid, clinicID), "payment_method_details": card(),
	})
}

func (p *portal) waitBalance(c client, pid string, want int64) map[string]any {
	p.t.Helper()
	var last map[string]any
	eventually(p.t, fmt.Sprintf("a balance of %d cents", want), func() bool {
		code, body := c.do("GET", "/api/v1/portal/patients/"+pid+"/balance", nil)
		last = body
		if code != http.StatusOK {
			return false
		}
		for _, b := range body["balances"].([]any) {
			m := b.(map[string]any)
			if m["currency"] == "USD" {
				return int64(m["balance_cents"].(float64)) == want
			}
		}
		return false
	})
	return last
}

func (p *portal) paymentState(c client, pid, paymentID string) map[string]any {
	p.t.Helper()
	_, body := c.do("GET", "/api/v1/portal/patients/"+pid+"/payments", nil)
	for _, x := range body["payments"].([]any) {
		if m := x.(map[string]any); m["id"] == paymentID {
			return m
		}
	}
	return nil
}

func TestCardPaymentDeliveredTenTimesRecordsOnceWithAReceipt(t *testing.T) {
	p := newPayingPortal(t, true)
	parent, pid, _ := p.parentOfTwo("pay@family.example")
	invoice := p.issueInvoice(pid, 3000, 1500)
	p.waitBalance(parent, pid, 4500)

	paymentID, intent, clinicID := p.startPayment(parent, pid, 4500, invoice)
	if st := p.paymentState(parent, pid, paymentID); st != nil && st["state"] != "pending" {
		t.Fatalf("a started payment = %v", st)
	}
	payload := succeededEvent("evt_succeeded_1", intent, paymentID, pid, clinicID, 4500)
	recorded := 0
	for i := 0; i < 10; i++ {
		code, body := p.signedWebhook(payload)
		if code != http.StatusOK {
			t.Fatalf("delivery %d = %d %v", i+1, code, body)
		}
		if body["recorded"] == true {
			recorded++
		}
	}
	if recorded != 1 {
		t.Errorf("%d deliveries said they recorded, want 1", recorded)
	}
	if n := len(p.events("PaymentRecorded")); n != 1 {
		t.Fatalf("%d PaymentRecorded events, want 1", n)
	}
	p.waitBalance(parent, pid, 0)
	eventually(t, "the invoice paid", func() bool {
		_, body := parent.do("GET", "/api/v1/portal/patients/"+pid+"/invoices", nil)
		list, _ := body["invoices"].([]any)
		return len(list) == 1 && list[0].(map[string]any)["status"] == "paid"
	})
	st := p.paymentState(parent, pid, paymentID)
	if st["state"] != "succeeded" || st["card_last4"] != "4242" || st["receipt_number"] == nil {
		t.Fatalf("payment = %v", st)
	}
	text := parent.pdfTextAt("/api/v1/portal/patients/" + pid + "/payments/" + paymentID + "/receipt")
	pdfSays(t, text, "Payment receipt", "45.00 USD", st["receipt_number"].(string), "Visa ending in 4242", "Noah Rivera", "Harbor Therapy", invoice)
	// Staff print it too, and see the account.
	pdfSays(t, p.staff.pdfTextAt("/api/v1/patients/"+pid+"/payments/"+paymentID+"/receipt"), "45.00 USD")
	if code, body := p.staff.do("GET", "/api/v1/patients/"+pid+"/account", nil); code != http.StatusOK || len(body["payments"].([]any)) != 1 {
		t.Fatalf("staff account = %d %v", code, body)
	}
	p.assertNoSecrets()
}

func TestRefundBeforeSuccessEndsInTheRightBalance(t *testing.T) {
	p := newPayingPortal(t, true)
	parent, pid, _ := p.parentOfTwo("refund@family.example")
	p.issueInvoice(pid, 10000)
	paymentID, intent, clinicID := p.startPayment(parent, pid, 10000, "")

	refund := refundedEvent("evt_refund_1", intent, paymentID, pid, clinicID, 10000, 4000)
	if code, body := p.signedWebhook(refund); code != http.StatusOK || body["recorded"] != true {
		t.Fatalf("refund first = %d %v", code, body)
	}
	if code, body := p.signedWebhook(succeededEvent("evt_success_1", intent, paymentID, pid, clinicID, 10000)); code != http.StatusOK || body["recorded"] != false {
		t.Fatalf("success after its refund = %d %v", code, body)
	}
	// The same refund again, and an older, smaller report of it.
	p.signedWebhook(refund)
	p.signedWebhook(refundedEvent("evt_refund_0", intent, paymentID, pid, clinicID, 10000, 2500))
	p.waitBalance(parent, pid, 4000)
	if a, b := len(p.events("PaymentRecorded")), len(p.events("PaymentRefunded")); a != 1 || b != 1 {
		t.Fatalf("%d PaymentRecorded and %d PaymentRefunded, want 1 and 1", a, b)
	}
	// The rest refunded later: the balance owes the whole invoice again.
	p.signedWebhook(refundedEvent("evt_refund_2", intent, paymentID, pid, clinicID, 10000, 10000))
	p.waitBalance(parent, pid, 10000)
	eventually(t, "the payment refunded", func() bool {
		st := p.paymentState(parent, pid, paymentID)
		return st != nil && st["state"] == "refunded"
	})
	// A failed attempt reported late changes nothing of the state.
	fail := stripeEvent("evt_failed_1", "payment_intent.payment_failed", map[string]any{
		"id": intent, "object": "payment_intent", "amount": 10000, "currency": "usd", "metadata": metadata(paymentID, pid, clinicID),
		"last_payment_error": map[string]any{"code": "card_declined", "decline_code": "insufficient_funds", "message": "Your card has insufficient funds."},
	})
	if code, body := p.signedWebhook(fail); code != http.StatusOK {
		t.Fatalf("failed = %d %v", code, body)
	}
	if st := p.paymentState(parent, pid, paymentID); st["state"] != "refunded" {
		t.Fatalf("after a late failure: %v", st)
	}
	p.assertNoSecrets()
}

func TestFailedAttemptThenSuccess(t *testing.T) {
	p := newPayingPortal(t, true)
	parent, pid, _ := p.parentOfTwo("retry@family.example")
	p.issueInvoice(pid, 2000)
	paymentID, intent, clinicID := p.startPayment(parent, pid, 2000, "")
	fail := stripeEvent("evt_failed_a", "payment_intent.payment_failed", map[string]any{
		"id": intent, "object": "payment_intent", "amount": 2000, "currency": "usd", "metadata": metadata(paymentID, pid, clinicID),
		"last_payment_error": map[string]any{"code": "card_declined", "message": "Your card was declined."},
	})
	for i := 0; i < 3; i++ {
		p.signedWebhook(fail)
	}
	if n := len(p.events("PaymentAttemptFailed")); n != 1 {
		t.Fatalf("%d PaymentAttemptFailed, want 1", n)
	}
	eventually(t, "the payment failed", func() bool {
		st := p.paymentState(parent, pid, paymentID)
		return st != nil && st["state"] == "failed"
	})
	if code, _, _ := parent.fetchBytes("GET", "/api/v1/portal/patients/"+pid+"/payments/"+paymentID+"/receipt", nil); code != http.StatusNotFound {
		t.Fatalf("receipt of a failed payment = %d, want 404", code)
	}
	p.signedWebhook(succeededEvent("evt_ok_a", intent, paymentID, pid, clinicID, 2000))
	p.waitBalance(parent, pid, 0)
}

func TestForgedOrOldWebhooksRecordNothing(t *testing.T) {
	p := newPayingPortal(t, true)
	parent, pid, _ := p.parentOfTwo("forged@family.example")
	p.issueInvoice(pid, 5000)
	paymentID, intent, clinicID := p.startPayment(parent, pid, 5000, "")
	payload := succeededEvent("evt_forged", intent, paymentID, pid, clinicID, 5000)
	before := len(p.events("PaymentRecorded"))
	now := time.Now()
	mac := func(secret string) string {
		return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret, Timestamp: now}).Header
	}
	for name, sig := range map[string]string{
		"unsigned":      "",
		"garbage":       "t=1,v1=abc",
		"wrong secret":  mac("whsec_other"),
		"old timestamp": teststripe.Sign(payload, now.Add(-10*time.Minute)),
		"other payload": teststripe.Sign([]byte(`{"id":"evt_other"}`), now),
	} {
		code, body := p.webhook(payload, sig)
		if code != http.StatusBadRequest || body["code"] != "signature_invalid" {
			t.Errorf("%s: %d %v, want 400 signature_invalid", name, code, body)
		}
	}
	if after := len(p.events("PaymentRecorded")); after != before {
		t.Fatalf("a forged webhook recorded a payment")
	}
	// Signed, but of a type Portico does not act on: acknowledged, nothing stored.
	code, body := p.signedWebhook(stripeEvent("evt_customer", "customer.created", map[string]any{"id": "cus_1", "object": "customer"}))
	if code != http.StatusOK || body["recorded"] != false {
		t.Fatalf("customer.created = %d %v", code, body)
	}
	// Signed, about no payment Portico knows: refused, nothing stored.
	code, body = p.signedWebhook(succeededEvent("evt_stranger", "pi_stranger", "", "", "", 5000))
	if code != http.StatusNotFound {
		t.Fatalf("a stranger's payment = %d %v", code, body)
	}
	p.waitBalance(parent, pid, 5000)
}

func TestBalanceOffHidesBalanceAndInvoicesNotReceipts(t *testing.T) {
	p := newPayingPortal(t, true)
	parent, pid, _ := p.parentOfTwo("desk@family.example")
	invoice := p.issueInvoice(pid, 8000)
	code, body := p.staff.do("POST", "/api/v1/patients/"+pid+"/payments", map[string]any{"amount_cents": 3000, "currency": "USD", "method": "check", "invoice_id": invoice})
	if code != http.StatusCreated {
		t.Fatalf("desk payment = %d %v", code, body)
	}
	desk := body["id"].(string)
	p.waitBalance(parent, pid, 5000)
	eventually(t, "the invoice partly paid", func() bool {
		_, body := parent.do("GET", "/api/v1/portal/patients/"+pid+"/invoices", nil)
		list, _ := body["invoices"].([]any)
		return len(list) == 1 && list[0].(map[string]any)["status"] == "partly_paid"
	})
	// The reporting views count it, and the reporting role may read them.
	eventually(t, "the reporting views", func() bool {
		var payments, open int64
		var bucket string
		err := p.a.Pool.QueryRow(context.Background(), `SELECT payments FROM reporting.payments_daily
			WHERE method = 'check' AND state = 'succeeded' AND currency = 'USD'`).Scan(&payments)
		if err != nil || payments != 1 {
			return false
		}
		err = p.a.Pool.QueryRow(context.Background(), `SELECT age_bucket, open_cents FROM reporting.open_balances_by_age`).Scan(&bucket, &open)
		return err == nil && bucket == "0-30" && open == 5000
	})
	for _, view := range []string{"reporting.payments_daily", "reporting.open_balances_by_age"} {
		var ok bool
		if err := p.a.Pool.QueryRow(context.Background(), `SELECT has_table_privilege('portico_reporting', $1, 'SELECT')`, view).Scan(&ok); err != nil || !ok {
			t.Errorf("portico_reporting cannot read %s: %v", view, err)
		}
	}
	p.setOptions(map[string]any{"show_balance_and_invoices": false})
	for _, path := range []string{"balance", "invoices"} {
		if st, body := parent.do("GET", "/api/v1/portal/patients/"+pid+"/"+path, nil); st != http.StatusNotFound || body["code"] != "not_found" {
			t.Errorf("%s with balance off = %d %v, want 404 not_found", path, st, body)
		}
	}
	text := parent.pdfTextAt("/api/v1/portal/patients/" + pid + "/payments/" + desk + "/receipt")
	pdfSays(t, text, "30.00 USD", "Check", invoice)
	if code, _ := parent.do("GET", "/api/v1/portal/patients/"+pid+"/payments", nil); code != http.StatusOK {
		t.Fatalf("payments with balance off = %d", code)
	}
}

func TestAmountsAndPrepayment(t *testing.T) {
	p := newPayingPortal(t, true)
	parent, pid, _ := p.parentOfTwo("amounts@family.example")
	p.issueInvoice(pid, 1000)
	p.waitBalance(parent, pid, 1000)
	for name, body := range map[string]map[string]any{
		"zero":           {"amount_cents": 0, "currency": "USD"},
		"negative":       {"amount_cents": -5, "currency": "USD"},
		"fractional":     {"amount_cents": 10.5, "currency": "USD"},
		"other currency": {"amount_cents": 500, "currency": "EUR"},
		"over balance":   {"amount_cents": 1001, "currency": "USD"},
	} {
		if code, res := parent.do("POST", "/api/v1/portal/patients/"+pid+"/payments", body); code != http.StatusBadRequest {
			t.Errorf("%s: %d %v, want 400", name, code, res)
		}
	}
	if code, res := p.staff.do("POST", "/api/v1/patients/"+pid+"/payments", map[string]any{"amount_cents": 1500, "currency": "USD", "method": "cash"}); code != http.StatusBadRequest {
		t.Fatalf("desk over balance = %d %v", code, res)
	}
	p.setOptions(map[string]any{"allow_prepayment": true})
	if code, res := p.staff.do("POST", "/api/v1/patients/"+pid+"/payments", map[string]any{"amount_cents": 1500, "currency": "USD", "method": "cash"}, "Idempotency-Key", "k1"); code != http.StatusCreated {
		t.Fatalf("desk prepayment = %d %v", code, res)
	}
	// The same request again records nothing more.
	p.staff.do("POST", "/api/v1/patients/"+pid+"/payments", map[string]any{"amount_cents": 1500, "currency": "USD", "method": "cash"}, "Idempotency-Key", "k1")
	p.waitBalance(parent, pid, -500)
	if n := len(p.events("PaymentRecorded")); n != 1 {
		t.Fatalf("%d PaymentRecorded, want 1", n)
	}
}

func TestClinicWithoutPaymentProcessingRefusesPayments(t *testing.T) {
	p := newPayingPortal(t, false)
	parent, pid, _ := p.parentOfTwo("none@family.example")
	wantDisabled := func(what string, code int, body map[string]any) {
		t.Helper()
		if code != http.StatusForbidden || body["code"] != "payment_processing_disabled" {
			t.Errorf("%s = %d %v, want 403 payment_processing_disabled", what, code, body)
		}
	}
	code, body := parent.do("POST", "/api/v1/portal/patients/"+pid+"/payments", map[string]any{"amount_cents": 100, "currency": "USD"})
	wantDisabled("card payment", code, body)
	code, body = p.staff.do("POST", "/api/v1/patients/"+pid+"/payments", map[string]any{"amount_cents": 100, "currency": "USD", "method": "cash"})
	wantDisabled("desk payment", code, body)
	code, body = p.staff.do("POST", "/api/v1/patients/"+pid+"/invoices", map[string]any{"lines": []map[string]any{{"description": "x", "amount_cents": 100}}, "currency": "USD", "due_date": "2030-01-01"})
	wantDisabled("invoice", code, body)
	for _, path := range []string{"balance", "invoices", "payments"} {
		code, body = parent.do("GET", "/api/v1/portal/patients/"+pid+"/"+path, nil)
		wantDisabled(path, code, body)
	}
	if n := len(p.events("PaymentRecorded")) + len(p.events("InvoiceIssued")) + len(p.events("CardPaymentStarted")); n != 0 {
		t.Fatalf("%d billing events stored", n)
	}
}

// An Idempotency-Key is the caller's and the route's, not the patient's: the
// same key sent for two patients makes an invoice and a payment for each,
// with ids of their own, and each account's balance counts its own.
func TestSameIdempotencyKeyForTwoPatientsBillsBoth(t *testing.T) {
	p := newPayingPortal(t, true)
	parent, first, second := p.parentOfTwo("keys@family.example")
	ids := map[string]bool{}
	for _, pid := range []string{first, second} {
		code, body := p.staff.do("POST", "/api/v1/patients/"+pid+"/invoices", map[string]any{
			"lines": []map[string]any{{"description": "Therapy session", "amount_cents": 6000}}, "currency": "USD", "due_date": "2030-01-01"},
			"Idempotency-Key", "form-1")
		if code != http.StatusCreated {
			t.Fatalf("invoice = %d %v", code, body)
		}
		ids[body["id"].(string)] = true
		code, body = p.staff.do("POST", "/api/v1/patients/"+pid+"/payments", map[string]any{"amount_cents": 1000, "currency": "USD", "method": "cash"},
			"Idempotency-Key", "form-2")
		if code != http.StatusCreated {
			t.Fatalf("desk payment = %d %v", code, body)
		}
		ids[body["id"].(string)] = true
	}
	if len(ids) != 4 {
		t.Fatalf("two invoices and two payments have %d distinct ids, want 4", len(ids))
	}
	p.waitBalance(parent, first, 5000)
	p.waitBalance(parent, second, 5000)
}
