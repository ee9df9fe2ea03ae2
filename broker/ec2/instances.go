package ec2

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/compute"
	"github.com/cloudmux/cloudmux/peers"
)

// Instances are Nova's servers (compute.Servers): RunInstances boots
// through the same placement, DescribeInstances lists the project's
// servers whichever API made them, and the power actions are Nova's.

// ServerService is the part of compute.Servers the API uses.
type ServerService interface {
	Create(ctx context.Context, c compute.Caller, spec compute.CreateSpec) (compute.Server, error)
	Get(ctx context.Context, c compute.Caller, id string) (compute.Server, error)
	List(ctx context.Context, c compute.Caller, q compute.Query) (compute.Page, error)
	Update(ctx context.Context, c compute.Caller, id string, u compute.Update) (compute.Server, error)
	Delete(ctx context.Context, c compute.Caller, id string) error
	Action(ctx context.Context, c compute.Caller, id string, action peers.ServerAction) error
	Attach(ctx context.Context, c compute.Caller, serverID, volumeID string) (compute.Attachment, error)
	Detach(ctx context.Context, c compute.Caller, serverID, volumeID string) error
	Console(ctx context.Context, c compute.Caller, id string, lines int) (string, error)
	// PublicFlavors are the instance types.
	PublicFlavors(ctx context.Context) (flavors []peers.Flavor, failed []string)
}

var _ ServerService = (*compute.Servers)(nil)

// Metadata keys RunInstances writes on a server, so its reservation and
// launch index survive and show the same on every describe.
const (
	metaReservation = "ec2_reservation_id"
	metaLaunchIndex = "ec2_launch_index"
)

// maxInstancesPerRun bounds MaxCount.
const maxInstancesPerRun = 20

// instanceTypes maps common EC2 instance types onto devstack's flavor
// names; any flavor name is accepted as an instance type as well.
var instanceTypes = map[string]string{
	"t1.micro": "m1.tiny", "t2.nano": "m1.nano", "t2.micro": "m1.tiny", "t2.small": "m1.small", "t2.medium": "m1.medium",
	"t3.nano": "m1.nano", "t3.micro": "m1.tiny", "t3.small": "m1.small", "t3.medium": "m1.medium",
	"m1.small": "m1.small", "m1.medium": "m1.medium", "m1.large": "m1.large", "m1.xlarge": "m1.xlarge",
}

type state struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

// EC2's instance states.
var (
	statePending      = state{0, "pending"}
	stateRunning      = state{16, "running"}
	stateShuttingDown = state{32, "shutting-down"}
	stateTerminated   = state{48, "terminated"}
	stateStopping     = state{64, "stopping"}
	stateStopped      = state{80, "stopped"}
)

// instanceState maps Nova's statuses: a reboot keeps an instance running,
// as EC2 shows it; an errored server is stopped, with the fault as reason,
// and so is a paused, suspended or shelved one (EC2's nearest: a
// hibernated instance is stopped); a rescued one runs.
func instanceState(s peers.ServerStatus) state {
	switch s {
	case peers.ServerBuild:
		return statePending
	case peers.ServerActive, peers.ServerReboot, peers.ServerHardReboot, peers.ServerRescue:
		return stateRunning
	case peers.ServerShutoff, peers.ServerError, peers.ServerPaused, peers.ServerSuspended,
		peers.ServerShelved, peers.ServerShelvedOffloaded:
		return stateStopped
	case peers.ServerDeleted:
		return stateTerminated
	}
	return statePending
}

type groupItem struct {
	GroupID   string `xml:"groupId"`
	GroupName string `xml:"groupName"`
}

type ebsItem struct {
	VolumeID string `xml:"volumeId"`
	Status   string `xml:"status"`
}

type blockDeviceItem struct {
	DeviceName string  `xml:"deviceName"`
	EBS        ebsItem `xml:"ebs"`
}

