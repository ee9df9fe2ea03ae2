package localcloud

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/cloudmux/cloudmux/peers"
)

// objectReapInterval is how often the reaper looks for expired objects
// no call has come across (calls sweep what they touch themselves).
var objectReapInterval = time.Minute

// objectsBegin is the preamble of the object calls: a done context or a
// closed cloud ends it. Object calls do not hold c.mu: the object store
// has its own locks.
func (c *Cloud) objectsBegin(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fmt.Errorf("local cloud %s is closed: %w", c.cfg.Name, peers.ErrUnavailable)
	}
	return nil
}

// CreateContainer makes an empty container; an existing one is fine.
func (c *Cloud) CreateContainer(ctx context.Context, name string) error {
	if err := c.objectsBegin(ctx); err != nil {
		return err
	}
	if err := peers.CheckContainerName(name); err != nil {
		return err
	}
	if err := c.objects.createContainer(name); err != nil {
		return fmt.Errorf("container %s: %w", name, diskErr(err))
	}
	return nil
}

// DeleteContainer removes an empty container.
func (c *Cloud) DeleteContainer(ctx context.Context, name string) error {
	if err := c.objectsBegin(ctx); err != nil {
		return err
	}
	return c.objects.deleteContainer(name)
}

// ContainerStats counts a container's live objects, from its counters.
func (c *Cloud) ContainerStats(ctx context.Context, name string) (peers.ContainerStats, error) {
	ct, err := c.liveContainer(ctx, name)
	if err != nil {
		return peers.ContainerStats{}, err
	}
	ct.mu.RLock()
	defer ct.mu.RUnlock()
	return peers.ContainerStats{Objects: ct.objects, Bytes: ct.bytes}, nil
}

// ListObjects pages through a container's index (see container.list).
func (c *Cloud) ListObjects(ctx context.Context, name string, opts peers.ObjectListOptions) ([]peers.ObjectEntry, error) {
	if err := peers.CheckListOptions(opts); err != nil {
		return nil, err
	}
	ct, err := c.liveContainer(ctx, name)
	if err != nil {
		return nil, err
	}
	ct.mu.RLock()
	defer ct.mu.RUnlock()
	return ct.list(opts), nil
}

// ListContainers lists the store's container names under prefix, from
// the map of containers (sorted per call: a GC pass's cost, not a
// request's).
func (c *Cloud) ListContainers(ctx context.Context, prefix, marker string, limit int) ([]string, error) {
	if err := peers.CheckListOptions(peers.ObjectListOptions{Limit: limit}); err != nil {
		return nil, err
	}
	if err := c.objectsBegin(ctx); err != nil {
		return nil, err
	}
	if limit == 0 {
		limit = peers.MaxListLimit
	}
	c.objects.mu.RLock()
	var names []string
	for name := range c.objects.containers {
		if strings.HasPrefix(name, prefix) && name > marker {
			names = append(names, name)
		}
	}
	c.objects.mu.RUnlock()
	slices.Sort(names)
	return names[:min(len(names), limit)], nil
}

// liveContainer returns a container with its expired objects swept from
// its index.
func (c *Cloud) liveContainer(ctx context.Context, name string) (*container, error) {
	if err := c.objectsBegin(ctx); err != nil {
		return nil, err
	}
	ct, err := c.objects.container(name)
	if err != nil {
		return nil, err
	}
	c.sweep(ct)
	return ct, nil
}

// sweep takes ct's expired objects out of its index and wakes the reaper
// to remove their files.
func (c *Cloud) sweep(ct *container) {
	at := now()
	if !ct.due(at) {
		return
	}
	ct.mu.Lock()
	n, freed := ct.sweepLocked(at)
	ct.mu.Unlock()
	c.objects.used.Add(-freed)
	if n > 0 {
		select {
		case c.objects.kick <- struct{}{}:
		default:
		}
	}
}

