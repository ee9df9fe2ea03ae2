package ec2

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/compute"
	"github.com/cloudmux/cloudmux/broker/faults"
	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/image"
	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/broker/osapi"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/registry"
)

// Pool is the part of peers.Pool the API uses.
type Pool interface {
	Members() []*peers.Member
	Get(id string) (*peers.Member, bool)
}

// API serves the EC2 Query API (mount it at /ec2). Pool, Store, Creds,
// Keypairs, Index, Placer and Log are required; Images adds the image
// actions and the upload path, Servers (with Images) the instance actions.
type API struct {
	Pool     Pool
	Store    Store
	Creds    CredentialStore
	Keypairs *compute.KeypairStore
	Images   *image.Service
	Servers  ServerService
	// Networks adds VPCs, subnets and security groups (and SubnetId on
	// RunInstances).
	Networks NetworkService
	// Addresses adds Elastic IPs (the network service's floating IPs).
	Addresses AddressService
	Index     *index.Index
	Placer    policy.Placer
	Log       logrus.FieldLogger
	// BrokerID marks every resource this installation creates.
	BrokerID string
	// Region is the region DescribeRegions names; default identity.Region.
	// Requests signed for any region are accepted.
	Region string
	// Now is the clock signatures are checked against; default time.Now.
	Now func() time.Time

	// Volumes adds the volume actions (Create/Describe/Delete/Attach/
	// DetachVolume): the volume service Cinder uses too.
	Volumes VolumeService

	// IDRetention is how long IDCollector keeps the EC2 ID pair of a
	// resource that is gone (default DefaultIDRetention).
	IDRetention time.Duration

	idsOnce sync.Once
	ids     *ids
	tags    *projectRecords           // ec2/tags/
	gone    *projectRecords           // ec2/terminated/
	cidrs   *registry.Records[string] // ec2/vpc-cidrs/
}

// maxBody bounds a Query request's form body.
const maxBody = 1 << 20

// call is one authenticated action request.
type call struct {
	r      *http.Request
	token  identity.Token
	params params
	// write is set for actions that change something (they may record
	// EC2 ID pairs; describes only read).
	write bool
	// partial names the peers a merged list is missing (they did not
	// answer in time), for osapi.PartialHeader.
	partial []string
}

// flagPartial records and logs the peers a list is missing.
func (c *call) flagPartial(log logrus.FieldLogger, what string, peers []string) {
	if len(peers) == 0 {
		return
	}
	c.partial = append(c.partial, peers...)
	log.WithFields(logrus.Fields{"list": what, "peers": peers, "request_id": middleware.GetReqID(c.r.Context())}).Warn("ec2: partial list; peers did not answer")
}

type actionFunc func(ctx context.Context, c *call) (any, error)

type actionDef struct {
	fn actionFunc
	// write actions need the member role; readers only describe.
	write bool
}

