package openstack

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	"github.com/gophercloud/gophercloud/v2/openstack/utils"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

// Driver is what Info reports as the driver's name.
const Driver = "gophercloud"

// Microversions this driver asks for. It works with anything older too:
// every behaviour that changed since 2.1 / 3.0 is handled on both sides of
// its threshold (see compute.go and volumes.go).
const (
	// WantComputeMicroversion: 2.79 is the newest whose changes the
	// driver knows (2.37 networks required, 2.47 embedded flavors, 2.79
	// delete_on_termination in attachments).
	WantComputeMicroversion = "2.79"
	// WantVolumeMicroversion: 3.42 extends in-use volumes.
	WantVolumeMicroversion = "3.42"
)

// Config connects one remote OpenStack cloud.
type Config struct {
	// Name labels log lines and errors (the peer's name).
	Name        string
	Endpoint    registry.Endpoint
	Credentials registry.Credentials
	// ComputeMicroversion caps what is asked of Nova; default
	// WantComputeMicroversion. The cloud's maximum caps it further.
	ComputeMicroversion string
	// Retry bounds retries of idempotent calls; zero values take defaults.
	Retry RetryPolicy
	// CallTimeout bounds each API call whose context has no deadline of
	// its own (image data streams excepted). Default 60s.
	CallTimeout time.Duration
	// HTTPClient overrides the HTTP client (tests); its transport's TLS
	// settings then win over Endpoint's CA bundle and insecure flag.
	HTTPClient *http.Client
	Log        logrus.FieldLogger
	// Metrics, when set, times every call to the peer (NewMetrics).
	Metrics *Metrics
}

// Cloud is a peers.Cloud over one remote OpenStack project, through
// gophercloud. Resources are created in the project the credentials are
// scoped to; the broker's project travels in metadata (peers.MetaProject),
// and the resources' Project is the remote project.
type Cloud struct {
	cfg      Config
	provider *gophercloud.ProviderClient
	http     *http.Client
	compute  *gophercloud.ServiceClient
	image    *gophercloud.ServiceClient // nil: no Glance in the catalog
	network  *gophercloud.ServiceClient // nil: no Neutron
	volume   *gophercloud.ServiceClient // nil: no Cinder
	object   *gophercloud.ServiceClient // nil: no Swift (see Peer)
	log      logrus.FieldLogger

	project string // the scoped project's ID
	admin   bool   // the token carries the admin role
	// federated: the peer is another cloudmux broker (see meta.go).
	federated bool
	// neutronTags: Neutron has the standard-attr-tag extension.
	neutronTags bool

	// computeMinor and volumeMinor are the negotiated microversions' minors.
	computeMinor int
	// computeMaxMinor is the cloud's newest compute microversion's minor,
	// for a call that needs a newer one than computeMinor (a hostname on
	// create, 2.90).
	computeMaxMinor int
	volumeMinor     int

	mu      sync.Mutex
	flavors map[string]string // flavor name -> ID, for servers at >= 2.47
	// expected holds ImageSpec.Checksum by image ID until its upload.
	expected map[string]string
	// mirrors are the remote mirror groups' IDs by broker group ID
	// (secgroups.go).
	mirrors map[string]string
	// routersErr is RoutersAvailable's answer once Neutron gave one
	// (routers.go); routersKnown says it did.
	routersKnown bool
	routersErr   error
}

var (
	_ peers.Cloud         = (*Cloud)(nil)
	_ peers.ImageData     = (*Cloud)(nil)
	_ peers.ConsoleReader = (*Cloud)(nil)
	_ io.Closer           = (*Cloud)(nil)
	_ peers.Connector     = Connect
)

// Connect is the pool's peers.Connector for registry.KindOpenStack.
func Connect(ctx context.Context, p registry.Peer, creds registry.Credentials) (peers.Cloud, error) {
	return connect(ctx, Config{Name: p.Name, Endpoint: p.Endpoint, Credentials: creds})
}

// connect is New returning an untyped nil on failure (a nil *Cloud in a
// peers.Cloud would not compare equal to nil), and the cloud as Peer
// makes it: with peers.Objects when it has Swift.
func connect(ctx context.Context, cfg Config) (peers.Cloud, error) {
	c, err := New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return c.Peer(), nil
}

// ConnectorWithLog is Connect with a logger for the clouds it connects.
func ConnectorWithLog(log logrus.FieldLogger) peers.Connector {
	return ConnectorWith(log, nil)
}

// ConnectorWith is Connect with a logger and metrics (nil: none) for the
// clouds it connects.
func ConnectorWith(log logrus.FieldLogger, metrics *Metrics) peers.Connector {
	return func(ctx context.Context, p registry.Peer, creds registry.Credentials) (peers.Cloud, error) {
		return connect(ctx, Config{Name: p.Name, Endpoint: p.Endpoint, Credentials: creds, Log: log.WithField("peer", p.Name), Metrics: metrics})
	}
}

