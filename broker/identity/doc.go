// Package identity is cloudmux's Keystone v3: domains, projects, users,
// roles and role assignments kept in the registry Store, password checks
// (bcrypt), and tokens that every broker replica accepts. Tokens are random;
// the store keeps only their SHA-256. Validation is served from memory: a
// validated token is cached until it expires, and revocations reach every
// replica through a watched prefix, so the request path does not call the
// store for a token it has seen.
package identity
