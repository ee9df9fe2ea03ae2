package ec2

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"strings"

	"github.com/cloudmux/cloudmux/broker/image"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

// Images are Glance's (broker/image.Service): every image a project may
// see is an AMI. econe's two steps map onto it: upload (PUT /ec2/upload,
// or Glance's own create and upload) makes a private image, RegisterImage
// names it and returns its AMI ID; DeregisterImage deletes it.

type imageItem struct {
	ImageID            string          `xml:"imageId"`
	ImageLocation      string          `xml:"imageLocation"`
	ImageState         string          `xml:"imageState"`
	ImageOwnerID       string          `xml:"imageOwnerId"`
	CreationDate       string          `xml:"creationDate"`
	IsPublic           bool            `xml:"isPublic"`
	Architecture       string          `xml:"architecture"`
	ImageType          string          `xml:"imageType"`
	Name               string          `xml:"name"`
	Description        string          `xml:"description,omitempty"`
	RootDeviceType     string          `xml:"rootDeviceType"`
	RootDeviceName     string          `xml:"rootDeviceName"`
	VirtualizationType string          `xml:"virtualizationType"`
	Hypervisor         string          `xml:"hypervisor"`
	TagSet             items[Tag]      `xml:"tagSet"`
	BlockDeviceMapping items[struct{}] `xml:"blockDeviceMapping"`
}

// imageLocationPrefix marks image locations this broker hands out.
const imageLocationPrefix = "cloudmux/"

// imageState maps Glance's statuses to EC2's image states.
func imageState(s peers.ImageStatus) string {
	switch s {
	case peers.ImageActive:
		return "available"
	case peers.ImageQueued, peers.ImageSaving:
		return "pending"
	case image.StatusDeactivated:
		return "disabled"
	case peers.ImageKilled:
		return "failed"
	}
	return "deregistered"
}

func (a *API) imageView(ctx context.Context, img image.Image, tags []tagRecord) (imageItem, error) {
	id, err := a.ids.shown(ctx, prefixImage, img.ID)
	if err != nil {
		return imageItem{}, err
	}
	arch := img.Properties["architecture"]
	if arch == "" || arch == "x86_64" || arch == "amd64" {
		arch = "x86_64"
	}
	return imageItem{ImageID: id, ImageLocation: imageLocationPrefix + img.ID, ImageState: imageState(img.Status),
		ImageOwnerID: img.Project, CreationDate: img.CreatedAt.UTC().Format(timeFormat), IsPublic: img.Visibility == "public",
		Architecture: arch, ImageType: "machine", Name: img.Name, Description: img.Properties["description"],
		RootDeviceType: "instance-store", RootDeviceName: "/dev/vda", VirtualizationType: "hvm", Hypervisor: "xen",
		TagSet: tagSet(tags)}, nil
}

// imageErr translates the image service's errors for an image ID.
func imageErr(err error, id string) error {
	switch {
	case errors.Is(err, image.ErrNotFound):
		return notFound("InvalidAMIID.NotFound", "The image id '[%s]' does not exist", id)
	case errors.Is(err, image.ErrForbidden):
		return unauthorizedOperation("You are not authorized to perform this operation on image '%s'", id).hiding(err)
	case errors.Is(err, image.ErrTooLarge):
		return invalidParameter("The image is larger than the cloud accepts").hiding(err)
	case errors.Is(err, image.ErrInvalid):
		if fields := registry.FieldErrors(err); len(fields) > 0 {
			return invalidParameter("%s", fields[0].Error())
		}
		if text := ownText(err, image.ErrInvalid); text != "" {
			return invalidParameter("%s", text)
		}
		return invalidParameter("A value given for image '%s' is not valid", id).hiding(err)
	case errors.Is(err, image.ErrConflict):
		return errorf(http.StatusBadRequest, "IncorrectState", "The image '%s' is not in a state that allows this action", id).hiding(err)
	case errors.Is(err, image.ErrNoPeer):
		return errorf(http.StatusBadRequest, "InsufficientCapacity", "No availability zone can hold the image").hiding(err)
	case errors.Is(err, image.ErrUnavailable):
		return errorf(http.StatusServiceUnavailable, "Unavailable", "The availability zone holding the image is unavailable; retry").hiding(err)
	}
	return err
}

