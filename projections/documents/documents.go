// Package documents is the read model of completed documents and of the
// Clinic Options that decide which of them the portal shows.
//
// Hidden document types are applied when read, never when written: a
// document of a hidden type keeps its row, and every portal query joins the
// clinic's options, so hiding a type hides the documents completed before
// the change too (lists, downloads by id, counts), and showing it again
// brings them back.
package documents

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/clinic"
	"github.com/portico-health/portico/domain/document"
	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/projections"
)

// Projection keeps rm.documents and rm.clinic_options.
type Projection struct{}

var _ projections.Projection = Projection{}

func (Projection) Name() string { return "documents" }
func (Projection) Categories() []string {
	return []string{document.Category, clinic.Category}
}
func (Projection) Critical() bool   { return false }
func (Projection) Tables() []string { return []string{"documents", "clinic_options"} }

func (Projection) Setup(_ context.Context, w *projections.Writer) error {
	w.Queue(`CREATE TABLE ` + w.T("documents") + ` (
		document_id    uuid        PRIMARY KEY,
		patient_id     uuid        NOT NULL,
		clinic_id      uuid        NOT NULL,
		type           text        NOT NULL,
		title          text        NOT NULL,
		file_sha256    text        NOT NULL,
		file_size      bigint      NOT NULL,
		media_type     text        NOT NULL,
		file_name      text        NOT NULL,
		completed_at   timestamptz NOT NULL,
		position       bigint      NOT NULL,
		retracted_at   timestamptz,
		retract_reason text,
		version        bigint      NOT NULL)`)
	w.Queue(`CREATE INDEX ON ` + w.T("documents") + ` (patient_id, completed_at DESC, position DESC) WHERE retracted_at IS NULL`)
	w.Queue(`CREATE INDEX ON ` + w.T("documents") + ` (clinic_id, type)`)
	w.Queue(`CREATE TABLE ` + w.T("clinic_options") + ` (
		clinic_id                  uuid        PRIMARY KEY,
		hidden_document_types      text[]      NOT NULL DEFAULT '{}',
		show_balance_and_invoices  boolean     NOT NULL DEFAULT true,
		payment_processing_enabled boolean     NOT NULL DEFAULT false,
		changed_at                 timestamptz,
		version                    bigint      NOT NULL)`)
	return nil
}

// ReportingViews: completed documents per clinic and type, with how many
// the portal shows now (docs/reporting.md).
func (Projection) ReportingViews() []string {
	return []string{`CREATE OR REPLACE VIEW reporting.documents_by_type AS
		SELECT d.clinic_id, d.type,
		       count(*) FILTER (WHERE d.retracted_at IS NULL) AS published,
		       count(*) FILTER (WHERE d.retracted_at IS NOT NULL) AS retracted,
		       count(*) FILTER (WHERE d.retracted_at IS NULL
		                          AND NOT d.type = ANY (coalesce(o.hidden_document_types, '{}'))) AS visible_in_portal
		FROM rm.documents d LEFT JOIN rm.clinic_options o ON o.clinic_id = d.clinic_id
		GROUP BY d.clinic_id, d.type`}
}

func (Projection) Apply(_ context.Context, w *projections.Writer, e eventstore.Envelope) error {
	docs, opts := w.T("documents"), w.T("clinic_options")
	switch e.Type {
	case document.Completed{}.EventType():
		var d document.Completed
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return err
		}
		w.Queue(`INSERT INTO `+docs+` (document_id, patient_id, clinic_id, type, title, file_sha256, file_size, media_type, file_name, completed_at, position, version)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (document_id) DO NOTHING`,
			d.DocumentID, d.PatientID, d.ClinicID, d.Type, d.Title, d.File.SHA256, d.File.Size, d.File.MediaType, d.File.Name,
			e.Metadata.RecordedAt, int64(e.Position), e.Version)
	case document.Retracted{}.EventType():
		var d document.Retracted
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return err
		}
		w.Queue(`UPDATE `+docs+` SET retracted_at = $2, retract_reason = nullif($3, ''), version = $4 WHERE document_id = $1 AND version < $4`,
			d.DocumentID, e.Metadata.RecordedAt, d.Reason, e.Version)
	case clinic.Registered{}.EventType():
		var d clinic.Registered
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return err
		}
		def := clinic.DefaultOptions()
		w.Queue(`INSERT INTO `+opts+` (clinic_id, hidden_document_types, show_balance_and_invoices, payment_processing_enabled, version)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT (clinic_id) DO NOTHING`,
			d.ClinicID, def.HiddenDocumentTypes, def.ShowBalanceAndInvoices, def.PaymentProcessingEnabled, e.Version)
	case clinic.OptionsChanged{}.EventType():
		var d clinic.OptionsChanged
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return err
		}
		hidden := d.HiddenDocumentTypes
		if hidden == nil {
			hidden = []string{}
		}
		w.Queue(`INSERT INTO `+opts+` AS o (clinic_id, hidden_document_types, show_balance_and_invoices, payment_processing_enabled, changed_at, version)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (clinic_id) DO UPDATE SET hidden_document_types = excluded.hidden_document_types,
				show_balance_and_invoices = excluded.show_balance_and_invoices,
				payment_processing_enabled = excluded.payment_processing_enabled,
				changed_at = excluded.changed_at, version = excluded.version
			WHERE o.version < excluded.version`,
			d.ClinicID, hidden, d.ShowBalanceAndInvoices, d.PaymentProcessingEnabled, e.Metadata.RecordedAt, e.Version)
	default:
		// The clinic's stream also holds settings that are none of this
		// model's business (its contact, …): known events of it pass.
		if eventstore.Category(e.Stream) == clinic.Category && domain.Known(e.Type) {
			return nil
		}
		return projections.Unknown(e)
	}
	return nil
}

