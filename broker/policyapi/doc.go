// Package policyapi is the broker's /v1 API for placement policy:
//
//	GET  /v1/policies                    versions, newest first, and the active one (cloud admin)
//	POST /v1/policies                    upload modules, tests and data: 201 a new version, 200 one
//	                                     already stored, 400 with every file:row:col (cloud admin)
//	GET  /v1/policies/{version}          a version with its files; "active" names the active one (cloud admin)
//	POST /v1/policies/{version}/activate make it active on every replica (cloud admin)
//	POST /v1/policies/rollback           re-activate the previously active version (cloud admin)
//	POST /v1/placement/explain           what-if: every peer's verdict, reasons and score; nothing is created
//	GET  /v1/decisions                   recorded decisions by resource, deployment and time
//
// Explain is open to every authenticated, project-scoped user: it answers
// for their own project the question a refused create would raise, with
// the same reasons the create's error would carry. Only a cloud admin may
// explain against a version that is not active, against hypothetical peers,
// or on behalf of another project. Decisions are a cloud admin's to read
// in full; other users see their project's only.
//
// Errors have the /v1 shape {"error": {"code", "title", "message",
// "request_id"}}, plus "positions" for a policy that does not compile.
package policyapi
