package compute

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/faults"
	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/image"
	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/broker/network"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/broker/staging"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/registry"
)

// Index kinds the servers service reads and writes.
const (
	KindServer = "server"
	kindVolume = "volume"
)

// Metadata keys the broker writes on a peer's server, beside peers.MetaID,
// MetaProject and MetaBrokerID, so a server shows its broker-side facts
// without a lookup and the index can be rebuilt. Users never see cloudmux_
// keys, and may not set them.
const (
	metaUser        = "cloudmux_user"
	metaFlavor      = "cloudmux_flavor"      // broker flavor ID
	metaFlavorName  = "cloudmux_flavor_name" // its name
	metaImage       = "cloudmux_image"       // broker image ID
	metaKeyName     = "cloudmux_key_name"    // the user's keypair name
	metaBootVolume  = "cloudmux_boot_volume" // broker volume ID
	reservedMetaPre = "cloudmux_"
)

// Nova's limits on server metadata and user data.
const (
	maxMetadataItems = 128
	maxMetadataLen   = 255
	// MaxUserData is Nova's limit on user_data: 65535 bytes of base64.
	MaxUserData = 65535
)

// Pool is the part of peers.Pool the servers service uses.
type Pool interface {
	Members() []*peers.Member
	Get(id string) (*peers.Member, bool)
}

// Images is the part of image.Service servers use to resolve imageRef:
// the image the caller may use, its peer and its ID there.
type Images interface {
	Resolve(ctx context.Context, c image.Caller, id string) (image.Image, error)
}

var _ Images = (*image.Service)(nil)

// Networks is the part of network.Service servers use to resolve the
// networks and ports a request names (kinds network.KindNetwork and
// network.KindPort): Ref.Member and Ref.PeerResourceID say where they
// are.
type Networks interface {
	Resolve(ctx context.Context, project, kind, id string) (network.Ref, error)
	// Attachable refuses a network the project sees but may not put NICs
	// on (another's external network).
	Attachable(ctx context.Context, project string, net network.Ref) error
	// ServerPorts lists the ports bound to a server (its index entry),
	// by broker IDs; the ports its peer made for it are indexed on sight.
	ServerPorts(ctx context.Context, project string, server index.Entry) ([]network.Port, error)
	// ForgetServerPorts drops the index entries of the ports a peer made
	// for a server once it is deleted.
	ForgetServerPorts(ctx context.Context, project, serverID string) error
}

var _ Networks = (*network.Service)(nil)

// Stager is the part of staging.Stager servers use to copy an image to
// the peer a server is placed on when that peer does not hold it.
type Stager interface {
	Ensure(ctx context.Context, img peers.Image, src, dst *peers.Member) (staging.Replica, error)
	Replicas(ctx context.Context, imageID string) ([]staging.Replica, error)
}

var _ Stager = (*staging.Stager)(nil)

// Quota is the part of quota.Ledger the servers service uses: a server
// reserves its instances, cores and ram before it is placed, commits them
// when its peer made it and frees them when it is deleted, so concurrent
// creates on any number of brokers never pass a project's limits. The
// placement policy is still handed the usage and the quota, and may be
// stricter; it can never be more generous.
type Quota interface {
	Reserve(ctx context.Context, s quota.Scope, want quota.Amounts, what string) (*quota.Reservation, error)
	Free(ctx context.Context, s quota.Scope, amounts quota.Amounts) error
	Usage(ctx context.Context, s quota.Scope) (used, reserved quota.Amounts, err error)
	Quota(ctx context.Context, project string) (quota.Amounts, error)
}

var _ Quota = (*quota.Ledger)(nil)

