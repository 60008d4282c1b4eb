//go:build !linux

package testmail

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return nil }
