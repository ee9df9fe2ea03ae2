// Package deploy is the deployment engine: it turns an Eve template (with
// its parameters and placement overrides) into resources on the peers.
//
// It is a front end over the broker's service layer (Resources, which
// broker/deployres implements), like Nova, Neutron, Cinder and Glance: it
// never calls a peer. Every resource is made, read, found and deleted
// through the service of its kind with the deployment's identity (its
// project and the user who created it), so references in a template
// resolve by broker ID or name under the APIs' visibility rules, creates
// reserve quota, and what a deployment records and shows is broker IDs.
// Plan also checks the creates against the project's quota, failing with
// ErrQuota naming the resource and the numbers.
//
// Plan places every resource through a policy.Placer and compares the
// result with what the deployment already has: create, update, replace,
// delete or no-op per resource, with the chosen peer and the reasons,
// touching nothing. Apply runs the plan as a DAG, in parallel, with a
// bounded number of concurrent calls per peer, recording every step in the
// Store before and after it happens. On failure it rolls back what the
// attempt created on every peer (or keeps it and marks the deployment
// FAILED when asked); Retry starts a new attempt. Delete removes resources
// in reverse dependency order.
//
// Cross-cloud rules: a Network or Subnet is created on every peer where
// something refers to it (each peer gets its own copy; get_resource
// resolves to the copy on the referrer's peer); a Keypair is the user's,
// kept by the broker, and goes to whichever peer a server using it lands on. A Port follows the server
// that plugs it in, a VolumeAttachment its server, and a Volume the server
// it is attached to or boots; servers and free-standing volumes are placed
// by the policy, honouring each resource's placement block.
//
// A deployment is owned by one broker through a lease on
// deploy/locks/<id> (a Consul session). When the owner dies the lease
// frees and another engine (or the restarted one) takes it and resumes
// from the recorded state. Every resource created carries marks naming its
// deployment and resource (the services write them on the peer's
// resource), so a step interrupted after the service made the resource
// adopts it (Resources.Find) rather than creating a twin.
package deploy
