package ec2

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/cloudmux/cloudmux/peers"
)

// Regions, zones, account attributes and key pairs: the small describes.

type regionItem struct {
	RegionName     string `xml:"regionName"`
	RegionEndpoint string `xml:"regionEndpoint"`
	OptInStatus    string `xml:"optInStatus"`
}

// describeRegions names the one region the broker is.
func (a *API) describeRegions(_ context.Context, c *call) (any, error) {
	names := c.params.list("RegionName")
	var out []regionItem
	if len(names) == 0 || matchAny(names, a.region()) {
		out = append(out, regionItem{RegionName: a.region(), RegionEndpoint: baseHost(c.r), OptInStatus: "opt-in-not-required"})
	}
	for _, f := range c.params.filters() {
		if f.Name == "region-name" && !matchAny(f.Values, a.region()) {
			out = nil
		}
	}
	return struct {
		RegionInfo items[regionItem] `xml:"regionInfo"`
	}{list(out)}, nil
}

type zoneItem struct {
	ZoneName   string          `xml:"zoneName"`
	ZoneState  string          `xml:"zoneState"`
	RegionName string          `xml:"regionName"`
	ZoneID     string          `xml:"zoneId"`
	ZoneType   string          `xml:"zoneType"`
	GroupName  string          `xml:"groupName"`
	OptIn      string          `xml:"optInStatus"`
	MessageSet items[struct{}] `xml:"messageSet"`
}

// describeZones lists a zone per peer, as Nova's os-availability-zone
// does, so Placement.AvailabilityZone pins an instance to a peer.
func (a *API) describeZones(_ context.Context, c *call) (any, error) {
	names := c.params.list("ZoneName")
	filters := c.params.filters()
	var out []zoneItem
	members := a.Pool.Members()
	sort.Slice(members, func(i, j int) bool { return members[i].Peer.Name < members[j].Peer.Name })
	for _, m := range members {
		z := zoneItem{ZoneName: m.Peer.Name, ZoneState: "available", RegionName: a.region(), ZoneID: m.Peer.ID,
			ZoneType: "availability-zone", GroupName: a.region(), OptIn: "opt-in-not-required"}
		if !m.Usable() {
			z.ZoneState = "unavailable"
		}
		if len(names) > 0 && !matchAny(names, z.ZoneName) {
			continue
		}
		if !zoneMatches(z, filters) {
			continue
		}
		out = append(out, z)
	}
	return struct {
		AvailabilityZoneInfo items[zoneItem] `xml:"availabilityZoneInfo"`
	}{list(out)}, nil
}

func zoneMatches(z zoneItem, filters []filter) bool {
	for _, f := range filters {
		var v string
		switch f.Name {
		case "zone-name":
			v = z.ZoneName
		case "state":
			v = z.ZoneState
		case "region-name":
			v = z.RegionName
		case "zone-id":
			v = z.ZoneID
		case "zone-type":
			v = z.ZoneType
		default:
			continue
		}
		if !matchAny(f.Values, v) {
			return false
		}
	}
	return true
}

type keyItem struct {
	KeyPairID   string     `xml:"keyPairId"`
	KeyName     string     `xml:"keyName"`
	Fingerprint string     `xml:"keyFingerprint"`
	KeyType     string     `xml:"keyType"`
	TagSet      items[Tag] `xml:"tagSet"`
	PublicKey   string     `xml:"publicKey,omitempty"`
	CreateTime  string     `xml:"createTime"`
}

func keyView(kp peers.Keypair, withPublic bool) keyItem {
	k := keyItem{KeyPairID: keypairID(kp.UserID, kp.Name), KeyName: kp.Name, Fingerprint: kp.Fingerprint,
		KeyType: keyType(kp.PublicKey), TagSet: list[Tag](nil), CreateTime: kp.CreatedAt.UTC().Format(timeFormat)}
	if withPublic {
		k.PublicKey = kp.PublicKey
	}
	return k
}

// timeFormat is how EC2 writes times.
const timeFormat = "2006-01-02T15:04:05.000Z"

func keyType(public string) string {
	if strings.HasPrefix(public, "ssh-ed25519") {
		return "ed25519"
	}
	return "rsa"
}

// describeKeyPairs lists the caller's key pairs: the same ones Nova's
// os-keypairs shows (they belong to the user, as in Nova).
func (a *API) describeKeyPairs(ctx context.Context, c *call) (any, error) {
	kps, err := a.Keypairs.List(ctx, c.token.UserID)
	if err != nil {
		return nil, err
	}
	names := c.params.list("KeyName")
	byName := map[string]bool{}
	withPublic := c.params.get("IncludePublicKey") == "true"
	var out []keyItem
	for _, kp := range kps {
		byName[kp.Name] = true
		if len(names) > 0 && !contains(names, kp.Name) {
			continue
		}
		k := keyView(kp, withPublic)
		if keyMatches(k, c.params.filters()) {
			out = append(out, k)
		}
	}
	for _, n := range names {
		if !byName[n] {
			return nil, notFound("InvalidKeyPair.NotFound", "The key pair '%s' does not exist", n)
		}
	}
	return struct {
		KeySet items[keyItem] `xml:"keySet"`
	}{list(out)}, nil
}