// Document is a row as the API shows it.
type Document struct {
	ID          uuid.UUID `json:"id"`
	PatientID   uuid.UUID `json:"patient_id"`
	Type        string    `json:"type"`
	Title       string    `json:"title"`
	CompletedAt time.Time `json:"completed_at"`
	File        FileInfo  `json:"file"`
	// VisibleInPortal is false for a document of a type the clinic hides
	// (staff lists only; the portal never sees such a document).
	VisibleInPortal bool  `json:"visible_in_portal"`
	Version         int64 `json:"version"`
	// SHA256 is the file's address, for the download; not shown.
	SHA256 string `json:"-"`
}

// FileInfo describes a document's file.
type FileInfo struct {
	Name      string `json:"name"`
	Size      int64  `json:"size"`
	MediaType string `json:"media_type"`
}

// Querier is a pool or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

const columns = `d.document_id, d.patient_id, d.type, d.title, d.completed_at, d.file_name, d.file_size, d.media_type, d.file_sha256, d.version,
	NOT d.type = ANY (coalesce(o.hidden_document_types, '{}'))`

// visible is the one condition of what the portal shows: published, and of
// a type the clinic does not hide now.
const visible = `d.retracted_at IS NULL AND NOT d.type = ANY (coalesce(o.hidden_document_types, '{}'))`

const from = ` FROM rm.documents d LEFT JOIN rm.clinic_options o ON o.clinic_id = d.clinic_id `

func collect(rows pgx.Rows, err error) ([]Document, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Document, error) {
		var d Document
		err := r.Scan(&d.ID, &d.PatientID, &d.Type, &d.Title, &d.CompletedAt, &d.File.Name, &d.File.Size, &d.File.MediaType, &d.SHA256, &d.Version, &d.VisibleInPortal)
		return d, err
	})
}

// Visible lists the documents of a patient the portal shows, newest first
// (in the order they were completed), at most limit.
func Visible(ctx context.Context, q Querier, patientID uuid.UUID, limit int) ([]Document, error) {
	return collect(q.Query(ctx, `SELECT `+columns+from+`WHERE d.patient_id = $1 AND `+visible+`
		ORDER BY d.completed_at DESC, d.position DESC LIMIT $2`, patientID, limit))
}

// CountVisible counts the documents of a patient the portal shows.
func CountVisible(ctx context.Context, q Querier, patientID uuid.UUID) (int, error) {
	rows, err := q.Query(ctx, `SELECT count(*)`+from+`WHERE d.patient_id = $1 AND `+visible, patientID)
	if err != nil {
		return 0, err
	}
	n, err := pgx.CollectExactlyOneRow(rows, pgx.RowTo[int])
	return n, err
}

// VisibleOne is one document of a patient if the portal shows it; false
// when it is another patient's, retracted, of a hidden type, or unknown.
func VisibleOne(ctx context.Context, q Querier, patientID, documentID uuid.UUID) (Document, bool, error) {
	list, err := collect(q.Query(ctx, `SELECT `+columns+from+`WHERE d.patient_id = $1 AND d.document_id = $2 AND `+visible,
		patientID, documentID))
	if err != nil || len(list) == 0 {
		return Document{}, false, err
	}
	return list[0], true, nil
}

// PublishedOne is one of a patient's published documents for staff, hidden
// types included; a retracted or another patient's document is not found.
func PublishedOne(ctx context.Context, q Querier, patientID, documentID uuid.UUID) (Document, bool, error) {
	list, err := collect(q.Query(ctx, `SELECT `+columns+from+`WHERE d.patient_id = $1 AND d.document_id = $2 AND d.retracted_at IS NULL`,
		patientID, documentID))
	if err != nil || len(list) == 0 {
		return Document{}, false, err
	}
	return list[0], true, nil
}

// OfPatient lists a patient's published documents for staff, hidden types
// included (marked), newest first, at most limit.
func OfPatient(ctx context.Context, q Querier, patientID uuid.UUID, limit int) ([]Document, error) {
	return collect(q.Query(ctx, `SELECT `+columns+from+`WHERE d.patient_id = $1 AND d.retracted_at IS NULL
		ORDER BY d.completed_at DESC, d.position DESC LIMIT $2`, patientID, limit))
}
