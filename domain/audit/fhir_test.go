package audit_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain/audit"
)

// ---------------------------------------------------------------------------
// A structural validator of FHIR R4 (4.0.1) AuditEvent, written from the
// resource's definition: every element with its cardinality and type, the
// required value sets (action, outcome, network type, identifier use,
// narrative status), the JSON rules of FHIR (no nulls, no empty strings,
// arrays or objects: ele-1), the primitive types' formats, the invariants
// that concern the structure (ext-1, sev-1, one value[x] in a detail), and
// the format of literal references.

// element is one element of a structure: its cardinality and its type.
type element struct {
	min, max int // max -1: unbounded
	typ      string
	codes    []string // a required value set, for code elements
}

const many = -1

func opt(typ string) element        { return element{0, 1, typ, nil} }
func req(typ string) element        { return element{1, 1, typ, nil} }
func list(typ string) element       { return element{0, many, typ, nil} }
func oneOf(codes ...string) element { return element{0, 1, "code", codes} }

// base are the elements every element has; backbone adds modifierExtension.
func base(els map[string]element) map[string]element {
	els["id"] = opt("string")
	els["extension"] = list("Extension")
	return els
}

func backbone(els map[string]element) map[string]element {
	els["modifierExtension"] = list("Extension")
	return base(els)
}

var structures = map[string]map[string]element{
	"AuditEvent": {
		"id":                opt("id"),
		"meta":              opt("Meta"),
		"implicitRules":     opt("uri"),
		"language":          opt("code"),
		"text":              opt("Narrative"),
		"contained":         list("Resource"),
		"extension":         list("Extension"),
		"modifierExtension": list("Extension"),
		"type":              req("Coding"),
		"subtype":           list("Coding"),
		"action":            oneOf("C", "R", "U", "D", "E"),
		"period":            opt("Period"),
		"recorded":          req("instant"),
		"outcome":           oneOf("0", "4", "8", "12"),
		"outcomeDesc":       opt("string"),
		"purposeOfEvent":    list("CodeableConcept"),
		"agent":             {1, many, "AuditEvent.agent", nil},
		"source":            req("AuditEvent.source"),
		"entity":            list("AuditEvent.entity"),
	},
	"AuditEvent.agent": backbone(map[string]element{
		"type":         opt("CodeableConcept"),
		"role":         list("CodeableConcept"),
		"who":          opt("Reference"),
		"altId":        opt("string"),
		"name":         opt("string"),
		"requestor":    req("boolean"),
		"location":     opt("Reference"),
		"policy":       list("uri"),
		"media":        opt("Coding"),
		"network":      opt("AuditEvent.agent.network"),
		"purposeOfUse": list("CodeableConcept"),
	}),
	"AuditEvent.agent.network": backbone(map[string]element{
		"address": opt("string"),
		"type":    oneOf("1", "2", "3", "4", "5"),
	}),
	"AuditEvent.source": backbone(map[string]element{
		"site":     opt("string"),
		"observer": req("Reference"),
		"type":     list("Coding"),
	}),
	"AuditEvent.entity": backbone(map[string]element{
		"what":          opt("Reference"),
		"type":          opt("Coding"),
		"role":          opt("Coding"),
		"lifecycle":     opt("Coding"),
		"securityLabel": list("Coding"),
		"name":          opt("string"),
		"description":   opt("string"),
		"query":         opt("base64Binary"),
		"detail":        list("AuditEvent.entity.detail"),
	}),
	"AuditEvent.entity.detail": backbone(map[string]element{
		"type":              req("string"),
		"valueString":       opt("string"),
		"valueBase64Binary": opt("base64Binary"),
	}),
	"Coding": base(map[string]element{
		"system":       opt("uri"),
		"version":      opt("string"),
		"code":         opt("code"),
		"display":      opt("string"),
		"userSelected": opt("boolean"),
	}),
	"CodeableConcept": base(map[string]element{
		"coding": list("Coding"),
		"text":   opt("string"),
	}),
	"Reference": base(map[string]element{
		"reference":  opt("string"),
		"type":       opt("uri"),
		"identifier": opt("Identifier"),
		"display":    opt("string"),
	}),
	"Identifier": base(map[string]element{
		"use":      oneOf("usual", "official", "temp", "secondary", "old"),
		"type":     opt("CodeableConcept"),
		"system":   opt("uri"),
		"value":    opt("string"),
		"period":   opt("Period"),
		"assigner": opt("Reference"),
	}),
	"Period": base(map[string]element{
		"start": opt("dateTime"),
		"end":   opt("dateTime"),
	}),
	"Meta": base(map[string]element{
		"versionId":   opt("id"),
		"lastUpdated": opt("instant"),
		"source":      opt("uri"),
		"profile":     list("uri"),
		"security":    list("Coding"),
		"tag":         list("Coding"),
	}),
	"Narrative": base(map[string]element{
		"status": {1, 1, "code", []string{"generated", "extensions", "additional", "empty"}},
		"div":    req("string"),
	}),
}

