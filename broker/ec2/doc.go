// Package ec2 is the broker's EC2 Query API (mounted at /ec2/): form-encoded
// Action=...&Version=... requests signed with AWS Signature Version 4 (in
// the Authorization header or a presigned query; Version 2 too), answered
// in EC2's XML (namespace 2016-11-15, with requestId) with its error codes,
// so the aws CLI, boto3 and other EC2 tools reach every peer of the pool.
//
// The caller is the owner of the EC2 credential that signed the request
// (identity.EC2Credentials, Keystone's OS-EC2 keys), acting on the
// credential's project with the roles the user holds there now: the same
// identity.Token the OpenStack APIs see, so readers describe and members
// write.
//
// Resources are the OpenStack APIs' own, through their service layers:
// instances are Nova servers (compute.Servers), images Glance images
// (image.Service; PUT /ec2/upload streams bytes to one, as does
// econe-upload's own multipart POST to /ec2/ signed with SigV2 (econe.go),
// and RegisterImage names it, or with ImageLocation alone registers it as
// econe-register does), volumes Cinder volumes (the same index
// and placement), key pairs Nova's (compute.KeypairStore), VPCs, subnets and
// security groups Neutron's (network.Service). Placement goes through the
// same policy. EC2 IDs (i-, ami-, vol-, vpc-, subnet-, sg- and 17 hex
// digits) are derived from the broker UUIDs and recorded with create-only
// writes (collisions take the next candidate), so both APIs show the same
// resources and either ID form is accepted. Tags are broker records keyed
// by project and resource; terminated instances stay visible for an hour.
package ec2
