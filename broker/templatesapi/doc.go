// Package templatesapi serves the broker's native template API under /v1:
// the Focus catalog (/v1/templates, /v1/bindings) and Eve deployments
// (/v1/deployments, with a server-sent event stream of each deployment's
// progress). It translates HTTP to templates/focus and templates/deploy
// and their errors to statuses; the work happens there.
//
// The routes expect an authenticated, project-scoped request (the token in
// the context, as the /v1 group's authentication leaves it). Templates,
// bindings and deployments belong to the token's project: readers read
// them, members write them, and another project's are not found by any
// reference, nor usable from a template, binding or deployment. Cloud
// admins publish template versions (POST
// /v1/templates/NAME/versions/V/publish), which every project then reads
// and uses but cannot change. Hidden parameter values are masked (Mask)
// in every body, errors included; the engine gets them unmasked.
package templatesapi
