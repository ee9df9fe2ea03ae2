package libvirt

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket"
	"github.com/digitalocean/go-libvirt/socket/dialers"
)

// API is the part of go-libvirt's client (*libvirt.Libvirt) the driver
// uses, declared here so tests and the reconnect logic can wrap it.
type API interface {
	// Disconnected is closed when the connection is lost or closed.
	Disconnected() <-chan struct{}
	Disconnect() error

	ConnectGetLibVersion() (uint64, error)
	NodeGetInfo() (rModel [32]int8, rMemory uint64, rCpus int32, rMhz int32, rNodes int32, rSockets int32, rCores int32, rThreads int32, err error)

	ConnectListAllDomains(NeedResults int32, Flags golibvirt.ConnectListAllDomainsFlags) ([]golibvirt.Domain, uint32, error)
	DomainDefineXMLFlags(XML string, Flags golibvirt.DomainDefineFlags) (golibvirt.Domain, error)
	DomainLookupByName(Name string) (golibvirt.Domain, error)
	DomainCreate(Dom golibvirt.Domain) error
	DomainShutdownFlags(Dom golibvirt.Domain, Flags golibvirt.DomainShutdownFlagValues) error
	DomainReboot(Dom golibvirt.Domain, Flags golibvirt.DomainRebootFlagValues) error
	DomainReset(Dom golibvirt.Domain, Flags uint32) error
	DomainSuspend(Dom golibvirt.Domain) error
	DomainResume(Dom golibvirt.Domain) error
	DomainManagedSave(Dom golibvirt.Domain, Flags uint32) error
	DomainSetVcpusFlags(Dom golibvirt.Domain, Nvcpus uint32, Flags uint32) error
	DomainSetMemoryFlags(Dom golibvirt.Domain, Memory uint64, Flags uint32) error
	DomainDestroyFlags(Dom golibvirt.Domain, Flags golibvirt.DomainDestroyFlagsValues) error
	DomainUndefineFlags(Dom golibvirt.Domain, Flags golibvirt.DomainUndefineFlagsValues) error
	DomainGetState(Dom golibvirt.Domain, Flags uint32) (int32, int32, error)
	DomainGetXMLDesc(Dom golibvirt.Domain, Flags golibvirt.DomainXMLFlags) (string, error)
	DomainAttachDeviceFlags(Dom golibvirt.Domain, XML string, Flags uint32) error
	DomainDetachDeviceFlags(Dom golibvirt.Domain, XML string, Flags uint32) error
	DomainBlockResize(Dom golibvirt.Domain, Disk string, Size uint64, Flags golibvirt.DomainBlockResizeFlags) error
	DomainBackupBegin(Dom golibvirt.Domain, BackupXML string, CheckpointXML golibvirt.OptString, Flags golibvirt.DomainBackupBeginFlags) error
	DomainGetJobInfo(Dom golibvirt.Domain) (rType int32, rTimeElapsed uint64, rTimeRemaining uint64, rDataTotal uint64, rDataProcessed uint64, rDataRemaining uint64, rMemTotal uint64, rMemProcessed uint64, rMemRemaining uint64, rFileTotal uint64, rFileProcessed uint64, rFileRemaining uint64, err error)
	DomainGetJobStats(Dom golibvirt.Domain, Flags golibvirt.DomainGetJobStatsFlags) (rType int32, rParams []golibvirt.TypedParam, err error)
	DomainAbortJob(Dom golibvirt.Domain) error

	StoragePoolLookupByName(Name string) (golibvirt.StoragePool, error)
	StoragePoolDefineXML(XML string, Flags uint32) (golibvirt.StoragePool, error)
	StoragePoolBuild(Pool golibvirt.StoragePool, Flags golibvirt.StoragePoolBuildFlags) error
	StoragePoolCreate(Pool golibvirt.StoragePool, Flags golibvirt.StoragePoolCreateFlags) error
	StoragePoolSetAutostart(Pool golibvirt.StoragePool, Autostart int32) error
	StoragePoolIsActive(Pool golibvirt.StoragePool) (int32, error)
	StoragePoolRefresh(Pool golibvirt.StoragePool, Flags uint32) error
	StoragePoolGetInfo(Pool golibvirt.StoragePool) (rState uint8, rCapacity uint64, rAllocation uint64, rAvailable uint64, err error)
	StoragePoolListAllVolumes(Pool golibvirt.StoragePool, NeedResults int32, Flags uint32) ([]golibvirt.StorageVol, uint32, error)

	StorageVolCreateXML(Pool golibvirt.StoragePool, XML string, Flags golibvirt.StorageVolCreateFlags) (golibvirt.StorageVol, error)
	StorageVolCreateXMLFrom(Pool golibvirt.StoragePool, XML string, Clonevol golibvirt.StorageVol, Flags golibvirt.StorageVolCreateFlags) (golibvirt.StorageVol, error)
	StorageVolLookupByName(Pool golibvirt.StoragePool, Name string) (golibvirt.StorageVol, error)
	StorageVolGetPath(Vol golibvirt.StorageVol) (string, error)
	StorageVolGetInfo(Vol golibvirt.StorageVol) (rType int8, rCapacity uint64, rAllocation uint64, err error)
	StorageVolGetXMLDesc(Vol golibvirt.StorageVol, Flags uint32) (string, error)
	StorageVolUpload(Vol golibvirt.StorageVol, outStream io.Reader, Offset uint64, Length uint64, Flags golibvirt.StorageVolUploadFlags) error
	StorageVolDownload(Vol golibvirt.StorageVol, inStream io.Writer, Offset uint64, Length uint64, Flags golibvirt.StorageVolDownloadFlags) error
	StorageVolResize(Vol golibvirt.StorageVol, Capacity uint64, Flags golibvirt.StorageVolResizeFlags) error
	StorageVolDelete(Vol golibvirt.StorageVol, Flags golibvirt.StorageVolDeleteFlags) error

	ConnectListAllNetworks(NeedResults int32, Flags golibvirt.ConnectListAllNetworksFlags) ([]golibvirt.Network, uint32, error)
	NetworkDestroy(Net golibvirt.Network) error
	NetworkUndefine(Net golibvirt.Network) error

	ConnectListAllNwfilters(NeedResults int32, Flags uint32) ([]golibvirt.Nwfilter, uint32, error)
	NwfilterUndefine(OptNwfilter golibvirt.Nwfilter) error
}

