package webportal

// The signed-in pages: the start page, a patient's page (appointments,
// documents, home activities, intake forms), the access log, and the file
// routes, each a call (or a few) to the API's /portal routes.

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

type linkedPatient struct {
	PatientID    string   `json:"patient_id"`
	Name         string   `json:"name"`
	Relationship string   `json:"relationship"`
	Permissions  []string `json:"permissions"`
}

func (l linkedPatient) Allows(perm string) bool { return slices.Contains(l.Permissions, perm) }

type me struct {
	Name     string          `json:"name"`
	Kind     string          `json:"kind"`
	Patients []linkedPatient `json:"patients"`
}

// session is a signed-in request: the token and the account (GET /me).
type session struct {
	token string
	me    me
}

// signedIn reads the account of the browser's session. Without a live
// session it sends the browser to the sign-in page and says false.
func (p *Portal) signedIn(w http.ResponseWriter, r *http.Request) (session, bool) {
	tok := p.sessionToken(r)
	if tok == "" {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return session{}, false
	}
	res := p.get(r, tok, "/me")
	if !res.ok() {
		p.apiFailed(w, r, res, ctxGeneral)
		return session{}, false
	}
	var m me
	if err := res.decode(&m); err != nil {
		p.fail(w, r, http.StatusBadGateway, messageFor(problem{Code: "internal"}, ctxGeneral))
		return session{}, false
	}
	if m.Kind != "portal" {
		p.fail(w, r, http.StatusForbidden, messageFor(problem{Code: "staff_account"}, ctxGeneral))
		return session{}, false
	}
	return session{token: tok, me: m}, true
}

// apiFailed answers a browser request whose API call failed: an ended
// session goes to the sign-in page, anything else is an error page.
func (p *Portal) apiFailed(w http.ResponseWriter, r *http.Request, res apiResult, where msgContext) {
	pr := res.problem()
	if pr.Code == "unauthenticated" {
		p.clearSession(w)
		http.Redirect(w, r, "/login?m=expired", http.StatusSeeOther)
		return
	}
	m := messageFor(pr, where)
	m.Reference = correlationID(r)
	p.fail(w, r, statusFor(pr), m)
}

// patientOf is the linked patient the path names; ok false (answered 404)
// when the account is not linked to it.
// signedInFor is signedIn, then patientOf: the start of every patient page.
func (p *Portal) signedInFor(w http.ResponseWriter, r *http.Request) (session, linkedPatient, bool) {
	s, ok := p.signedIn(w, r)
	if !ok {
		return s, linkedPatient{}, false
	}
	lp, ok := p.patientOf(w, r, s)
	return s, lp, ok
}

func (p *Portal) patientOf(w http.ResponseWriter, r *http.Request, s session) (linkedPatient, bool) {
	pid := r.PathValue("pid")
	if _, err := uuid.Parse(pid); err == nil {
		for _, lp := range s.me.Patients {
			if lp.PatientID == pid {
				return lp, true
			}
		}
	}
	m := messageFor(problem{Code: "not_found"}, ctxGeneral)
	p.render(w, r, http.StatusNotFound, "error", &view{Title: m.Title, Problem: &m, Account: s.me.Name, Patients: s.me.Patients})
	return linkedPatient{}, false
}

