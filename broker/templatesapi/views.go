package templatesapi

import (
	"context"

	"github.com/cloudmux/cloudmux/templates/deploy"
)

// DeploymentView is a deployment as the API shows it: no template source,
// hidden parameter values masked wherever they may have been copied. The
// dashboards (broker/ui) render deployments through View and MaskedEvents,
// so they never show what the API hides.
type DeploymentView = deploymentView

// ResourceView is one instance of a DeploymentView.
type ResourceView = resourceView

// View shows d as GET /v1/deployments/{id} does.
func (a *API) View(ctx context.Context, d *deploy.Deployment) DeploymentView {
	return viewOf(d, a.maskerOf(ctx, d))
}

// MaskedEvents shows d's events as its events API does.
func (a *API) MaskedEvents(ctx context.Context, d *deploy.Deployment, evs []deploy.Event) []deploy.Event {
	return a.maskerOf(ctx, d).events(evs)
}
