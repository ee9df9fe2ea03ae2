package localcloud

// Halt stops c from saving its state, as if its process had died: what
// it does from now on reaches the hosts but not the state file. Tests use
// it to leave a state file as a crash mid-operation would. Changes made
// before it are saved first; the data directory's lock is released.
func Halt(c *Cloud) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.saving {
		c.saved.Wait()
	}
	c.halted = true
	c.saved.Broadcast()
	_ = c.dirLock.Close() // a dead process's lock goes with it
}

// Every write of this package's tests reads the state back and checks it
// against the records: a change that did not name what it changed for the
// journal fails the test that made it.
func init() { verifyState = true }

// SetJournalMinCompact lowers the journal size below which no snapshot is
// written, for the test's duration.
func SetJournalMinCompact(t interface{ Cleanup(func()) }, n int64) {
	old := journalMinCompact
	journalMinCompact = n
	t.Cleanup(func() { journalMinCompact = old })
}

// SaveAfterClose makes a change and saves it as work finishing after
// Close would (an upload's last step).
func SaveAfterClose(c *Cloud) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.markAllLocked()
	c.saveLocked()
}

// ReapObjects runs one pass of the expired-object reaper now.
func ReapObjects(c *Cloud) { c.reapOnce() }

// SetObjectCrashHook runs hook at each named step of an object commit
// ("data-synced", "record-renamed"), for the test's duration.
func SetObjectCrashHook(t interface{ Cleanup(func()) }, hook func(step string)) {
	objectCrashHook = hook
	t.Cleanup(func() { objectCrashHook = nil })
}

// SetObjectSync turns the object store's fsyncs off (false) or back on,
// for the test's or benchmark's duration.
func SetObjectSync(t interface{ Cleanup(func()) }, on bool) {
	objectNoSync = !on
	t.Cleanup(func() { objectNoSync = false })
}
