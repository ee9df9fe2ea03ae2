package staging

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

// MetaReplicaOf marks a staged copy with the ID of the image it copies.
// Replicas carry the broker and project marks but not peers.MetaID, so an
// index rebuild never mistakes a replica for the image's home copy.
const MetaReplicaOf = "cloudmux_replica_of"

// Errors.
var (
	// ErrMismatch: the copy's size or checksum differs from the source's.
	ErrMismatch = errors.New("staging: copied image does not match its source")
	// ErrNoData: a peer cannot move image bytes (no peers.ImageData).
	ErrNoData = errors.New("staging: peer cannot move image data")
)

// Store is the part of registry.Store staging uses: replica records, and
// a lease per image and target peer so brokers never copy one image to one
// peer twice at once.
type Store interface {
	Get(ctx context.Context, key string) (registry.KV, error)
	Put(ctx context.Context, key string, value []byte) (uint64, error)
	Delete(ctx context.Context, key string) error
	List(ctx context.Context, prefix string) ([]registry.KV, uint64, error)
	Watch(ctx context.Context, prefix string, index uint64) ([]registry.KV, uint64, error)
	registry.Locker
}

// Replica records an image's copy on a peer.
type Replica struct {
	ImageID      string    `json:"image_id"`
	PeerID       string    `json:"peer_id"`
	PeerImageID  string    `json:"peer_image_id"`
	SourcePeerID string    `json:"source_peer_id"`
	Size         int64     `json:"size"`
	Checksum     string    `json:"checksum"`
	StagedAt     time.Time `json:"staged_at"`
	// Seconds is how long the copy took (0 for an adopted copy).
	Seconds float64 `json:"seconds,omitempty"`
}

// Stager copies images between peers as streams and remembers the copies.
type Stager struct {
	store Store
	log   logrus.FieldLogger
	// Holder names this broker in the staging leases.
	holder []byte
	// CopyTimeout bounds one copy; it runs on past the caller that started
	// it, so others waiting for the same copy are not failed by that one
	// caller going away.
	CopyTimeout time.Duration
	// Metrics, when set, counts copies and bytes (NewMetrics).
	Metrics *Metrics

	mu       sync.Mutex
	inflight map[string]*copyCall
}

type copyCall struct {
	done chan struct{}
	rep  Replica
	err  error
}

// New returns a Stager; holder identifies this broker in leases.
func New(store Store, holder string, log logrus.FieldLogger) *Stager {
	return &Stager{store: store, log: log, holder: []byte(holder), CopyTimeout: time.Hour, inflight: map[string]*copyCall{}}
}

func replicaKey(imageID, peerID string) string { return "staging/replicas/" + imageID + "/" + peerID }
func lockKey(imageID, peerID string) string    { return "staging/locks/" + imageID + "/" + peerID }

