package consultest

import "syscall"

// sysProcAttr asks the kernel to kill the agent when the test binary dies
// without running its cleanups (a `go test -timeout` panic, a SIGKILL), so
// CI machines do not collect orphaned agents. Strictly, Pdeathsig fires when
// the OS thread that forked the child exits, but the Go runtime retires a
// thread only when a goroutine exits while locked to it (LockOSThread
// without Unlock), which nothing in these tests does; in practice the signal
// tracks the process.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
