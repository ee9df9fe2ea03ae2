package registry

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode"
)

var (
	peerNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
	labelKeyRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?$`)
	currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)
)

// MaxLabels bounds a peer's labels, so a record stays well inside the
// store's value limit.
const MaxLabels = 64

// Interfaces lists the endpoint interfaces a peer may select.
var Interfaces = []string{"public", "internal", "admin"}

// Validate checks the record and returns every problem at once, each a
// *FieldError, joined; errors.Is(err, ErrInvalid) holds for the result.
func (p Peer) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}

	switch {
	case p.Name == "":
		bad("name", "is required")
	case !peerNameRE.MatchString(p.Name):
		bad("name", "must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit")
	}

	if !slices.Contains(Kinds, p.Kind) {
		bad("kind", "unknown peer kind %q: must be one of %s", p.Kind, joinKinds())
	}

	e := p.Endpoint
	switch {
	case e.AuthURL == "" && p.Kind == KindOpenStack:
		bad("endpoint.auth_url", "is required for an openstack peer")
	case e.AuthURL != "":
		if reason := checkURL(e.AuthURL); reason != "" {
			bad("endpoint.auth_url", "%s", reason)
		}
	}
	if e.Interface != "" && !slices.Contains(Interfaces, e.Interface) {
		bad("endpoint.interface", "must be one of public, internal, admin; got %q", e.Interface)
	}
	if e.CACert != "" {
		if reason := checkCABundle(e.CACert); reason != "" {
			bad("endpoint.ca_cert", "%s", reason)
		}
	}

	if len(p.Labels) > MaxLabels {
		bad("labels", "at most %d labels; got %d", MaxLabels, len(p.Labels))
	}
	for _, k := range sortedKeys(p.Labels) {
		v := p.Labels[k]
		if !labelKeyRE.MatchString(k) {
			bad("labels."+k, "label keys are 1-63 letters, digits, '.', '_', '/' or '-', starting and ending with a letter or digit")
		}
		if len(v) > 255 || strings.ContainsFunc(v, unicode.IsControl) {
			bad("labels."+k, "label values are at most 255 characters without control characters")
		}
	}

	for name, r := range map[string]Resource{
		"capacity.vcpus": p.Capacity.VCPUs, "capacity.ram_mib": p.Capacity.RAMMiB,
		"capacity.disk_gib": p.Capacity.DiskGiB, "capacity.instances": p.Capacity.Instances,
		"capacity.object_bytes": p.Capacity.ObjectBytes,
	} {
		if r.Total < 0 || r.Used < 0 {
			bad(name, "totals and usage cannot be negative")
		}
	}
	for name, v := range map[string]float64{"cost.vcpu_hour": p.Cost.VCPUHour, "cost.ram_gib_hour": p.Cost.RAMGiBHour, "cost.disk_gib_month": p.Cost.DiskGiBMonth} {
		if v < 0 {
			bad(name, "cannot be negative")
		}
	}
	if p.Cost.Currency != "" && !currencyRE.MatchString(p.Cost.Currency) {
		bad("cost.currency", "must be an ISO 4217 code such as EUR or USD; got %q", p.Cost.Currency)
	}
	if p.Status != "" && !slices.Contains(Statuses, p.Status) {
		bad("status", "must be one of up, degraded, down, maintenance; got %q", p.Status)
	}
	slices.SortStableFunc(errs, func(a, b error) int {
		return strings.Compare(a.(*FieldError).Field, b.(*FieldError).Field)
	})
	return errors.Join(errs...)
}

// checkCABundle accepts PEM CERTIFICATE blocks only: a bundle that also
// holds a private key (a common copy-paste slip) is refused rather than
// stored and shown back.
func checkCABundle(bundle string) string {
	rest := []byte(bundle)
	certs := 0
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return fmt.Sprintf("holds a %s block; a CA bundle holds certificates only", block.Type)
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return "holds a certificate that does not parse: " + err.Error()
		}
		certs++
	}
	if certs == 0 {
		return "holds no PEM certificate"
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return "holds data that is not PEM after the certificates"
	}
	return ""
}

func checkURL(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "is not a valid URL: " + err.Error()
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Sprintf("must be an absolute http or https URL; got scheme %q", u.Scheme)
	case u.Host == "":
		return "must name a host"
	}
	return ""
}

func joinKinds() string {
	s := make([]string, len(Kinds))
	for i, k := range Kinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
