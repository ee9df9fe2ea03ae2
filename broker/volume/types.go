package volume

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/registry"
)

// Volume types are the broker's own (Cinder's volume_types): a cloud
// admin makes them, and their extra specs say where a volume of the type
// may go and what it is on its peer. Only the specs the broker acts on
// are taken; any other is refused, never stored unused:
//
//   - cloudmux:label:<key> = <value>: placement takes only peers carrying
//     that label (policy.Request.RequiredLabels);
//   - cloudmux:peer_volume_type = <name>: the peer makes the volume with
//     its own type of that name (an OpenStack peer's Cinder type; the
//     local cloud has "local").
//
// A private type is seen and used by cloud admins and the projects given
// access only; another project's create naming it is "not found".
// __DEFAULT__ is built in (public, no specs), as in Cinder, and is the
// type of a volume created without one.
const (
	SpecLabelPrefix  = "cloudmux:label:"
	SpecPeerType     = "cloudmux:peer_volume_type"
	DefaultTypeName  = "__DEFAULT__"
	typesRoot        = "volume/types/"
	maxTypeSpecValue = 255
)

// DefaultTypeID is __DEFAULT__'s ID, the same on every broker.
var DefaultTypeID = uuid.NewSHA1(uuid.NameSpaceURL, []byte("cloudmux:volume-type:"+DefaultTypeName)).String()

