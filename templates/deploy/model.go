package deploy

import (
	"time"

	"github.com/cloudmux/cloudmux/templates"
)

// Status is a deployment's status.
type Status string

// Deployment statuses. PENDING, APPLYING, ROLLING_BACK and DELETING are
// work in progress: an engine that finds one without an owner resumes it.
const (
	StatusPending     Status = "PENDING"
	StatusApplying    Status = "APPLYING"
	StatusComplete    Status = "COMPLETE"
	StatusRollingBack Status = "ROLLING_BACK"
	StatusFailed      Status = "FAILED"
	StatusDeleting    Status = "DELETING"
	StatusDeleted     Status = "DELETED"
)

// InProgress reports whether the status is work an engine must finish.
func (s Status) InProgress() bool {
	return s == StatusPending || s == StatusApplying || s == StatusRollingBack || s == StatusDeleting
}

// Spec is what a deployment should be: a template and its inputs.
type Spec struct {
	// Template is "NAME@VERSION" when the template came from the catalog
	// (informational; Source is what is deployed).
	Template string `json:"template,omitempty"`
	// Binding is "NAME@VERSION" when the inputs came from a binding.
	Binding string `json:"binding,omitempty"`
	// Source is the template document.
	Source     string                         `json:"source"`
	Parameters map[string]any                 `json:"parameters,omitempty"`
	Placement  map[string]templates.Placement `json:"placement,omitempty"`
	// KeepOnFailure keeps what a failed attempt created (status FAILED)
	// instead of rolling it back.
	KeepOnFailure bool `json:"keep_on_failure,omitempty"`
	// TimeoutMinutes, when set, bounds each attempt at this spec: an
	// apply still running that long after it was asked for fails (and
	// rolls back unless KeepOnFailure), as Heat's timeout_mins does.
	TimeoutMinutes int `json:"timeout_minutes,omitempty"`
}

// Deployment is the durable record of one deployment.
type Deployment struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Project string `json:"project"`
	// User created the deployment: its resources are made with the
	// project's and this user's identity (keypairs are the user's).
	User   string `json:"user,omitempty"`
	Status Status `json:"status"`
	// Goal is what the in-progress work is for: "apply" or "delete".
	Goal string `json:"goal"`
	Spec Spec   `json:"spec"`
	// Applied is the spec of the last successful apply: a failed update
	// rolls back to it.
	Applied *Spec `json:"applied,omitempty"`
	// Attempt counts apply attempts; resources remember the attempt that
	// created them, so a rollback removes exactly this attempt's.
	Attempt int `json:"attempt"`
	// Resources are the instances that exist (or are being made), by key:
	// "web", "web[1]" for replicas, "net@peer" for per-peer copies.
	Resources map[string]*Resource `json:"resources"`
	// Retired are instances a replace superseded, deleted once the attempt
	// succeeds, restored if it rolls back.
	Retired map[string]*Resource `json:"retired,omitempty"`
	Outputs map[string]any       `json:"outputs,omitempty"`
	Error   string               `json:"error,omitempty"`
	// Deadline ends the current attempt (Spec.TimeoutMinutes after it
	// was asked for); zero when the spec sets no timeout. Recorded, so a
	// resumed run keeps the same deadline.
	Deadline  time.Time `json:"deadline,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ResourceStatus is an instance's status.
type ResourceStatus string

// Instance statuses. CREATING is written before the peer is asked, so a
// crash between the call and the next write leaves a CREATING instance
// the resumed run finds on the peer by its tags.
const (
	ResCreating ResourceStatus = "CREATING"
	ResCreated  ResourceStatus = "CREATED" // the peer accepted; settling
	ResReady    ResourceStatus = "READY"
	ResUpdating ResourceStatus = "UPDATING"
	ResDeleting ResourceStatus = "DELETING"
	ResFailed   ResourceStatus = "FAILED"
)

// Resource is one instance on one peer (keypairs, which the broker keeps
// per user, have none).
type Resource struct {
	Key      string         `json:"key"`
	Resource string         `json:"resource"`
	Index    int            `json:"index"` // -1 unless counted
	Kind     templates.Kind `json:"kind"`
	PeerID   string         `json:"peer_id"`
	PeerName string         `json:"peer_name"`
	// ID is the resource's broker ID (a keypair's name), as the
	// OpenStack APIs show it; a peer's own ID is never recorded.
	ID string `json:"id,omitempty"`
	// LegacyBrokerID is read from records of the engine that called the
	// peers itself (ID was the peer's then): loading moves it into ID.
	LegacyBrokerID string         `json:"broker_id,omitempty"`
	Status         ResourceStatus `json:"status"`
	// Props is the canonical JSON of the planned properties, references
	// still symbolic: an update changes it only if the template did.
	Props string `json:"props"`
	// Placement is the placement block the peer was chosen by: while it
	// stays the same, the instance stays on its peer.
	Placement string         `json:"placement,omitempty"`
	Attrs     map[string]any `json:"attrs,omitempty"`
	Attempt   int            `json:"attempt"`
	// Deps are the keys this instance depends on.
	Deps  []string `json:"deps,omitempty"`
	Error string   `json:"error,omitempty"`
	// Unhealthy, when set, is why a user marked the instance unhealthy
	// (Heat's mark-unhealthy): the next apply replaces it.
	Unhealthy string `json:"unhealthy,omitempty"`
}

// Event is one step of a deployment's history.
type Event struct {
	Seq      int64     `json:"seq"`
	Time     time.Time `json:"time"`
	Resource string    `json:"resource,omitempty"`
	Peer     string    `json:"peer,omitempty"`
	// Action is what happened: create, update, replace, delete, adopt,
	// rollback, or deployment-level: apply, complete, failed, deleted.
	Action  string `json:"action"`
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
	// Attempt is the deployment's attempt when the event was written:
	// 1 is its first apply (Heat's CREATE), later ones updates.
	Attempt int `json:"attempt,omitempty"`
	// Final marks the last event of a run: the deployment's settled
	// status is saved before it is written, so a follower that has read
	// it and finds the status settled has seen everything.
	Final bool `json:"final,omitempty"`
}

// Marks on every resource a deployment creates (written on the peer's
// resource by the service that makes it), so an interrupted create is
// found again rather than made twice.
const (
	MetaDeployment = "cloudmux_deployment"
	MetaResource   = "cloudmux_resource"
)
