// Package registry owns cloudmux's durable state: a small key-value contract
// (Store) with a Consul backend and an in-memory backend, and the Peer
// resource-pool registry built on it (peer records, credentials, health and
// capacity, a watch-fed in-memory snapshot for the request hot path).
//
// Every other durable record in cloudmux (the resource index, policies,
// templates, deployments, tokens) lives in a Store, so every broker replica
// pointed at the same Consul cluster sees the same state.
package registry
