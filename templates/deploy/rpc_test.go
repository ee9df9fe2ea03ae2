package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"

	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

// The process-crash test runs the engine in a child process it kills, so
// the clouds live in the test process and the child reaches them through
// this small JSON-over-HTTP bridge: POST /rpc/PEER/METHOD with the
// arguments after the context, answered with the results.

var rpcSentinels = map[string]error{
	"not_found": peers.ErrNotFound, "conflict": peers.ErrConflict, "capacity": peers.ErrCapacity,
	"unavailable": peers.ErrUnavailable, "invalid": peers.ErrInvalid, "not_supported": peers.ErrNotSupported,
}

type rpcReply struct {
	Result   json.RawMessage `json:"result,omitempty"`
	Sentinel string          `json:"sentinel,omitempty"`
	Error    string          `json:"error,omitempty"`
}

// rpcHandler serves the clouds by peer name, calling methods by reflection.
func rpcHandler(clouds map[string]peers.Cloud) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/rpc/"), "/")
		if len(parts) != 2 || clouds[parts[0]] == nil {
			http.Error(w, "no such peer", http.StatusNotFound)
			return
		}
		m := reflect.ValueOf(clouds[parts[0]]).MethodByName(parts[1])
		if !m.IsValid() {
			http.Error(w, "no such method", http.StatusNotFound)
			return
		}
		var raw []json.RawMessage
		if err := json.NewDecoder(r.Body).Decode(&raw); err != nil || len(raw) != m.Type().NumIn()-1 {
			http.Error(w, "bad arguments", http.StatusBadRequest)
			return
		}
		in := []reflect.Value{reflect.ValueOf(r.Context())}
		for i, a := range raw {
			v := reflect.New(m.Type().In(i + 1))
			if err := json.Unmarshal(a, v.Interface()); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			in = append(in, v.Elem())
		}
		out := m.Call(in)
		var rep rpcReply
		if err, _ := out[len(out)-1].Interface().(error); err != nil {
			rep.Error = err.Error()
			for name, s := range rpcSentinels {
				if errors.Is(err, s) {
					rep.Sentinel = name
				}
			}
		} else if len(out) == 2 {
			rep.Result, _ = json.Marshal(out[0].Interface())
		}
		_ = json.NewEncoder(w).Encode(rep)
	})
}

// rpcCloud is the child's side: the peers.Cloud methods the engine calls
// for networks, subnets and servers. Others are nil and would panic,
// which the test would notice.
type rpcCloud struct {
	peers.Cloud
	url, peer string
}

func (c *rpcCloud) call(ctx context.Context, method string, out any, args ...any) error {
	if args == nil {
		args = []any{}
	}
	b, err := json.Marshal(args)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url+"/rpc/"+c.peer+"/"+method, bytes.NewReader(b))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", peers.ErrUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("rpc %s: %s", method, resp.Status)
	}
	var rep rpcReply
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		return err
	}
	if rep.Error != "" {
		if s := rpcSentinels[rep.Sentinel]; s != nil {
			return fmt.Errorf("%w: %s", s, rep.Error)
		}
		return errors.New(rep.Error)
	}
	if out != nil && len(rep.Result) > 0 {
		return json.Unmarshal(rep.Result, out)
	}
	return nil
}

func (c *rpcCloud) Capacity(ctx context.Context) (out registry.Capacity, err error) {
	return out, c.call(ctx, "Capacity", &out)
}
func (c *rpcCloud) ListFlavors(ctx context.Context) (out []peers.Flavor, err error) {
	return out, c.call(ctx, "ListFlavors", &out)
}
func (c *rpcCloud) GetImage(ctx context.Context, id string) (out peers.Image, err error) {
	return out, c.call(ctx, "GetImage", &out, id)
}
func (c *rpcCloud) ListImages(ctx context.Context, o peers.ListOptions) (out []peers.Image, err error) {
	return out, c.call(ctx, "ListImages", &out, o)
}
func (c *rpcCloud) CreateNetwork(ctx context.Context, s peers.NetworkSpec) (out peers.Network, err error) {
	return out, c.call(ctx, "CreateNetwork", &out, s)
}
func (c *rpcCloud) GetNetwork(ctx context.Context, id string) (out peers.Network, err error) {
	return out, c.call(ctx, "GetNetwork", &out, id)
}
func (c *rpcCloud) ListNetworks(ctx context.Context, o peers.ListOptions) (out []peers.Network, err error) {
	return out, c.call(ctx, "ListNetworks", &out, o)
}
func (c *rpcCloud) DeleteNetwork(ctx context.Context, id string) error {
	return c.call(ctx, "DeleteNetwork", nil, id)
}
func (c *rpcCloud) CreateSubnet(ctx context.Context, s peers.SubnetSpec) (out peers.Subnet, err error) {
	return out, c.call(ctx, "CreateSubnet", &out, s)
}
func (c *rpcCloud) GetSubnet(ctx context.Context, id string) (out peers.Subnet, err error) {
	return out, c.call(ctx, "GetSubnet", &out, id)
}
func (c *rpcCloud) ListSubnets(ctx context.Context, o peers.ListOptions) (out []peers.Subnet, err error) {
	return out, c.call(ctx, "ListSubnets", &out, o)
}
func (c *rpcCloud) DeleteSubnet(ctx context.Context, id string) error {
	return c.call(ctx, "DeleteSubnet", nil, id)
}
func (c *rpcCloud) CreateServer(ctx context.Context, s peers.ServerSpec) (out peers.Server, err error) {
	return out, c.call(ctx, "CreateServer", &out, s)
}
func (c *rpcCloud) GetServer(ctx context.Context, id string) (out peers.Server, err error) {
	return out, c.call(ctx, "GetServer", &out, id)
}
func (c *rpcCloud) ListServers(ctx context.Context, o peers.ListOptions) (out []peers.Server, err error) {
	return out, c.call(ctx, "ListServers", &out, o)
}
func (c *rpcCloud) DeleteServer(ctx context.Context, id string) error {
	return c.call(ctx, "DeleteServer", nil, id)
}
func (c *rpcCloud) ListVolumes(ctx context.Context, o peers.ListOptions) (out []peers.Volume, err error) {
	return out, c.call(ctx, "ListVolumes", &out, o)
}
func (c *rpcCloud) ListPorts(ctx context.Context, o peers.ListOptions) (out []peers.Port, err error) {
	return out, c.call(ctx, "ListPorts", &out, o)
}
