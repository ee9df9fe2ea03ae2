// Package policy decides placement: it compiles the Rego policy cloud
// admins author (through OPA's Go API, prepared once per policy version),
// evaluates it per decision against the request and the candidate peers,
// and explains every decision: which peers were rejected and why, and how the
// allowed ones scored. Policies live in the registry Store and hot-reload on
// every broker replica through the watch.
package policy
