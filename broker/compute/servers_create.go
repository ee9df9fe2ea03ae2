package compute

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/osapi"
)

// serverCreateRequest is Nova's POST /servers body. Like Nova's schema it
// takes no attribute it does not know (decoded strictly), and an
// attribute of a later microversion than the request's is refused the
// same way. What the broker cannot do (a password, file injection, a
// config drive on demand, extra block devices, trusted certificates) is
// refused by name, never dropped.
type serverCreateRequest struct {
	Server *serverBody    `json:"server"`
	Hints  map[string]any `json:"OS-SCH-HNT:scheduler_hints"`
	// Nova takes the hints under either name; gophercloud sends this one.
	OSHints map[string]any `json:"os:scheduler_hints"`
}

type serverBody struct {
	Name                *string           `json:"name"`
	FlavorRef           json.RawMessage   `json:"flavorRef"`
	ImageRef            *string           `json:"imageRef"`
	AdminPass           *string           `json:"adminPass"`
	Metadata            map[string]string `json:"metadata"`
	Networks            json.RawMessage   `json:"networks"`
	DiskConfig          *string           `json:"OS-DCF:diskConfig"`
	AccessIPv4          *string           `json:"accessIPv4"`
	AccessIPv6          *string           `json:"accessIPv6"`
	Personality         json.RawMessage   `json:"personality"`
	AvailabilityZone    string            `json:"availability_zone"`
	LegacyBlockDevices  json.RawMessage   `json:"block_device_mapping"`
	BlockDevices        []blockDevice     `json:"block_device_mapping_v2"`
	ConfigDrive         json.RawMessage   `json:"config_drive"`
	KeyName             string            `json:"key_name"`
	MinCount            json.RawMessage   `json:"min_count"`
	MaxCount            json.RawMessage   `json:"max_count"`
	ReturnReservationID json.RawMessage   `json:"return_reservation_id"`
	SecurityGroups      json.RawMessage   `json:"security_groups"`
	UserData            *string           `json:"user_data"`
	Description         optionalString    `json:"description"`                // 2.19
	Tags                *[]string         `json:"tags"`                       // 2.52
	TrustedCerts        json.RawMessage   `json:"trusted_image_certificates"` // 2.63
	Host                *string           `json:"host"`                       // 2.74
	HypervisorHostname  *string           `json:"hypervisor_hostname"`        // 2.74
	Hostname            *string           `json:"hostname"`                   // 2.90
}

// optionalString is a JSON string or null that remembers whether it was
// given at all.
type optionalString struct {
	Set   bool
	Value *string
}

func (o *optionalString) UnmarshalJSON(b []byte) error {
	o.Set = true
	if string(b) == "null" {
		return nil
	}
	return json.Unmarshal(b, &o.Value)
}

// blockDevice is one block_device_mapping_v2 item.
type blockDevice struct {
	BootIndex       json.RawMessage `json:"boot_index"`
	UUID            string          `json:"uuid"`
	SourceType      string          `json:"source_type"`
	DestinationType string          `json:"destination_type"`
	VolumeSize      json.RawMessage `json:"volume_size"`
	DeleteOnTerm    json.RawMessage `json:"delete_on_termination"`
	DeviceName      string          `json:"device_name"`
	DeviceType      string          `json:"device_type"`
	DiskBus         string          `json:"disk_bus"`
	GuestFormat     string          `json:"guest_format"`
	VolumeID        string          `json:"volume_id"`
	ImageID         string          `json:"image_id"`
	SnapshotID      string          `json:"snapshot_id"`
	NoDevice        json.RawMessage `json:"no_device"`
	VirtualName     string          `json:"virtual_name"`
	ConnectionInfo  string          `json:"connection_info"`
	Tag             *string         `json:"tag"`         // 2.32, 2.42+
	VolumeType      *string         `json:"volume_type"` // 2.67+
}

