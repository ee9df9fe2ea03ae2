package compute

import (
	"context"
	"fmt"
	"strings"

	"github.com/cloudmux/cloudmux/peers"
)

// checkMarks refuses marks that are not cloudmux_ keys, or that would
// overwrite what the service itself writes on a server.
func checkMarks(marks map[string]string) error {
	for k := range marks {
		switch k {
		case peers.MetaID, peers.MetaProject, peers.MetaBrokerID, metaUser, metaFlavor, metaFlavorName, metaImage, metaKeyName, metaBootVolume:
			return invalid("metadata", "mark %q is the service's own", k)
		}
		if !strings.HasPrefix(k, reservedMetaPre) {
			return invalid("metadata", "mark %q lacks the %s prefix", k, reservedMetaPre)
		}
	}
	return nil
}

// Marked returns the broker IDs of the caller's servers carrying every
// mark (CreateSpec.Marks), on every connected peer. A server a create
// left on its peer without indexing it (its broker died in between) is
// deleted, not returned; see index.Index.Marked.
func (s *Servers) Marked(ctx context.Context, c Caller, marks map[string]string) ([]string, error) {
	if len(marks) == 0 {
		return nil, fmt.Errorf("marked servers: no marks given: %w", ErrInvalid)
	}
	members, _ := s.connected() // a create on a peer not connected fails too
	return s.Index.Marked(ctx, members, s.BrokerID, KindServer, c.Project, marks, s.timeout())
}