// home sends a signed-in user to their first patient; signed out, to the
// sign-in page.
func (p *Portal) home(w http.ResponseWriter, r *http.Request) {
	s, ok := p.signedIn(w, r)
	if !ok {
		return
	}
	if len(s.me.Patients) == 0 {
		p.render(w, r, http.StatusOK, "nopatients", &view{Title: "No patients yet", Account: s.me.Name})
		return
	}
	target := "/patients/" + s.me.Patients[0].PatientID
	if m := r.URL.Query().Get("m"); notices[m] != "" {
		target += "?m=" + m
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

type appointment struct {
	ID       string    `json:"id"`
	StartsAt time.Time `json:"starts_at"`
	EndsAt   time.Time `json:"ends_at"`
	Provider string    `json:"provider"`
	Location string    `json:"location"`
	Kind     string    `json:"kind"`
}

type document struct {
	ID          string    `json:"id"`
	Type        string    `json:"type"`
	Title       string    `json:"title"`
	CompletedAt time.Time `json:"completed_at"`
	File        struct {
		Name      string `json:"name"`
		Size      int64  `json:"size"`
		MediaType string `json:"media_type"`
	} `json:"file"`
}

type activity struct {
	ID           string    `json:"id"`
	Title        string    `json:"title"`
	Instructions string    `json:"instructions"`
	Frequency    *string   `json:"frequency"`
	AssignedAt   time.Time `json:"assigned_at"`
}

type intakeForm struct {
	AssignmentID string    `json:"assignment_id"`
	FormName     string    `json:"form_name"`
	Message      string    `json:"message"`
	AssignedAt   time.Time `json:"assigned_at"`
	Returned     *struct {
		ReturnedAt time.Time `json:"returned_at"`
		Name       string    `json:"name"`
		Size       int64     `json:"size"`
		Returns    int       `json:"returns"`
	} `json:"returned"`
}

// section is one part of a patient's page: Shown false hides it (the
// clinic or the grant does not allow it); Failed says it could not be read.
type section[T any] struct {
	Shown  bool
	Failed string
	Items  []T
	Count  int
}

type patientData struct {
	Patient      linkedPatient
	Appointments section[appointment]
	Documents    section[document]
	Activities   section[activity]
	Forms        section[intakeForm]
	Billing      bool
	FormProblem  *message
	Loc          *time.Location
}

// load reads one section from the API into sec; a 404 hides it (the clinic
// turned it off, or the grant does not allow it). It says false when the
// session has ended (and has answered).
func load[T any](p *Portal, w http.ResponseWriter, r *http.Request, token, path, field string, sec *section[T]) bool {
	res := p.get(r, token, path)
	if !res.ok() {
		pr := res.problem()
		switch {
		case pr.Code == "unauthenticated":
			p.apiFailed(w, r, res, ctxGeneral)
			return false
		case res.Status == http.StatusNotFound:
			sec.Shown = false
		default:
			sec.Shown = true
			sec.Failed = messageFor(pr, ctxGeneral).Title
		}
		return true
	}
	var body map[string]jsonRaw
	if err := res.decode(&body); err != nil {
		sec.Shown, sec.Failed = true, "Something went wrong"
		return true
	}
	sec.Shown = true
	_ = body[field].decode(&sec.Items)
	sec.Count = len(sec.Items)
	_ = body["count"].decode(&sec.Count)
	return true
}

func (p *Portal) patient(w http.ResponseWriter, r *http.Request) {
	s, lp, ok := p.signedInFor(w, r)
	if !ok {
		return
	}
	base := "/portal/patients/" + lp.PatientID
	d := patientData{Patient: lp, Billing: lp.Allows("billing"), Loc: p.cfg.Location}
	if !load(p, w, r, s.token, base+"/appointments", "appointments", &d.Appointments) {
		return
	}
	if lp.Allows("documents") && !load(p, w, r, s.token, base+"/documents", "documents", &d.Documents) {
		return
	}
	if lp.Allows("activities") && !load(p, w, r, s.token, base+"/home-activities", "home_activities", &d.Activities) {
		return
	}
	if lp.Allows("forms") && !load(p, w, r, s.token, base+"/intake-forms", "intake_forms", &d.Forms) {
		return
	}
	v := &view{Title: lp.Name, Account: s.me.Name, Patients: s.me.Patients, Current: &lp, Data: d}
	q := r.URL.Query()
	v.Notice = notices[q.Get("m")]
	if e := q.Get("e"); errorCodes[e] {
		m := messageFor(problem{Code: e}, ctxUpload)
		d.FormProblem = &m
		v.Data = d
	}
	p.render(w, r, http.StatusOK, "patient", v)
}

// passFile streams a file the API answered (a document, a printable
// activity, a blank form, a receipt) with its media type and disposition;
// ?download=1 makes it an attachment.
func (p *Portal) passFile(w http.ResponseWriter, r *http.Request, apiPath string) {
	s, _, ok := p.signedInFor(w, r)
	if !ok {
		return
	}
	res := p.get(r, s.token, apiPath)
	if !res.ok() {
		p.apiFailed(w, r, res, ctxGeneral)
		return
	}
	h := w.Header()
	ct := res.Header.Get("Content-Type")
	if ct == "" {
		ct = "application/octet-stream"
	}
	h.Set("Content-Type", ct)
	disp := res.Header.Get("Content-Disposition")
	if r.URL.Query().Get("download") == "1" {
		if _, params, err := mime.ParseMediaType(disp); err == nil {
			disp = mime.FormatMediaType("attachment", params)
		} else {
			disp = "attachment"
		}
	}
	if disp != "" {
		h.Set("Content-Disposition", disp)
	}
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	// A file is not a page: no scripts, no framing; the browser's PDF
	// viewer still shows it.
	h.Set("Content-Security-Policy", "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; frame-ancestors 'none'")
	_, _ = w.Write(res.Body)
}

func (p *Portal) ids(r *http.Request, names ...string) (string, bool) {
	var parts []string
	for _, n := range names {
		v := r.PathValue(n)
		if _, err := uuid.Parse(v); err != nil {
			return "", false
		}
		parts = append(parts, v)
	}
	return strings.Join(parts, "/"), true
}

// apiFile passes through the file the API serves at
// /portal/patients/{pid}/<kind>/{<id>}/<suffix>, for the page route with the
// same ids: a document, an activity's print, a blank form, a receipt.
func (p *Portal) apiFile(id, kind, suffix string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, ok := p.ids(r, "pid", id); !ok {
			p.notFound(w, r)
			return
		}
		p.passFile(w, r, "/portal/patients/"+r.PathValue("pid")+"/"+kind+"/"+r.PathValue(id)+"/"+suffix)
	}
}

// formReturn takes the browser's multipart form (the anti-forgery token and
// the file), checks the token, and sends the file alone to the API, which
// checks its size and type before storing it.
func (p *Portal) formReturn(w http.ResponseWriter, r *http.Request) {
	if _, ok := p.ids(r, "pid", "aid"); !ok {
		p.notFound(w, r)
		return
	}
	pid, aid := r.PathValue("pid"), r.PathValue("aid")
	back := func(q string) {
		http.Redirect(w, r, "/patients/"+pid+"?"+q+"#forms", http.StatusSeeOther)
	}
	r.Body = http.MaxBytesReader(w, r.Body, p.cfg.UploadLimit+64<<10)
	mr, err := r.MultipartReader()
	if err != nil {
		p.csrfRefused(w, r)
		return
	}
	var token, fileName, fileType string
	var data []byte
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			back(uploadFailure(err))
			return
		}
		switch part.FormName() {
		case csrfField:
			b, _ := io.ReadAll(io.LimitReader(part, 256))
			token = string(b)
		case "file":
			fileName, fileType = part.FileName(), part.Header.Get("Content-Type")
			data, err = io.ReadAll(io.LimitReader(part, p.cfg.UploadLimit+1))
			if err != nil {
				back(uploadFailure(err))
				return
			}
		default:
			_, _ = io.Copy(io.Discard, part)
		}
	}
	if !p.csrfOK(r, token) {
		p.csrfRefused(w, r)
		return
	}
	if int64(len(data)) > p.cfg.UploadLimit {
		back("e=file_too_large")
		return
	}
	if len(data) == 0 {
		back("e=no_file")
		return
	}
	s, _, ok := p.signedInFor(w, r)
	if !ok {
		return
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	hdr := textproto.MIMEHeader{}
	hdr.Set("Content-Disposition", mime.FormatMediaType("form-data", map[string]string{"name": "file", "filename": fileName}))
	if fileType == "" {
		fileType = "application/octet-stream"
	}
	hdr.Set("Content-Type", fileType)
	fw, _ := mw.CreatePart(hdr)
	_, _ = fw.Write(data)
	_ = mw.Close()
	res := p.call(r, http.MethodPost, "/portal/patients/"+pid+"/intake-forms/"+aid+"/return", s.token, mw.FormDataContentType(), buf.Bytes())
	if !res.ok() {
		pr := res.problem()
		if pr.Code == "unauthenticated" {
			p.apiFailed(w, r, res, ctxUpload)
			return
		}
		code := pr.Code
		if !errorCodes[code] {
			code = "internal"
		}
		back("e=" + url.QueryEscape(code))
		return
	}
	back("m=returned")
}

