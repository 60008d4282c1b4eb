package pdfdoc

import "time"

// ActivitySheet is what the printable sheet of a Home Activity shows.
type ActivitySheet struct {
	ClinicName       string
	PatientFirstName string
	Title            string
	Instructions     string
	Frequency        string // optional
	AssignedAt       time.Time
	PrintedAt        time.Time
}

// Activity writes the sheet of a Home Activity: the clinic, whom it is for,
// the activity, how often, the instructions, and the dates.
func Activity(s ActivitySheet) ([]byte, error) {
	d := newDoc(s.Title, "Home Activity from "+s.ClinicName+" - printed "+date(s.PrintedAt), s.PrintedAt)
	d.pdf.SetFont("Helvetica", "", 10)
	d.pdf.SetTextColor(90, 90, 90)
	d.pdf.CellFormat(d.w, 5, d.tr(s.ClinicName), "", 1, "L", false, 0, "")
	d.pdf.CellFormat(d.w, 5, "Home Activity", "", 1, "L", false, 0, "")
	d.pdf.SetTextColor(0, 0, 0)
	d.rule()
	d.heading(s.Title, 18)
	d.pdf.Ln(3)
	if s.PatientFirstName != "" {
		d.label("For:", s.PatientFirstName)
	}
	if s.Frequency != "" {
		d.label("How often:", s.Frequency)
	}
	d.label("Assigned:", date(s.AssignedAt))
	d.pdf.Ln(4)
	d.heading("Instructions", 13)
	d.pdf.Ln(1)
	d.text(s.Instructions)
	d.pdf.Ln(6)
	d.rule()
	d.pdf.SetFont("Helvetica", "I", 9)
	d.pdf.SetTextColor(90, 90, 90)
	d.pdf.MultiCell(d.w, 4.5, d.tr("Questions about this activity? Ask your provider at "+s.ClinicName+
		". Printed "+date(s.PrintedAt)+"."), "", "L", false)
	return d.bytes()
}
