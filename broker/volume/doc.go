// Package volume is the broker's Cinder v3 API: volumes created on the peer
// placement chooses (falling back to the next allowed peer when one is out
// of capacity), recorded in the resource index, listed across peers with a
// deadline-bounded fan-out, and visible only to their project.
package volume
