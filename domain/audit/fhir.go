package audit

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// Code systems and identifier systems of the export.
const (
	fhirAuditEventType    = "http://terminology.hl7.org/CodeSystem/audit-event-type"
	fhirRestfulInteract   = "http://hl7.org/fhir/restful-interaction"
	fhirActReason         = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
	fhirSecurityRoleType  = "http://terminology.hl7.org/CodeSystem/extra-security-role-type"
	fhirRoleClass         = "http://terminology.hl7.org/CodeSystem/v3-RoleClass"
	fhirDICOM             = "http://dicom.nema.org/resources/ontology/DCM"
	fhirSecuritySource    = "http://terminology.hl7.org/CodeSystem/security-source-type"
	fhirEntityType        = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
	fhirObjectRole        = "http://terminology.hl7.org/CodeSystem/object-role"
	fhirOnBehalfOf        = "http://hl7.org/fhir/StructureDefinition/auditevent-OnBehalfOf"
	balpEntityType        = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType"
	porticoAccessSubtype  = "https://portico.dev/fhir/CodeSystem/access-subtype"
	porticoIdentifierBase = "https://portico.dev/fhir/sid/"
)

// AuditEvent is a FHIR R4 AuditEvent resource, with the elements the export
// uses. Encode it with encoding/json.
type AuditEvent struct {
	ResourceType   string             `json:"resourceType"`
	ID             string             `json:"id"`
	Type           Coding             `json:"type"`
	Subtype        []Coding           `json:"subtype,omitempty"`
	Action         string             `json:"action,omitempty"`
	Recorded       string             `json:"recorded"`
	Outcome        string             `json:"outcome,omitempty"`
	OutcomeDesc    string             `json:"outcomeDesc,omitempty"`
	PurposeOfEvent []CodeableConcept  `json:"purposeOfEvent,omitempty"`
	Agent          []AuditEventAgent  `json:"agent"`
	Source         AuditEventSource   `json:"source"`
	Entity         []AuditEventEntity `json:"entity,omitempty"`
}

// AuditEventAgent is AuditEvent.agent.
type AuditEventAgent struct {
	Extension []Extension        `json:"extension,omitempty"`
	Type      *CodeableConcept   `json:"type,omitempty"`
	Role      []CodeableConcept  `json:"role,omitempty"`
	Who       *Reference         `json:"who,omitempty"`
	Name      string             `json:"name,omitempty"`
	Requestor bool               `json:"requestor"`
	Network   *AuditEventNetwork `json:"network,omitempty"`
}

// AuditEventNetwork is AuditEvent.agent.network; Type "1" is a machine
// name, "2" an IP address.
type AuditEventNetwork struct {
	Address string `json:"address,omitempty"`
	Type    string `json:"type,omitempty"`
}

// AuditEventSource is AuditEvent.source.
type AuditEventSource struct {
	Observer Reference `json:"observer"`
	Type     []Coding  `json:"type,omitempty"`
}

// AuditEventEntity is AuditEvent.entity.
type AuditEventEntity struct {
	What        *Reference         `json:"what,omitempty"`
	Type        *Coding            `json:"type,omitempty"`
	Role        *Coding            `json:"role,omitempty"`
	Description string             `json:"description,omitempty"`
	Detail      []AuditEventDetail `json:"detail,omitempty"`
}

// AuditEventDetail is AuditEvent.entity.detail, always a string here.
type AuditEventDetail struct {
	Type        string `json:"type"`
	ValueString string `json:"valueString"`
}

// Coding is the FHIR Coding datatype.
type Coding struct {
	System  string `json:"system,omitempty"`
	Code    string `json:"code,omitempty"`
	Display string `json:"display,omitempty"`
}

// CodeableConcept is the FHIR CodeableConcept datatype.
type CodeableConcept struct {
	Coding []Coding `json:"coding,omitempty"`
	Text   string   `json:"text,omitempty"`
}

// Reference is the FHIR Reference datatype: a literal reference
// ("Patient/<id>"), a logical one (an identifier), or both.
type Reference struct {
	Reference  string      `json:"reference,omitempty"`
	Identifier *Identifier `json:"identifier,omitempty"`
	Display    string      `json:"display,omitempty"`
}

// Identifier is the FHIR Identifier datatype.
type Identifier struct {
	System   string     `json:"system,omitempty"`
	Value    string     `json:"value,omitempty"`
	Assigner *Reference `json:"assigner,omitempty"`
}

// Extension is a FHIR extension with a Reference value.
type Extension struct {
	URL            string     `json:"url"`
	ValueReference *Reference `json:"valueReference,omitempty"`
}

