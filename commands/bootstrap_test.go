package commands_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/portico-health/portico/commands"
	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/staff"
	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/internal/app"
	"github.com/portico-health/portico/internal/password"
	"github.com/portico-health/portico/internal/testapp"
)

func allEvents(t *testing.T, a *app.App) []eventstore.Envelope {
	t.Helper()
	evs, err := a.Store.ReadAll(context.Background(), eventstore.Start, 10000, eventstore.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func TestBootstrapCreatesClinicAndAdminOnceAndKeepsNoSecretInEvents(t *testing.T) {
	a := testapp.New(t)
	ctx := context.Background()
	cmd := commands.Bootstrap{ClinicName: "Harbor Therapy", AdminEmail: " Admin@Harbor.Example ", AdminPassword: "correct horse battery"}
	first, err := a.Commands.Bootstrap(ctx, cmd)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Created {
		t.Fatal("first bootstrap reports nothing created")
	}
	evs := allEvents(t, a)
	var types []string
	for _, e := range evs {
		types = append(types, e.Type)
		if e.Metadata.ActorID != "portalctl" || e.Metadata.ActorKind != "system" || e.Metadata.CommandID == "" {
			t.Errorf("%s metadata = %+v, want the portalctl system actor and a command id", e.Type, e.Metadata)
		}
		if strings.Contains(string(e.Data), "correct horse") || strings.Contains(string(e.Data), "argon2") {
			t.Errorf("%s carries the password or its hash: %s", e.Type, e.Data)
		}
	}
	want := "ClinicRegistered EmailClaimed StaffAccountCreated StaffPasswordSet"
	if strings.Join(types, " ") != want {
		t.Fatalf("events = %v, want %s", types, want)
	}

	// Again, even with another password: nothing changes.
	cmd.AdminPassword = "another long password"
	again, err := a.Commands.Bootstrap(ctx, cmd)
	if err != nil {
		t.Fatal(err)
	}
	if again.Created || again.ClinicID != first.ClinicID || again.AdminID != first.AdminID {
		t.Fatalf("second bootstrap = %+v, want the same ids and nothing created", again)
	}
	if n := len(allEvents(t, a)); n != 4 {
		t.Fatalf("second bootstrap wrote events: %d in the log", n)
	}
	var hash string
	if err := a.Pool.QueryRow(ctx, `SELECT password_hash FROM credentials WHERE account_id = $1`, first.AdminID).Scan(&hash); err != nil {
		t.Fatal(err)
	}
	if !password.Verify("correct horse battery", hash) || password.Verify("another long password", hash) {
		t.Fatal("the second bootstrap changed the administrator's password")
	}

	// Another administrator for the same clinic is refused.
	_, err = a.Commands.Bootstrap(ctx, commands.Bootstrap{ClinicName: "harbor therapy", AdminEmail: "other@harbor.example", AdminPassword: "correct horse battery"})
	if de, ok := domain.AsError(err); !ok || de.Code != "already_bootstrapped" {
		t.Fatalf("bootstrap with another admin: %v, want already_bootstrapped", err)
	}
}

func TestBootstrapRefusesBadInputAndWritesNothing(t *testing.T) {
	a := testapp.New(t)
	for name, cmd := range map[string]commands.Bootstrap{
		"short password": {ClinicName: "C", AdminEmail: "a@b.example", AdminPassword: "short"},
		"bad email":      {ClinicName: "C", AdminEmail: "not-an-email", AdminPassword: "long enough pw"},
		"no clinic name": {ClinicName: "  ", AdminEmail: "a@b.example", AdminPassword: "long enough pw"},
	} {
		_, err := a.Commands.Bootstrap(context.Background(), cmd)
		if de, ok := domain.AsError(err); !ok || de.Code != "validation_failed" {
			t.Errorf("%s: %v, want validation_failed", name, err)
		}
	}
	if n := len(allEvents(t, a)); n != 0 {
		t.Fatalf("refused bootstraps wrote %d events", n)
	}
}

// One account per email address, however many try at once.
func TestConcurrentStaffAddsClaimAnEmailOnce(t *testing.T) {
	a := testapp.New(t)
	ctx := context.Background()
	res, err := a.Commands.Bootstrap(ctx, commands.Bootstrap{ClinicName: "C", AdminEmail: "admin@c.example", AdminPassword: "long enough pw"})
	if err != nil {
		t.Fatal(err)
	}
	const racers = 6
	var wg sync.WaitGroup
	errs := make(chan error, racers)
	for range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := a.Commands.AddStaffMember(ctx, commands.Meta{Actor: commands.System("test")}, commands.AddStaffMember{
				ClinicID: res.ClinicID, Email: "Front@C.example", Role: staff.RoleStaff, Password: "long enough pw",
			})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	wins := 0
	for err := range errs {
		if err == nil {
			wins++
			continue
		}
		var de *domain.Error
		if !errors.As(err, &de) || (de.Code != "email_in_use" && de.Code != "concurrent_update") {
			t.Errorf("losing add: %v, want email_in_use or concurrent_update", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d adds won the same email, want 1", wins)
	}
	created := 0
	for _, e := range allEvents(t, a) {
		if e.Type == "StaffAccountCreated" {
			created++
		}
	}
	if created != 2 { // the administrator and the one winner
		t.Fatalf("%d staff accounts created, want 2", created)
	}
}
