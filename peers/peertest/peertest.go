package peertest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/peers"
)

// Fixture names what the suite needs that the cloud already has, and how
// patient to be with it.
type Fixture struct {
	// FlavorID is a flavor a server of ImageID fits on (its RAM and disk
	// meet the image's min_ram and min_disk) and the cloud has room for a few
	// of at once.
	FlavorID string
	// ResizeFlavorID is the flavor servers of FlavorID are resized to;
	// empty picks the smallest other flavor whose root disk is not smaller.
	ResizeFlavorID string
	// ImageID is an active image servers boot from and volumes are created
	// from.
	ImageID string
	// Project is the project to create resources in. Resources come back
	// with exactly this Project, so for a remote cloud it is the project its
	// credentials are scoped to.
	Project string
	// PollTimeout bounds each wait for an asynchronous transition (BUILD to
	// ACTIVE, creating to available, deletion). Default 2 minutes.
	PollTimeout time.Duration
	// MaxPollInterval caps the growing interval between polls. Default 1s.
	MaxPollInterval time.Duration
	// MaxOvercommit is the largest allocation ratio the cloud applies on top
	// of the totals its Capacity reports: Used may reach Total*MaxOvercommit.
	// Default 1, for clouds (like the local cloud) whose totals already
	// include their overcommit ratios.
	MaxOvercommit float64
	// Gaps names subtests (as Exercise names them, e.g. "Volumes/Extend")
	// the environment under test cannot run, each with the reason; those
	// are skipped with it, so the gap shows in the output instead of
	// failing, or passing unnoticed. For limits of a test environment, not
	// of the driver: the shared OpenStack testcloud's fake volume driver
	// can neither copy an image to a volume nor extend one. Only the
	// subtests that call s.gap honour it.
	Gaps map[string]string
	// ExternalNetworkID is an external network (router:external) the
	// Routers section puts gateways and floating IPs on, one with a
	// subnet with room; empty makes the suite create one
	// (NetworkSpec.External), which needs the right to.
	ExternalNetworkID string
	// Tenant says the cloud's credentials hold no admin role there (a
	// remote public cloud's usual account). Admin-only calls, such as
	// resetting a server's state, are then checked to be refused with
	// peers.ErrUnauthorized instead of exercised.
	Tenant bool
}

func (fx Fixture) withDefaults() Fixture {
	if fx.PollTimeout <= 0 {
		fx.PollTimeout = 2 * time.Minute
	}
	if fx.MaxPollInterval <= 0 {
		fx.MaxPollInterval = time.Second
	}
	if fx.MaxOvercommit <= 0 {
		fx.MaxOvercommit = 1
	}
	return fx
}

// suite is one run of Exercise against one cloud.
type suite struct {
	c   peers.Cloud
	fx  Fixture
	run string // random, in every name and metadata value this run creates
}

// Exercise runs the whole suite against cloud. Subtests run in parallel and
// clean up what they create; Exercise returns when all of them are done.
func Exercise(t *testing.T, cloud peers.Cloud, fx Fixture) {
	t.Helper()
	fx = fx.withDefaults()
	if fx.FlavorID == "" || fx.ImageID == "" || fx.Project == "" {
		t.Fatalf("peertest: the Fixture needs FlavorID, ImageID and Project; got %+v", fx)
	}
	s := &suite{c: cloud, fx: fx, run: randHex(4)}
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"Info", s.testInfo},
		{"Capacity", s.testCapacity},
		{"ContextCanceled", s.testContextCanceled},
		{"Flavors", s.testFlavors},
		{"Keypairs", s.testKeypairs},
		{"KeypairRefusals", s.testKeypairRefusals},
		{"Networks", s.testNetworks},
		{"SubnetRefusals", s.testSubnetRefusals},
		{"Ports", s.testPorts},
		{"SecurityGroups", s.testSecurityGroups},
		{"Routers", s.testRouters},
		{"Servers", s.testServers},
		{"Lifecycle", s.testLifecycle},
		{"ServerCreateRefusals", s.testServerCreateRefusals},
		{"UnknownServer", s.testUnknownServer},
		{"Images", s.testImages},
		{"ImageRefusals", s.testImageRefusals},
		{"ImageData", s.testImageData},
		{"Volumes", s.testVolumes},
		{"Snapshots", s.testSnapshots},
		{"Objects", s.testObjects},
	}
	t.Run("peertest", func(t *testing.T) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				tc.run(t)
			})
		}
	})
}

// gap skips t when the fixture names it as a gap of the environment.
func (s *suite) gap(t *testing.T) {
	t.Helper()
	_, name, _ := strings.Cut(t.Name(), "/peertest/")
	if why, ok := s.fx.Gaps[name]; ok {
		t.Skipf("a gap of the environment under test, per the fixture: %s", why)
	}
}

// name returns a resource name unique to this run.
func (s *suite) name(kind string) string {
	return fmt.Sprintf("peertest-%s-%s-%s", s.run, kind, randHex(3))
}

// meta returns metadata naming a fresh broker ID, the fixture's project and
// a unique MetaID, so a list filtered by the MetaID finds exactly one
// resource. extra adds key/value pairs.
func (s *suite) meta(extra ...string) map[string]string {
	m := map[string]string{
		peers.MetaBrokerID: "peertest-" + s.run,
		peers.MetaProject:  s.fx.Project,
		peers.MetaID:       "peertest-" + s.run + "-" + randHex(6),
	}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	return m
}

// cleanupCtx is a fresh context for t.Cleanup: t.Context() is already
// cancelled by the time cleanups run.
func (s *suite) cleanupCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.fx.PollTimeout)
}