// FromCloudsYAML builds a Config from one entry of a clouds.yaml document
// (read as ImportCloudsYAML reads it; cacert paths are read with readFile,
// nil refuses them).
func FromCloudsYAML(data []byte, cloud string, readFile func(string) ([]byte, error)) (Config, error) {
	imported, err := ImportCloudsYAML(data, ImportOptions{Only: []string{cloud}, ReadFile: readFile})
	if err != nil {
		return Config{}, err
	}
	return Config{Name: cloud, Endpoint: imported[0].Peer.Endpoint, Credentials: imported[0].Credentials}, nil
}

// New authenticates and finds the services. Compute is required; a missing
// image, network or volume service makes those calls ErrNotSupported. The
// object store is the optional peers.Objects ability, which the *Cloud
// itself lacks: Peer returns the cloud with it when Swift is there.
func New(ctx context.Context, cfg Config) (c *Cloud, err error) {
	if cfg.Endpoint.AuthURL == "" {
		return nil, fmt.Errorf("openstack peer %q: no auth URL: %w", cfg.Name, peers.ErrInvalid)
	}
	if err := cfg.Credentials.Validate(); err != nil {
		return nil, fmt.Errorf("openstack peer %q: %w: %w", cfg.Name, peers.ErrInvalid, err)
	}
	if cfg.ComputeMicroversion == "" {
		cfg.ComputeMicroversion = WantComputeMicroversion
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 60 * time.Second
	}
	cfg.Retry = cfg.Retry.withDefaults()
	log := cfg.Log
	if log == nil {
		l := logrus.New()
		l.SetLevel(logrus.WarnLevel)
		log = l
	}
	hc := cfg.HTTPClient
	if hc == nil {
		if hc, err = httpClient(cfg.Endpoint); err != nil {
			return nil, fmt.Errorf("openstack peer %q: %w", cfg.Name, err)
		}
	}
	var metered *meteredTransport
	if cfg.Metrics != nil {
		next := hc.Transport
		if next == nil {
			next = http.DefaultTransport
		}
		metered = &meteredTransport{next: next, m: cfg.Metrics, peer: cfg.Name, authURL: strings.TrimSuffix(cfg.Endpoint.AuthURL, "/")}
		wrapped := *hc // the caller's client stays as it was
		wrapped.Transport = metered
		hc = &wrapped
	}
	defer func() {
		if err != nil {
			hc.CloseIdleConnections()
		}
	}()
	provider, err := openstack.NewClient(cfg.Endpoint.AuthURL)
	if err != nil {
		return nil, fmt.Errorf("openstack peer %q: auth URL: %w: %v", cfg.Name, peers.ErrInvalid, err)
	}
	provider.HTTPClient = *hc
	provider.UserAgent.Prepend("cloudmux")
	provider.RetryFunc = cfg.Retry.retryFunc(log)
	// Set before Authenticate: the re-authentication client gophercloud
	// keeps is a copy of the provider as it is now.
	authCtx, cancel := context.WithTimeout(ctx, cfg.CallTimeout)
	defer cancel()
	if err := openstack.Authenticate(authCtx, provider, authOptions(cfg.Endpoint.AuthURL, cfg.Credentials)); err != nil {
		return nil, peers.AtPeer(cfg.Name, translate(fmt.Sprintf("openstack peer %q: authenticate", cfg.Name), err))
	}
	c = &Cloud{cfg: cfg, provider: provider, http: hc, log: log, flavors: map[string]string{}, expected: map[string]string{}, mirrors: map[string]string{}}
	if c.project, err = c.authProject(); err != nil {
		return nil, fmt.Errorf("openstack peer %q: %w: resources live in a project; scope the credentials to one", cfg.Name, peers.ErrInvalid)
	}
	c.admin = c.tokenIsAdmin()
	eo := gophercloud.EndpointOpts{Region: cfg.Endpoint.Region, Availability: availability(cfg.Endpoint.Interface)}
	if metered != nil {
		metered.setBases(catalogBases(provider, eo))
	}
	if c.compute, err = openstack.NewComputeV2(provider, eo); err != nil {
		return nil, peers.AtPeer(cfg.Name, translate(fmt.Sprintf("openstack peer %q: compute endpoint", cfg.Name), err))
	}
	// The others are optional: a cloud without Cinder still runs servers.
	c.image = optional(openstack.NewImageV2(provider, eo))
	c.network = optional(openstack.NewNetworkV2(provider, eo))
	c.volume = optional(openstack.NewBlockStorageV3(provider, eo))
	c.object = optional(openstack.NewObjectStorageV1(provider, eo))
	_, err = provider.EndpointLocator(gophercloud.EndpointOpts{Type: "cloudmux", Region: eo.Region, Availability: eo.Availability})
	c.federated = err == nil
	if c.network != nil {
		c.neutronTags = c.hasNeutronTags(authCtx)
	}
	if metered != nil {
		metered.setBases(clientBases(map[string]*gophercloud.ServiceClient{"compute": c.compute, "image": c.image,
			"network": c.network, "volume": c.volume, "object-store": c.object}))
	}
	if err := c.negotiate(authCtx); err != nil {
		return nil, err
	}
	return c, nil
}

