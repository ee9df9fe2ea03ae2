package openstack

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	"github.com/cloudmux/cloudmux/peers"
)

// Image metadata lives in Glance properties: the cloudmux keys
// (peers.MetaBrokerID, MetaProject, MetaID) are ordinary string properties,
// so `openstack image list --property cloudmux_id=X` finds them too.

// glanceSystemKeys are top-level image attributes Glance returns that are
// not user properties (gophercloud files every unknown key as a property).
var glanceSystemKeys = map[string]bool{
	"os_hash_algo": true, "os_hash_value": true, "os_hidden": true, "direct_url": true,
	"locations": true, "stores": true, "self": true, "file": true, "schema": true,
	"properties": true, "virtual_size": true, "os_glance_failed_import": true,
	"os_glance_importing_to_stores": true,
}

// CreateImage registers a queued image in the scoped project, with the ID
// asked for if any. Glance takes no checksum, so spec.Checksum is kept here
// and checked by UploadImage.
func (c *Cloud) CreateImage(ctx context.Context, spec peers.ImageSpec) (peers.Image, error) {
	if err := c.needImage(); err != nil {
		return peers.Image{}, err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	opts := images.CreateOpts{
		Name: spec.Name, ID: spec.ID, Tags: spec.Tags, ContainerFormat: spec.ContainerFormat,
		DiskFormat: spec.DiskFormat, MinDisk: spec.MinDiskGiB, MinRAM: spec.MinRAMMiB, Properties: c.outMeta(spec.Properties),
	}
	if spec.Visibility != "" {
		v := images.ImageVisibility(spec.Visibility)
		opts.Visibility = &v
	}
	if spec.Protected {
		opts.Protected = &spec.Protected
	}
	img, err := images.Create(ctx, c.image, imageCreate{opts}).Extract()
	if err != nil {
		return peers.Image{}, c.translate(fmt.Sprintf("glance: create image %q", spec.Name), err)
	}
	if spec.Checksum != "" {
		c.mu.Lock()
		c.expected[img.ID] = strings.ToLower(spec.Checksum)
		c.mu.Unlock()
	}
	return c.toImage(*img), nil
}

// imageCreate lets a name be empty, as Glance does (gophercloud requires
// one).
type imageCreate struct{ images.CreateOpts }

func (o imageCreate) ToImageCreateMap() (map[string]any, error) {
	named := o.CreateOpts
	if named.Name == "" {
		named.Name = "-" // placeholder for gophercloud's required check
	}
	m, err := named.ToImageCreateMap()
	if err != nil {
		return nil, err
	}
	if o.Name == "" {
		delete(m, "name")
	}
	return m, nil
}

// GetImage shows an image; deleted and pending_delete ones are ErrNotFound.
func (c *Cloud) GetImage(ctx context.Context, id string) (peers.Image, error) {
	if err := c.needImage(); err != nil {
		return peers.Image{}, err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	img, err := images.Get(ctx, c.image, id).Extract()
	if err != nil {
		return peers.Image{}, c.translate("glance: show image "+id, err)
	}
	out := c.toImage(*img)
	if out.Status == peers.ImageDeleted || out.Status == peers.ImagePendingDelete {
		return peers.Image{}, fmt.Errorf("glance: image %s is %s: %w", id, out.Status, peers.ErrNotFound)
	}
	return out, nil
}

// imageListQuery is images.ListOpts plus Glance's filtering on arbitrary
// properties (?cloudmux_id=X), which gophercloud's options lack.
type imageListQuery struct {
	images.ListOpts
	props map[string]string
}

func (q imageListQuery) ToImageListQuery() (string, error) {
	s, err := q.ListOpts.ToImageListQuery()
	if err != nil {
		return "", err
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", err
	}
	v := u.Query()
	for k, val := range q.props {
		if !reservedImageFilter[k] {
			v.Set(k, val)
		}
	}
	return "?" + v.Encode(), nil
}

// reservedImageFilter are query parameters Glance reads as something else
// than a property filter; metadata with these keys is matched here only.
var reservedImageFilter = map[string]bool{
	"id": true, "limit": true, "marker": true, "name": true, "visibility": true, "os_hidden": true,
	"member_status": true, "owner": true, "status": true, "size_min": true, "size_max": true,
	"sort": true, "sort_key": true, "sort_dir": true, "tag": true, "created_at": true,
	"updated_at": true, "container_format": true, "disk_format": true, "protected": true,
}

// ListImages lists the images the project sees (its own, public, shared
// with it), narrowed by owner and properties. An admin token sees every
// project's images in Glance; those are narrowed back to the project's own
// and public ones, so the broker shows no other tenant's private image.
func (c *Cloud) ListImages(ctx context.Context, opts peers.ListOptions) ([]peers.Image, error) {
	if err := c.needImage(); err != nil {
		return nil, err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	q := imageListQuery{ListOpts: images.ListOpts{Owner: opts.Project, Limit: 200}, props: c.outMeta(opts.Metadata)}
	pages, err := images.List(c.image, q).AllPages(ctx)
	if err != nil {
		return nil, c.translate("glance: list images", err)
	}
	all, err := images.ExtractImages(pages)
	if err != nil {
		return nil, c.translate("glance: list images", err)
	}
	var out []peers.Image
	for _, img := range all {
		im := c.toImage(img)
		if im.Status == peers.ImageDeleted || im.Status == peers.ImagePendingDelete {
			continue
		}
		if c.admin && im.Project != c.project && im.Visibility != "public" {
			continue
		}
		if opts.Matches(im.Project, im.Properties) {
			out = append(out, im)
		}
	}
	return out, nil
}

// imagePatch is one JSON-patch operation on an image attribute or
// property, with the path escaped (RFC 6901) so a property named "a/b"
// stays one property.
type imagePatch struct {
	op    string
	path  string
	value any
}

func (p imagePatch) ToImagePatchMap() map[string]any {
	m := map[string]any{"op": p.op, "path": "/" + strings.NewReplacer("~", "~0", "/", "~1").Replace(p.path)}
	if p.op != "remove" {
		m["value"] = p.value
	}
	return m
}

// UpdateImage applies a patch: attributes and properties in one JSON
// patch, then tags one by one (Glance's tag endpoints add and remove a tag
// without racing another writer of the tag set).
func (c *Cloud) UpdateImage(ctx context.Context, id string, patch peers.ImagePatch) (peers.Image, error) {
	cur, err := c.GetImage(ctx, id)
	if err != nil {
		return peers.Image{}, err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	var ops images.UpdateOpts
	add := func(op, path string, v any) { ops = append(ops, imagePatch{op, path, v}) }
	if patch.Name != nil {
		add("replace", "name", *patch.Name)
	}
	if patch.MinRAMMiB != nil {
		add("replace", "min_ram", *patch.MinRAMMiB)
	}
	if patch.MinDiskGiB != nil {
		add("replace", "min_disk", *patch.MinDiskGiB)
	}
	if patch.Visibility != nil {
		add("replace", "visibility", *patch.Visibility)
	}
	if patch.Protected != nil {
		add("replace", "protected", *patch.Protected)
	}
	keys := make([]string, 0, len(patch.SetProperties))
	for k := range patch.SetProperties {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		add("add", escapeKeyIf(c.federated, k), patch.SetProperties[k]) // JSON patch add replaces an existing member
	}
	for _, k := range patch.RemoveProperties {
		if _, ok := cur.Properties[k]; ok {
			add("remove", escapeKeyIf(c.federated, k), nil)
		}
	}
	if len(ops) > 0 {
		if _, err := images.Update(ctx, c.image, id, ops).Extract(); err != nil {
			return peers.Image{}, c.translate("glance: update image "+id, err)
		}
	}
	for _, t := range patch.AddTags {
		_, err := c.image.Put(ctx, c.image.ServiceURL("images", id, "tags", url.PathEscape(t)), nil, nil, &gophercloud.RequestOpts{OkCodes: []int{204}})
		if err != nil {
			return peers.Image{}, c.translate(fmt.Sprintf("glance: tag image %s with %q", id, t), err)
		}
	}
	for _, t := range patch.RemoveTags {
		_, err := c.image.Delete(ctx, c.image.ServiceURL("images", id, "tags", url.PathEscape(t)), &gophercloud.RequestOpts{OkCodes: []int{204}})
		if err != nil && !gophercloud.ResponseCodeIs(err, 404) {
			return peers.Image{}, c.translate(fmt.Sprintf("glance: untag image %s of %q", id, t), err)
		}
	}
	return c.GetImage(ctx, id)
}

// DeleteImage deletes an image.
func (c *Cloud) DeleteImage(ctx context.Context, id string) error {
	if err := c.needImage(); err != nil {
		return err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	err := images.Delete(ctx, c.image, id).ExtractErr()
	if err == nil {
		c.mu.Lock()
		delete(c.expected, id)
		c.mu.Unlock()
	}
	return c.translate("glance: delete image "+id, err)
}

func escapeKeyIf(federated bool, k string) string {
	if federated {
		return escapeKey(k)
	}
	return k
}

func (c *Cloud) toImage(img images.Image) peers.Image {
	out := peers.Image{
		ID: img.ID, Name: img.Name, Status: peers.ImageStatus(img.Status), Project: img.Owner,
		DiskFormat: img.DiskFormat, ContainerFormat: img.ContainerFormat, Size: img.SizeBytes,
		Checksum: img.Checksum, MinRAMMiB: img.MinRAMMegabytes, MinDiskGiB: img.MinDiskGigabytes,
		Visibility: string(img.Visibility), Protected: img.Protected, Tags: img.Tags,
		CreatedAt: img.CreatedAt, UpdatedAt: img.UpdatedAt,
	}
	out.OSHashAlgo, _ = img.Properties["os_hash_algo"].(string)
	out.OSHashValue, _ = img.Properties["os_hash_value"].(string)
	for k, v := range img.Properties {
		if glanceSystemKeys[k] || v == nil {
			continue
		}
		if out.Properties == nil {
			out.Properties = map[string]string{}
		}
		if s, ok := v.(string); ok {
			out.Properties[k] = s
		} else {
			out.Properties[k] = fmt.Sprint(v)
		}
	}
	out.Properties = c.inMeta(out.Properties)
	return out
}
