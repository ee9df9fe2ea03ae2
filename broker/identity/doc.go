// Package identity is cloudmux's Keystone v3: domains, projects, users,
// groups, roles (global and domain-specific, with implied-role rules) and
// role assignments of users and groups on projects, domains and the system
// (and OS-INHERIT grants to a domain's projects or a project's subtree),
// the catalog as data (regions, services, endpoints), generic and EC2
// credentials (one set of records), trusts, application credentials and
// their access rules (CheckAccessRules, which every API's authentication
// applies), unified limits (registered limits and project limits, which
// are the quota ledger's own defaults and per-project limits: see
// QuotaLimits), password checks (bcrypt) under a configurable password policy
// with per-replica login throttling, and tokens scoped to a project, a
// domain, the system or a trust that every broker replica accepts.
//
// Every record lives in the registry Store; the records a request reads
// are served from memory (Cache: one Mirror per prefix, fed by Store
// watches, with indexes by assignment target and actor and by group
// member), so no request reads a whole Store prefix. Tokens are random;
// the store keeps only their SHA-256. Validation is served from memory: a
// validated token is cached until it expires, and revocation events (a
// token, or every token of a user, project, domain, role, application
// credential or trust issued before a time) reach every replica through a watched
// prefix and are swept once no token they void can be alive.
package identity
