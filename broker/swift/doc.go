// Package swift is the OpenStack Object Storage (Swift v1) API over the
// broker's object service (broker/object): a thin front end that reads
// Swift's paths, headers and query strings, passes the caller's identity
// (X-Auth-Token, a Keystone token of this broker) and writes Swift's
// statuses, headers and bodies. It never calls a peer.
//
// Paths: /swift/v1/AUTH_<project ID>[/<container>[/<object>]], the
// object-store URL the catalog gives each project; /swift/info and /info
// list the capabilities that are honoured. A token of another project
// gets 403 on every path under the account, existing or not, unless a
// container's ACL grants it that container.
//
// Implemented: account GET (json, xml, plain listings with prefix,
// delimiter, marker, end_marker, limit, reverse), HEAD, POST; container
// PUT (201, 202 when it exists), GET listing (and ?path=), HEAD, POST
// (X-Remove-* too), DELETE (409 when not empty); object PUT (streamed,
// chunked or sized, ETag checked: 422; X-Object-Meta-*, Content-Type or
// a guess from the name, X-Delete-At / X-Delete-After, If-None-Match: *),
// GET and HEAD (one range, or several as multipart/byteranges; If-Match,
// If-None-Match, If-Modified-Since, If-Unmodified-Since), POST, COPY and
// PUT with X-Copy-From (streamed through the broker, across peers),
// DELETE; account and container quotas; container ACLs
// (X-Container-Read, X-Container-Write: projects, users, roles,
// referrers, .rlistings; anonymous reads where a referrer grant allows,
// an invalid token counting as none, as keystoneauth has it); temp URLs
// (tempurl.go: account and container keys, SHA-1, SHA-256 and SHA-512,
// prefix URLs, filename and inline); bulk delete (bulk.go); static large
// objects (?multipart-manifest=put|get|delete; segments in any container
// of the account, on any peer) and dynamic ones (X-Object-Manifest on
// PUT, and on POST, where its absence makes a manifest a plain object
// again, as Swift does); object versioning (X-Versions-Location,
// X-History-Location with delete markers: broker/object's
// versioning.go). Error bodies are Swift's own texts, never a peer's
// words.
//
// Not yet: the newer object_versioning middleware (X-Versions-Enabled).
package swift
