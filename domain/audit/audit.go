// Package audit is the PHI access trail: one Access record for every look
// at protected health information through the API, allowed or denied.
//
// Records are shaped after FHIR AuditEvent as IHE Basic Audit Log Patterns
// use it (action and subtype, recorded time, outcome, agent, source,
// entities, purpose of use), and appended to the event log, so an auditor
// replaying history sees accesses and changes in one ordered log.
//
// Tamper evidence: the records of a chain (one per writing process, stream
// phiaudit-<chain>) are numbered from 1, and each carries the SHA-256 of the
// previous record's hash and its own canonical form. Verify finds the first
// record that was edited, removed, inserted or moved; comparing the chain
// heads an auditor kept (Head) finds records cut off the end.
package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain"
)

// Category is the stream category of access chains.
const Category = "phiaudit"

// Subtypes of access, and the FHIR AuditEvent action each maps to.
const (
	SubtypeRead     = "read"
	SubtypeQuery    = "query"
	SubtypeDownload = "download"
	SubtypePrint    = "print"
	SubtypeExport   = "export"
)

// Action is the FHIR AuditEvent.action code of a subtype: R(ead) or
// E(xecute), as IHE BALP codes searches and exports.
func Action(subtype string) string {
	switch subtype {
	case SubtypeQuery, SubtypeExport:
		return "E"
	}
	return "R"
}

// Outcomes, as FHIR AuditEvent.outcome codes.
const (
	OutcomeSuccess = "0"
	OutcomeDenied  = "4" // minor failure: refused (no grant, no session)
	OutcomeFailed  = "8" // serious failure: the request failed on our side
)

// Purposes of use (HL7 v3 PurposeOfUse).
const (
	PurposeTreatment  = "TREAT"   // clinic staff caring for the patient
	PurposePatientReq = "PATRQT"  // the patient or their proxy, through the portal
	PurposeCompliance = "HCOMPL"  // auditors
	PurposePayment    = "HPAYMT"  // billing staff
	PurposeOperations = "HOPERAT" // anything else of the clinic's operations
)

// Agent is who accessed.
type Agent struct {
	ID       string    `json:"id,omitempty"` // empty for an unauthenticated caller
	Kind     string    `json:"kind"`         // staff, portal, system, anonymous
	Role     string    `json:"role,omitempty"`
	ClinicID uuid.UUID `json:"clinic_id,omitzero"`
	// OnBehalfOf is the patient a portal proxy (parent, guardian) acts for.
	OnBehalfOf uuid.UUID `json:"on_behalf_of,omitzero"`
	Network    string    `json:"network,omitempty"`
	UserAgent  string    `json:"user_agent,omitempty"`
}

// Source is what recorded the access.
type Source struct {
	Service  string `json:"service"`
	Instance string `json:"instance"`
}

// Entity is something delivered (or asked for): the patient, or a resource
// of theirs with the version delivered.
type Entity struct {
	Type    string    `json:"type"` // Patient, Appointment, DocumentReference, …
	ID      uuid.UUID `json:"id"`
	Version int64     `json:"version,omitempty"`
}

// Access is one record. Hash is the record's link in its chain; every other
// field is covered by it.
type Access struct {
	RecordID      uuid.UUID   `json:"record_id"`
	Chain         uuid.UUID   `json:"chain"`
	Seq           int64       `json:"seq"`
	PrevHash      string      `json:"prev_hash"`
	Recorded      time.Time   `json:"recorded"`
	Action        string      `json:"action"`
	Subtype       string      `json:"subtype"`
	Outcome       string      `json:"outcome"`
	OutcomeDesc   string      `json:"outcome_desc,omitempty"`
	Agent         Agent       `json:"agent"`
	Source        Source      `json:"source"`
	Patients      []uuid.UUID `json:"patients"`
	Entities      []Entity    `json:"entities"`
	Purpose       string      `json:"purpose"`
	CorrelationID string      `json:"correlation_id,omitempty"`
	Route         string      `json:"route"`
	Status        int         `json:"status"`
	// BodySHA256 is the SHA-256 of the response body delivered (hex); for a
	// denial, of the problem document sent instead.
	BodySHA256 string `json:"body_sha256"`
	Hash       string `json:"hash,omitempty"`
}

func (Access) EventType() string { return "PHIAccessRecorded" }

func init() { domain.Register(Access{}) }

// Genesis is the previous hash of a chain's first record.
var Genesis = hex.EncodeToString(make([]byte, sha256.Size))