// Servers is the compute service layer: servers routed across the peers
// of the pool. The Nova API (this package's HTTP handlers) and the EC2 API
// (RunInstances, DescribeInstances, Start/Stop/Reboot/TerminateInstances,
// GetConsoleOutput, AttachVolume/DetachVolume) both call it, so they apply
// the same placement, tenancy and ID rules.
//
//   - IDs: every server gets a broker-wide UUID, recorded in the resource
//     index (kind "server") with its peer and its ID there, and written on
//     the peer's server as metadata (peers.MetaID, MetaProject,
//     MetaBrokerID), so the index can be rebuilt by scanning the peers.
//     Flavor, image, volume and keypair references are shown by their
//     broker IDs and names, never the peer's.
//   - Tenancy: a caller sees and touches only its project's servers; any
//     other ID is ErrNotFound (never "forbidden": existence does not leak).
//   - Placement: Create resolves every reference first (flavor by broker ID
//     or name; image through Images, with Glance's visibility; networks and
//     ports through Networks, with Neutron's; a boot volume through the
//     index), keeps as candidates the connected peers holding all of them
//     (each other peer gets its reason; with a Stager, a peer lacking only
//     the image stays a candidate if the image can be copied there), asks
//     Placer, and tries the allowed peers best first (among equals, those
//     holding the image first): a peer out of capacity, unreachable or
//     failing the copy hands over to the next. The copy (a stream, checksummed)
//     happens before Create returns. The index write is rolled back (the peer's
//     server deleted) if it fails.
//   - Lists fan out to the peers holding the project's servers in
//     parallel, each under PeerTimeout; peers that do not answer are named
//     in Page.Failed and their servers left out, never waited for.
//
// Errors wrap this package's sentinels (ErrNotFound, ErrInvalid,
// ErrConflict, ErrNoValidHost, ErrUnavailable), themselves wrapping the
// peers sentinels; refusals of a request attribute are *Error naming the
// field (FieldOf). Its zero value is not usable: set Pool, Index, Placer,
// Images, Networks, Keypairs, Store and Log; BrokerID marks the servers this
// installation creates.
type Servers struct {
	Pool     Pool
	Index    *index.Index
	Placer   policy.Placer
	Images   Images
	Networks Networks
	// Stager, when set, copies an image to a peer that lacks it: every
	// peer that can receive image bytes is then a candidate for an image
	// server, not only those holding the image. Nil keeps servers on the
	// peers holding their image.
	Stager Stager
	// Quota counts and limits what projects use (required).
	Quota Quota
	// QuotaAdmin, when set, lets cloud admins change quotas through
	// os-quota-sets; without it they are read only.
	QuotaAdmin QuotaAdmin
	Keypairs   *KeypairStore
	// Store keeps what peers cannot: renames and metadata changes made
	// after the boot (peers.Compute has no update).
	Store Store
	// Attrs, when set (and running), serves those from memory; without
	// it views read the Store.
	Attrs *ServerAttrs
	// GroupMemory, when set (and running), serves server groups from
	// memory; without it they are read from the Store.
	GroupMemory *ServerGroups
	// FlavorAttrs, when set (and running), serves flavor descriptions
	// from memory; without it they are read from the Store.
	FlavorAttrs *FlavorAttrs
	Log         logrus.FieldLogger
	// BrokerID is written on every server the broker creates.
	BrokerID string
	// PeerTimeout bounds each peer's part of a fan-out; default 10s.
	PeerTimeout time.Duration
	// VolumeTimeout bounds the making of a root volume from an image;
	// default DefaultVolumeTimeout.
	VolumeTimeout time.Duration
	// Volumes, when set, lets servers attach the project's volumes and
	// boot from new volumes (volume.Service, behind Cinder and EC2 too).
	Volumes Volumes

	flavors flavorCache
}

// Caller is who asks: the project its token is scoped to, the user, and
// whether it is a cloud admin (who may use any project's images).
type Caller struct {
	Project string
	User    string
	Admin   bool
}

// CallerOf returns the caller a Keystone token stands for.
func CallerOf(t identity.Token) Caller {
	return Caller{Project: t.ProjectID, User: t.UserID, Admin: t.CloudAdmin()}
}

func (c Caller) image() image.Caller { return image.Caller{Project: c.Project, Admin: c.Admin} }

