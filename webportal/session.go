package webportal

// Cookies: the session, and the anti-forgery secret of the forms.
//
//   - portico_session holds the API's opaque session token. HttpOnly (no
//     script reads it), SameSite=Lax, Secure outside a loopback http portal,
//     a browser-session cookie (gone when the browser closes); the API ends
//     it after 30 minutes idle or 12 hours.
//   - portico_csrf holds 32 random bytes, HttpOnly, SameSite=Strict. Every
//     form carries HMAC(key, csrf cookie, session token) in a hidden field,
//     checked before anything reaches the API. A forged cross-site form
//     cannot know it; a cookie planted by a sibling domain cannot produce
//     it without the server key; signing in changes it.

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
)

const (
	sessionCookie = "portico_session"
	csrfCookie    = "portico_csrf"
	csrfField     = "csrf"
)

func (p *Portal) sessionToken(r *http.Request) string {
	c, err := r.Cookie(sessionCookie)
	if err != nil || len(c.Value) > 200 {
		return ""
	}
	return c.Value
}

func (p *Portal) setSession(w http.ResponseWriter, token string) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: token, Path: "/", HttpOnly: true, Secure: p.secure, SameSite: http.SameSiteLaxMode})
}

func (p *Portal) clearSession(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: p.secure, SameSite: http.SameSiteLaxMode})
}

// csrfSecret is the browser's anti-forgery secret, set now if it has none.
func (p *Portal) csrfSecret(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) == 43 {
		return c.Value
	}
	st := stateOf(r)
	if st.csrfSet != "" {
		return st.csrfSet
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	v := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: v, Path: "/", HttpOnly: true, Secure: p.secure, SameSite: http.SameSiteStrictMode})
	// Remembered for this request, so every form of the page agrees.
	st.csrfSet = v
	return v
}

// csrfFor is the token forms of this response carry, bound to the
// session the browser has now (none before sign-in).
func (p *Portal) csrfFor(w http.ResponseWriter, r *http.Request) string {
	return p.csrfToken(p.csrfSecret(w, r), p.sessionToken(r))
}

func (p *Portal) csrfToken(secret, session string) string {
	m := hmac.New(sha256.New, p.cfg.CSRFKey)
	m.Write([]byte("portico-webportal-csrf\x00"))
	m.Write([]byte(secret))
	m.Write([]byte{0})
	m.Write([]byte(session))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// csrfOK checks a posted form's token against the browser's cookies.
func (p *Portal) csrfOK(r *http.Request, posted string) bool {
	c, err := r.Cookie(csrfCookie)
	if err != nil || len(c.Value) != 43 || posted == "" {
		return false
	}
	want := p.csrfToken(c.Value, p.sessionToken(r))
	return hmac.Equal([]byte(want), []byte(posted))
}

// checkForm parses a urlencoded form and checks its token. On a refusal it
// has answered and says false.
func (p *Portal) checkForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		p.fail(w, r, http.StatusBadRequest, messageFor(problem{Code: "validation_failed"}, ctxGeneral))
		return false
	}
	if !p.csrfOK(r, r.PostForm.Get(csrfField)) {
		p.csrfRefused(w, r)
		return false
	}
	return true
}

func (p *Portal) csrfRefused(w http.ResponseWriter, r *http.Request) {
	p.fail(w, r, http.StatusForbidden, message{
		Title: "Please send the form again",
		Text: "For your safety this form could not be sent: it was open for a long time, it came from another site, " +
			"or your browser blocks cookies. Go back, reload the page and send it again. The portal needs cookies to work.",
	})
}
