package peers

import (
	"context"
	"time"
)

// Snapshots is the optional ability of a cloud to take point-in-time
// copies of its volumes (Cinder's snapshots) and to make volumes from a
// snapshot or from another volume (VolumeSpec.SnapshotID,
// SourceVolumeID: Cinder's clones). The broker asks for it with a type
// assertion; a cloud without it is never sent such a spec.
//
// Cinder's rules hold: a volume that still has snapshots is not deleted
// (DeleteVolume is ErrConflict), a new volume is at least as large as
// its snapshot or source, and is made on the same cloud.
type Snapshots interface {
	// CreateSnapshot starts a snapshot of an available volume, or of an
	// in-use one when spec.Force is set (crash-consistent: what the disk
	// holds at that moment, as Cinder's force). It returns at once with
	// the snapshot creating; it settles available or error. An in-use
	// volume without Force, or a volume in another status, is ErrConflict;
	// an unknown volume ErrNotFound.
	CreateSnapshot(ctx context.Context, spec SnapshotSpec) (Snapshot, error)
	GetSnapshot(ctx context.Context, id string) (Snapshot, error)
	ListSnapshots(ctx context.Context, opts ListOptions) ([]Snapshot, error)
	// DeleteSnapshot starts deleting an available or error snapshot (any
	// other status is ErrConflict); GetSnapshot reports ErrNotFound once it
	// is gone. Volumes made from it stay: they are copies.
	DeleteSnapshot(ctx context.Context, id string) error
}

// SnapshotStatus follows Cinder's snapshot statuses.
type SnapshotStatus string

// Cinder's snapshot statuses, the subset a driver reports.
const (
	SnapshotCreating  SnapshotStatus = "creating"
	SnapshotAvailable SnapshotStatus = "available"
	SnapshotDeleting  SnapshotStatus = "deleting"
	SnapshotError     SnapshotStatus = "error"
)

// Snapshot is a point-in-time copy of a volume.
type Snapshot struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Description string            `json:"description,omitempty"`
	Project     string            `json:"project"`
	VolumeID    string            `json:"volume_id"`
	SizeGiB     int               `json:"size_gib"`
	Status      SnapshotStatus    `json:"status"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	CreatedAt   time.Time         `json:"created_at"`
}

// SnapshotSpec creates a snapshot of VolumeID.
type SnapshotSpec struct {
	VolumeID    string
	Name        string
	Description string
	Project     string
	// Force allows a snapshot of an in-use volume.
	Force    bool
	Metadata map[string]string
}
