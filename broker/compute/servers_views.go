package compute

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/peers"
)

// novaTime is Nova's created/updated format.
const novaTime = "2006-01-02T15:04:05Z"

// power states Nova reports (nova.compute.power_state).
const (
	powerNoState  = 0
	powerRunning  = 1
	powerPaused   = 3
	powerShutdown = 4
)

// serverStates is states for a server, with its peer's task (a
// snapshot) as the task_state when its status implies none.
func serverStates(s Server) (power int, vm string, task any) {
	power, vm, task = states(s.Status)
	if task == nil && s.Task != "" {
		task = s.Task
	}
	return power, vm, task
}

// states maps a status to Nova's power_state, vm_state and task_state.
func states(st peers.ServerStatus) (power int, vm string, task any) {
	switch st {
	case peers.ServerBuild:
		return powerNoState, "building", "spawning"
	case peers.ServerActive:
		return powerRunning, "active", nil
	case peers.ServerShutoff:
		return powerShutdown, "stopped", nil
	case peers.ServerReboot:
		return powerRunning, "active", "rebooting"
	case peers.ServerHardReboot:
		return powerRunning, "active", "rebooting_hard"
	case peers.ServerPaused:
		return powerPaused, "paused", nil
	case peers.ServerSuspended:
		return powerShutdown, "suspended", nil
	case peers.ServerResize:
		return powerRunning, "active", "resize_migrating"
	case peers.ServerVerifyResize:
		return powerRunning, "resized", nil
	case peers.ServerRevertResize:
		return powerRunning, "resized", "resize_reverting"
	case peers.ServerRebuild:
		return powerNoState, "active", "rebuilding"
	case peers.ServerShelved:
		return powerShutdown, "shelved", nil
	case peers.ServerShelvedOffloaded:
		return powerNoState, "shelved_offloaded", nil
	case peers.ServerRescue:
		return powerRunning, "rescued", nil
	case peers.ServerError:
		return powerNoState, "error", nil
	case peers.ServerDeleted:
		return powerNoState, "deleted", nil
	}
	return powerNoState, strings.ToLower(string(st)), nil
}

func links(r *http.Request, path string) []map[string]string {
	base := identity.BaseURL(r) + "/compute"
	return []map[string]string{{"rel": "self", "href": base + "/v2.1/" + path}, {"rel": "bookmark", "href": base + "/" + path}}
}

func bookmark(r *http.Request, path string) []map[string]string {
	return []map[string]string{{"rel": "bookmark", "href": identity.BaseURL(r) + "/compute/" + path}}
}

// addressesView groups addresses by network label, as Nova does; extended
// adds the OS-EXT-IPS keys (every view but 2.1's update and rebuild).
func addressesView(as []peers.Address, extended bool) map[string][]map[string]any {
	out := map[string][]map[string]any{}
	for _, a := range as {
		typ := a.Type
		if typ == "" {
			typ = "fixed"
		}
		v := map[string]any{"addr": a.Addr, "version": a.Version}
		if extended {
			v["OS-EXT-IPS:type"], v["OS-EXT-IPS-MAC:mac_addr"] = typ, a.MAC
		}
		out[a.Network] = append(out[a.Network], v)
	}
	return out
}

// viewKind is which of Nova's server representations a response is.
type viewKind int

const (
	viewIndex   viewKind = iota // GET /servers
	viewDetail                  // GET /servers/detail
	viewShow                    // GET /servers/{id}
	viewUpdate                  // PUT /servers/{id}
	viewRebuild                 // the rebuild action's answer
)

// progressStatuses are the statuses Nova shows progress for.
var progressStatuses = map[peers.ServerStatus]bool{peers.ServerActive: true, peers.ServerBuild: true,
	"REBUILD": true, "RESIZE": true, "VERIFY_RESIZE": true, "MIGRATING": true}

