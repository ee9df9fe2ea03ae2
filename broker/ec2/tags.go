package ec2

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/cloudmux/cloudmux/broker/compute"
	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/registry"
)

// Tags are broker records, one per resource and key, under
// ec2/tags/<project>/<ec2 id>/<key, base64url>: a project's tags are one
// prefix read, and a resource's one prefix below it.

// maxTagsPerResource is EC2's limit.
const maxTagsPerResource = 50

// tagRecord is a stored tag.
type tagRecord struct {
	ResourceID   string `json:"resource_id"`
	ResourceType string `json:"resource_type"`
	Key          string `json:"key"`
	Value        string `json:"value"`
}

const tagsRoot = "ec2/tags/"

func tagsPrefix(project string) string { return tagsRoot + project + "/" }

func tagKey(project, resource, key string) string {
	return tagsPrefix(project) + resource + "/" + base64.RawURLEncoding.EncodeToString([]byte(key))
}

// resourceTypes names the EC2 resource type of an ID prefix.
var resourceTypes = map[string]string{prefixInstance: "instance", prefixImage: "image", prefixVolume: "volume"}

// indexKinds names the broker index kind of an ID prefix.
var indexKinds = map[string]string{prefixInstance: "server", prefixImage: "image", prefixVolume: "volume"}

// notFoundCodes are EC2's not-found codes by ID prefix.
var notFoundCodes = map[string]string{prefixInstance: "InvalidInstanceID.NotFound", prefixImage: "InvalidAMIID.NotFound", prefixVolume: "InvalidVolume.NotFound"}

// owned resolves an EC2 ID to the index entry of a resource the project
// owns; anything else (another project's, unknown, malformed) is the
// resource type's NotFound error.
func (a *API) owned(ctx context.Context, c *call, id string) (string, index.Entry, error) {
	prefix, ok := parseID(id)
	if _, taggable := indexKinds[prefix]; !ok || !taggable {
		return "", index.Entry{}, invalidParameter("Invalid id: %q (expected i-, ami- or vol- and 8 or 17 hex digits)", id)
	}
	uuid, err := a.resolveID(ctx, c, prefix, id)
	if err == nil {
		var e index.Entry
		if e, err = a.Index.Get(ctx, indexKinds[prefix], uuid, c.token.ProjectID); err == nil {
			return prefix, e, nil
		}
	}
	if errors.Is(err, errUnknownID) || errors.Is(err, index.ErrNotFound) {
		return prefix, index.Entry{}, notFound(notFoundCodes[prefix], "The ID '%s' does not exist", id)
	}
	return prefix, index.Entry{}, err
}

// loadTags reads a project's tags, by resource.
func (a *API) loadTags(ctx context.Context, project string) (map[string][]tagRecord, error) {
	kvs, err := a.tagRecords().list(ctx, tagsPrefix(project))
	if err != nil {
		return nil, err
	}
	out := map[string][]tagRecord{}
	for _, kv := range kvs {
		var t tagRecord
		if err := json.Unmarshal(kv.Value, &t); err != nil {
			return nil, fmt.Errorf("decode %s: %w", kv.Key, err)
		}
		out[t.ResourceID] = append(out[t.ResourceID], t)
	}
	for _, ts := range out {
		sort.Slice(ts, func(i, j int) bool { return ts[i].Key < ts[j].Key })
	}
	return out, nil
}

// tagSet renders a resource's tags for a describe answer.
func tagSet(recs []tagRecord) items[Tag] {
	out := make([]Tag, 0, len(recs))
	for _, t := range recs {
		out = append(out, Tag{Key: t.Key, Value: t.Value})
	}
	return list(out)
}

// putTags sets tags on a resource (overwriting a key's value), within the
// per-resource limit.
func (a *API) putTags(ctx context.Context, project, resource, resourceType string, tags []Tag) error {
	if len(tags) == 0 {
		return nil
	}
	kvs, _, err := a.Store.List(ctx, tagsPrefix(project)+resource+"/")
	if err != nil {
		return err
	}
	have := map[string]uint64{}
	for _, kv := range kvs {
		have[kv.Key] = kv.ModifyIndex
	}
	added := 0
	for _, t := range tags {
		if _, ok := have[tagKey(project, resource, t.Key)]; !ok {
			added++
		}
	}
	if len(have)+added > maxTagsPerResource {
		return errorf(400, "TagLimitExceeded", "a resource may have at most %d tags", maxTagsPerResource)
	}
	for _, t := range tags {
		raw, _ := json.Marshal(tagRecord{ResourceID: resource, ResourceType: resourceType, Key: t.Key, Value: t.Value})
		key := tagKey(project, resource, t.Key)
		// Last writer wins for a key's value, as in EC2; CAS on the index
		// read keeps a concurrent writer's new key from being lost to ours.
		idx, err := a.Store.CAS(ctx, key, raw, have[key])
		if errors.Is(err, registry.ErrConflict) {
			if kv, gerr := a.Store.Get(ctx, key); gerr == nil {
				idx, err = a.Store.CAS(ctx, key, raw, kv.ModifyIndex)
			}
		}
		if err != nil {
			return err
		}
		a.tagRecords().wrote(key, raw, idx)
	}
	return nil
}

