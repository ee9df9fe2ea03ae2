package compute

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/faults"
	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

// attrs are what the broker keeps of a server because peers cannot: a
// rename and the metadata set after the boot, and the Nova fields no peer
// holds (description, hostname, tags, access IPs, device tags, the
// multi-create reservation), written before the boot.
type attrs struct {
	Name *string `json:"name,omitempty"`
	// Metadata replaces the peer's user metadata when MetadataSet.
	Metadata    map[string]string `json:"metadata,omitempty"`
	MetadataSet bool              `json:"metadata_set,omitempty"`
	UpdatedAt   time.Time         `json:"updated_at,omitzero"`

	Description   *string     `json:"description,omitempty"`
	Hostname      string      `json:"hostname,omitempty"`
	Tags          []string    `json:"tags,omitempty"`
	AccessIPv4    string      `json:"access_ipv4,omitempty"`
	AccessIPv6    string      `json:"access_ipv6,omitempty"`
	DeviceTags    []DeviceTag `json:"device_tags,omitempty"`
	ReservationID string      `json:"reservation_id,omitempty"`
	LaunchIndex   int         `json:"launch_index,omitempty"`
	UserData      string      `json:"user_data,omitempty"` // base64
	// DeleteOnTermination are the volumes (broker IDs) deleted with the
	// server; BootDeleteOnTermination asks it of a boot volume made from
	// an image, whose ID is known only once it exists.
	DeleteOnTermination     []string `json:"delete_on_termination,omitempty"`
	BootDeleteOnTermination bool     `json:"boot_delete_on_termination,omitempty"`
	// What a server whose peer does not answer is still shown with
	// (Nova 2.69): its user, flavor and image as created.
	User        string      `json:"user,omitempty"`
	Flavor      string      `json:"flavor,omitempty"`
	FlavorSizes *keptFlavor `json:"flavor_sizes,omitempty"`
	Image       string      `json:"image,omitempty"`
	// Locked is Nova's lock (lifecycle.go): LockedBy is "owner" or
	// "admin" as Nova shows it, LockedByUser the user who locked.
	Locked       bool   `json:"locked,omitempty"`
	LockedBy     string `json:"locked_by,omitempty"`
	LockedByUser string `json:"locked_by_user,omitempty"`
	LockedReason string `json:"locked_reason,omitempty"`
	// ResizeFrom and ResizeTo are what a resizing server counted before
	// and will count after (resize.go), until the resize is settled.
	ResizeFrom quota.Amounts `json:"resize_from,omitempty"`
	ResizeTo   quota.Amounts `json:"resize_to,omitempty"`
	// ServerGroup is the server group (broker ID) the server joined at
	// its create (servergroups.go); empty when none or once deleted.
	ServerGroup string `json:"server_group,omitempty"`
	// Flavors name the broker flavor of each peer flavor a resize gave
	// the server (by the peer's flavor ID): the peer's server keeps the
	// flavor it was created with in its marks.
	Flavors map[string]flavorName `json:"flavors,omitempty"`
}

// keptFlavor is a server's flavor as it booted (Nova embeds it, 2.47).
type keptFlavor struct {
	Name                             string `json:"name"`
	VCPUs, RAMMiB, DiskGiB, EphemGiB int    `json:",omitempty"`
}

// flavorName is a broker flavor's ID and name.
type flavorName struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

const attrsRoot = "compute/server-attrs/"

// volumeIDs maps a project's indexed volumes by index.PeerKey to their
// broker IDs.
func (s *Servers) volumeIDs(ctx context.Context, project string) (map[string]string, error) {
	entries, err := s.Index.List(ctx, kindVolume, project)
	if err != nil {
		return nil, err
	}
	return index.BrokerIDs(entries), nil
}