// networkItem is one item of a networks list.
type networkItem struct {
	UUID    string  `json:"uuid"`
	Port    *string `json:"port"`
	FixedIP string  `json:"fixed_ip"`
	Tag     *string `json:"tag"` // 2.32 to 2.36, 2.42+
}

// unexpected is Nova's refusal of an attribute its schema lacks.
func unexpected(field string) error {
	return invalid(field, "Invalid input for field/attribute server. Additional properties are not allowed ('%s' was unexpected)", field)
}

// decodeStrict reads raw into v refusing unknown attributes, as Nova's
// schemas (additionalProperties: false) do.
func decodeStrict(raw []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	return d.Decode(v)
}

// jsonBool reads a boolean as Nova's parameter_types.boolean takes it.
func jsonBool(raw json.RawMessage) (val, ok bool) {
	s := strings.ToLower(strings.Trim(string(raw), `"`))
	switch s {
	case "true", "1", "yes", "on", "y", "t":
		return true, true
	case "false", "0", "no", "off", "n", "f":
		return false, true
	}
	return false, false
}

// refString reads a reference Nova takes as a string or a number
// (flavorRef: 1 and "1" both occur in the wild).
func refString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// versioned refuses the attributes the request's microversion does not
// have, and those the broker does not offer.
func (b *serverBody) versioned(r *http.Request) error {
	var errs []error
	for _, f := range []struct {
		name, since string
		given       bool
	}{
		{"description", "2.19", b.Description.Set}, {"tags", "2.52", b.Tags != nil},
		{"trusted_image_certificates", "2.63", b.TrustedCerts != nil}, {"host", "2.74", b.Host != nil},
		{"hypervisor_hostname", "2.74", b.HypervisorHostname != nil}, {"hostname", "2.90", b.Hostname != nil},
	} {
		if f.given && !at(r, f.since) {
			errs = append(errs, unexpected(f.name))
		}
	}
	if b.Personality != nil {
		if at(r, "2.57") {
			errs = append(errs, unexpected("personality"))
		} else if s := string(b.Personality); s != "null" && s != "[]" {
			errs = append(errs, invalid("personality", "Invalid input for field/attribute personality: file injection is not offered; pass files in user_data"))
		}
	}
	if b.AdminPass != nil {
		errs = append(errs, invalid("adminPass", "Invalid input for field/attribute adminPass: a password cannot be set in the guest here; use key_name"))
	}
	if b.DiskConfig != nil && *b.DiskConfig != "MANUAL" {
		errs = append(errs, invalid("OS-DCF:diskConfig", "Invalid input for field/attribute OS-DCF:diskConfig. Value: %s. Only MANUAL is offered", *b.DiskConfig))
	}
	if b.ConfigDrive != nil && string(b.ConfigDrive) != "null" {
		if on, ok := jsonBool(b.ConfigDrive); !ok || on {
			errs = append(errs, invalid("config_drive", "Invalid input for field/attribute config_drive: a config drive on demand is not offered; each cloud decides"))
		}
	}
	if s := string(b.LegacyBlockDevices); s != "" && s != "null" && s != "[]" {
		errs = append(errs, invalid("block_device_mapping", "Invalid input for field/attribute block_device_mapping: use block_device_mapping_v2"))
	}
	if s := string(b.TrustedCerts); s != "" && s != "null" {
		errs = append(errs, invalid("trusted_image_certificates", "Invalid input for field/attribute trusted_image_certificates: image signature verification is not offered"))
	}
	if b.HypervisorHostname != nil {
		errs = append(errs, invalid("hypervisor_hostname", "Invalid input for field/attribute hypervisor_hostname: a peer's hypervisor cannot be chosen; give host (the peer)"))
	}
	if b.Host != nil && !isAdmin(r) {
		return &Error{Field: "host", Message: "Policy doesn't allow compute:servers:create:requested_destination to be performed.", Err: ErrForbidden}
	}
	if b.Networks == nil && at(r, "2.37") {
		errs = append(errs, invalid("networks", "Invalid input for field/attribute server. 'networks' is a required property"))
	}
	return errors.Join(errs...)
}

