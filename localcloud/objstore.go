package localcloud

import (
	"container/heap"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

// objectStore keeps object storage on disk, under DataDir/objects:
//
//	objects/<cid>/container.json    the container's name (cid: a hash of it)
//	objects/<cid>/<hh>/<h>.meta     an object's record (h: SHA-256 of its name)
//	objects/<cid>/<hh>/<h>.<r>.data its bytes (r: random, one per upload)
//
// Names are hashed because object names are arbitrary UTF-8 up to 1024
// bytes; <hh> (h's first byte) spreads a container over 256 directories.
//
// An upload streams into a data file of its own, hashing as it goes, and
// is synced with its directory; nothing refers to it yet. Its record is
// then written to a temporary file, synced, and renamed over <h>.meta,
// and the directory synced: that rename is the commit. Data and metadata
// therefore change together, and a crash at any point leaves the previous
// record (with its previous data file) or the new one, never a torn
// object. Start-up removes what a crash can leave: temporary records,
// data files no record names, half-made or half-deleted containers.
//
// Every container's index lives in memory, rebuilt from the records at
// start (container.go's list serves listings from it).
type objectStore struct {
	dir   string
	log   logrus.FieldLogger
	quota int64 // bytes; 0: the filesystem's size

	mu         sync.RWMutex
	containers map[string]*container
	used       atomic.Int64 // bytes of the objects in every index
	reserved   atomic.Int64 // bytes of uploads in progress, under a quota

	// stripes serialise the commits of one object name (an upload's, an
	// update's, a delete's, the reaper's): a commit reads the current
	// entry, replaces the record, then removes the data the record no
	// longer names.
	stripes [64]sync.Mutex
	// kick wakes the reaper when expired objects await removal.
	kick    chan struct{}
	reaping sync.Mutex // held by a reaper pass
}

const (
	containerFile = "container.json"
	objTmpPrefix  = ".tmp-"
	trashPrefix   = ".trash-"
	metaSuffix    = ".meta"
	dataSuffix    = ".data"
)

// objectCrashHook, when set (by tests), runs at the named steps of a
// commit, so a test process can die exactly there.
var objectCrashHook func(step string)

// objectNoSync skips the object store's fsyncs: for benchmarks that fill
// a container with 100,000 objects before measuring something else.
var objectNoSync bool

func objSync(f *os.File) error {
	if objectNoSync {
		return nil
	}
	return f.Sync()
}

func objSyncDir(dir string) error {
	if objectNoSync {
		return nil
	}
	return syncDir(dir)
}

func crashPoint(step string) {
	if objectCrashHook != nil {
		objectCrashHook(step)
	}
}

// objRecord is an object's record on disk.
type objRecord struct {
	Name        string            `json:"name"`
	Data        string            `json:"data"`
	Size        int64             `json:"size"`
	ETag        string            `json:"etag"`
	CRC32C      uint32            `json:"crc32c"`
	ContentType string            `json:"content_type"`
	Modified    time.Time         `json:"modified"`
	DeleteAt    time.Time         `json:"delete_at,omitzero"`
	Metadata    map[string]string `json:"metadata,omitempty"`
}

func (r objRecord) entry() *objEntry {
	return &objEntry{name: r.Name, data: r.Data, size: r.Size, etag: r.ETag, crc: r.CRC32C, ctype: r.ContentType,
		modified: r.Modified, deleteAt: r.DeleteAt, meta: r.Metadata, hidx: -1}
}

func (e *objEntry) record() objRecord {
	return objRecord{Name: e.name, Data: e.data, Size: e.size, ETag: e.etag, CRC32C: e.crc, ContentType: e.ctype,
		Modified: e.modified, DeleteAt: e.deleteAt, Metadata: e.meta}
}

func hashHex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func randSuffix() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// openObjectStore opens (creating) the store in dir and loads every
// container's index, removing what an interrupted run left behind.
func openObjectStore(dir string, quota int64, log logrus.FieldLogger) (*objectStore, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	s := &objectStore{dir: dir, log: log, quota: quota, containers: map[string]*container{}, kick: make(chan struct{}, 1)}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var objects, removed int
	for _, de := range entries {
		p := filepath.Join(dir, de.Name())
		if strings.HasPrefix(de.Name(), objTmpPrefix) || strings.HasPrefix(de.Name(), trashPrefix) {
			// A container half made or half deleted.
			if err := os.RemoveAll(p); err != nil {
				return nil, err
			}
			removed++
			continue
		}
		if !de.IsDir() {
			continue
		}
		c, n, err := s.loadContainer(p)
		if err != nil {
			return nil, fmt.Errorf("container directory %s: %w", p, err)
		}
		s.containers[c.name] = c
		s.used.Add(c.bytes)
		objects += len(c.idx)
		removed += n
	}
	if err := objSyncDir(dir); err != nil {
		return nil, err
	}
	log.WithFields(logrus.Fields{"containers": len(s.containers), "objects": objects, "leftovers_removed": removed}).Info("object store ready")
	return s, nil
}

// loadContainer reads one container's records into its index. It returns
// how many leftovers of interrupted work it removed.
func (s *objectStore) loadContainer(dir string) (*container, int, error) {
	b, err := os.ReadFile(filepath.Join(dir, containerFile))
	if err != nil {
		return nil, 0, err
	}
	var hdr struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(b, &hdr); err != nil || hdr.Name == "" || filepath.Base(dir) != containerID(hdr.Name) {
		return nil, 0, fmt.Errorf("%s does not name this container (%v)", containerFile, err)
	}
	c := &container{name: hdr.Name, dir: dir}
	subs, err := os.ReadDir(dir)
	if err != nil {
		return nil, 0, err
	}
	// Shards load in parallel: reading records is mostly waiting on the
	// filesystem.
	type shard struct {
		entries []*objEntry
		removed int
		err     error
	}
	work := make(chan string)
	results := make(chan shard)
	var wg sync.WaitGroup
	for range loadWorkers {
		wg.Go(func() {
			for p := range work {
				es, n, err := s.loadShard(c.name, p)
				results <- shard{es, n, err}
			}
		})
	}
	go func() {
		for _, sub := range subs {
			if sub.IsDir() {
				work <- filepath.Join(dir, sub.Name())
			}
		}
		close(work)
		wg.Wait()
		close(results)
	}()
	removed := 0
	var errs []error
	for r := range results {
		c.idx = append(c.idx, r.entries...)
		removed += r.removed
		errs = append(errs, r.err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, removed, err
	}
	c.made = make(map[string]bool, len(subs))
	for _, sub := range subs {
		c.made[filepath.Join(dir, sub.Name())] = true
	}
	slices.SortFunc(c.idx, func(a, b *objEntry) int { return strings.Compare(a.name, b.name) })
	for _, e := range c.idx {
		c.objects++
		c.bytes += e.size
		if !e.deleteAt.IsZero() {
			heap.Push(&c.expiring, e)
		}
	}
	return c, removed, nil
}

// loadWorkers is how many shards load at once.
const loadWorkers = 8

// loadShard reads the records of one <hh> directory of container ctr.
func (s *objectStore) loadShard(ctr, dir string) ([]*objEntry, int, error) {
	files, err := os.ReadDir(dir)
	if err != nil {
		return nil, 0, err
	}
	data := map[string]bool{}
	damaged := map[string]bool{} // name hashes of unreadable records
	var recs []objRecord
	var out []*objEntry
	removed := 0
	for _, f := range files {
		name, p := f.Name(), filepath.Join(dir, f.Name())
		switch {
		case strings.HasPrefix(name, objTmpPrefix):
			if err := os.Remove(p); err != nil {
				return nil, removed, err
			}
			removed++
		case strings.HasSuffix(name, dataSuffix):
			data[name] = false
		case strings.HasSuffix(name, metaSuffix):
			b, err := os.ReadFile(p)
			if err != nil {
				return nil, removed, err
			}
			var r objRecord
			if err := json.Unmarshal(b, &r); err != nil || hashHex(r.Name)+metaSuffix != name {
				// Never a torn write (records are renamed into place
				// whole): damage from outside. Kept, with the data files
				// of its name, for an operator.
				s.log.WithFields(logrus.Fields{"file": p, "error": fmt.Sprint(err)}).Error("unreadable object record; object skipped")
				damaged[strings.TrimSuffix(name, metaSuffix)] = true
				continue
			}
			recs = append(recs, r)
		}
	}
	for _, r := range recs {
		if _, ok := data[r.Data]; !ok {
			s.log.WithFields(logrus.Fields{"container": ctr, "object": r.Name, "file": r.Data}).Error("object record names a missing data file; object skipped")
			continue
		}
		data[r.Data] = true
		out = append(out, r.entry())
	}
	for name, used := range data {
		if h, _, _ := strings.Cut(name, "."); !used && !damaged[h] {
			// An upload that never committed, or the data a commit
			// replaced just before a crash.
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return nil, removed, err
			}
			removed++
		}
	}
	return out, removed, nil
}

// containerID is the directory name of a container.
func containerID(name string) string { return hashHex(name)[:32] }

// shard returns the directory of an object's files and its name hash.
func (c *container) shard(name string) (dir, h string) {
	h = hashHex(name)
	return filepath.Join(c.dir, h[:2]), h
}

func (s *objectStore) stripe(c *container, name string) *sync.Mutex {
	h := fnv.New32a()
	_, _ = io.WriteString(h, c.name)
	_, _ = h.Write([]byte{0})
	_, _ = io.WriteString(h, name)
	return &s.stripes[h.Sum32()%uint32(len(s.stripes))]
}

// createContainer makes a container's directory: built under a temporary
// name with its container.json, then renamed into place.
func (s *objectStore) createContainer(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.containers[name]; ok {
		return nil
	}
	tmp, err := os.MkdirTemp(s.dir, objTmpPrefix)
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			_ = os.RemoveAll(tmp)
		}
	}()
	hdr, _ := json.Marshal(map[string]string{"name": name})
	if err := writeFileSynced(filepath.Join(tmp, containerFile), hdr); err != nil {
		return err
	}
	if err := objSyncDir(tmp); err != nil {
		return err
	}
	dir := filepath.Join(s.dir, containerID(name))
	if err := os.Rename(tmp, dir); err != nil {
		return err
	}
	ok = true
	if err := objSyncDir(s.dir); err != nil {
		return err
	}
	s.containers[name] = &container{name: name, dir: dir}
	return nil
}