func keyMatches(k keyItem, filters []filter) bool {
	for _, f := range filters {
		var v string
		switch f.Name {
		case "key-name":
			v = k.KeyName
		case "fingerprint":
			v = k.Fingerprint
		case "key-pair-id":
			v = k.KeyPairID
		default:
			continue
		}
		if !matchAny(f.Values, v) {
			return false
		}
	}
	return true
}

func (a *API) createKeypair(ctx context.Context, c *call, public string) (peers.Keypair, error) {
	name, e := c.params.require("KeyName")
	if e != nil {
		return peers.Keypair{}, e
	}
	kp, err := a.Keypairs.Create(ctx, c.token.ProjectID, c.token.UserID, peers.KeypairSpec{Name: name, PublicKey: public, UserID: c.token.UserID, Type: "ssh"})
	switch {
	case errors.Is(err, peers.ErrConflict):
		return kp, notFound("InvalidKeyPair.Duplicate", "The keypair '%s' already exists.", name)
	case errors.Is(err, peers.ErrInvalid) && public != "":
		return kp, errorf(http.StatusBadRequest, "InvalidKeyPair.Format", "Key is not in valid OpenSSH public key format").hiding(err)
	}
	return kp, err
}

// createKeyPair generates an RSA key pair and returns its private key
// once, as keyMaterial.
func (a *API) createKeyPair(ctx context.Context, c *call) (any, error) {
	if t := c.params.get("KeyType"); t != "" && t != "rsa" {
		return nil, invalidParameter("KeyType %q: generated key pairs are rsa; import an ed25519 key with ImportKeyPair", t)
	}
	if f := c.params.get("KeyFormat"); f != "" && f != "pem" {
		return nil, invalidParameter("KeyFormat %q: only pem is offered", f)
	}
	kp, err := a.createKeypair(ctx, c, "")
	if err != nil {
		return nil, err
	}
	return struct {
		KeyName     string `xml:"keyName"`
		Fingerprint string `xml:"keyFingerprint"`
		KeyMaterial string `xml:"keyMaterial"`
		KeyPairID   string `xml:"keyPairId"`
	}{kp.Name, kp.Fingerprint, kp.PrivateKey, keypairID(kp.UserID, kp.Name)}, nil
}

// importKeyPair stores a public key; PublicKeyMaterial is base64 of the
// OpenSSH line (the SDKs encode the blob), or the line itself.
func (a *API) importKeyPair(ctx context.Context, c *call) (any, error) {
	material, e := c.params.require("PublicKeyMaterial")
	if e != nil {
		return nil, e
	}
	public := material
	if raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(material)); err == nil {
		public = string(raw)
	}
	kp, err := a.createKeypair(ctx, c, strings.TrimSpace(public))
	if err != nil {
		return nil, err
	}
	return struct {
		KeyName     string `xml:"keyName"`
		Fingerprint string `xml:"keyFingerprint"`
		KeyPairID   string `xml:"keyPairId"`
	}{kp.Name, kp.Fingerprint, keypairID(kp.UserID, kp.Name)}, nil
}

// deleteKeyPair succeeds whether or not the key pair exists, as EC2's.
func (a *API) deleteKeyPair(ctx context.Context, c *call) (any, error) {
	name, e := c.params.require("KeyName")
	if e != nil {
		return nil, e
	}
	if err := a.Keypairs.Delete(ctx, c.token.ProjectID, c.token.UserID, name); err != nil && !errors.Is(err, peers.ErrNotFound) {
		return nil, err
	}
	return returnTrue{true}, nil
}

type attributeItem struct {
	Name   string         `xml:"attributeName"`
	Values items[attrVal] `xml:"attributeValueSet"`
}

type attrVal struct {
	Value string `xml:"attributeValue"`
}

// describeAccountAttributes answers what EC2 tools ask before they launch:
// VPC only, no default VPC, and the per-request instance limit.
func (a *API) describeAccountAttributes(_ context.Context, c *call) (any, error) {
	all := []attributeItem{
		{Name: "supported-platforms", Values: list([]attrVal{{"VPC"}})},
		{Name: "default-vpc", Values: list([]attrVal{{"none"}})},
		{Name: "max-instances", Values: list([]attrVal{{strconv.Itoa(maxInstancesPerRun)}})},
		{Name: "vpc-max-security-groups-per-interface", Values: list([]attrVal{{"5"}})},
	}
	names := c.params.list("AttributeName")
	var out []attributeItem
	for _, at := range all {
		if len(names) == 0 || contains(names, at.Name) {
			out = append(out, at)
		}
	}
	return struct {
		Attributes items[attributeItem] `xml:"accountAttributeSet"`
	}{list(out)}, nil
}
