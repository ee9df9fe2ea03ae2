package compute

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/google/uuid"

	"github.com/cloudmux/cloudmux/broker/quota"
)

// MaxBatch bounds a multi-create, as Nova's quotas bound it in practice.
const MaxBatch = 100

// createWorkers is how many servers of a batch boot at once.
const createWorkers = 4

// CreateMany boots from min to max servers of one spec (Nova's min_count
// and max_count), as many as the project's quota lets, at least min: the
// batch is reserved in the quota ledger at once, then split into one
// reservation per server, so a concurrent create never takes what the
// batch counted on. Each server is placed on its own. They share a
// reservation ID and are named "NAME-1" ... "NAME-N" (launch index 0 to
// N-1), as Nova names them. Fewer than min made (placement or a peer
// refused the rest) deletes those made and fails; otherwise the servers
// made are returned by launch index.
func (s *Servers) CreateMany(ctx context.Context, c Caller, spec CreateSpec, lo, hi int) ([]Server, error) {
	if lo < 1 || hi < lo || hi > MaxBatch {
		return nil, invalid("min_count", "Invalid input for field/attribute min_count/max_count: want 1 <= min_count <= max_count <= %d", MaxBatch)
	}
	if hi == 1 {
		srv, err := s.Create(ctx, c, spec)
		if err != nil {
			return nil, err
		}
		return []Server{srv}, nil
	}
	if err := errors.Join(spec.Validate(), spec.checkBatch()); err != nil {
		return nil, err
	}
	p, err := s.plan(ctx, c, spec)
	if err != nil {
		return nil, err
	}
	charge, portsEach := serverCharge(p.flavor), portsMade(spec)
	one := charge.Clone()
	one[quota.Ports] = portsEach
	n, batch, err := s.reserveBatch(ctx, c, one, lo, hi)
	if err != nil {
		return nil, err
	}
	rid := NewReservationID()
	parts, whats := make([]quota.Amounts, 0, 2*n), make([]string, 0, 2*n)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = uuid.NewString()
		parts = append(parts, charge, quota.Amounts{quota.Ports: portsEach})
		whats = append(whats, KindServer+" "+ids[i], "ports of "+KindServer+" "+ids[i])
	}
	res, err := batch.Split(ctx, parts, whats)
	if err != nil {
		s.release(ctx, rid, batch)
		return nil, fmt.Errorf("splitting the quota reservation of batch %s: %w", rid, err)
	}
	made := make([]Server, n)
	errs := make([]error, n)
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(createWorkers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				one := spec
				one.Name, one.ReservationID, one.LaunchIndex = fmt.Sprintf("%s-%d", spec.Name, i+1), rid, i
				req := placementRequest(c, one, p, ids[i])
				tellPolicy(&req, res[2*i].Seen())
				ports := res[2*i+1]
				if portsEach == 0 {
					ports = nil
				}
				made[i], errs[i] = s.createPlanned(ctx, c, one, p, ids[i], req, res[2*i], ports)
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	var out []Server
	for i := range n {
		if errs[i] == nil {
			out = append(out, made[i])
		}
	}
	if len(out) >= lo {
		if len(out) < n {
			s.Log.WithError(errors.Join(errs...)).WithField("reservation", rid).Warnf("multi-create: %d of %d servers made (at least %d asked)", len(out), n, lo)
		}
		return out, nil
	}
	for _, srv := range out {
		if err := s.Delete(context.WithoutCancel(ctx), c, srv.ID); err != nil {
			s.Log.WithError(err).WithField("server", srv.ID).Error("multi-create: a server of a failed batch not deleted")
		}
	}
	return nil, firstError(errs)
}

// checkBatch refuses what one request cannot give several servers: a
// port or a fixed IP (Nova's MultiplePortsNotApplicable and
// InvalidFixedIpAndMaxCountRequest), a volume to boot from, a hostname
// (AmbiguousHostnameForMultipleInstances).
func (spec CreateSpec) checkBatch() error {
	var errs []error
	if slices.ContainsFunc(spec.NICs, func(n NIC) bool { return n.Port != "" }) {
		errs = append(errs, invalid("networks", "Unable to launch multiple instances with a single configured port ID. Please launch your instance one by one with different ports."))
	}
	if slices.ContainsFunc(spec.NICs, func(n NIC) bool { return n.FixedIP != "" }) {
		errs = append(errs, invalid("networks", "The requested fixed IP address cannot be given to more than one server; give max_count 1"))
	}
	if spec.BootVolume != "" {
		errs = append(errs, invalid("block_device_mapping_v2", "A volume boots one server; give max_count 1 or boot from an image"))
	}
	if spec.Hostname != "" {
		errs = append(errs, invalid("hostname", "Unable to allocate a hostname to multiple instances. Either request a single instance or omit the hostname."))
	}
	return errors.Join(errs...)
}

// reserveBatch reserves as many servers of one's charge as the project's
// quota lets, up to hi; fewer than lo is Nova's 403 naming the limit. A
// concurrent create that took what the count read falls back to lo.
func (s *Servers) reserveBatch(ctx context.Context, c Caller, one quota.Amounts, lo, hi int) (int, *quota.Reservation, error) {
	scope := quota.Scope{Project: c.Project}
	used, reserved, err := s.Quota.Usage(ctx, scope)
	if err != nil {
		return 0, nil, err
	}
	limits, err := s.Quota.Quota(ctx, c.Project)
	if err != nil {
		return 0, nil, err
	}
	n := hi
	for k, per := range one {
		if l, ok := limits[k]; ok && l >= 0 && per > 0 {
			n = min(n, (l-used[k]-reserved[k])/per)
		}
	}
	n = max(n, lo) // too few: the reservation words the refusal
	res, err := s.Quota.Reserve(ctx, scope, times(one, n), fmt.Sprintf("%d servers", n))
	if err != nil && errors.Is(err, quota.ErrOverQuota) && n > lo {
		n = lo
		res, err = s.Quota.Reserve(ctx, scope, times(one, n), fmt.Sprintf("%d servers", n))
	}
	if err != nil {
		return 0, nil, quotaError(err)
	}
	return n, res, nil
}

func times(a quota.Amounts, n int) quota.Amounts {
	out := quota.Amounts{}
	for k, v := range a {
		out[k] = v * n
	}
	return out
}

// firstError is the first of errs that is not nil.
func firstError(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