var (
	subtypeCodings = map[string][]Coding{
		SubtypeRead:     {{System: fhirRestfulInteract, Code: "read", Display: "read"}},
		SubtypeQuery:    {{System: fhirRestfulInteract, Code: "search-type", Display: "search-type"}},
		SubtypeDownload: {{System: fhirRestfulInteract, Code: "read", Display: "read"}, {System: porticoAccessSubtype, Code: SubtypeDownload, Display: "Download"}},
		SubtypePrint:    {{System: fhirRestfulInteract, Code: "read", Display: "read"}, {System: porticoAccessSubtype, Code: SubtypePrint, Display: "Print"}},
		SubtypeExport:   {{System: fhirRestfulInteract, Code: "operation", Display: "operation"}, {System: porticoAccessSubtype, Code: SubtypeExport, Display: "Export"}},
	}
	purposeDisplays = map[string]string{
		PurposeTreatment:  "treatment",
		PurposePatientReq: "patient requested",
		PurposeCompliance: "health compliance",
		PurposePayment:    "healthcare payment",
		PurposeOperations: "healthcare operations",
	}
	validActions  = map[string]bool{"C": true, "R": true, "U": true, "D": true, "E": true}
	validOutcomes = map[string]bool{"0": true, "4": true, "8": true, "12": true}
	// fhirTypeName is what may stand before the id of a literal reference.
	fhirTypeName = regexp.MustCompile(`^[A-Z][A-Za-z]{0,63}$`)
)

// FHIR converts one access record into a FHIR R4 AuditEvent, shaped as IHE
// Basic Audit Log Patterns (BALP) shape a RESTful read or search. names maps
// account ids (Agent.ID) to display names; it may be nil, and an id it lacks
// is shown without one. The resource follows BALP's patterns without
// claiming its profiles in meta.profile: denials and Portico's own subtypes
// (download, print, export) fall outside them.
//
// How a record maps:
//
//   - type: audit-event-type#rest. subtype: restful-interaction#read for
//     read, download and print, #search-type for query, #operation for
//     export, plus a Portico code (https://portico.dev/fhir/CodeSystem/access-subtype)
//     for download, print and export.
//   - action, outcome, outcomeDesc: the record's (should a stored record lack
//     a valid action or outcome, they are derived from its subtype and HTTP
//     status). recorded: the record's time in UTC, RFC 3339, as precise as
//     stored.
//   - purposeOfEvent: the purpose of use, from v3-ActReason.
//   - agent, in this order. The user, when someone was signed in: the
//     requestor, typed extra-security-role-type#humanuser (DICOM 110150
//     Application for a system actor); who = an identifier
//     (https://portico.dev/fhir/sid/<kind>, the account id) with the display
//     name from names; role = a v3-RoleClass coding (EMP staff, PAT patient,
//     AGNT proxy) with the staff role, "patient" or "patient proxy" as text;
//     network = the caller's address. A proxy acts on behalf of the patient
//     and a staff member on behalf of their clinic: HL7's extension
//     auditevent-OnBehalfOf names Patient/<id> or Organization/<clinic>.
//     Then the client (BALP's DICOM 110153 Source Role ID): the caller's
//     address, with the User-Agent header as its name; the requestor when
//     nobody was signed in. Then the server (BALP's DICOM 110152 Destination
//     Role ID): this instance.
//   - source: observer "<service>/<instance>", type security-source-type#4
//     Application Server.
//   - entity: each patient (Patient/<id>, with /_history/<version> when the
//     record names one; audit-entity-type#1 Person, object-role#1 Patient);
//     each other resource (<Type>/<id>[/_history/<version>], #2 System
//     Object, object-role#4 Domain Resource); the correlation id (the
//     X-Correlation-ID of the request) as BALP's transaction entity
//     (BasicAuditEntityType#XrequestId); and one entity for the response
//     and the record's place in its chain, with the details route,
//     http-status, body-sha256, chain, seq, prev-hash and hash, so that an
//     auditor can tie an exported line back to the chain Verify checks.
func FHIR(a Access, names map[string]string) AuditEvent {
	ev := AuditEvent{
		ResourceType: "AuditEvent",
		ID:           a.RecordID.String(),
		Type:         Coding{System: fhirAuditEventType, Code: "rest", Display: "RESTful Operation"},
		Subtype:      fhirSubtype(a.Subtype),
		Action:       a.Action,
		Recorded:     a.Recorded.UTC().Format(time.RFC3339Nano),
		Outcome:      a.Outcome,
		OutcomeDesc:  a.OutcomeDesc,
		Agent:        fhirAgents(a, names),
		Source: AuditEventSource{
			Observer: observer(a.Source),
			Type:     []Coding{{System: fhirSecuritySource, Code: "4", Display: "Application Server"}},
		},
		Entity: fhirEntities(a),
	}
	// Records are written with valid codes (Recorder sets them); should one
	// ever lack them, derive them rather than export an invalid resource.
	if !validActions[ev.Action] {
		ev.Action = Action(a.Subtype)
	}
	if !validOutcomes[ev.Outcome] {
		ev.Outcome = outcomeOfStatus(a.Status)
	}
	if a.Purpose != "" {
		ev.PurposeOfEvent = []CodeableConcept{{Coding: []Coding{{System: fhirActReason, Code: a.Purpose, Display: purposeDisplays[a.Purpose]}}}}
	}
	return ev
}

