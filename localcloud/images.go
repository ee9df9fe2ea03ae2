package localcloud

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/peers"
)

// image is a Glance image record. Deleted images stay as tombstones
// (pending_delete, then deleted), as Glance keeps their rows: an ID is
// never reused, and an admin can still see what was there.
type image struct {
	peers.Image
	scrub *time.Timer // pending_delete -> deleted, with a delayed delete
	// wantMD5 is the ImageSpec's Checksum: the upload must hash to it. It
	// is not the image's checksum until the data is there.
	wantMD5 string
}

func (img *image) view() peers.Image {
	v := img.Image
	v.Properties = maps.Clone(img.Properties)
	v.Tags = slices.Clone(img.Tags)
	return v
}

func (img *image) gone() bool {
	return img.Status == peers.ImageDeleted || img.Status == peers.ImagePendingDelete
}

// The formats Glance accepts by default.
var (
	diskFormats      = []string{"raw", "qcow2", "vmdk", "vdi", "vhd", "vhdx", "iso", "ami", "ari", "aki", "ploop"}
	containerFormats = []string{"bare", "ovf", "ova", "ami", "ari", "aki", "docker", "compressed"}
	visibilities     = []string{"public", "private", "shared", "community"}
)

// reservedImageKeys are Glance's own image attributes; a property may not
// shadow one (Glance answers 403).
var reservedImageKeys = []string{
	"id", "name", "status", "visibility", "protected", "os_hidden", "checksum", "os_hash_algo", "os_hash_value",
	"owner", "size", "virtual_size", "min_ram", "min_disk", "created_at", "updated_at", "deleted", "deleted_at",
	"disk_format", "container_format", "locations", "direct_url", "self", "file", "schema", "tags",
}

func checkImageProperties(props map[string]string) error {
	for k, v := range props {
		if k == "" || len(k) > maxMetadataLen {
			return errf(peers.ErrInvalid, "property key %q: want 1 to %d characters", k, maxMetadataLen)
		}
		if slices.Contains(reservedImageKeys, k) {
			return errf(peers.ErrInvalid, "property %q is a reserved image attribute", k)
		}
		if len(v) > 65535 {
			return errf(peers.ErrInvalid, "property %q: value longer than 65535 characters", k)
		}
	}
	return nil
}

// Glance's limits on tags: image_tag_quota and the schema's maxLength.
const (
	maxImageTags   = 128
	maxImageTagLen = 255
)

func checkImageTags(tags []string) error {
	for _, tag := range tags {
		if tag == "" || len(tag) > maxImageTagLen {
			return errf(peers.ErrInvalid, "tag %q: want 1 to %d characters", tag, maxImageTagLen)
		}
	}
	return nil
}

// tagSet returns tags sorted without duplicates (Glance keeps a set), or
// nil for none; more than maxImageTags is ErrCapacity (Glance's 413).
func tagSet(tags []string) ([]string, error) {
	if len(tags) == 0 {
		return nil, nil
	}
	set := slices.Compact(slices.Sorted(slices.Values(tags)))
	if len(set) > maxImageTags {
		return nil, errf(peers.ErrCapacity, "%d tags; at most %d allowed", len(set), maxImageTags)
	}
	return set, nil
}

// md5HexRE is an MD5 in hex, as Glance's checksum.
var md5HexRE = regexp.MustCompile(`^[0-9a-fA-F]{32}$`)

func checkOneOf(field, v string, allowed []string) error {
	if !slices.Contains(allowed, v) {
		return errf(peers.ErrInvalid, "%s %q: want one of %s", field, v, strings.Join(allowed, ", "))
	}
	return nil
}

