// Package pdfdoc writes the printable PDFs of the portal: the sheet of a
// Home Activity and the portal handout a clinic gives its patients.
//
// The documents use fpdf's core fonts (Helvetica), whose encoding is
// cp1252: every string goes through the document's UTF-8 translator, and a
// character cp1252 lacks prints as "?". Translators keep a buffer, so each
// document makes its own; building documents concurrently is safe.
package pdfdoc

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/go-pdf/fpdf"
)

const (
	margin   = 20.0 // mm, each side
	bodySize = 11.0 // pt
	lineH    = 5.5  // mm, of body text
)

// doc is one PDF being written, with its translator.
type doc struct {
	pdf *fpdf.Fpdf
	tr  func(string) string
	w   float64 // usable width
}

func newDoc(title, footer string, at time.Time) *doc {
	pdf := fpdf.New("P", "mm", "Letter", "")
	d := &doc{pdf: pdf}
	tr := pdf.UnicodeTranslatorFromDescriptor("")
	d.tr = func(s string) string {
		var b strings.Builder
		for _, r := range s {
			if r < 0x80 {
				b.WriteRune(r)
				continue
			}
			// The translator writes '.' for a character cp1252 lacks.
			if t := tr(string(r)); t != "." || r == '.' {
				b.WriteString(t)
			} else {
				b.WriteByte('?')
			}
		}
		return b.String()
	}
	pdf.SetMargins(margin, margin, margin)
	pdf.SetAutoPageBreak(true, margin+5)
	pdf.SetTitle(title, true)
	pdf.SetCreator("Portico", true)
	pdf.SetCreationDate(at)
	pdf.SetModificationDate(at)
	pdf.SetCatalogSort(true)
	pdf.AliasNbPages("{nb}")
	footer = d.tr(footer)
	pdf.SetFooterFunc(func() {
		pdf.SetY(-margin)
		pdf.SetFont("Helvetica", "", 8)
		pdf.SetTextColor(110, 110, 110)
		pdf.CellFormat(0, 4, footer, "", 0, "L", false, 0, "")
		pdf.CellFormat(0, 4, fmt.Sprintf("Page %d of {nb}", pdf.PageNo()), "", 0, "R", false, 0, "")
		pdf.SetTextColor(0, 0, 0)
	})
	pdf.AddPage()
	pw, _ := pdf.GetPageSize()
	d.w = pw - 2*margin
	return d
}

// heading writes bold text of size pt, wrapped.
func (d *doc) heading(s string, pt float64) {
	d.pdf.SetFont("Helvetica", "B", pt)
	d.pdf.MultiCell(d.w, pt*0.5, d.tr(s), "", "L", false)
}

// text writes body text, wrapped, keeping its line breaks.
func (d *doc) text(s string) {
	d.pdf.SetFont("Helvetica", "", bodySize)
	d.pdf.MultiCell(d.w, lineH, d.tr(s), "", "L", false)
}

// label writes "label value" on one wrapped paragraph, the label bold.
func (d *doc) label(label, value string) {
	d.pdf.SetFont("Helvetica", "B", bodySize)
	lw := d.pdf.GetStringWidth(d.tr(label)) + 2
	d.pdf.CellFormat(lw, lineH, d.tr(label), "", 0, "L", false, 0, "")
	d.pdf.SetFont("Helvetica", "", bodySize)
	d.pdf.MultiCell(d.w-lw, lineH, d.tr(value), "", "L", false)
}

// bullet writes one item of a list.
func (d *doc) bullet(mark, s string) {
	d.pdf.SetFont("Helvetica", "", bodySize)
	d.pdf.CellFormat(7, lineH, d.tr(mark), "", 0, "R", false, 0, "")
	d.pdf.SetX(margin + 9)
	d.pdf.MultiCell(d.w-9, lineH, d.tr(s), "", "L", false)
}

// rule draws a thin line across the page.
func (d *doc) rule() {
	y := d.pdf.GetY() + 2
	d.pdf.SetDrawColor(160, 160, 160)
	d.pdf.SetLineWidth(0.3)
	d.pdf.Line(margin, y, margin+d.w, y)
	d.pdf.Ln(5)
}

func (d *doc) bytes() ([]byte, error) {
	var buf bytes.Buffer
	if err := d.pdf.Output(&buf); err != nil {
		return nil, fmt.Errorf("pdfdoc: %w", err)
	}
	return buf.Bytes(), nil
}

// date prints a day as "March 5, 2026".
func date(t time.Time) string { return t.Format("January 2, 2006") }
