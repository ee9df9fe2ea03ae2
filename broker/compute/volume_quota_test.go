package compute_test

import (
	"testing"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/internal/brokertest"
)

// TestOpenStackCLIVolumeQuotas drives the real openstack CLI through a
// project's volume quota: an admin sets it, the project sees it in quota
// show and limits show, a volume create over it is refused with Cinder's
// message, and a server's boot volume made from an image counts as a
// volume (its root disk on the flavor does not).
func TestOpenStackCLIVolumeQuotas(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the openstack CLI")
	}
	se := newServersEnv(t)
	img, net := se.Seeded["local-a"].ImageID, se.Nets["local-a"]
	pw := se.Member(t, "vera", "quota-p", identity.RoleMember)
	project, err := se.Dir.FindProject(se.Ctx, identity.DefaultDomainID, "quota-p")
	if err != nil {
		t.Fatal(err)
	}
	admin := func(args ...string) (string, int) {
		return se.osc(t, "admin", brokertest.AdminPassword, "admin", args...)
	}
	vera := func(args ...string) (string, int) { return se.osc(t, "vera", pw, "quota-p", args...) }
	steps := []struct {
		name     string
		run      func() (string, int)
		wantCode int
		want     []string
	}{
		{"quota set", func() (string, int) { return admin("quota", "set", "--volumes", "2", "--gigabytes", "5", "quota-p") }, 0, nil},
		{"quota show", func() (string, int) { return admin("quota", "show", "quota-p", "-f", "shell") }, 0,
			[]string{`volumes="2"`, `gigabytes="5"`, `snapshots="10"`}},
		{"a member may not set quotas", func() (string, int) { return vera("quota", "set", "--volumes", "20", "quota-p") }, 1,
			[]string{"(HTTP 403)"}},
		{"a server on its root disk is no volume", func() (string, int) {
			return vera("server", "create", "--flavor", "m1.tiny", "--image", img, "--network", net, "--wait", "disk-vm")
		}, 0, nil},
		{"first volume", func() (string, int) { return vera("volume", "create", "--size", "1", "one") }, 0, nil},
		{"a boot volume from an image is one", func() (string, int) {
			return vera("server", "create", "--flavor", "m1.tiny", "--image", img, "--boot-from-volume", "1", "--network", net, "--wait", "bfv-vm")
		}, 0, nil},
		{"a third is over the quota", func() (string, int) { return vera("volume", "create", "--size", "1", "three") }, 1,
			[]string{"VolumeLimitExceeded: Maximum number of volumes allowed (2) exceeded for quota 'volumes'.", "(HTTP 413)"}},
		{"so is a third as a boot volume", func() (string, int) {
			return vera("server", "create", "--flavor", "m1.tiny", "--image", img, "--boot-from-volume", "1", "--network", net, "bfv-2")
		}, 1, []string{"Volume resource quota exceeded: Maximum number of volumes allowed (2) exceeded for quota 'volumes'.", "(HTTP 403)"}},
		{"limits show", func() (string, int) { return vera("limits", "show", "--absolute", "-f", "value") }, 0,
			[]string{"maxTotalVolumes 2", "maxTotalVolumeGigabytes 5", "totalVolumesUsed 2", "totalGigabytesUsed 2"}},
		{"quota list of the projects set apart", func() (string, int) { return admin("quota", "list", "--volume", "-f", "value") }, 0,
			[]string{project.ID + "   5  10 2"}},
		{"a limit below the usage is refused", func() (string, int) { return admin("quota", "set", "--volumes", "1", "quota-p") }, 1,
			[]string{"quota_set.volumes: quota limit 1 must be equal or greater than existing resources", "(HTTP 400)"}},
		{"more room", func() (string, int) { return admin("quota", "set", "--volumes", "3", "quota-p") }, 0, nil},
		{"then too many gigabytes", func() (string, int) { return vera("volume", "create", "--size", "4", "big") }, 1,
			[]string{"VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed gigabytes quota. Requested 4G, quota is 5G and 2G has been consumed.", "(HTTP 413)"}},
		{"delete frees", func() (string, int) { return vera("volume", "delete", "one") }, 0, nil},
		{"limits after the delete", func() (string, int) { return vera("limits", "show", "--absolute", "-f", "value") }, 0,
			[]string{"totalVolumesUsed 1", "totalGigabytesUsed 1"}},
	}
	scripted := make([]cliStep, 0, len(steps))
	for _, st := range steps {
		scripted = append(scripted, cliStep{st.name, st.run, st.wantCode, st.want, nil})
	}
	runCLI(t, scripted)
}
