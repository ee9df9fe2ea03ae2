package ec2

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/cloudmux/cloudmux/broker/image"
	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/broker/network"
	"github.com/cloudmux/cloudmux/registry"
)

// memory makes the API's in-memory records on first use: the ID pairs,
// the tags, the terminated instances, the VPCs' CIDR blocks.
func (a *API) memory() {
	a.idsOnce.Do(func() {
		a.ids = newIDs(a.Store, a.Log)
		a.tags = newProjectRecords(a.Store, tagsRoot, a.Log)
		a.gone = newProjectRecords(a.Store, terminatedRoot, a.Log)
		a.cidrs = registry.NewRecords(a.Store, vpcCIDRRoot, func(kv registry.KV) (string, error) { return string(kv.Value), nil }, a.Log)
	})
}

func (a *API) idMaps() *ids {
	a.memory()
	return a.ids
}

func (a *API) tagRecords() *projectRecords {
	a.memory()
	return a.tags
}

func (a *API) terminatedRecords() *projectRecords {
	a.memory()
	return a.gone
}

// Run follows the ID pairs, tags, terminated instances and VPC blocks
// through Store watches until ctx ends. (The pairs of gone resources are collected by
// IDCollector, which the broker's gc runner runs.)
func (a *API) Run(ctx context.Context) error {
	a.memory()
	var wg sync.WaitGroup
	for _, run := range []func(context.Context) error{a.ids.mirror.Run, a.tags.mirror.Run, a.gone.mirror.Run, a.cidrs.Run} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = run(ctx)
		}()
	}
	wg.Wait()
	return ctx.Err()
}

// WaitReady blocks until the records are in memory.
func (a *API) WaitReady(ctx context.Context) error {
	a.memory()
	for _, m := range []interface{ WaitReady(context.Context) error }{a.ids.mirror, a.tags.mirror, a.gone.mirror, a.cidrs} {
		if err := m.WaitReady(ctx); err != nil {
			return err
		}
	}
	return nil
}

// resolveID returns the broker UUID of an EC2 ID (or a broker UUID) a
// request names. An ID with no pair yet is one a Describe showed for a
// resource of the project made elsewhere: it is found among the project's
// resources of its kind, and a call that acts on it records the pair.
func (a *API) resolveID(ctx context.Context, c *call, prefix, id string) (string, error) {
	u, err := a.idMaps().resolve(ctx, prefix, id)
	if !errors.Is(err, errUnknownID) {
		return u, err
	}
	if p, ok := parseID(id); !ok || p != prefix {
		return "", errUnknownID
	}
	if u, err = a.unmapped(ctx, c, prefix, id); err != nil {
		return "", err
	}
	if c.write {
		if _, err := a.ids.assign(ctx, prefix, u); err != nil {
			return "", err
		}
	}
	return u, nil
}

// unmapped finds the project's resource of prefix's kind whose shown ID
// is id.
func (a *API) unmapped(ctx context.Context, c *call, prefix, id string) (string, error) {
	var uuids []string
	project := c.token.ProjectID
	switch prefix {
	case prefixInstance, prefixVolume:
		entries, err := a.Index.List(ctx, indexKinds[prefix], project)
		if err != nil {
			return "", err
		}
		for _, e := range entries {
			uuids = append(uuids, e.ID)
		}
	case prefixImage:
		if a.Images == nil {
			return "", errUnknownID
		}
		page, err := a.Images.List(ctx, image.CallerOf(c.token), image.Query{})
		if err != nil {
			return "", err
		}
		for _, img := range page.Images {
			uuids = append(uuids, img.ID)
		}
	case prefixVPC, prefixSubnet:
		if a.Networks == nil {
			return "", errUnknownID
		}
		vis, err := a.Networks.List(ctx, project, false)
		if err != nil {
			return "", err
		}
		for _, n := range vis.Networks {
			uuids = append(uuids, n.Ref.ID)
		}
		for _, s := range vis.Subnets {
			uuids = append(uuids, s.Ref.ID)
		}
	case prefixSG:
		if a.Networks == nil {
			return "", errUnknownID
		}
		groups, err := a.Networks.SecurityGroups(ctx, project)
		if err != nil {
			return "", err
		}
		for _, g := range groups {
			uuids = append(uuids, g.ID)
		}
	}
	for _, u := range uuids {
		if got, err := a.ids.shown(ctx, prefix, u); err == nil && got == id {
			return u, nil
		}
	}
	return "", errUnknownID
}