// imageUUID resolves an AMI ID (or a broker UUID, or an image location
// this broker handed out) to the image's broker ID.
func (a *API) imageUUID(ctx context.Context, c *call, id string) (string, error) {
	if rest, ok := strings.CutPrefix(id, imageLocationPrefix); ok {
		id = rest
	}
	u, err := a.resolveID(ctx, c, prefixImage, id)
	if errors.Is(err, errUnknownID) {
		if _, ok := parseID(id); !ok {
			return "", invalidParameter("Invalid id: %q (expecting \"ami-...\")", id)
		}
		return "", notFound("InvalidAMIID.NotFound", "The image id '[%s]' does not exist", id)
	}
	return u, err
}

// resolveImage returns an image the caller may see.
func (a *API) resolveImage(ctx context.Context, c *call, id string) (image.Image, error) {
	u, err := a.imageUUID(ctx, c, id)
	if err != nil {
		return image.Image{}, err
	}
	img, err := a.Images.Resolve(ctx, image.CallerOf(c.token), u)
	if err != nil {
		return image.Image{}, imageErr(err, id)
	}
	return img, nil
}

// describeImages lists the images the project may see. ImageId.N names
// images (each must exist); Owner.N is "self" or project IDs; filters
// image-id, name, state, owner-id, is-public, architecture, image-type,
// tag:KEY, tag-key.
func (a *API) describeImages(ctx context.Context, c *call) (any, error) {
	caller := image.CallerOf(c.token)
	tags, err := a.loadTags(ctx, c.token.ProjectID)
	if err != nil {
		return nil, err
	}
	var imgs []image.Image
	wanted := c.params.list("ImageId")
	if len(wanted) > 0 {
		for _, id := range wanted {
			img, err := a.resolveImage(ctx, c, id)
			if err != nil {
				return nil, err
			}
			imgs = append(imgs, img)
		}
	} else {
		page, err := a.Images.List(ctx, caller, image.Query{})
		if err != nil {
			return nil, imageErr(err, "")
		}
		c.flagPartial(a.Log, "images", page.Partial)
		imgs = page.Images
	}
	owners := c.params.list("Owner")
	filters := c.params.filters()
	var out []imageItem
	for _, img := range imgs {
		if len(owners) > 0 && !contains(owners, img.Project) && !(contains(owners, "self") && img.Project == c.token.ProjectID) {
			continue
		}
		id, err := a.ids.shown(ctx, prefixImage, img.ID)
		if err != nil {
			return nil, err
		}
		view, err := a.imageView(ctx, img, tags[id])
		if err != nil {
			return nil, err
		}
		if imageMatches(view, filters) && tagFilters(tags[id], filters) {
			out = append(out, view)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ImageID < out[j].ImageID })
	return struct {
		ImagesSet items[imageItem] `xml:"imagesSet"`
	}{list(out)}, nil
}

func imageMatches(v imageItem, filters []filter) bool {
	for _, f := range filters {
		var val string
		switch f.Name {
		case "image-id":
			val = v.ImageID
		case "name":
			val = v.Name
		case "state":
			val = v.ImageState
		case "owner-id":
			val = v.ImageOwnerID
		case "is-public":
			val = map[bool]string{true: "true", false: "false"}[v.IsPublic]
		case "architecture":
			val = v.Architecture
		case "image-type":
			val = v.ImageType
		case "description":
			val = v.Description
		default:
			continue
		}
		if !matchAny(f.Values, val) {
			return false
		}
	}
	return true
}

// deregisterImage deletes one of the project's images.
func (a *API) deregisterImage(ctx context.Context, c *call) (any, error) {
	id, e := c.params.require("ImageId")
	if e != nil {
		return nil, e
	}
	img, err := a.resolveImage(ctx, c, id)
	if err != nil {
		return nil, err
	}
	if err := a.Images.Delete(ctx, image.CallerOf(c.token), img.ID); err != nil {
		return nil, imageErr(err, id)
	}
	if ec2ID, err := a.ids.shown(ctx, prefixImage, img.ID); err == nil {
		a.dropTags(ctx, c.token.ProjectID, ec2ID)
	}
	return returnTrue{true}, nil
}