// CreateImage registers a queued image; its bytes come through UploadImage.
// Names need not be unique. disk_format and container_format are required
// here (Glance wants them only before the upload) so a queued image is
// always uploadable. Visibility defaults to shared, as in Glance since
// Image API v2.5 (a shared image without members is as private as private).
// Tags are a set: duplicates collapse. A Checksum is what the upload must
// hash to.
func (c *Cloud) CreateImage(ctx context.Context, spec peers.ImageSpec) (peers.Image, error) {
	if err := ctx.Err(); err != nil {
		return peers.Image{}, err
	}
	id := newID()
	if spec.ID != "" {
		u, err := uuid.Parse(spec.ID)
		if err != nil || len(spec.ID) != 36 {
			return peers.Image{}, errf(peers.ErrInvalid, "image id %q is not a UUID", spec.ID)
		}
		id = u.String()
	}
	visibility := cmp.Or(spec.Visibility, "shared") // Glance's default since Ocata
	for _, err := range []error{
		checkOneOf("disk_format", spec.DiskFormat, diskFormats),
		checkOneOf("container_format", spec.ContainerFormat, containerFormats),
		checkOneOf("visibility", visibility, visibilities),
		checkImageProperties(spec.Properties),
		checkImageTags(spec.Tags),
	} {
		if err != nil {
			return peers.Image{}, fmt.Errorf("image %q: %w", spec.Name, err)
		}
	}
	if spec.MinRAMMiB < 0 || spec.MinDiskGiB < 0 {
		return peers.Image{}, errf(peers.ErrInvalid, "image %q: min_ram %d and min_disk %d may not be negative", spec.Name, spec.MinRAMMiB, spec.MinDiskGiB)
	}
	if spec.Checksum != "" && !md5HexRE.MatchString(spec.Checksum) {
		return peers.Image{}, errf(peers.ErrInvalid, "image %q: checksum %q is not an MD5 in hex", spec.Name, spec.Checksum)
	}
	tags, err := tagSet(spec.Tags)
	if err != nil {
		return peers.Image{}, fmt.Errorf("image %q: %w", spec.Name, err)
	}
	t := now()
	img := &image{Image: peers.Image{
		ID: id, Name: spec.Name, Status: peers.ImageQueued, Project: spec.Project,
		DiskFormat: spec.DiskFormat, ContainerFormat: spec.ContainerFormat,
		MinRAMMiB: spec.MinRAMMiB, MinDiskGiB: spec.MinDiskGiB, Visibility: visibility, Protected: spec.Protected,
		Tags: tags, Properties: maps.Clone(spec.Properties), CreatedAt: t, UpdatedAt: t,
	}, wantMD5: strings.ToLower(spec.Checksum)}
	if err := c.begin(ctx); err != nil {
		return peers.Image{}, err
	}
	defer c.mu.Unlock()
	if old, dup := c.images[id]; dup {
		return peers.Image{}, errf(peers.ErrConflict, "image id %s is taken (status %s)", id, old.Status)
	}
	c.images[id] = img
	view := img.view()
	c.markLocked(recImage, id)
	c.saveLocked()
	c.log.WithFields(logrus.Fields{"image": id, "name": img.Name, "project": img.Project}).Info("image registered")
	return view, nil
}

// liveImage returns an image that is not deleted; callers hold c.mu.
func (c *Cloud) liveImage(id string) (*image, error) {
	img, ok := c.images[id]
	if !ok || img.gone() {
		return nil, notFound("image", id)
	}
	return img, nil
}

// GetImage returns an image. A deleted image is not found, as in Glance v2
// (see DeletedImage).
func (c *Cloud) GetImage(ctx context.Context, id string) (peers.Image, error) {
	if err := c.begin(ctx); err != nil {
		return peers.Image{}, err
	}
	defer c.mu.Unlock()
	img, err := c.liveImage(id)
	if err != nil {
		return peers.Image{}, err
	}
	return img.view(), nil
}

// DeletedImage returns the tombstone of a deleted image, status
// pending_delete while a delayed delete waits and deleted after: what an
// admin asks when an image vanished. A live or unknown image is ErrNotFound.
func (c *Cloud) DeletedImage(ctx context.Context, id string) (peers.Image, error) {
	if err := c.begin(ctx); err != nil {
		return peers.Image{}, err
	}
	defer c.mu.Unlock()
	img, ok := c.images[id]
	if !ok || !img.gone() {
		return peers.Image{}, errf(peers.ErrNotFound, "deleted image %s", id)
	}
	return img.view(), nil
}

// ListImages returns the live images passing opts (Metadata matches
// properties), oldest first.
func (c *Cloud) ListImages(ctx context.Context, opts peers.ListOptions) ([]peers.Image, error) {
	return listViews(c, ctx, c.images, func(img *image) bool { return !img.gone() && opts.Matches(img.Project, img.Properties) }, (*image).view,
		func(a, b peers.Image) int { return byAgeThenID(a.CreatedAt, a.ID, b.CreatedAt, b.ID) })
}

