package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/portico-health/portico/commands"
	"github.com/portico-health/portico/domain/document"
	"github.com/portico-health/portico/eventstore"
	"github.com/portico-health/portico/internal/blobstore/contract"
	"github.com/portico-health/portico/internal/demo"
	"github.com/portico-health/portico/internal/testapp"
)

// TestSweepRemovesOnlyFilesNoEventNames: uploads whose command never
// recorded them go; every file an event names stays, a retracted
// document's too; a dry run removes nothing; files newer than the cutoff
// stay.
func TestSweepRemovesOnlyFilesNoEventNames(t *testing.T) {
	ctx := context.Background()
	a := testapp.New(t)
	if _, err := demo.Load(ctx, a.Commands, a.Blobs); err != nil {
		t.Fatal(err)
	}
	// Retract one of the demo's documents: its file is still a record.
	docs, err := a.Store.ReadAll(ctx, eventstore.Start, 100, eventstore.Filter{Categories: []string{document.Category}})
	if err != nil || len(docs) == 0 {
		t.Fatalf("demo documents: %d, %v", len(docs), err)
	}
	first := docs[0]
	clinicID, _ := uuid.Parse(first.Metadata.ClinicID)
	docID := uuid.MustParse(strings.TrimPrefix(first.Stream, document.Category+"-"))
	if err := a.Commands.RetractDocument(ctx, commands.Meta{Actor: commands.Actor{ID: first.Metadata.ActorID, Kind: "staff", Role: "admin", ClinicID: clinicID}},
		commands.RetractDocument{DocumentID: docID, Reason: "sent to the wrong family"}); err != nil {
		t.Fatal(err)
	}
	var orphans []string
	for _, text := range []string{"refused upload", "crashed before the command"} {
		b, err := a.Blobs.Put(ctx, bytes.NewReader(contract.PDF(text)), "x.pdf")
		if err != nil {
			t.Fatal(err)
		}
		orphans = append(orphans, b.SHA256)
	}
	slices.Sort(orphans)
	before, err := a.Blobs.StoredBefore(ctx, time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}

	if res, err := a.SweepBlobs(ctx, time.Hour, false); err != nil || res.Stored != 0 || len(res.Removed) != 0 {
		t.Fatalf("sweep of files older than an hour = %+v, %v; want nothing stored that long ago", res, err)
	}
	res, err := a.SweepBlobs(ctx, 0, true)
	if err != nil || !slices.Equal(res.Orphans, orphans) || len(res.Removed) != 0 || res.Stored != len(before) || res.Referenced != len(before)-2 {
		t.Fatalf("dry run = %+v, %v; want orphans %v of %d files, nothing removed", res, err, orphans, len(before))
	}
	if res, err := a.SweepBlobs(ctx, 0, false); err != nil || !slices.Equal(res.Removed, orphans) || !slices.Equal(res.Orphans, orphans) {
		t.Fatalf("sweep = %+v, %v; want the 2 orphans removed", res, err)
	}
	for _, sha := range before {
		_, _, err := a.Blobs.Open(ctx, sha)
		if slices.Contains(orphans, sha) != (err != nil) {
			t.Errorf("blob %s (orphan: %v) after the sweep: %v", sha, slices.Contains(orphans, sha), err)
		}
	}
	var retracted document.File
	for _, e := range docs {
		if e.Stream == first.Stream && e.Type == (document.Completed{}).EventType() {
			var d document.Completed
			if err := json.Unmarshal(e.Data, &d); err != nil {
				t.Fatal(err)
			}
			retracted = d.File
		}
	}
	if _, _, err := a.Blobs.Open(ctx, retracted.SHA256); retracted.SHA256 == "" || err != nil {
		t.Errorf("the retracted document's file %q is gone: %v", retracted.SHA256, err)
	}
}

// TestSweepRefusesALogThatIsNotTheDatabases: pointed at another (here an
// empty) event store, every file would look an orphan; the sweep must see
// that the read models and checkpoints do not match that log, and remove
// nothing.
func TestSweepRefusesALogThatIsNotTheDatabases(t *testing.T) {
	ctx := context.Background()
	a := testapp.New(t)
	if _, err := demo.Load(ctx, a.Commands, a.Blobs); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = a.Engine.Run(runCtx); close(done) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var n int
		if err := a.Pool.QueryRow(ctx, `SELECT count(*) FROM rm.documents`).Scan(&n); err == nil && n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the documents were never projected")
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	<-done
	before, err := a.Blobs.StoredBefore(ctx, time.Now().Add(time.Minute))
	if err != nil || len(before) == 0 {
		t.Fatalf("stored files: %v, %v", before, err)
	}

	a.Store = testapp.New(t).Store // another database's log: empty
	res, err := a.SweepBlobs(ctx, 0, false)
	if err == nil || !strings.Contains(err.Error(), "not their log") || len(res.Removed) != 0 {
		t.Fatalf("sweep against an empty log = %+v, %v; want refused, nothing removed", res, err)
	}
	after, err := a.Blobs.StoredBefore(ctx, time.Now().Add(time.Minute))
	if err != nil || !slices.Equal(after, before) {
		t.Errorf("files after a refused sweep: %d of %d (%v)", len(after), len(before), err)
	}
}
