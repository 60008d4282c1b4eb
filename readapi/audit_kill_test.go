package readapi_test

import (
	"bufio"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/portico-health/portico/internal/config"
	"github.com/portico-health/portico/internal/testapp"
	"github.com/portico-health/portico/readapi"
)

// A real process, killed with SIGKILL between the durable access record and
// the response: the client gets nothing, and the record is in the log. The
// process is testdata/killafteraudit, the API wired as portald wires it but
// with an auditor that kills the process once the record is stored.
func TestProcessKilledAfterTheRecordKeepsIt(t *testing.T) {
	var url string
	a := testapp.NewWith(t, func(c *config.Config) { url = c.DatabaseURL })
	h := readapi.New(readapi.Deps{Pool: a.Pool, Store: a.Store, Commands: a.Commands, Audit: a.Audit})
	staff := signIn(t, a, h, "Harbor Therapy", "front@harbor.example")

	bin := filepath.Join(t.TempDir(), "killafteraudit")
	build := exec.Command("go", "build", "-o", bin, "./testdata/killafteraudit")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./testdata/killafteraudit: %v\n%s", err, out)
	}
	child := exec.Command(bin)
	child.Env = append(os.Environ(), "PORTAL_DATABASE_URL="+url, "PORTAL_INSTANCE=killafteraudit")
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = child.Process.Kill(); _ = child.Wait() })
	lines := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func(prefix string) string {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok || !strings.HasPrefix(l, prefix) {
				t.Fatalf("child said %q, want %q…", l, prefix)
			}
			return strings.TrimPrefix(l, prefix)
		case <-time.After(60 * time.Second):
			t.Fatalf("child did not say %q", prefix)
		}
		return ""
	}
	addr := next("listening ")

	req, _ := http.NewRequest("GET", "http://"+addr+"/api/v1/me", nil)
	req.Header.Set("Authorization", "Bearer "+staff.token)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("the killed process answered %d", resp.StatusCode)
	}
	id, err := uuid.Parse(next("recorded "))
	if err != nil {
		t.Fatal(err)
	}
	state, _ := child.Process.Wait()
	if state == nil || state.Success() || !strings.Contains(state.String(), "killed") {
		t.Fatalf("child ended %v, want killed", state)
	}

	for _, r := range accessRecords(t, a) {
		if r.RecordID == id {
			if r.Route != "GET /api/v1/me" || r.Agent.ID == "" {
				t.Fatalf("the record is not the request's: %+v", r)
			}
			return
		}
	}
	t.Fatal("the access record of the killed request is not in the event log")
}