// createSpec turns a request into a spec; problems of shape are 400s
// naming the field.
func (req serverCreateRequest) createSpec(r *http.Request) (CreateSpec, error) {
	b := req.Server
	if err := b.versioned(r); err != nil {
		return CreateSpec{}, err
	}
	spec := CreateSpec{FlavorRef: refString(b.FlavorRef), KeyName: b.KeyName, Metadata: b.Metadata, AvailabilityZone: b.AvailabilityZone}
	var errs []error
	if b.Name == nil {
		errs = append(errs, invalid("name", "Invalid input for field/attribute server. 'name' is a required property"))
	} else {
		spec.Name = *b.Name
	}
	if b.ImageRef != nil {
		spec.ImageRef = *b.ImageRef
	}
	switch {
	case b.Description.Set:
		spec.Description = b.Description.Value
	case !at(r, "2.19"):
		spec.Description = b.Name // as Nova: before 2.19 the description is the name
	}
	if b.Tags != nil {
		spec.Tags = *b.Tags
	}
	if b.Hostname != nil {
		errs = append(errs, CheckHostname(*b.Hostname))
		spec.Hostname = *b.Hostname
	}
	if b.AccessIPv4 != nil {
		spec.AccessIPv4 = *b.AccessIPv4
	}
	if b.AccessIPv6 != nil {
		spec.AccessIPv6 = *b.AccessIPv6
	}
	if b.Host != nil {
		if spec.AvailabilityZone != "" && spec.AvailabilityZone != *b.Host {
			errs = append(errs, invalid("host", "Invalid input: host %s is not in availability zone %s (each peer is its own zone)", *b.Host, spec.AvailabilityZone))
		}
		spec.AvailabilityZone = *b.Host // the broker's hosts are its peers
	}
	errs = append(errs, b.networks(r, &spec), b.userData(&spec), b.blockDevices(r, &spec))
	if req.Hints == nil {
		req.Hints = map[string]any{}
	}
	maps.Copy(req.Hints, req.OSHints)
	errs = append(errs, hints(req.Hints, &spec))
	return spec, errors.Join(errs...)
}

// counts reads min_count and max_count: how many servers the request
// asks for at least and at most.
func (b *serverBody) counts() (lo, hi int, err error) {
	count := func(raw json.RawMessage, field string) (int, error) {
		if raw == nil {
			return 0, nil
		}
		n, err := strconv.Atoi(strings.Trim(string(raw), `"`))
		if err != nil || n < 1 {
			return 0, invalid(field, "Invalid input for field/attribute %s. Value: %s. It must be a positive integer", field, raw)
		}
		return n, nil
	}
	lo, err1 := count(b.MinCount, "min_count")
	hi, err2 := count(b.MaxCount, "max_count")
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, err
	}
	// As Nova: min_count defaults to 1, max_count to min_count.
	lo = max(lo, 1)
	if hi == 0 {
		hi = lo
	}
	if lo > hi {
		return 0, 0, invalid("min_count", "min_count must be <= max_count")
	}
	return lo, hi, nil
}

// networks reads the networks attribute: a list, or (2.37) "auto" or
// "none".
func (b *serverBody) networks(r *http.Request, spec *CreateSpec) error {
	if len(b.Networks) == 0 || string(b.Networks) == "null" {
		return nil
	}
	var mode string
	if json.Unmarshal(b.Networks, &mode) == nil {
		spec.NetworksMode = mode
		return nil
	}
	var list []networkItem
	if err := decodeStrict(b.Networks, &list); err != nil {
		return invalid("networks", "Invalid input for field/attribute networks: want a list of {uuid|port, fixed_ip, tag} or \"auto\" or \"none\" (%v)", err)
	}
	var errs []error
	for i, n := range list {
		nic := NIC{Network: n.UUID, FixedIP: n.FixedIP}
		if n.Port != nil {
			nic.Port = *n.Port
		}
		if at(r, "2.37") && nic.Port == "" && uuid.Validate(nic.Network) != nil {
			errs = append(errs, invalid("networks", "Invalid input for field/attribute networks[%d].uuid. Value: %s. It is not a UUID", i, nic.Network))
		}
		if n.Tag != nil {
			if !within(r, "2.32", "2.36") && !at(r, "2.42") {
				errs = append(errs, invalid("networks", "Invalid input for field/attribute networks[%d]. Additional properties are not allowed ('tag' was unexpected)", i))
				continue
			}
			spec.DeviceTags = append(spec.DeviceTags, DeviceTag{Network: nic.Network, Port: nic.Port, Tag: *n.Tag})
		}
		spec.NICs = append(spec.NICs, nic)
	}
	return errors.Join(errs...)
}