// present shows a peer's server as the broker does: under its broker ID,
// with broker IDs for its flavor, image and volumes and without cloudmux_
// metadata. flavor is the peer's flavor of the server, when known.
func (s *Servers) present(e index.Entry, m *peers.Member, srv peers.Server, a attrs, vols map[string]string, flavor ...peers.Flavor) Server {
	meta := srv.Metadata
	out := Server{
		ID: e.ID, Name: srv.Name, Status: srv.Status, Project: e.Project, UserID: meta[metaUser],
		FlavorID: cmpOr(meta[metaFlavor], srv.FlavorID), FlavorName: meta[metaFlavorName],
		ImageID: cmpOr(meta[metaImage], srv.ImageID), BootVolume: meta[metaBootVolume],
		KeyName: cmpOr(meta[metaKeyName], srv.KeyName), Zone: m.Peer.Name, PeerID: m.Peer.ID, PeerServerID: srv.ID,
		Host: srv.Host, Addresses: slices.Clone(srv.Addresses), Fault: srv.Fault, CreatedAt: srv.CreatedAt, UpdatedAt: srv.UpdatedAt, Task: srv.Task,
		Metadata: map[string]string{},
	}
	if out.BootVolume != "" {
		out.ImageID = ""
	}
	// From memory: no request waits on it (a list presents every server).
	out.SecurityGroups = s.serverGroups(context.Background(), e.Project, e.ID)
	if f, ok := a.Flavors[srv.FlavorID]; ok { // resized: the marks name the flavor it was created with
		out.FlavorID, out.FlavorName = f.ID, f.Name
	}
	if len(flavor) > 0 && flavor[0].ID != "" {
		f := flavor[0]
		out.VCPUs, out.RAMMiB, out.DiskGiB = f.VCPUs, f.RAMMiB, f.DiskGiB
		out.EphemeralGiB, out.FlavorExtraSpecs = f.EphemeralGiB, maps.Clone(f.ExtraSpecs)
		out.FlavorName = cmpOr(out.FlavorName, f.Name)
	}
	for _, v := range srv.Volumes {
		out.Volumes = append(out.Volumes, cmpOr(vols[index.PeerKey(m.Peer.ID, v)], v))
	}
	for k, v := range meta {
		if !strings.HasPrefix(k, reservedMetaPre) {
			out.Metadata[k] = v
		}
	}
	if a.Name != nil {
		out.Name = *a.Name
	}
	if a.MetadataSet {
		out.Metadata = maps.Clone(a.Metadata)
		if out.Metadata == nil {
			out.Metadata = map[string]string{}
		}
	}
	if a.UpdatedAt.After(out.UpdatedAt) {
		out.UpdatedAt = a.UpdatedAt
	}
	a.show(&out)
	out.HostStatus = hostStatus(m)
	out.Locked, out.LockedBy, out.LockedReason = a.Locked, a.LockedBy, a.LockedReason
	return out
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// lookup finds a server of the caller's project and its connected peer.
func (s *Servers) lookup(ctx context.Context, c Caller, id string) (index.Entry, *peers.Member, error) {
	e, m, err := s.Index.Locate(ctx, s.Pool, KindServer, id, c.Project)
	switch {
	case errors.Is(err, index.ErrNotFound):
		return e, nil, notFound(id)
	case errors.Is(err, index.ErrNotConnected):
		return e, nil, &Error{Message: fmt.Sprintf("The peer holding server %s is not connected; try again later.", id), Err: ErrUnavailable}
	}
	return e, m, err
}

// peerServer reads the peer's server; one gone from its peer is not found.
func (s *Servers) peerServer(ctx context.Context, e index.Entry, m *peers.Member) (peers.Server, error) {
	srv, err := m.Cloud.GetServer(ctx, e.PeerResourceID)
	if errors.Is(err, peers.ErrNotFound) {
		return srv, notFound(e.ID)
	}
	return srv, err
}

// Get returns a server of the caller's project.
func (s *Servers) Get(ctx context.Context, c Caller, id string) (Server, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout()) // one peer's call: bounded like a fan-out's part
	defer cancel()
	e, m, err := s.lookup(ctx, c, id)
	if err != nil {
		return Server{}, err
	}
	srv, err := s.peerServer(ctx, e, m)
	if err != nil {
		return Server{}, err
	}
	a, err := s.attrStore().View(ctx, c.Project, id)
	if err != nil {
		return Server{}, err
	}
	var vols map[string]string
	if len(srv.Volumes) > 0 { // a lookup only when there is something to translate
		if vols, err = s.volumeIDs(ctx, c.Project); err != nil {
			return Server{}, err
		}
	}
	f, _ := s.flavors.get(ctx, m, srv.FlavorID) // sizes are a nicety: a peer that dropped the flavor still shows the server
	return s.present(e, m, srv, a, vols, f), nil
}

