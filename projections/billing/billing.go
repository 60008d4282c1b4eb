// Package billing is the read model of patients' accounts: invoices with
// what is paid on each, payments with their state, and the balance of each
// currency; and the reporting views of payments and open balances.
package billing

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/billing"
	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/projections"
)

// Projection keeps rm.invoices and rm.payments.
type Projection struct{}

var _ projections.Projection = Projection{}

func (Projection) Name() string         { return "billing" }
func (Projection) Categories() []string { return []string{billing.Category} }
func (Projection) Critical() bool       { return false }
func (Projection) Tables() []string     { return []string{"invoices", "payments"} }

func (Projection) Setup(_ context.Context, w *projections.Writer) error {
	w.Queue(`CREATE TABLE ` + w.T("invoices") + ` (
		invoice_id  uuid        PRIMARY KEY,
		patient_id  uuid        NOT NULL,
		clinic_id   uuid        NOT NULL,
		currency    text        NOT NULL,
		lines       jsonb       NOT NULL,
		total_cents bigint      NOT NULL,
		paid_cents  bigint      NOT NULL DEFAULT 0,
		due_date    date        NOT NULL,
		issued_at   timestamptz NOT NULL,
		position    bigint      NOT NULL,
		voided_at   timestamptz,
		void_reason text,
		version     bigint      NOT NULL)`)
	w.Queue(`CREATE INDEX ON ` + w.T("invoices") + ` (patient_id, issued_at DESC, position DESC)`)
	w.Queue(`CREATE INDEX ON ` + w.T("invoices") + ` (clinic_id, issued_at)`)
	w.Queue(`CREATE TABLE ` + w.T("payments") + ` (
		payment_id        uuid        PRIMARY KEY,
		patient_id        uuid        NOT NULL,
		clinic_id         uuid,
		amount_cents      bigint      NOT NULL DEFAULT 0,
		currency          text        NOT NULL DEFAULT '',
		method            text        NOT NULL DEFAULT 'card',
		channel           text        NOT NULL DEFAULT 'online',
		state             text        NOT NULL,
		invoice_id        uuid,
		payment_intent_id text,
		card_brand        text,
		card_last4        text,
		receipt_number    text,
		failure_code      text,
		refunded_cents    bigint      NOT NULL DEFAULT 0,
		created_at        timestamptz NOT NULL,
		succeeded_at      timestamptz,
		position          bigint      NOT NULL,
		version           bigint      NOT NULL)`)
	w.Queue(`CREATE INDEX ON ` + w.T("payments") + ` (patient_id, created_at DESC, position DESC)`)
	w.Queue(`CREATE INDEX ON ` + w.T("payments") + ` (payment_intent_id) WHERE payment_intent_id IS NOT NULL`)
	w.Queue(`CREATE INDEX ON ` + w.T("payments") + ` (clinic_id, created_at)`)
	return nil
}

// ReportingViews: payments per clinic, day, method and state; open
// balances by age (docs/reporting.md).
func (Projection) ReportingViews() []string {
	return []string{
		`CREATE OR REPLACE VIEW reporting.payments_daily AS
		SELECT clinic_id,
		       (created_at AT TIME ZONE 'UTC')::date AS day,
		       method, channel, state, currency,
		       count(*)                              AS payments,
		       coalesce(sum(amount_cents), 0)::bigint   AS amount_cents,
		       coalesce(sum(refunded_cents), 0)::bigint AS refunded_cents
		FROM rm.payments
		WHERE clinic_id IS NOT NULL
		GROUP BY clinic_id, (created_at AT TIME ZONE 'UTC')::date, method, channel, state, currency`,
		`CREATE OR REPLACE VIEW reporting.open_balances_by_age AS
		SELECT clinic_id, currency,
		       CASE WHEN age <= 30 THEN '0-30' WHEN age <= 60 THEN '31-60' WHEN age <= 90 THEN '61-90' ELSE '90+' END AS age_bucket,
		       count(*)                               AS invoices,
		       sum(total_cents - paid_cents)::bigint  AS open_cents
		FROM (SELECT clinic_id, currency, total_cents, paid_cents,
		             ((now() AT TIME ZONE 'UTC')::date - (issued_at AT TIME ZONE 'UTC')::date) AS age
		      FROM rm.invoices
		      WHERE voided_at IS NULL AND paid_cents < total_cents) i
		GROUP BY clinic_id, currency, 3`,
	}
}

