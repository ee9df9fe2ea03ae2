package volume

import (
	"context"
	"errors"
	"fmt"

	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/policy"
)

// Ledger is the part of quota.Ledger the service uses: a create reserves
// {volumes: 1, gigabytes: size} before any peer is asked, commits it once
// the peer made the volume (before the index write) and releases it when
// the create fails; a delete frees what the volume's index entry says it
// was charged, once, by the caller whose index removal won; an extend
// reserves the added gigabytes.
type Ledger interface {
	Reserve(ctx context.Context, s quota.Scope, want quota.Amounts, what string) (*quota.Reservation, error)
	Free(ctx context.Context, s quota.Scope, amounts quota.Amounts) error
	Usage(ctx context.Context, s quota.Scope) (used, reserved quota.Amounts, err error)
	Quota(ctx context.Context, project string) (quota.Amounts, error)
}

var _ Ledger = (*quota.Ledger)(nil)

// volumeCharge is what a volume of size GiB counts.
func volumeCharge(sizeGiB int) quota.Amounts {
	return quota.Amounts{quota.Volumes: 1, quota.Gigabytes: sizeGiB}
}

// reserve sets charge aside in the caller's project's quota, refusing with
// ErrOverQuota (Cinder's wording) when it does not fit. With req, it also
// hands the placement policy the project's usage and quota (volumes and
// gigabytes), leaving out this reservation, which is the request: a policy
// may be stricter, never looser.
func (s *Service) reserve(ctx context.Context, c Caller, charge quota.Amounts, what string, req *policy.Request) (*quota.Reservation, error) {
	scope := quota.Scope{Project: c.Project}
	res, err := s.Quota.Reserve(ctx, scope, charge, what)
	if err != nil {
		return nil, quotaError(err)
	}
	if req == nil {
		return res, nil
	}
	limits, err := s.Quota.Quota(ctx, c.Project)
	var used, reserved quota.Amounts
	if err == nil {
		used, reserved, err = s.Quota.Usage(ctx, scope)
	}
	if err != nil {
		_ = res.Release(context.WithoutCancel(ctx))
		return nil, err
	}
	u := used.Clone()
	for k, v := range reserved {
		u[k] += v - charge[k]
	}
	req.Usage = &policy.Usage{Volumes: u[quota.Volumes], DiskGiB: u[quota.Gigabytes]}
	req.Quota = &policy.Usage{Volumes: limits[quota.Volumes], DiskGiB: limits[quota.Gigabytes], VCPUs: -1, RAMMiB: -1, Instances: -1}
	return res, nil
}

// release gives a reservation back unless done says it was committed.
func (s *Service) release(ctx context.Context, res *quota.Reservation, done *bool, what string) {
	if *done {
		return
	}
	if err := res.Release(context.WithoutCancel(ctx)); err != nil {
		s.Log.WithError(err).WithField("volume", what).Warn("quota reservation not released; it expires on its own")
	}
}

// quotaError words the ledger's refusal as Cinder does: the gigabytes
// limit (checked first, as Cinder does) as VolumeSizeExceedsAvailableQuota,
// the volumes limit as VolumeLimitExceeded. Any other error is returned as
// is.
func quotaError(err error) error {
	overs, ok := quota.Overs(err)
	if !ok || len(overs) == 0 {
		return err
	}
	o := overs[0]
	msg := fmt.Sprintf("Maximum number of %s allowed (%d) exceeded for quota '%s'.", o.Resource, o.Limit, o.Resource)
	if o.Resource == quota.Gigabytes {
		msg = fmt.Sprintf("Requested volume or snapshot exceeds allowed gigabytes quota. Requested %dG, quota is %dG and %dG has been consumed.",
			o.Requested, o.Limit, o.Used)
	}
	return &Error{Message: msg, Err: ErrOverQuota, Also: err}
}

// QuotaCode is Cinder's name for a quota refusal (the exception class its
// API shows before the message), or "" when err is none.
func QuotaCode(err error) string {
	overs, ok := quota.Overs(err)
	switch {
	case !ok || len(overs) == 0 || !errors.Is(err, ErrOverQuota):
		return ""
	case overs[0].Resource == quota.Gigabytes:
		return "VolumeSizeExceedsAvailableQuota"
	case overs[0].Resource == quota.Snapshots:
		return "SnapshotLimitExceeded"
	}
	return "VolumeLimitExceeded"
}