// Query narrows and pages a list. Empty fields match everything.
type Query struct {
	// Name is matched as Nova does, as an unanchored regular expression
	// (Go's syntax, close to Python's for the usual patterns); a pattern
	// that does not compile matches as a plain substring.
	Name string
	// Status is a Nova status (ACTIVE, SHUTOFF, ...), case-insensitive.
	Status string
	// ChangesSince keeps servers updated at or after it. Deleted servers
	// are not listed (the broker forgets them at once).
	ChangesSince time.Time
	// IDs keeps only these servers (EC2's instance IDs).
	IDs []string
	// Image and Flavor keep servers booted from this broker image ID or
	// with this flavor ID; Zone those in this availability zone (peer).
	Image, Flavor, Zone string
	// IP is matched against the addresses as Name is against the name.
	IP string
	// Limit caps the page (0: no cap); Marker is the last ID of the
	// previous page.
	Limit  int
	Marker string
	// AllProjects lists every project's servers (Nova's all_tenants): a
	// cloud admin's only; anyone else asking is refused (ErrForbidden).
	AllProjects bool
	// ChangesBefore keeps servers updated at or before it (Nova 2.66).
	ChangesBefore time.Time
	// Tags keeps servers with every one of these tags, TagsAny those with
	// at least one, NotTags those lacking at least one of them and
	// NotTagsAny those with none of them (Nova 2.26).
	Tags, TagsAny, NotTags, NotTagsAny []string
	// ReservationID keeps the servers of one multi-create.
	ReservationID string
	// Match, when set, keeps only the servers it accepts: the front end's
	// own filters on the attributes it shows.
	Match func(Server) bool
	// Sort, when set, orders the servers (a negative answer puts a first)
	// instead of newest first; ties keep that order.
	Sort func(a, b Server) int
	// Unreachable lists the servers of peers that did not answer as
	// minimal servers (Unreachable set) instead of leaving them out; they
	// are still named in Page.Failed.
	Unreachable bool
}

// Page is one page of servers, newest first (then by ID), as Nova orders.
type Page struct {
	Servers []Server
	// More reports that servers follow this page.
	More bool
	// Failed names the peers that did not answer (or are not connected):
	// their servers are missing from the page.
	Failed []string
}