// Canonical is the record's canonical form: its JSON without Hash, times in
// UTC. Go's encoding of a struct is deterministic, so decoding a stored
// record and encoding it again gives the same bytes.
func (a Access) Canonical() []byte {
	a.Hash = ""
	a.Recorded = a.Recorded.UTC()
	b, err := json.Marshal(a)
	if err != nil {
		panic("audit: canonical form: " + err.Error()) // only plain values: cannot fail
	}
	return b
}

// ComputeHash is SHA-256 over the previous hash and the canonical record.
func (a Access) ComputeHash() string {
	h := sha256.New()
	h.Write([]byte(a.PrevHash))
	h.Write(a.Canonical())
	return hex.EncodeToString(h.Sum(nil))
}

// Link places a record after prev (nil for a chain's first) and seals it.
func Link(a Access, chain uuid.UUID, prev *Access) Access {
	a, _ = LinkEncoded(a, chain, prev)
	return a
}

// LinkEncoded is Link, also returning the sealed record's JSON (what
// json.Marshal would give) from the canonical form the hash was computed
// over, so that recording a record marshals it once, not twice.
func LinkEncoded(a Access, chain uuid.UUID, prev *Access) (Access, []byte) {
	a.Chain = chain
	a.Recorded = a.Recorded.UTC().Truncate(time.Microsecond)
	if prev == nil {
		a.Seq, a.PrevHash = 1, Genesis
	} else {
		a.Seq, a.PrevHash = prev.Seq+1, prev.Hash
	}
	a.Hash = ""
	canonical := a.Canonical()
	h := sha256.New()
	h.Write([]byte(a.PrevHash))
	h.Write(canonical)
	a.Hash = hex.EncodeToString(h.Sum(nil))
	// Hash is the struct's last field and the canonical form omits it only
	// because it is empty: the full JSON is the canonical one with it added.
	data := append(canonical[:len(canonical)-1:len(canonical)-1], `,"hash":"`+a.Hash+`"}`...)
	return a, data
}

// Head is a chain's last record as an auditor keeps it outside the database.
type Head struct {
	Chain uuid.UUID `json:"chain"`
	Seq   int64     `json:"seq"`
	Hash  string    `json:"hash"`
}

// Problem names the first record of a chain that does not verify.
type Problem struct {
	Chain  uuid.UUID `json:"chain"`
	Seq    int64     `json:"seq"`
	Reason string    `json:"reason"`
}

func (p Problem) String() string {
	return fmt.Sprintf("chain %s record %d: %s", p.Chain, p.Seq, p.Reason)
}

// Verify checks one chain's records in the order they are stored: numbered
// 1, 2, 3…, each linked to the one before, each hash matching its content.
// It returns the chain's head and the first problem, if any.
func Verify(chain uuid.UUID, records []Access) (Head, *Problem) {
	head := Head{Chain: chain}
	prev := Genesis
	for i, r := range records {
		want := int64(i + 1)
		bad := func(reason string) (Head, *Problem) {
			return head, &Problem{Chain: chain, Seq: want, Reason: reason}
		}
		switch {
		case r.Chain != chain:
			return bad(fmt.Sprintf("a record of chain %s is stored in this chain", r.Chain))
		case r.Seq < want:
			return bad(fmt.Sprintf("record %d appears again or out of order (inserted or moved)", r.Seq))
		case r.Seq > want:
			return bad(fmt.Sprintf("records %d to %d are missing (deleted)", want, r.Seq-1))
		case r.PrevHash != prev:
			return bad("its previous hash does not match the record before it (inserted, deleted or moved)")
		case r.ComputeHash() != r.Hash:
			return bad("its content does not match its hash (edited)")
		}
		prev = r.Hash
		head.Seq, head.Hash = r.Seq, r.Hash
	}
	return head, nil
}

// CheckHead compares a chain as verified with the head an auditor kept:
// the kept record must still be there, with the same hash.
func CheckHead(kept Head, records []Access) *Problem {
	if kept.Seq == 0 {
		return nil
	}
	if int64(len(records)) < kept.Seq {
		return &Problem{Chain: kept.Chain, Seq: int64(len(records)) + 1, Reason: fmt.Sprintf("the chain ends at %d but a kept head names record %d (records cut off the end)", len(records), kept.Seq)}
	}
	if r := records[kept.Seq-1]; r.Hash != kept.Hash {
		return &Problem{Chain: kept.Chain, Seq: kept.Seq, Reason: "the record differs from the kept head"}
	}
	return nil
}