// actions are the actions the API offers: a group whose service is not
// configured (Images, Servers nil) is left out, and its actions answer
// InvalidAction rather than fail inside.
func (a *API) actions() map[string]actionDef {
	out := map[string]actionDef{
		"DescribeRegions":           {a.describeRegions, false},
		"DescribeAvailabilityZones": {a.describeZones, false},
		"DescribeAccountAttributes": {a.describeAccountAttributes, false},
		"DescribeKeyPairs":          {a.describeKeyPairs, false},
		"CreateKeyPair":             {a.createKeyPair, true},
		"ImportKeyPair":             {a.importKeyPair, true},
		"DeleteKeyPair":             {a.deleteKeyPair, true},
		"CreateTags":                {a.createTags, true},
		"DeleteTags":                {a.deleteTags, true},
		"DescribeTags":              {a.describeTags, false},
	}
	if a.Volumes != nil {
		out["CreateVolume"] = actionDef{a.createVolume, true}
		out["DescribeVolumes"] = actionDef{a.describeVolumes, false}
		out["DeleteVolume"] = actionDef{a.deleteVolume, true}
	}
	if a.Images != nil {
		out["DescribeImages"] = actionDef{a.describeImages, false}
		out["RegisterImage"] = actionDef{a.registerImage, true}
		out["DeregisterImage"] = actionDef{a.deregisterImage, true}
	}
	if a.Servers != nil {
		out["DescribeInstanceTypes"] = actionDef{a.describeInstanceTypes, false}
	}
	if a.Servers != nil && a.Volumes != nil {
		out["AttachVolume"] = actionDef{a.attachVolume, true}
		out["DetachVolume"] = actionDef{a.detachVolume, true}
	}
	if a.Networks != nil {
		out["DescribeVpcs"] = actionDef{a.describeVpcs, false}
		out["DescribeSubnets"] = actionDef{a.describeSubnets, false}
		out["DescribeSecurityGroups"] = actionDef{a.describeSecurityGroups, false}
		out["CreateSecurityGroup"] = actionDef{a.createSecurityGroup, true}
		out["CreateVpc"] = actionDef{a.createVpc, true}
		out["DeleteVpc"] = actionDef{a.deleteVpc, true}
		out["CreateSubnet"] = actionDef{a.createSubnet, true}
		out["DeleteSubnet"] = actionDef{a.deleteSubnet, true}
		out["DeleteSecurityGroup"] = actionDef{a.deleteSecurityGroup, true}
		out["AuthorizeSecurityGroupIngress"] = actionDef{a.authorize("ingress"), true}
		out["AuthorizeSecurityGroupEgress"] = actionDef{a.authorize("egress"), true}
		out["RevokeSecurityGroupIngress"] = actionDef{a.revoke("ingress"), true}
		out["RevokeSecurityGroupEgress"] = actionDef{a.revoke("egress"), true}
	}
	if a.Addresses != nil {
		out["AllocateAddress"] = actionDef{a.allocateAddress, true}
		out["DescribeAddresses"] = actionDef{a.describeAddresses, false}
		out["DisassociateAddress"] = actionDef{a.disassociateAddress, true}
		out["ReleaseAddress"] = actionDef{a.releaseAddress, true}
	}
	if a.Addresses != nil && a.Servers != nil {
		out["AssociateAddress"] = actionDef{a.associateAddress, true}
	}
	if a.Servers != nil && a.Images != nil {
		out["RunInstances"] = actionDef{a.runInstances, true}
		out["DescribeInstances"] = actionDef{a.describeInstances, false}
		out["DescribeInstanceStatus"] = actionDef{a.describeInstanceStatus, false}
		out["StartInstances"] = actionDef{a.startInstances, true}
		out["StopInstances"] = actionDef{a.stopInstances, true}
		out["RebootInstances"] = actionDef{a.rebootInstances, true}
		out["TerminateInstances"] = actionDef{a.terminateInstances, true}
		out["GetConsoleOutput"] = actionDef{a.getConsoleOutput, false}
	}
	return out
}

// Routes mounts the API on r (at /ec2): every action is a GET or a
// form-encoded POST to the root; image bytes go to /upload.
func (a *API) Routes(r chi.Router) {
	a.idMaps()
	actions := a.actions()
	v := &verifier{creds: a.Creds, now: a.now}
	r.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if a.Images != nil && isMultipart(r) {
			a.econeUpload(w, r, v) // streamed: not read whole as a form is
			return
		}
		a.serve(w, r, v, actions)
	})
	if a.Images != nil {
		r.Put("/upload", a.upload(v))
		r.Post("/upload", a.upload(v))
	}
}

func (a *API) now() time.Time {
	if a.Now != nil {
		return a.Now().UTC()
	}
	return time.Now().UTC()
}

func (a *API) region() string {
	if a.Region != "" {
		return a.Region
	}
	return identity.Region
}