// errPollTimeout reports a poll that ran out of time.
var errPollTimeout = errors.New("timed out")

// poll calls check until it reports done, returns an error, or
// fx.PollTimeout passes. check returns what it saw (a status), which the
// error of a timed-out poll quotes.
func (s *suite) poll(what string, check func(ctx context.Context) (done bool, seen string, err error)) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.fx.PollTimeout)
	defer cancel()
	delay := 10 * time.Millisecond
	seen := "nothing yet"
	for {
		done, st, err := check(ctx)
		if st != "" {
			seen = st
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return fmt.Errorf("%s: %w (last seen: %s)", what, err, seen)
		}
		if done {
			return nil
		}
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
		case <-timer.C:
		}
		if ctx.Err() != nil {
			break
		}
		delay = min(delay*2, s.fx.MaxPollInterval)
	}
	return fmt.Errorf("%s: %w after %v; last seen: %s", what, errPollTimeout, s.fx.PollTimeout, seen)
}

// mustPoll is poll that fails the test.
func (s *suite) mustPoll(t *testing.T, what string, check func(ctx context.Context) (bool, string, error)) {
	t.Helper()
	if err := s.poll(what, check); err != nil {
		t.Fatal(err)
	}
}

// pollGone waits until get reports ErrNotFound.
func (s *suite) pollGone(what string, get func(ctx context.Context) (string, error)) error {
	return s.poll(what+" to be gone", func(ctx context.Context) (bool, string, error) {
		st, err := get(ctx)
		if errors.Is(err, peers.ErrNotFound) {
			return true, "not found", nil
		}
		return false, st, err
	})
}

// wantErr fails t unless err matches one of targets.
func wantErr(t *testing.T, what string, err error, targets ...error) {
	t.Helper()
	for _, target := range targets {
		if errors.Is(err, target) {
			return
		}
	}
	if err == nil {
		t.Fatalf("%s: got no error, want one matching errors.Is %v", what, errNames(targets))
	}
	t.Fatalf("%s: got error %q, want one matching errors.Is %v", what, err, errNames(targets))
}

func errNames(errs []error) string {
	names := make([]string, len(errs))
	for i, e := range errs {
		names[i] = e.Error()
	}
	return "[" + strings.Join(names, " | ") + "]"
}

// wantMetadata fails t unless got carries every pair of want. A cloud may
// add keys of its own.
func wantMetadata(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s: metadata %q = %q, want %q (all metadata: %v)", what, k, got[k], v, got)
		}
	}
}

// uuidRE is the canonical, lowercase UUID form OpenStack services return.
var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func wantUUID(t *testing.T, what, id string) {
	t.Helper()
	if !uuidRE.MatchString(id) {
		t.Fatalf("%s: ID %q is not a canonical UUID (OpenStack services use UUIDs)", what, id)
	}
}

// ids returns the IDs of items, for membership checks and messages.
func ids[T any](items []T, id func(T) string) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = id(it)
	}
	return out
}

// listCase is one ListOptions filter and whether the resource should pass.
type listCase struct {
	name string
	opts peers.ListOptions
	want bool
}

// listCases are the filters every list is tried with, for a resource
// carrying meta in the fixture's project.
func (s *suite) listCases(meta map[string]string) []listCase {
	return []listCase{
		{"ByMetaID", peers.ListOptions{Metadata: map[string]string{peers.MetaID: meta[peers.MetaID]}}, true},
		{"ByProjectAndMetadata", peers.ListOptions{Project: s.fx.Project, Metadata: meta}, true},
		{"ByProject", peers.ListOptions{Project: s.fx.Project}, true},
		{"OtherProject", peers.ListOptions{Project: "peertest-no-such-project-" + s.run, Metadata: map[string]string{peers.MetaID: meta[peers.MetaID]}}, false},
		{"UnmatchedMetadata", peers.ListOptions{Metadata: map[string]string{peers.MetaID: meta[peers.MetaID], "peertest_absent": "x"}}, false},
	}
}

// checkListed runs s.listCases against list, which returns the IDs it
// finds, and expects id exactly where a case says so. The ByMetaID case
// must find it alone.
func (s *suite) checkListed(t *testing.T, id string, meta map[string]string, list func(ctx context.Context, o peers.ListOptions) ([]string, error)) {
	t.Helper()
	for _, tc := range s.listCases(meta) {
		t.Run(tc.name, func(t *testing.T) {
			got, err := list(t.Context(), tc.opts)
			if err != nil {
				t.Fatalf("list %+v: %v", tc.opts, err)
			}
			if has := slices.Contains(got, id); has != tc.want {
				t.Fatalf("list %+v: contains %s = %v, want %v (got %v)", tc.opts, id, has, tc.want, got)
			}
			if tc.name == "ByMetaID" && len(got) != 1 {
				t.Fatalf("list by a unique %s: got %v, want only %s", peers.MetaID, got, id)
			}
		})
	}
}

// inCIDR reports whether addr is inside cidr.
func inCIDR(addr, cidr string) bool {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return false
	}
	p, err := netip.ParsePrefix(cidr)
	return err == nil && p.Contains(a)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// sshPublicKey returns a fresh ed25519 public key in authorized_keys form,
// built by hand so the suite needs no SSH library.
func sshPublicKey() string {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	var blob []byte
	for _, field := range [][]byte{[]byte("ssh-ed25519"), pub} {
		blob = binary.BigEndian.AppendUint32(blob, uint32(len(field)))
		blob = append(blob, field...)
	}
	return "ssh-ed25519 " + base64.StdEncoding.EncodeToString(blob) + " peertest"
}