// List merges the project's servers from every peer holding some, in
// parallel, each peer under the per-peer deadline.
func (s *Servers) List(ctx context.Context, c Caller, q Query) (Page, error) {
	if q.Limit < 0 {
		return Page{}, invalid("limit", "Invalid input: limit must be a non-negative integer")
	}
	if q.AllProjects && !c.Admin {
		return Page{}, fmt.Errorf("listing every project's servers takes a cloud admin: %w", ErrForbidden)
	}
	project, filter := c.Project, map[string]string{peers.MetaProject: c.Project}
	if q.AllProjects {
		project, filter = "", map[string]string{peers.MetaBrokerID: s.BrokerID}
	}
	nameRE, _ := regexp.Compile(q.Name)
	ipRE, _ := regexp.Compile(q.IP)
	entries, err := s.Index.List(ctx, KindServer, project)
	if err != nil {
		return Page{}, err
	}
	if len(q.IDs) > 0 {
		entries = slices.DeleteFunc(entries, func(e index.Entry) bool { return !slices.Contains(q.IDs, e.ID) })
	}
	spread := index.SpreadOver(entries, s.Pool)
	failed := spread.Failed
	type answer struct {
		servers []peers.Server
		flavors map[string]peers.Flavor
	}
	res := peers.Gather(ctx, spread.Members, s.timeout(), func(ctx context.Context, m *peers.Member) (answer, error) {
		srvs, err := m.Cloud.ListServers(ctx, peers.ListOptions{Metadata: filter})
		if err != nil {
			return answer{}, err
		}
		return answer{servers: srvs, flavors: s.flavors.all(ctx, m)}, nil
	})
	all, err := s.attrStore().Project(ctx, project) // by server ID
	if err != nil {
		return Page{}, err
	}
	var vols map[string]string
	for _, r := range res {
		for _, srv := range r.Value.servers {
			if len(srv.Volumes) > 0 && vols == nil {
				if vols, err = s.volumeIDs(ctx, project); err != nil {
					return Page{}, err
				}
			}
		}
	}
	var items []Server
	answered := map[string]bool{}
	for _, r := range res {
		if r.Err != nil {
			failed = append(failed, r.Member.Peer.Name)
			s.Log.WithError(r.Err).WithField("peer", r.Member.Peer.Name).Warn("server list: peer did not answer")
			continue
		}
		answered[r.Member.Peer.ID] = true
		for _, srv := range r.Value.servers {
			if e, ok := spread.Entry(r.Member, srv.ID); ok {
				items = append(items, s.present(e, r.Member, srv, all[e.ID], vols, r.Value.flavors[srv.FlavorID]))
			}
		}
	}
	if q.Unreachable {
		for _, e := range entries {
			if !answered[e.PeerID] {
				items = append(items, s.stub(e, all[e.ID]))
			}
		}
	}
	slices.Sort(failed)
	slices.SortStableFunc(items, func(a, b Server) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	if q.Sort != nil {
		slices.SortStableFunc(items, q.Sort)
	}
	page := Page{Failed: failed, Servers: []Server{}}
	started := q.Marker == ""
	for _, it := range items {
		if !started {
			started = it.ID == q.Marker
			continue
		}
		if !q.matches(it, nameRE, ipRE) {
			continue
		}
		if q.Limit > 0 && len(page.Servers) == q.Limit {
			page.More = true
			break
		}
		page.Servers = append(page.Servers, it)
	}
	if !started {
		return Page{}, invalid("marker", "marker [%s] not found", q.Marker)
	}
	return page, nil
}

func (q Query) matches(srv Server, nameRE, ipRE *regexp.Regexp) bool {
	if q.Name != "" && !pattern(q.Name, nameRE, srv.Name) {
		return false
	}
	if q.Status != "" && !strings.EqualFold(string(srv.Status), q.Status) {
		return false
	}
	if !q.ChangesSince.IsZero() && srv.UpdatedAt.Before(q.ChangesSince) {
		return false
	}
	if q.Image != "" && srv.ImageID != q.Image || q.Flavor != "" && srv.FlavorID != q.Flavor || q.Zone != "" && srv.Zone != q.Zone {
		return false
	}
	if q.IP != "" && !slices.ContainsFunc(srv.Addresses, func(a peers.Address) bool { return pattern(q.IP, ipRE, a.Addr) }) {
		return false
	}
	if !q.ChangesBefore.IsZero() && srv.UpdatedAt.After(q.ChangesBefore) || q.ReservationID != "" && srv.ReservationID != q.ReservationID {
		return false
	}
	if !matchTags(srv.Tags, q.Tags, q.TagsAny, q.NotTags, q.NotTagsAny) {
		return false
	}
	return q.Match == nil || q.Match(srv)
}

// matchTags applies Nova's four tag filters to a server's tags.
func matchTags(tags, all, anyOf, notAll, notAny []string) bool {
	has := func(t string) bool { return slices.Contains(tags, t) }
	switch {
	case len(all) > 0 && !allOf(all, has):
		return false
	case len(anyOf) > 0 && !slices.ContainsFunc(anyOf, has):
		return false
	case len(notAll) > 0 && allOf(notAll, has):
		return false
	case len(notAny) > 0 && slices.ContainsFunc(notAny, has):
		return false
	}
	return true
}

func allOf(ts []string, has func(string) bool) bool {
	for _, t := range ts {
		if !has(t) {
			return false
		}
	}
	return true
}

// stub is a server whose peer did not answer, from what the broker keeps
// (Nova 2.69's minimal construct of a server in a down cell).
func (s *Servers) stub(e index.Entry, a attrs) Server {
	zone := "UNKNOWN" // the peer left the pool: Nova's word for a zone it cannot tell
	if m, ok := s.Pool.Get(e.PeerID); ok {
		zone = m.Peer.Name
	}
	out := Server{ID: e.ID, Name: e.Name, Status: StatusUnknown, Project: e.Project, UserID: a.User, FlavorID: a.Flavor,
		ImageID: a.Image, Zone: zone, PeerID: e.PeerID, CreatedAt: e.CreatedAt, UpdatedAt: e.CreatedAt, Metadata: map[string]string{},
		Unreachable: true, HostStatus: "UNKNOWN"}
	if f := a.FlavorSizes; f != nil {
		out.FlavorName, out.VCPUs, out.RAMMiB, out.DiskGiB, out.EphemeralGiB = f.Name, f.VCPUs, f.RAMMiB, f.DiskGiB, f.EphemGiB
	}
	a.show(&out)
	return out
}

// StatusUnknown is the status of a server whose peer did not answer.
const StatusUnknown peers.ServerStatus = "UNKNOWN"

// Stub returns what the broker keeps of one of the caller's servers
// without asking its peer (for a peer that does not answer): Nova 2.69's
// minimal server.
func (s *Servers) Stub(ctx context.Context, c Caller, id string) (Server, error) {
	e, err := s.Index.Get(ctx, KindServer, id, c.Project)
	if errors.Is(err, index.ErrNotFound) {
		return Server{}, notFound(id)
	}
	if err != nil {
		return Server{}, err
	}
	a, err := s.attrStore().View(ctx, c.Project, id)
	if err != nil {
		return Server{}, err
	}
	return s.stub(e, a), nil
}

// pattern matches s as Nova matches name and ip filters: a regular
// expression, or a substring when the pattern does not compile.
func pattern(p string, re *regexp.Regexp, s string) bool {
	if re != nil {
		return re.MatchString(s)
	}
	return strings.Contains(s, p)
}

// Update changes what the broker keeps of a server; nil fields stay.
type Update struct {
	Name *string
	// Metadata is merged into the server's metadata, or replaces it all
	// with ReplaceMetadata (Nova's PUT /servers/{id}/metadata).
	Metadata        map[string]string
	ReplaceMetadata bool
	// DeleteMetadata removes keys; a key the server lacks is ErrNotFound.
	DeleteMetadata []string
	// Description sets the description; ClearDescription removes it.
	Description      *string
	ClearDescription bool
	// Hostname sets the hostname the server shows (checked by
	// CheckHostname unless FQDNHostname, Nova 2.94's rule).
	Hostname     *string
	FQDNHostname bool
	// AccessIPv4 and AccessIPv6 set the recorded access addresses ("" to
	// clear).
	AccessIPv4, AccessIPv6 *string
}

// check refuses the changes Nova would refuse.
func (u Update) check() error {
	var errs []error
	if u.Name != nil && (strings.TrimSpace(*u.Name) == "" || len(*u.Name) > 255) {
		errs = append(errs, invalid("name", "Invalid input for field/attribute name: want 1 to 255 characters, not all spaces"))
	}
	if u.Description != nil {
		errs = append(errs, CheckDescription(*u.Description))
	}
	if u.Hostname != nil {
		if u.FQDNHostname {
			errs = append(errs, checkFQDN(*u.Hostname))
		} else {
			errs = append(errs, CheckHostname(*u.Hostname))
		}
	}
	v4, v6 := "", ""
	if u.AccessIPv4 != nil {
		v4 = *u.AccessIPv4
	}
	if u.AccessIPv6 != nil {
		v6 = *u.AccessIPv6
	}
	errs = append(errs, checkAccessIPs(v4, v6), checkMetadata(u.Metadata))
	return errors.Join(errs...)
}

// apply makes the changes that need no look at the server.
func (u Update) apply(a *attrs) {
	if u.Name != nil {
		a.Name = u.Name
	}
	switch {
	case u.ClearDescription:
		a.Description = nil
	case u.Description != nil:
		a.Description = u.Description
	}
	if u.Hostname != nil {
		a.Hostname = *u.Hostname
	}
	if u.AccessIPv4 != nil {
		a.AccessIPv4 = *u.AccessIPv4
	}
	if u.AccessIPv6 != nil {
		a.AccessIPv6 = *u.AccessIPv6
	}
}

// Update renames a server or changes its metadata, and returns it.
func (s *Servers) Update(ctx context.Context, c Caller, id string, u Update) (Server, error) {
	if err := u.check(); err != nil {
		return Server{}, err
	}
	for attempt := 0; ; attempt++ {
		cur, err := s.Get(ctx, c, id)
		if err != nil {
			return Server{}, err
		}
		a, at, err := s.attrStore().Load(ctx, c.Project, id)
		if err != nil {
			return Server{}, err
		}
		if a.Locked && !c.Admin && (u.Metadata != nil || len(u.DeleteMetadata) > 0) { // Nova locks metadata, not the name
			return Server{}, &Error{Message: fmt.Sprintf("Instance %s is locked", id), Err: ErrConflict}
		}
		u.apply(&a)
		if u.Metadata != nil || len(u.DeleteMetadata) > 0 {
			meta := cur.Metadata
			if u.ReplaceMetadata {
				meta = map[string]string{}
			}
			maps.Copy(meta, u.Metadata)
			for _, k := range u.DeleteMetadata {
				if _, ok := meta[k]; !ok {
					return Server{}, &Error{Field: "metadata", Message: fmt.Sprintf("Metadata item was not found: %s", k), Err: ErrNotFound}
				}
				delete(meta, k)
			}
			if err := checkMetadata(meta); err != nil {
				return Server{}, err
			}
			a.Metadata, a.MetadataSet = meta, true
		}
		a.UpdatedAt = time.Now().UTC()
		err = s.attrStore().CAS(ctx, c.Project, id, a, at)
		if errors.Is(err, registry.ErrConflict) && attempt < 5 {
			continue // a concurrent update: read again and reapply
		}
		if err != nil {
			return Server{}, err
		}
		return s.Get(ctx, c, id)
	}
}

// Delete starts deleting a server on its peer and forgets it at once:
// later calls answer ErrNotFound, as Nova's do once a server is gone.
func (s *Servers) Delete(ctx context.Context, c Caller, id string) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout()) // one peer's call: bounded like a fan-out's part
	defer cancel()
	e, m, err := s.lookup(ctx, c, id)
	if err != nil {
		return err
	}
	if err := s.checkLock(ctx, c, id); err != nil {
		return err
	}
	kept, err := s.attrStore().View(ctx, c.Project, id)
	if err != nil {
		return err
	}
	if err := m.Cloud.DeleteServer(ctx, e.PeerResourceID); err != nil && !errors.Is(err, peers.ErrNotFound) {
		return fmt.Errorf("deleting server %s on %s: %w", id, m.Peer.Name, err)
	}
	// The call that removed the entry frees the charge, even when the
	// project's copy of the entry could not go too (the error asks for a
	// retry, which frees nothing again).
	gone, removed, err := s.Index.Remove(ctx, e)
	if removed {
		if ferr := s.Quota.Free(context.WithoutCancel(ctx), quota.Scope{Project: gone.Project}, gone.Charge); ferr != nil {
			s.Log.WithError(ferr).WithField("server", id).Error("a deleted server's quota not freed; it stays counted")
		}
	}
	if err != nil {
		return err
	}
	// Its ports went with it (their quota with its charge).
	if err := s.Networks.ForgetServerPorts(ctx, c.Project, id); err != nil {
		s.Log.WithError(err).WithField("server", id).Warn("the entries of a deleted server's ports stay until the network discovery drops them")
	}
	if err := s.attrStore().Delete(ctx, c.Project, id); err != nil {
		s.Log.WithError(err).WithField("server", id).Warn("server attributes left behind")
	}
	s.forgetActions(ctx, c.Project, id)
	if kept.ServerGroup != "" {
		s.leaveGroup(ctx, c, kept.ServerGroup, id)
	}
	s.Log.WithFields(logrus.Fields{"server": id, "peer": m.Peer.Name, "project": c.Project}).Info("server deleted")
	if len(kept.DeleteOnTermination) > 0 && s.Volumes != nil {
		go s.deleteVolumesOf(c, id, kept.DeleteOnTermination)
	}
	return nil
}

// Console returns the last lines of a server's console (all of it when
// lines <= 0). A peer that cannot read consoles is peers.ErrNotSupported.
func (s *Servers) Console(ctx context.Context, c Caller, id string, lines int) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout()) // one peer's call: bounded like a fan-out's part
	defer cancel()
	e, m, err := s.lookup(ctx, c, id)
	if err != nil {
		return "", err
	}
	cr, ok := m.Cloud.(peers.ConsoleReader)
	if !ok {
		return "", fmt.Errorf("peer %s cannot read consoles: %w", m.Peer.Name, peers.ErrNotSupported)
	}
	out, err := cr.ConsoleOutput(ctx, e.PeerResourceID, lines)
	switch {
	case errors.Is(err, peers.ErrConflict):
		return "", &Error{Message: fmt.Sprintf("Instance %s has no console yet.", id), Err: faults.WithCause(ErrConflict, err)}
	case errors.Is(err, peers.ErrNotFound):
		return "", notFound(id)
	}
	return out, err
}