func decode[T any](e eventstore.Envelope) (T, error) {
	var d T
	err := json.Unmarshal(e.Data, &d)
	return d, err
}

func (Projection) Apply(_ context.Context, w *projections.Writer, e eventstore.Envelope) error {
	inv, pay := w.T("invoices"), w.T("payments")
	at, pos, ver := e.Metadata.RecordedAt, int64(e.Position), e.Version
	allocate := func(allocs []billing.Allocation, sign int64) {
		for _, al := range allocs {
			w.Queue(`UPDATE `+inv+` SET paid_cents = paid_cents + $2, version = $3 WHERE invoice_id = $1 AND version < $3`,
				al.InvoiceID, sign*al.AmountCents, ver)
		}
	}
	switch e.Type {
	case billing.InvoiceIssued{}.EventType():
		d, err := decode[billing.InvoiceIssued](e)
		if err != nil {
			return err
		}
		lines, _ := json.Marshal(d.Lines)
		w.Queue(`INSERT INTO `+inv+` (invoice_id, patient_id, clinic_id, currency, lines, total_cents, due_date, issued_at, position, version)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (invoice_id) DO NOTHING`,
			d.InvoiceID, d.PatientID, d.ClinicID, d.Currency, string(lines), d.TotalCents, d.DueDate, at, pos, ver)
	case billing.InvoiceVoided{}.EventType():
		d, err := decode[billing.InvoiceVoided](e)
		if err != nil {
			return err
		}
		w.Queue(`UPDATE `+inv+` SET voided_at = $2, void_reason = nullif($3, ''), version = $4 WHERE invoice_id = $1 AND version < $4`,
			d.InvoiceID, at, d.Reason, ver)
	case billing.CardPaymentStarted{}.EventType():
		d, err := decode[billing.CardPaymentStarted](e)
		if err != nil {
			return err
		}
		w.Queue(`INSERT INTO `+pay+` (payment_id, patient_id, clinic_id, amount_cents, currency, method, channel, state, invoice_id, payment_intent_id, created_at, position, version)
			VALUES ($1, $2, $3, $4, $5, 'card', 'online', 'pending', $6, $7, $8, $9, $10) ON CONFLICT (payment_id) DO NOTHING`,
			d.PaymentID, d.PatientID, d.ClinicID, d.AmountCents, d.Currency, d.InvoiceID, d.PaymentIntentID, at, pos, ver)
	case billing.PaymentRecorded{}.EventType():
		d, err := decode[billing.PaymentRecorded](e)
		if err != nil {
			return err
		}
		w.Queue(`INSERT INTO `+pay+` AS p (payment_id, patient_id, clinic_id, amount_cents, currency, method, channel, state, invoice_id,
				payment_intent_id, card_brand, card_last4, receipt_number, created_at, succeeded_at, position, version)
			VALUES ($1, $2, $3, $4, $5, $6, $7, 'succeeded', $8, nullif($9, ''), nullif($10, ''), nullif($11, ''), $12, $13, $14, $15, $16)
			ON CONFLICT (payment_id) DO UPDATE SET clinic_id = excluded.clinic_id, amount_cents = excluded.amount_cents,
				currency = excluded.currency, method = excluded.method, channel = excluded.channel, state = 'succeeded',
				invoice_id = excluded.invoice_id, payment_intent_id = coalesce(excluded.payment_intent_id, p.payment_intent_id),
				card_brand = excluded.card_brand, card_last4 = excluded.card_last4, receipt_number = excluded.receipt_number,
				succeeded_at = excluded.succeeded_at, version = excluded.version
			WHERE p.version < excluded.version`,
			d.PaymentID, d.PatientID, d.ClinicID, d.AmountCents, d.Currency, d.Method, d.Channel, d.InvoiceID,
			d.PaymentIntentID, d.CardBrand, d.CardLast4, d.ReceiptNumber, at, d.ReceivedAt, pos, ver)
		allocate(d.Allocations, 1)
	case billing.PaymentAttemptFailed{}.EventType():
		d, err := decode[billing.PaymentAttemptFailed](e)
		if err != nil {
			return err
		}
		clinic, _ := uuid.Parse(e.Metadata.ClinicID)
		w.Queue(`INSERT INTO `+pay+` AS p (payment_id, patient_id, clinic_id, state, payment_intent_id, failure_code, created_at, position, version)
			VALUES ($1, $2, $3, 'failed', nullif($4, ''), nullif($5, ''), $6, $7, $8)
			ON CONFLICT (payment_id) DO UPDATE SET
				state = CASE WHEN p.state IN ('pending', 'failed') THEN 'failed' ELSE p.state END,
				failure_code = excluded.failure_code, version = excluded.version
			WHERE p.version < excluded.version`,
			d.PaymentID, d.PatientID, nullID(clinic), d.PaymentIntentID, d.FailureCode, at, pos, ver)
	case billing.PaymentRefunded{}.EventType():
		d, err := decode[billing.PaymentRefunded](e)
		if err != nil {
			return err
		}
		w.Queue(`UPDATE `+pay+` SET refunded_cents = $2,
				state = CASE WHEN $2 >= amount_cents THEN 'refunded' ELSE state END, version = $3
			WHERE payment_id = $1 AND version < $3`, d.PaymentID, d.RefundedTotalCents, ver)
		allocate(d.Allocations, -1)
	default:
		return projections.Unknown(e)
	}
	return nil
}

