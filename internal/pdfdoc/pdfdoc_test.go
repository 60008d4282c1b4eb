package pdfdoc_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portico-health/portico/internal/pdfdoc"
	"github.com/portico-health/portico/internal/pdfdoc/pdftext"
)

var day = time.Date(2026, 3, 5, 15, 4, 0, 0, time.UTC)

func mustContain(t *testing.T, text string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(text, pdftext.Collapse(w)) {
			t.Errorf("the PDF does not say %q; it says: %q", w, text)
		}
	}
}

func TestActivitySheetSaysWhatWasAssigned(t *testing.T) {
	long := strings.Repeat("Breathe in slowly through the nose and out through the mouth. ", 12)
	data, err := pdfdoc.Activity(pdfdoc.ActivitySheet{
		ClinicName:       "Clínica Señora Müller",
		PatientFirstName: "Zoë-José",
		Title:            "Balance on one foot – 30 s",
		Instructions:     "Stand near a wall.\n\n" + long + "\nSwitch feet. ✓ done",
		Frequency:        "Twice a day",
		AssignedAt:       day,
		PrintedAt:        day.Add(48 * time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	text, pages, err := pdftext.Extract(data)
	if err != nil {
		t.Fatal(err)
	}
	if pages < 1 {
		t.Fatalf("%d pages", pages)
	}
	mustContain(t, text, "Clínica Señora Müller", "Zoë-José", "Balance on one foot – 30 s", "Stand near a wall.", long,
		"Twice a day", "March 5, 2026", "March 7, 2026", "Home Activity",
		// A character cp1252 lacks prints as a question mark, not as nothing.
		"Switch feet. ? done")
}

func TestActivitySheetOfVeryLongInstructionsRunsOnto(t *testing.T) {
	data, err := pdfdoc.Activity(pdfdoc.ActivitySheet{
		ClinicName: "Harbor Therapy", Title: "Reading aloud", Instructions: strings.Repeat("Read one page aloud.\n", 200),
		AssignedAt: day, PrintedAt: day,
	})
	if err != nil {
		t.Fatal(err)
	}
	text, pages, err := pdftext.Extract(data)
	if err != nil {
		t.Fatal(err)
	}
	if pages < 2 {
		t.Errorf("%d pages for 200 lines of instructions, want more than one", pages)
	}
	if got := strings.Count(text, "Read one page aloud."); got != 200 {
		t.Errorf("%d of 200 instruction lines in the PDF", got)
	}
	mustContain(t, text, "Page 2 of")
}

func TestPortalHandoutIsCustomised(t *testing.T) {
	h := pdfdoc.Handout{
		ClinicName: "Harbor Therapy", PortalURL: "https://portal.harbor.example/",
		Phone: "+1 (555) 010-2030", Email: "desk@harbor.example", ContactText: "Open Monday–Friday, 8 to 5.\nAsk for Renée.",
		Date: day,
	}
	data, err := pdfdoc.PortalHandout(h)
	if err != nil {
		t.Fatal(err)
	}
	text, _, err := pdftext.Extract(data)
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, text, "Harbor Therapy", "https://portal.harbor.example", "+1 (555) 010-2030", "desk@harbor.example",
		"Open Monday–Friday, 8 to 5. Ask for Renée.",
		"View upcoming appointments", "View or print completed documents", "Home Activities", "intake forms",
		"Forgot password", "24 hours")
	if strings.Contains(text, "payments") {
		t.Error("the handout of a clinic without payment processing mentions payments")
	}

	h.Payments, h.BalanceAndInvoices = true, true
	data, err = pdfdoc.PortalHandout(h)
	if err != nil {
		t.Fatal(err)
	}
	text, _, _ = pdftext.Extract(data)
	mustContain(t, text, "credit card payments", "receipts", "balance and invoices")
}

func TestDocumentsBuildConcurrently(t *testing.T) {
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := strings.Repeat("é", i+1)
			data, err := pdfdoc.Activity(pdfdoc.ActivitySheet{ClinicName: "Harbor", PatientFirstName: name, Title: "T", Instructions: "Ünd", AssignedAt: day, PrintedAt: day})
			if err != nil {
				t.Error(err)
				return
			}
			text, _, err := pdftext.Extract(data)
			if err != nil || !strings.Contains(text, name) || !strings.Contains(text, "Ünd") {
				t.Errorf("concurrent sheet: %v %q", err, text)
			}
		}()
	}
	wg.Wait()
}

func TestExtractRefusesWhatIsNoPDF(t *testing.T) {
	if _, _, err := pdftext.Extract([]byte("<html>not a pdf</html>")); err == nil {
		t.Error("an HTML page parsed as a PDF")
	}
	data, _ := pdfdoc.Activity(pdfdoc.ActivitySheet{ClinicName: "Harbor", Title: "T", Instructions: "I", AssignedAt: day, PrintedAt: day})
	if _, _, err := pdftext.Extract(data[:len(data)/2]); err == nil {
		t.Error("half a PDF parsed")
	}
}