// Server is a server as the broker shows it: broker IDs throughout.
type Server struct {
	// SecurityGroups are the server's security groups.
	SecurityGroups []ServerGroup
	ID             string
	Name           string
	Status         peers.ServerStatus
	Project        string
	UserID         string
	// FlavorID is the broker's flavor ID, FlavorName its name; VCPUs,
	// RAMMiB and DiskGiB its sizes when the peer still offers it.
	FlavorID, FlavorName   string
	VCPUs, RAMMiB, DiskGiB int
	// ImageID is the broker image ID, empty for a server booted from a
	// volume (BootVolume).
	ImageID    string
	BootVolume string
	KeyName    string
	// Zone is the availability zone: the peer's name. PeerID and
	// PeerServerID say where the server lives; Host is the peer's host.
	Zone, PeerID, PeerServerID, Host string
	Addresses                        []peers.Address
	// Volumes are the broker IDs of the attached volumes (the peer's IDs
	// for volumes the broker did not create).
	Volumes   []string
	Metadata  map[string]string
	Fault     string
	CreatedAt time.Time
	UpdatedAt time.Time
	// Task is the peer's task that leaves the status as it is
	// (peers.Server.Task: a snapshot), Nova's task_state.
	Task string
	// Ephemeral and FlavorExtraSpecs complete the flavor's sizes when the
	// peer still offers it (Nova 2.47 embeds the flavor in the server).
	EphemeralGiB     int
	FlavorExtraSpecs map[string]string
	// What the broker keeps beside the server (see CreateSpec): nil
	// Description is none.
	Description            *string
	Hostname               string
	Tags                   []string
	AccessIPv4, AccessIPv6 string
	DeviceTags             []DeviceTag
	ReservationID          string
	LaunchIndex            int
	// UserData is the user data the server booted with, base64 (Nova
	// shows it to admins from 2.3).
	UserData string
	// DeleteOnTermination are the attached volumes deleted with the
	// server.
	DeleteOnTermination []string
	// Locked and LockedReason say whether the server is locked (Nova 2.9,
	// 2.73), as the lifecycle actions record it.
	Locked       bool
	LockedReason string
	// LockedBy is "owner" or "admin", as Nova records who locked it.
	LockedBy string
	// ServerGroups are the broker IDs of the server groups it belongs to
	// (Nova 2.71).
	ServerGroups []string
	// HostStatus is its peer's state as Nova's host_status (2.16): UP,
	// MAINTENANCE, DOWN or UNKNOWN.
	HostStatus string
	// Unreachable marks a server whose peer did not answer: only what the
	// broker itself keeps is filled in (Nova 2.69's minimal construct).
	Unreachable bool
	// AdminPass is set only in Create's answer: Nova returns one, but the
	// peers' contract cannot inject it, so no guest uses it (use key_name).
	AdminPass string
}