var primitives = map[string]*regexp.Regexp{
	"string":       regexp.MustCompile(`^[ \r\n\t\S]+$`),
	"code":         regexp.MustCompile(`^[^\s]+(\s[^\s]+)*$`),
	"uri":          regexp.MustCompile(`^\S+$`),
	"id":           regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`),
	"instant":      regexp.MustCompile(`^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))$`),
	"dateTime":     regexp.MustCompile(`^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?$`),
	"base64Binary": regexp.MustCompile(`^[A-Za-z0-9+/=\s]+$`),
	"boolean":      nil, // a JSON boolean
}

// A literal reference: relative ("Type/id", "Type/id/_history/v"), to a
// contained resource ("#id"), absolute (a URL), or a urn:uuid / urn:oid.
var literalRef = regexp.MustCompile(`^(([A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(/_history/[A-Za-z0-9\-.]{1,64})?` +
	`|#[A-Za-z0-9\-.]{1,64}` +
	`|https?://\S+/([A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(/_history/[A-Za-z0-9\-.]{1,64})?` +
	`|urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}` +
	`|urn:oid:[0-2](\.(0|[1-9][0-9]*))+)$`)

type validator struct{ problems []string }

func (v *validator) bad(path, format string, args ...any) {
	v.problems = append(v.problems, path+": "+fmt.Sprintf(format, args...))
}

// validateAuditEvent returns what makes res no valid FHIR R4 AuditEvent.
func validateAuditEvent(res map[string]any) []string {
	v := &validator{}
	switch rt, ok := res["resourceType"].(string); {
	case !ok:
		v.bad("AuditEvent", "resourceType is missing or not a string")
	case rt != "AuditEvent":
		v.bad("AuditEvent", "resourceType is %q, not AuditEvent", rt)
	}
	rest := maps.Clone(res)
	delete(rest, "resourceType")
	v.structure("AuditEvent", "AuditEvent", rest)
	// The type of the event is a coded value: system and code (the export's
	// requirement; R4 binds it to the audit-event-type value set).
	if c, ok := res["type"].(map[string]any); ok {
		if s, _ := c["system"].(string); s == "" {
			v.bad("AuditEvent.type", "has no system")
		}
		if s, _ := c["code"].(string); s == "" {
			v.bad("AuditEvent.type", "has no code")
		}
	}
	return v.problems
}

// structure checks an object against the elements of a structure.
func (v *validator) structure(path, name string, obj map[string]any) {
	els := structures[name]
	if len(obj) == 0 {
		v.bad(path, "is empty (ele-1: an element must have a value or children)")
		return
	}
	for _, key := range slices.Sorted(maps.Keys(obj)) {
		val := obj[key]
		if prim, ok := strings.CutPrefix(key, "_"); ok {
			// A primitive's id and extensions, beside its value.
			if el, known := els[prim]; known && isPrimitive(el.typ) {
				v.primitiveElement(path+"."+key, el, val)
				continue
			}
			v.bad(path+"."+key, "is not an element of %s", name)
			continue
		}
		el, known := els[key]
		if !known {
			v.bad(path+"."+key, "is not an element of %s", name)
			continue
		}
		if el.max == 1 {
			v.value(path+"."+key, el, val)
			continue
		}
		arr, isArr := val.([]any)
		if !isArr {
			v.bad(path+"."+key, "repeats (0..*), so must be an array")
			continue
		}
		if len(arr) == 0 {
			v.bad(path+"."+key, "is an empty array")
		}
		for i, item := range arr {
			v.value(fmt.Sprintf("%s.%s[%d]", path, key, i), el, item)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(els)) {
		el := els[key]
		if el.min == 0 {
			continue
		}
		n := 0
		switch val := obj[key].(type) {
		case nil:
			if _, ext := obj["_"+key]; ext && isPrimitive(el.typ) {
				n = 1 // present through extensions only
			}
		case []any:
			n = len(val)
		default:
			n = 1
		}
		if n < el.min {
			v.bad(path+"."+key, "is required (%d..%s) but has %d", el.min, maxString(el.max), n)
		}
	}
	// Invariants.
	switch name {
	case "AuditEvent.entity":
		if _, hasName := obj["name"]; hasName {
			if _, hasQuery := obj["query"]; hasQuery {
				v.bad(path, "has both name and query (sev-1)")
			}
		}
	case "AuditEvent.entity.detail":
		n := 0
		for key := range obj {
			if strings.HasPrefix(key, "value") {
				n++
			}
		}
		if n != 1 {
			v.bad(path, "must have exactly one value[x] (1..1), has %d", n)
		}
	case "Reference":
		if ref, ok := obj["reference"].(string); ok && !literalRef.MatchString(ref) {
			v.bad(path+".reference", "%q is no literal reference (Type/id[/_history/version], #id, URL or urn)", ref)
		}
	}
}

func maxString(m int) string {
	if m == many {
		return "*"
	}
	return fmt.Sprint(m)
}

func isPrimitive(typ string) bool {
	_, ok := primitives[typ]
	return ok
}

// value checks one value of an element.
func (v *validator) value(path string, el element, val any) {
	if val == nil {
		v.bad(path, "is null")
		return
	}
	if isPrimitive(el.typ) {
		v.primitive(path, el, val)
		return
	}
	obj, ok := val.(map[string]any)
	if !ok {
		v.bad(path, "must be a %s object, is %T", el.typ, val)
		return
	}
	switch el.typ {
	case "Extension":
		v.extension(path, obj)
	case "Resource":
		if rt, _ := obj["resourceType"].(string); rt == "" {
			v.bad(path, "a contained resource needs a resourceType")
		}
	default:
		if _, ok := structures[el.typ]; !ok {
			panic("validator: no structure " + el.typ)
		}
		v.structure(path, el.typ, obj)
	}
}

func (v *validator) primitive(path string, el element, val any) {
	if el.typ == "boolean" {
		if _, ok := val.(bool); !ok {
			v.bad(path, "must be a JSON boolean, is %T", val)
		}
		return
	}
	s, ok := val.(string)
	if !ok {
		v.bad(path, "must be a JSON string (%s), is %T", el.typ, val)
		return
	}
	if !primitives[el.typ].MatchString(s) {
		v.bad(path, "%q is no valid %s", s, el.typ)
		return
	}
	switch el.typ {
	case "instant":
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			v.bad(path, "%q is no valid instant: %v", s, err)
		}
	case "base64Binary":
		if _, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), "")); err != nil {
			v.bad(path, "%q is no valid base64Binary: %v", s, err)
		}
	}
	if el.codes != nil && !slices.Contains(el.codes, s) {
		v.bad(path, "%q is not in the required value set %v", s, el.codes)
	}
}

