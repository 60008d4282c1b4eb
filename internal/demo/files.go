package demo

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/go-pdf/fpdf"

	"github.com/portico-health/portico/internal/blobstore"
)

// fileDate stamps every demo PDF, so the same file has the same bytes (and
// the same address in the blob store) on every load.
var fileDate = time.Date(2025, time.January, 6, 9, 0, 0, 0, time.UTC)

// demoFile is a small PDF the demo stores: a title, whom it is about, and
// a few paragraphs. Text is plain ASCII (fpdf's core fonts are cp1252).
type demoFile struct {
	Name  string // the file name it is stored under
	Title string
	About string // "Patient: Mia Rivera"; optional
	Body  []string
}

// pdf writes the file. With a fixed date and sorted catalog, fpdf writes
// the same bytes each time.
func (f demoFile) pdf() ([]byte, error) {
	pdf := fpdf.New("P", "mm", "Letter", "")
	pdf.SetMargins(20, 20, 20)
	pdf.SetTitle(f.Title, true)
	pdf.SetCreator("Portico demo", true)
	pdf.SetCreationDate(fileDate)
	pdf.SetModificationDate(fileDate)
	pdf.SetCatalogSort(true)
	pdf.AddPage()
	pdf.SetFont("Helvetica", "", 10)
	pdf.SetTextColor(90, 90, 90)
	pdf.CellFormat(0, 5, ClinicName, "", 1, "L", false, 0, "")
	pdf.SetTextColor(0, 0, 0)
	pdf.Ln(4)
	pdf.SetFont("Helvetica", "B", 18)
	pdf.MultiCell(0, 9, f.Title, "", "L", false)
	pdf.Ln(2)
	if f.About != "" {
		pdf.SetFont("Helvetica", "B", 11)
		pdf.MultiCell(0, 5.5, f.About, "", "L", false)
		pdf.Ln(3)
	}
	pdf.SetFont("Helvetica", "", 11)
	for _, p := range f.Body {
		pdf.MultiCell(0, 5.5, p, "", "L", false)
		pdf.Ln(3)
	}
	pdf.SetFont("Helvetica", "I", 9)
	pdf.SetTextColor(90, 90, 90)
	pdf.MultiCell(0, 4.5, "Demo data: this clinic, its patients and this document are made up.", "", "L", false)
	var buf bytes.Buffer
	if err := pdf.Output(&buf); err != nil {
		return nil, fmt.Errorf("demo file %s: %w", f.Name, err)
	}
	return buf.Bytes(), nil
}

// store writes the file and puts it in blobs. Storing the same content
// again stores nothing new (the store is content-addressed).
func (f demoFile) store(ctx context.Context, blobs blobstore.Store) (blobstore.Blob, error) {
	data, err := f.pdf()
	if err != nil {
		return blobstore.Blob{}, err
	}
	b, err := blobs.Put(ctx, bytes.NewReader(data), f.Name)
	if err != nil {
		return blobstore.Blob{}, fmt.Errorf("demo file %s: %w", f.Name, err)
	}
	if b.MediaType != blobstore.PDF {
		return blobstore.Blob{}, fmt.Errorf("demo file %s: stored as %s, want %s", f.Name, b.MediaType, blobstore.PDF)
	}
	// Stores may not keep the name (one content, many names); the events
	// that refer to the blob hold it.
	b.Name = f.Name
	return b, nil
}
