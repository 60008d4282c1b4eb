// Package pdftext reads a PDF back for tests: it checks the file parses as
// a PDF and extracts its text, so tests can assert what a document says.
// Only tests import it.
package pdftext

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/ledongthuc/pdf"
)

// Extract parses data as a PDF and returns the text of every page, with
// runs of white space collapsed to one space (lines wrapped anywhere read
// as one text). It fails when data is no PDF or has no page.
func Extract(data []byte) (text string, pages int, err error) {
	if !bytes.HasPrefix(data, []byte("%PDF-")) {
		return "", 0, fmt.Errorf("pdftext: not a PDF (starts %q)", head(data))
	}
	r, err := pdf.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return "", 0, fmt.Errorf("pdftext: %w", err)
	}
	n := r.NumPage()
	if n == 0 {
		return "", 0, fmt.Errorf("pdftext: no pages")
	}
	var all strings.Builder
	for i := 1; i <= n; i++ {
		p := r.Page(i)
		if p.V.IsNull() {
			return "", 0, fmt.Errorf("pdftext: page %d missing", i)
		}
		s, err := p.GetPlainText(nil)
		if err != nil {
			return "", 0, fmt.Errorf("pdftext: page %d: %w", i, err)
		}
		all.WriteString(s)
		all.WriteByte('\n')
	}
	return Collapse(all.String()), n, nil
}

// Collapse turns runs of white space into one space, for comparing text
// that a PDF may have wrapped.
func Collapse(s string) string { return strings.Join(strings.Fields(s), " ") }

func head(b []byte) []byte {
	if len(b) > 16 {
		return b[:16]
	}
	return b
}