// hostIDOf is Nova's hostId of a project's server on a peer's host: a
// hash, so a tenant can tell whether two servers share a host without
// learning the host; "" when the host is unknown.
func hostIDOf(project, peerID, host string) string {
	if host == "" {
		return ""
	}
	sum := sha256.Sum224([]byte(project + peerID + "/" + host))
	return hex.EncodeToString(sum[:])
}

// serverView renders a server as Nova does at the request's microversion:
// the index view (id, name, links), or the whole server for detail, show,
// update and rebuild, where update and rebuild show the smaller 2.1 set
// until 2.75. A server whose peer did not answer is Nova 2.69's minimal
// construct.
func serverView(r *http.Request, s Server, kind viewKind) map[string]any {
	if s.Unreachable {
		return unreachableView(r, s, kind)
	}
	v := map[string]any{"id": s.ID, "name": s.Name, "links": links(r, "servers/"+s.ID)}
	if kind == viewIndex {
		return v
	}
	full := kind == viewDetail || kind == viewShow || at(r, "2.75") // 2.75: update and rebuild answer as show
	admin := isAdmin(r)
	hostID := hostIDOf(s.Project, s.PeerID, s.Host)
	for k, val := range map[string]any{
		"status": string(s.Status), "tenant_id": s.Project, "user_id": s.UserID, "metadata": s.Metadata,
		"flavor": flavorOfServer(r, s), "image": imageOfServer(r, s),
		"created": s.CreatedAt.UTC().Format(novaTime), "updated": s.UpdatedAt.UTC().Format(novaTime),
		"addresses": addressesView(s.Addresses, full), "accessIPv4": s.AccessIPv4, "accessIPv6": s.AccessIPv6,
		"hostId": hostID, "OS-DCF:diskConfig": "MANUAL",
	} {
		v[k] = val
	}
	if progressStatuses[s.Status] {
		progress := 0
		if s.Status == peers.ServerActive {
			progress = 100
		}
		v["progress"] = progress
	}
	if (s.Status == peers.ServerError || s.Status == peers.ServerDeleted) && s.Fault != "" {
		v["fault"] = map[string]any{"code": 500, "message": s.Fault, "created": s.UpdatedAt.UTC().Format(novaTime)}
	}
	if full {
		fullView(r, s, v, kind, admin)
	}
	if at(r, "2.9") {
		v["locked"] = s.Locked
	}
	if at(r, "2.19") {
		v["description"] = s.Description
	}
	if at(r, "2.26") {
		v["tags"] = s.Tags
	}
	if at(r, "2.63") {
		v["trusted_image_certificates"] = nil // the broker refuses them on create
	}
	if at(r, "2.71") && kind != viewDetail {
		v["server_groups"] = serverGroups(s)
	}
	if at(r, "2.73") {
		var reason any
		if s.Locked && s.LockedReason != "" {
			reason = s.LockedReason
		}
		v["locked_reason"] = reason
	}
	if at(r, "2.90") {
		v["OS-EXT-SRV-ATTR:hostname"] = s.Hostname // every user's from 2.90
	}
	return v
}