type instanceItem struct {
	InstanceID         string                 `xml:"instanceId"`
	ImageID            string                 `xml:"imageId"`
	State              state                  `xml:"instanceState"`
	PrivateDNSName     string                 `xml:"privateDnsName"`
	DNSName            string                 `xml:"dnsName"`
	Reason             string                 `xml:"reason"`
	KeyName            string                 `xml:"keyName,omitempty"`
	LaunchIndex        int                    `xml:"amiLaunchIndex"`
	InstanceType       string                 `xml:"instanceType"`
	LaunchTime         string                 `xml:"launchTime"`
	AvailabilityZone   string                 `xml:"placement>availabilityZone"`
	Tenancy            string                 `xml:"placement>tenancy"`
	Monitoring         string                 `xml:"monitoring>state"`
	PrivateIPAddress   string                 `xml:"privateIpAddress,omitempty"`
	IPAddress          string                 `xml:"ipAddress,omitempty"`
	GroupSet           items[groupItem]       `xml:"groupSet"`
	StateReasonCode    string                 `xml:"stateReason>code,omitempty"`
	StateReasonMessage string                 `xml:"stateReason>message,omitempty"`
	Architecture       string                 `xml:"architecture"`
	RootDeviceType     string                 `xml:"rootDeviceType"`
	RootDeviceName     string                 `xml:"rootDeviceName"`
	BlockDeviceMapping items[blockDeviceItem] `xml:"blockDeviceMapping"`
	VirtualizationType string                 `xml:"virtualizationType"`
	Hypervisor         string                 `xml:"hypervisor"`
	TagSet             items[Tag]             `xml:"tagSet"`

	reservation string // its reservation, for grouping
	owner       string
}

type reservationItem struct {
	ReservationID string              `xml:"reservationId"`
	OwnerID       string              `xml:"ownerId"`
	GroupSet      items[groupItem]    `xml:"groupSet"`
	Instances     items[instanceItem] `xml:"instancesSet"`
}

// reservationOf is a server's reservation: the one RunInstances recorded,
// or one derived from its ID for a server Nova booted.
func reservationOf(srv compute.Server) string {
	if r := srv.Metadata[metaReservation]; r != "" {
		return r
	}
	sum := sha256.Sum256([]byte("reservation:" + srv.ID))
	return "r-" + hex.EncodeToString(sum[:])[:17]
}

func (a *API) instanceView(ctx context.Context, srv compute.Server, tags map[string][]tagRecord) (instanceItem, error) {
	id, err := a.ids.shown(ctx, prefixInstance, srv.ID)
	if err != nil {
		return instanceItem{}, err
	}
	it := instanceItem{InstanceID: id, State: instanceState(srv.Status), KeyName: srv.KeyName, InstanceType: srv.FlavorName,
		LaunchTime: srv.CreatedAt.UTC().Format(timeFormat), AvailabilityZone: srv.Zone, Tenancy: "default", Monitoring: "disabled",
		GroupSet: list[groupItem](nil), Architecture: "x86_64", RootDeviceType: "instance-store", RootDeviceName: "/dev/vda",
		VirtualizationType: "hvm", Hypervisor: "xen", TagSet: tagSet(tags[id]), reservation: reservationOf(srv), owner: srv.Project}
	if srv.ImageID != "" {
		if it.ImageID, err = a.ids.shown(ctx, prefixImage, srv.ImageID); err != nil {
			return instanceItem{}, err
		}
	}
	if a.Networks != nil { // groups are Neutron's: without it, none is shown
		for _, g := range srv.SecurityGroups {
			gid, err := a.ids.shown(ctx, prefixSG, g.ID)
			if err != nil {
				return instanceItem{}, err
			}
			it.GroupSet.Items = append(it.GroupSet.Items, groupItem{GroupID: gid, GroupName: g.Name})
		}
	}
	it.LaunchIndex, _ = strconv.Atoi(srv.Metadata[metaLaunchIndex])
	if srv.Status == peers.ServerError {
		it.StateReasonCode, it.StateReasonMessage = "Server.InternalError", "Server.InternalError: "+srv.Fault
	}
	for _, addr := range srv.Addresses {
		switch {
		case addr.Type == "floating" && it.IPAddress == "":
			it.IPAddress = addr.Addr
		case addr.Type != "floating" && addr.Version == 4 && it.PrivateIPAddress == "":
			it.PrivateIPAddress = addr.Addr
		}
	}
	var bdm []blockDeviceItem
	for i, v := range srv.Volumes {
		vid := v
		if looksLikeUUID(v) {
			if vid, err = a.ids.shown(ctx, prefixVolume, v); err != nil {
				return instanceItem{}, err
			}
		}
		bdm = append(bdm, blockDeviceItem{DeviceName: fmt.Sprintf("/dev/vd%c", 'b'+i), EBS: ebsItem{VolumeID: vid, Status: "attached"}})
	}
	it.BlockDeviceMapping = list(bdm)
	return it, nil
}

