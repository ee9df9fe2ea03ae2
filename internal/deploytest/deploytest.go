// Package deploytest wires the broker's real services (servers,
// keypairs, networks, images, volumes, quota) over a pool of peers, and
// the deployment engine's adapter over them, as cmd/cloudmux's serve
// does: for the engine's tests, which exercise it against fake-driver
// local clouds rather than mocks.
package deploytest

import (
	"time"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/compute"
	"github.com/cloudmux/cloudmux/broker/deployres"
	"github.com/cloudmux/cloudmux/broker/image"
	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/broker/network"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/broker/volume"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/registry"
)

// Pool is what the services need of a peer pool.
type Pool interface {
	Members() []*peers.Member
	Get(id string) (*peers.Member, bool)
}

// Services are the broker's services and the engine's adapter over them.
type Services struct {
	Index    *index.Index
	Servers  *compute.Servers
	Keypairs *compute.KeypairStore
	Networks *network.Service
	Images   *image.Service
	Volumes  *volume.Service
	Ledger   *quota.Ledger
	// Limits are the ledger's: a test sets a project's with Set, or every
	// project's with Default.
	Limits  *quota.Limits
	Adapter *deployres.Adapter
}

// Unlimited lifts every default limit (tests that deploy more than
// Nova's ten instances; a project's own limits still apply).
func (s *Services) Unlimited() {
	s.Limits.Default = quota.Amounts{}
	for r := range quota.Defaults {
		s.Limits.Default[r] = quota.Unlimited
	}
}

// New wires the services over pool and store under the placement policy
// placer, marking what they create with brokerID.
func New(store registry.Store, pool Pool, placer policy.Placer, brokerID string, log logrus.FieldLogger) *Services {
	s := &Services{Index: index.New(store), Ledger: quota.NewLedger(store, brokerID+"-1", log)}
	s.Limits = s.Ledger.Limits.(*quota.Limits)
	s.Images = &image.Service{Pool: pool, Index: s.Index, Placer: placer, Store: store, Log: log, BrokerID: brokerID}
	s.Networks = &network.Service{Pool: pool, Index: s.Index, Store: store, Placer: placer, Log: log, BrokerID: brokerID, Quota: s.Ledger}
	s.Volumes = &volume.Service{Pool: pool, Index: s.Index, Placer: placer, Images: s.Images, Store: store, Log: log, BrokerID: brokerID,
		Quota: s.Ledger}
	s.Keypairs = compute.NewKeypairStore(store)
	s.Keypairs.Quota = s.Ledger
	s.Servers = &compute.Servers{Pool: pool, Index: s.Index, Placer: placer, Images: s.Images, Networks: s.Networks, Volumes: s.Volumes,
		Keypairs: s.Keypairs, Store: store, Log: log, BrokerID: brokerID, PeerTimeout: 10 * time.Second, Quota: s.Ledger}
	s.Adapter = &deployres.Adapter{Servers: s.Servers, Keypairs: s.Keypairs, Networks: s.Networks, Images: s.Images,
		Volumes: s.Volumes, Quota: s.Ledger, Pool: pool}
	return s
}
