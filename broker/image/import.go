package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

// Interoperable image import (Image API 2.6), glance-direct only: the
// client stages the data (PUT /stage, streamed to a file in the broker's
// staging directory, the image "uploading"), then asks for the import
// (POST /import), which streams the file to the image's peer in the
// background ("importing", then the peer's "active"). The peers have no
// such statuses: an import record in the Store, served from memory like
// the deactivation records, carries them.

// importPrefix is where import records live: image-import/<image ID>.
const importPrefix = "image-import/"

// ImportPrefix is where import records live: the garbage collector lists
// it for ImportLeftovers.
const ImportPrefix = importPrefix

// The statuses an import record gives its queued image.
const (
	StatusUploading peers.ImageStatus = "uploading"
	StatusImporting peers.ImageStatus = "importing"
)

// ImportMethods are the import methods offered. web-download (which
// fetches any URL the caller names) and copy-image (which needs stores)
// are not.
var ImportMethods = []string{"glance-direct"}

// ImportState is an image's staged data awaiting or under import.
type ImportState struct {
	ImageID string            `json:"image_id"`
	Status  peers.ImageStatus `json:"status"`
	// Host is the broker host whose staging directory holds the data: an
	// import must be asked of it (the file is not shared between hosts).
	Host string    `json:"host"`
	Size int64     `json:"size"`
	At   time.Time `json:"at"`
}

// Imports holds import records in memory, fed by a Store watch.
type Imports = registry.Records[ImportState]

// NewImports returns the import records kept in store; Run keeps them in
// memory.
func NewImports(store registry.MirrorStore, log logrus.FieldLogger) *Imports {
	return registry.NewRecords(store, importPrefix, func(kv registry.KV) (ImportState, error) {
		var st ImportState
		err := json.Unmarshal(kv.Value, &st)
		return st, err
	}, log)
}

func (s *Service) imports() *Imports {
	if s.Imports != nil {
		return s.Imports
	}
	return NewImports(s.Store, s.Log)
}

// importState returns an image's import record, if any.
func (s *Service) importState(ctx context.Context, id string) (ImportState, bool, error) {
	st, err := s.imports().Get(ctx, importPrefix+id, false)
	if errors.Is(err, registry.ErrNotFound) {
		return ImportState{}, false, nil
	}
	return st, err == nil, err
}

// importStatuses returns the status every import record gives its image.
func (s *Service) importStatuses(ctx context.Context) (map[string]peers.ImageStatus, error) {
	sts, err := s.imports().List(ctx, "")
	if err != nil {
		return nil, err
	}
	out := make(map[string]peers.ImageStatus, len(sts))
	for _, st := range sts {
		out[st.ImageID] = st.Status
	}
	return out, nil
}

func (s *Service) stagingDir() string {
	if s.StagingDir != "" {
		return s.StagingDir
	}
	return filepath.Join(os.TempDir(), "cloudmux-image-staging")
}

func (s *Service) stagedPath(id string) string { return filepath.Join(s.stagingDir(), id) }

// host names this broker host in import records.
func host() string {
	h, err := os.Hostname()
	if err != nil {
		return "unknown"
	}
	return h
}

func (s *Service) putImport(ctx context.Context, st ImportState) error {
	rec, err := json.Marshal(st)
	if err != nil {
		return err
	}
	at, err := s.Store.Put(ctx, importPrefix+st.ImageID, rec)
	if err != nil {
		return fmt.Errorf("recording the import of image %s: %w", st.ImageID, err)
	}
	s.imports().Wrote(importPrefix+st.ImageID, st, at)
	return nil
}

// dropImport forgets an image's import record and its staged data here.
func (s *Service) dropImport(ctx context.Context, id string) {
	if err := os.Remove(s.stagedPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.Log.WithError(err).WithField("image", id).Warn("staged image data left behind")
	}
	if err := s.Store.Delete(ctx, importPrefix+id); err != nil && !errors.Is(err, registry.ErrNotFound) {
		s.Log.WithError(err).WithField("image", id).Warn("import record left behind")
		return
	}
	s.imports().Deleted(importPrefix + id)
}

