package libvirt

import (
	"context"
	"encoding/xml"
	"fmt"
	"path/filepath"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
)

// backupXML is a push-mode domain backup: the one disk to copy into a
// new qcow2 file, every other disk left out.
type backupXML struct {
	XMLName xml.Name `xml:"domainbackup"`
	Mode    string   `xml:"mode,attr"`
	Disks   struct {
		Disk []backupDiskXML `xml:"disk"`
	} `xml:"disks"`
}

type backupDiskXML struct {
	Name   string `xml:"name,attr"`
	Backup string `xml:"backup,attr"`
	Type   string `xml:"type,attr,omitempty"`
	Target *struct {
		File string `xml:"file,attr"`
	} `xml:"target,omitempty"`
	Driver *struct {
		Type string `xml:"type,attr"`
	} `xml:"driver,omitempty"`
}

// liveCopy copies volume srcID, attached to the running domain domainID,
// into a new pool volume with a push-mode backup job: QEMU writes the
// disk as it stood when the job began while the guest runs on. qemu-img
// (StorageVolCreateXMLFrom) cannot: the running QEMU holds the image's
// write lock. The copy is crash-consistent, as Cinder's forced snapshot.
func (d *Driver) liveCopy(ctx context.Context, h *hostConn, domainID, srcID string, src golibvirt.StorageVol, dst localcloud.PoolVolume) error {
	dom, err := d.domain(ctx, h, domainID)
	if err != nil {
		return err
	}
	x, err := call(ctx, h, d.cfg.CallTimeout, "XML of domain "+domainID, func(a API) (string, error) { return a.DomainGetXMLDesc(dom, 0) })
	if err != nil {
		return err
	}
	pd, err := parseDomainXML(x)
	if err != nil {
		return fmt.Errorf("libvirt: domain %s XML: %w", domainID, err)
	}
	srcPath, err := call(ctx, h, d.cfg.CallTimeout, "volume path", func(a API) (string, error) { return a.StorageVolGetPath(src) })
	if err != nil {
		return err
	}
	b := backupXML{Mode: "push"}
	found := false
	for _, disk := range pd.Devices.Disks {
		bd := backupDiskXML{Name: disk.Target.Dev, Backup: "no"}
		if disk.Source.Volume == d.n.volume(srcID) {
			found = true
			bd.Backup, bd.Type = "yes", "file"
			bd.Target = &struct {
				File string `xml:"file,attr"`
			}{File: filepath.Join(filepath.Dir(srcPath), d.n.volume(dst.ID))}
			bd.Driver = &struct {
				Type string `xml:"type,attr"`
			}{Type: localcloud.VolumeQCOW2}
		}
		b.Disks.Disk = append(b.Disks.Disk, bd)
	}
	if !found {
		return fmt.Errorf("libvirt: volume %s is not attached to domain %s: %w", srcID, domainID, peers.ErrNotFound)
	}
	bx, err := xml.Marshal(b)
	if err != nil {
		return err
	}
	if err := do(ctx, h, d.cfg.CallTimeout, "begin the backup of "+srcID, func(a API) error {
		return a.DomainBackupBegin(dom, string(bx), nil, 0)
	}); err != nil {
		return err
	}
	if err := d.waitJob(ctx, h, dom, "backup of "+srcID); err != nil {
		return err
	}
	// The job wrote the file into the pool's directory: a refresh makes it
	// a pool volume.
	if err := d.refreshPool(ctx, h); err != nil {
		return err
	}
	_, _, err = d.volume(ctx, h, dst.ID)
	return err
}

// waitJob polls the domain's job until it ends, and reports how: a job
// that failed or was cancelled is an error; a ctx that ends aborts it.
func (d *Driver) waitJob(ctx context.Context, h *hostConn, dom golibvirt.Domain, what string) error {
	pause := 20 * time.Millisecond
	for {
		typ, err := call(ctx, h, d.cfg.CallTimeout, what+": job info", func(a API) (int32, error) {
			t, _, _, _, _, _, _, _, _, _, _, _, err := a.DomainGetJobInfo(dom)
			return t, err
		})
		if err != nil {
			return err
		}
		if golibvirt.DomainJobType(typ) == golibvirt.DomainJobNone {
			break
		}
		select {
		case <-ctx.Done():
			_ = do(context.WithoutCancel(ctx), h, d.cfg.CallTimeout, what+": abort", func(a API) error { return a.DomainAbortJob(dom) })
			return fmt.Errorf("libvirt: %s: %w", what, ctx.Err())
		case <-time.After(pause):
		}
		pause = min(2*pause, time.Second)
	}
	typ, err := call(ctx, h, d.cfg.CallTimeout, what+": job result", func(a API) (int32, error) {
		t, _, err := a.DomainGetJobStats(dom, golibvirt.DomainJobStatsCompleted)
		return t, err
	})
	if err != nil {
		return err
	}
	if golibvirt.DomainJobType(typ) != golibvirt.DomainJobCompleted {
		return fmt.Errorf("libvirt: %s ended as job type %d, not completed", what, typ)
	}
	return nil
}
