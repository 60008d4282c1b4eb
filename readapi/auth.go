package readapi

// Sign-in, sign-out and the session middleware every signed-in route uses.
//
//	api.GET("/patients", s.requireSession("staff"), h)           // any staff member
//	api.POST("/staff", s.requireStaffRole("admin"), h)           // administrators only
//	api.GET("/me", s.requireSession(), h)                        // staff or portal
//
// Behind either middleware, sessionOf(c) is the caller's session and
// actorOf(c) the actor for a command. Tokens are never logged, put in an
// error or an event; only their SHA-256 is stored (internal/sessions).

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/portico-health/portico/commands"
	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/internal/sessions"
	"github.com/portico-health/portico/internal/throttle"
)

func init() {
	routeGroups = append(routeGroups, func(s *server, api *gin.RouterGroup) {
		store := s.sessionStore()
		api.POST("/auth/login", s.login(store, s.limiter()))
		api.POST("/auth/logout", s.requireSession(), s.logout(store))
		api.POST("/auth/change-password", s.requireSession(), s.changePassword(store, s.limiter()))
	})
	notPHI["POST /api/v1/auth/change-password"] = "a new session token and the caller's own account, like a login"
}

// admit runs a throttled attempt past the limiter: refused (429
// too_many_attempts with Retry-After) or allowed after its delay. On false
// it has answered the request.
func (s *server) admit(c *gin.Context, limiter *throttle.Limiter, keys []string, refusal string) bool {
	d, err := limiter.Check(c.Request.Context(), keys...)
	if err != nil {
		fail(c, err)
		return false
	}
	if !d.Allowed {
		wait := max(d.RetryAfter.Sub(s.now()), time.Second)
		c.Header("Retry-After", strconv.Itoa(int(wait.Round(time.Second).Seconds())))
		abortProblem(c, http.StatusTooManyRequests, "too_many_attempts", refusal)
		return false
	}
	if err := d.Wait(c.Request.Context()); err != nil {
		fail(c, err)
		return false
	}
	return true
}

// limiter is the sign-in throttle, in the database of Pool.
func (s *server) limiter() *throttle.Limiter { return throttle.New(s.Pool, throttle.WithClock(s.now)) }

// sessionStore is the store of the server's sessions, in the database of Pool.
func (s *server) sessionStore() *sessions.Store {
	return sessions.New(s.Pool, sessions.WithClock(s.now))
}

// maxLoginBody bounds what POST /auth/login reads: a long password is at
// most 256 characters, and nobody needs more to say who they are.
const maxLoginBody = 16 << 10

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// accountJSON is an account as the API shows it. ClinicID is only shown by
// GET /me.
type accountJSON struct {
	ID       uuid.UUID  `json:"id"`
	Kind     string     `json:"kind"`
	Name     string     `json:"name"`
	Email    string     `json:"email"`
	Role     string     `json:"role,omitempty"`
	ClinicID *uuid.UUID `json:"clinic_id,omitempty"`
}

func accountOf(a commands.Account) accountJSON {
	return accountJSON{ID: a.ID, Kind: a.Kind, Name: a.Name, Email: a.Email, Role: a.Role}
}

type loginResponse struct {
	Token     string      `json:"token"`
	ExpiresAt time.Time   `json:"expires_at"`
	Account   accountJSON `json:"account"`
}

// login answers POST /auth/login. Whatever was wrong (the body, the email,
// the password) the answer is the same 401 invalid_credentials, reached
// through the same work: a body that does not parse is an attempt with an
// empty email and password, which commands.SignIn refuses like any other.
//
// Failures are throttled per email and per client address (internal/throttle):
// after a few, each attempt waits longer; after more, the email or the
// address is refused for a while with 429 too_many_attempts, known and
// unknown emails alike.
func (s *server) login(store *sessions.Store, limiter *throttle.Limiter) gin.HandlerFunc {
	return func(c *gin.Context) {
		var in loginRequest
		if err := json.NewDecoder(http.MaxBytesReader(c.Writer, c.Request.Body, maxLoginBody)).Decode(&in); err != nil {
			in = loginRequest{}
		}
		ctx := c.Request.Context()
		keys := []string{throttle.AccountKey(in.Email), throttle.AddrKey(c.ClientIP())}
		if !s.admit(c, limiter, keys, "too many failed sign-ins; try again later, or use \"Forgot password\"") {
			return
		}
		acct, err := s.Commands.SignIn(ctx, commands.SignIn{Email: in.Email, Password: in.Password})
		if err != nil {
			if de, ok := domain.AsError(err); ok && de.Code == "invalid_credentials" {
				if ferr := limiter.Fail(ctx, keys...); ferr != nil {
					fail(c, ferr)
					return
				}
			}
			fail(c, err)
			return
		}
		if err := limiter.Succeed(ctx, keys...); err != nil {
			fail(c, err)
			return
		}
		s.startSession(c, store, acct)
	}
}

// logout answers POST /auth/logout: it ends the session the call was made
// with (requireSession has checked it). Other sessions of the account live on.
func (s *server) logout(store *sessions.Store) gin.HandlerFunc {
	return func(c *gin.Context) {
		token, _ := bearerToken(c)
		if err := store.End(c.Request.Context(), token); err != nil {
			fail(c, err)
			return
		}
		c.Status(http.StatusNoContent)
	}
}