// deleteContainer removes an empty container: its directory is renamed
// away at once (start-up finishes a removal a crash interrupts).
func (s *objectStore) deleteContainer(name string) error {
	s.mu.Lock()
	c, ok := s.containers[name]
	if !ok {
		s.mu.Unlock()
		return notFound("container", name)
	}
	c.alive.Lock()
	c.mu.Lock()
	_, freed := c.sweepLocked(now())
	s.used.Add(-freed)
	n := len(c.idx)
	c.mu.Unlock()
	if n > 0 {
		c.alive.Unlock()
		s.mu.Unlock()
		return errf(peers.ErrConflict, "container %s holds %d objects; only an empty container can be deleted", name, n)
	}
	trash := filepath.Join(s.dir, trashPrefix+randSuffix())
	err := os.Rename(c.dir, trash)
	if err == nil {
		c.deleted = true
		delete(s.containers, name)
		err = objSyncDir(s.dir)
	}
	c.alive.Unlock()
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("container %s: %w", name, err)
	}
	if err := os.RemoveAll(trash); err != nil {
		s.log.WithFields(logrus.Fields{"container": name, "error": err.Error()}).Warn("removing a deleted container's files; the next start retries")
	}
	return nil
}

// container returns the container named name.
func (s *objectStore) container(name string) (*container, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if c, ok := s.containers[name]; ok {
		return c, nil
	}
	return nil, notFound("container", name)
}