// Stage streams data into the broker's staging area for a later import
// (glance-direct), never holding it whole in memory; the image must be
// queued, and shows "uploading" once staged. size is the announced
// length, or -1; data past MaxImageSize is ErrTooLarge.
func (s *Service) Stage(ctx context.Context, c Caller, id string, data io.Reader, size int64) error {
	_, img, err := s.findWritable(ctx, c, id)
	if err != nil {
		return err
	}
	if img.Status != peers.ImageQueued {
		return fmt.Errorf("image status transition from %s to uploading is not allowed: %w", img.Status, ErrConflict)
	}
	limit := s.maxSize()
	if size > limit {
		return fmt.Errorf("image data of %d bytes exceeds the %d byte image size cap: %w", size, limit, ErrTooLarge)
	}
	if err := os.MkdirAll(s.stagingDir(), 0o700); err != nil {
		return fmt.Errorf("staging area: %w", err)
	}
	f, err := os.CreateTemp(s.stagingDir(), img.ID+".part-*")
	if err != nil {
		return fmt.Errorf("staging area: %w", err)
	}
	defer func() { _ = os.Remove(f.Name()) }() // a no-op once renamed
	capped := &capReader{r: data, left: limit}
	n, err := io.Copy(f, capped)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	switch {
	case capped.over:
		return fmt.Errorf("image data exceeds the %d byte image size cap: %w", limit, ErrTooLarge)
	case err != nil:
		return fmt.Errorf("staging data of image %s: %w", id, err)
	case size >= 0 && n != size:
		return fmt.Errorf("staged %d bytes, %d announced: %w", n, size, ErrInvalid)
	}
	// Another stage may have raced this one: the image takes one.
	if _, staged, err := s.importState(ctx, img.ID); err != nil {
		return err
	} else if staged {
		return fmt.Errorf("image %s is already staged: %w", id, ErrConflict)
	}
	if err := os.Rename(f.Name(), s.stagedPath(img.ID)); err != nil {
		return fmt.Errorf("staging data of image %s: %w", id, err)
	}
	if err := s.putImport(ctx, ImportState{ImageID: img.ID, Status: StatusUploading, Host: host(), Size: n, At: time.Now().UTC()}); err != nil {
		_ = os.Remove(s.stagedPath(img.ID))
		return err
	}
	s.Log.WithFields(logrus.Fields{"image": img.ID, "bytes": n}).Info("image data staged")
	return nil
}

// Import starts importing an image's staged data (method glance-direct)
// to its peer and returns; the image shows "importing" until the peer has
// it ("active"), or, if that fails, "queued" again (its staged data gone,
// the failure logged), ready for another upload or stage.
func (s *Service) Import(ctx context.Context, c Caller, id, method string) error {
	if err := checkOneOf("import method", method, ImportMethods); err != nil {
		return err
	}
	l, img, err := s.findWritable(ctx, c, id)
	if err != nil {
		return err
	}
	st, staged, err := s.importState(ctx, img.ID)
	if err != nil {
		return err
	}
	if !staged || st.Status != StatusUploading {
		return fmt.Errorf("image %s needs to be staged before the glance-direct method can be used (it is %s): %w", id, img.Status, ErrConflict)
	}
	if st.Host != host() {
		return fmt.Errorf("the data of image %s is staged on another broker host; ask that host for the import: %w", id, ErrConflict)
	}
	f, err := os.Open(s.stagedPath(img.ID))
	if err != nil {
		return fmt.Errorf("staged data of image %s is gone; stage it again: %w", id, ErrConflict)
	}
	st.Status, st.At = StatusImporting, time.Now().UTC()
	if err := s.putImport(ctx, st); err != nil {
		f.Close()
		return err
	}
	// The import outlives the request, as Glance's task does.
	bg := context.WithoutCancel(ctx)
	go func() {
		defer f.Close()
		log := s.Log.WithFields(logrus.Fields{"image": img.ID, "peer": l.member.Peer.Name})
		err := s.uploadTo(bg, l, img.ID, f, st.Size)
		s.dropImport(bg, img.ID)
		if err != nil {
			log.WithError(err).Warn("image import failed; the image is queued again")
			return
		}
		log.Info("image imported")
	}()
	return nil
}

// ImportLeftovers returns those of kvs (import records) whose image is no
// longer indexed. It is the judge of a gc.Orphans.
func (s *Service) ImportLeftovers(ctx context.Context, kvs []registry.KV) ([]registry.KV, error) {
	return s.Index.Unindexed(ctx, kvs, func(key string) (string, string, bool) {
		id, ok := strings.CutPrefix(key, importPrefix)
		return Kind, id, ok && id != ""
	})
}
