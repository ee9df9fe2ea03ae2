// Package compute is the broker's Nova v2.1 API: version discovery and
// microversion negotiation, flavors merged across the pool, one
// availability zone per peer, and os-keypairs, which the broker keeps
// itself (per user, as Nova does) and hands to whichever peer a server
// lands on. Errors use Nova's shapes ({"itemNotFound": {...}} and kin).
package compute
