package network

import (
	"context"
	"errors"
	"fmt"

	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/broker/quota"
)

// Quota is the part of quota.Ledger the service uses: networks, subnets,
// ports, security groups and their rules are reserved before they are
// made, committed when they exist and freed once when deleted, so
// concurrent creates on any number of brokers never pass a project's
// limits.
type Quota interface {
	Reserve(ctx context.Context, s quota.Scope, want quota.Amounts, what string) (*quota.Reservation, error)
	Add(ctx context.Context, s quota.Scope, amounts quota.Amounts) error
	Free(ctx context.Context, s quota.Scope, amounts quota.Amounts) error
	Usage(ctx context.Context, s quota.Scope) (used, reserved quota.Amounts, err error)
}

var _ Quota = (*quota.Ledger)(nil)

// kindCharge is what one resource of each kind counts.
var kindCharge = map[string]quota.Resource{
	KindNetwork: quota.Networks, KindSubnet: quota.Subnets, KindPort: quota.Ports,
	kindSecurityGroup: quota.SecurityGroups, kindSecurityGroupRule: quota.SecurityGroupRules,
	KindRouter: quota.Routers, KindFloatingIP: quota.FloatingIPs,
}

// neutronQuotas are Neutron's quota names for the ledger's dimensions.
var neutronQuotas = map[string]quota.Resource{
	"network": quota.Networks, "subnet": quota.Subnets, "port": quota.Ports,
	"security_group": quota.SecurityGroups, "security_group_rule": quota.SecurityGroupRules,
	"router": quota.Routers, "floatingip": quota.FloatingIPs,
}

// reserve sets one resource of kind aside for project; see reserveAmounts.
func (s *Service) reserve(ctx context.Context, project, kind string, id string) (*quota.Reservation, error) {
	return s.reserveAmounts(ctx, project, quota.Amounts{kindCharge[kind]: 1}, kind+" "+id)
}

// reserveAmounts sets want aside for project, or refuses with Neutron's
// 409 OverQuota. Without Quota nothing is counted (a nil reservation,
// which commit and release accept).
func (s *Service) reserveAmounts(ctx context.Context, project string, want quota.Amounts, what string) (*quota.Reservation, error) {
	if s.Quota == nil {
		return nil, nil
	}
	res, err := s.Quota.Reserve(ctx, quota.Scope{Project: project}, want, what)
	if o, ok := quota.Overs(err); ok {
		return nil, &Error{Status: 409, Type: "OverQuota", Err: ErrInUse,
			Message: fmt.Sprintf("Quota exceeded for resources: ['%s'].", neutronName(o[0].Resource))}
	}
	return res, err
}

// neutronName is Neutron's name of a quota dimension.
func neutronName(r quota.Resource) string {
	for k, v := range neutronQuotas {
		if v == r {
			return k
		}
	}
	return string(r)
}

// release gives back a reservation not committed (after a commit it does
// nothing), logging a failure: the reservation then expires on its own.
func (s *Service) release(ctx context.Context, res *quota.Reservation) {
	if res == nil {
		return
	}
	if err := res.Release(context.WithoutCancel(ctx)); err != nil {
		s.Log.WithError(err).Warn("quota reservation not released; it expires on its own")
	}
}

// commit counts a reservation whose resource now exists.
func commit(ctx context.Context, res *quota.Reservation) (quota.Amounts, error) {
	if res == nil {
		return nil, nil
	}
	if err := res.Commit(context.WithoutCancel(ctx)); err != nil {
		return nil, fmt.Errorf("counting the resource in its quota: %w", err)
	}
	return res.Amounts(), nil
}

// free gives back what a deleted resource counted.
func (s *Service) free(ctx context.Context, project string, amounts quota.Amounts) {
	if s.Quota == nil || len(amounts) == 0 {
		return
	}
	if err := s.Quota.Free(context.WithoutCancel(ctx), quota.Scope{Project: project}, amounts); err != nil {
		s.Log.WithError(err).WithField("project", project).Error("a deleted resource's quota not freed; it stays counted")
	}
}

// forget removes a deleted resource's index entry and attributes, and
// frees its quota if this call removed the entry.
func (s *Service) forget(ctx context.Context, e index.Entry) error {
	gone, removed, err := s.Index.Remove(ctx, e)
	if removed {
		s.free(ctx, gone.Project, gone.Charge)
	}
	kind := e.Kind
	if kind == kindServerPort {
		kind = KindPort // its attributes are a port's
	}
	aerr := s.Store.Delete(context.WithoutCancel(ctx), attrsKey(kind, e.ID))
	if aerr == nil {
		s.attrRecords().Deleted(attrsKey(kind, e.ID))
	}
	return errors.Join(err, aerr)
}
