package localcloud

import (
	"container/heap"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cloudmux/cloudmux/peers"
)

// container is one object container: its directory and the in-memory
// index of its objects, sorted by name, which every read and listing
// serves from (the disk is read only at start and for object bytes).
type container struct {
	name string
	dir  string

	// alive is held shared by every change of the container's files and
	// exclusively by DeleteContainer, so no commit lands in a directory
	// being removed (or in a new container of the same name).
	alive   sync.RWMutex
	deleted bool // under alive (exclusive) to set; read under alive or mu

	mu  sync.RWMutex
	idx []*objEntry // sorted by name, bytewise
	// expiring holds the entries with a DeleteAt, soonest first.
	expiring expiryHeap
	objects  int64
	bytes    int64
	// graveyard are expired entries taken out of idx whose files the
	// reaper has yet to remove.
	graveyard []*objEntry
	// made are the <hh> directories known to exist.
	made map[string]bool
}

// objEntry is one stored object. Its fields but hidx never change once it
// is in an index: an update puts a new entry in its place, so a reader
// may keep one after unlocking.
type objEntry struct {
	name     string
	data     string // the data file's base name
	size     int64
	etag     string
	crc      uint32 // CRC-32C of the data, checked on full reads
	ctype    string
	modified time.Time
	deleteAt time.Time
	meta     map[string]string
	hidx     int // position in container.expiring, -1 when not in it (under container.mu)
}

func (e *objEntry) info() peers.ObjectInfo {
	return peers.ObjectInfo{
		Name: e.name, Size: e.size, ETag: e.etag, ContentType: e.ctype,
		LastModified: e.modified, Metadata: maps.Clone(e.meta), DeleteAt: e.deleteAt,
	}
}

// expired reports whether e's DeleteAt has passed at now.
func (e *objEntry) expired(now time.Time) bool {
	return !e.deleteAt.IsZero() && !e.deleteAt.After(now)
}

// search returns the position of the first entry whose name is >= name,
// and whether it is name.
func (c *container) search(name string) (int, bool) {
	return slices.BinarySearchFunc(c.idx, name, func(e *objEntry, n string) int { return strings.Compare(e.name, n) })
}

// find returns the entry named name, or nil. Callers hold c.mu.
func (c *container) find(name string) *objEntry {
	if i, ok := c.search(name); ok {
		return c.idx[i]
	}
	return nil
}

// live returns the entry named name unless it is missing or expired.
func (c *container) live(name string) *objEntry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if e := c.find(name); e != nil && !e.expired(now()) {
		return e
	}
	return nil
}

// putLocked puts e in the index in place of the entry of its name, which
// it returns (nil: none), and keeps the counters. The delta of bytes is
// returned for the store's total. Callers hold c.mu.
func (c *container) putLocked(e *objEntry) (prev *objEntry, delta int64) {
	e.hidx = -1
	i, ok := c.search(e.name)
	if ok {
		prev = c.idx[i]
		c.unexpire(prev)
		c.idx[i] = e
		delta = e.size - prev.size
	} else {
		c.idx = slices.Insert(c.idx, i, e)
		c.objects++
		delta = e.size
	}
	c.bytes += delta
	if !e.deleteAt.IsZero() {
		heap.Push(&c.expiring, e)
	}
	return prev, delta
}

// removeLocked takes e out of the index if it is still there, reporting
// whether it was and the bytes freed.
func (c *container) removeLocked(e *objEntry) (bool, int64) {
	c.unexpire(e)
	i, ok := c.search(e.name)
	if !ok || c.idx[i] != e {
		return false, 0
	}
	c.idx = slices.Delete(c.idx, i, i+1)
	c.objects--
	c.bytes -= e.size
	return true, e.size
}

func (c *container) unexpire(e *objEntry) {
	if e.hidx >= 0 {
		heap.Remove(&c.expiring, e.hidx)
	}
}

// due reports whether an entry has expired and awaits sweepLocked.
func (c *container) due(at time.Time) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.expiring) > 0 && c.expiring[0].expired(at)
}

