package commands_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/portico-health/portico/commands"
	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/internal/stripepay"
	"github.com/portico-health/portico/internal/testapp"
)

// interleavedStore runs before, once, just ahead of the first append it is
// asked for: another process's commands land between this one's load and
// its append.
type interleavedStore struct {
	eventstore.Store
	once   sync.Once
	before func()
}

func (s *interleavedStore) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	s.once.Do(s.before)
	return s.Store.Append(ctx, stream, expected, events...)
}

// A duplicate delivery of a charge.refunded that loaded the account before
// the success and the first delivery of the refund were stored decides
// [PaymentRecorded, PaymentRefunded]; the first delivery, which saw the
// success, stored PaymentRefunded alone under one of the same ids. That is a
// concurrent change: the duplicate decides again and records nothing, it is
// not a 500 that makes Stripe retry.
func TestDuplicateRefundRacingItsSuccessDecidesAgain(t *testing.T) {
	a := testapp.New(t)
	ctx := context.Background()
	boot, err := a.Commands.Bootstrap(ctx, commands.Bootstrap{ClinicName: "Harbor Therapy", AdminEmail: "admin@harbor.example", AdminPassword: "correct horse battery"})
	if err != nil {
		t.Fatal(err)
	}
	admin := commands.Meta{Actor: commands.Actor{ID: boot.AdminID.String(), Kind: "staff", Role: "admin", ClinicID: boot.ClinicID}}
	pid, err := a.Commands.RegisterPatient(ctx, admin, commands.RegisterPatient{FirstName: "Mia", LastName: "Rivera", DateOfBirth: "2018-05-01"})
	if err != nil {
		t.Fatal(err)
	}
	payment := uuid.New()
	at := time.Now().UTC().Truncate(time.Second)
	outcome := func(id, typ string) stripepay.Outcome {
		return stripepay.Outcome{EventID: id, Type: typ, Created: at, PaymentID: payment, PatientID: pid, ClinicID: boot.ClinicID,
			PaymentIntentID: "pi_1", ChargeID: "ch_1", AmountCents: 10000, RefundedCents: 4000, Currency: "USD", CardBrand: "visa", CardLast4: "4242"}
	}
	succeeded, refunded := outcome("evt_succeeded", stripepay.EventSucceeded), outcome("evt_refunded", stripepay.EventRefunded)

	store := &interleavedStore{Store: a.Store, before: func() {
		for _, o := range []stripepay.Outcome{succeeded, refunded} {
			if _, err := a.Commands.RecordStripeEvent(ctx, "", o); err != nil {
				t.Errorf("the other process's %s: %v", o.EventID, err)
			}
		}
	}}
	duplicate := commands.New(store, a.Pool)
	recorded, err := duplicate.RecordStripeEvent(ctx, "", refunded)
	if err != nil {
		t.Fatalf("the duplicate refund: %v, want it to decide again and record nothing", err)
	}
	if recorded {
		t.Error("the duplicate refund says it recorded something")
	}
	acct, err := a.Commands.BillingAccount(ctx, pid)
	if err != nil {
		t.Fatal(err)
	}
	p := acct.Payments[payment]
	if p == nil || p.Recorded == nil || p.RefundedCents != 4000 || acct.Balance("USD") != -6000 {
		t.Fatalf("account = %+v, balance %d; want one payment of 10000 with 4000 refunded (balance -6000)", p, acct.Balance("USD"))
	}
	var types []string
	for _, e := range allEvents(t, a) {
		if e.Stream == "billing-"+pid.String() {
			types = append(types, e.Type)
		}
	}
	if len(types) != 2 || types[0] != "PaymentRecorded" || types[1] != "PaymentRefunded" {
		t.Fatalf("billing events = %v, want PaymentRecorded PaymentRefunded", types)
	}
}