// primitiveElement checks "_name": the id and extensions of a primitive.
func (v *validator) primitiveElement(path string, el element, val any) {
	check := func(p string, x any) {
		if x == nil && el.max != 1 {
			return // a repeating primitive's entry without extensions
		}
		obj, ok := x.(map[string]any)
		if !ok {
			v.bad(p, "must be an object (id, extension)")
			return
		}
		v.structure(p, "Element", obj)
	}
	if el.max == 1 {
		check(path, val)
		return
	}
	arr, ok := val.([]any)
	if !ok {
		v.bad(path, "must be an array")
		return
	}
	for i, x := range arr {
		check(fmt.Sprintf("%s[%d]", path, i), x)
	}
}

func init() { structures["Element"] = base(map[string]element{}) }

// extension checks an extension: a url, and either a value[x] or nested
// extensions (ext-1).
func (v *validator) extension(path string, obj map[string]any) {
	if u, ok := obj["url"].(string); !ok || !primitives["uri"].MatchString(u) {
		v.bad(path+".url", "is required (1..1 uri)")
	}
	var values []string
	for _, key := range slices.Sorted(maps.Keys(obj)) {
		val := obj[key]
		switch {
		case key == "url":
		case key == "id":
			v.value(path+".id", opt("string"), val)
		case key == "extension":
			arr, ok := val.([]any)
			if !ok || len(arr) == 0 {
				v.bad(path+".extension", "must be a non-empty array")
				continue
			}
			for i, x := range arr {
				v.value(fmt.Sprintf("%s.extension[%d]", path, i), list("Extension"), x)
			}
		case strings.HasPrefix(key, "value") && len(key) > len("value"):
			values = append(values, key)
			switch key {
			case "valueReference":
				v.value(path+"."+key, opt("Reference"), val)
			case "valueString":
				v.value(path+"."+key, opt("string"), val)
			case "valueCoding":
				v.value(path+"."+key, opt("Coding"), val)
			case "valueCodeableConcept":
				v.value(path+"."+key, opt("CodeableConcept"), val)
			case "valueIdentifier":
				v.value(path+"."+key, opt("Identifier"), val)
			default:
				if val == nil {
					v.bad(path+"."+key, "is null")
				}
			}
		default:
			v.bad(path+"."+key, "is not an element of Extension")
		}
	}
	_, nested := obj["extension"]
	switch {
	case len(values) > 1:
		v.bad(path, "has more than one value[x]: %v", values)
	case len(values) == 1 && nested:
		v.bad(path, "has both a value and nested extensions (ext-1)")
	case len(values) == 0 && !nested:
		v.bad(path, "has neither a value nor nested extensions (ext-1)")
	}
}

// ---------------------------------------------------------------------------
// The same resources checked against the AuditEvent part of the official
// FHIR R4 JSON schema (testdata/README.md), by a small interpreter of the
// keywords it uses.

type jsonSchema struct {
	defs     map[string]any
	patterns map[string]*regexp.Regexp
}

func loadSchema(t *testing.T) *jsonSchema {
	t.Helper()
	raw, err := os.ReadFile("testdata/fhir-r4-auditevent.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Definitions map[string]any `json:"definitions"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if _, ok := doc.Definitions["AuditEvent"]; !ok {
		t.Fatal("the schema has no AuditEvent")
	}
	return &jsonSchema{defs: doc.Definitions, patterns: map[string]*regexp.Regexp{}}
}

var knownKeywords = []string{"description", "$ref", "type", "properties", "additionalProperties", "required", "enum", "const", "pattern", "items"}

