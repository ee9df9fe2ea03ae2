package identity

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/go-chi/chi/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/cloudmux/cloudmux/registry"
)

// PasswordPolicy is Keystone's [security_compliance] password settings.
// The zero value is Keystone's default: no rule beyond bcrypt's 72 bytes,
// no history, no lockout, no expiry.
type PasswordPolicy struct {
	// MinLength is the fewest bytes a password may have (Keystone says it
	// with a regex; this is the common case spelled out).
	MinLength int
	// Regex, when set, must match a new password; RegexDescription says
	// what it asks for in the refusal.
	Regex            string
	RegexDescription string
	// UniqueLastPasswords: a new password may not be any of the user's
	// last this many (the current one included); 0 or 1 only forbids the
	// current one when it is changed by the user.
	UniqueLastPasswords int
	// LockoutFailures failed logins in a row lock the user out for
	// LockoutDuration (Keystone's default duration: 30 minutes); 0 never.
	LockoutFailures int
	LockoutDuration time.Duration
	// ExpiresDays: a password older than this is refused at login until
	// the user changes it; 0 never expires.
	ExpiresDays int
}

// DefaultLockoutDuration is Keystone's lockout_duration.
const DefaultLockoutDuration = 30 * time.Minute

// SetPasswordPolicy installs a policy; a bad regex is an error.
func (d *Directory) SetPasswordPolicy(p PasswordPolicy) error {
	var re *regexp.Regexp
	if p.Regex != "" {
		var err error
		if re, err = regexp.Compile(p.Regex); err != nil {
			return fmt.Errorf("password regex: %w", err)
		}
	}
	if p.LockoutFailures > 0 && p.LockoutDuration <= 0 {
		p.LockoutDuration = DefaultLockoutDuration
	}
	if p.MinLength < 0 || p.UniqueLastPasswords < 0 || p.LockoutFailures < 0 || p.ExpiresDays < 0 {
		return errors.New("password policy: counts may not be negative")
	}
	d.policy, d.policyRegex = p, re
	return nil
}

// checkPolicy applies the rules every password meets and the configured
// ones.
func (d *Directory) checkPolicy(password string) error {
	if err := checkPassword(password); err != nil {
		return err
	}
	if len(password) < d.policy.MinLength {
		return &registry.FieldError{Field: "user.password", Reason: fmt.Sprintf("must be at least %d bytes", d.policy.MinLength)}
	}
	if d.policyRegex != nil && !d.policyRegex.MatchString(password) {
		why := d.policy.RegexDescription
		if why == "" {
			why = "does not meet the password requirements"
		}
		return &registry.FieldError{Field: "user.password", Reason: why}
	}
	return nil
}

// passwordExpiresAt is when the user's password expires, nil for never.
func (d *Directory) passwordExpiresAt(u User) *time.Time {
	if d.policy.ExpiresDays <= 0 || u.PasswordChangedAt.IsZero() || u.option(OptIgnorePasswordExpiry) {
		return nil
	}
	at := u.PasswordChangedAt.Add(time.Duration(d.policy.ExpiresDays) * 24 * time.Hour)
	return &at
}

// newPasswordHash checks a new password against the policy and the user's
// history, and returns the user with it set (history moved along).
func (d *Directory) newPasswordHash(u User, password string) (User, error) {
	if err := d.checkPolicy(password); err != nil {
		return User{}, err
	}
	keep := max(d.policy.UniqueLastPasswords, 1)
	used := append([]string{u.PasswordHash}, u.PasswordHistory...)
	if len(used) > keep {
		used = used[:keep]
	}
	if d.policy.UniqueLastPasswords > 0 {
		for _, h := range used {
			if h != "" && bcrypt.CompareHashAndPassword([]byte(h), []byte(password)) == nil {
				return User{}, &registry.FieldError{Field: "user.password",
					Reason: fmt.Sprintf("may not be any of the last %d passwords", d.policy.UniqueLastPasswords)}
			}
		}
	}
	hash, err := d.hash([]byte(password))
	if err != nil {
		return User{}, err
	}
	u.PasswordHistory = nil
	if d.policy.UniqueLastPasswords > 1 && u.PasswordHash != "" {
		u.PasswordHistory = used[:min(len(used), d.policy.UniqueLastPasswords-1)]
	}
	u.PasswordHash, u.PasswordChangedAt, u.FailedLogins, u.LockedUntil = string(hash), d.now(), 0, time.Time{}
	return u, nil
}

// SetPassword replaces a user's password (an admin's reset).
func (d *Directory) SetPassword(ctx context.Context, id, password string) error {
	if err := d.checkPolicy(password); err != nil {
		return err
	}
	var perr error
	_, err := d.updateUserRecord(ctx, id, func(u *User) {
		var next User
		if next, perr = d.newPasswordHash(*u, password); perr == nil {
			*u = next
		}
	})
	return errors.Join(perr, err)
}

