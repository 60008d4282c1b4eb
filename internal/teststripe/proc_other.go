//go:build !linux

package teststripe

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return nil }
