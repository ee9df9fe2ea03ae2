// Package consultest owns the real Consul agent that tests run against: it
// finds a Consul 1.14.11 binary (CONSUL_BIN, then `consul` on PATH, then
// scripts/install-consul.sh), starts `consul agent -dev` on free loopback
// ports with its own data directory, waits until the agent has a leader and
// its node is healthy, and stops it when the test ends.
//
// Tests use Start(t); TestMain functions and benchmarks that want one agent
// for a whole package use StartProcess. A missing binary is a test failure,
// not a skip: CI always has Consul (the install script builds it), and a
// silently skipped backend suite is how backends drift apart.
//
// Nothing here is for production use; the package is internal so it cannot
// leak into the broker.
package consultest