// sweepLocked takes the entries expired at now out of the index into the
// graveyard, returning how many and the bytes freed.
func (c *container) sweepLocked(at time.Time) (n int, freed int64) {
	for len(c.expiring) > 0 && c.expiring[0].expired(at) {
		e := heap.Pop(&c.expiring).(*objEntry)
		if ok, b := c.removeLocked(e); ok {
			freed += b
			c.graveyard = append(c.graveyard, e)
			n++
		}
	}
	return n, freed
}

// list serves ListObjects from the index: binary searches find where the
// page starts and where each rolled-up pseudo-directory ends, so a page
// costs O(limit + subdirs·log n) whatever the container holds. Callers
// hold c.mu and have swept expired entries.
func (c *container) list(o peers.ObjectListOptions) []peers.ObjectEntry {
	limit := o.Limit
	if limit == 0 {
		limit = peers.MaxListLimit
	}
	if o.Reverse {
		return c.listReverse(o, limit)
	}
	first := func(pred func(name string) bool) int {
		return sort.Search(len(c.idx), func(i int) bool { return pred(c.idx[i].name) })
	}
	i := first(func(n string) bool { return n >= o.Prefix })
	if o.Marker != "" {
		i = max(i, first(func(n string) bool { return n > o.Marker }))
	}
	var out []peers.ObjectEntry
	for i < len(c.idx) && len(out) < limit {
		e := c.idx[i]
		if !strings.HasPrefix(e.name, o.Prefix) || (o.EndMarker != "" && e.name >= o.EndMarker) {
			break
		}
		if dir, ok := rollUp(e.name, o); ok {
			if dir != o.Marker {
				out = append(out, peers.ObjectEntry{Subdir: dir})
			}
			// Past every name under dir: they are contiguous from i on.
			i += sort.Search(len(c.idx)-i, func(k int) bool { return !strings.HasPrefix(c.idx[i+k].name, dir) })
			continue
		}
		out = append(out, peers.ObjectEntry{ObjectInfo: e.listInfo()})
		i++
	}
	return out
}

func (c *container) listReverse(o peers.ObjectListOptions, limit int) []peers.ObjectEntry {
	first := func(pred func(name string) bool) int {
		return sort.Search(len(c.idx), func(i int) bool { return pred(c.idx[i].name) })
	}
	// end is one past the last candidate: the last name with the prefix,
	// and before the marker.
	end := first(func(n string) bool { return n > o.Prefix && !strings.HasPrefix(n, o.Prefix) })
	if o.Marker != "" {
		end = min(end, first(func(n string) bool { return n >= o.Marker }))
	}
	var out []peers.ObjectEntry
	for i := end - 1; i >= 0 && len(out) < limit; {
		e := c.idx[i]
		if !strings.HasPrefix(e.name, o.Prefix) || (o.EndMarker != "" && e.name <= o.EndMarker) {
			break
		}
		if dir, ok := rollUp(e.name, o); ok {
			if dir != o.Marker {
				out = append(out, peers.ObjectEntry{Subdir: dir})
			}
			// Before every name under dir, the first of which is >= dir.
			i = first(func(n string) bool { return n >= dir }) - 1
			continue
		}
		out = append(out, peers.ObjectEntry{ObjectInfo: e.listInfo()})
		i--
	}
	return out
}

// rollUp returns the pseudo-directory name rolls up into under o's
// delimiter: the prefix through the delimiter's first occurrence after it.
func rollUp(name string, o peers.ObjectListOptions) (string, bool) {
	if o.Delimiter == "" {
		return "", false
	}
	k := strings.Index(name[len(o.Prefix):], o.Delimiter)
	if k < 0 {
		return "", false
	}
	return name[:len(o.Prefix)+k+len(o.Delimiter)], true
}

// listInfo is a listing row: as Swift's listings, without user metadata.
func (e *objEntry) listInfo() peers.ObjectInfo {
	return peers.ObjectInfo{Name: e.name, Size: e.size, ETag: e.etag, ContentType: e.ctype, LastModified: e.modified, DeleteAt: e.deleteAt}
}

// expiryHeap orders entries by DeleteAt (container/heap).
type expiryHeap []*objEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].deleteAt.Before(h[j].deleteAt) }
func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hidx, h[j].hidx = i, j
}

func (h *expiryHeap) Push(x any) {
	e := x.(*objEntry)
	e.hidx = len(*h)
	*h = append(*h, e)
}

func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	e.hidx = -1
	*h = old[:len(old)-1]
	return e
}