// userData decodes user_data (base64, padded or not).
func (b *serverBody) userData(spec *CreateSpec) error {
	if b.UserData == nil {
		return nil
	}
	if len(*b.UserData) > MaxUserData {
		return invalid("user_data", "Invalid input for field/attribute user_data: at most %d characters of base64", MaxUserData)
	}
	if data, err := base64.StdEncoding.DecodeString(*b.UserData); err == nil {
		spec.UserData = data
	} else if data, err := base64.RawStdEncoding.DecodeString(*b.UserData); err == nil {
		spec.UserData = data
	} else {
		return invalid("user_data", "Invalid input for field/attribute user_data: not valid base64 (%v)", err)
	}
	return nil
}

// blockDevices reads block_device_mapping_v2: the boot disk only (a
// volume, a new volume from an image, or the image on a local disk);
// other volumes attach after the boot.
func (b *serverBody) blockDevices(r *http.Request, spec *CreateSpec) error {
	var errs []error
	for i, bd := range b.BlockDevices {
		bad := func(format string, args ...any) {
			errs = append(errs, invalid("block_device_mapping_v2", "Invalid input for field/attribute block_device_mapping_v2[%d]: "+format, append([]any{i}, args...)...))
		}
		if bd.Tag != nil && !within(r, "2.32", "2.32") && !at(r, "2.42") {
			bad("Additional properties are not allowed ('tag' was unexpected)")
			continue
		}
		if bd.VolumeType != nil && !at(r, "2.67") {
			bad("Additional properties are not allowed ('volume_type' was unexpected)")
			continue
		}
		if bd.VolumeType != nil && *bd.VolumeType != "" {
			bad("a volume type for the boot volume is not offered; it gets its peer's default type")
			continue
		}
		if boot := strings.Trim(string(bd.BootIndex), `"`); boot != "0" {
			bad("only the boot disk (boot_index 0) is offered; attach other volumes after the boot")
			continue
		}
		if bd.GuestFormat != "" || bd.DiskBus != "" || bd.NoDevice != nil || bd.SnapshotID != "" || bd.DeviceType != "" && bd.DeviceType != "disk" {
			bad("guest_format, disk_bus, device_type other than disk, no_device and snapshots are not offered")
			continue
		}
		id := bd.UUID
		if id == "" {
			id = cmpOr(bd.VolumeID, bd.ImageID)
		}
		del, ok := jsonBool(bd.DeleteOnTerm)
		if bd.DeleteOnTerm != nil && !ok {
			bad("delete_on_termination %s is not a boolean", bd.DeleteOnTerm)
			continue
		}
		switch {
		case bd.SourceType == "image" && bd.DestinationType == "local" && id != "":
			spec.ImageRef = id // the image on the server's own disk, as imageRef
		case id == "" || (bd.DestinationType != "" && bd.DestinationType != "volume"):
			bad("the boot disk must be a volume (destination_type volume) named by uuid")
			continue
		case bd.SourceType == "volume" || bd.SourceType == "" && bd.VolumeID != "":
			spec.BootVolume, spec.ImageRef = id, "" // Nova ignores imageRef when the boot disk is a volume
		case bd.SourceType == "image":
			size, err := strconv.Atoi(strings.Trim(string(bd.VolumeSize), `"`))
			if err != nil || size < 1 {
				bad("a volume from an image needs volume_size, a whole number of GiB")
				continue
			}
			spec.ImageRef, spec.RootVolumeGiB = id, size
		default:
			bad("source_type %q: the boot disk comes from a volume or an image", bd.SourceType)
			continue
		}
		if bd.Tag != nil {
			spec.DeviceTags = append(spec.DeviceTags, DeviceTag{Volume: spec.BootVolume, Boot: true, Tag: *bd.Tag})
		}
		spec.DeleteBootVolume = del && bd.DestinationType != "local"
	}
	return errors.Join(errs...)
}

