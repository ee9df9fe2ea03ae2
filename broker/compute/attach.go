package compute

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/faults"
	"github.com/cloudmux/cloudmux/broker/network"
	"github.com/cloudmux/cloudmux/broker/volume"
	"github.com/cloudmux/cloudmux/peers"
)

// Attachment is a volume attached to a server, by broker IDs. As in Nova,
// an attachment's ID is its volume's ID.
type Attachment struct {
	ID       string
	ServerID string
	VolumeID string
	Device   string
	// AttachmentID is the attachment's own ID, as the volume API shows it.
	AttachmentID string
	// Tag is the device tag the attach (or the create, for the boot
	// volume) gave it.
	Tag string
	// DeleteOnTermination: the volume is deleted with the server.
	DeleteOnTermination bool
}

// volumeOf finds a volume of the caller's project through the volume
// service, which owns volumes' tenancy and IDs.
func (s *Servers) volumeOf(ctx context.Context, c Caller, id string) (volume.Ref, error) {
	if s.Volumes == nil {
		return volume.Ref{}, &Error{Field: "volumeId", Message: "Volumes are not offered by this broker.", Err: ErrInvalid}
	}
	ref, err := s.Volumes.Resolve(ctx, c.volume(), id)
	if errors.Is(err, volume.ErrNotFound) {
		return ref, &Error{Field: "volumeId", Message: fmt.Sprintf("Volume %s could not be found.", id), Err: ErrNotFound}
	}
	return ref, err
}

// Attach attaches a volume of the caller's project to one of its servers.
// Both must live on the same peer (a volume does not travel between
// clouds): otherwise ErrInvalid saying where each is.
func (s *Servers) Attach(ctx context.Context, c Caller, serverID, volumeID string) (Attachment, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout()) // one peer's call: bounded like a fan-out's part
	defer cancel()
	e, m, err := s.lookup(ctx, c, serverID)
	if err != nil {
		return Attachment{}, err
	}
	if err := s.checkLock(ctx, c, serverID); err != nil {
		return Attachment{}, err
	}
	ve, err := s.volumeOf(ctx, c, volumeID)
	if err != nil {
		return Attachment{}, err
	}
	if ve.PeerID != e.PeerID {
		where := ve.PeerName
		return Attachment{}, &Error{Field: "volumeId", Err: ErrInvalid, Message: fmt.Sprintf(
			"Volume %s is in availability zone %s and server %s in %s: a volume attaches only to a server on its own peer", volumeID, where, serverID, m.Peer.Name)}
	}
	att, err := m.Cloud.AttachVolume(ctx, e.PeerResourceID, ve.PeerResourceID)
	switch {
	case errors.Is(err, peers.ErrConflict):
		return Attachment{}, &Error{Message: fmt.Sprintf("Cannot attach volume %s to server %s: the volume or the server is in a state that does not allow it.", volumeID, serverID), Err: faults.WithCause(ErrConflict, err)}
	case errors.Is(err, peers.ErrNotFound):
		return Attachment{}, &Error{Message: fmt.Sprintf("Volume %s or server %s is gone from its cloud.", volumeID, serverID), Err: faults.WithCause(ErrNotFound, err)}
	case err != nil:
		return Attachment{}, err
	}
	return Attachment{ID: volumeID, ServerID: serverID, VolumeID: volumeID, Device: att.Device, AttachmentID: att.ID}, nil
}

// AttachOptions are what Nova's attach takes beside the volume: a device
// tag (2.49; "" is none) and whether the volume is deleted with the
// server (2.79).
type AttachOptions struct {
	Tag                 string
	DeleteOnTermination bool
}

// AttachWith is Attach with options, kept with the server: the tag shown
// on its attachments, the volume deleted when the server is.
func (s *Servers) AttachWith(ctx context.Context, c Caller, serverID, volumeID string, o AttachOptions) (Attachment, error) {
	if o.Tag != "" {
		if err := CheckTag("tag", o.Tag); err != nil {
			return Attachment{}, err
		}
	}
	a, err := s.Attach(ctx, c, serverID, volumeID)
	if err != nil || o == (AttachOptions{}) {
		return a, err
	}
	err = s.changeAttrs(ctx, c, serverID, func(at *attrs) error {
		forgetVolume(at, volumeID)
		if o.Tag != "" {
			at.DeviceTags = append(at.DeviceTags, DeviceTag{Volume: volumeID, Tag: o.Tag})
		}
		if o.DeleteOnTermination {
			at.DeleteOnTermination = append(at.DeleteOnTermination, volumeID)
		}
		return nil
	})
	if err != nil {
		return a, fmt.Errorf("keeping the options of volume %s on server %s: %w", volumeID, serverID, err)
	}
	a.Tag, a.DeleteOnTermination = o.Tag, o.DeleteOnTermination
	return a, nil
}