// writeData streams r into a new data file for an object of c, hashing it
// on the way, and syncs the file and its directory. It reads until EOF, or
// exactly size bytes when size >= 0. Under a quota, the bytes written stay
// reserved (s.reserve) on success: the caller releases e.size once it has
// committed or given up. On any error the file is removed and the
// reservation released.
func (s *objectStore) writeData(ctx context.Context, c *container, name string, r io.Reader, size int64) (e *objEntry, err error) {
	dir, h := c.shard(name)
	if err := c.makeShard(dir); err != nil {
		return nil, err
	}
	dataName := h + "." + randSuffix() + dataSuffix
	path := filepath.Join(dir, dataName)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, notFound("container", c.name) // deleted meanwhile
	}
	if err != nil {
		return nil, diskErr(err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(path)
		}
	}()
	var src io.Reader = &ctxReader{ctx: ctx, r: r}
	if size >= 0 {
		// One byte past size tells "too long" from "exactly right".
		src = io.LimitReader(src, size+1)
	}
	quota := &quotaWriter{w: &writeBehind{f: f}, s: s}
	defer func() {
		if err != nil {
			s.release(quota.held)
		}
	}()
	var dst io.Writer = quota
	sum, crc := md5.New(), crc32.New(castagnoli)
	n, err := io.CopyBuffer(fanOut{dst, sum, crc}, src, make([]byte, copyBufferSize))
	switch {
	case err != nil:
		return nil, fmt.Errorf("upload interrupted after %d bytes: %w", n, diskErr(err))
	case ctx.Err() != nil:
		return nil, fmt.Errorf("upload interrupted after %d bytes: %w", n, ctx.Err())
	case size >= 0 && n > size:
		return nil, errf(peers.ErrInvalid, "upload is longer than the %d bytes announced", size)
	case size >= 0 && n < size:
		return nil, errf(peers.ErrInvalid, "upload ended after %d of the %d bytes announced", n, size)
	}
	if err := objSync(f); err != nil {
		return nil, fmt.Errorf("syncing upload: %w", diskErr(err))
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("closing upload: %w", diskErr(err))
	}
	if err := objSyncDir(dir); err != nil {
		return nil, err
	}
	return &objEntry{name: name, data: dataName, size: n, etag: hex.EncodeToString(sum.Sum(nil)), crc: crc.Sum32(), hidx: -1}, nil
}

