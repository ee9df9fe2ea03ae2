package peers

import (
	"context"
	"io"
	"time"
)

// Objects is the optional ability to hold object storage in Swift's model:
// flat containers of named objects, each with a content type and user
// metadata. A cloud without it still serves compute; the broker places
// containers only on peers that have it.
//
// The broker owns everything a tenant sees about a container (its name in
// the project's account, ACLs, quotas, versioning, temp URL keys): a
// peer's container is a bucket the broker named, so its name here is the
// broker's, never the tenant's. Large objects (SLO, DLO), copies and
// versioning are the broker's too, made of these calls, so segments may
// live on other peers.
//
// Object data streams: a driver never buffers a whole object in memory.
//
// Names are Swift's: a container name is 1 to 256 bytes of UTF-8 without
// '/' or NUL, an object name 1 to 1024 bytes of UTF-8 without NUL; user
// metadata keeps Swift's limits (at most 90 pairs, keys 1 to 128 bytes,
// values at most 256, 4096 bytes in all). A call outside them is
// ErrInvalid. Every call naming a missing container is ErrNotFound.
type Objects interface {
	// CreateContainer makes an empty container; one that exists already is
	// not an error (Swift's PUT is idempotent).
	CreateContainer(ctx context.Context, name string) error
	// DeleteContainer removes an empty container: one holding objects is
	// ErrConflict, a missing one ErrNotFound.
	DeleteContainer(ctx context.Context, name string) error
	// ContainerStats counts a container's live objects (expired ones not)
	// and their bytes.
	ContainerStats(ctx context.Context, name string) (ContainerStats, error)
	// ListContainers lists the names of the containers whose names start
	// with prefix, in name order (bytewise), after marker, at most limit
	// (0: the driver's page size, at most 10,000; negative or above
	// 10,000: ErrInvalid). The broker names every container it makes with
	// one prefix: this is how it finds those no record of its own names
	// (a crash between a create and its record) to collect them.
	ListContainers(ctx context.Context, prefix, marker string, limit int) ([]string, error)

	// ListObjects lists a container's live objects in name order (bytewise
	// UTF-8), narrowed and paged by opts. A missing container is
	// ErrNotFound.
	ListObjects(ctx context.Context, container string, opts ObjectListOptions) ([]ObjectEntry, error)
	// PutObject stores data as container/name, replacing any object of that
	// name only once all of data is stored durably and verified: a failed,
	// interrupted or mismatched upload (spec.Size or spec.ETag not matching
	// what was read: ErrInvalid) leaves the previous object, or none, never
	// a torn one. A missing container is ErrNotFound.
	PutObject(ctx context.Context, container, name string, data io.Reader, spec ObjectSpec) (ObjectInfo, error)
	// GetObject opens an object's bytes: all of them when rng is nil, else
	// the range (a Last past the end reads to the end, a Suffix longer than
	// the object reads all of it). The info describes the whole object. A
	// range that starts at or past the end (any range of an empty object)
	// returns the info and ErrRangeNotSatisfiable; a malformed one (Last
	// before First) is ErrInvalid. ByteRange.Span does that arithmetic. An expired object (DeleteAt
	// passed) is ErrNotFound, as Swift answers. A full read checks the
	// bytes against what was stored (the ETag, or a checksum the driver
	// took beside it): stored bytes that no longer match fail the reader's
	// last Read with an error, never a silent io.EOF.
	GetObject(ctx context.Context, container, name string, rng *ByteRange) (ObjectInfo, io.ReadCloser, error)
	// HeadObject returns an object's info.
	HeadObject(ctx context.Context, container, name string) (ObjectInfo, error)
	// UpdateObject replaces an object's content type (when not empty), its
	// user metadata and its expiry, as Swift's POST does: metadata not in
	// the update is dropped.
	UpdateObject(ctx context.Context, container, name string, update ObjectUpdate) (ObjectInfo, error)
	// DeleteObject removes an object; a missing one is ErrNotFound.
	DeleteObject(ctx context.Context, container, name string) error
}

// ContainerStats is what a container holds.
type ContainerStats struct {
	Objects int64 `json:"objects"`
	Bytes   int64 `json:"bytes"`
}

// ObjectListOptions narrows and pages a container listing, with Swift's
// meanings: names after Marker and before EndMarker (exclusive both),
// starting with Prefix; with a Delimiter, names holding it after the prefix
// roll up into one Subdir entry each (the prefix through the delimiter),
// except one equal to Marker, so the next page starts after the last
// entry's name or subdir; at most Limit entries (0: the driver's page size,
// at most 10,000; negative or above 10,000: ErrInvalid); Reverse lists in
// descending order (then Marker bounds from above and EndMarker from
// below).
type ObjectListOptions struct {
	Prefix    string
	Delimiter string
	Marker    string
	EndMarker string
	Limit     int
	Reverse   bool
}

// ObjectEntry is one listing row: an object, or (Subdir set, the rest
// zero) a rolled-up pseudo-directory ending in the delimiter.
type ObjectEntry struct {
	ObjectInfo
	Subdir string `json:"subdir,omitempty"`
}

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Name string `json:"name"`
	Size int64  `json:"bytes"`
	// ETag is the lowercase hex MD5 of the object's bytes.
	ETag        string `json:"hash"`
	ContentType string `json:"content_type"`
	// LastModified is when the object was last put or updated (Swift's
	// POST moves it too).
	LastModified time.Time `json:"last_modified"`
	// Metadata is the user metadata (Swift's X-Object-Meta-*), keys in
	// lower case without the prefix.
	Metadata map[string]string `json:"metadata,omitempty"`
	// DeleteAt is when the object expires (zero: never).
	DeleteAt time.Time `json:"delete_at,omitzero"`
}

// ObjectSpec is what PutObject stores beside the bytes.
type ObjectSpec struct {
	// Size is the exact length of data, or -1 when unknown (chunked).
	Size int64
	// ETag, when not empty, is the MD5 (lowercase hex) the bytes must have.
	ETag        string
	ContentType string
	Metadata    map[string]string
	DeleteAt    time.Time
}

// ObjectUpdate is a metadata replacement (Swift's object POST).
type ObjectUpdate struct {
	ContentType string
	Metadata    map[string]string
	DeleteAt    time.Time
}

// ByteRange is one HTTP byte range: bytes First..Last inclusive; Last < 0
// means to the end. A suffix range (the last N bytes) has Suffix N and
// the other fields zero.
type ByteRange struct {
	First, Last int64
	Suffix      int64
}