// uploadFailure names what went wrong reading an upload.
func uploadFailure(err error) string {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return "e=file_too_large"
	}
	return "e=upload_incomplete"
}

type accessEntry struct {
	Recorded time.Time `json:"recorded"`
	Who      string    `json:"who"`
	Kind     string    `json:"kind"`
	Role     string    `json:"role"`
	Subtype  string    `json:"subtype"`
	What     []string  `json:"what"`
	Outcome  string    `json:"outcome"`
}

type accessData struct {
	Patient linkedPatient
	Entries []accessEntry
	Next    string
	First   bool
	Loc     *time.Location
}

func (p *Portal) accessLog(w http.ResponseWriter, r *http.Request) {
	s, lp, ok := p.signedInFor(w, r)
	if !ok {
		return
	}
	path := "/portal/patients/" + lp.PatientID + "/access-log"
	cursor := r.URL.Query().Get("cursor")
	if cursor != "" {
		path += "?cursor=" + url.QueryEscape(cursor)
	}
	res := p.get(r, s.token, path)
	if !res.ok() {
		p.apiFailed(w, r, res, ctxGeneral)
		return
	}
	var body struct {
		Accesses   []accessEntry `json:"accesses"`
		NextCursor string        `json:"next_cursor"`
	}
	if err := res.decode(&body); err != nil {
		p.fail(w, r, http.StatusBadGateway, messageFor(problem{Code: "internal"}, ctxGeneral))
		return
	}
	d := accessData{Patient: lp, Entries: body.Accesses, First: cursor == "", Loc: p.cfg.Location}
	if body.NextCursor != "" {
		d.Next = "/patients/" + lp.PatientID + "/access-log?cursor=" + url.QueryEscape(body.NextCursor)
	}
	p.render(w, r, http.StatusOK, "accesslog", &view{Title: "Who accessed " + lp.Name + "\u2019s record", Account: s.me.Name, Patients: s.me.Patients, Current: &lp, Data: d})
}
