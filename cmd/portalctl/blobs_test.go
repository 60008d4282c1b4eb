package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/portico-health/portico/internal/blobstore/contract"
	"github.com/portico-health/portico/internal/testapp"
)

func TestBlobsSweepDryRunListsAndShortAgesAreRefused(t *testing.T) {
	ctx := context.Background()
	a := testapp.New(t)
	t.Setenv("PORTAL_DATABASE_URL", a.Config.DatabaseURL)
	b, err := a.Blobs.Put(ctx, bytes.NewReader(contract.PDF("never recorded")), "x.pdf")
	if err != nil {
		t.Fatal(err)
	}
	if err := run(ctx, []string{"blobs", "sweep", "--older-than", "5m"}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "under 1h") {
		t.Errorf("a 5-minute sweep = %v, want refused", err)
	}
	var out bytes.Buffer
	if err := run(ctx, []string{"blobs", "sweep", "--dry-run", "--older-than", "0s"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "orphan "+b.SHA256) || !strings.Contains(out.String(), "would remove (dry run): 1") {
		t.Errorf("dry run printed:\n%s", out.String())
	}
	if _, _, err := a.Blobs.Open(ctx, b.SHA256); err != nil {
		t.Errorf("a dry run removed the file: %v", err)
	}
}