// validate returns where val breaks the schema node.
func (s *jsonSchema) validate(path string, node map[string]any, val any) []string {
	var out []string
	bad := func(format string, args ...any) { out = append(out, path+": "+fmt.Sprintf(format, args...)) }
	for key := range node {
		if !slices.Contains(knownKeywords, key) {
			panic("schema keyword " + key + " is not implemented")
		}
	}
	if ref, ok := node["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/definitions/")
		def, ok := s.defs[name].(map[string]any)
		if !ok {
			panic("schema: unresolved " + ref)
		}
		out = append(out, s.validate(path, def, val)...)
	}
	if typ, ok := node["type"].(string); ok {
		okType := false
		switch typ {
		case "string":
			_, okType = val.(string)
		case "number":
			_, okType = val.(float64)
		case "boolean":
			_, okType = val.(bool)
		case "object":
			_, okType = val.(map[string]any)
		case "array":
			_, okType = val.([]any)
		default:
			panic("schema type " + typ)
		}
		if !okType {
			bad("is %T, not %s", val, typ)
			return out
		}
	}
	if c, ok := node["const"]; ok && !reflect.DeepEqual(c, val) {
		bad("is %v, must be %v", val, c)
	}
	if enum, ok := node["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool { return reflect.DeepEqual(e, val) }) {
		bad("%v is not one of %v", val, enum)
	}
	if p, ok := node["pattern"].(string); ok {
		if str, isStr := val.(string); isStr { // patterns apply to strings only
			re, seen := s.patterns[p]
			if !seen {
				re = regexp.MustCompile(p)
				s.patterns[p] = re
			}
			if !re.MatchString(str) {
				bad("%q does not match %s", str, p)
			}
		}
	}
	if items, ok := node["items"].(map[string]any); ok {
		if arr, isArr := val.([]any); isArr {
			for i, x := range arr {
				out = append(out, s.validate(fmt.Sprintf("%s[%d]", path, i), items, x)...)
			}
		}
	}
	props, hasProps := node["properties"].(map[string]any)
	if hasProps || node["required"] != nil {
		obj, isObj := val.(map[string]any)
		if !isObj {
			bad("is %T, not an object", val)
			return out
		}
		required, _ := node["required"].([]any)
		for _, r := range required {
			if _, present := obj[r.(string)]; !present {
				bad("lacks required property %s", r)
			}
		}
		for _, key := range slices.Sorted(maps.Keys(obj)) {
			sub, known := props[key].(map[string]any)
			if !known {
				if node["additionalProperties"] == false {
					bad("has property %s, which the schema does not allow", key)
				}
				continue
			}
			out = append(out, s.validate(path+"."+key, sub, obj[key])...)
		}
	}
	return out
}

func (s *jsonSchema) validateAuditEvent(res map[string]any) []string {
	return s.validate("AuditEvent", map[string]any{"$ref": "#/definitions/AuditEvent"}, res)
}

// ---------------------------------------------------------------------------
// The export.

var (
	clinic     = uuid.MustParse("0b6a2f9e-51c3-4c47-9a5e-2f1d8c0e7a11")
	staffID    = uuid.MustParse("5d0c1f7a-3e2b-4c8d-9f10-6a7b8c9d0e1f").String()
	auditorID  = uuid.MustParse("6e1d2a8b-4f3c-4d9e-8a21-7b8c9d0e1f2a").String()
	portalID   = uuid.MustParse("7f2e3b9c-5a4d-4eaf-9b32-8c9d0e1f2a3b").String()
	patientA   = uuid.MustParse("a1a1a1a1-0000-4000-8000-000000000001")
	patientB   = uuid.MustParse("b2b2b2b2-0000-4000-8000-000000000002")
	patientC   = uuid.MustParse("c3c3c3c3-0000-4000-8000-000000000003")
	appt1      = uuid.MustParse("d4d4d4d4-0000-4000-8000-000000000004")
	appt2      = uuid.MustParse("e5e5e5e5-0000-4000-8000-000000000005")
	docRef     = uuid.MustParse("f6f6f6f6-0000-4000-8000-000000000006")
	exportTime = time.Date(2026, 3, 14, 15, 9, 26, 535897000, time.FixedZone("CET", 3600))
	names      = map[string]string{staffID: "Dr. Ada Lovelace", auditorID: "Grace Hopper", portalID: "Mary Proxy"}
	bodyHash   = strings.Repeat("ab", 32)
)

