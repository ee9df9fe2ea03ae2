package localcloud

// Halt stops c from saving its state, as if its process had died: what
// it does from now on reaches the hosts but not the state file. Tests use
// it to leave a state file as a crash mid-operation would.
func Halt(c *Cloud) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.halted = true
}