// optional keeps a service client only when its endpoint was found
// (gophercloud returns a half-made client with the error).
func optional(sc *gophercloud.ServiceClient, err error) *gophercloud.ServiceClient {
	if err != nil {
		return nil
	}
	return sc
}

// authOptions turns stored credentials into gophercloud's. AllowReauth
// makes gophercloud fetch a new token when one expires (401) and replay
// the call, for password and application-credential auth. A bare token
// cannot renew itself past its own expiry; scoped to a project it is
// exchanged for a project token, which can be redone while it lives.
func authOptions(authURL string, c registry.Credentials) gophercloud.AuthOptions {
	o := gophercloud.AuthOptions{IdentityEndpoint: authURL, AllowReauth: true}
	scope := &gophercloud.AuthScope{ProjectID: c.ProjectID, ProjectName: c.ProjectName,
		DomainID: c.ProjectDomainID, DomainName: c.ProjectDomainName}
	if c.ProjectID != "" {
		scope.DomainID, scope.DomainName = "", ""
	}
	switch c.EffectiveAuthType() {
	case registry.AuthApplicationCredential:
		// An application credential carries its own scope.
		o.ApplicationCredentialID = c.ApplicationCredentialID
		o.ApplicationCredentialName = c.ApplicationCredentialName
		o.ApplicationCredentialSecret = c.ApplicationCredentialSecret
		o.Username, o.UserID = c.Username, c.UserID
		o.DomainID, o.DomainName = c.UserDomainID, c.UserDomainName
		return o
	case registry.AuthToken:
		o.TokenID = c.Token
		if scope.ProjectID == "" && scope.ProjectName == "" {
			o.AllowReauth = false // gophercloud refuses reauth of an unscoped passthrough token
			return o
		}
	default:
		o.Username, o.UserID, o.Password = c.Username, c.UserID, c.Password
		if c.UserID == "" {
			o.DomainID, o.DomainName = c.UserDomainID, c.UserDomainName
		}
	}
	if scope.ProjectID != "" || scope.ProjectName != "" {
		o.Scope = scope
	}
	return o
}

func availability(iface string) gophercloud.Availability {
	switch strings.TrimSuffix(iface, "URL") {
	case "internal":
		return gophercloud.AvailabilityInternal
	case "admin":
		return gophercloud.AvailabilityAdmin
	}
	return gophercloud.AvailabilityPublic
}

// httpClient trusts the endpoint's CA bundle (in addition to the system's),
// or nothing at all when insecure is set.
func httpClient(ep registry.Endpoint) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = 10 * time.Second
	// Bounds a call whose context has no deadline, gophercloud's endpoint
	// discovery included (it runs under context.TODO). Streams' bodies may
	// take longer; only their headers must come by then.
	tr.ResponseHeaderTimeout = 2 * time.Minute
	tr.MaxIdleConnsPerHost = 16
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if ep.CACert != "" {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM([]byte(ep.CACert)) {
			return nil, fmt.Errorf("ca_cert holds no PEM certificate: %w", peers.ErrInvalid)
		}
		tlsCfg.RootCAs = pool
	}
	if ep.Insecure {
		tlsCfg.InsecureSkipVerify = true //nolint:gosec // the operator asked for it (clouds.yaml verify: false)
	}
	tr.TLSClientConfig = tlsCfg
	return &http.Client{Transport: tr}, nil
}

// negotiate settles the microversions: what the driver wants, capped by the
// maximum the cloud's version document announces. A cloud that announces
// none is sent no microversion header and treated as the base version
// (2.1 / 3.0).
func (c *Cloud) negotiate(ctx context.Context) error {
	_, want, err := utils.ParseMicroversion(c.cfg.ComputeMicroversion)
	if err != nil {
		return fmt.Errorf("openstack peer %q: compute microversion %q: %w", c.cfg.Name, c.cfg.ComputeMicroversion, peers.ErrInvalid)
	}
	maxMinor, err := c.maxMicroversion(ctx, c.compute, 2)
	if err != nil {
		return c.translate(fmt.Sprintf("openstack peer %q: nova version document", c.cfg.Name), err)
	}
	c.computeMinor, c.computeMaxMinor = max(min(want, maxMinor), 1), maxMinor
	if maxMinor > 0 {
		c.compute.Microversion = fmt.Sprintf("2.%d", c.computeMinor)
	}
	if c.volume != nil {
		_, wantV, _ := utils.ParseMicroversion(WantVolumeMicroversion)
		if maxV, err := c.maxMicroversion(ctx, c.volume, 3); err == nil {
			c.volumeMinor = min(wantV, maxV)
			if maxV > 0 {
				c.volume.Microversion = fmt.Sprintf("3.%d", c.volumeMinor)
			}
		} else {
			c.log.WithError(err).Warn("openstack: cinder version document unreadable; using 3.0")
		}
	}
	c.log.WithFields(logrus.Fields{"compute": c.compute.Microversion, "volume": c.volume != nil && c.volumeMinor > 0}).Debug("openstack: microversions negotiated")
	return nil
}