// sampleChain is one chain of records of every kind the export must handle.
func sampleChain() []audit.Access {
	src := audit.Source{Service: "portico", Instance: "portald-1"}
	raw := []audit.Access{
		{ // a staff member reads a patient and an appointment
			Subtype: audit.SubtypeRead, Outcome: audit.OutcomeSuccess,
			Agent:    audit.Agent{ID: staffID, Kind: "staff", Role: "staff", ClinicID: clinic, Network: "203.0.113.7", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) <Firefox/140.0>"},
			Patients: []uuid.UUID{patientA},
			Entities: []audit.Entity{{Type: "Patient", ID: patientA, Version: 7}, {Type: "Appointment", ID: appt1, Version: 2}},
			Purpose:  audit.PurposeTreatment, CorrelationID: uuid.NewString(),
			Route: "GET /api/v1/patients/:pid", Status: 200,
		},
		{ // nobody signed in: refused
			Subtype: audit.SubtypeRead, Outcome: audit.OutcomeDenied, OutcomeDesc: "Unauthorized",
			Agent:    audit.Agent{Kind: "anonymous", Network: "2001:db8::1", UserAgent: "curl/8.5.0"},
			Patients: []uuid.UUID{patientB}, Entities: []audit.Entity{},
			Purpose: audit.PurposeOperations, CorrelationID: uuid.NewString(),
			Route: "GET /api/v1/patients/:pid", Status: 401,
		},
		{ // a parent reads their child's appointments through the portal
			Subtype: audit.SubtypeQuery, Outcome: audit.OutcomeSuccess,
			Agent:    audit.Agent{ID: portalID, Kind: "portal", OnBehalfOf: patientC, Network: "198.51.100.23", UserAgent: "PorticoApp/2.1 (iOS 19)"},
			Patients: []uuid.UUID{patientC},
			Entities: []audit.Entity{{Type: "Appointment", ID: appt1, Version: 3}, {Type: "Appointment", ID: appt2}},
			Purpose:  audit.PurposePatientReq, CorrelationID: uuid.NewString(),
			Route: "GET /api/v1/portal/patients/:pid/appointments", Status: 200,
		},
		{ // an auditor exports, entities with versions
			Subtype: audit.SubtypeExport, Outcome: audit.OutcomeSuccess,
			Agent:    audit.Agent{ID: auditorID, Kind: "staff", Role: "auditor", ClinicID: clinic, Network: "10.0.0.5"},
			Patients: []uuid.UUID{patientA, patientB},
			Entities: []audit.Entity{{Type: "Patient", ID: patientB, Version: 4}, {Type: "DocumentReference", ID: docRef, Version: 1}, {Type: "Appointment", ID: appt2, Version: 9}},
			Purpose:  audit.PurposeCompliance,
			Route:    "GET /api/v1/audit/access/export", Status: 200,
		},
		{ // a download that failed on our side
			Subtype: audit.SubtypeDownload, Outcome: audit.OutcomeFailed, OutcomeDesc: "the request failed",
			Agent:    audit.Agent{ID: staffID, Kind: "staff", Role: "billing", ClinicID: clinic, Network: "gateway.internal"},
			Patients: []uuid.UUID{patientA}, Entities: []audit.Entity{{Type: "DocumentReference", ID: docRef}},
			Purpose: audit.PurposePayment, CorrelationID: uuid.NewString(),
			Route: "GET /api/v1/patients/:pid/documents/:did/content", Status: 500,
		},
		{ // the patient prints their own record
			Subtype: audit.SubtypePrint, Outcome: audit.OutcomeSuccess,
			Agent:    audit.Agent{ID: portalID, Kind: "portal"},
			Patients: []uuid.UUID{patientC}, Entities: []audit.Entity{},
			Purpose: audit.PurposePatientReq,
			Route:   "GET /api/v1/portal/patients/:pid/summary.pdf", Status: 200,
		},
	}
	chain := uuid.New()
	var out []audit.Access
	for i, a := range raw {
		a.RecordID = uuid.New()
		a.Recorded = exportTime.Add(time.Duration(i) * time.Second)
		a.Action = audit.Action(a.Subtype)
		a.Source = src
		a.BodySHA256 = bodyHash
		var prev *audit.Access
		if len(out) > 0 {
			prev = &out[len(out)-1]
		}
		out = append(out, audit.Link(a, chain, prev))
	}
	return out
}

func exportLines(t *testing.T, records []audit.Access) []map[string]any {
	t.Helper()
	var buf bytes.Buffer
	if err := audit.WriteNDJSON(&buf, records, names); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(buf.Bytes(), []byte("\n")) {
		t.Fatal("the NDJSON does not end with a newline")
	}
	var out []map[string]any
	sc := bufio.NewScanner(&buf)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			t.Fatalf("line %d is empty", len(out)+1)
		}
		var res map[string]any
		if err := json.Unmarshal(line, &res); err != nil {
			t.Fatalf("line %d is no JSON object: %v\n%s", len(out)+1, err, line)
		}
		out = append(out, res)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) != len(records) {
		t.Fatalf("%d lines for %d records", len(out), len(records))
	}
	return out
}

func TestNDJSONExportValidatesAsFHIRR4AuditEvent(t *testing.T) {
	records := sampleChain()
	if _, p := audit.Verify(records[0].Chain, records); p != nil {
		t.Fatalf("the sample chain does not verify: %v", p)
	}
	schema := loadSchema(t)
	for i, res := range exportLines(t, records) {
		if problems := validateAuditEvent(res); len(problems) > 0 {
			t.Errorf("line %d is no valid AuditEvent:\n  %s", i+1, strings.Join(problems, "\n  "))
		}
		if problems := schema.validateAuditEvent(res); len(problems) > 0 {
			t.Errorf("line %d breaks the FHIR R4 JSON schema:\n  %s", i+1, strings.Join(problems, "\n  "))
		}
	}
}

func TestNDJSONLinesDecodeToTheTypedResource(t *testing.T) {
	records := sampleChain()
	var buf bytes.Buffer
	if err := audit.WriteNDJSON(&buf, records, names); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(&buf)
	dec.DisallowUnknownFields()
	for i, a := range records {
		var got audit.AuditEvent
		if err := dec.Decode(&got); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if want := audit.FHIR(a, names); !reflect.DeepEqual(got, want) {
			t.Errorf("line %d:\n got %+v\nwant %+v", i+1, got, want)
		}
	}
}