// makeShard makes an object's <hh> directory unless it is known to exist.
func (c *container) makeShard(dir string) error {
	c.mu.RLock()
	made := c.made[dir]
	c.mu.RUnlock()
	if made {
		return nil
	}
	switch err := os.Mkdir(dir, 0o750); {
	case err == nil:
		if err := objSyncDir(c.dir); err != nil {
			return err
		}
	case errors.Is(err, fs.ErrNotExist):
		return notFound("container", c.name) // deleted meanwhile
	case !errors.Is(err, fs.ErrExist):
		return err
	}
	c.mu.Lock()
	if c.made == nil {
		c.made = map[string]bool{}
	}
	c.made[dir] = true
	c.mu.Unlock()
	return nil
}

// removeData removes a data file no record names any more.
func (s *objectStore) removeData(c *container, e *objEntry) {
	dir, _ := c.shard(e.name)
	if err := os.Remove(filepath.Join(dir, e.data)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.WithFields(logrus.Fields{"container": c.name, "object": e.name, "error": err.Error()}).Warn("removing replaced object data; the next start retries")
	}
}

// commit makes e the object of its name: its record is renamed into place
// (the commit point), the index updated, and the data of the object it
// replaces removed. A commit into a deleted container fails with
// ErrNotFound. Callers hold the name's stripe.
func (s *objectStore) commit(c *container, e *objEntry) error {
	c.alive.RLock()
	defer c.alive.RUnlock()
	if c.deleted {
		return notFound("container", c.name)
	}
	crashPoint("data-synced")
	if err := s.writeRecord(c, e); err != nil {
		return err
	}
	crashPoint("record-renamed")
	c.mu.Lock()
	prev, delta := c.putLocked(e)
	c.mu.Unlock()
	s.used.Add(delta)
	if prev != nil && prev.data != e.data {
		s.removeData(c, prev)
	}
	return nil
}