// VolumeType is a volume type as kept in the Store (one record per type
// under volume/types/<id>).
type VolumeType struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Description string            `json:"description,omitempty"`
	Public      bool              `json:"public"`
	ExtraSpecs  map[string]string `json:"extra_specs,omitempty"`
	// Projects may use a private type.
	Projects  []string  `json:"projects,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// TypesMemory holds every volume type in memory on each replica, fed by
// a Store watch: Run it beside the Service it is set on. Without it the
// types are read from the Store.
type TypesMemory = registry.Records[VolumeType]

// NewTypesMemory returns the volume types kept in store.
func NewTypesMemory(store registry.MirrorStore, log logrus.FieldLogger) *TypesMemory {
	return registry.NewRecords(store, typesRoot, decodeType, log)
}

func decodeType(kv registry.KV) (VolumeType, error) {
	var t VolumeType
	err := json.Unmarshal(kv.Value, &t)
	return t, err
}

func (s *Service) types() *TypesMemory {
	if s.Types != nil {
		return s.Types
	}
	return NewTypesMemory(s.Store, s.Log) // not running: reads the Store
}

func defaultType() VolumeType {
	return VolumeType{ID: DefaultTypeID, Name: DefaultTypeName, Description: "Default Volume Type", Public: true, ExtraSpecs: map[string]string{}}
}

func typeNotFound(ref string) error {
	return &Error{Message: fmt.Sprintf("Volume type %s could not be found.", ref), Err: ErrNotFound}
}

// visible reports whether c may see and use t.
func (t VolumeType) visible(c Caller) bool {
	return t.Public || c.Admin || slices.Contains(t.Projects, c.Project)
}

// Labels are the peer labels the type requires.
func (t VolumeType) Labels() map[string]string {
	out := map[string]string{}
	for k, v := range t.ExtraSpecs {
		if label, ok := strings.CutPrefix(k, SpecLabelPrefix); ok {
			out[label] = v
		}
	}
	return out
}

// ListTypes returns the types c may see, __DEFAULT__ first, then by name.
func (s *Service) ListTypes(ctx context.Context, c Caller) ([]VolumeType, error) {
	all, err := s.types().List(ctx, "")
	if err != nil {
		return nil, err
	}
	out := []VolumeType{defaultType()}
	for _, t := range all {
		if t.visible(c) {
			out = append(out, t)
		}
	}
	slices.SortStableFunc(out[1:], func(a, b VolumeType) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// GetType finds a type c may see by ID or name ("default" is the default
// type, as Cinder's /types/default).
func (s *Service) GetType(ctx context.Context, c Caller, ref string) (VolumeType, error) {
	if ref == "default" || ref == DefaultTypeID || ref == DefaultTypeName {
		return defaultType(), nil
	}
	all, err := s.types().List(ctx, "")
	if err != nil {
		return VolumeType{}, err
	}
	for _, t := range all {
		if (t.ID == ref || t.Name == ref) && t.visible(c) {
			return t, nil
		}
	}
	return VolumeType{}, typeNotFound(ref)
}

// TypeSpec is a new type, or (nil fields unchanged) a change to one.
type TypeSpec struct {
	Name        *string
	Description *string
	Public      *bool
	ExtraSpecs  map[string]string
	// MergeSpecs keeps the specs ExtraSpecs does not name; DeleteSpecs are
	// removed.
	MergeSpecs  bool
	DeleteSpecs []string
	// AddProjects and RemoveProjects change a private type's access.
	AddProjects, RemoveProjects []string
}

// checkSpecs refuses extra specs the broker does not act on, naming them.
func checkSpecs(specs map[string]string) error {
	var bad []string
	for _, k := range slices.Sorted(maps.Keys(specs)) {
		v := specs[k]
		switch label, isLabel := strings.CutPrefix(k, SpecLabelPrefix); {
		case isLabel && label != "" && v != "" && len(v) <= maxTypeSpecValue:
		case k == SpecPeerType && v != "" && len(v) <= maxTypeSpecValue:
		default:
			bad = append(bad, k)
		}
	}
	if len(bad) > 0 {
		return invalid("extra_specs", "Invalid input received: extra_specs: %s: this broker acts on %s<key>=<value> (peers carrying the label) and %s=<the peer's type>, each with a value of 1 to %d characters",
			strings.Join(bad, ", "), SpecLabelPrefix, SpecPeerType, maxTypeSpecValue)
	}
	return nil
}

// CreateType makes a type (cloud admins only; the API checks). Names are
// unique.
func (s *Service) CreateType(ctx context.Context, spec TypeSpec) (VolumeType, error) {
	if spec.Name == nil || *spec.Name == "" || len(*spec.Name) > 255 {
		return VolumeType{}, invalid("name", "Invalid input received: name: 1 to 255 characters")
	}
	if err := checkSpecs(spec.ExtraSpecs); err != nil {
		return VolumeType{}, err
	}
	t := VolumeType{ID: uuid.NewString(), Name: *spec.Name, Public: true, ExtraSpecs: maps.Clone(spec.ExtraSpecs), CreatedAt: time.Now().UTC()}
	if t.ExtraSpecs == nil {
		t.ExtraSpecs = map[string]string{}
	}
	if spec.Description != nil {
		t.Description = *spec.Description
	}
	if spec.Public != nil {
		t.Public = *spec.Public
	}
	if err := s.uniqueTypeName(ctx, t.Name, ""); err != nil {
		return VolumeType{}, err
	}
	if err := s.writeType(ctx, t, 0); err != nil {
		return VolumeType{}, err
	}
	s.Log.WithFields(logrus.Fields{"volume_type": t.ID, "name": t.Name}).Info("volume type created")
	return t, nil
}

// uniqueTypeName refuses a name another type (not id) has.
func (s *Service) uniqueTypeName(ctx context.Context, name, id string) error {
	all, err := s.types().List(ctx, "")
	if err != nil {
		return err
	}
	for _, o := range all {
		if o.Name == name && o.ID != id || name == DefaultTypeName {
			return &Error{Field: "name", Message: fmt.Sprintf("Volume Type %s already exists.", name), Err: ErrExists}
		}
	}
	return nil
}

func (s *Service) writeType(ctx context.Context, t VolumeType, at uint64) error {
	b, err := json.Marshal(t)
	if err != nil {
		return err
	}
	idx, err := s.Store.CAS(ctx, typesRoot+t.ID, b, at)
	if err != nil {
		return err
	}
	if s.Types != nil {
		s.Types.Wrote(typesRoot+t.ID, t, idx)
	}
	return nil
}

// UpdateType changes a type (cloud admins only): its name, description,
// visibility, extra specs and project access. __DEFAULT__ does not
// change.
func (s *Service) UpdateType(ctx context.Context, id string, spec TypeSpec) (VolumeType, error) {
	if id == DefaultTypeID || id == DefaultTypeName || id == "default" {
		return VolumeType{}, invalid("", "Invalid volume type: the default volume type %s cannot be changed", DefaultTypeName)
	}
	if err := checkSpecs(spec.ExtraSpecs); err != nil {
		return VolumeType{}, err
	}
	for {
		kv, err := s.Store.Get(ctx, typesRoot+id)
		if errors.Is(err, registry.ErrNotFound) {
			return VolumeType{}, typeNotFound(id)
		}
		if err != nil {
			return VolumeType{}, err
		}
		t, err := decodeType(kv)
		if err != nil {
			return VolumeType{}, err
		}
		if err := applyTypeSpec(&t, spec); err != nil {
			return VolumeType{}, err
		}
		if spec.Name != nil {
			if err := s.uniqueTypeName(ctx, t.Name, t.ID); err != nil {
				return VolumeType{}, err
			}
		}
		err = s.writeType(ctx, t, kv.ModifyIndex)
		if errors.Is(err, registry.ErrConflict) && ctx.Err() == nil {
			continue // another change landed first: apply this one over it
		}
		return t, err
	}
}

// applyTypeSpec changes t as spec says.
func applyTypeSpec(t *VolumeType, spec TypeSpec) error {
	if spec.Name != nil {
		if *spec.Name == "" || len(*spec.Name) > 255 {
			return invalid("name", "Invalid input received: name: 1 to 255 characters")
		}
		t.Name = *spec.Name
	}
	if spec.Description != nil {
		t.Description = *spec.Description
	}
	if spec.Public != nil {
		t.Public = *spec.Public
	}
	if spec.ExtraSpecs != nil && !spec.MergeSpecs {
		t.ExtraSpecs = map[string]string{}
	}
	if t.ExtraSpecs == nil {
		t.ExtraSpecs = map[string]string{}
	}
	maps.Copy(t.ExtraSpecs, spec.ExtraSpecs)
	for _, k := range spec.DeleteSpecs {
		if _, ok := t.ExtraSpecs[k]; !ok {
			return &Error{Message: fmt.Sprintf("Volume Type %s has no extra specs with key %s.", t.ID, k), Err: ErrNotFound}
		}
		delete(t.ExtraSpecs, k)
	}
	if (len(spec.AddProjects) > 0 || len(spec.RemoveProjects) > 0) && t.Public {
		return invalid("", "Invalid volume type: Type access modification is not applicable to public volume type.")
	}
	for _, p := range spec.AddProjects {
		if slices.Contains(t.Projects, p) {
			return &Error{Message: fmt.Sprintf("Volume type access for %s / %s combination already exists.", t.ID, p), Err: ErrExists}
		}
		t.Projects = append(t.Projects, p)
	}
	for _, p := range spec.RemoveProjects {
		i := slices.Index(t.Projects, p)
		if i < 0 {
			return &Error{Message: fmt.Sprintf("Volume type access not found for %s / %s combination.", t.ID, p), Err: ErrNotFound}
		}
		t.Projects = slices.Delete(t.Projects, i, i+1)
	}
	return nil
}

// DeleteType deletes a type (cloud admins only); __DEFAULT__ stays.
// Volumes of a deleted type keep showing its name.
func (s *Service) DeleteType(ctx context.Context, id string) error {
	if id == DefaultTypeID || id == DefaultTypeName || id == "default" {
		return invalid("", "Invalid volume type: Default volume type can not be deleted.")
	}
	if _, err := s.Store.Get(ctx, typesRoot+id); errors.Is(err, registry.ErrNotFound) {
		return typeNotFound(id)
	} else if err != nil {
		return err
	}
	if err := s.Store.Delete(ctx, typesRoot+id); err != nil {
		return err
	}
	if s.Types != nil {
		s.Types.Deleted(typesRoot + id)
	}
	s.Log.WithField("volume_type", id).Info("volume type deleted")
	return nil
}
