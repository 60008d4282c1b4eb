package activity_test

import (
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/portico-health/portico/domain"
	"github.com/portico-health/portico/domain/activity"
)

func TestAssignTidiesTextAndUnassignIsOnce(t *testing.T) {
	a := &activity.Activity{}
	err := a.Assign(activity.Assigned{
		ActivityID: uuid.New(), PatientID: uuid.New(), ClinicID: uuid.New(),
		Title:        "  Balance \t on one   foot ",
		Instructions: "\r\n  Stand near a wall.  \r\n\r\n\r\n\tLift one foot.\x07\n\n",
		Frequency:    " twice  a day ",
	})
	if err != nil {
		t.Fatal(err)
	}
	if a.Title != "Balance on one foot" || a.Instructions != "Stand near a wall.\n\nLift one foot." || a.Frequency != "twice a day" {
		t.Errorf("assigned = %q / %q / %q", a.Title, a.Instructions, a.Frequency)
	}
	if err := a.Unassign(); err != nil || !a.Unassigned {
		t.Fatalf("unassign: %v", err)
	}
	_ = a.Unassign()
	if n := len(a.Pending()); n != 2 {
		t.Errorf("%d events, want Assigned and one Unassigned", n)
	}
}

func TestAssignRefusesBadInputNamingTheFields(t *testing.T) {
	for _, tc := range []struct {
		in    activity.Assigned
		field string
	}{
		{activity.Assigned{Title: "", Instructions: "x"}, "title"},
		{activity.Assigned{Title: strings.Repeat("é", 201), Instructions: "x"}, "title"},
		{activity.Assigned{Title: "x", Instructions: "\n \n"}, "instructions"},
		{activity.Assigned{Title: "x", Instructions: strings.Repeat("i", 5001)}, "instructions"},
		{activity.Assigned{Title: "x", Instructions: "y", Frequency: strings.Repeat("f", 201)}, "frequency"},
	} {
		a := &activity.Activity{}
		err := a.Assign(tc.in)
		de, ok := domain.AsError(err)
		if !ok || de.Code != "validation_failed" || de.Fields[tc.field] == "" {
			t.Errorf("Assign(%.40v) = %v, want validation_failed on %s", tc.in, err, tc.field)
		}
		if !domain.IsNew(a) {
			t.Error("a refused assignment recorded an event")
		}
	}
	// Limits count characters, not bytes.
	a := &activity.Activity{}
	if err := a.Assign(activity.Assigned{Title: strings.Repeat("é", 200), Instructions: "x"}); err != nil {
		t.Errorf("200 accented characters: %v", err)
	}
}
