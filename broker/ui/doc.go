// Package ui is the broker's web dashboards, served at /ui by `cloudmux
// serve`: Skyline, the self-service side (a project's instances, volumes,
// images, networks, key pairs, deployments, API access), and Cosmos, the
// operators' side (the federation map of peers, maintenance, the placement
// policy), admins only.
//
// It is one more front end over the service layers, like Nova or EC2: every
// page calls broker/compute, broker/volume, broker/image, broker/network,
// templates/deploy and the peer snapshot with the caller's identity (the
// Keystone token behind the session), so tenancy, quotas and reference
// resolution stay where they are. It never talks to a peer, and never reads
// a Store prefix itself.
//
// Pages are server-rendered html/template; htmx 2 and its SSE extension,
// vendored from their npm packages' dist files with their licences under
// static/vendor (VERSIONS there names each package and its npm integrity),
// make them live without a Node build step. The templates and static
// files are embedded in the binary (the embed package).
//
// Security:
//   - Login is a Keystone password login made through the identity
//     service's own /v3/auth/tokens handler, in process, so throttling,
//     lockout and password expiry apply as they do to every client. The
//     session (server-side, in memory, swept when it expires) holds the
//     token; the browser gets only a random session ID in an HttpOnly,
//     SameSite=Strict cookie. Every request re-validates the token, so a
//     revoked token or a disabled user ends the session at once. Sessions
//     are this replica's: behind a load balancer a user logs in again on
//     another replica (sticky sessions keep them).
//   - Every state-changing request is a POST carrying the session's CSRF
//     token (a form field, or the X-CSRF-Token header htmx sends); the
//     login form has its own double-submit cookie; a cross-origin Origin
//     header is refused.
//   - Responses carry a Content-Security-Policy without inline script or
//     style ('self' only), nosniff, no framing and no caching of pages.
//   - Cosmos pages answer 403 to anyone but a cloud admin, checked on the
//     server for every request.
package ui
