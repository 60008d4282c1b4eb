package webportal

// Pages before and around a session: sign in, sign out, "Forgot password",
// accepting an invitation, resetting a password.

import (
	"net/http"
	"strings"

	"github.com/portico-health/portico/internal/password"
)

// passwordRules are shown on the forms that set a password; they are the
// API's rules (internal/password).
type passwordRules struct {
	Min, Max int
}

var rules = passwordRules{Min: password.MinLength, Max: password.MaxLength}

type authForm struct {
	Email     string
	Token     string
	Rules     passwordRules
	Sent      bool // "Forgot password": the request was sent
	Kind      string
	ResetLink bool
}

func (p *Portal) loginPage(w http.ResponseWriter, r *http.Request) {
	v := &view{Title: "Sign in", Data: authForm{}}
	v.Notice = notices[r.URL.Query().Get("m")]
	if r.URL.Query().Get("m") == "expired" {
		m := messageFor(problem{Code: "unauthenticated"}, ctxLogin)
		m.SignIn = false
		v.Problem = &m
	}
	p.render(w, r, http.StatusOK, "login", v)
}

type loginResponse struct {
	Token   string `json:"token"`
	Account struct {
		Kind string `json:"kind"`
		Name string `json:"name"`
	} `json:"account"`
}

func (p *Portal) login(w http.ResponseWriter, r *http.Request) {
	if !p.checkForm(w, r) {
		return
	}
	email := strings.TrimSpace(r.PostForm.Get("email"))
	res := p.postJSON(r, "", "/auth/login", map[string]string{"email": email, "password": r.PostForm.Get("password")})
	if !res.ok() {
		pr := res.problem()
		m := messageFor(pr, ctxLogin)
		if pr.Code == "too_many_attempts" {
			if t := retryAfterText(res.Header); t != "" {
				m.Text = t + " Or use \u201cForgot password\u201d."
			}
		}
		p.authRefused(w, r, statusFor(pr), "login", "Sign in", authForm{Email: email}, m)
		return
	}
	p.startSession(w, r, res, "/")
}