// PutObject streams data into a new data file, then commits it (see
// objectStore). The bytes are never held in memory beyond a copy buffer.
func (c *Cloud) PutObject(ctx context.Context, container, name string, data io.Reader, spec peers.ObjectSpec) (peers.ObjectInfo, error) {
	if err := c.objectsBegin(ctx); err != nil {
		return peers.ObjectInfo{}, err
	}
	if err := checkObjectCall(name, spec.Metadata); err != nil {
		return peers.ObjectInfo{}, err
	}
	if spec.Size < -1 {
		return peers.ObjectInfo{}, errf(peers.ErrInvalid, "object %s: size %d; want >= 0, or -1 when unknown", name, spec.Size)
	}
	ct, err := c.objects.container(container)
	if err != nil {
		return peers.ObjectInfo{}, err
	}
	if !c.objects.fits(spec.Size) {
		return peers.ObjectInfo{}, errf(peers.ErrCapacity, "object %s/%s: %d bytes do not fit in the object store's quota of %d", container, name, spec.Size, c.objects.quota)
	}
	e, err := c.objects.writeData(ctx, ct, name, data, spec.Size)
	if err != nil {
		return peers.ObjectInfo{}, fmt.Errorf("object %s/%s: %w", container, name, err)
	}
	defer c.objects.release(e.size)
	// Nothing commits after Close: the data directory may have a new
	// owner.
	if err := c.objectsBegin(context.WithoutCancel(ctx)); err != nil {
		c.objects.removeData(ct, e)
		return peers.ObjectInfo{}, err
	}
	if want := strings.ToLower(spec.ETag); want != "" && want != e.etag {
		c.objects.removeData(ct, e)
		return peers.ObjectInfo{}, errf(peers.ErrInvalid, "object %s/%s: the data's MD5 is %s, its ETag says %s", container, name, e.etag, spec.ETag)
	}
	e.ctype, e.meta, e.deleteAt, e.modified = contentType(spec.ContentType), maps.Clone(spec.Metadata), spec.DeleteAt.UTC(), now()
	if spec.DeleteAt.IsZero() {
		e.deleteAt = time.Time{}
	}
	stripe := c.objects.stripe(ct, name)
	stripe.Lock()
	err = c.objects.commit(ct, e)
	stripe.Unlock()
	if err != nil {
		c.objects.removeData(ct, e)
		return peers.ObjectInfo{}, fmt.Errorf("object %s/%s: %w", container, name, diskErr(err))
	}
	return e.info(), nil
}

// GetObject opens an object's bytes; a full read is checked against the
// CRC-32C taken when they were stored (objReader, which also lets an HTTP
// response send them by sendfile). A concurrent replace or
// delete does not cut a read short.
func (c *Cloud) GetObject(ctx context.Context, container, name string, rng *peers.ByteRange) (peers.ObjectInfo, io.ReadCloser, error) {
	ct, e, err := c.liveObject(ctx, container, name)
	if err != nil {
		return peers.ObjectInfo{}, nil, err
	}
	info := e.info()
	var off, n int64
	if rng != nil {
		if off, n, err = rng.Span(e.size); err != nil {
			return info, nil, fmt.Errorf("object %s/%s: %w", container, name, err)
		}
	}
	// Opened under the index's lock: a commit removes replaced data only
	// after it has left the index.
	ct.mu.RLock()
	if cur := ct.find(name); cur != e {
		ct.mu.RUnlock()
		return c.GetObject(ctx, container, name, rng) // replaced meanwhile: read the new one
	}
	f, err := c.objects.open(ct, e)
	ct.mu.RUnlock()
	if err != nil {
		return info, nil, err
	}
	if rng == nil {
		n = e.size
	}
	return info, newObjReader(ctx, f, off, n, rng == nil, e.crc, container+"/"+name), nil
}

// HeadObject returns an object's info from the index.
func (c *Cloud) HeadObject(ctx context.Context, container, name string) (peers.ObjectInfo, error) {
	_, e, err := c.liveObject(ctx, container, name)
	if err != nil {
		return peers.ObjectInfo{}, err
	}
	return e.info(), nil
}

// liveObject finds an object that has not expired.
func (c *Cloud) liveObject(ctx context.Context, container, name string) (*container, *objEntry, error) {
	if err := c.objectsBegin(ctx); err != nil {
		return nil, nil, err
	}
	if err := peers.CheckObjectName(name); err != nil {
		return nil, nil, err
	}
	ct, err := c.objects.container(container)
	if err != nil {
		return nil, nil, err
	}
	e := ct.live(name)
	if e == nil {
		return nil, nil, notFound("object", container+"/"+name)
	}
	return ct, e, nil
}

