// Package openstack connects remote OpenStack clouds to the pool. It owns
// reading the format every OpenStack user already has (clouds.yaml, through
// gophercloud's own types so it is read exactly as gophercloud reads it) into
// peer records and credentials; the gophercloud-backed peers.Cloud driver
// lives here too.
package openstack
