package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
)

// Auth types a remote peer's credentials may use (clouds.yaml's auth_type).
const (
	AuthPassword              = "password"
	AuthApplicationCredential = "v3applicationcredential"
	AuthToken                 = "token"
)

// Credentials authenticate cloudmux to a remote peer. They are stored under
// their own key and never leave the broker: String, GoString and MarshalJSON
// all redact, so a stray log field or API response cannot leak them. The one
// way to serialize the secret form is MarshalCredentialsSecret, used by the
// store and by the CLI's request to the broker.
type Credentials struct {
	AuthType string `json:"auth_type,omitempty"`

	Username       string `json:"username,omitempty"`
	UserID         string `json:"user_id,omitempty"`
	Password       string `json:"password,omitempty"`
	UserDomainName string `json:"user_domain_name,omitempty"`
	UserDomainID   string `json:"user_domain_id,omitempty"`

	ProjectName       string `json:"project_name,omitempty"`
	ProjectID         string `json:"project_id,omitempty"`
	ProjectDomainName string `json:"project_domain_name,omitempty"`
	ProjectDomainID   string `json:"project_domain_id,omitempty"`

	ApplicationCredentialID     string `json:"application_credential_id,omitempty"`
	ApplicationCredentialName   string `json:"application_credential_name,omitempty"`
	ApplicationCredentialSecret string `json:"application_credential_secret,omitempty"`

	Token string `json:"token,omitempty"`
}

// credentialsWire has Credentials' fields without its redacting methods.
type credentialsWire Credentials

const redacted = "[redacted credentials]"

func (Credentials) String() string   { return redacted }
func (Credentials) GoString() string { return redacted }

// MarshalJSON redacts: credentials encode as a marker, never as secrets.
func (Credentials) MarshalJSON() ([]byte, error) { return json.Marshal(redacted) }

// UnmarshalJSON reads the secret form (the API accepts credentials). It
// refuses unknown fields itself (an outer decoder's DisallowUnknownFields
// does not reach a custom unmarshaler), so a misspelt "pasword" is an error
// naming credentials.pasword rather than a silently empty password.
func (c *Credentials) UnmarshalJSON(b []byte) error {
	var w credentialsWire
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typ) && typ.Field != "":
			return &FieldError{Field: "credentials." + typ.Field, Reason: "must be " + typ.Type.String() + ", not " + typ.Value}
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return &FieldError{Field: "credentials." + name, Reason: "unknown field"}
		}
		return &FieldError{Field: "credentials", Reason: err.Error()}
	}
	*c = Credentials(w)
	return nil
}

// MarshalCredentialsSecret encodes the secret form. Callers: the store
// and a client sending credentials to the broker. Nothing else.
func MarshalCredentialsSecret(c Credentials) ([]byte, error) {
	return json.Marshal(credentialsWire(c))
}

// IsZero reports whether no field is set.
func (c Credentials) IsZero() bool { return c == Credentials{} }

// EffectiveAuthType is AuthType, or password when it is empty.
func (c Credentials) EffectiveAuthType() string {
	if c.AuthType == "" {
		return AuthPassword
	}
	return c.AuthType
}

// Validate checks the credentials carry what their auth type needs, naming
// every missing field at once. Field names are prefixed "credentials.".
func (c Credentials) Validate() error {
	var errs []error
	bad := func(field, reason string) {
		errs = append(errs, &FieldError{Field: "credentials." + field, Reason: reason})
	}
	switch c.EffectiveAuthType() {
	case AuthPassword:
		if c.Username == "" && c.UserID == "" {
			bad("username", "password auth needs username or user_id")
		}
		if c.Password == "" {
			bad("password", "password auth needs a password")
		}
		if c.Username != "" && c.UserID == "" && c.UserDomainName == "" && c.UserDomainID == "" {
			bad("user_domain_name", "a username needs user_domain_name or user_domain_id")
		}
		if c.ProjectName != "" && c.ProjectID == "" && c.ProjectDomainName == "" && c.ProjectDomainID == "" {
			bad("project_domain_name", "a project_name needs project_domain_name or project_domain_id")
		}
	case AuthApplicationCredential:
		if c.ApplicationCredentialID == "" && c.ApplicationCredentialName == "" {
			bad("application_credential_id", "application credential auth needs its id (or name with a user)")
		}
		if c.ApplicationCredentialName != "" && c.ApplicationCredentialID == "" && c.Username == "" && c.UserID == "" {
			bad("username", "an application credential name needs username or user_id")
		}
		if c.ApplicationCredentialSecret == "" {
			bad("application_credential_secret", "application credential auth needs its secret")
		}
	case AuthToken:
		if c.Token == "" {
			bad("token", "token auth needs a token")
		}
	default:
		bad("auth_type", "must be one of password, v3applicationcredential, token")
	}
	return errors.Join(errs...)
}
