package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

// Interoperable image import (Image API 2.6), glance-direct only. The
// stage (PUT /stage) streams the data straight to the image's peer, as an
// upload does, and then records the image as staged: an import record in
// the Store, served from memory like the deactivation records, which
// shows the image "uploading" (whatever its peer says) and keeps its data
// from being read or booted. The import (POST /import) removes the record
// by compare-and-delete, and the image is active. Nothing is kept on a
// broker's own disk and no work outlives a request, so any broker of an
// installation may take the import of an image another one staged, and a
// broker that dies leaves nothing half done: a stage cut short is a failed
// upload (the image stays queued), one that died between its upload and
// its record leaves the image active, as if imported at once.

// importPrefix is where import records live: image-import/<image ID>.
const importPrefix = "image-import/"

// ImportPrefix is where import records live: the garbage collector lists
// it for ImportLeftovers.
const ImportPrefix = importPrefix

// StatusUploading is what an import record makes of its staged image.
// Glance's "importing" is never shown: an import is done when answered.
const StatusUploading peers.ImageStatus = "uploading"

// ImportMethods are the import methods offered. web-download (which
// fetches any URL the caller names) and copy-image (which needs stores)
// are not.
var ImportMethods = []string{"glance-direct"}

// ImportState is an image whose data is staged, awaiting its import.
type ImportState struct {
	ImageID string            `json:"image_id"`
	Status  peers.ImageStatus `json:"status"`
	Size    int64             `json:"size"`
	At      time.Time         `json:"at"`
}

// Imports holds import records in memory, fed by a Store watch.
type Imports = registry.Records[ImportState]

// NewImports returns the import records kept in store; Run keeps them in
// memory.
func NewImports(store registry.MirrorStore, log logrus.FieldLogger) *Imports {
	return registry.NewRecords(store, importPrefix, registry.DecodeJSON[ImportState], log)
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

// dropImport forgets an image's import record (the image is deleted).
func (s *Service) dropImport(ctx context.Context, id string) {
	if err := s.Store.Delete(ctx, importPrefix+id); err != nil && !errors.Is(err, registry.ErrNotFound) {
		s.Log.WithError(err).WithField("image", id).Warn("import record left behind")
		return
	}
	s.imports().Deleted(importPrefix + id)
}

// Stage streams data to the image's peer for a later import
// (glance-direct), never holding it whole in memory; the image must be
// queued, and shows "uploading" once staged. size is the announced
// length, or -1; data past MaxImageSize is ErrTooLarge.
func (s *Service) Stage(ctx context.Context, c Caller, id string, data io.Reader, size int64) error {
	l, img, err := s.findWritable(ctx, c, id)
	if err != nil {
		return err
	}
	if img.Status != peers.ImageQueued {
		return fmt.Errorf("image status transition from %s to uploading is not allowed: %w", img.Status, ErrConflict)
	}
	if err := s.uploadTo(ctx, l, img.ID, data, size); err != nil {
		return err
	}
	st := ImportState{ImageID: img.ID, Status: StatusUploading, Size: size, At: time.Now().UTC()}
	rec, err := json.Marshal(st)
	if err != nil {
		return err
	}
	// Created only if absent; the peer takes one upload of an image, so a
	// second stage has already failed there.
	at, err := s.Store.CAS(ctx, importPrefix+img.ID, rec, 0)
	if err != nil && !errors.Is(err, registry.ErrConflict) {
		return fmt.Errorf("recording the stage of image %s: %w", id, err)
	}
	if err == nil {
		s.imports().Wrote(importPrefix+img.ID, st, at)
	}
	s.Log.WithFields(logrus.Fields{"image": img.ID}).Info("image data staged")
	return nil
}

// Import imports an image's staged data (method glance-direct): the image
// is active once the call returns. Glance answers the import at once and
// finishes it in a task; here the data is already on the peer.
func (s *Service) Import(ctx context.Context, c Caller, id, method string) error {
	if err := checkOneOf("import method", method, ImportMethods); err != nil {
		return err
	}
	_, img, err := s.findWritable(ctx, c, id)
	if err != nil {
		return err
	}
	notStaged := fmt.Errorf("image %s needs to be staged before the glance-direct method can be used (it is %s): %w", id, img.Status, ErrConflict)
	// The stored record, not memory's copy: another broker may have staged
	// it or imported it a moment ago.
	kv, err := s.Store.Get(ctx, importPrefix+img.ID)
	if errors.Is(err, registry.ErrNotFound) {
		return notStaged
	}
	if err != nil {
		return err
	}
	if err := s.Store.DeleteCAS(ctx, kv.Key, kv.ModifyIndex); errors.Is(err, registry.ErrConflict) || errors.Is(err, registry.ErrNotFound) {
		return notStaged // imported meanwhile, through another call
	} else if err != nil {
		return fmt.Errorf("importing image %s: %w", id, err)
	}
	s.imports().Deleted(kv.Key)
	s.Log.WithField("image", img.ID).Info("image imported")
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