func nullID(id uuid.UUID) *uuid.UUID {
	if id == uuid.Nil {
		return nil
	}
	return &id
}

// Querier is a pool or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Balance is an account's balance in one currency.
type Balance struct {
	Currency      string `json:"currency"`
	BalanceCents  int64  `json:"balance_cents"`
	InvoicedCents int64  `json:"invoiced_cents"`
	PaidCents     int64  `json:"paid_cents"`
	RefundedCents int64  `json:"refunded_cents"`
}

// Balances are a patient's balances, one per currency used: invoices (not
// void) − payments received + refunds.
func Balances(ctx context.Context, q Querier, patientID uuid.UUID) ([]Balance, error) {
	rows, err := q.Query(ctx, `SELECT currency, sum(invoiced)::bigint, sum(paid)::bigint, sum(refunded)::bigint FROM (
			SELECT currency, total_cents AS invoiced, 0 AS paid, 0 AS refunded FROM rm.invoices WHERE patient_id = $1 AND voided_at IS NULL
			UNION ALL
			SELECT currency, 0, amount_cents, refunded_cents FROM rm.payments WHERE patient_id = $1 AND succeeded_at IS NOT NULL
		) x GROUP BY currency ORDER BY currency`, patientID)
	if err != nil {
		return nil, err
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Balance, error) {
		var b Balance
		err := r.Scan(&b.Currency, &b.InvoicedCents, &b.PaidCents, &b.RefundedCents)
		b.BalanceCents = b.InvoicedCents - b.PaidCents + b.RefundedCents
		return b, err
	})
	if list == nil {
		list = []Balance{}
	}
	return list, err
}

// Invoice is an invoice as the portal and staff see it.
type Invoice struct {
	ID         uuid.UUID      `json:"id"`
	Currency   string         `json:"currency"`
	Lines      []billing.Line `json:"lines"`
	TotalCents int64          `json:"total_cents"`
	PaidCents  int64          `json:"paid_cents"`
	OpenCents  int64          `json:"open_cents"`
	Status     string         `json:"status"` // open, partly_paid, paid, void
	DueDate    string         `json:"due_date"`
	IssuedAt   time.Time      `json:"issued_at"`
	VoidedAt   *time.Time     `json:"voided_at,omitempty"`
	Version    int64          `json:"version"`
}