// maxMicroversion reads the service's version document and returns the
// largest minor microversion of the given major version (0 when the cloud
// announces none).
func (c *Cloud) maxMicroversion(ctx context.Context, sc *gophercloud.ServiceClient, major int) (int, error) {
	base, err := utils.BaseVersionedEndpoint(sc.Endpoint)
	if err != nil {
		return 0, err
	}
	versions, err := utils.GetServiceVersions(ctx, c.provider, base, true)
	if err != nil {
		return 0, err
	}
	best := 0
	for _, v := range versions {
		if v.Major == major && v.MaxMajor == major {
			best = max(best, v.MaxMinor)
		}
	}
	return best, nil
}

// ComputeMicroversion returns the negotiated Nova microversion.
func (c *Cloud) ComputeMicroversion() string { return c.compute.Microversion }

// Info reports the kind, driver and region.
func (c *Cloud) Info() peers.Info {
	return peers.Info{Kind: registry.KindOpenStack, Driver: Driver, Region: c.cfg.Endpoint.Region}
}

// Close drops idle connections.
func (c *Cloud) Close() error {
	c.http.CloseIdleConnections()
	return nil
}

// ProjectID is the remote project the credentials are scoped to.
func (c *Cloud) ProjectID() string { return c.project }

func (c *Cloud) authProject() (string, error) {
	r, ok := c.provider.GetAuthResult().(interface {
		ExtractProject() (*tokens.Project, error)
	})
	if !ok {
		return "", errors.New("no v3 token")
	}
	p, err := r.ExtractProject()
	if err != nil || p == nil {
		return "", fmt.Errorf("token is not project-scoped: %v", err)
	}
	return p.ID, nil
}

// tokenIsAdmin reports whether the token carries the admin role: it then
// sees every project's resources in Glance and Neutron lists, which the
// driver narrows back to what the project would see.
func (c *Cloud) tokenIsAdmin() bool {
	r, ok := c.provider.GetAuthResult().(interface {
		ExtractRoles() ([]tokens.Role, error)
	})
	if !ok {
		return false
	}
	roles, err := r.ExtractRoles()
	if err != nil {
		return false
	}
	return slices.ContainsFunc(roles, func(r tokens.Role) bool { return r.Name == "admin" })
}

// tokenExpiry is when the current token expires (zero if unknown).
func (c *Cloud) tokenExpiry() time.Time {
	r, ok := c.provider.GetAuthResult().(interface {
		ExtractToken() (*tokens.Token, error)
	})
	if !ok {
		return time.Time{}
	}
	t, err := r.ExtractToken()
	if err != nil || t == nil {
		return time.Time{}
	}
	return t.ExpiresAt
}

// freshToken re-authenticates ahead of a call that cannot be replayed (an
// image upload streams its body once): gophercloud would otherwise answer a
// mid-stream 401 by re-sending a body already consumed.
func (c *Cloud) freshToken(ctx context.Context, margin time.Duration) error {
	exp := c.tokenExpiry()
	if exp.IsZero() || time.Until(exp) > margin || c.provider.ReauthFunc == nil {
		return nil
	}
	if err := c.provider.Reauthenticate(ctx, c.provider.Token()); err != nil {
		return c.translate("keystone: renew token", err)
	}
	return nil
}

// call gives ctx the driver's default deadline when it has none.
func (c *Cloud) call(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.cfg.CallTimeout)
}

func (c *Cloud) needImage() error {
	if c.image == nil {
		return fmt.Errorf("openstack peer %q has no image service: %w", c.cfg.Name, peers.ErrNotSupported)
	}
	return nil
}

func (c *Cloud) needNetwork() error {
	if c.network == nil {
		return fmt.Errorf("openstack peer %q has no network service: %w", c.cfg.Name, peers.ErrNotSupported)
	}
	return nil
}

func (c *Cloud) needVolume() error {
	if c.volume == nil {
		return fmt.Errorf("openstack peer %q has no block storage service: %w", c.cfg.Name, peers.ErrNotSupported)
	}
	return nil
}