// writeRecord writes e's record through a synced temporary file renamed
// over the old one, then syncs the directory.
func (s *objectStore) writeRecord(c *container, e *objEntry) error {
	dir, h := c.shard(e.name)
	b, err := json.Marshal(e.record())
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, objTmpPrefix)
	if err != nil {
		return diskErr(err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = objSync(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return diskErr(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, h+metaSuffix)); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return objSyncDir(dir)
}

// removeRecord removes the record of the object called name, and syncs.
func (s *objectStore) removeRecord(c *container, name string) error {
	dir, h := c.shard(name)
	if err := os.Remove(filepath.Join(dir, h+metaSuffix)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return objSyncDir(dir)
}

// open opens e's data, checking its length against the record.
func (s *objectStore) open(c *container, e *objEntry) (*os.File, error) {
	dir, _ := c.shard(e.name)
	f, err := os.Open(filepath.Join(dir, e.data))
	if err != nil {
		return nil, fmt.Errorf("object %s/%s: opening its data: %w", c.name, e.name, err)
	}
	st, err := f.Stat()
	if err == nil && st.Size() != e.size {
		err = fmt.Errorf("object %s/%s is corrupt: its data file holds %d bytes, its record says %d", c.name, e.name, st.Size(), e.size)
	}
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return f, nil
}

// capacity reports the object bytes: a configured quota and what the
// objects take, else the filesystem's size and use.
func (s *objectStore) capacity() (registry.Resource, error) {
	if s.quota > 0 {
		return registry.Resource{Total: s.quota, Used: s.used.Load()}, nil
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(s.dir, &st); err != nil {
		return registry.Resource{}, fmt.Errorf("object store: %w", err)
	}
	bsize := int64(st.Bsize)
	return registry.Resource{Total: int64(st.Blocks) * bsize, Used: int64(st.Blocks-st.Bavail) * bsize}, nil
}

// fits reports whether n more bytes fit in the quota (always, without
// one: the filesystem's ENOSPC is the limit).
func (s *objectStore) fits(n int64) bool {
	return s.quota <= 0 || s.used.Load()+s.reserved.Load()+n <= s.quota
}

// reserve holds n bytes of the quota for an upload in progress, so
// concurrent uploads cannot together overshoot it; false when they do not
// fit. release gives them back once the upload is committed (its bytes
// are then in used) or has failed.
func (s *objectStore) reserve(n int64) bool {
	if s.quota <= 0 {
		return true
	}
	if r := s.reserved.Add(n); s.used.Load()+r > s.quota {
		s.reserved.Add(-n)
		return false
	}
	return true
}

func (s *objectStore) release(n int64) {
	if s.quota > 0 {
		s.reserved.Add(-n)
	}
}

// quotaWriter reserves quota for every chunk before writing it, failing
// with ErrCapacity once the quota is full; held is what it reserved.
type quotaWriter struct {
	w    io.Writer
	s    *objectStore
	held int64
}

func (q *quotaWriter) Write(p []byte) (int, error) {
	if !q.s.reserve(int64(len(p))) {
		return 0, errf(peers.ErrCapacity, "the object store's quota of %d bytes is full", q.s.quota)
	}
	q.held += int64(len(p))
	return q.w.Write(p)
}

// diskErr makes a full disk ErrCapacity.
func diskErr(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return errf(peers.ErrCapacity, "object store: %v", err)
	}
	return err
}

// castagnoli is CRC-32C's table: hardware-computed on amd64 and arm64,
// at memory speed, where MD5 manages a few hundred MB/s on one core.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// writeBehind writes to an upload's file and starts the disk writes of
// every writeBehindChunk written, so they run while the upload goes on.
type writeBehind struct {
	f          *os.File
	off, begun int64
}

const writeBehindChunk = 8 << 20

func (w *writeBehind) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.off += int64(n)
	if w.off-w.begun >= writeBehindChunk {
		startWriteback(w.f, w.begun, w.off-w.begun)
		w.begun = w.off
	}
	return n, err
}

// writeFileSynced writes b to path (created or truncated) and syncs it.
func writeFileSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		return err
	}
	if err := objSync(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