// forgetVolume drops what a server's attrs say of a volume no longer
// attached (or attached anew): its tag and its deletion with the server.
// The boot volume's tag stays with the Boot mark.
func forgetVolume(a *attrs, volumeID string) {
	a.DeviceTags = slices.DeleteFunc(a.DeviceTags, func(d DeviceTag) bool { return d.Volume == volumeID && !d.Boot })
	a.DeleteOnTermination = slices.DeleteFunc(a.DeleteOnTermination, func(v string) bool { return v == volumeID })
}

// SetDeleteOnTermination changes whether an attached volume is deleted
// with its server (Nova 2.85).
func (s *Servers) SetDeleteOnTermination(ctx context.Context, c Caller, serverID, volumeID string, del bool) error {
	as, err := s.Attachments(ctx, c, serverID)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(as, func(a Attachment) bool { return a.VolumeID == volumeID }) {
		return &Error{Message: fmt.Sprintf("Volume %s is not attached to server %s.", volumeID, serverID), Err: ErrNotFound}
	}
	return s.changeAttrs(ctx, c, serverID, func(a *attrs) error {
		a.DeleteOnTermination = slices.DeleteFunc(a.DeleteOnTermination, func(v string) bool { return v == volumeID })
		if del {
			a.DeleteOnTermination = append(a.DeleteOnTermination, volumeID)
		}
		return nil
	})
}

// deleteVolumesOf deletes, through the volume service, the volumes a
// deleted server was to take with it, once its peer has let them go (a
// volume still attached is refused as in use: tried again, backing off,
// for as long as a root volume may take to make). A broker that stops
// before leaves them to the project, listed and deletable like any.
func (s *Servers) deleteVolumesOf(c Caller, serverID string, ids []string) {
	ctx, cancel := context.WithTimeout(context.Background(), s.volumeTimeout())
	defer cancel()
	for _, id := range ids {
		wait := volumePoll
		for {
			err := s.Volumes.Delete(ctx, c.volume(), id)
			if err == nil || errors.Is(err, volume.ErrNotFound) || errors.Is(err, peers.ErrNotFound) {
				s.Log.WithFields(logrus.Fields{"server": serverID, "volume": id}).Info("volume deleted with its server")
				break
			}
			if !errors.Is(err, peers.ErrConflict) {
				s.Log.WithError(err).WithFields(logrus.Fields{"server": serverID, "volume": id}).Warn("volume to delete with its server not deleted; it stays the project's")
				break
			}
			select {
			case <-ctx.Done():
				s.Log.WithError(err).WithFields(logrus.Fields{"server": serverID, "volume": id}).Warn("volume to delete with its server still in use; it stays the project's")
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, 5*time.Second)
		}
	}
}

// volumeTag is the device tag of a server's volume, if it has one.
func volumeTag(tags []DeviceTag, volumeID, bootVolume string) string {
	for _, d := range tags {
		if d.Volume == volumeID && volumeID != "" || d.Boot && volumeID == bootVolume && bootVolume != "" {
			return d.Tag
		}
	}
	return ""
}

