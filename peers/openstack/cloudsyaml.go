package openstack

import (
	"errors"
	"fmt"
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
	// ReadFile reads cacert paths. Nil refuses them: a broker must never
	// read a path named in a request on its own disk (it would hand its own
	// files back through the API). Clients inline the file instead (see
	// InlineCACerts), as `cacert_pem`.
	ReadFile func(path string) ([]byte, error)
}

// cacertPEMKey is cloudmux's extension to clouds.yaml: the CA bundle itself
// rather than a path, so the file is read where it lives (the user's
// machine) and not where the document is parsed.
const cacertPEMKey = "cacert_pem"

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
	var inline struct {
		Clouds map[string]struct {
			CACertPEM string `yaml:"cacert_pem"`
		} `yaml:"clouds"`
	}
	_ = yaml.Unmarshal(data, &inline) // the same document just decoded: cannot fail differently
	readFile := opts.ReadFile
	if readFile == nil {
		readFile = func(path string) ([]byte, error) {
			return nil, fmt.Errorf("paths are not read here; send the bundle inline as %s (`cloudmux peer import` does)", cacertPEMKey)
		}
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
		imp, err := importOne(name, doc.Clouds[name], inline.Clouds[name].CACertPEM, opts.Labels, readFile)
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

func importOne(name string, c clouds.Cloud, cacertPEM string, labels map[string]string, readFile func(string) ([]byte, error)) (Imported, error) {
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
	switch {
	case c.CACertFile != "" && cacertPEM != "":
		bad("cacert", "give cacert (a path) or "+cacertPEMKey+" (the bundle), not both")
	case cacertPEM != "":
		p.Endpoint.CACert = cacertPEM
	case c.CACertFile != "":
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

// InlineCACerts rewrites a clouds.yaml document so every `cacert: PATH` is
// replaced by `cacert_pem: CONTENTS`, reading each path with readFile. The
// CLI runs it on the user's machine before sending the document to a broker.
// Every unreadable path is reported, each as clouds.NAME.cacert.
func InlineCACerts(data []byte, readFile func(string) ([]byte, error)) ([]byte, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, &registry.FieldError{Field: "clouds.yaml", Reason: "is not valid YAML: " + err.Error()}
	}
	cloudsNode := mapValue(docMapping(&root), "clouds")
	if cloudsNode == nil || cloudsNode.Kind != yaml.MappingNode {
		return data, nil // nothing to inline; the importer reports the shape
	}
	var errs []error
	for i := 0; i+1 < len(cloudsNode.Content); i += 2 {
		name, cloud := cloudsNode.Content[i].Value, cloudsNode.Content[i+1]
		if cloud.Kind != yaml.MappingNode {
			continue
		}
		for j := 0; j+1 < len(cloud.Content); j += 2 {
			if cloud.Content[j].Value != "cacert" {
				continue
			}
			path := cloud.Content[j+1].Value
			pem, err := readFile(path)
			if err != nil {
				errs = append(errs, &registry.FieldError{Field: "clouds." + name + ".cacert", Reason: "cannot read " + path + ": " + err.Error()})
				continue
			}
			cloud.Content[j].Value = cacertPEMKey
			cloud.Content[j+1] = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: string(pem), Style: yaml.LiteralStyle}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return yaml.Marshal(&root)
}

func docMapping(root *yaml.Node) *yaml.Node {
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		return root.Content[0]
	}
	return root
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}
