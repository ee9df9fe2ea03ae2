// Package consul owns the Consul backend of cloudmux's durable state: a
// registry.Store on Consul's KV store (every key under one KeyPrefix,
// compare-and-swap by modify index, blocking-query watches, locks as Consul
// sessions) and a registry.ServiceCatalog that publishes peers as instances
// of the "cloudmux-peer" service with TTL health checks.
//
// One *Store value plays both roles, built by New from a Config (usually
// ConfigFromEnv, which reads the standard CONSUL_* variables). Errors are
// translated at this boundary into the registry's sentinels (ErrNotFound,
// ErrConflict, ErrLockHeld, ErrUnavailable, ErrInvalidKey) so callers never
// see Consul's types, and context errors stay context errors.
//
// registrytest.Exercise holds this backend to the same contract as the
// memory backend, against a real agent started by internal/consultest. The
// differences that remain are Consul's and are documented where they arise:
// a write of an unchanged value keeps the modify index (Put), values are
// capped near 384 KiB by the transaction API (Put), a Watch whose index is
// ahead of a rebuilt cluster answers after the wait time (Watch), and keys
// with "." or ".." segments or invalid UTF-8 are refused (checkKey).
package consul