// startSession keeps the token of a login-like answer in the session cookie
// and goes to next. Staff accounts are signed out again: this portal is
// for portal users.
func (p *Portal) startSession(w http.ResponseWriter, r *http.Request, res apiResult, next string) {
	var lr loginResponse
	if err := res.decode(&lr); err != nil || lr.Token == "" {
		p.fail(w, r, http.StatusBadGateway, messageFor(problem{Code: "internal"}, ctxGeneral))
		return
	}
	if lr.Account.Kind != "portal" {
		p.call(r, http.MethodPost, "/auth/logout", lr.Token, "", nil)
		m := messageFor(problem{Code: "staff_account"}, ctxLogin)
		p.fail(w, r, http.StatusForbidden, m)
		return
	}
	p.setSession(w, lr.Token)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// authRefused shows a pre-session form again with what went wrong.
func (p *Portal) authRefused(w http.ResponseWriter, r *http.Request, status int, page, title string, f authForm, m message) {
	m.Reference = correlationID(r)
	f.Rules = rules
	p.render(w, r, status, page, &view{Title: title, Problem: &m, Data: f})
}

func (p *Portal) logout(w http.ResponseWriter, r *http.Request) {
	if !p.checkForm(w, r) {
		return
	}
	if tok := p.sessionToken(r); tok != "" {
		p.call(r, http.MethodPost, "/auth/logout", tok, "", nil)
	}
	p.clearSession(w)
	http.Redirect(w, r, "/login?m=signed_out", http.StatusSeeOther)
}

func (p *Portal) forgotPage(w http.ResponseWriter, r *http.Request) {
	p.render(w, r, http.StatusOK, "forgot", &view{Title: "Forgot password", Data: authForm{}})
}

// forgot asks the API for a new link. The API answers alike whether or not
// the address has an account, and so does this page.
func (p *Portal) forgot(w http.ResponseWriter, r *http.Request) {
	if !p.checkForm(w, r) {
		return
	}
	email := strings.TrimSpace(r.PostForm.Get("email"))
	res := p.postJSON(r, "", "/auth/forgot-password", map[string]string{"email": email})
	if !res.ok() {
		pr := res.problem()
		p.authRefused(w, r, statusFor(pr), "forgot", "Forgot password", authForm{Email: email}, messageFor(pr, ctxGeneral))
		return
	}
	p.render(w, r, http.StatusOK, "forgot", &view{Title: "Check your email", Notice: notices["link_sent"], Data: authForm{Sent: true}})
}

func (p *Portal) invitePage(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("token")
	if tok == "" || len(tok) > 512 {
		p.authRefused(w, r, http.StatusBadRequest, "newlink", "This link does not work", authForm{}, messageFor(problem{Code: "token_invalid"}, ctxInvite))
		return
	}
	p.render(w, r, http.StatusOK, "invite", &view{Title: "Create your password", Data: authForm{Token: tok, Rules: rules}})
}

// accept accepts an invitation: the API sets the password (or, for an
// account that has one, checks it) and signs the user in.
func (p *Portal) accept(w http.ResponseWriter, r *http.Request) {
	if res, ok := p.setPassword(w, r, "invite", "Create your password", ctxInvite, "/invitations/accept"); ok {
		p.startSession(w, r, res, "/")
	}
}

// setPassword sends a link's token and the new password (typed twice) to
// the API. On a refusal it shows the form again with the reason, or the
// "send me a new link" page for a link that no longer works, and says false.
func (p *Portal) setPassword(w http.ResponseWriter, r *http.Request, page, title string, ctx msgContext, api string) (apiResult, bool) {
	if !p.checkForm(w, r) {
		return apiResult{}, false
	}
	tok, pw := r.PostForm.Get("token"), r.PostForm.Get("password")
	f := authForm{Token: tok}
	if pw != r.PostForm.Get("password2") {
		p.authRefused(w, r, http.StatusBadRequest, page, title, f, messageFor(problem{Code: "passwords_differ"}, ctx))
		return apiResult{}, false
	}
	res := p.postJSON(r, "", api, map[string]string{"token": tok, "password": pw})
	if res.ok() {
		return res, true
	}
	pr := res.problem()
	m := messageFor(pr, ctx)
	if m.NewLink {
		page, title = "newlink", m.Title
	}
	if pr.Code == "too_many_attempts" {
		if t := retryAfterText(res.Header); t != "" {
			m.Text = t
		}
	}
	p.authRefused(w, r, statusFor(pr), page, title, f, m)
	return apiResult{}, false
}

func (p *Portal) resetPage(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("token")
	if tok == "" || len(tok) > 512 {
		p.authRefused(w, r, http.StatusBadRequest, "newlink", "This link does not work", authForm{}, messageFor(problem{Code: "token_invalid"}, ctxReset))
		return
	}
	p.render(w, r, http.StatusOK, "reset", &view{Title: "Choose a new password", Data: authForm{Token: tok, Rules: rules}})
}

func (p *Portal) reset(w http.ResponseWriter, r *http.Request) {
	if _, ok := p.setPassword(w, r, "reset", "Choose a new password", ctxReset, "/auth/reset-password"); !ok {
		return
	}
	// A reset ends every session of the account, this browser's too.
	p.clearSession(w)
	http.Redirect(w, r, "/login?m=password_set", http.StatusSeeOther)
}

// passwordPage is the signed-in user's "Change password" form.
func (p *Portal) passwordPage(w http.ResponseWriter, r *http.Request) {
	s, ok := p.signedIn(w, r)
	if !ok {
		return
	}
	p.render(w, r, http.StatusOK, "password", &view{Title: "Change your password", Account: s.me.Name, Patients: s.me.Patients,
		Data: authForm{Rules: rules}})
}

// changePassword sends the current and the new password to the API; this
// browser is signed in again with the new session the API answers, the
// account's other sessions are over.
func (p *Portal) changePassword(w http.ResponseWriter, r *http.Request) {
	if !p.checkForm(w, r) {
		return
	}
	s, ok := p.signedIn(w, r)
	if !ok {
		return
	}
	again := func(status int, m message) {
		m.Reference = correlationID(r)
		p.render(w, r, status, "password", &view{Title: "Change your password", Account: s.me.Name, Patients: s.me.Patients,
			Problem: &m, Data: authForm{Rules: rules}})
	}
	pw := r.PostForm.Get("password")
	if pw != r.PostForm.Get("password2") {
		again(http.StatusBadRequest, messageFor(problem{Code: "passwords_differ"}, ctxGeneral))
		return
	}
	res := p.postJSON(r, s.token, "/auth/change-password", map[string]string{"current_password": r.PostForm.Get("current"), "new_password": pw})
	if !res.ok() {
		pr := res.problem()
		if pr.Code == "unauthenticated" {
			p.apiFailed(w, r, res, ctxGeneral)
			return
		}
		m := messageFor(pr, ctxGeneral)
		if pr.Code == "too_many_attempts" {
			if t := retryAfterText(res.Header); t != "" {
				m.Text = t + " Or sign out and use \u201cForgot password\u201d."
			}
		}
		again(statusFor(pr), m)
		return
	}
	// Every session of the account ended, this one too; the answer is a
	// fresh one for this browser.
	p.startSession(w, r, res, "/?m=password_changed")
}