// changePassword answers POST /auth/change-password {current_password,
// new_password} like a login: every session of the account has ended, the
// old token included, and the answer carries a fresh one. A wrong current
// password counts as a failed sign-in on the account, so a session left open
// cannot be used to guess it.
func (s *server) changePassword(store *sessions.Store, limiter *throttle.Limiter) gin.HandlerFunc {
	return func(c *gin.Context) {
		var in struct {
			Current string `json:"current_password"`
			New     string `json:"new_password"`
		}
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxLoginBody)
		if !bindJSON(c, &in) {
			return
		}
		meta, ok := metaOf(c)
		if !ok {
			return
		}
		ctx := c.Request.Context()
		sess := sessionOf(c)
		var acct commands.Account
		var err error
		if sess.AccountKind == sessions.KindPortal {
			acct, err = s.Commands.PortalAccount(ctx, sess.AccountID)
		} else {
			acct, err = s.Commands.StaffAccount(ctx, sess.AccountID)
		}
		if err != nil {
			fail(c, err)
			return
		}
		keys := []string{throttle.AccountKey(acct.Email), throttle.AddrKey(c.ClientIP())}
		if !s.admit(c, limiter, keys, "too many wrong passwords; try again later, or use \"Forgot password\"") {
			return
		}
		acct, err = s.Commands.ChangePassword(ctx, meta, commands.ChangePassword{
			AccountID: sess.AccountID, AccountKind: sess.AccountKind, Current: in.Current, New: in.New})
		if errors.Is(err, commands.ErrCurrentPasswordWrong) {
			if ferr := limiter.Fail(ctx, keys...); ferr != nil {
				err = ferr
			}
		}
		if err != nil {
			fail(c, err)
			return
		}
		if err := limiter.Succeed(ctx, keys...); err != nil {
			fail(c, err)
			return
		}
		s.startSession(c, store, acct)
	}
}

const sessionKey = "portico.session"

// errUnauthenticated is the refusal of a call without a live session.
func errUnauthenticated(detail string) *domain.Error {
	return &domain.Error{Kind: domain.KindUnauthorized, Code: "unauthenticated", Message: detail}
}

// requireSession lets a call through only with a live session (from
// Authorization: Bearer <token>), and puts the session on the context for
// sessionOf. A missing, unknown, ended or expired session answers 401
// unauthenticated. With kinds ("staff", "portal"), a session of another kind
// answers 403 forbidden; without, any kind may pass.
func (s *server) requireSession(kinds ...string) gin.HandlerFunc {
	store := s.sessionStore()
	return func(c *gin.Context) {
		sess, ok := authenticate(c, store)
		if !ok {
			return
		}
		if len(kinds) > 0 && !slices.Contains(kinds, sess.AccountKind) {
			fail(c, domain.Forbidden("this is not open to %s accounts", sess.AccountKind))
		}
	}
}

// requireStaffRole lets a call through only with a live staff session whose
// role is one of roles (any staff role when none are given); it
// authenticates the call itself unless requireSession already has. Other
// signed-in callers answer 403 forbidden: these are staff administration
// routes whose paths name no resource, so the answer reveals no id.
func (s *server) requireStaffRole(roles ...string) gin.HandlerFunc {
	store := s.sessionStore()
	return func(c *gin.Context) {
		sess, ok := authenticate(c, store)
		if !ok {
			return
		}
		if sess.AccountKind != sessions.KindStaff || (len(roles) > 0 && !slices.Contains(roles, sess.Role)) {
			fail(c, domain.Forbidden("your role may not do this"))
		}
	}
}

// authenticate finds the call's session, on the context already or from its
// bearer token. When there is none it has answered the call, and says false.
func authenticate(c *gin.Context, store *sessions.Store) (sessions.Session, bool) {
	if v, ok := c.Get(sessionKey); ok {
		if sess, ok := v.(sessions.Session); ok {
			return sess, true
		}
	}
	token, ok := bearerToken(c)
	if !ok {
		refuse(c, errUnauthenticated("sign in first: this call needs the header Authorization: Bearer <token>"))
		return sessions.Session{}, false
	}
	sess, err := store.Authenticate(c.Request.Context(), token)
	if errors.Is(err, sessions.ErrInvalid) {
		refuse(c, errUnauthenticated("the session is unknown, ended or expired; sign in again"))
		return sessions.Session{}, false
	}
	if err != nil {
		fail(c, err)
		return sessions.Session{}, false
	}
	c.Set(sessionKey, sess)
	return sess, true
}

// refuse answers 401 with the challenge RFC 6750 asks for.
func refuse(c *gin.Context, err *domain.Error) {
	c.Header("WWW-Authenticate", `Bearer realm="portico"`)
	fail(c, err)
}

// bearerToken reads Authorization: Bearer <token> (the scheme in any case).
func bearerToken(c *gin.Context) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(c.GetHeader("Authorization")), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return token, true
}

// sessionOf is the caller's session. Only handlers behind requireSession or
// requireStaffRole may call it; anywhere else it panics (a 500), rather than
// let an unauthenticated call act as nobody.
func sessionOf(c *gin.Context) sessions.Session {
	v, ok := c.Get(sessionKey)
	sess, isSession := v.(sessions.Session)
	if !ok || !isSession {
		panic("readapi: sessionOf on a route without requireSession")
	}
	return sess
}

// actorOf is the caller as the actor of a command.
func actorOf(c *gin.Context) commands.Actor {
	sess := sessionOf(c)
	return commands.Actor{ID: sess.AccountID.String(), Kind: sess.AccountKind, Role: sess.Role, ClinicID: sess.ClinicID}
}