// find returns the elements of arr (decoded JSON objects) for which match
// is true.
func find(arr any, match func(map[string]any) bool) []map[string]any {
	var out []map[string]any
	items, _ := arr.([]any)
	for _, x := range items {
		if m, ok := x.(map[string]any); ok && match(m) {
			out = append(out, m)
		}
	}
	return out
}

// get walks decoded JSON: keys for objects, ints for arrays.
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			a, _ := v.([]any)
			if k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

func hasCoding(cc any, system, code string) bool {
	return len(find(get(cc, "coding"), func(c map[string]any) bool { return c["system"] == system && c["code"] == code })) > 0
}

func codingIs(c any, system, code string) bool {
	return get(c, "system") == system && get(c, "code") == code
}

func TestExportCarriesTheRecord(t *testing.T) {
	const (
		restful  = "http://hl7.org/fhir/restful-interaction"
		portico  = "https://portico.dev/fhir/CodeSystem/access-subtype"
		dcm      = "http://dicom.nema.org/resources/ontology/DCM"
		entType  = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
		objRole  = "http://terminology.hl7.org/CodeSystem/object-role"
		behalf   = "http://hl7.org/fhir/StructureDefinition/auditevent-OnBehalfOf"
		xrequest = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType"
	)
	records := sampleChain()
	lines := exportLines(t, records)

	for i, res := range lines {
		a := records[i]
		if res["id"] != a.RecordID.String() {
			t.Errorf("line %d: id %v, want %s", i+1, res["id"], a.RecordID)
		}
		if !codingIs(res["type"], "http://terminology.hl7.org/CodeSystem/audit-event-type", "rest") {
			t.Errorf("line %d: type %v", i+1, res["type"])
		}
		if res["action"] != a.Action || res["outcome"] != a.Outcome {
			t.Errorf("line %d: action %v outcome %v, want %s %s", i+1, res["action"], res["outcome"], a.Action, a.Outcome)
		}
		rec, err := time.Parse(time.RFC3339Nano, res["recorded"].(string))
		if err != nil || !rec.Equal(a.Recorded) {
			t.Errorf("line %d: recorded %v, want %s", i+1, res["recorded"], a.Recorded)
		}
		if !hasCoding(get(res, "purposeOfEvent", 0), "http://terminology.hl7.org/CodeSystem/v3-ActReason", a.Purpose) {
			t.Errorf("line %d: purposeOfEvent %v, want %s", i+1, res["purposeOfEvent"], a.Purpose)
		}
		if obs := get(res, "source", "observer", "display"); obs != "portico/portald-1" {
			t.Errorf("line %d: observer %v", i+1, obs)
		}
		if !codingIs(get(res, "source", "type", 0), "http://terminology.hl7.org/CodeSystem/security-source-type", "4") {
			t.Errorf("line %d: source type %v", i+1, get(res, "source", "type"))
		}
		// Exactly one requestor.
		if n := len(find(res["agent"], func(ag map[string]any) bool { return ag["requestor"] == true })); n != 1 {
			t.Errorf("line %d: %d requestors", i+1, n)
		}
		// The client carries the address and the User-Agent header.
		client := find(res["agent"], func(ag map[string]any) bool { return hasCoding(ag["type"], dcm, "110153") })
		wantAddr := any(a.Agent.Network)
		if a.Agent.Network == "" {
			wantAddr = nil
		}
		if len(client) != 1 || get(client[0], "network", "address") != wantAddr {
			t.Errorf("line %d: client agent %v", i+1, client)
		} else if a.Agent.UserAgent != "" && client[0]["name"] != a.Agent.UserAgent {
			t.Errorf("line %d: client name %v, want the user agent %q", i+1, client[0]["name"], a.Agent.UserAgent)
		}
		// Every patient, as Person/Patient.
		for _, p := range a.Patients {
			pe := find(res["entity"], func(e map[string]any) bool {
				ref, _ := get(e, "what", "reference").(string)
				return strings.HasPrefix(ref, "Patient/"+p.String()) && codingIs(e["type"], entType, "1") && codingIs(e["role"], objRole, "1")
			})
			if len(pe) != 1 {
				t.Errorf("line %d: %d entities for patient %s", i+1, len(pe), p)
			}
		}
		// Other entities, with their versions.
		for _, e := range a.Entities {
			want := e.Type + "/" + e.ID.String()
			if e.Version > 0 {
				want += fmt.Sprintf("/_history/%d", e.Version)
			}
			if len(find(res["entity"], func(m map[string]any) bool { return get(m, "what", "reference") == want })) != 1 {
				t.Errorf("line %d: no entity %s", i+1, want)
			}
		}
		// The correlation id, as BALP's transaction entity.
		tx := find(res["entity"], func(e map[string]any) bool { return codingIs(e["type"], xrequest, "XrequestId") })
		switch {
		case a.CorrelationID == "" && len(tx) != 0:
			t.Errorf("line %d: a transaction entity without a correlation id", i+1)
		case a.CorrelationID != "" && (len(tx) != 1 || get(tx[0], "what", "identifier", "value") != a.CorrelationID):
			t.Errorf("line %d: transaction entity %v, want %s", i+1, tx, a.CorrelationID)
		}
		// The body hash and the chain link, as details of one entity.
		details := map[string]string{}
		for _, e := range find(res["entity"], func(e map[string]any) bool { return e["detail"] != nil }) {
			for _, d := range find(e["detail"], func(map[string]any) bool { return true }) {
				details[d["type"].(string)] = d["valueString"].(string)
			}
		}
		want := map[string]string{
			"route": a.Route, "http-status": fmt.Sprint(a.Status), "body-sha256": a.BodySHA256,
			"chain": a.Chain.String(), "seq": fmt.Sprint(a.Seq), "prev-hash": a.PrevHash, "hash": a.Hash,
		}
		if !maps.Equal(details, want) {
			t.Errorf("line %d: details %v, want %v", i+1, details, want)
		}
	}

	// Subtypes.
	subtypes := map[int][][2]string{
		0: {{restful, "read"}},
		2: {{restful, "search-type"}},
		3: {{restful, "operation"}, {portico, "export"}},
		4: {{restful, "read"}, {portico, "download"}},
		5: {{restful, "read"}, {portico, "print"}},
	}
	for i, want := range subtypes {
		var got [][2]string
		for _, c := range find(lines[i]["subtype"], func(map[string]any) bool { return true }) {
			got = append(got, [2]string{c["system"].(string), c["code"].(string)})
		}
		if !slices.Equal(got, want) {
			t.Errorf("line %d (%s): subtype %v, want %v", i+1, records[i].Subtype, got, want)
		}
	}

	// The staff member: named, with their role, on behalf of their clinic.
	user := get(lines[0], "agent", 0)
	if get(user, "requestor") != true || get(user, "who", "display") != "Dr. Ada Lovelace" || get(user, "who", "identifier", "value") != staffID ||
		!hasCoding(get(user, "type"), "http://terminology.hl7.org/CodeSystem/extra-security-role-type", "humanuser") ||
		get(user, "role", 0, "text") != "staff" || get(user, "network", "type") != "2" ||
		get(user, "extension", 0, "url") != behalf || get(user, "extension", 0, "valueReference", "reference") != "Organization/"+clinic.String() {
		t.Errorf("staff agent: %v", user)
	}
	// A patient entity also listed among the entities is named once, with its version.
	if refs := find(lines[0]["entity"], func(e map[string]any) bool { return codingIs(e["role"], objRole, "1") }); len(refs) != 1 ||
		get(refs[0], "what", "reference") != fmt.Sprintf("Patient/%s/_history/7", patientA) {
		t.Errorf("staff read: patient entities %v", refs)
	}
	// Nobody signed in: only the client and the server, the client asking.
	anon := lines[1]["agent"].([]any)
	if len(anon) != 2 || get(anon, 0, "requestor") != true || get(anon, 0, "network", "type") != "2" || lines[1]["outcomeDesc"] != "Unauthorized" {
		t.Errorf("anonymous agents: %v", anon)
	}
	// The proxy: on behalf of the patient.
	proxy := get(lines[2], "agent", 0)
	if get(proxy, "role", 0, "text") != "patient proxy" || get(proxy, "who", "display") != "Mary Proxy" ||
		get(proxy, "extension", 0, "url") != behalf || get(proxy, "extension", 0, "valueReference", "reference") != "Patient/"+patientC.String() {
		t.Errorf("proxy agent: %v", proxy)
	}
	// A machine name is typed as one.
	if nt := get(lines[4], "agent", 0, "network", "type"); nt != "1" {
		t.Errorf("network type of a machine name: %v", nt)
	}
	// The patient, for themself.
	if r := get(lines[5], "agent", 0, "role", 0, "text"); r != "patient" {
		t.Errorf("patient agent role: %v", r)
	}
}

