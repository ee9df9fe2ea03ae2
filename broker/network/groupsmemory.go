package network

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/registry"
)

// groupsRoot holds the security groups, one record per group under
// groupsRoot + project + "/" + group ID.
const groupsRoot = "neutron/security-groups/"

func sgKey(project, id string) string { return groupsRoot + project + "/" + id }

// GroupsMemory holds every project's security groups in memory on each
// replica, by project, fed by a Store watch, so a project's lists and
// lookups read no Store: Run it beside the Service it is set on. A group
// another replica just made is read from the Store (its one key) until
// the watch delivers it; changes read the Store, since they CAS on the
// group's current version.
type GroupsMemory = registry.Records[SecurityGroup]

// NewGroupsMemory returns the security groups kept in store; Run keeps
// them in memory.
func NewGroupsMemory(store registry.MirrorStore, log logrus.FieldLogger) *GroupsMemory {
	return registry.NewRecords(store, groupsRoot, decodeGroup, log)
}

func decodeGroup(kv registry.KV) (SecurityGroup, error) {
	var g SecurityGroup
	err := json.Unmarshal(kv.Value, &g)
	return g, err
}

// groupRecords returns the memory-held groups, or (without GroupsMemory)
// records that read the Store.
func (s *Service) groupRecords() *GroupsMemory {
	if s.GroupsMemory != nil {
		return s.GroupsMemory
	}
	return NewGroupsMemory(s.Store, s.Log)
}

// wroteGroup tells memory of a group this replica wrote at store index
// idx, so its next read sees it.
func (s *Service) wroteGroup(g SecurityGroup, idx uint64) {
	s.groupRecords().Wrote(sgKey(g.Project, g.ID), g, idx)
}

// projectGroups returns the project's stored groups, from memory.
func (s *Service) projectGroups(ctx context.Context, project string) ([]SecurityGroup, error) {
	if project == "" {
		return nil, nil // every project's is no project's
	}
	return s.groupRecords().List(ctx, project)
}

// storedGroups reads the project's groups from the Store (its prefix, one
// project's) and tells memory of them: for the rare paths that must not
// miss a group or rule another replica just wrote (a lookup memory
// missed, a delete dropping the rules that name a group).
func (s *Service) storedGroups(ctx context.Context, project string) ([]SecurityGroup, error) {
	if project == "" {
		return nil, nil
	}
	kvs, _, err := s.Store.List(ctx, groupsRoot+project+"/")
	if err != nil {
		return nil, err
	}
	out := make([]SecurityGroup, 0, len(kvs))
	for _, kv := range kvs {
		g, err := decodeGroup(kv)
		if err != nil {
			return nil, fmt.Errorf("decode %s: %w", kv.Key, err)
		}
		s.wroteGroup(g, kv.ModifyIndex)
		out = append(out, g)
	}
	return out, nil
}
