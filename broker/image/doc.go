// Package image is the broker's image service: Glance v2 semantics across
// the peers of the pool.
//
// Service is the reusable layer (create, get/resolve, list, update, tags,
// delete, deactivate/reactivate, streamed upload and download) that the
// Glance v2 HTTP API (Glance, mounted at /image) and the other APIs that
// name images (Nova's imageRef, EC2's DescribeImages/RegisterImage) share,
// so every API applies the same visibility rules and sees the same IDs.
//
// Images created through the broker are placed by policy on a peer that can
// hold image bytes (peers.ImageData), under a broker-wide UUID that is also
// the image's ID on the peer (peers.ImageSpec.ID), so a copy staged on
// another peer keeps it. They are recorded in the resource index (kind
// "image") and carry peers.MetaID, MetaProject and MetaBrokerID as
// properties, which the API never shows. Images that exist natively on a
// peer (a local cloud's seeded public image, a remote cloud's catalogue) are
// not indexed: their broker ID is the peer's own ID, found by asking the
// connected peers in parallel.
//
// Visibility follows Glance: public and community images are visible to
// every project, private ones to their owner only, shared ones to their
// owner and their members (members.go: records in the Store, served from
// memory, listed by a member once it accepts); a cloud
// admin sees everything. An image a project cannot see is ErrNotFound, never
// ErrForbidden, so its existence does not leak.
//
// Failures leave nothing half done that a client cannot finish: a delete
// removes the image from its peer before its index entry, so a delete cut
// in between is completed by deleting again; a create whose peer took the
// image but lost the answer removes it there; another project's image on
// a peer that does not answer is "not found" like any unknown ID.
//
// Import (Image API 2.6, import.go) offers glance-direct only: the stage
// streams the data to the image's peer, as an upload does, and an import
// record in the Store, served from memory, shows the image "uploading"
// (its data neither read nor booted) until the import removes the record.
// Nothing stays on one broker, so any broker takes the import.
// Multi-store (stores, copy-image, API 2.8+) is not offered, so the API
// advertises 2.0 to 2.7.
//
// Deactivation (Glance's admin-only deactivate/reactivate actions) is a
// broker-wide record in the registry Store keyed by image ID, since the
// peers' contract has no such status: a deactivated image shows status
// "deactivated" and refuses downloads to everyone but cloud admins.
package image
