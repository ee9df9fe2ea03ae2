package identity

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/cloudmux/cloudmux/registry"
)

// Keystone's user resource options this broker implements (what
// `openstack user set --ignore-lockout-failure-attempts` and its kin
// send). Others (ignore_change_password_upon_first_use,
// ignore_user_inactivity, multi-factor rules) name rules the broker does
// not have, and are refused rather than accepted and dropped.
const (
	// OptIgnoreLockout exempts a user from the lockout policy: failed
	// logins are not counted and a lockout does not apply (the bootstrap
	// admin's, so that guessing at its password cannot lock it out).
	OptIgnoreLockout = "ignore_lockout_failure_attempts"
	// OptIgnorePasswordExpiry exempts a user's password from expiry.
	OptIgnorePasswordExpiry = "ignore_password_expiry"
	// OptLockPassword forbids the user's own password change (an admin's
	// reset still works), for shared service accounts.
	OptLockPassword = "lock_password"
)

var userOptions = []string{OptIgnoreLockout, OptIgnorePasswordExpiry, OptLockPassword}

// option reports whether a user has a boolean option set.
func (u User) option(name string) bool { return u.Options[name] }

// ApplyUserOptions merges a request's options into a user's, as Keystone
// does: a value sets an option, null removes it; an option the broker
// does not implement is the field's error.
func ApplyUserOptions(u *User, req map[string]*bool) error {
	var unknown []string
	for name := range req {
		if !slices.Contains(userOptions, name) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return &registry.FieldError{Field: "user.options", Reason: fmt.Sprintf("unsupported option %s; supported: %s",
			strings.Join(unknown, ", "), strings.Join(userOptions, ", "))}
	}
	for name, v := range req {
		switch {
		case v == nil:
			delete(u.Options, name)
		default:
			if u.Options == nil {
				u.Options = map[string]bool{}
			}
			u.Options[name] = *v
		}
	}
	return nil
}