// WriteNDJSON writes each record as one FHIR AuditEvent JSON object on a
// line of its own.
func WriteNDJSON(w io.Writer, records []Access, names map[string]string) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for _, a := range records {
		if err := enc.Encode(FHIR(a, names)); err != nil {
			return fmt.Errorf("audit: writing record %s as FHIR: %w", a.RecordID, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("audit: writing FHIR NDJSON: %w", err)
	}
	return nil
}

func fhirSubtype(subtype string) []Coding {
	if c, ok := subtypeCodings[subtype]; ok {
		return append([]Coding(nil), c...)
	}
	if subtype == "" {
		return nil
	}
	return []Coding{{System: porticoAccessSubtype, Code: subtype}}
}

func outcomeOfStatus(status int) string {
	switch {
	case status >= 500:
		return OutcomeFailed
	case status >= 400:
		return OutcomeDenied
	}
	return OutcomeSuccess
}

func fhirAgents(a Access, names map[string]string) []AuditEventAgent {
	var agents []AuditEventAgent
	signedIn := a.Agent.ID != "" || (a.Agent.Kind != "" && a.Agent.Kind != "anonymous")
	net := network(a.Agent.Network)
	if signedIn {
		agents = append(agents, userAgent(a.Agent, names, net))
	}
	client := AuditEventAgent{
		Type:      &CodeableConcept{Coding: []Coding{{System: fhirDICOM, Code: "110153", Display: "Source Role ID"}}},
		Name:      a.Agent.UserAgent,
		Requestor: !signedIn,
		Network:   net,
	}
	if !signedIn {
		client.Role = []CodeableConcept{{Text: "anonymous (not signed in)"}}
		if a.Agent.OnBehalfOf != uuid.Nil {
			client.Extension = []Extension{{URL: fhirOnBehalfOf, ValueReference: &Reference{Reference: "Patient/" + a.Agent.OnBehalfOf.String()}}}
		}
	}
	agents = append(agents, client)
	server := observer(a.Source)
	agents = append(agents, AuditEventAgent{
		Type:      &CodeableConcept{Coding: []Coding{{System: fhirDICOM, Code: "110152", Display: "Destination Role ID"}}},
		Who:       &server,
		Requestor: false,
	})
	return agents
}

func userAgent(ag Agent, names map[string]string, net *AuditEventNetwork) AuditEventAgent {
	u := AuditEventAgent{Requestor: true, Network: net}
	kind := ag.Kind
	if kind == "" {
		kind = "unknown"
	}
	if kind == "system" {
		u.Type = &CodeableConcept{Coding: []Coding{{System: fhirDICOM, Code: "110150", Display: "Application"}}}
	} else {
		u.Type = &CodeableConcept{Coding: []Coding{{System: fhirSecurityRoleType, Code: "humanuser", Display: "human user"}}}
	}
	who := &Reference{Display: names[ag.ID]}
	if ag.ID != "" {
		who.Identifier = &Identifier{System: porticoIdentifierBase + url.PathEscape(kind), Value: ag.ID}
	}
	proxy := ag.OnBehalfOf != uuid.Nil
	switch {
	case proxy:
		u.Extension = []Extension{{URL: fhirOnBehalfOf, ValueReference: &Reference{Reference: "Patient/" + ag.OnBehalfOf.String()}}}
		// The extension is 0..1: a proxy's clinic, should they have one,
		// is the assigner of their identifier instead.
		if ag.ClinicID != uuid.Nil && who.Identifier != nil {
			who.Identifier.Assigner = &Reference{Reference: "Organization/" + ag.ClinicID.String()}
		}
	case ag.ClinicID != uuid.Nil:
		u.Extension = []Extension{{URL: fhirOnBehalfOf, ValueReference: &Reference{Reference: "Organization/" + ag.ClinicID.String()}}}
	}
	if who.Identifier != nil || who.Display != "" {
		u.Who = who
	}
	switch {
	case proxy:
		u.Role = []CodeableConcept{{Coding: []Coding{{System: fhirRoleClass, Code: "AGNT", Display: "agent"}}, Text: "patient proxy"}}
	case kind == "portal":
		u.Role = []CodeableConcept{{Coding: []Coding{{System: fhirRoleClass, Code: "PAT", Display: "patient"}}, Text: "patient"}}
	case kind == "staff":
		role := CodeableConcept{Coding: []Coding{{System: fhirRoleClass, Code: "EMP", Display: "employee"}}, Text: "staff"}
		if ag.Role != "" {
			role.Text = ag.Role
		}
		u.Role = []CodeableConcept{role}
	case ag.Role != "":
		u.Role = []CodeableConcept{{Text: ag.Role}}
	default:
		u.Role = []CodeableConcept{{Text: kind}}
	}
	return u
}

// network is the caller's address, typed IP address ("2") when it parses
// as one and machine name ("1") otherwise.
func network(addr string) *AuditEventNetwork {
	if addr == "" {
		return nil
	}
	if _, err := netip.ParseAddr(addr); err == nil {
		return &AuditEventNetwork{Address: addr, Type: "2"}
	}
	return &AuditEventNetwork{Address: addr, Type: "1"}
}

// observer names this instance: "<service>/<instance>".
func observer(s Source) Reference {
	name := s.Service
	if name == "" {
		name = "portico"
	}
	if s.Instance != "" {
		name += "/" + s.Instance
	}
	return Reference{Identifier: &Identifier{System: porticoIdentifierBase + "instance", Value: name}, Display: name}
}

func fhirEntities(a Access) []AuditEventEntity {
	var out []AuditEventEntity
	patientAt := map[uuid.UUID]int{} // index in out of a patient's entity
	addPatient := func(id uuid.UUID, version int64) {
		if i, ok := patientAt[id]; ok {
			// The patient is named already; say which version was delivered.
			if version > 0 && out[i].What.Reference == "Patient/"+id.String() {
				out[i].What.Reference = literal("Patient", id, version)
			}
			return
		}
		patientAt[id] = len(out)
		out = append(out, AuditEventEntity{
			What: &Reference{Reference: literal("Patient", id, version)},
			Type: &Coding{System: fhirEntityType, Code: "1", Display: "Person"},
			Role: &Coding{System: fhirObjectRole, Code: "1", Display: "Patient"},
		})
	}
	for _, p := range a.Patients {
		addPatient(p, 0)
	}
	for _, e := range a.Entities {
		if e.Type == "Patient" {
			addPatient(e.ID, e.Version)
			continue
		}
		what := &Reference{Reference: literal(e.Type, e.ID, e.Version)}
		if !fhirTypeName.MatchString(e.Type) {
			// Not a resource type: name it by its id, its type as display.
			what = &Reference{Identifier: &Identifier{System: "urn:ietf:rfc:3986", Value: "urn:uuid:" + e.ID.String()}, Display: e.Type}
		}
		out = append(out, AuditEventEntity{
			What: what,
			Type: &Coding{System: fhirEntityType, Code: "2", Display: "System Object"},
			Role: &Coding{System: fhirObjectRole, Code: "4", Display: "Domain Resource"},
		})
	}
	if a.CorrelationID != "" {
		out = append(out, AuditEventEntity{
			What: &Reference{Identifier: &Identifier{Value: a.CorrelationID}},
			Type: &Coding{System: balpEntityType, Code: "XrequestId", Display: "transport specific unique identifier where http X-Request-Id is used"},
		})
	}
	var details []AuditEventDetail
	detail := func(typ, value string) {
		if value != "" {
			details = append(details, AuditEventDetail{Type: typ, ValueString: value})
		}
	}
	detail("route", a.Route)
	if a.Status != 0 {
		detail("http-status", strconv.Itoa(a.Status))
	}
	detail("body-sha256", a.BodySHA256)
	if a.Chain != uuid.Nil {
		detail("chain", a.Chain.String())
		detail("seq", strconv.FormatInt(a.Seq, 10))
		detail("prev-hash", a.PrevHash)
		detail("hash", a.Hash)
	}
	if len(details) > 0 {
		out = append(out, AuditEventEntity{
			Type:        &Coding{System: fhirEntityType, Code: "2", Display: "System Object"},
			Description: "the response delivered (or refused) and this record's place in its PHI access chain",
			Detail:      details,
		})
	}
	return out
}

// literal is a relative literal reference, "<Type>/<id>[/_history/<v>]".
func literal(typ string, id uuid.UUID, version int64) string {
	ref := typ + "/" + id.String()
	if version > 0 {
		ref += "/_history/" + strconv.FormatInt(version, 10)
	}
	return ref
}
