package billing

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain"
)

func issue(t *testing.T, a *Account, patient uuid.UUID, cents ...int64) uuid.UUID {
	t.Helper()
	id := uuid.New()
	var lines []Line
	for _, c := range cents {
		lines = append(lines, Line{Description: "session", AmountCents: c})
	}
	if err := a.Issue(InvoiceIssued{InvoiceID: id, PatientID: patient, ClinicID: uuid.New(), Currency: "usd", Lines: lines, DueDate: "2030-01-31"}, "USD", time.Now()); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestAllocationRefundAndVoid(t *testing.T) {
	a := &Account{}
	patient := uuid.New()
	first := issue(t, a, patient, 3000)
	second := issue(t, a, patient, 2000, 500)
	if a.Balance("USD") != 5500 || a.Invoices[second].TotalCents != 2500 {
		t.Fatalf("balance %d, total %d", a.Balance("USD"), a.Invoices[second].TotalCents)
	}
	if _, err := a.CheckPayment(PaymentRequest{AmountCents: 6000, Currency: "USD"}, "USD", false); err == nil {
		t.Fatal("over the balance accepted")
	}
	if _, err := a.CheckPayment(PaymentRequest{AmountCents: 6000, Currency: "USD"}, "USD", true); err != nil {
		t.Fatalf("prepayment refused: %v", err)
	}
	pay := uuid.New()
	ok, err := a.Record(PaymentRecorded{PaymentID: pay, PatientID: patient, AmountCents: 4000, Currency: "USD", Method: MethodCash, Channel: ChannelDesk, InvoiceID: &second})
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if a.Invoices[second].Status() != "paid" || a.Invoices[first].Status() != "partly_paid" || a.Invoices[first].PaidCents != 1500 {
		t.Fatalf("statuses %s %s %d", a.Invoices[second].Status(), a.Invoices[first].Status(), a.Invoices[first].PaidCents)
	}
	if ok, _ := a.Record(PaymentRecorded{PaymentID: pay, PatientID: patient, AmountCents: 4000, Currency: "USD", Method: MethodCash, Channel: ChannelDesk}); ok {
		t.Fatal("a payment recorded twice")
	}
	if err := a.Void(first, ""); err == nil {
		t.Fatal("a partly paid invoice voided")
	}
	// Refund 2000 of it: taken back from the oldest invoice first allocated last.
	if ok, err := a.Refund(pay, 2000, "ch_1", "evt_1", time.Now()); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if a.Invoices[first].PaidCents != 0 || a.Invoices[second].PaidCents != 2000 || a.Balance("USD") != 3500 {
		t.Fatalf("after refund: %d %d balance %d", a.Invoices[first].PaidCents, a.Invoices[second].PaidCents, a.Balance("USD"))
	}
	if ok, _ := a.Refund(pay, 1500, "ch_1", "evt_0", time.Now()); ok {
		t.Fatal("an older, smaller refund total recorded")
	}
	if err := a.Void(first, "entered twice"); err != nil || a.Balance("USD") != 500 {
		t.Fatalf("void = %v, balance %d", err, a.Balance("USD"))
	}
	err = a.Issue(InvoiceIssued{InvoiceID: uuid.New(), Currency: "EUR", Lines: []Line{{Description: "", AmountCents: 0}}, DueDate: "soon"}, "USD", time.Now())
	if de, ok := domain.AsError(err); !ok || len(de.Fields) < 4 {
		t.Fatalf("bad invoice = %v", err)
	}
}