// ChangePassword is a user's own change: the original password must be
// right (an expired one still is: changing it is the way out), and the
// new one meets the policy and history.
// A user with lock_password set may not.
func (d *Directory) ChangePassword(ctx context.Context, id, original, password string) error {
	u, err := d.checkPassword(ctx, User{ID: id}, original, true)
	if err != nil {
		return err
	}
	if u.option(OptLockPassword) {
		return fmt.Errorf("%w: the password of user %s is locked; an administrator may reset it", ErrForbidden, u.Name)
	}
	return d.SetPassword(ctx, id, password)
}

// updateUserRecord applies change to a user's stored record (hash and
// counters included) by CAS, without touching its name.
func (d *Directory) updateUserRecord(ctx context.Context, id string, change func(*User)) (User, error) {
	return updateJSON(ctx, d, usersPrefix, "user", id, change, func(cur, next *User) error {
		next.ID, next.Name, next.DomainID = cur.ID, cur.Name, cur.DomainID
		return nil
	})
}

// errBadLogin is every failed password check, alike, so a caller learns
// nothing about which users exist or are locked.
var errBadLogin = fmt.Errorf("%w: the user or password is wrong, or the user is disabled", ErrUnauthorized)

// CheckPassword returns the user when password is right, the user and its
// domain are enabled, the user is not locked out and the password has not
// expired. Failures count toward the lockout.
func (d *Directory) CheckPassword(ctx context.Context, u User, password string) (User, error) {
	return d.checkPassword(ctx, u, password, false)
}

func (d *Directory) checkPassword(ctx context.Context, u User, password string, expiredOK bool) (User, error) {
	full, err := getJSON[User](ctx, d.store, usersPrefix+u.ID, "user", u.ID)
	hash := []byte(full.PasswordHash)
	if err != nil || len(hash) == 0 {
		hash = d.dummyHash()
	}
	now := d.now()
	ignoreLockout := full.option(OptIgnoreLockout)
	locked := now.Before(full.LockedUntil) && !ignoreLockout
	if locked {
		hash = d.dummyHash() // as slow as a real check; the answer is no
	}
	wrong := bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil
	if err == nil && !d.domainEnabled(ctx, full.DomainID) {
		full.Enabled = false // a disabled domain's users do not log in
	}
	switch {
	case err != nil || locked || !full.Enabled:
		return User{}, errBadLogin
	case wrong:
		if !ignoreLockout {
			d.countFailure(ctx, full.ID, now)
		}
		return User{}, errBadLogin
	}
	if full.FailedLogins > 0 {
		if _, err := d.updateUserRecord(ctx, full.ID, func(x *User) { x.FailedLogins = 0 }); err != nil {
			return User{}, err
		}
	}
	if exp := d.passwordExpiresAt(full); !expiredOK && exp != nil && !now.Before(*exp) {
		return User{}, fmt.Errorf("%w: the password is expired and needs to be changed for user %s", ErrUnauthorized, full.ID)
	}
	return d.public(full), nil
}

// countFailure counts a failed login and locks the user out when the
// policy's count is reached. A lost race with another replica's count
// loses one count, never a lockout already set.
func (d *Directory) countFailure(ctx context.Context, id string, now time.Time) {
	if d.policy.LockoutFailures <= 0 {
		return
	}
	_, _ = d.updateUserRecord(context.WithoutCancel(ctx), id, func(x *User) {
		x.FailedLogins++
		if x.FailedLogins >= d.policy.LockoutFailures {
			x.FailedLogins, x.LockedUntil = 0, now.Add(d.policy.LockoutDuration)
		}
	})
}

// public is a user as the API shows it: no hashes or counters, and when
// the password expires.
func (d *Directory) public(u User) User {
	u.PasswordExpiresAt = d.passwordExpiresAt(u)
	if u.Options == nil {
		u.Options = map[string]bool{}
	}
	u.PasswordHash, u.PasswordHistory, u.FailedLogins, u.LockedUntil, u.PasswordChangedAt = "", nil, 0, time.Time{}, time.Time{}
	return u
}

// changePassword answers POST /v3/users/{user}/password: a user's own
// change, authorized by the original password (no token needed, as
// Keystone's); the user's tokens are voided after it.
func (k *Keystone) changePassword(w http.ResponseWriter, r *http.Request) {
	var req struct {
		User struct {
			Password         string `json:"password"`
			OriginalPassword string `json:"original_password"`
		} `json:"user"`
	}
	if err := decode(r, &req); err != nil {
		k.fail(w, r, err)
		return
	}
	id := chi.URLParam(r, "user")
	if req.User.OriginalPassword == "" {
		k.fail(w, r, &registry.FieldError{Field: "user.original_password", Reason: "is required"})
		return
	}
	if err := k.Dir.ChangePassword(r.Context(), id, req.User.OriginalPassword, req.User.Password); err != nil {
		k.fail(w, r, err)
		return
	}
	if err := k.Tokens.RevokeUser(r.Context(), id); err != nil {
		k.fail(w, r, err)
		return
	}
	k.Log.WithField("user", id).Info("password changed by the user")
	w.WriteHeader(http.StatusNoContent)
}
