package ec2

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/compute"
	"github.com/cloudmux/cloudmux/broker/volume"
	"github.com/cloudmux/cloudmux/peers"
)

// Volumes are the volume service's (broker/volume), the one behind
// Cinder: the same placement, index, tenancy and quota, so a volume made
// here is a Cinder volume and the other way round.

// VolumeService is the part of volume.Service the EC2 API uses.
type VolumeService interface {
	Create(ctx context.Context, c volume.Caller, spec volume.CreateSpec) (volume.Volume, error)
	Get(ctx context.Context, c volume.Caller, id string) (volume.Volume, error)
	List(ctx context.Context, c volume.Caller) (volume.Page, error)
	Delete(ctx context.Context, c volume.Caller, id string) error
}

var _ VolumeService = (*volume.Service)(nil)

type attachmentItem struct {
	VolumeID            string `xml:"volumeId"`
	InstanceID          string `xml:"instanceId"`
	Device              string `xml:"device"`
	Status              string `xml:"status"`
	AttachTime          string `xml:"attachTime"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
}

type volumeItem struct {
	VolumeID         string                `xml:"volumeId"`
	Size             int                   `xml:"size"`
	SnapshotID       string                `xml:"snapshotId"`
	AvailabilityZone string                `xml:"availabilityZone"`
	Status           string                `xml:"status"`
	CreateTime       string                `xml:"createTime"`
	AttachmentSet    items[attachmentItem] `xml:"attachmentSet"`
	VolumeType       string                `xml:"volumeType"`
	Encrypted        bool                  `xml:"encrypted"`
	MultiAttach      bool                  `xml:"multiAttachEnabled"`
	TagSet           items[Tag]            `xml:"tagSet"`
}

// volumeState maps Cinder's statuses to EC2's volume states.
func volumeState(v volume.Volume) string {
	switch v.Status {
	case peers.VolumeAttaching, peers.VolumeInUse, peers.VolumeDetaching:
		return "in-use"
	case peers.VolumeExtending:
		if len(v.Attachments) > 0 {
			return "in-use"
		}
		return "available"
	case peers.VolumeCreating, peers.VolumeAvailable, peers.VolumeDeleting, peers.VolumeError:
		return string(v.Status)
	}
	return strings.ToLower(string(v.Status))
}

func (a *API) volumeView(ctx context.Context, v volume.Volume, tags []tagRecord) (volumeItem, error) {
	id, err := a.ids.shown(ctx, prefixVolume, v.ID)
	if err != nil {
		return volumeItem{}, err
	}
	out := volumeItem{VolumeID: id, Size: v.SizeGiB, AvailabilityZone: v.Zone, Status: volumeState(v),
		CreateTime: v.CreatedAt.UTC().Format(timeFormat), VolumeType: v.VolumeType, TagSet: tagSet(tags)}
	if out.VolumeType == "" {
		out.VolumeType = "standard"
	}
	var atts []attachmentItem
	for _, att := range v.Attachments {
		inst := att.ServerID
		if att.Managed {
			if inst, err = a.ids.shown(ctx, prefixInstance, att.ServerID); err != nil {
				return volumeItem{}, err
			}
		}
		status := "attached"
		switch v.Status {
		case peers.VolumeAttaching:
			status = "attaching"
		case peers.VolumeDetaching:
			status = "detaching"
		}
		atts = append(atts, attachmentItem{VolumeID: id, InstanceID: inst, Device: att.Device, Status: status,
			AttachTime: v.CreatedAt.UTC().Format(timeFormat)})
	}
	out.AttachmentSet = list(atts)
	return out, nil
}

// volumeErr maps the volume service's refusals to EC2's error codes.
func volumeErr(err error, id string) error {
	switch {
	case errors.Is(err, volume.ErrNotFound):
		return notFound("InvalidVolume.NotFound", "The volume '%s' does not exist.", id)
	case errors.Is(err, volume.ErrOverQuota):
		return errorf(http.StatusBadRequest, "VolumeLimitExceeded", "%s", err.Error())
	case errors.Is(err, volume.ErrNoCapacity):
		return errorf(http.StatusBadRequest, "InsufficientVolumeCapacity", "%s", err.Error())
	case errors.Is(err, volume.ErrConflict):
		return errorf(http.StatusBadRequest, "VolumeInUse", "Volume %s is attached or busy", id).hiding(err)
	case errors.Is(err, volume.ErrInvalid):
		return invalidParameter("%s", err.Error())
	}
	return err
}

// createVolume makes an empty volume through the volume service, as
// Cinder's create does.
func (a *API) createVolume(ctx context.Context, c *call) (any, error) {
	if c.params.get("SnapshotId") != "" {
		return nil, errorf(400, "UnsupportedOperation", "volumes from snapshots are not offered")
	}
	sizeStr, e := c.params.require("Size")
	if e != nil {
		return nil, e
	}
	size, err := strconv.Atoi(sizeStr)
	if err != nil || size < 1 || size > volume.MaxSizeGiB {
		return nil, invalidParameter("Size %q: must be a whole number of GiB from 1 to %d", sizeStr, volume.MaxSizeGiB)
	}
	specs, e := c.params.tagSpecs()
	if e != nil {
		return nil, e
	}
	az := c.params.get("AvailabilityZone")
	if az != "" && !peers.Named(a.Pool.Members(), az) {
		return nil, invalidParameter("Invalid availability zone: [%s]", az)
	}
	name := ""
	for _, t := range specs["volume"] {
		if t.Key == "Name" {
			name = t.Value
		}
	}
	v, err := a.Volumes.Create(ctx, volume.CallerOf(c.token), volume.CreateSpec{Name: name, SizeGiB: size, AvailabilityZone: az, VolumeType: c.params.get("VolumeType")})
	if err != nil {
		return nil, volumeErr(err, "")
	}
	if _, err := a.ids.assign(ctx, prefixVolume, v.ID); err != nil {
		return nil, err
	}
	view, err := a.volumeView(ctx, v, nil)
	if err != nil {
		return nil, err
	}
	if err := a.putTags(ctx, c.token.ProjectID, view.VolumeID, "volume", specs["volume"]); err != nil {
		return nil, err
	}
	a.Log.WithFields(logrus.Fields{"volume": v.ID, "ec2_id": view.VolumeID, "zone": v.Zone, "project": c.token.ProjectID, "size_gib": size}).Info("ec2: volume created")
	view.TagSet = list(specs["volume"])
	view.AttachmentSet = list[attachmentItem](nil)
	return view, nil
}

// describeVolumes shows the project's volumes, merged by the volume
// service from the peers holding them.
func (a *API) describeVolumes(ctx context.Context, c *call) (any, error) {
	project := c.token.ProjectID
	wanted := c.params.list("VolumeId")
	page, err := a.Volumes.List(ctx, volume.CallerOf(c.token))
	if err != nil {
		return nil, err
	}
	tags, err := a.loadTags(ctx, project)
	if err != nil {
		return nil, err
	}
	filters := c.params.filters()
	var out []volumeItem
	seen := map[string]bool{}
	for _, v := range page.Volumes {
		id, err := a.ids.shown(ctx, prefixVolume, v.ID)
		if err != nil {
			return nil, err
		}
		view, err := a.volumeView(ctx, v, tags[id])
		if err != nil {
			return nil, err
		}
		seen[id], seen[v.ID] = true, true
		if len(wanted) > 0 && !contains(wanted, id) && !contains(wanted, v.ID) {
			continue
		}
		if volumeMatches(view, filters) && tagFilters(tags[id], filters) {
			out = append(out, view)
		}
	}
	c.flagPartial(a.Log, "volumes", page.Failed)
	for _, w := range wanted {
		if !seen[w] {
			return nil, notFound("InvalidVolume.NotFound", "The volume '%s' does not exist.", w)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].VolumeID < out[j].VolumeID })
	return struct {
		VolumeSet items[volumeItem] `xml:"volumeSet"`
	}{list(out)}, nil
}

func volumeMatches(v volumeItem, filters []filter) bool {
	for _, f := range filters {
		var vals []string
		switch f.Name {
		case "volume-id":
			vals = []string{v.VolumeID}
		case "status":
			vals = []string{v.Status}
		case "availability-zone":
			vals = []string{v.AvailabilityZone}
		case "size":
			vals = []string{strconv.Itoa(v.Size)}
		case "volume-type":
			vals = []string{v.VolumeType}
		case "attachment.instance-id":
			for _, at := range v.AttachmentSet.Items {
				vals = append(vals, at.InstanceID)
			}
		case "attachment.status":
			for _, at := range v.AttachmentSet.Items {
				vals = append(vals, at.Status)
			}
		default:
			continue
		}
		if !matchAny(f.Values, vals...) {
			return false
		}
	}
	return true
}

// volumeRef resolves the VolumeId parameter (a vol- ID) to the volume's
// broker ID; whether the project has it is the volume service's to say.
func (a *API) volumeRef(ctx context.Context, c *call) (ec2ID, brokerID string, err error) {
	id, e := c.params.require("VolumeId")
	if e != nil {
		return "", "", e
	}
	if prefix, ok := parseID(id); !ok || prefix != prefixVolume {
		return "", "", invalidParameter("Invalid id: %q (expected vol- and 8 or 17 hex digits)", id)
	}
	brokerID, err = a.resolveID(ctx, c, prefixVolume, id)
	if errors.Is(err, errUnknownID) {
		return "", "", notFound("InvalidVolume.NotFound", "The volume '%s' does not exist.", id)
	}
	return id, brokerID, err
}

func (a *API) deleteVolume(ctx context.Context, c *call) (any, error) {
	id, brokerID, err := a.volumeRef(ctx, c)
	if err != nil {
		return nil, err
	}
	if err := a.Volumes.Delete(ctx, volume.CallerOf(c.token), brokerID); err != nil {
		return nil, volumeErr(err, id)
	}
	a.dropTags(ctx, c.token.ProjectID, id)
	return returnTrue{true}, nil
}

// attachVolume attaches through the servers service, as Nova's
// os-volume_attachments does (volume and instance on the same peer).
func (a *API) attachVolume(ctx context.Context, c *call) (any, error) {
	volID, brokerID, err := a.volumeRef(ctx, c)
	if err != nil {
		return nil, err
	}
	instID, e := c.params.require("InstanceId")
	if e != nil {
		return nil, e
	}
	prefix, inst, err := a.owned(ctx, c, instID)
	if err == nil && prefix != prefixInstance {
		err = notFound("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", instID)
	}
	if err != nil {
		return nil, err
	}
	att, err := a.Servers.Attach(ctx, compute.CallerOf(c.token), inst.ID, brokerID)
	if errors.Is(err, compute.ErrConflict) {
		return nil, errorf(400, "VolumeInUse", "%s is already attached or busy", volID).hiding(err)
	}
	if errors.Is(err, volume.ErrNotFound) || compute.FieldOf(err) == "volumeId" && errors.Is(err, compute.ErrNotFound) {
		// Another project's volume reads as one that never was.
		return nil, notFound("InvalidVolume.NotFound", "The volume '%s' does not exist.", volID)
	}
	if err != nil {
		return nil, serverErr(err, instID)
	}
	device := att.Device
	if device == "" {
		device = c.params.get("Device")
	}
	return attachmentItem{VolumeID: volID, InstanceID: instID, Device: device, Status: "attaching", AttachTime: a.now().Format(timeFormat)}, nil
}

// detachVolume detaches a volume from the instance it is attached to.
func (a *API) detachVolume(ctx context.Context, c *call) (any, error) {
	volID, brokerID, err := a.volumeRef(ctx, c)
	if err != nil {
		return nil, err
	}
	v, err := a.Volumes.Get(ctx, volume.CallerOf(c.token), brokerID)
	if err != nil {
		return nil, volumeErr(err, volID)
	}
	if len(v.Attachments) == 0 {
		return nil, errorf(400, "IncorrectState", "Volume '%s' is in the 'available' state.", volID)
	}
	att := v.Attachments[0]
	if !att.Managed {
		return nil, errorf(400, "IncorrectState", "Volume '%s' is attached to a server this broker does not manage", volID)
	}
	instID, err := a.ids.shown(ctx, prefixInstance, att.ServerID)
	if err != nil {
		return nil, err
	}
	if want := c.params.get("InstanceId"); want != "" && want != instID && want != att.ServerID {
		return nil, errorf(400, "IncorrectState", "Volume '%s' is not attached to instance '%s'", volID, want)
	}
	if err := a.Servers.Detach(ctx, compute.CallerOf(c.token), att.ServerID, brokerID); err != nil {
		return nil, serverErr(err, instID)
	}
	return attachmentItem{VolumeID: volID, InstanceID: instID, Device: att.Device, Status: "detaching", AttachTime: v.CreatedAt.UTC().Format(timeFormat)}, nil
}
