// Package fake is an in-memory localcloud.Driver: hosts, domains, pool
// volumes and isolated networks that exist only as records, for tests and
// for `serve -dev` on a machine without libvirt. It says so: Name is
// "fake", and the console of a domain says there is no guest.
//
// It keeps the state machine a real hypervisor has, strictly, so a control
// plane bug shows up here rather than on libvirt: starting a running
// domain, undefining one that runs, deleting a volume a domain uses or
// defining a domain over a disk that does not exist are errors. Power
// changes are asynchronous the deterministic way: StartDomain,
// ShutdownDomain and RebootDomain leave the domain transitioning, and the
// next DomainState read reports that and settles it. No goroutines, no
// timers, so tests do not depend on timing.
//
// InjectFault makes chosen operations fail, to test the cloud's handling of
// a broken host.
package fake
