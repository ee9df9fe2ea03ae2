//go:build !linux

package consultest

import "syscall"

// sysProcAttr has no parent-death signal outside Linux; Stop (run by
// t.Cleanup) is the only way the agent ends there.
func sysProcAttr() *syscall.SysProcAttr { return nil }
