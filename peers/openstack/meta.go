package openstack

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/cloudmux/cloudmux/peers"
)

// Neutron resources (networks, subnets, ports) have no metadata, so the
// driver carries it twice:
//
//   - Tags, one per pair: "KEY=VALUE", with '%', '=' and ',' (and control
//     characters) in KEY and VALUE percent-escaped, so a tag splits back
//     unambiguously and can be named in Neutron's comma-separated tags
//     filter. Operators find cloudmux's resources with
//     `openstack network list --tags cloudmux_id=ID`. Neutron takes no
//     tags in a create, so they are set right after it (the resource is
//     deleted again if that fails).
//   - The description, set in the create itself so the pairs are there
//     from the first instant (a broker that dies between create and
//     tagging still finds its resource when it rescans): "cloudmux:"
//     followed by the pairs as a JSON object, when that fits Neutron's
//     255 characters; otherwise the description stays empty and the tags
//     alone carry the metadata.
//
// Reading merges both, tags winning. Tags not of the KEY=VALUE form
// (an operator's own) are ignored. Lists filter on metadata here, after
// listing the project's resources, so a resource whose tags are missing
// is still matched by its description.

const (
	metaDescPrefix = "cloudmux:"
	neutronMaxLen  = 255
)

// encodeMeta returns the description and tags carrying m. A pair whose tag
// exceeds Neutron's length limit is ErrInvalid.
func encodeMeta(m map[string]string) (string, []string, error) {
	if len(m) == 0 {
		return "", nil, nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	tags := make([]string, 0, len(m))
	for _, k := range keys {
		if k == "" {
			return "", nil, fmt.Errorf("metadata with an empty key: %w", peers.ErrInvalid)
		}
		t := escapeTag(k) + "=" + escapeTag(m[k])
		if len(t) > neutronMaxLen {
			return "", nil, fmt.Errorf("metadata %q: key and value take %d characters as a Neutron tag, the limit is %d: %w", k, len(t), neutronMaxLen, peers.ErrInvalid)
		}
		tags = append(tags, t)
	}
	b, _ := json.Marshal(m) // map[string]string always marshals; keys come sorted
	desc := metaDescPrefix + string(b)
	if len(desc) > neutronMaxLen {
		desc = ""
	}
	return desc, tags, nil
}

// decodeMeta reads metadata back from a description and tags.
func decodeMeta(desc string, tags []string) map[string]string {
	var out map[string]string
	if rest, ok := strings.CutPrefix(desc, metaDescPrefix); ok {
		_ = json.Unmarshal([]byte(rest), &out) // not ours after all: no metadata from it
	}
	for _, t := range tags {
		k, v, ok := strings.Cut(t, "=")
		if !ok {
			continue
		}
		k, kerr := unescapeTag(k)
		v, verr := unescapeTag(v)
		if kerr != nil || verr != nil || k == "" {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[k] = v
	}
	return out
}

func escapeTag(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch == '%' || ch == '=' || ch == ',' || ch < 0x20 || ch == 0x7f {
			fmt.Fprintf(&b, "%%%02X", ch)
			continue
		}
		b.WriteByte(ch)
	}
	return b.String()
}

func unescapeTag(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("truncated escape in %q", s)
		}
		ch, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", fmt.Errorf("bad escape in %q: %w", s, err)
		}
		b.WriteByte(byte(ch))
		i += 2
	}
	return b.String(), nil
}

// A peer that is itself a cloudmux broker (its catalog lists a "cloudmux"
// service) reserves the cloudmux_ metadata prefix for its own keys, and
// would mix them with ours on the resources it creates below. Towards such
// a peer the driver escapes keys by prefix: a key starting with
// "cloudmux_" or fedPrefix gets fedPrefix prepended on the way out and one
// fedPrefix stripped on the way in. The mapping is a bijection, so brokers
// stack to any depth (A -> B -> C) with every layer's keys intact.
const fedPrefix = "cmxfed_"

const brokerMetaPrefix = "cloudmux_"

func escapeKey(k string) string {
	if strings.HasPrefix(k, brokerMetaPrefix) || strings.HasPrefix(k, fedPrefix) {
		return fedPrefix + k
	}
	return k
}

func unescapeKey(k string) string {
	return strings.TrimPrefix(k, fedPrefix)
}

// outMeta prepares metadata for the peer.
func (c *Cloud) outMeta(m map[string]string) map[string]string {
	if !c.federated || m == nil {
		return m
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[escapeKey(k)] = v
	}
	return out
}

// inMeta reads metadata from the peer back into the broker's keys.
func (c *Cloud) inMeta(m map[string]string) map[string]string {
	if !c.federated || m == nil {
		return m
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[unescapeKey(k)] = v
	}
	return out
}
