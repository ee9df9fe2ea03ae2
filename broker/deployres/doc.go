// Package deployres is the deployment engine's way to the broker's
// service layer: it implements templates/deploy's Resources and Peers
// over the servers and keypairs (broker/compute), networks, subnets and
// ports (broker/network), images (broker/image) and volumes
// (broker/volume) services, and checks plans against broker/quota.
//
// The engine never calls a peer: every create, read, find and delete goes
// through the service of its kind with the deployment's identity, so a
// template gets what its project would get through Nova, Neutron, Cinder
// and Glance. References resolve by broker ID or name under the same
// visibility rules (another project's private image, port, volume or
// network is not found, by broker ID, name or peer ID alike), creates
// reserve quota and are placed by the services' policy (pinned to the
// peer the plan chose), and everything the engine records is a broker ID.
package deployres
