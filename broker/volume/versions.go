package volume

// The Cinder microversions this API negotiates, and, in one place, each
// version whose change it implements: a behaviour gated on a version is
// gated through these names only. The views are 3.0's, which the
// versions up to MaxVersion only add optional fields to, or leave alone
// for the resources served here (groups, backups, clusters, messages,
// attachments and the other endpoints they add are not served: their
// paths are 404).
const (
	MinVersion = "3.0"
	MaxVersion = "3.42"

	// vSnapshotMetadataFilter: snapshot lists filter by ?metadata= (3.22).
	vSnapshotMetadataFilter = "3.22"
	// vSnapshotUserID: snapshots show who took them, user_id (3.41).
	vSnapshotUserID = "3.41"
	// vExtendInUse: os-extend grows an in-use volume (3.42).
	vExtendInUse = "3.42"
)
