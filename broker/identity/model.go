package identity

import "time"

// Well-known identifiers, as devstack has them.
const (
	DefaultDomainID   = "default"
	DefaultDomainName = "Default"
	AdminProjectName  = "admin"
	AdminUserName     = "admin"
)

// Roles every installation has. admin implies member implies reader.
const (
	RoleAdmin  = "admin"
	RoleMember = "member"
	RoleReader = "reader"
)

// Domain is a Keystone domain.
type Domain struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Enabled     bool   `json:"enabled"`
}

// Project is a Keystone project (a tenant).
type Project struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	DomainID    string `json:"domain_id"`
	Description string `json:"description"`
	Enabled     bool   `json:"enabled"`
	// ParentID is the parent project; empty for a top-level project,
	// whose parent Keystone shows as its domain.
	ParentID string   `json:"parent_id,omitempty"`
	Tags     []string `json:"tags,omitempty"`
}

// User is a Keystone user. PasswordHash never leaves this package.
type User struct {
	ID               string    `json:"id"`
	Name             string    `json:"name"`
	DomainID         string    `json:"domain_id"`
	Enabled          bool      `json:"enabled"`
	DefaultProjectID string    `json:"default_project_id,omitempty"`
	PasswordHash     string    `json:"password_bcrypt,omitempty"`
	CreatedAt        time.Time `json:"created_at"`
	// PasswordChangedAt starts the password's expiry; PasswordHistory
	// holds earlier hashes (newest first) the policy forbids reusing;
	// FailedLogins and LockedUntil are the lockout's. None leaves this
	// package: see Directory.public.
	PasswordChangedAt time.Time `json:"password_changed_at,omitzero"`
	PasswordHistory   []string  `json:"password_history,omitempty"`
	FailedLogins      int       `json:"failed_logins,omitempty"`
	LockedUntil       time.Time `json:"locked_until,omitzero"`
	// Options are Keystone's user resource options (useroptions.go);
	// shown as {} when none is set.
	Options map[string]bool `json:"options"`
	// PasswordExpiresAt is shown, never stored: the policy computes it.
	PasswordExpiresAt *time.Time `json:"password_expires_at"`
}

// Role is a Keystone role. A role with a DomainID is domain-specific: its
// name is unique within that domain, it is assigned only within it, and
// tokens carry the global roles it implies, never the role itself.
type Role struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	DomainID    string `json:"domain_id,omitempty"`
	Description string `json:"description,omitempty"`
}

// Assignment grants an actor (a user or a group) a role on a target (a
// project, a domain, or the system). Inherited grants the role instead on
// every project of the domain, or every project below the project (not
// the project itself), Keystone's OS-INHERIT.
type Assignment struct {
	UserID    string `json:"user_id,omitempty"`
	GroupID   string `json:"group_id,omitempty"`
	ProjectID string `json:"project_id,omitempty"`
	DomainID  string `json:"domain_id,omitempty"`
	System    bool   `json:"system,omitempty"`
	Inherited bool   `json:"inherited,omitempty"`
	RoleID    string `json:"role_id"`
}

// Group is a Keystone group: its members receive its role assignments.
type Group struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	DomainID    string `json:"domain_id"`
	Description string `json:"description"`
}
