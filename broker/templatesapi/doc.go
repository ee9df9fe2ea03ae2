// Package templatesapi serves the broker's native template API under /v1:
// the Focus catalog (/v1/templates, /v1/bindings) and Eve deployments
// (/v1/deployments, with a server-sent event stream of each deployment's
// progress). It translates HTTP to templates/focus and templates/deploy
// and their errors to statuses; the work happens there.
//
// The routes expect an authenticated request (the token in the context,
// as the /v1 group's authentication leaves it). Templates and bindings
// are shared by every project: any token reads them, members write them.
// Deployments belong to the token's project; another project's ID is not
// found.
package templatesapi