// serverErr translates the servers service's errors, with the EC2 ID the
// request named.
func serverErr(err error, id string) error {
	switch {
	case errors.Is(err, compute.ErrNotFound) && compute.FieldOf(err) == "":
		return notFound("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id)
	case errors.Is(err, compute.ErrConflict):
		return errorf(http.StatusBadRequest, "IncorrectInstanceState", "The instance '%s' is not in a state that allows this action", id).hiding(err)
	case errors.Is(compute.QuotaRefusal(err), compute.ErrQuotaExceeded):
		// The project's quota, not the clouds' room: EC2's own code for it.
		// The refusal is the quota's own wording (resource and numbers).
		return errorf(http.StatusBadRequest, "InstanceLimitExceeded", "%s", compute.QuotaRefusal(err).Error())
	case errors.Is(err, compute.ErrNoValidHost):
		return errorf(http.StatusBadRequest, "InsufficientInstanceCapacity", "There is not enough capacity for the instance in any allowed availability zone").hiding(err)
	}
	// The services' messages can quote a peer's answer: the tenant reads
	// which parameter is at fault, the log the rest.
	switch field := compute.FieldOf(err); field {
	case "imageRef":
		return notFound("InvalidAMIID.NotFound", "The image named by ImageId does not exist or is not available to the project").hiding(err)
	case "key_name":
		return notFound("InvalidKeyPair.NotFound", "The key pair named by KeyName does not exist").hiding(err)
	case "volumeId":
		if errors.Is(err, compute.ErrNotFound) {
			return notFound("InvalidVolume.NotFound", "The volume does not exist").hiding(err)
		}
		return errorf(http.StatusBadRequest, "InvalidVolume.ZoneMismatch", "The volume is not in the instance's availability zone").hiding(err)
	case "":
		return err
	default:
		return invalidParameter("Invalid value for %s", ec2Param(field)).hiding(err)
	}
}

// ec2Param names the EC2 parameter a servers-service field comes from.
func ec2Param(field string) string {
	switch field {
	case "flavorRef":
		return "InstanceType"
	case "user_data":
		return "UserData"
	case "availability_zone":
		return "Placement.AvailabilityZone"
	case "min_count":
		return "MinCount"
	case "networks":
		return "SubnetId"
	case "name", "metadata":
		return "TagSpecification"
	case "block_device_mapping_v2":
		return "BlockDeviceMapping"
	}
	return field
}

// runInstances boots MaxCount servers (at least MinCount, or none: those
// booted are deleted again) of one image and instance type.
func (a *API) runInstances(ctx context.Context, c *call) (any, error) {
	p := c.params
	imageID, e := p.require("ImageId")
	if e != nil {
		return nil, e
	}
	minCount, maxCount := 1, 1
	var err error
	if s := p.get("MinCount"); s != "" {
		if minCount, err = strconv.Atoi(s); err != nil || minCount < 1 {
			return nil, invalidParameter("MinCount %q: must be a positive integer", s)
		}
	}
	if s := p.get("MaxCount"); s != "" {
		if maxCount, err = strconv.Atoi(s); err != nil || maxCount < 1 {
			return nil, invalidParameter("MaxCount %q: must be a positive integer", s)
		}
	} else {
		maxCount = minCount
	}
	if minCount > maxCount || maxCount > maxInstancesPerRun {
		return nil, invalidParameter("MinCount %d and MaxCount %d: want 1 <= MinCount <= MaxCount <= %d", minCount, maxCount, maxInstancesPerRun)
	}
	typ := p.get("InstanceType")
	if typ == "" {
		typ = "m1.small" // EC2's default instance type
	}
	flavor := typ
	if f, ok := instanceTypes[typ]; ok {
		flavor = f
	}
	var userData []byte
	if ud := p.get("UserData"); ud != "" {
		if userData, err = base64.StdEncoding.DecodeString(ud); err != nil {
			return nil, invalidParameter("UserData: Invalid BASE64 encoding of user data")
		}
	}
	specs, e := p.tagSpecs()
	if e != nil {
		return nil, e
	}
	tags := specs["instance"]
	if len(tags) > maxTagsPerResource {
		return nil, errorf(http.StatusBadRequest, "TagLimitExceeded", "a resource may have at most %d tags", maxTagsPerResource)
	}
	name := "ec2-instance"
	for _, t := range tags {
		if t.Key == "Name" && strings.TrimSpace(t.Value) != "" {
			name = t.Value
		}
	}
	img, err := a.resolveImage(ctx, c, imageID)
	if err != nil {
		return nil, err
	}
	keyName := p.get("KeyName")
	if keyName != "" {
		if _, err := a.Keypairs.Get(ctx, c.token.UserID, keyName); errors.Is(err, peers.ErrNotFound) {
			return nil, notFound("InvalidKeyPair.NotFound", "The key pair '%s' does not exist", keyName)
		} else if err != nil {
			return nil, err
		}
	}
	netID, fixedIP, groups, err := a.launchNetwork(ctx, c)
	if err != nil {
		return nil, err
	}
	if fixedIP != "" && maxCount > 1 {
		return nil, invalidParameter("PrivateIpAddress can be given for one instance only, not MaxCount %d", maxCount)
	}
	var nics []compute.NIC
	if netID != "" {
		nics = []compute.NIC{{Network: netID, FixedIP: fixedIP}}
	}
	az := p.get("Placement.AvailabilityZone")
	if az != "" && !peers.Named(a.Pool.Members(), az) {
		return nil, invalidParameter("Invalid availability zone: [%s]", az)
	}
	sum := sha256.Sum256([]byte(uuid.NewString()))
	reservation := "r-" + hex.EncodeToString(sum[:])[:17]
	caller := compute.CallerOf(c.token)
	var made []compute.Server
	var lastErr error
	for i := range maxCount {
		srv, err := a.Servers.Create(ctx, caller, compute.CreateSpec{Name: name, FlavorRef: flavor, ImageRef: img.ID, KeyName: keyName,
			UserData: userData, AvailabilityZone: az, NICs: nics, SecurityGroups: groups, Metadata: map[string]string{metaReservation: reservation, metaLaunchIndex: strconv.Itoa(i)}})
		if err != nil {
			lastErr = err
			break
		}
		made = append(made, srv)
	}
	if len(made) < minCount {
		for _, srv := range made {
			if err := a.Servers.Delete(context.WithoutCancel(ctx), caller, srv.ID); err != nil {
				a.Log.WithError(err).WithField("server", srv.ID).Warn("ec2: a server of a failed RunInstances left behind")
			}
		}
		if compute.FieldOf(lastErr) == "flavorRef" {
			return nil, invalidParameter("Invalid value '%s' for InstanceType", typ).hiding(lastErr)
		}
		return nil, serverErr(lastErr, imageID)
	}
	r := reservationItem{ReservationID: reservation, OwnerID: c.token.ProjectID, GroupSet: list[groupItem](nil)}
	for _, srv := range made {
		if _, err := a.ids.assign(ctx, prefixInstance, srv.ID); err != nil {
			return nil, err
		}
		it, err := a.instanceView(ctx, srv, nil)
		if err != nil {
			return nil, err
		}
		if err := a.putTags(ctx, c.token.ProjectID, it.InstanceID, "instance", tags); err != nil {
			return nil, err
		}
		it.TagSet = list(tags)
		r.Instances.Items = append(r.Instances.Items, it)
		a.Log.WithFields(logrus.Fields{"instance": it.InstanceID, "server": srv.ID, "peer": srv.Zone, "project": c.token.ProjectID}).Info("ec2: instance launched")
	}
	return r, nil
}

// describeInstances lists the project's instances grouped by reservation,
// with the terminated ones still remembered; InstanceId.N names instances
// (each must exist); filters as EC2's, tags included.
func (a *API) describeInstances(ctx context.Context, c *call) (any, error) {
	sel, err := a.selectInstances(ctx, c)
	if err != nil {
		return nil, err
	}
	byRes := map[string]*reservationItem{}
	var order []string
	for _, it := range sel {
		r, ok := byRes[it.reservation]
		if !ok {
			r = &reservationItem{ReservationID: it.reservation, OwnerID: it.owner, GroupSet: list[groupItem](nil)}
			byRes[it.reservation] = r
			order = append(order, it.reservation)
		}
		r.Instances.Items = append(r.Instances.Items, it)
	}
	sort.Strings(order)
	out := make([]reservationItem, 0, len(order))
	for _, id := range order {
		r := byRes[id]
		sort.Slice(r.Instances.Items, func(i, j int) bool { return r.Instances.Items[i].LaunchIndex < r.Instances.Items[j].LaunchIndex })
		out = append(out, *r)
	}
	return struct {
		Reservations items[reservationItem] `xml:"reservationSet"`
	}{list(out)}, nil
}

// selectInstances returns the project's instances (the terminated ones it
// still remembers included) that InstanceId.N and Filter.N select. Every
// named instance must exist.
func (a *API) selectInstances(ctx context.Context, c *call) ([]instanceItem, error) {
	caller := compute.CallerOf(c.token)
	// Instances are named by EC2 ID, or by the broker UUID Nova shows.
	var wanted []string
	q := compute.Query{}
	for _, id := range c.params.list("InstanceId") {
		if looksLikeUUID(id) {
			ec2ID, err := a.ids.shown(ctx, prefixInstance, id)
			if err != nil {
				return nil, err
			}
			wanted, q.IDs = append(wanted, ec2ID), append(q.IDs, id)
			continue
		}
		wanted = append(wanted, id)
		u, err := a.resolveID(ctx, c, prefixInstance, id)
		if errors.Is(err, errUnknownID) {
			if _, ok := parseID(id); !ok {
				return nil, invalidParameter("Invalid id: %q (expecting \"i-...\")", id)
			}
			continue // maybe terminated and remembered; checked below
		}
		if err != nil {
			return nil, err
		}
		q.IDs = append(q.IDs, u)
	}
	var servers []compute.Server
	if len(wanted) == 0 || len(q.IDs) > 0 {
		page, err := a.Servers.List(ctx, caller, q)
		if err != nil {
			return nil, serverErr(err, "")
		}
		c.flagPartial(a.Log, "instances", page.Failed)
		servers = page.Servers
	}
	tags, err := a.loadTags(ctx, c.token.ProjectID)
	if err != nil {
		return nil, err
	}
	var all []instanceItem
	for _, srv := range servers {
		it, err := a.instanceView(ctx, srv, tags)
		if err != nil {
			return nil, err
		}
		all = append(all, it)
	}
	gone, err := a.terminated(ctx, c.token.ProjectID)
	if err != nil {
		return nil, err
	}
	all = append(all, gone...)
	seen := map[string]bool{}
	filters := c.params.filters()
	var out []instanceItem
	for _, it := range all {
		seen[it.InstanceID] = true
		if len(wanted) > 0 && !contains(wanted, it.InstanceID) {
			continue
		}
		// A terminated instance keeps the tags it had (they are gone from
		// the store): filter on the ones it shows.
		var recs []tagRecord
		for _, t := range it.TagSet.Items {
			recs = append(recs, tagRecord{Key: t.Key, Value: t.Value})
		}
		if instanceMatches(it, filters) && tagFilters(recs, filters) {
			out = append(out, it)
		}
	}
	for _, id := range wanted {
		if !seen[id] {
			return nil, notFound("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id)
		}
	}
	return out, nil
}

type statusDetail struct {
	Name   string `xml:"name"`
	Status string `xml:"status"`
}

type statusSummary struct {
	Status  string              `xml:"status"`
	Details items[statusDetail] `xml:"details"`
}

type instanceStatusItem struct {
	InstanceID       string        `xml:"instanceId"`
	AvailabilityZone string        `xml:"availabilityZone"`
	State            state         `xml:"instanceState"`
	SystemStatus     statusSummary `xml:"systemStatus"`
	InstanceStatus   statusSummary `xml:"instanceStatus"`
}

// describeInstanceStatus reports running instances (every selected one
// with IncludeAllInstances) as reachable: a peer that runs a server is the
// only health check the broker has.
func (a *API) describeInstanceStatus(ctx context.Context, c *call) (any, error) {
	sel, err := a.selectInstances(ctx, c)
	if err != nil {
		return nil, err
	}
	all := c.params.get("IncludeAllInstances") == "true"
	var out []instanceStatusItem
	for _, it := range sel {
		if it.State != stateRunning && !all {
			continue
		}
		sum := statusSummary{Status: "not-applicable", Details: list[statusDetail](nil)}
		if it.State == stateRunning {
			sum = statusSummary{Status: "ok", Details: list([]statusDetail{{Name: "reachability", Status: "passed"}})}
		}
		out = append(out, instanceStatusItem{InstanceID: it.InstanceID, AvailabilityZone: it.AvailabilityZone, State: it.State,
			SystemStatus: sum, InstanceStatus: sum})
	}
	return struct {
		Statuses items[instanceStatusItem] `xml:"instanceStatusSet"`
	}{list(out)}, nil
}

func instanceMatches(it instanceItem, filters []filter) bool {
	for _, f := range filters {
		var v string
		switch f.Name {
		case "instance-id":
			v = it.InstanceID
		case "instance-state-name":
			v = it.State.Name
		case "instance-state-code":
			v = strconv.Itoa(it.State.Code)
		case "instance-type":
			v = it.InstanceType
		case "image-id":
			v = it.ImageID
		case "key-name":
			v = it.KeyName
		case "availability-zone":
			v = it.AvailabilityZone
		case "reservation-id":
			v = it.reservation
		case "owner-id":
			v = it.owner
		case "private-ip-address":
			v = it.PrivateIPAddress
		case "ip-address":
			v = it.IPAddress
		case "launch-index":
			v = strconv.Itoa(it.LaunchIndex)
		default:
			continue
		}
		if !matchAny(f.Values, v) {
			return false
		}
	}
	return true
}

// stateChange is an item of the Start/Stop/TerminateInstances answers.
type stateChange struct {
	InstanceID    string `xml:"instanceId"`
	CurrentState  state  `xml:"currentState"`
	PreviousState state  `xml:"previousState"`
}

// instancesOf resolves InstanceId.N to the project's servers: every ID must
// name one, or nothing is done.
func (a *API) instancesOf(ctx context.Context, c *call) ([]string, []compute.Server, error) {
	ids := c.params.list("InstanceId")
	if len(ids) == 0 {
		return nil, nil, missingParameter("InstanceId.1")
	}
	servers := make([]compute.Server, len(ids))
	for i, id := range ids {
		u, err := a.resolveID(ctx, c, prefixInstance, id)
		if errors.Is(err, errUnknownID) {
			if _, ok := parseID(id); !ok {
				return nil, nil, invalidParameter("Invalid id: %q (expecting \"i-...\")", id)
			}
			return nil, nil, notFound("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id)
		}
		if err != nil {
			return nil, nil, err
		}
		if servers[i], err = a.Servers.Get(ctx, compute.CallerOf(c.token), u); err != nil {
			return nil, nil, serverErr(err, id)
		}
	}
	return ids, servers, nil
}

// power runs a power action on every named instance. An instance already
// where the action leads is left alone (EC2's actions are idempotent).
func (a *API) power(ctx context.Context, c *call, action peers.ServerAction, next state) (any, error) {
	ids, servers, err := a.instancesOf(ctx, c)
	if err != nil {
		return nil, err
	}
	var out []stateChange
	for i, srv := range servers {
		prev := instanceState(srv.Status)
		cur := next
		switch {
		case action == peers.ActionStart && prev == stateRunning, (action == peers.ActionStop || action == peers.ActionSuspend) && prev == stateStopped:
			cur = prev
		default:
			act := action
			switch { // EC2 starts a hibernated instance; Nova resumes or unpauses it
			case action == peers.ActionStart && srv.Status == peers.ServerSuspended:
				act = peers.ActionResume
			case action == peers.ActionStart && srv.Status == peers.ServerPaused:
				act = peers.ActionUnpause
			}
			if err := a.Servers.Action(ctx, compute.CallerOf(c.token), srv.ID, act); errors.Is(err, compute.ErrConflict) {
				return nil, errorf(http.StatusBadRequest, "IncorrectInstanceState", "The instance '%s' is not in a state from which it can be %sed", ids[i], action).hiding(err)
			} else if err != nil {
				return nil, serverErr(err, ids[i])
			}
		}
		out = append(out, stateChange{InstanceID: ids[i], CurrentState: cur, PreviousState: prev})
	}
	return struct {
		Instances items[stateChange] `xml:"instancesSet"`
	}{list(out)}, nil
}

func (a *API) startInstances(ctx context.Context, c *call) (any, error) {
	return a.power(ctx, c, peers.ActionStart, statePending)
}

// stopInstances stops, or with Hibernate=true suspends (Nova's suspend:
// the guest's memory saved, StartInstances restores it).
func (a *API) stopInstances(ctx context.Context, c *call) (any, error) {
	switch h := c.params.get("Hibernate"); h {
	case "", "false":
		return a.power(ctx, c, peers.ActionStop, stateStopping)
	case "true":
		return a.power(ctx, c, peers.ActionSuspend, stateStopping)
	default:
		return nil, invalidParameter("Invalid value %q for Hibernate (expecting true or false)", h)
	}
}

func (a *API) rebootInstances(ctx context.Context, c *call) (any, error) {
	if _, err := a.power(ctx, c, peers.ActionReboot, stateRunning); err != nil {
		return nil, err
	}
	return returnTrue{true}, nil
}

// terminateInstances deletes the servers and remembers them as
// terminated for an hour, as EC2 keeps showing terminated instances.
func (a *API) terminateInstances(ctx context.Context, c *call) (any, error) {
	ids, servers, err := a.instancesOf(ctx, c)
	if err != nil {
		return nil, err
	}
	tags, err := a.loadTags(ctx, c.token.ProjectID)
	if err != nil {
		return nil, err
	}
	var out []stateChange
	for i, srv := range servers {
		it, err := a.instanceView(ctx, srv, tags)
		if err != nil {
			return nil, err
		}
		if err := a.Servers.Delete(ctx, compute.CallerOf(c.token), srv.ID); err != nil {
			return nil, serverErr(err, ids[i])
		}
		a.remember(ctx, c.token.ProjectID, it)
		a.dropTags(ctx, c.token.ProjectID, ids[i])
		out = append(out, stateChange{InstanceID: ids[i], CurrentState: stateShuttingDown, PreviousState: it.State})
	}
	return struct {
		Instances items[stateChange] `xml:"instancesSet"`
	}{list(out)}, nil
}

// getConsoleOutput returns the console log, base64-encoded as EC2 does.
func (a *API) getConsoleOutput(ctx context.Context, c *call) (any, error) {
	id, e := c.params.require("InstanceId")
	if e != nil {
		return nil, e
	}
	c.params["InstanceId.1"] = []string{id}
	ids, servers, err := a.instancesOf(ctx, c)
	if err != nil {
		return nil, err
	}
	text, err := a.Servers.Console(ctx, compute.CallerOf(c.token), servers[0].ID, 0)
	if err != nil {
		return nil, serverErr(err, ids[0])
	}
	return struct {
		InstanceID string `xml:"instanceId"`
		Timestamp  string `xml:"timestamp"`
		Output     string `xml:"output"`
	}{ids[0], a.now().Format(timeFormat), base64.StdEncoding.EncodeToString([]byte(text))}, nil
}