func TestExportWithoutNames(t *testing.T) {
	a := sampleChain()[0]
	ev := audit.FHIR(a, nil)
	if ev.Agent[0].Who == nil || ev.Agent[0].Who.Display != "" || ev.Agent[0].Who.Identifier.Value != staffID {
		t.Errorf("agent without a known name: %+v", ev.Agent[0].Who)
	}
	// An unlinked record without codes still exports as a valid resource.
	bare := audit.Access{RecordID: uuid.New(), Recorded: exportTime, Subtype: audit.SubtypeQuery, Status: 404, Agent: audit.Agent{Kind: "anonymous"}}
	b, err := json.Marshal(audit.FHIR(bare, nil))
	if err != nil {
		t.Fatal(err)
	}
	var res map[string]any
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if p := validateAuditEvent(res); len(p) > 0 {
		t.Errorf("bare record: %v\n%s", p, b)
	}
	if p := loadSchema(t).validateAuditEvent(res); len(p) > 0 {
		t.Errorf("bare record against the schema: %v\n%s", p, b)
	}
	if res["action"] != "E" || res["outcome"] != "4" {
		t.Errorf("bare record: action %v outcome %v, want E 4", res["action"], res["outcome"])
	}
}

// TestValidatorsRejectBrokenResources shows that both validators can fail:
// each change breaks a valid exported resource, and the validators say so.
func TestValidatorsRejectBrokenResources(t *testing.T) {
	schema := loadSchema(t)
	cases := []struct {
		name   string
		mutate func(r map[string]any)
		schema bool // the JSON schema catches it too
	}{
		{"no resourceType", func(r map[string]any) { delete(r, "resourceType") }, true},
		{"another resourceType", func(r map[string]any) { r["resourceType"] = "Patient" }, true},
		{"unknown top-level element", func(r map[string]any) { r["severity"] = "high" }, true},
		{"element of another version (R5 occurredDateTime)", func(r map[string]any) { r["occurredDateTime"] = "2026-01-01" }, true},
		{"no type", func(r map[string]any) { delete(r, "type") }, true},
		{"type repeated", func(r map[string]any) { r["type"] = []any{r["type"]} }, true},
		{"type without system", func(r map[string]any) { delete(r["type"].(map[string]any), "system") }, false},
		{"type without code", func(r map[string]any) { delete(r["type"].(map[string]any), "code") }, false},
		{"subtype not an array", func(r map[string]any) { r["subtype"] = get(r, "subtype", 0) }, true},
		{"action outside its value set", func(r map[string]any) { r["action"] = "X" }, true},
		{"outcome outside its value set", func(r map[string]any) { r["outcome"] = "1" }, true},
		{"no recorded", func(r map[string]any) { delete(r, "recorded") }, false},
		{"recorded without a time zone", func(r map[string]any) { r["recorded"] = "2026-03-14T15:09:26" }, true},
		{"recorded a date only", func(r map[string]any) { r["recorded"] = "2026-03-14" }, true},
		{"recorded an impossible date", func(r map[string]any) { r["recorded"] = "2026-02-30T10:00:00Z" }, false},
		{"empty outcomeDesc", func(r map[string]any) { r["outcomeDesc"] = "" }, true},
		{"null element", func(r map[string]any) { r["outcomeDesc"] = nil }, true},
		{"no agent", func(r map[string]any) { delete(r, "agent") }, true},
		{"no agent at all (empty array)", func(r map[string]any) { r["agent"] = []any{} }, false},
		{"agent without requestor", func(r map[string]any) { delete(get(r, "agent", 0).(map[string]any), "requestor") }, false},
		{"requestor a string", func(r map[string]any) { get(r, "agent", 0).(map[string]any)["requestor"] = "true" }, true},
		{"unknown agent element", func(r map[string]any) { get(r, "agent", 0).(map[string]any)["clinic"] = "x" }, true},
		{"network type outside 1..5", func(r map[string]any) { get(r, "agent", 0, "network").(map[string]any)["type"] = "9" }, true},
		{"role not an array", func(r map[string]any) {
			ag := get(r, "agent", 0).(map[string]any)
			ag["role"] = get(ag, "role", 0)
		}, true},
		{"empty who", func(r map[string]any) { get(r, "agent", 0).(map[string]any)["who"] = map[string]any{} }, false},
		{"no source", func(r map[string]any) { delete(r, "source") }, true},
		{"source without observer", func(r map[string]any) { delete(r["source"].(map[string]any), "observer") }, true},
		{"entity what not a reference", func(r map[string]any) {
			get(r, "entity", 0, "what").(map[string]any)["reference"] = "patient:" + patientA.String()
		}, false},
		{"entity what without id", func(r map[string]any) { get(r, "entity", 0, "what").(map[string]any)["reference"] = "Patient/" }, false},
		{"entity what a string", func(r map[string]any) { get(r, "entity", 0).(map[string]any)["what"] = "Patient/1" }, true},
		{"entity with name and query", func(r map[string]any) {
			e := get(r, "entity", 0).(map[string]any)
			e["name"], e["query"] = "x", base64.StdEncoding.EncodeToString([]byte("GET /"))
		}, false},
		{"detail without a value", func(r map[string]any) {
			d := lastDetail(r)
			delete(d, "valueString")
		}, false},
		{"detail with two values", func(r map[string]any) { lastDetail(r)["valueBase64Binary"] = "AAAA" }, false},
		{"detail without type", func(r map[string]any) { delete(lastDetail(r), "type") }, false},
		{"extension without url", func(r map[string]any) { delete(get(r, "agent", 0, "extension", 0).(map[string]any), "url") }, false},
		{"extension without value", func(r map[string]any) {
			delete(get(r, "agent", 0, "extension", 0).(map[string]any), "valueReference")
		}, false},
		{"primitive extension on an unknown element", func(r map[string]any) { r["_severity"] = map[string]any{"id": "a"} }, true},
	}
	valid := exportLines(t, sampleChain()[:1])[0]
	if p := validateAuditEvent(valid); len(p) > 0 {
		t.Fatalf("the starting resource is invalid: %v", p)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := deepCopy(valid)
			c.mutate(r)
			if p := validateAuditEvent(r); len(p) == 0 {
				t.Errorf("the structural validator accepts it")
			} else {
				t.Logf("structural: %s", strings.Join(p, "; "))
			}
			if c.schema {
				if p := schema.validateAuditEvent(r); len(p) == 0 {
					t.Errorf("the JSON schema accepts it")
				} else {
					t.Logf("schema: %s", strings.Join(p, "; "))
				}
			}
		})
	}
}

func lastDetail(r map[string]any) map[string]any {
	ents := r["entity"].([]any)
	e := ents[len(ents)-1].(map[string]any)
	return get(e, "detail", 0).(map[string]any)
}

func deepCopy(r map[string]any) map[string]any {
	b, err := json.Marshal(r)
	if err != nil {
		panic(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}