// Validate reports every required field left unset: a wiring mistake,
// caught when the API is mounted rather than by the first request.
func (s *Servers) Validate() error {
	var errs []error
	for name, missing := range map[string]bool{
		"Pool": s.Pool == nil, "Index": s.Index == nil, "Placer": s.Placer == nil, "Images": s.Images == nil,
		"Networks": s.Networks == nil, "Keypairs": s.Keypairs == nil, "Store": s.Store == nil, "Log": s.Log == nil,
		"Quota": s.Quota == nil,
	} {
		if missing {
			errs = append(errs, fmt.Errorf("compute.Servers.%s is not set", name))
		}
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}

// timeout is the per-peer deadline of fan-outs.
func (s *Servers) timeout() time.Duration {
	if s.PeerTimeout > 0 {
		return s.PeerTimeout
	}
	return 10 * time.Second
}

// connected returns the members with a connection, and the names of those
// without one.
func (s *Servers) connected() (ms []*peers.Member, down []string) {
	for _, m := range s.Pool.Members() {
		if m.Cloud != nil {
			ms = append(ms, m)
		} else {
			down = append(down, m.Peer.Name)
		}
	}
	return ms, down
}

// adminPass is a random password as Nova generates (12 characters).
func adminPass() string {
	const letters = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	return string(b)
}

// Create resolves the spec's references, places the server and boots it
// on the best allowed peer. It returns at once with the server in BUILD,
// as Nova does; callers poll Get.
func (s *Servers) Create(ctx context.Context, c Caller, spec CreateSpec) (Server, error) {
	if err := spec.Validate(); err != nil {
		return Server{}, err
	}
	p, err := s.plan(ctx, c, spec)
	if err != nil {
		return Server{}, err
	}
	id := uuid.NewString()
	req := placementRequest(c, spec, p, id)
	res, err := s.reserve(ctx, c, id, serverCharge(p.flavor), &req)
	if err != nil {
		return Server{}, err
	}
	ports, err := s.reservePorts(ctx, c, id, spec)
	if err != nil {
		s.release(ctx, id, res)
		return Server{}, err
	}
	return s.createPlanned(ctx, c, spec, p, id, req, res, ports)
}

// placementRequest is what the placement policy is asked for server id.
func placementRequest(c Caller, spec CreateSpec, p plan, id string) policy.Request {
	req := policy.Request{
		Kind: KindServer, Project: c.Project, User: c.User, ResourceID: id, Name: spec.Name, Flavor: p.flavor.Name,
		VCPUs: p.flavor.VCPUs, RAMMiB: p.flavor.RAMMiB, DiskGiB: p.flavor.DiskGiB, AvailabilityZone: spec.AvailabilityZone,
		RequiredLabels: spec.RequiredLabels, PreferredLabels: spec.PreferredLabels, Hints: spec.Hints, Tags: spec.Tags,
	}
	switch {
	case spec.BootVolume != "":
		req.DiskGiB = 0 // the disk is the volume's, already placed
	case spec.RootVolumeGiB > 0:
		req.DiskGiB = spec.RootVolumeGiB // the new root volume's, not the flavor's
	}
	if p.image != nil {
		req.Image = &policy.Image{ID: p.image.ID, Properties: p.image.Properties, MinRAMMiB: p.image.MinRAMMiB,
			MinDiskGiB: p.image.MinDiskGiB, Peers: slices.Sorted(maps.Keys(p.imageOn))}
	}
	return req
}

// release gives back a reservation of a server not made.
func (s *Servers) release(ctx context.Context, id string, res *quota.Reservation) {
	if err := res.Release(context.WithoutCancel(ctx)); err != nil {
		s.Log.WithError(err).WithField("server", id).Warn("quota reservation not released; it expires on its own")
	}
}

// createPlanned boots server id of a planned spec, its quota reserved
// (res, and ports for the ports its peer makes, or nil): it keeps what
// the broker keeps of it, places it and boots it on the best allowed
// peer. The reservations are committed with the server or released.
func (s *Servers) createPlanned(ctx context.Context, c Caller, spec CreateSpec, p plan, id string, req policy.Request, res, ports *quota.Reservation) (Server, error) {
	done := false // the reservation was committed (or its server's undone)
	defer func() {
		if !done {
			s.release(ctx, id, res)
		}
	}()
	defer s.releasePorts(ctx, id, ports) // nothing once committed
	if spec.ReservationID == "" {
		spec.ReservationID = NewReservationID()
	}
	if spec.Hostname == "" {
		spec.Hostname = defaultHostname(spec.Name, id) // as Nova: fixed at the create, a rename keeps it
	} else if spec.Hostname != defaultHostname(spec.Name, id) {
		p.hostname = spec.Hostname
	}
	var image string
	if p.image != nil {
		image = p.image.ID
	}
	// What no peer holds is kept first, so the server never shows without
	// it; a failed create forgets it again (and the attrs collector a
	// crash's leftover).
	if err := s.attrStore().CAS(ctx, c.Project, id, keptAtCreate(c, spec, encodeUserData(spec.UserData), p.flavor, image), 0); err != nil {
		return Server{}, fmt.Errorf("keeping server %s's attributes: %w", id, err)
	}
	created := false
	defer func() {
		if !created {
			if err := s.attrStore().Delete(context.WithoutCancel(ctx), c.Project, id); err != nil {
				s.Log.WithError(err).WithField("server", id).Warn("attributes of a server not created left behind; the attrs collector removes them")
			}
		}
	}()
	candidates := make([]registry.Peer, 0, len(p.candidates))
	for _, m := range p.candidates {
		candidates = append(candidates, m.Peer)
	}
	if spec.Group != "" {
		// Read here, not when req was built: the members of a
		// multi-create's earlier servers count.
		g, err := s.placementGroup(ctx, c, spec.Group)
		if err != nil {
			return Server{}, err
		}
		req.Group = g
	}
	decision, err := s.Placer.Place(ctx, req, candidates)
	if err != nil {
		return Server{}, err
	}
	meta := maps.Clone(spec.Metadata)
	if meta == nil {
		meta = map[string]string{}
	}
	meta[peers.MetaID], meta[peers.MetaProject], meta[peers.MetaBrokerID] = id, c.Project, s.BrokerID
	meta[metaUser], meta[metaFlavor], meta[metaFlavorName] = c.User, p.flavor.ID, p.flavor.Name
	if p.image != nil {
		meta[metaImage] = p.image.ID
	}
	if spec.KeyName != "" {
		meta[metaKeyName] = spec.KeyName
	}
	if spec.BootVolume != "" {
		meta[metaBootVolume] = spec.BootVolume
	}
	for k, v := range spec.Marks {
		meta[k] = v
	}
	var tried []string
	for _, peer := range s.order(decision, p) {
		m, ok := s.Pool.Get(peer.ID)
		if !ok || m.Cloud == nil {
			tried = append(tried, peer.Name+": not connected")
			continue
		}
		if spec.Group != "" {
			// The group as it is now: a create racing this one may have
			// taken the place the decision saw free.
			if err := s.joinGroup(ctx, c, spec.Group, id, peer.ID); err != nil {
				if !errors.Is(err, ErrNoValidHost) {
					return Server{}, err
				}
				tried = append(tried, fmt.Sprintf("%s: %s", peer.Name, faults.Detail(err)))
				continue
			}
		}
		srv, made, err := s.boot(ctx, c, spec, p, m, meta)
		if err != nil && spec.Group != "" {
			s.leaveGroup(ctx, c, spec.Group, id)
		}
		if err == nil {
			done = true
			if made == 0 {
				s.releasePorts(ctx, id, ports) // "auto" found no network there
				ports = nil
			}
			out, err := s.record(ctx, c, id, m, srv, p.flavor, res, ports)
			created = err == nil
			if created {
				s.recordGroups(ctx, id, p.groups)
				out.SecurityGroups = s.serverGroups(ctx, c.Project, id)
			}
			if created && spec.DeleteBootVolume && spec.RootVolumeGiB > 0 {
				// The new boot volume has an ID now: it is deleted with the
				// server whatever becomes of this write (the flag stays).
				if err := s.changeAttrs(ctx, c, id, func(a *attrs) error {
					a.DeleteOnTermination = append(a.DeleteOnTermination, out.BootVolume)
					return nil
				}); err != nil {
					s.Log.WithError(err).WithField("server", id).Warn("boot volume to delete with the server not recorded by ID; the flag still says so")
				}
			}
			if created {
				a, _ := s.attrStore().View(ctx, c.Project, id)
				a.show(&out)
			}
			return out, err
		}
		if errors.Is(err, quota.ErrOverQuota) || errors.Is(err, ErrQuotaExceeded) {
			// A boot volume over the project's volume quota: no other peer
			// can change that (Nova's 403, naming the limit).
			return Server{}, quotaError(err)
		}
		if errors.Is(err, peers.ErrCapacity) || errors.Is(err, peers.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
			// The tenant reads the kind of refusal; the peer's own text
			// (addresses, its error chain) is for the log.
			s.Log.WithError(err).WithFields(logrus.Fields{"server": id, "peer": peer.Name}).Warn("server create: peer refused; trying the next")
			tried = append(tried, fmt.Sprintf("%s: %s", peer.Name, faults.Reason(err)))
			continue
		}
		if errors.Is(err, peers.ErrInvalid) || errors.Is(err, peers.ErrNotFound) {
			// The peer refused what the request asks (min_ram, min_disk,
			// an image too large for the flavor, a taken fixed IP): Nova
			// answers 400 with the reason.
			return Server{}, &Error{Message: fmt.Sprintf("Peer %s refused the server: %s", peer.Name, faults.Detail(err)), Err: faults.WithCause(ErrInvalid, err)}
		}
		return Server{}, fmt.Errorf("creating server on %s: %w", peer.Name, err)
	}
	why := tried
	if ex := decision.Explain(); len(decision.Verdicts) > len(decision.Allowed()) || len(decision.Verdicts) == 0 {
		why = append(why, ex)
	}
	why = append(why, p.rejected...)
	return Server{}, &Error{Message: "No valid host was found. " + strings.Join(why, "; "), Err: ErrNoValidHost}
}

// serverCharge is what a server of flavor f counts against its project's
// quota. Its root disk is the flavor's, never Cinder's gigabytes.
func serverCharge(f peers.Flavor) quota.Amounts {
	return quota.Amounts{quota.Instances: 1, quota.Cores: f.VCPUs, quota.RAM: f.RAMMiB}
}

// reserve sets the server's charge aside in the project's quota (refusing
// the create, naming the limit and the numbers, when it does not fit) and
// hands the placement policy the project's usage and quota as the
// reservation found them, so a policy may be stricter: the usage it sees
// leaves out this server's own reservation, which is the request.
func (s *Servers) reserve(ctx context.Context, c Caller, id string, charge quota.Amounts, req *policy.Request) (*quota.Reservation, error) {
	res, err := s.Quota.Reserve(ctx, quota.Scope{Project: c.Project}, charge, KindServer+" "+id)
	if err != nil {
		return nil, quotaError(err)
	}
	tellPolicy(req, res.Seen())
	return res, nil
}

// tellPolicy hands the placement policy the project's usage (what it
// uses and has reserved, without the request's own reservation) and its
// quota.
func tellPolicy(req *policy.Request, seen quota.Snapshot) {
	u := seen.Used.Clone()
	if u == nil {
		u = quota.Amounts{}
	}
	for k, v := range seen.Reserved {
		u[k] += v
	}
	pu, pq := policyUsage(u), policyUsage(seen.Limits)
	req.Usage, req.Quota = &pu, &pq
}

// reservePorts sets aside, in the project's port quota, the ports the
// server's peer will make for it: one per NIC on a network (a NIC on a
// port of the project is counted already), one for "auto". Over quota is
// Nova's 403, before anything is booted. Nil when there are none.
func (s *Servers) reservePorts(ctx context.Context, c Caller, id string, spec CreateSpec) (*quota.Reservation, error) {
	n := portsMade(spec)
	if n == 0 {
		return nil, nil
	}
	res, err := s.Quota.Reserve(ctx, quota.Scope{Project: c.Project}, quota.Amounts{quota.Ports: n}, "ports of "+KindServer+" "+id)
	if err != nil {
		return nil, quotaError(err)
	}
	return res, nil
}

// portsMade is how many ports a server's peer makes for it: one per NIC
// on a network (a NIC on a port of the project is counted already), one
// for "auto".
func portsMade(spec CreateSpec) int {
	n := 0
	for _, nic := range spec.NICs {
		if nic.Network != "" {
			n++
		}
	}
	if len(spec.NICs) == 0 && spec.NetworksMode != NetworksNone {
		n = 1
	}
	return n
}

// releasePorts gives back a port reservation not committed.
func (s *Servers) releasePorts(ctx context.Context, id string, res *quota.Reservation) {
	if res == nil {
		return
	}
	if err := res.Release(context.WithoutCancel(ctx)); err != nil {
		s.Log.WithError(err).WithField("server", id).Warn("port quota reservation not released; it expires on its own")
	}
}

// policyUsage is amounts in the placement policy's dimensions.
func policyUsage(a quota.Amounts) policy.Usage {
	return policy.Usage{Instances: a[quota.Instances], VCPUs: a[quota.Cores], RAMMiB: a[quota.RAM],
		Volumes: a[quota.Volumes], DiskGiB: a[quota.Gigabytes]}
}

// order returns the allowed peers in the policy's order, except that
// among peers of equal score those already holding the image come first:
// the policy decides (input.request.image.peers lets it prefer holders;
// the stock policy does), and a tie is never broken by copying an image.
func (s *Servers) order(d policy.Decision, p plan) []registry.Peer {
	var allowed []policy.Verdict
	for _, v := range d.Verdicts {
		if v.Allowed {
			allowed = append(allowed, v)
		}
	}
	if p.image != nil {
		slices.SortStableFunc(allowed, func(a, b policy.Verdict) int {
			if a.Score != b.Score {
				return b.Score - a.Score
			}
			_, ha := p.imageOn[a.Peer.ID]
			_, hb := p.imageOn[b.Peer.ID]
			switch {
			case ha && !hb:
				return -1
			case hb && !ha:
				return 1
			}
			return 0
		})
	}
	out := make([]registry.Peer, len(allowed))
	for i, v := range allowed {
		out[i] = *v.Peer
	}
	return out
}

// record indexes a server the peer just created, deleting it again if the
// index write fails, so nothing is left unowned.
//
// The quota reservations (the server's, and ports, those its peer made
// for it, or nil) are committed first: a broker dying between the commit
// and the index write leaves a counted server that an index rebuild
// adopts, never an uncounted one. Undoing the create releases them. The
// entry's charge is both: the ports are freed with the server.
func (s *Servers) record(ctx context.Context, c Caller, id string, m *peers.Member, srv peers.Server, f peers.Flavor, res, ports *quota.Reservation) (Server, error) {
	charge := res.Amounts()
	if ports != nil {
		for k, v := range ports.Amounts() {
			charge[k] += v
		}
	}
	e := index.Entry{Kind: KindServer, ID: id, Project: c.Project, PeerID: m.Peer.ID, PeerResourceID: srv.ID, Name: srv.Name,
		CreatedAt: srv.CreatedAt, Charge: charge}
	undo := func(why error) error {
		if derr := m.Cloud.DeleteServer(context.WithoutCancel(ctx), srv.ID); derr != nil {
			s.Log.WithError(derr).WithFields(logrus.Fields{"server": id, "peer": m.Peer.Name, "peer_server": srv.ID}).Error("server left on its peer after a failed create; an index rebuild adopts it")
		}
		return why
	}
	if err := res.Commit(context.WithoutCancel(ctx)); err != nil {
		// The reservation stays until it expires: it frees itself.
		return Server{}, undo(fmt.Errorf("counting server %s in its quota: %w", id, err))
	}
	if ports != nil {
		if err := ports.Commit(context.WithoutCancel(ctx)); err != nil {
			if ferr := s.Quota.Free(context.WithoutCancel(ctx), quota.Scope{Project: c.Project}, res.Amounts()); ferr != nil {
				s.Log.WithError(ferr).WithField("server", id).Error("quota of an undone server not freed")
			}
			return Server{}, undo(fmt.Errorf("counting the ports of server %s in its quota: %w", id, err))
		}
	}
	if err := s.Index.Put(ctx, e); err != nil {
		if ferr := s.Quota.Free(context.WithoutCancel(ctx), quota.Scope{Project: c.Project}, e.Charge); ferr != nil {
			s.Log.WithError(ferr).WithField("server", id).Error("quota of an undone server not freed")
		}
		return Server{}, undo(fmt.Errorf("indexing server %s: %w", id, err))
	}
	s.Log.WithFields(logrus.Fields{"server": id, "peer": m.Peer.Name, "project": c.Project, "flavor": srv.FlavorID}).Info("server created")
	out := s.present(e, m, srv, attrs{}, nil, f)
	out.AdminPass = adminPass()
	s.recordAction(ctx, c, id, "create", eventHost{m, srv.Host}, nil)
	return out, nil
}

// peerSpec is the spec for the chosen peer: its flavor, its image, its
// networks (auto resolved there) and the user's keypair imported there.
//
// The image copy, if one is needed, takes as long as it takes; the other
// calls are bounded by the per-peer deadline.
func (s *Servers) peerSpec(ctx context.Context, c Caller, spec CreateSpec, p plan, m *peers.Member, meta map[string]string) (peers.ServerSpec, error) {
	ps := peers.ServerSpec{Name: spec.Name, Project: c.Project, FlavorID: p.peerFlavor[m.Peer.ID],
		BootVolumeID: p.bootVolume.PeerResourceID, UserData: spec.UserData, Metadata: meta, Hostname: p.hostname}
	if p.image != nil {
		id, err := s.bootImage(ctx, p, m)
		if err != nil {
			return ps, err
		}
		ps.ImageID = id
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	for _, n := range p.nics {
		ps.Networks = append(ps.Networks, peers.NetworkAttachment{NetworkID: n.peerNetwork, PortID: n.peerPort, FixedIP: n.fixedIP})
	}
	groups, err := s.prepareGroups(ctx, c, m, p.groups)
	if err != nil {
		return ps, err
	}
	ps.SecurityGroups = groups
	if len(spec.NICs) == 0 && spec.NetworksMode != NetworksNone {
		net, err := s.autoNetwork(ctx, c, m)
		if err != nil {
			return ps, err
		}
		if net != "" {
			ps.Networks = []peers.NetworkAttachment{{NetworkID: net}}
		}
	}
	if p.keypair != nil {
		name, err := importKeypair(ctx, m.Cloud, c, *p.keypair)
		if err != nil {
			return ps, err
		}
		ps.KeyName = name
	}
	return ps, nil
}

// boot creates the server on m, and says how many ports m makes for it
// (its NICs on networks). A create the peer does not answer in time may
// still have happened there: the broker looks for it by its mark and
// deletes it, so trying the next peer never leaves two servers.
func (s *Servers) boot(ctx context.Context, c Caller, spec CreateSpec, p plan, m *peers.Member, meta map[string]string) (peers.Server, int, error) {
	ps, err := s.peerSpec(ctx, c, spec, p, m, meta)
	if err != nil {
		return peers.Server{}, 0, err
	}
	made := 0
	for _, n := range ps.Networks {
		if n.NetworkID != "" {
			made++
		}
	}
	if spec.RootVolumeGiB > 0 {
		root, undo, err := s.rootVolume(ctx, c, spec, m, ps.ImageID)
		if err != nil {
			return peers.Server{}, 0, err
		}
		ps.ImageID, ps.BootVolumeID = "", root.PeerResourceID
		ps.Metadata = maps.Clone(ps.Metadata)
		ps.Metadata[metaBootVolume] = root.ID
		srv, err := s.create(ctx, m, ps)
		if err != nil {
			undo()
		}
		return srv, made, err
	}
	srv, err := s.create(ctx, m, ps)
	return srv, made, err
}

// create asks m for the server; see boot.
func (s *Servers) create(ctx context.Context, m *peers.Member, ps peers.ServerSpec) (peers.Server, error) {
	meta := ps.Metadata
	cctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	srv, err := m.Cloud.CreateServer(cctx, ps)
	if err == nil || !(errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
		return srv, err
	}
	dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout())
	defer dcancel()
	left, lerr := m.Cloud.ListServers(dctx, peers.ListOptions{Metadata: map[string]string{peers.MetaID: meta[peers.MetaID]}})
	for _, l := range left {
		lerr = errors.Join(lerr, m.Cloud.DeleteServer(dctx, l.ID))
	}
	if lerr != nil {
		s.Log.WithError(lerr).WithFields(logrus.Fields{"server": meta[peers.MetaID], "peer": m.Peer.Name}).Warn("a create the peer did not answer in time may have left a server there")
	}
	return srv, fmt.Errorf("peer %s did not answer the create in time: %w", m.Peer.Name, err)
}