// Garbage collection of the ID pairs.

// DefaultIDRetention is how long a gone resource's pair is kept.
const DefaultIDRetention = 24 * time.Hour

// gcKinds is the index kind whose entry proves a pair's resource exists.
// Security groups are not indexed (they live in the network service's own
// records, by project), so their pairs are kept.
var gcKinds = map[string]string{prefixInstance: "server", prefixImage: image.Kind, prefixVolume: "volume",
	prefixVPC: network.KindNetwork, prefixSubnet: network.KindSubnet,
	prefixEIP: network.KindFloatingIP, prefixEIPAssoc: network.KindFloatingIP}

// IDCollector removes the pairs of resources gone for at least its
// retention, so the pairs grow with what exists, not with what ever did.
// A pair's resource is gone when the broker index no longer holds it; the
// collector notes when it first saw each one gone, in memory, so a broker
// that takes the gc lease over starts the clock again (a pair can outlive
// its retention, never fall short of it). It is a gc.Collector: the
// broker's gc runner runs it on one broker at a time.
type IDCollector struct {
	api       *API
	retention time.Duration

	mu   sync.Mutex
	gone map[string]time.Time // ec2/ids/ key -> when first seen gone
}

// IDCollector returns the collector of the API's ID pairs, with
// IDRetention (default DefaultIDRetention).
func (a *API) IDCollector() *IDCollector {
	r := a.IDRetention
	if r <= 0 {
		r = DefaultIDRetention
	}
	return &IDCollector{api: a, retention: r, gone: map[string]time.Time{}}
}

// Name implements the GC Collector contract.
func (g *IDCollector) Name() string { return "ec2-ids" }

// Collect makes one pass at now and returns how many pairs it removed.
func (g *IDCollector) Collect(ctx context.Context, now time.Time) (int, error) {
	a := g.api
	m := a.idMaps()
	kvs, _, err := a.Store.List(ctx, idsPrefix)
	if err != nil {
		return 0, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	seen := make(map[string]bool, len(kvs))
	removed := 0
	for _, kv := range kvs {
		seen[kv.Key] = true
		id := strings.TrimPrefix(kv.Key, idsPrefix)
		prefix, _ := parseID(id)
		kind, ok := gcKinds[prefix]
		if !ok {
			continue
		}
		uuid := string(kv.Value)
		_, err := a.Index.Get(ctx, kind, uuid, "")
		if err == nil {
			delete(g.gone, kv.Key)
			continue
		}
		if !errors.Is(err, index.ErrNotFound) {
			return removed, err
		}
		since, noted := g.gone[kv.Key]
		if !noted {
			g.gone[kv.Key] = now
			continue
		}
		if now.Sub(since) < g.retention {
			continue
		}
		if err := a.Store.DeleteCAS(ctx, kv.Key, kv.ModifyIndex); err != nil && !errors.Is(err, registry.ErrConflict) {
			return removed, err
		}
		m.mirror.Deleted(kv.Key, kv.ModifyIndex)
		reverse := uuidsPrefix + prefix + "/" + uuid
		if rv, err := a.Store.Get(ctx, reverse); err == nil && string(rv.Value) == id {
			if err := a.Store.DeleteCAS(ctx, reverse, rv.ModifyIndex); err != nil && !errors.Is(err, registry.ErrConflict) {
				return removed, err
			}
		}
		delete(g.gone, kv.Key)
		removed++
	}
	for key := range g.gone {
		if !seen[key] {
			delete(g.gone, key)
		}
	}
	return removed, nil
}
