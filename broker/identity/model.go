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
}

// Role is a Keystone role.
type Role struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Assignment grants a user a role on a project.
type Assignment struct {
	UserID    string `json:"user_id"`
	ProjectID string `json:"project_id"`
	RoleID    string `json:"role_id"`
}