func (a *API) serve(w http.ResponseWriter, r *http.Request, v *verifier, actions map[string]actionDef) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		writeError(w, r, errorf(http.StatusMethodNotAllowed, "UnsupportedOperation", "the EC2 Query API takes GET or POST, not %s", r.Method))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		writeError(w, r, invalidParameter("The request body could not be read"))
		return
	}
	if len(body) > maxBody {
		writeError(w, r, errorf(http.StatusRequestEntityTooLarge, "InvalidParameterValue", "the request body is larger than %d bytes", maxBody))
		return
	}
	form := r.URL.Query()
	var bodyForm url.Values
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); r.Method == http.MethodPost && (mt == "application/x-www-form-urlencoded" || mt == "") {
		if bodyForm, err = url.ParseQuery(string(body)); err != nil {
			writeError(w, r, invalidParameter("the form body does not parse: %v", err))
			return
		}
		for k, vals := range bodyForm {
			form[k] = append(form[k], vals...)
		}
	}
	token, bodySigned, e := v.verify(r, body, form)
	if e == nil && len(bodyForm) > 0 && !bodySigned {
		// Every parameter an action reads must be signed: a presigned URL
		// or an UNSIGNED-PAYLOAD signature covers the query string alone,
		// so a parameter in the body could be anyone's.
		e = authFailure("AWS was not able to validate the provided access credentials: the signature does not cover the request body " +
			"(a presigned URL or X-Amz-Content-Sha256: UNSIGNED-PAYLOAD signs only the query string); put every parameter in the signed query string, or sign the body")
	}
	if e != nil {
		l := a.Log.WithFields(logrus.Fields{"code": e.Code, "reason": e.Message, "request_id": middleware.GetReqID(r.Context())})
		if e.cause != nil {
			l = l.WithError(e.cause) // a Store error behind "the credential store did not answer"
		}
		l.Info("ec2: request refused")
		writeError(w, r, e)
		return
	}
	ctx := identity.WithToken(r.Context(), token)
	r = r.WithContext(ctx)
	name := form.Get("Action")
	if name == "" {
		writeError(w, r, missingParameter("Action"))
		return
	}
	def, ok := actions[name]
	if !ok {
		writeError(w, r, errorf(http.StatusBadRequest, "InvalidAction", "The action %s is not valid for this web service.", name))
		return
	}
	if def.write && !token.HasRole(identity.RoleMember) {
		writeError(w, r, unauthorizedOperation("You are not authorized to perform this operation: %s needs the member role on the project", name))
		return
	}
	c := &call{r: r, token: token, params: params(form), write: def.write}
	out, err := def.fn(ctx, c)
	if err != nil {
		a.fail(w, r, name, err)
		return
	}
	if len(c.partial) > 0 {
		sort.Strings(c.partial)
		w.Header().Set(osapi.PartialHeader, strings.Join(slices.Compact(c.partial), ","))
	}
	a.Log.WithFields(logrus.Fields{"action": name, "project": token.ProjectID, "user": token.UserName}).Debug("ec2: action served")
	writeResponse(w, r, name, out)
}

// fail answers an action's error: an *Error as it is, a sentinel of the
// layers below as the EC2 code that means it, anything else as an internal
// error that is logged, not echoed.
func (a *API) fail(w http.ResponseWriter, r *http.Request, action string, err error) {
	var e *Error
	id := middleware.GetReqID(r.Context())
	switch {
	case errors.As(err, &e):
	case errors.Is(err, peers.ErrCapacity):
		e = errorf(http.StatusBadRequest, "InsufficientInstanceCapacity", "There is not enough capacity to fulfil the request").hiding(err)
	case errors.Is(err, peers.ErrInvalid):
		e = invalidParameter("A cloud refused a value of the request").hiding(err)
	case errors.Is(err, registry.ErrInvalid):
		// Field errors are the broker's own wording for the tenant.
		if fields := registry.FieldErrors(err); len(fields) > 0 {
			e = invalidParameter("%s", fields[0].Error())
		} else {
			e = invalidParameter("A value of the request is not valid").hiding(err)
		}
	case errors.Is(err, peers.ErrConflict):
		e = errorf(http.StatusBadRequest, "IncorrectState", "The resource is not in a state that allows this action").hiding(err)
	case errors.Is(err, peers.ErrNotSupported):
		e = errorf(http.StatusBadRequest, "UnsupportedOperation", "The cloud holding the resource does not support this action").hiding(err)
	case errors.Is(err, peers.ErrUnavailable), errors.Is(err, registry.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		e = errorf(http.StatusServiceUnavailable, "Unavailable", "The service is unavailable; retry").hiding(err)
	default:
		a.Log.WithError(err).WithFields(logrus.Fields{"action": action, "request_id": id}).Error("ec2: internal error")
		e = errorf(http.StatusInternalServerError, "InternalError", "An internal error has occurred")
	}
	if e.cause != nil {
		// The cause, with the peer it came from and the caller's
		// project, under the request ID the answer carries.
		t, _ := identity.TokenFrom(r.Context())
		faults.Log(a.Log, id, e.Status, e.cause, logrus.Fields{"action": action, "code": e.Code, "project": t.ProjectID, "user": t.UserName})
	}
	writeError(w, r, e)
}

// baseHost is the host a request reached the broker at.
func baseHost(r *http.Request) string {
	return strings.TrimPrefix(strings.TrimPrefix(identity.BaseURL(r), "http://"), "https://")
}
