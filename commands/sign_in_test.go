package commands_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/portico-health/portico/commands"
	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/emailclaim"
	"github.com/portico-health/portico/domain/staff"
	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/internal/testapp"
)

func TestSignIn(t *testing.T) {
	a := testapp.New(t)
	ctx := context.Background()
	res, err := a.Commands.Bootstrap(ctx, commands.Bootstrap{ClinicName: "Harbor Therapy", AdminEmail: "admin@harbor.example", AdminName: "Ada Admin", AdminPassword: "correct horse battery"})
	if err != nil {
		t.Fatal(err)
	}
	before := len(allEvents(t, a))

	got, err := a.Commands.SignIn(ctx, commands.SignIn{Email: "  Admin@Harbor.Example ", Password: "correct horse battery"})
	if err != nil {
		t.Fatal(err)
	}
	want := commands.Account{ID: res.AdminID, Kind: "staff", ClinicID: res.ClinicID, Name: "Ada Admin", Email: "admin@harbor.example", Role: "admin"}
	if got != want {
		t.Fatalf("signed in as %+v, want %+v", got, want)
	}
	if acct, err := a.Commands.StaffAccount(ctx, res.AdminID); err != nil || acct != want {
		t.Fatalf("StaffAccount = %+v, %v", acct, err)
	}
	if _, err := a.Commands.StaffAccount(ctx, uuid.New()); !isCode(err, "not_found") {
		t.Fatalf("StaffAccount of nobody: %v, want not_found", err)
	}

	// A portal account's claim does not sign in as staff (portal sign-in
	// comes with portal accounts).
	portalID := uuid.New()
	data, _ := json.Marshal(emailclaim.Claimed{AccountID: portalID, AccountKind: "portal"})
	if _, err := a.Store.Append(ctx, eventstore.StreamName(emailclaim.Category, emailclaim.StreamID("parent@home.example")), eventstore.NoStream(),
		eventstore.EventData{ID: uuid.New(), Type: "EmailClaimed", SchemaVersion: 1, Data: data}); err != nil {
		t.Fatal(err)
	}
	// A staff member without a password cannot sign in with any.
	noPassword := uuid.New()
	data, _ = json.Marshal(staff.AccountCreated{StaffID: noPassword, ClinicID: res.ClinicID, Email: "new@harbor.example", Role: staff.RoleStaff})
	if _, err := a.Store.Append(ctx, eventstore.StreamName(staff.Category, noPassword.String()), eventstore.NoStream(),
		eventstore.EventData{ID: uuid.New(), Type: "StaffAccountCreated", SchemaVersion: 1, Data: data}); err != nil {
		t.Fatal(err)
	}
	data, _ = json.Marshal(emailclaim.Claimed{AccountID: noPassword, AccountKind: "staff"})
	if _, err := a.Store.Append(ctx, eventstore.StreamName(emailclaim.Category, emailclaim.StreamID("new@harbor.example")), eventstore.NoStream(),
		eventstore.EventData{ID: uuid.New(), Type: "EmailClaimed", SchemaVersion: 1, Data: data}); err != nil {
		t.Fatal(err)
	}
	before += 3

	for name, cmd := range map[string]commands.SignIn{
		"wrong password":     {Email: "admin@harbor.example", Password: "correct horse battery!"},
		"empty password":     {Email: "admin@harbor.example"},
		"unknown email":      {Email: "nobody@harbor.example", Password: "correct horse battery"},
		"not an email":       {Email: "admin", Password: "correct horse battery"},
		"nothing":            {},
		"portal account":     {Email: "parent@home.example", Password: "correct horse battery"},
		"no password set":    {Email: "new@harbor.example", Password: "correct horse battery"},
		"another's password": {Email: "new@harbor.example", Password: ""},
	} {
		acct, err := a.Commands.SignIn(ctx, cmd)
		de, ok := domain.AsError(err)
		if !ok || de.Code != "invalid_credentials" || de.Kind != domain.KindUnauthorized || acct != (commands.Account{}) {
			t.Errorf("%s: %+v, %v; want invalid_credentials and no account", name, acct, err)
			continue
		}
		if one := commands.InvalidCredentials(); de.Message != one.Message || de.Fields != nil {
			t.Errorf("%s: refusal %+v differs from the one answer", name, de)
		}
	}
	if n := len(allEvents(t, a)); n != before {
		t.Fatalf("sign-in attempts wrote %d events", n-before)
	}
}

func isCode(err error, code string) bool {
	de, ok := domain.AsError(err)
	return ok && de.Code == code
}

// An unknown address costs what a known one does: both verify an argon2id
// hash. (Loose bounds: the point is the order of magnitude, not a benchmark.)
func TestSignInTakesAsLongForUnknownEmails(t *testing.T) {
	if testing.Short() {
		t.Skip("timing")
	}
	a := testapp.New(t)
	ctx := context.Background()
	if _, err := a.Commands.Bootstrap(ctx, commands.Bootstrap{ClinicName: "C", AdminEmail: "admin@c.example", AdminPassword: "correct horse battery"}); err != nil {
		t.Fatal(err)
	}
	timed := func(email string) time.Duration {
		start := time.Now()
		if _, err := a.Commands.SignIn(ctx, commands.SignIn{Email: email, Password: "wrong password"}); !isCode(err, "invalid_credentials") {
			t.Fatal(err)
		}
		return time.Since(start)
	}
	timed("warm@c.example")
	var known, unknown []time.Duration
	for range 7 {
		known = append(known, timed("admin@c.example"))
		unknown = append(unknown, timed("nobody@c.example"))
	}
	slices.Sort(known)
	slices.Sort(unknown)
	k, u := known[len(known)/2], unknown[len(unknown)/2]
	if ratio := float64(u) / float64(k); ratio < 0.5 || ratio > 2 {
		t.Fatalf("median sign-in took %v for a known email and %v for an unknown one", k, u)
	}
}
