package testproc

import "syscall"

// sysProcAttr kills a test server when the test binary dies without running its
// cleanups (a panic, a -timeout), so no server outlives the run.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