// Invoices are a patient's invoices, newest first.
func Invoices(ctx context.Context, q Querier, patientID uuid.UUID, limit int) ([]Invoice, error) {
	rows, err := q.Query(ctx, `SELECT invoice_id, currency, lines, total_cents, paid_cents, due_date::text, issued_at, voided_at, version
		FROM rm.invoices WHERE patient_id = $1 ORDER BY issued_at DESC, position DESC LIMIT $2`, patientID, limit)
	if err != nil {
		return nil, err
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Invoice, error) {
		var i Invoice
		var lines []byte
		if err := r.Scan(&i.ID, &i.Currency, &lines, &i.TotalCents, &i.PaidCents, &i.DueDate, &i.IssuedAt, &i.VoidedAt, &i.Version); err != nil {
			return i, err
		}
		if err := json.Unmarshal(lines, &i.Lines); err != nil {
			return i, err
		}
		st := billing.Invoice{InvoiceIssued: billing.InvoiceIssued{TotalCents: i.TotalCents}, Voided: i.VoidedAt != nil, PaidCents: i.PaidCents}
		i.Status, i.OpenCents = st.Status(), st.OpenCents()
		return i, nil
	})
	if list == nil {
		list = []Invoice{}
	}
	return list, err
}

// Payment is a payment as the portal and staff see it.
type Payment struct {
	ID            uuid.UUID  `json:"id"`
	AmountCents   int64      `json:"amount_cents"`
	Currency      string     `json:"currency"`
	Method        string     `json:"method"`
	Channel       string     `json:"channel"`
	State         string     `json:"state"` // pending, failed, succeeded, refunded
	InvoiceID     *uuid.UUID `json:"invoice_id,omitempty"`
	CardBrand     *string    `json:"card_brand,omitempty"`
	CardLast4     *string    `json:"card_last4,omitempty"`
	ReceiptNumber *string    `json:"receipt_number,omitempty"`
	RefundedCents int64      `json:"refunded_cents"`
	CreatedAt     time.Time  `json:"created_at"`
	SucceededAt   *time.Time `json:"succeeded_at,omitempty"`
	Version       int64      `json:"version"`
}

// Payments are a patient's payments, newest first.
func Payments(ctx context.Context, q Querier, patientID uuid.UUID, limit int) ([]Payment, error) {
	rows, err := q.Query(ctx, `SELECT payment_id, amount_cents, currency, method, channel, state, invoice_id, card_brand, card_last4,
			receipt_number, refunded_cents, created_at, succeeded_at, version
		FROM rm.payments WHERE patient_id = $1 ORDER BY created_at DESC, position DESC LIMIT $2`, patientID, limit)
	if err != nil {
		return nil, err
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Payment, error) {
		var p Payment
		err := r.Scan(&p.ID, &p.AmountCents, &p.Currency, &p.Method, &p.Channel, &p.State, &p.InvoiceID, &p.CardBrand, &p.CardLast4,
			&p.ReceiptNumber, &p.RefundedCents, &p.CreatedAt, &p.SucceededAt, &p.Version)
		return p, err
	})
	if list == nil {
		list = []Payment{}
	}
	return list, err
}

// Locate finds the patient of a payment by our payment id or by its
// PaymentIntent's id, for a webhook whose object lacks the metadata.
func Locate(ctx context.Context, q Querier, paymentID uuid.UUID, intentID string) (paymentUUID, patientID uuid.UUID, err error) {
	rows, err := q.Query(ctx, `SELECT payment_id, patient_id FROM rm.payments
		WHERE payment_id = $1 OR ($2 <> '' AND payment_intent_id = $2) LIMIT 1`, paymentID, intentID)
	if err != nil {
		return uuid.Nil, uuid.Nil, err
	}
	type found struct{ Payment, Patient uuid.UUID }
	f, err := pgx.CollectExactlyOneRow(rows, func(r pgx.CollectableRow) (found, error) {
		var f found
		return f, r.Scan(&f.Payment, &f.Patient)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return uuid.Nil, uuid.Nil, domain.NotFound("payment")
	}
	return f.Payment, f.Patient, err
}
