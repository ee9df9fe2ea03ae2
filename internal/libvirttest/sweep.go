package libvirttest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// SweepStalePools removes what an earlier run of a test killed before
// its cleanup left behind: every storage pool named prefix<pid> whose
// process is gone, with the domains whose disks are in it and its
// directory under dirRoot. Pools of live processes (a run going on now)
// are left alone.
func SweepStalePools(t testing.TB, uri, prefix, dirRoot string) {
	t.Helper()
	out, err := Virsh(uri, "pool-list", "--all", "--name")
	if err != nil {
		t.Logf("sweeping stale pools: %v", err)
		return
	}
	for _, pool := range strings.Fields(out) {
		pid, err := strconv.Atoi(strings.TrimPrefix(pool, prefix))
		if !strings.HasPrefix(pool, prefix) || err != nil || alive(pid) {
			continue
		}
		dir := filepath.Join(dirRoot, pool)
		doms, _ := Virsh(uri, "list", "--all", "--name")
		for _, dom := range strings.Fields(doms) {
			disks, _ := Virsh(uri, "domblklist", dom, "--details")
			if !strings.Contains(disks, dir+"/") {
				continue
			}
			_, _ = Virsh(uri, "destroy", dom)
			_, _ = Virsh(uri, "undefine", dom, "--nvram")
			t.Logf("removed domain %s of stale pool %s", dom, pool)
		}
		_, _ = Virsh(uri, "pool-destroy", pool)
		_, _ = Virsh(uri, "pool-undefine", pool)
		_ = os.RemoveAll(dir)
		t.Logf("removed stale pool %s (process %d is gone)", pool, pid)
	}
}
