package templatesapi

import (
	"context"
	"time"

	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/templates/deploy"
)

// IndexAdapter lets the deployment engine write the broker's resource
// index: set Engine.Index = templatesapi.IndexAdapter{Index: idx}.
type IndexAdapter struct{ Index *index.Index }

var _ deploy.Indexer = IndexAdapter{}

func entryOf(r deploy.IndexedResource) index.Entry {
	return index.Entry{Kind: r.Kind, ID: r.BrokerID, Project: r.Project, PeerID: r.PeerID,
		PeerResourceID: r.PeerResourceID, Name: r.Name, CreatedAt: time.Now().UTC()}
}

// Indexed implements deploy.Indexer.
func (x IndexAdapter) Indexed(ctx context.Context, r deploy.IndexedResource) error {
	return x.Index.Put(ctx, entryOf(r))
}

// Unindexed implements deploy.Indexer.
func (x IndexAdapter) Unindexed(ctx context.Context, r deploy.IndexedResource) error {
	return x.Index.Delete(ctx, entryOf(r))
}