// hints reads the scheduler hints: "require:K" and "prefer:K" are peer
// labels the server needs or would like (openstack server create --hint
// require:tier=private); the rest reach the policy as they are.
func hints(h map[string]any, spec *CreateSpec) error {
	var errs []error
	for k, v := range h {
		if k == "group" { // Nova's server group hint: a group's ID
			g, ok := v.(string)
			if !ok || g == "" {
				errs = append(errs, invalid("os:scheduler_hints", "Invalid input for field/attribute group: want a server group's ID"))
			}
			spec.Group = g
			continue
		}
		label, required := strings.CutPrefix(k, "require:")
		preferred := false
		if !required {
			label, preferred = strings.CutPrefix(k, "prefer:")
		}
		switch {
		case (required || preferred) && label == "":
			errs = append(errs, invalid("os:scheduler_hints", "Invalid input for field/attribute os:scheduler_hints: hint %q names no label", k))
		case required:
			if spec.RequiredLabels == nil {
				spec.RequiredLabels = map[string]string{}
			}
			spec.RequiredLabels[label] = fmt.Sprint(v)
		case preferred:
			if spec.PreferredLabels == nil {
				spec.PreferredLabels = map[string]string{}
			}
			spec.PreferredLabels[label] = fmt.Sprint(v)
		default:
			if spec.Hints == nil {
				spec.Hints = map[string]string{}
			}
			spec.Hints[k] = fmt.Sprint(v)
		}
	}
	return errors.Join(errs...)
}

func (n *Nova) createServer(w http.ResponseWriter, r *http.Request) {
	var req serverCreateRequest
	raw, err := readBody(w, r)
	if err != nil {
		osapi.Fault(w, r, http.StatusBadRequest, "Invalid input: "+err.Error())
		return
	}
	if err := decodeStrict(raw, &req); err != nil {
		osapi.Fault(w, r, http.StatusBadRequest, fmt.Sprintf(`Invalid input for field/attribute server: %v; expected {"server": {"name": ..., "flavorRef": ..., "imageRef": ...}}`, err))
		return
	}
	if req.Server == nil {
		osapi.Fault(w, r, http.StatusBadRequest, `Invalid input: expected {"server": {...}}`)
		return
	}
	spec, err := req.createSpec(r)
	if err == nil {
		spec.SecurityGroups, err = securityGroupNames(req.Server.SecurityGroups)
	}
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	lo, hi, err := req.Server.counts()
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	made, err := n.Servers.CreateMany(r.Context(), caller(r), spec, lo, hi)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	s := made[0] // Nova answers with the first server of a multi-create
	if ret, _ := jsonBool(req.Server.ReturnReservationID); ret {
		osapi.WriteJSON(w, http.StatusAccepted, map[string]any{"reservation_id": s.ReservationID})
		return
	}
	w.Header().Set("Location", identity.BaseURL(r)+"/compute/v2.1/servers/"+s.ID)
	osapi.WriteJSON(w, http.StatusAccepted, map[string]any{"server": map[string]any{
		"id": s.ID, "links": links(r, "servers/"+s.ID), "adminPass": s.AdminPass,
		"OS-DCF:diskConfig": "MANUAL", "security_groups": groupNames(s.SecurityGroups),
	}})
}

// readBody reads a request body of at most 1 MiB.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	var buf bytes.Buffer
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, 1<<20))
	return buf.Bytes(), err
}
