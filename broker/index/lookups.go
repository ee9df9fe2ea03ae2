package index

import (
	"context"
	"slices"
)

// Shared returns the entries of kind marked Shared, of every project, by
// ID: from memory they cost only themselves. An index that is not running
// reads the kind's primary entries from the Store.
func (x *Index) Shared(ctx context.Context, kind string) ([]Entry, error) {
	if x.mirror.Loaded() {
		return x.mem.shared(kind), nil
	}
	all, err := x.primaries(ctx, kind)
	return slices.DeleteFunc(all, func(e Entry) bool { return !e.Shared }), err
}

// OnPeer returns project's entries of kind on the peer peerID, by ID,
// from the primary entries: a delete cut between its two writes may have
// removed a project's copy only, and a caller cleaning up after a peer
// must still find the entry. From memory it reads the project's entries
// only; an index that is not running reads the kind's primary entries.
func (x *Index) OnPeer(ctx context.Context, kind, project, peerID string) ([]Entry, error) {
	var from []Entry
	if x.mirror.Loaded() {
		from = x.mem.list(kind, project) // memory holds the primary entries
	} else {
		var err error
		if from, err = x.primaries(ctx, kind); err != nil {
			return nil, err
		}
	}
	return slices.DeleteFunc(from, func(e Entry) bool { return e.PeerID != peerID || e.Project != project }), nil
}

// primaries reads every primary entry of kind from the Store, by ID.
func (x *Index) primaries(ctx context.Context, kind string) ([]Entry, error) {
	out, err := x.read(ctx, keyRoot+kind+"/")
	return byID(out), err
}
