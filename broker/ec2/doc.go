// Package ec2 is the broker's EC2 Query API (mounted at /ec2/): form-encoded
// Action=...&Version=... requests signed with AWS Signature Version 4 (in
// the Authorization header or a presigned query; Version 2 too), answered
// in EC2's XML with its error codes, so the aws CLI, boto3 and Terraform's
// AWS provider reach every peer of the pool.
//
// The caller is the owner of the EC2 credential that signed the request
// (identity.EC2Credentials, Keystone's OS-EC2 keys), acting on the
// credential's project with the roles the user holds there: the same token
// the OpenStack APIs see. Resources are the OpenStack APIs' own (instances
// are Nova servers, images Glance images, volumes Cinder volumes, key pairs
// Nova's), placed by the same policy and recorded in the same index; EC2
// IDs (i-, ami-, vol- and 17 hex digits) are derived from the broker UUIDs
// and recorded, so both APIs show the same resources. Tags are broker
// records keyed by project and resource.
package ec2
