package deploy

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// errTimedOut ends an attempt that outlived its spec's TimeoutMinutes.
var errTimedOut = errors.New("timed out")

// deadline is when an attempt at spec asked for now must be done; zero
// without a timeout.
func (e *Engine) deadline(spec Spec) time.Time {
	if spec.TimeoutMinutes <= 0 {
		return time.Time{}
	}
	return e.now().Add(time.Duration(spec.TimeoutMinutes) * time.Minute)
}

// withDeadline bounds ctx by the attempt's deadline (none when zero).
func withDeadline(ctx context.Context, at time.Time) (context.Context, context.CancelFunc) {
	if at.IsZero() {
		return context.WithCancel(ctx)
	}
	return context.WithDeadlineCause(ctx, at, errTimedOut)
}

// timedOut says the attempt's context ended by its deadline while the
// run's own (outer) context is still live: the attempt failed, the run
// goes on to fail it.
func timedOut(outer, attempt context.Context) bool {
	return outer.Err() == nil && errors.Is(context.Cause(attempt), errTimedOut)
}

// Cancel stops an update in progress and rolls it back, as Heat's
// cancel_update: what the attempt created is removed and what it
// replaced restored; the deployment ends FAILED ("rolled back: update
// cancelled"). Only an update (not a deployment's first apply) in
// progress is cancelled. The run notices at its next step.
func (e *Engine) Cancel(ctx context.Context, id string) (*Deployment, error) {
	return e.transition(ctx, id, func(d *Deployment) error {
		if d.Goal != "apply" || (d.Status != StatusPending && d.Status != StatusApplying) || d.Attempt < 2 {
			return fmt.Errorf("%w: only an update in progress is cancelled; %s is %s", ErrState, id, d.Status)
		}
		d.Goal, d.Status, d.Error = "rollback", StatusRollingBack, "update cancelled"
		return nil
	})
}

// ErrNoResource: the deployment has no resource of that name.
var ErrNoResource = errors.New("deploy: no such resource in the deployment")

// MarkUnhealthy marks every instance of the template resource name
// unhealthy (with why) or clears the mark: the next apply (an update)
// replaces the marked instances. A deployment being worked on is not
// changed (ErrState).
func (e *Engine) MarkUnhealthy(ctx context.Context, id, name string, unhealthy bool, reason string) (*Deployment, error) {
	if unhealthy && reason == "" {
		reason = "marked unhealthy"
	}
	return e.transition(ctx, id, func(d *Deployment) error {
		if d.Status.InProgress() || d.Status == StatusDeleted {
			return fmt.Errorf("%w: %s is %s", ErrState, id, d.Status)
		}
		found := false
		for _, res := range d.Resources {
			if res.Resource != name {
				continue
			}
			found = true
			res.Unhealthy = ""
			if unhealthy {
				res.Unhealthy = reason
			}
		}
		if !found {
			return fmt.Errorf("%w: %s", ErrNoResource, name)
		}
		return nil
	})
}
