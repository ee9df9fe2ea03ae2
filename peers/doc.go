// Package peers defines the contract every cloud in the pool satisfies
// (Cloud, and its parts Compute, Keypairs, Images, Networks, Volumes; and
// optional abilities a caller asserts: ImageData, ConsoleReader,
// ServerResizer, ServerStateResetter, ServerImager, SecurityGroups), the
// resource types the broker speaks, the sentinel errors drivers translate
// their failures into, and Pool: the live set of connected clouds built from
// the registry's peer records and kept in step with them by the watch.
//
// Drivers live elsewhere (localcloud, peers/openstack) and import this
// package; this package imports no driver. peers/peertest is the conformance
// suite every driver passes.
package peers