// Detach detaches a volume from a server; one not attached to it is
// ErrNotFound.
func (s *Servers) Detach(ctx context.Context, c Caller, serverID, volumeID string) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout()) // one peer's call: bounded like a fan-out's part
	defer cancel()
	e, m, err := s.lookup(ctx, c, serverID)
	if err != nil {
		return err
	}
	if err := s.checkLock(ctx, c, serverID); err != nil {
		return err
	}
	nf := &Error{Message: fmt.Sprintf("Volume %s is not attached to server %s.", volumeID, serverID), Err: ErrNotFound}
	ve, err := s.volumeOf(ctx, c, volumeID)
	if errors.Is(err, ErrNotFound) || err == nil && ve.PeerID != e.PeerID {
		return nf
	}
	if err != nil {
		return err
	}
	err = m.Cloud.DetachVolume(ctx, e.PeerResourceID, ve.PeerResourceID)
	switch {
	case errors.Is(err, peers.ErrNotFound):
		return nf
	case errors.Is(err, peers.ErrConflict):
		return &Error{Message: fmt.Sprintf("Cannot detach volume %s from server %s: the volume or the server is in a state that does not allow it.", volumeID, serverID), Err: faults.WithCause(ErrConflict, err)}
	case err != nil:
		return err
	}
	// A detached volume is no longer the server's to tag or take along.
	if err := s.changeAttrs(ctx, c, serverID, func(a *attrs) error { forgetVolume(a, volumeID); return nil }); err != nil {
		s.Log.WithError(err).WithFields(logrus.Fields{"server": serverID, "volume": volumeID}).Warn("a detached volume's tag or deletion with the server still recorded")
	}
	return nil
}

// Attachments lists the volumes attached to a server (a boot volume
// included).
func (s *Servers) Attachments(ctx context.Context, c Caller, serverID string) ([]Attachment, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout()) // one peer's call: bounded like a fan-out's part
	defer cancel()
	e, m, err := s.lookup(ctx, c, serverID)
	if err != nil {
		return nil, err
	}
	srv, err := s.peerServer(ctx, e, m)
	if err != nil {
		return nil, err
	}
	vols, err := s.volumeIDs(ctx, c.Project)
	if err != nil {
		return nil, err
	}
	kept, err := s.attrStore().View(ctx, c.Project, serverID)
	if err != nil {
		return nil, err
	}
	boot := srv.Metadata[metaBootVolume]
	out := []Attachment{}
	for _, pv := range srv.Volumes {
		id := cmpOr(vols[m.Peer.ID+"/"+pv], pv)
		a := Attachment{ID: id, ServerID: serverID, VolumeID: id, Tag: volumeTag(kept.DeviceTags, id, boot),
			DeleteOnTermination: slices.Contains(kept.DeleteOnTermination, id) || kept.BootDeleteOnTermination && id == boot}
		if v, err := m.Cloud.GetVolume(ctx, pv); err == nil {
			for _, va := range v.Attachments {
				if va.ServerID == srv.ID {
					a.Device, a.AttachmentID = va.Device, va.ID
				}
			}
		}
		out = append(out, a)
	}
	return out, nil
}

// Interface is a server's NIC as Nova's os-interface shows it, by
// broker IDs only, as the network API shows the same port.
type Interface struct {
	PortID    string
	NetworkID string
	MAC       string
	State     string
	FixedIPs  []peers.FixedIP
	// Tag is the device tag the create gave the NIC (Nova 2.32/2.42).
	Tag string
}

// Interfaces lists a server's NICs: the ports bound to it on its peer,
// through the network service.
func (s *Servers) Interfaces(ctx context.Context, c Caller, serverID string) ([]Interface, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout()) // one peer's call: bounded like a fan-out's part
	defer cancel()
	e, _, err := s.lookup(ctx, c, serverID)
	if err != nil {
		return nil, err
	}
	ports, err := s.Networks.ServerPorts(ctx, c.Project, e)
	if err != nil {
		return nil, err
	}
	kept, err := s.attrStore().View(ctx, c.Project, serverID)
	if err != nil {
		return nil, err
	}
	tags := nicTags(kept.DeviceTags, ports)
	out := []Interface{}
	for _, p := range ports {
		out = append(out, Interface{PortID: p.Ref.ID, NetworkID: p.NetworkID, MAC: p.Peer.MACAddress, State: p.Peer.Status, FixedIPs: p.FixedIPs, Tag: tags[p.Ref.ID]})
	}
	return out, nil
}

// nicTags matches the create's NIC tags to a server's ports: a tag asked
// for on a port is that port's; one asked for on a network goes to a
// port on that network not tagged yet, in the order the NICs were asked.
func nicTags(tags []DeviceTag, ports []network.Port) map[string]string {
	out := map[string]string{}
	for _, d := range tags {
		if d.Port != "" {
			out[d.Port] = d.Tag
		}
	}
	for _, d := range tags {
		if d.Port != "" || d.Network == "" {
			continue
		}
		for _, p := range ports {
			if _, taken := out[p.Ref.ID]; !taken && p.NetworkID == d.Network {
				out[p.Ref.ID] = d.Tag
				break
			}
		}
	}
	return out
}
