// Package testproc starts the test servers our tests run against (mailpit,
// stripe-mock) as child processes that die with the test.
package testproc

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Run starts bin with args and waits up to 20 s until ready says so. Once
// ready, the process is stopped when t ends, and its output is logged if t
// failed. On an error the process is gone.
func Run(t testing.TB, name, bin string, args []string, ready func() bool) error {
	var out Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-exited:
			return fmt.Errorf("%s exited: %s", name, strings.TrimSpace(out.String()))
		default:
		}
		if ready() {
			t.Cleanup(func() {
				stop()
				if t.Failed() && out.Len() > 0 {
					t.Logf("%s output:\n%s", name, out.String())
				}
			})
			return nil
		}
		if time.Now().After(deadline) {
			stop()
			return fmt.Errorf("%s not ready after 20s: %s", name, strings.TrimSpace(out.String()))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// Buffer is a bytes.Buffer safe for concurrent use: a child's output,
// written by exec's copying goroutines, or a test's log read while
// request goroutines write to it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *Buffer) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Len()
}
