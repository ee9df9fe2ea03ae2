package openstack

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"
	"gopkg.in/yaml.v3"

	"github.com/cloudmux/cloudmux/registry"
)

// Imported is one clouds.yaml entry turned into a peer and its credentials.
type Imported struct {
	Peer        registry.Peer
	Credentials registry.Credentials
}

// ImportOptions tune ImportCloudsYAML.
type ImportOptions struct {
	// Only imports just these cloud names; empty imports every entry.
	Only []string
	// Labels are added to every imported peer.
	Labels map[string]string
	// ReadFile reads cacert paths; nil uses os.ReadFile.
	ReadFile func(path string) ([]byte, error)
}

// ImportCloudsYAML reads a clouds.yaml document into peers. It validates
// everything before returning anything: every problem in every entry comes
// back at once, each a *registry.FieldError named "clouds.NAME.FIELD".
// Entries are returned sorted by name.
func ImportCloudsYAML(data []byte, opts ImportOptions) ([]Imported, error) {
	var doc clouds.Clouds
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&doc); err != nil {
		return nil, &registry.FieldError{Field: "clouds.yaml", Reason: "is not valid YAML: " + err.Error()}
	}
	if len(doc.Clouds) == 0 {
		return nil, &registry.FieldError{Field: "clouds", Reason: "no clouds defined: expected a top-level 'clouds:' map"}
	}
	readFile := opts.ReadFile
	if readFile == nil {
		readFile = os.ReadFile
	}
	var names []string
	for name := range doc.Clouds {
		names = append(names, name)
	}
	slices.Sort(names)
	var errs []error
	for _, want := range opts.Only {
		if _, ok := doc.Clouds[want]; !ok {
			errs = append(errs, &registry.FieldError{Field: "clouds." + want, Reason: "not in the file; it has " + strings.Join(names, ", ")})
		}
	}
	var out []Imported
	for _, name := range names {
		if len(opts.Only) > 0 && !slices.Contains(opts.Only, name) {
			continue
		}
		imp, err := importOne(name, doc.Clouds[name], opts.Labels, readFile)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, imp)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

func importOne(name string, c clouds.Cloud, labels map[string]string, readFile func(string) ([]byte, error)) (Imported, error) {
	prefix := "clouds." + name + "."
	var errs []error
	bad := func(field, reason string) {
		errs = append(errs, &registry.FieldError{Field: prefix + field, Reason: reason})
	}
	if c.Cloud != "" || c.Profile != "" {
		bad("profile", "vendor profiles are not supported: write auth_url and region_name out")
	}
	auth := c.AuthInfo
	if auth == nil {
		auth = &clouds.AuthInfo{}
		bad("auth", "is required")
	}
	iface := c.EndpointType
	if iface == "" {
		iface = c.Interface
	}
	iface = strings.TrimSuffix(iface, "URL") // publicURL, the v2 spelling
	p := registry.Peer{
		Name:   name,
		Kind:   registry.KindOpenStack,
		Labels: map[string]string{},
		Endpoint: registry.Endpoint{
			AuthURL:   auth.AuthURL,
			Region:    c.RegionName,
			Interface: iface,
			Insecure:  c.Verify != nil && !*c.Verify,
		},
	}
	if c.RegionName == "" && len(c.Regions) > 0 {
		p.Endpoint.Region = c.Regions[0].Name
	}
	for k, v := range labels {
		p.Labels[k] = v
	}
	if c.CACertFile != "" {
		pem, err := readFile(c.CACertFile)
		if err != nil {
			bad("cacert", "cannot read "+c.CACertFile+": "+err.Error())
		}
		p.Endpoint.CACert = string(pem)
	}
	authType := string(c.AuthType)
	switch authType {
	case "", "password", "v3password":
		authType = registry.AuthPassword
	case "v3applicationcredential", "v3token", "token":
		if authType != registry.AuthApplicationCredential {
			authType = registry.AuthToken
		}
	default:
		bad("auth_type", fmt.Sprintf("unsupported auth_type %q: use password, v3applicationcredential or token", authType))
		authType = registry.AuthPassword
	}
	domainDefault := func(specific, general string) string {
		if specific != "" {
			return specific
		}
		return general
	}
	creds := registry.Credentials{
		AuthType:                    authType,
		Username:                    auth.Username,
		UserID:                      auth.UserID,
		Password:                    auth.Password,
		UserDomainName:              domainDefault(auth.UserDomainName, auth.DomainName),
		UserDomainID:                domainDefault(auth.UserDomainID, auth.DomainID),
		ProjectName:                 auth.ProjectName,
		ProjectID:                   auth.ProjectID,
		ProjectDomainName:           domainDefault(auth.ProjectDomainName, auth.DomainName),
		ProjectDomainID:             domainDefault(auth.ProjectDomainID, auth.DomainID),
		ApplicationCredentialID:     auth.ApplicationCredentialID,
		ApplicationCredentialName:   auth.ApplicationCredentialName,
		ApplicationCredentialSecret: auth.ApplicationCredentialSecret,
		Token:                       auth.Token,
	}
	for _, err := range []error{p.Validate(), creds.Validate()} {
		for _, fe := range registry.FieldErrors(err) {
			bad(cloudsField(fe.Field), fe.Reason)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Imported{}, err
	}
	return Imported{Peer: p, Credentials: creds}, nil
}

// cloudsField maps a peer/credentials field name back to where it sits in
// clouds.yaml, so the error points at the line the user must fix.
func cloudsField(field string) string {
	switch field {
	case "endpoint.auth_url":
		return "auth.auth_url"
	case "endpoint.interface":
		return "interface"
	case "endpoint.ca_cert":
		return "cacert"
	}
	if rest, ok := strings.CutPrefix(field, "credentials."); ok {
		if rest == "auth_type" {
			return rest
		}
		return "auth." + rest
	}
	return field
}