// fullView adds what update and rebuild leave out before 2.75.
func fullView(r *http.Request, s Server, v map[string]any, kind viewKind, admin bool) {
	power, vm, task := serverStates(s)
	var key any
	if s.KeyName != "" {
		key = s.KeyName
	}
	var launched any
	if s.Status != peers.ServerBuild {
		launched = s.CreatedAt.UTC().Format("2006-01-02T15:04:05.000000")
	}
	vols := []map[string]any{}
	for _, id := range s.Volumes {
		a := map[string]any{"id": id}
		if at(r, "2.3") {
			a["delete_on_termination"] = slices.Contains(s.DeleteOnTermination, id)
		}
		vols = append(vols, a)
	}
	for k, val := range map[string]any{
		"key_name": key, "config_drive": "", "OS-EXT-AZ:availability_zone": s.Zone,
		"OS-EXT-STS:power_state": power, "OS-EXT-STS:vm_state": vm, "OS-EXT-STS:task_state": task,
		"OS-SRV-USG:launched_at": launched, "OS-SRV-USG:terminated_at": nil,
		"os-extended-volumes:volumes_attached": vols,
		"security_groups":                      groupNames(s.SecurityGroups),
	} {
		v[k] = val
	}
	if admin {
		// The extended server attributes are an admin's, as in Nova: the
		// peer is the host, its host the hypervisor.
		v["OS-EXT-SRV-ATTR:host"], v["OS-EXT-SRV-ATTR:hypervisor_hostname"] = s.Zone, s.Host
		v["OS-EXT-SRV-ATTR:instance_name"] = s.PeerServerID
		if at(r, "2.3") {
			var userData any
			if s.UserData != "" {
				userData = s.UserData
			}
			for k, val := range map[string]any{
				"OS-EXT-SRV-ATTR:hostname": s.Hostname, "OS-EXT-SRV-ATTR:reservation_id": s.ReservationID,
				"OS-EXT-SRV-ATTR:launch_index": s.LaunchIndex, "OS-EXT-SRV-ATTR:kernel_id": "",
				"OS-EXT-SRV-ATTR:ramdisk_id": "", "OS-EXT-SRV-ATTR:root_device_name": nil,
			} {
				v[k] = val
			}
			if kind != viewRebuild { // Nova's rebuild answers user_data on its own (2.57)
				v["OS-EXT-SRV-ATTR:user_data"] = userData
			}
		}
		if at(r, "2.16") {
			v["host_status"] = s.HostStatus
		}
	}
}

// unreachableView is Nova 2.69's minimal construct of a server in a down
// cell: the index view has id, status and links; detail adds the project
// and the creation time; show also the flavor, image, zone, power state
// and user.
func unreachableView(r *http.Request, s Server, kind viewKind) map[string]any {
	v := map[string]any{"id": s.ID, "status": string(StatusUnknown), "links": links(r, "servers/"+s.ID)}
	if kind == viewIndex {
		return v
	}
	v["tenant_id"], v["created"] = s.Project, s.CreatedAt.UTC().Format(novaTime)
	if kind == viewDetail {
		return v
	}
	user := s.UserID
	if user == "" {
		user = "UNKNOWN"
	}
	v["user_id"], v["image"], v["flavor"] = user, imageOfServer(r, s), flavorOfServer(r, s)
	v["OS-EXT-AZ:availability_zone"], v["OS-EXT-STS:power_state"] = s.Zone, powerNoState
	if at(r, "2.71") {
		v["server_groups"] = serverGroups(s)
	}
	return v
}

func serverGroups(s Server) []string {
	if s.ServerGroups == nil {
		return []string{}
	}
	return s.ServerGroups
}

func imageOfServer(r *http.Request, s Server) any {
	if s.ImageID == "" {
		return "" // booted from a volume
	}
	return map[string]any{"id": s.ImageID, "links": bookmark(r, "images/"+s.ImageID)}
}

// flavorOfServer is the server's flavor: a link before 2.47, its sizes
// and name (and extra specs, which Nova's default policy shows to the
// project) from 2.47.
func flavorOfServer(r *http.Request, s Server) map[string]any {
	if !at(r, "2.47") {
		return map[string]any{"id": s.FlavorID, "links": bookmark(r, "flavors/"+s.FlavorID)}
	}
	specs := s.FlavorExtraSpecs
	if specs == nil {
		specs = map[string]string{}
	}
	return map[string]any{"vcpus": s.VCPUs, "ram": s.RAMMiB, "disk": s.DiskGiB, "ephemeral": s.EphemeralGiB,
		"swap": 0, "original_name": s.FlavorName, "extra_specs": specs}
}

func isAdmin(r *http.Request) bool {
	t, _ := identity.TokenFrom(r.Context())
	return t.CloudAdmin()
}

// bdmUUID is a volume attachment's block device mapping ID (Nova 2.89):
// stable for a server and volume, the same on every replica.
func bdmUUID(serverID, volumeID string) string {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte("cloudmux:bdm:"+serverID+"/"+volumeID)).String()
}
