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