// Replicas lists an image's recorded copies.
func (s *Stager) Replicas(ctx context.Context, imageID string) ([]Replica, error) {
	kvs, _, err := s.store.List(ctx, "staging/replicas/"+imageID+"/")
	if err != nil {
		return nil, err
	}
	out := make([]Replica, 0, len(kvs))
	for _, kv := range kvs {
		var r Replica
		if err := json.Unmarshal(kv.Value, &r); err != nil {
			return nil, fmt.Errorf("decode %s: %w", kv.Key, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// Forget drops an image's replica records (its copies are the caller's to
// delete, through Replicas, before).
func (s *Stager) Forget(ctx context.Context, imageID string) error {
	reps, err := s.Replicas(ctx, imageID)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range reps {
		errs = append(errs, s.store.Delete(ctx, replicaKey(r.ImageID, r.PeerID)))
	}
	return errors.Join(errs...)
}

// Ensure makes sure dst holds an active copy of img, which lives on src,
// and returns the copy. A copy recorded earlier and still intact is reused;
// concurrent calls for one image and peer share one copy, in this process
// through an in-flight table and across brokers through a lease. The
// bytes stream from src to dst, hashed on the way, never held whole.
func (s *Stager) Ensure(ctx context.Context, img peers.Image, src, dst *peers.Member) (Replica, error) {
	if rep, ok := s.intact(ctx, img, dst); ok {
		return rep, nil
	}
	key := img.ID + "/" + dst.Peer.ID
	s.mu.Lock()
	call, running := s.inflight[key]
	if !running {
		call = &copyCall{done: make(chan struct{})}
		s.inflight[key] = call
		copyCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.CopyTimeout)
		go func() {
			defer cancel()
			call.rep, call.err = s.ensureLocked(copyCtx, img, src, dst)
			s.mu.Lock()
			delete(s.inflight, key)
			s.mu.Unlock()
			close(call.done)
		}()
	}
	s.mu.Unlock()
	select {
	case <-call.done:
		return call.rep, call.err
	case <-ctx.Done():
		return Replica{}, ctx.Err()
	}
}

// intact returns the recorded copy on dst if the peer still holds it,
// active and with the source's checksum. A record whose copy is gone is
// dropped, so the next Ensure copies afresh.
func (s *Stager) intact(ctx context.Context, img peers.Image, dst *peers.Member) (Replica, bool) {
	kv, err := s.store.Get(ctx, replicaKey(img.ID, dst.Peer.ID))
	if err != nil {
		return Replica{}, false
	}
	var rep Replica
	if json.Unmarshal(kv.Value, &rep) != nil {
		return Replica{}, false
	}
	got, err := dst.Cloud.GetImage(ctx, rep.PeerImageID)
	switch {
	case err == nil && got.Status == peers.ImageActive && got.Checksum == img.Checksum:
		return rep, true
	case err == nil || errors.Is(err, peers.ErrNotFound):
		_ = s.store.Delete(ctx, replicaKey(img.ID, dst.Peer.ID))
	}
	return Replica{}, false
}

// ensureLocked takes the cross-broker lease for (image, peer), then copies
// unless another broker finished the copy meanwhile.
func (s *Stager) ensureLocked(ctx context.Context, img peers.Image, src, dst *peers.Member) (Replica, error) {
	for {
		if rep, ok := s.intact(ctx, img, dst); ok {
			return rep, nil
		}
		lease, err := s.store.TryLock(ctx, lockKey(img.ID, dst.Peer.ID), s.holder, 30*time.Second)
		if errors.Is(err, registry.ErrLockHeld) {
			// Another broker copies: wait for its record (or its lease to
			// end, failed), then look again.
			if err := s.waitForOther(ctx, img.ID, dst.Peer.ID); err != nil {
				return Replica{}, err
			}
			continue
		}
		if err != nil {
			return Replica{}, err
		}
		rep, err := s.copyUnder(ctx, lease, img, src, dst)
		_ = lease.Release(context.WithoutCancel(ctx))
		return rep, err
	}
}

func (s *Stager) waitForOther(ctx context.Context, imageID, peerID string) error {
	prefix := "staging/"
	_, idx, err := s.store.List(ctx, prefix)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for {
		kvs, next, err := s.store.Watch(wctx, prefix, idx)
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return nil // look again: the lease may have lapsed
		}
		if err != nil {
			return err
		}
		lockHeld, recorded := false, false
		for _, kv := range kvs {
			lockHeld = lockHeld || kv.Key == lockKey(imageID, peerID)
			recorded = recorded || kv.Key == replicaKey(imageID, peerID)
		}
		if recorded || !lockHeld {
			return nil
		}
		idx = next
	}
}

// copyUnder copies under a held lease, and records the copy.
func (s *Stager) copyUnder(ctx context.Context, lease registry.Lease, img peers.Image, src, dst *peers.Member) (Replica, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-lease.Lost():
			cancel() // another broker may take over; stop writing
		case <-ctx.Done():
		}
	}()
	rep, err := s.adoptOrCopy(ctx, img, src, dst)
	if err != nil {
		return Replica{}, err
	}
	raw, err := json.Marshal(rep)
	if err != nil {
		return Replica{}, err
	}
	if _, err := s.store.Put(ctx, replicaKey(img.ID, dst.Peer.ID), raw); err != nil {
		return Replica{}, err
	}
	return rep, nil
}

func (s *Stager) adoptOrCopy(ctx context.Context, img peers.Image, src, dst *peers.Member) (Replica, error) {
	rep := Replica{ImageID: img.ID, PeerID: dst.Peer.ID, SourcePeerID: src.Peer.ID,
		Size: img.Size, Checksum: img.Checksum, StagedAt: time.Now().UTC()}
	// A copy may already be there: staged by a broker that died before
	// recording it, or by an earlier life of this one. Half-made ones
	// (queued, killed) are removed.
	var found []peers.Image
	if same, err := dst.Cloud.GetImage(ctx, img.ID); err == nil {
		found = append(found, same)
	} else if !errors.Is(err, peers.ErrNotFound) {
		return Replica{}, err
	}
	marked, err := dst.Cloud.ListImages(ctx, peers.ListOptions{Metadata: map[string]string{MetaReplicaOf: img.ID}})
	if err != nil {
		return Replica{}, err
	}
	found = append(found, marked...)
	for _, f := range found {
		if f.Status == peers.ImageActive && f.Checksum == img.Checksum && f.Size == img.Size {
			rep.PeerImageID = f.ID
			s.Metrics.adopted()
			return rep, nil
		}
	}
	for _, f := range found {
		if err := dst.Cloud.DeleteImage(ctx, f.ID); err != nil && !errors.Is(err, peers.ErrNotFound) {
			return Replica{}, fmt.Errorf("remove the stale copy %s on %s: %w", f.ID, dst.Peer.Name, err)
		}
	}
	start := time.Now()
	id, err := s.copy(ctx, img, src, dst)
	if err != nil {
		return Replica{}, err
	}
	rep.PeerImageID, rep.Seconds = id, time.Since(start).Seconds()
	s.log.WithFields(logrus.Fields{"image": img.ID, "peer_image": id, "from": src.Peer.Name, "to": dst.Peer.Name,
		"bytes": img.Size, "seconds": rep.Seconds}).Info("image staged")
	return rep, nil
}

