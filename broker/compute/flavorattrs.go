package compute

import (
	"context"
	"errors"
	"fmt"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/kept"
	"github.com/cloudmux/cloudmux/registry"
)

// FlavorAttrs holds what admins set on flavors that no peer keeps (the
// description, Nova 2.55), by the flavor ID the API shows, in memory on
// every replica, fed by a Store watch: Run it beside the Servers it is set
// on.
type FlavorAttrs = kept.Memory[flavorAttrs]

type flavorAttrs struct {
	Description *string `json:"description,omitempty"`
}

const (
	flavorAttrsRoot = "compute/flavor-attrs/"
	// flavorScope is the attrs' project part: flavors are the cloud's.
	flavorScope = "cloud"
)

// NewFlavorAttrs returns the flavor attrs kept in store.
func NewFlavorAttrs(store registry.MirrorStore, log logrus.FieldLogger) *FlavorAttrs {
	return kept.NewMemory[flavorAttrs](store, flavorAttrsRoot, log)
}

func (s *Servers) flavorAttrStore() kept.Attrs[flavorAttrs] {
	return kept.Attrs[flavorAttrs]{Store: s.Store, Root: flavorAttrsRoot, Memory: s.FlavorAttrs, Log: s.Log}
}

// FlavorDescription returns a flavor's description (nil: none).
func (s *Servers) FlavorDescription(ctx context.Context, flavorID string) (*string, error) {
	a, err := s.flavorAttrStore().View(ctx, flavorScope, flavorID)
	return a.Description, err
}

// SetFlavorDescription sets (nil: clears) the description of a flavor the
// pool offers; a cloud admin's only.
func (s *Servers) SetFlavorDescription(ctx context.Context, c Caller, flavorID string, d *string) error {
	if !c.Admin {
		return &Error{Message: "Policy doesn't allow os_compute_api:os-flavor-manage:update to be performed.", Err: ErrForbidden}
	}
	if d != nil {
		if err := CheckDescription(*d); err != nil {
			return err
		}
	}
	for attempt := 0; ; attempt++ {
		_, at, err := s.flavorAttrStore().Load(ctx, flavorScope, flavorID)
		if err != nil {
			return err
		}
		err = s.flavorAttrStore().CAS(ctx, flavorScope, flavorID, flavorAttrs{Description: d}, at)
		if errors.Is(err, registry.ErrConflict) && attempt < 5 {
			continue
		}
		if err != nil {
			return fmt.Errorf("keeping flavor %s's description: %w", flavorID, err)
		}
		return nil
	}
}