var _ API = (*golibvirt.Libvirt)(nil)

// DialFunc opens a connection to the libvirt daemon at uri. It honours
// ctx; the driver bounds it with Config.DialTimeout.
type DialFunc func(ctx context.Context, uri string) (API, error)

// Conn is a go-libvirt client that also holds its socket, so a
// connection whose daemon stopped answering can be cut (Abort) without the
// RPC go-libvirt's Disconnect sends first, which would wait as well.
type Conn struct {
	*golibvirt.Libvirt
	raw *rawDialer
}

// Abort closes the socket under the client: calls in flight fail and
// Disconnected() closes.
func (c *Conn) Abort() error {
	c.raw.mu.Lock()
	defer c.raw.mu.Unlock()
	if c.raw.conn == nil {
		return nil
	}
	return c.raw.conn.Close()
}

// aborter is what Conn adds to API; the driver uses it when it has it.
type aborter interface{ Abort() error }

// rawDialer remembers the socket its dialer opened.
type rawDialer struct {
	inner socket.Dialer
	mu    sync.Mutex
	conn  net.Conn
}

func (r *rawDialer) Dial() (net.Conn, error) {
	c, err := r.inner.Dial()
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.conn = c
	r.mu.Unlock()
	return c, nil
}

// dialerFor is go-libvirt's choice of dialer for the transports the driver
// supports directly: unix (qemu:///system, test:///default; ?socket=PATH)
// and tcp (qemu+tcp://host[:port]/system, port 16509 by default).
func dialerFor(u *url.URL) (socket.Dialer, bool) {
	transport := "unix"
	if scheme := strings.SplitN(u.Scheme, "+", 2); len(scheme) > 1 {
		transport = scheme[1]
	} else if u.Host != "" {
		return nil, false // tls, go-libvirt's default for a remote host
	}
	switch transport {
	case "unix":
		var opts []dialers.LocalOption
		if s := u.Query().Get("socket"); s != "" {
			opts = append(opts, dialers.WithSocket(s))
		}
		return dialers.NewLocal(opts...), true
	case "tcp":
		var opts []dialers.RemoteOption
		if p := u.Port(); p != "" {
			opts = append(opts, dialers.UsePort(p))
		}
		return dialers.NewRemote(u.Hostname(), opts...), true
	}
	return nil, false
}

// Dial connects to the daemon at uri: qemu:///system and test:///default
// through the local unix socket (/var/run/libvirt/libvirt-sock, or
// ?socket=PATH), qemu+tcp://host/system over TCP port 16509; other
// transports (tls, ssh) through go-libvirt's ConnectToURI. The handshake
// runs in the background so ctx bounds it even when the daemon accepts the
// connection and then says nothing.
func Dial(ctx context.Context, uri string) (API, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return nil, fmt.Errorf("libvirt URI %q: %w", uri, err)
	}
	type result struct {
		api API
		err error
	}
	done := make(chan result, 1)
	go func() {
		if d, ok := dialerFor(u); ok {
			raw := &rawDialer{inner: d}
			l := golibvirt.NewWithDialer(raw)
			if err := l.ConnectToURI(golibvirt.RemoteURI(u)); err != nil {
				done <- result{nil, err}
				return
			}
			done <- result{&Conn{Libvirt: l, raw: raw}, nil}
			return
		}
		l, err := golibvirt.ConnectToURI(u)
		if err != nil {
			done <- result{nil, err}
			return
		}
		done <- result{l, nil}
	}()
	select {
	case r := <-done:
		return r.api, r.err
	case <-ctx.Done():
		go func() {
			// The handshake may still finish: close what it opens.
			if r := <-done; r.err == nil {
				closeAPI(r.api)
			}
		}()
		return nil, ctx.Err()
	}
}

// closeAPI cuts the connection if it can, else disconnects politely.
func closeAPI(a API) {
	if ab, ok := a.(aborter); ok {
		_ = ab.Abort()
		return
	}
	_ = a.Disconnect()
}