// dropTags removes every tag of a resource that is gone.
func (a *API) dropTags(ctx context.Context, project, resource string) {
	kvs, _, err := a.Store.List(ctx, tagsPrefix(project)+resource+"/")
	if err != nil {
		a.Log.WithError(err).WithField("resource", resource).Warn("ec2: tags of a deleted resource left behind")
		return
	}
	for _, kv := range kvs {
		_ = a.tagRecords().delete(ctx, kv.Key)
	}
}

func (a *API) createTags(ctx context.Context, c *call) (any, error) {
	resources := c.params.list("ResourceId")
	if len(resources) == 0 {
		return nil, missingParameter("ResourceId.1")
	}
	tags, e := c.params.tags("Tag")
	if e != nil {
		return nil, e
	}
	if len(tags) == 0 {
		return nil, missingParameter("Tag.1.Key")
	}
	types := make([]string, len(resources))
	entries := make([]index.Entry, len(resources))
	for i, id := range resources {
		prefix, e, err := a.owned(ctx, c, id)
		if err != nil {
			return nil, err
		}
		types[i], entries[i] = resourceTypes[prefix], e
	}
	for i, id := range resources {
		if err := a.putTags(ctx, c.token.ProjectID, id, types[i], tags); err != nil {
			return nil, err
		}
		// An instance's Name tag is its name: Nova shows the rename.
		for _, t := range tags {
			if t.Key == "Name" && types[i] == "instance" && a.Servers != nil && strings.TrimSpace(t.Value) != "" {
				name := t.Value
				if _, err := a.Servers.Update(ctx, compute.CallerOf(c.token), entries[i].ID, compute.Update{Name: &name}); err != nil {
					a.Log.WithError(err).WithField("instance", id).Warn("ec2: Name tag not applied as the server's name")
				}
			}
		}
	}
	return returnTrue{true}, nil
}

// deleteTags removes keys (only where the value matches, when one is
// given); with no Tag at all, every tag of the resources.
func (a *API) deleteTags(ctx context.Context, c *call) (any, error) {
	resources := c.params.list("ResourceId")
	if len(resources) == 0 {
		return nil, missingParameter("ResourceId.1")
	}
	type want struct {
		key, value string
		anyValue   bool
	}
	var wants []want
	for _, n := range c.params.indexes("Tag") {
		k := c.params.get(fmt.Sprintf("Tag.%d.Key", n))
		vName := fmt.Sprintf("Tag.%d.Value", n)
		wants = append(wants, want{key: k, value: c.params.get(vName), anyValue: !c.params.has(vName)})
	}
	all, err := a.loadTags(ctx, c.token.ProjectID)
	if err != nil {
		return nil, err
	}
	for _, id := range resources {
		if _, _, err := a.owned(ctx, c, id); err != nil {
			return nil, err
		}
		for _, t := range all[id] {
			drop := len(wants) == 0
			for _, w := range wants {
				if w.key == t.Key && (w.anyValue || w.value == t.Value) {
					drop = true
				}
			}
			if drop {
				if err := a.tagRecords().delete(ctx, tagKey(c.token.ProjectID, id, t.Key)); err != nil {
					return nil, err
				}
			}
		}
	}
	return returnTrue{true}, nil
}

type tagItem struct {
	ResourceID   string `xml:"resourceId"`
	ResourceType string `xml:"resourceType"`
	Key          string `xml:"key"`
	Value        string `xml:"value"`
}

// describeTags lists the project's tags; filters resource-id,
// resource-type, key, value (with EC2's * and ? wildcards).
func (a *API) describeTags(ctx context.Context, c *call) (any, error) {
	all, err := a.loadTags(ctx, c.token.ProjectID)
	if err != nil {
		return nil, err
	}
	var out []tagItem
	for _, recs := range all {
		for _, t := range recs {
			it := tagItem(t)
			if tagMatches(it, c.params.filters()) {
				out = append(out, it)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ResourceID != out[j].ResourceID {
			return out[i].ResourceID < out[j].ResourceID
		}
		return out[i].Key < out[j].Key
	})
	return struct {
		TagSet items[tagItem] `xml:"tagSet"`
	}{list(out)}, nil
}

func tagMatches(t tagItem, filters []filter) bool {
	for _, f := range filters {
		var v string
		switch f.Name {
		case "resource-id":
			v = t.ResourceID
		case "resource-type":
			v = t.ResourceType
		case "key":
			v = t.Key
		case "value":
			v = t.Value
		default:
			continue
		}
		if !matchAny(f.Values, v) {
			return false
		}
	}
	return true
}

// tagFilters applies tag:KEY and tag-key filters of a describe to a
// resource's tags; other filters pass.
func tagFilters(recs []tagRecord, filters []filter) bool {
	for _, f := range filters {
		switch {
		case f.Name == "tag-key":
			ok := false
			for _, t := range recs {
				ok = ok || matchAny(f.Values, t.Key)
			}
			if !ok {
				return false
			}
		case len(f.Name) > 4 && f.Name[:4] == "tag:":
			ok := false
			for _, t := range recs {
				ok = ok || (t.Key == f.Name[4:] && matchAny(f.Values, t.Value))
			}
			if !ok {
				return false
			}
		}
	}
	return true
}