// copy streams the bytes into a new image on dst and returns its ID: the
// source's ID when dst lets it be used, else a fresh one (Glance, like the
// local cloud, never reuses the ID of a deleted image, so a failed copy
// burns it). The target checks the MD5 it was told (ImageSpec.Checksum);
// the stager checks what it read from the source against the source's
// record, so corruption on either side is caught, and a failed copy is
// deleted from the target.
func (s *Stager) copy(ctx context.Context, img peers.Image, src, dst *peers.Member) (id string, err error) {
	var moved int64 // bytes read from the source
	defer func(start time.Time) { s.Metrics.copied(moved, time.Since(start), err) }(time.Now())
	from, ok := src.Cloud.(peers.ImageData)
	if !ok {
		return "", fmt.Errorf("%w: %s", ErrNoData, src.Peer.Name)
	}
	to, ok := dst.Cloud.(peers.ImageData)
	if !ok {
		return "", fmt.Errorf("%w: %s", ErrNoData, dst.Peer.Name)
	}
	props := map[string]string{}
	for k, v := range img.Properties {
		if !strings.HasPrefix(k, "cloudmux_") {
			props[k] = v
		}
	}
	maps.Copy(props, map[string]string{MetaReplicaOf: img.ID, peers.MetaProject: img.Project})
	if b := img.Properties[peers.MetaBrokerID]; b != "" {
		props[peers.MetaBrokerID] = b
	}
	spec := peers.ImageSpec{
		ID: img.ID, Name: img.Name, Project: img.Project, DiskFormat: img.DiskFormat, ContainerFormat: img.ContainerFormat,
		MinRAMMiB: img.MinRAMMiB, MinDiskGiB: img.MinDiskGiB, Visibility: img.Visibility,
		Tags: img.Tags, Properties: props, Checksum: img.Checksum,
	}
	created, err := dst.Cloud.CreateImage(ctx, spec)
	if errors.Is(err, peers.ErrConflict) {
		spec.ID = uuid.NewString()
		created, err = dst.Cloud.CreateImage(ctx, spec)
	}
	if err != nil {
		return "", fmt.Errorf("create the copy on %s: %w", dst.Peer.Name, err)
	}
	copyID := created.ID // not the named result, which a failing return blanks
	defer func() {
		if err != nil {
			_ = dst.Cloud.DeleteImage(context.WithoutCancel(ctx), copyID)
		}
	}()
	body, err := from.DownloadImage(ctx, img.ID)
	if err != nil {
		return "", fmt.Errorf("read from %s: %w", src.Peer.Name, err)
	}
	defer body.Close()
	h := &hashingReader{r: body, h: md5.New()}
	err = to.UploadImage(ctx, copyID, h, img.Size)
	moved = h.n
	if err != nil {
		return "", fmt.Errorf("write to %s: %w", dst.Peer.Name, err)
	}
	if h.n != img.Size || hex.EncodeToString(h.h.Sum(nil)) != img.Checksum {
		return "", fmt.Errorf("%w: read %d bytes md5 %x from %s, its record says %d bytes md5 %s",
			ErrMismatch, h.n, h.h.Sum(nil), src.Peer.Name, img.Size, img.Checksum)
	}
	got, err := dst.Cloud.GetImage(ctx, copyID)
	if err != nil {
		return "", err
	}
	if got.Status != peers.ImageActive || got.Size != img.Size || got.Checksum != img.Checksum ||
		(img.OSHashValue != "" && got.OSHashValue != "" && got.OSHashValue != img.OSHashValue) {
		return "", fmt.Errorf("%w: the copy on %s is %s, %d bytes, md5 %s", ErrMismatch, dst.Peer.Name, got.Status, got.Size, got.Checksum)
	}
	return copyID, nil
}

type hashingReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	return n, err
}