// UpdateObject replaces an object's record with new metadata, keeping its
// data file.
func (c *Cloud) UpdateObject(ctx context.Context, container, name string, update peers.ObjectUpdate) (peers.ObjectInfo, error) {
	if err := c.objectsBegin(ctx); err != nil {
		return peers.ObjectInfo{}, err
	}
	if err := checkObjectCall(name, update.Metadata); err != nil {
		return peers.ObjectInfo{}, err
	}
	ct, err := c.objects.container(container)
	if err != nil {
		return peers.ObjectInfo{}, err
	}
	stripe := c.objects.stripe(ct, name)
	stripe.Lock()
	defer stripe.Unlock()
	e := ct.live(name)
	if e == nil {
		return peers.ObjectInfo{}, notFound("object", container+"/"+name)
	}
	next := *e
	next.meta, next.deleteAt, next.modified = maps.Clone(update.Metadata), update.DeleteAt.UTC(), now()
	if update.DeleteAt.IsZero() {
		next.deleteAt = time.Time{}
	}
	if update.ContentType != "" {
		next.ctype = update.ContentType
	}
	if err := c.objects.commit(ct, &next); err != nil {
		return peers.ObjectInfo{}, fmt.Errorf("object %s/%s: %w", container, name, diskErr(err))
	}
	return next.info(), nil
}

// DeleteObject removes an object's record, then its data.
func (c *Cloud) DeleteObject(ctx context.Context, container, name string) error {
	if err := c.objectsBegin(ctx); err != nil {
		return err
	}
	if err := peers.CheckObjectName(name); err != nil {
		return err
	}
	ct, err := c.objects.container(container)
	if err != nil {
		return err
	}
	s := c.objects
	stripe := s.stripe(ct, name)
	stripe.Lock()
	defer stripe.Unlock()
	ct.alive.RLock()
	defer ct.alive.RUnlock()
	e := ct.live(name)
	if e == nil || ct.deleted {
		return notFound("object", container+"/"+name)
	}
	if err := s.removeRecord(ct, name); err != nil {
		return fmt.Errorf("object %s/%s: %w", container, name, err)
	}
	ct.mu.Lock()
	_, freed := ct.removeLocked(e)
	ct.mu.Unlock()
	s.used.Add(-freed)
	s.removeData(ct, e)
	return nil
}

// reapObjects runs until ctx ends: every objectReapInterval, or when a
// sweep asks, it sweeps every container and removes the files of the
// objects swept.
func (c *Cloud) reapObjects(ctx context.Context) {
	t := time.NewTicker(objectReapInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.objects.kick:
		}
		c.reapOnce()
	}
}

// reapOnce sweeps every container and removes the swept objects' files:
// the record, unless a newer object of the name has replaced it, and the
// data, unless that newer record still names it.
func (c *Cloud) reapOnce() {
	s := c.objects
	// One pass at a time: a pass holds the graveyard it took until its
	// files are gone.
	s.reaping.Lock()
	defer s.reaping.Unlock()
	s.mu.RLock()
	cts := make([]*container, 0, len(s.containers))
	for _, ct := range s.containers {
		cts = append(cts, ct)
	}
	s.mu.RUnlock()
	for _, ct := range cts {
		c.sweep(ct)
		ct.mu.Lock()
		dead := ct.graveyard
		ct.graveyard = nil
		ct.mu.Unlock()
		for _, e := range dead {
			c.reapEntry(ct, e)
		}
	}
}

func (c *Cloud) reapEntry(ct *container, e *objEntry) {
	s := c.objects
	stripe := s.stripe(ct, e.name)
	stripe.Lock()
	defer stripe.Unlock()
	ct.alive.RLock()
	defer ct.alive.RUnlock()
	if ct.deleted {
		return // its files went with the container
	}
	ct.mu.RLock()
	cur := ct.find(e.name)
	ct.mu.RUnlock()
	if cur == nil {
		if err := s.removeRecord(ct, e.name); err != nil {
			c.log.WithField("error", err.Error()).Warn("removing an expired object's record; the next start retries")
			return
		}
	}
	if cur == nil || cur.data != e.data {
		s.removeData(ct, e)
	}
}

// checkObjectCall checks an object name and its metadata.
func checkObjectCall(name string, meta map[string]string) error {
	if err := peers.CheckObjectName(name); err != nil {
		return err
	}
	return peers.CheckObjectMetadata(meta)
}

// contentType is Swift's default for an object stored without one.
func contentType(ct string) string {
	if ct == "" {
		return "application/octet-stream"
	}
	return ct
}
