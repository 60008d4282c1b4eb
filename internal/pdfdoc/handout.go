package pdfdoc

import (
	"strings"
	"time"
)

// Handout is what the portal handout is customised with.
type Handout struct {
	ClinicName string
	// PortalURL is where portal users sign in (PORTAL_PUBLIC_URL).
	PortalURL string
	// Contact: how to reach the clinic; each part is optional.
	Phone, Email, ContactText string
	// Payments lists online payments and receipts, for a clinic enrolled
	// in payment processing; BalanceAndInvoices the account balance and
	// invoices, unless the clinic turned them off.
	Payments           bool
	BalanceAndInvoices bool
	Date               time.Time
}

// PortalHandout writes the handout a clinic gives patients and their
// contacts about the portal: what it offers and how to sign in.
func PortalHandout(h Handout) ([]byte, error) {
	url := strings.TrimRight(h.PortalURL, "/")
	d := newDoc(h.ClinicName+" patient portal", h.ClinicName+" patient portal - "+url, h.Date)
	d.pdf.SetFont("Helvetica", "", 10)
	d.pdf.SetTextColor(90, 90, 90)
	d.pdf.CellFormat(d.w, 5, d.tr(h.ClinicName), "", 1, "L", false, 0, "")
	d.pdf.SetTextColor(0, 0, 0)
	d.rule()
	d.heading("Your patient portal", 20)
	d.pdf.Ln(3)
	d.text(h.ClinicName + " offers a secure patient portal. Patients, their contacts and others the clinic invites " +
		"can use it to look up information about patient services, at any time, from a computer or a phone.")
	d.pdf.Ln(2)
	d.label("Portal address:", url)
	d.pdf.Ln(4)

	d.heading("With the portal you can", 13)
	d.pdf.Ln(1)
	items := []string{
		"View upcoming appointments",
		"View or print completed documents",
		"View or print the Home Activities you have been assigned",
		"Download intake forms and return them once filled in",
	}
	if h.Payments {
		items = append(items, "Make credit card payments to "+h.ClinicName+" online", "Print receipts for online payments")
	}
	if h.Payments && h.BalanceAndInvoices {
		items = append(items, "View the account balance and invoices")
	}
	for _, it := range items {
		d.bullet("\u2022", it)
	}
	d.pdf.Ln(4)

	d.heading("How to sign in", 13)
	d.pdf.Ln(1)
	steps := []string{
		"Ask " + h.ClinicName + " to invite you to the portal. The invitation is sent to your email address.",
		"Open the link in the email and choose a password. The link works for 24 hours.",
		"From then on, sign in at " + url + " with your email address and your password.",
	}
	for i, s := range steps {
		d.bullet(string(rune('1'+i))+".", s)
	}
	d.pdf.Ln(2)
	d.text("If the link has expired, or you forgot your password, click \"Forgot password\" on the sign-in page to " +
		"get a new link by email. One portal account works for every patient you have been given access to, " +
		"for example each of your children.")
	d.pdf.Ln(2)
	d.pdf.SetFont("Helvetica", "B", bodySize)
	d.pdf.MultiCell(d.w, lineH, d.tr("The portal shows private health information: keep your password to yourself, "+
		"and sign out on a shared computer."), "", "L", false)
	d.pdf.Ln(4)

	if h.Phone != "" || h.Email != "" || h.ContactText != "" {
		d.heading("Questions? Contact "+h.ClinicName, 13)
		d.pdf.Ln(1)
		if h.Phone != "" {
			d.label("Phone:", h.Phone)
		}
		if h.Email != "" {
			d.label("Email:", h.Email)
		}
		if h.ContactText != "" {
			d.pdf.Ln(1)
			d.text(h.ContactText)
		}
	} else {
		d.heading("Questions?", 13)
		d.pdf.Ln(1)
		d.text("Ask the front desk of " + h.ClinicName + ".")
	}
	return d.bytes()
}
