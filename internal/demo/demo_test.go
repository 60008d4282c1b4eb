package demo_test

import (
	"context"
	"testing"

	"github.com/portico-health/portico/commands"
	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/internal/demo"
	"github.com/portico-health/portico/internal/testapp"
)

func TestDemoLoadsOnceAndEveryoneCanSignIn(t *testing.T) {
	a := testapp.New(t)
	ctx := context.Background()
	s, err := demo.Load(ctx, a.Commands)
	if err != nil {
		t.Fatal(err)
	}
	count := func() int {
		evs, err := a.Store.ReadAll(ctx, eventstore.Start, 100000, eventstore.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		return len(evs)
	}
	first := count()
	if _, err := demo.Load(ctx, a.Commands); err != nil {
		t.Fatal(err)
	}
	if again := count(); again != first {
		t.Errorf("loading the demo again wrote %d events", again-first)
	}
	for _, who := range []struct{ email, password, kind string }{
		{s.AdminEmail, s.AdminPassword, "staff"}, {s.StaffEmail, s.StaffPassword, "staff"}, {s.ParentEmail, s.ParentPassword, "portal"},
	} {
		acct, err := a.Commands.SignIn(ctx, commands.SignIn{Email: who.email, Password: who.password})
		if err != nil || acct.Kind != who.kind {
			t.Errorf("sign in as %s = %+v, %v", who.email, acct, err)
		}
	}
	parent, err := a.Commands.SignIn(ctx, commands.SignIn{Email: s.ParentEmail, Password: s.ParentPassword})
	if err != nil {
		t.Fatal(err)
	}
	u, err := a.Commands.PortalUser(ctx, parent.ID)
	if err != nil || len(u.Active()) != 2 {
		t.Errorf("the demo parent is linked to %d patients, want 2 (%v)", len(u.Active()), err)
	}
}