// UpdateImage changes an image's metadata, all of the patch or none of it.
// Removing a property or tag the image lacks is not an error; AddTags
// apply before RemoveTags. A protected image takes any change (Glance
// refuses only its deletion), unprotecting included.
func (c *Cloud) UpdateImage(ctx context.Context, id string, patch peers.ImagePatch) (peers.Image, error) {
	if err := ctx.Err(); err != nil {
		return peers.Image{}, err
	}
	if patch.Visibility != nil {
		if err := checkOneOf("visibility", *patch.Visibility, visibilities); err != nil {
			return peers.Image{}, fmt.Errorf("image %s: %w", id, err)
		}
	}
	if (patch.MinRAMMiB != nil && *patch.MinRAMMiB < 0) || (patch.MinDiskGiB != nil && *patch.MinDiskGiB < 0) {
		return peers.Image{}, errf(peers.ErrInvalid, "image %s: min_ram and min_disk may not be negative", id)
	}
	if err := checkImageProperties(patch.SetProperties); err != nil {
		return peers.Image{}, fmt.Errorf("image %s: %w", id, err)
	}
	if err := checkImageTags(patch.AddTags); err != nil {
		return peers.Image{}, fmt.Errorf("image %s: %w", id, err)
	}
	if err := c.begin(ctx); err != nil {
		return peers.Image{}, err
	}
	defer c.mu.Unlock()
	img, err := c.liveImage(id)
	if err != nil {
		return peers.Image{}, err
	}
	tags := img.Tags
	if len(patch.AddTags) > 0 || len(patch.RemoveTags) > 0 {
		tags = slices.DeleteFunc(append(slices.Clone(img.Tags), patch.AddTags...), func(t string) bool {
			return slices.Contains(patch.RemoveTags, t)
		})
		if tags, err = tagSet(tags); err != nil {
			return peers.Image{}, fmt.Errorf("image %s: %w", id, err)
		}
	}
	img.Tags = tags
	if patch.Name != nil {
		img.Name = *patch.Name
	}
	if patch.MinRAMMiB != nil {
		img.MinRAMMiB = *patch.MinRAMMiB
	}
	if patch.MinDiskGiB != nil {
		img.MinDiskGiB = *patch.MinDiskGiB
	}
	if patch.Visibility != nil {
		img.Visibility = *patch.Visibility
	}
	if patch.Protected != nil {
		img.Protected = *patch.Protected
	}
	if len(patch.SetProperties) > 0 && img.Properties == nil {
		img.Properties = map[string]string{}
	}
	maps.Copy(img.Properties, patch.SetProperties)
	for _, k := range patch.RemoveProperties {
		delete(img.Properties, k)
	}
	img.UpdatedAt = now()
	view := img.view()
	c.markLocked(recImage, img.ID)
	c.saveLocked()
	c.log.WithField("image", id).Info("image updated")
	return view, nil
}

// DeleteImage deletes an image: at once (status deleted, bytes removed), or
// with Config.ImageDeleteDelay as pending_delete until the delay passes.
// Either way it is gone from GetImage and ListImages right away. A
// protected image is a conflict (Glance answers 403). Servers and volumes
// made from the image keep their own copies.
func (c *Cloud) DeleteImage(ctx context.Context, id string) error {
	if err := c.begin(ctx); err != nil {
		return err
	}
	defer c.mu.Unlock()
	img, err := c.liveImage(id)
	if err != nil {
		return err
	}
	if img.Protected {
		return errf(peers.ErrConflict, "image %s is protected; unprotect it first", id)
	}
	img.UpdatedAt = now()
	log := c.log.WithField("image", id)
	if d := c.cfg.ImageDeleteDelay; d > 0 {
		img.Status = peers.ImagePendingDelete
		img.scrub = time.AfterFunc(d, func() { c.scrubImage(id) })
		c.markLocked(recImage, id)
		c.saveLocked()
		log.WithField("delay", d).Info("image pending delete")
		return nil
	}
	c.purgeImageLocked(img)
	log.Info("image deleted")
	return nil
}

// scrubImage ends a delayed delete, like glance-scrubber.
func (c *Cloud) scrubImage(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	img, ok := c.images[id]
	if c.closed || !ok || img.Status != peers.ImagePendingDelete {
		return
	}
	c.purgeImageLocked(img)
	c.log.WithField("image", id).Info("image scrubbed")
}

// purgeImageLocked removes an image's bytes and marks it deleted. Removing
// a file is quick, so it happens under c.mu; readers that already opened it
// keep reading (POSIX unlink semantics).
func (c *Cloud) purgeImageLocked(img *image) {
	if err := c.store.remove(img.ID); err != nil {
		c.log.WithError(err).WithField("image", img.ID).Warn("removing image data failed; the file is orphaned")
	}
	img.Status = peers.ImageDeleted
	img.scrub = nil
	img.UpdatedAt = now()
	c.markLocked(recImage, img.ID)
	c.saveLocked()
	// Its base volumes that nothing is based on go now, not at the next
	// server or volume delete on their host.
	for _, h := range c.hosts {
		c.collectBasesLocked(h.cfg.Name)
	}
}
