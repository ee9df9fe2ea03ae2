package ec2

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/compute"
	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/policy"
)

// Volumes, as Cinder serves them (broker/volume): placed by the same
// policy, recorded in the same index with the same markers on the peer, so
// a volume made here is a Cinder volume and the other way round.

const volumeKind = "volume"

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
func volumeState(v peers.Volume) string {
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

// serverIDs maps a project's servers on the peers (peer ID + the peer's
// server ID) to their broker IDs, to name attachments' instances.
func (a *API) serverIDs(ctx context.Context, project string) (map[string]string, error) {
	entries, err := a.Index.List(ctx, "server", project)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(entries))
	for _, e := range entries {
		out[e.PeerID+"/"+e.PeerResourceID] = e.ID
	}
	return out, nil
}

func (a *API) volumeView(ctx context.Context, e index.Entry, peer string, v peers.Volume, servers map[string]string, tags []tagRecord) (volumeItem, error) {
	id, err := a.ids.shown(ctx, prefixVolume, e.ID)
	if err != nil {
		return volumeItem{}, err
	}
	out := volumeItem{VolumeID: id, Size: v.SizeGiB, AvailabilityZone: peer, Status: volumeState(v),
		CreateTime: v.CreatedAt.UTC().Format(timeFormat), VolumeType: v.VolumeType, TagSet: tagSet(tags)}
	if out.VolumeType == "" {
		out.VolumeType = "standard"
	}
	var atts []attachmentItem
	for _, att := range v.Attachments {
		inst := att.ServerID
		if brokerID, ok := servers[e.PeerID+"/"+att.ServerID]; ok {
			if inst, err = a.ids.shown(ctx, prefixInstance, brokerID); err != nil {
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

// createVolume places an empty volume like Cinder's create: the policy's
// allowed peers best first, a full peer handing over to the next, the
// index written (or the peer's volume removed again).
func (a *API) createVolume(ctx context.Context, c *call) (any, error) {
	if c.params.get("SnapshotId") != "" {
		return nil, errorf(400, "UnsupportedOperation", "volumes from snapshots are not offered")
	}
	sizeStr, e := c.params.require("Size")
	if e != nil {
		return nil, e
	}
	size, err := strconv.Atoi(sizeStr)
	if err != nil || size < 1 || size > 16384 {
		return nil, invalidParameter("Size %q: must be a whole number of GiB from 1 to 16384", sizeStr)
	}
	specs, e := c.params.tagSpecs()
	if e != nil {
		return nil, e
	}
	az := c.params.get("AvailabilityZone")
	if az != "" && !peers.Named(a.Pool.Members(), az) {
		return nil, invalidParameter("Invalid availability zone: [%s]", az)
	}
	id := uuid.NewString()
	name := ""
	for _, t := range specs["volume"] {
		if t.Key == "Name" {
			name = t.Value
		}
	}
	meta := map[string]string{peers.MetaID: id, peers.MetaProject: c.token.ProjectID, peers.MetaBrokerID: a.BrokerID}
	spec := peers.VolumeSpec{Name: name, Project: c.token.ProjectID, SizeGiB: size, Metadata: meta}
	candidates, disconnected := peers.Candidates(a.Pool.Members())
	decision, err := a.Placer.Place(ctx, policy.Request{Kind: volumeKind, Project: c.token.ProjectID, DiskGiB: size, AvailabilityZone: az}, candidates)
	if err != nil {
		return nil, err
	}
	var tried []string
	for _, p := range decision.Allowed() {
		m, ok := a.Pool.Get(p.ID)
		if !ok || m.Cloud == nil {
			continue
		}
		vol, err := m.Cloud.CreateVolume(ctx, spec)
		if errors.Is(err, peers.ErrCapacity) || errors.Is(err, peers.ErrUnavailable) {
			a.Log.WithError(err).WithField("peer", p.Name).Info("ec2: peer refused a volume")
			tried = append(tried, p.Name+": no room or not reachable")
			continue
		}
		if err != nil {
			return nil, err
		}
		entry := index.Entry{Kind: volumeKind, ID: id, Project: c.token.ProjectID, PeerID: p.ID, PeerResourceID: vol.ID, Name: vol.Name, CreatedAt: vol.CreatedAt}
		if err := a.Index.Put(ctx, entry); err != nil {
			_ = m.Cloud.DeleteVolume(context.WithoutCancel(ctx), vol.ID)
			return nil, err
		}
		if _, err := a.ids.assign(ctx, prefixVolume, id); err != nil {
			return nil, err
		}
		view, err := a.volumeView(ctx, entry, p.Name, vol, nil, nil)
		if err != nil {
			return nil, err
		}
		if err := a.putTags(ctx, c.token.ProjectID, view.VolumeID, "volume", specs["volume"]); err != nil {
			return nil, err
		}
		a.Log.WithFields(logrus.Fields{"volume": id, "ec2_id": view.VolumeID, "peer": p.Name, "project": c.token.ProjectID, "size_gib": size}).Info("ec2: volume created")
		view.TagSet = list(specs["volume"])
		view.AttachmentSet = list[attachmentItem](nil)
		return view, nil
	}
	why := decision.Explain()
	if len(tried) > 0 {
		why = strings.Join(tried, "; ") + "; " + why
	}
	for _, n := range disconnected {
		why += "; " + n + ": not connected"
	}
	return nil, errorf(400, "InsufficientVolumeCapacity", "no peer can hold a %d GiB volume: %s", size, why)
}

// member returns the connected pool member holding an indexed resource.
func (a *API) member(e index.Entry) (*peers.Member, error) {
	m, ok := a.Pool.Get(e.PeerID)
	if !ok || m.Cloud == nil {
		return nil, fmt.Errorf("the peer holding %s %s is not connected: %w", e.Kind, e.ID, peers.ErrUnavailable)
	}
	return m, nil
}

// describeVolumes merges the project's volumes from the peers holding
// them, one list call per peer in parallel under a deadline.
func (a *API) describeVolumes(ctx context.Context, c *call) (any, error) {
	project := c.token.ProjectID
	wanted := c.params.list("VolumeId")
	entries, err := a.Index.List(ctx, volumeKind, project)
	if err != nil {
		return nil, err
	}
	byPeer := map[string]map[string]index.Entry{}
	for _, e := range entries {
		if byPeer[e.PeerID] == nil {
			byPeer[e.PeerID] = map[string]index.Entry{}
		}
		byPeer[e.PeerID][e.PeerResourceID] = e
	}
	var members []*peers.Member
	var failed []string
	for peerID := range byPeer {
		switch m, ok := a.Pool.Get(peerID); {
		case ok && m.Cloud != nil:
			members = append(members, m)
		case ok:
			failed = append(failed, m.Peer.Name)
		default:
			failed = append(failed, peerID) // the peer left the pool: only its ID is known
		}
	}
	res := peers.Gather(ctx, members, a.peerTimeout(), func(ctx context.Context, m *peers.Member) ([]peers.Volume, error) {
		return m.Cloud.ListVolumes(ctx, peers.ListOptions{Metadata: map[string]string{peers.MetaProject: project}})
	})
	servers, err := a.serverIDs(ctx, project)
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
	for _, rr := range res {
		if rr.Err != nil {
			failed = append(failed, rr.Member.Peer.Name)
			continue
		}
		for _, v := range rr.Value {
			e, ok := byPeer[rr.Member.Peer.ID][v.ID]
			if !ok {
				continue
			}
			id, err := a.ids.shown(ctx, prefixVolume, e.ID)
			if err != nil {
				return nil, err
			}
			view, err := a.volumeView(ctx, e, rr.Member.Peer.Name, v, servers, tags[id])
			if err != nil {
				return nil, err
			}
			seen[id], seen[e.ID] = true, true
			if len(wanted) > 0 && !contains(wanted, id) && !contains(wanted, e.ID) {
				continue
			}
			if volumeMatches(view, filters) && tagFilters(tags[id], filters) {
				out = append(out, view)
			}
		}
	}
	c.flagPartial(a.Log, "volumes", failed)
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

// volumeAndMember resolves a VolumeId parameter.
func (a *API) volumeAndMember(ctx context.Context, c *call) (string, index.Entry, *peers.Member, error) {
	id, e := c.params.require("VolumeId")
	if e != nil {
		return "", index.Entry{}, nil, e
	}
	prefix, entry, err := a.owned(ctx, c, id)
	if err == nil && prefix != prefixVolume {
		err = notFound("InvalidVolume.NotFound", "The volume '%s' does not exist.", id)
	}
	if err != nil {
		return "", index.Entry{}, nil, err
	}
	m, err := a.member(entry)
	return id, entry, m, err
}

func (a *API) deleteVolume(ctx context.Context, c *call) (any, error) {
	id, e, m, err := a.volumeAndMember(ctx, c)
	if err != nil {
		return nil, err
	}
	if err := m.Cloud.DeleteVolume(ctx, e.PeerResourceID); errors.Is(err, peers.ErrConflict) {
		return nil, errorf(400, "VolumeInUse", "Volume %s is attached or busy", id).hiding(err)
	} else if err != nil && !errors.Is(err, peers.ErrNotFound) {
		return nil, err
	}
	if err := a.Index.Delete(ctx, e); err != nil {
		return nil, err
	}
	a.dropTags(ctx, c.token.ProjectID, id)
	return returnTrue{true}, nil
}

// attachVolume attaches through the servers service, as Nova's
// os-volume_attachments does (volume and instance on the same peer).
func (a *API) attachVolume(ctx context.Context, c *call) (any, error) {
	volID, vol, _, err := a.volumeAndMember(ctx, c)
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
	att, err := a.Servers.Attach(ctx, compute.CallerOf(c.token), inst.ID, vol.ID)
	if errors.Is(err, compute.ErrConflict) {
		return nil, errorf(400, "VolumeInUse", "%s is already attached or busy", volID).hiding(err)
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
	volID, vol, m, err := a.volumeAndMember(ctx, c)
	if err != nil {
		return nil, err
	}
	v, err := m.Cloud.GetVolume(ctx, vol.PeerResourceID)
	if err != nil {
		return nil, err
	}
	if len(v.Attachments) == 0 {
		return nil, errorf(400, "IncorrectState", "Volume '%s' is in the 'available' state.", volID)
	}
	servers, err := a.serverIDs(ctx, c.token.ProjectID)
	if err != nil {
		return nil, err
	}
	att := v.Attachments[0]
	brokerID, ok := servers[vol.PeerID+"/"+att.ServerID]
	if !ok {
		return nil, errorf(400, "IncorrectState", "Volume '%s' is attached to a server this broker does not manage", volID)
	}
	instID, err := a.ids.shown(ctx, prefixInstance, brokerID)
	if err != nil {
		return nil, err
	}
	if want := c.params.get("InstanceId"); want != "" && want != instID && want != brokerID {
		return nil, errorf(400, "IncorrectState", "Volume '%s' is not attached to instance '%s'", volID, want)
	}
	if err := a.Servers.Detach(ctx, compute.CallerOf(c.token), brokerID, vol.ID); err != nil {
		return nil, serverErr(err, instID)
	}
	return attachmentItem{VolumeID: volID, InstanceID: instID, Device: att.Device, Status: "detaching", AttachTime: v.CreatedAt.UTC().Format(timeFormat)}, nil
}
