package readapi

// The links emailed to portal users: accepting an invitation, "Forgot
// password", and setting a new password. None of these routes needs a
// session; each token is checked by the command it feeds.

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/portico-health/portico/commands"
	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/internal/sessions"
	"github.com/portico-health/portico/internal/throttle"
)

func init() {
	routeGroups = append(routeGroups, func(s *server, api *gin.RouterGroup) {
		store := s.sessionStore()
		api.POST("/invitations/accept", s.acceptInvitation(store))
		api.POST("/auth/forgot-password", s.forgotPassword)
		api.POST("/auth/reset-password", s.resetPassword)
	})
}

type tokenPasswordRequest struct {
	Token    string `json:"token"`
	Password string `json:"password"`
}

// readTokenPassword reads {token,password}; a body that does not parse is
// a request with neither, refused as token_invalid by the command.
func readTokenPassword(c *gin.Context) tokenPasswordRequest {
	var in tokenPasswordRequest
	if err := json.NewDecoder(http.MaxBytesReader(c.Writer, c.Request.Body, maxLoginBody)).Decode(&in); err != nil {
		return tokenPasswordRequest{}
	}
	return in
}

// POST /invitations/accept {token,password}: 200 like a login.
func (s *server) acceptInvitation(store *sessions.Store) gin.HandlerFunc {
	return func(c *gin.Context) {
		in := readTokenPassword(c)
		ctx := c.Request.Context()
		// An active account accepts with its password: guesses through one
		// link, or from one address, are throttled like sign-ins.
		limiter := s.limiter()
		keys := []string{throttle.AccountKey("invitation-link:" + in.Token), throttle.AddrKey(c.ClientIP())}
		if !s.admit(c, limiter, keys, "too many failed attempts; try again later") {
			return
		}
		acct, err := s.Commands.AcceptInvitation(ctx, commands.Meta{CorrelationID: correlationID(c)},
			commands.AcceptInvitation{Token: in.Token, Password: in.Password})
		if err != nil {
			if de, ok := domain.AsError(err); ok && de.Code != "password_rejected" {
				_ = limiter.Fail(ctx, keys...)
			} else {
				_ = limiter.Succeed(ctx, keys[0])
			}
			fail(c, err)
			return
		}
		_ = limiter.Succeed(ctx, keys...)
		s.startSession(c, store, acct)
	}
}

// POST /auth/forgot-password {email}: 202, always, at once. The work runs
// after the answer, so neither the answer nor its timing says whether the
// address has an account.
func (s *server) forgotPassword(c *gin.Context) {
	var in struct {
		Email string `json:"email"`
	}
	_ = json.NewDecoder(http.MaxBytesReader(c.Writer, c.Request.Body, maxLoginBody)).Decode(&in)
	meta := commands.Meta{CorrelationID: correlationID(c)}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request.Context()), time.Minute)
	s.background.Add(1)
	go func() {
		defer s.background.Done()
		defer cancel()
		if err := s.Commands.RequestPasswordReset(ctx, meta, commands.RequestPasswordReset{Email: in.Email}); err != nil {
			// The address is not logged: it may be a patient's.
			s.Logger.Error("forgot password failed", "correlation_id", meta.CorrelationID, "err", err)
		}
	}()
	c.JSON(http.StatusAccepted, gin.H{"status": "if the address has a portal account, an email is on its way"})
}

// POST /auth/reset-password {token,password}: 204.
func (s *server) resetPassword(c *gin.Context) {
	in := readTokenPassword(c)
	acct, err := s.Commands.ResetPassword(c.Request.Context(), commands.Meta{CorrelationID: correlationID(c)},
		commands.ResetPassword{Token: in.Token, Password: in.Password})
	if err != nil {
		fail(c, err)
		return
	}
	// Proving control of the address lifts a sign-in lockout on it.
	if err := s.limiter().Succeed(c.Request.Context(), throttle.AccountKey(acct.Email)); err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// startSession signs an account in and answers like POST /auth/login.
func (s *server) startSession(c *gin.Context, store *sessions.Store, acct commands.Account) {
	token, sess, err := store.Start(c.Request.Context(), sessions.Principal{
		AccountID: acct.ID, AccountKind: acct.Kind, ClinicID: acct.ClinicID, Role: acct.Role,
	})
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, loginResponse{Token: token, ExpiresAt: sess.ExpiresAt.UTC(), Account: accountOf(acct)})
}
