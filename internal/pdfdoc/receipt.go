package pdfdoc

import (
	"fmt"
	"strings"
	"time"
)

// ReceiptSheet is what a payment's printable receipt shows.
type ReceiptSheet struct {
	ClinicName    string
	ClinicContact string // optional: phone, email
	PatientName   string
	ReceiptNumber string
	AmountCents   int64
	Currency      string
	Method        string // card, cash, check, card_terminal
	CardBrand     string // optional
	CardLast4     string // optional
	ReceivedAt    time.Time
	InvoiceID     string // optional
	RefundedCents int64
	PrintedAt     time.Time
}

// zeroDecimal are ISO 4217 currencies without minor units (Stripe's list).
var zeroDecimal = map[string]bool{"BIF": true, "CLP": true, "DJF": true, "GNF": true, "JPY": true, "KMF": true, "KRW": true,
	"MGA": true, "PYG": true, "RWF": true, "UGX": true, "VND": true, "VUV": true, "XAF": true, "XOF": true, "XPF": true}

// Money prints an amount in minor units: "45.00 USD".
func Money(cents int64, currency string) string {
	currency = strings.ToUpper(currency)
	sign := ""
	if cents < 0 {
		sign, cents = "-", -cents
	}
	if zeroDecimal[currency] {
		return fmt.Sprintf("%s%d %s", sign, cents, currency)
	}
	return fmt.Sprintf("%s%d.%02d %s", sign, cents/100, cents%100, currency)
}

var methodNames = map[string]string{"card": "Card (online)", "cash": "Cash", "check": "Check", "card_terminal": "Card (at the clinic)"}

// Receipt writes the receipt of a payment received: the clinic, the
// patient, the amount, how it was paid, when, its number and invoice.
func Receipt(s ReceiptSheet) ([]byte, error) {
	d := newDoc("Receipt "+s.ReceiptNumber, "Receipt "+s.ReceiptNumber+" from "+s.ClinicName+" - printed "+date(s.PrintedAt), s.PrintedAt)
	d.heading(s.ClinicName, 16)
	if s.ClinicContact != "" {
		d.pdf.SetFont("Helvetica", "", 10)
		d.pdf.SetTextColor(90, 90, 90)
		d.pdf.MultiCell(d.w, 5, d.tr(s.ClinicContact), "", "L", false)
		d.pdf.SetTextColor(0, 0, 0)
	}
	d.rule()
	d.heading("Payment receipt", 18)
	d.pdf.Ln(3)
	d.label("Receipt number:", s.ReceiptNumber)
	d.label("Patient:", s.PatientName)
	d.label("Amount paid:", Money(s.AmountCents, s.Currency))
	method := methodNames[s.Method]
	if method == "" {
		method = s.Method
	}
	if s.CardBrand != "" || s.CardLast4 != "" {
		card := strings.TrimSpace(strings.ToUpper(s.CardBrand[:min(1, len(s.CardBrand))]) + s.CardBrand[min(1, len(s.CardBrand)):])
		if s.CardLast4 != "" {
			card = strings.TrimSpace(card + " ending in " + s.CardLast4)
		}
		method += ", " + card
	}
	d.label("Paid by:", method)
	d.label("Date:", date(s.ReceivedAt))
	if s.InvoiceID != "" {
		d.label("Invoice:", s.InvoiceID)
	}
	if s.RefundedCents > 0 {
		d.label("Refunded:", Money(s.RefundedCents, s.Currency))
	}
	d.pdf.Ln(6)
	d.rule()
	d.pdf.SetFont("Helvetica", "I", 9)
	d.pdf.SetTextColor(90, 90, 90)
	d.pdf.MultiCell(d.w, 4.5, d.tr("Thank you. Keep this receipt for your records. Printed "+date(s.PrintedAt)+"."), "", "L", false)
	return d.bytes()
}
