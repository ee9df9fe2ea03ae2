// Package heat serves OpenStack Heat's orchestration API v1 at
// /orchestration/v1/{project_id} (catalog type "orchestration") as a thin
// front end over the deployment engine (templates/deploy): a stack is a
// deployment of its project, made, updated, cancelled and deleted by the
// engine, which alone owns tenancy, placement, quotas and the peers (this
// package never calls one). What it adds is Heat's wire format:
//
//   - stacks: create (template as a document or a string, files for
//     get_file, environment parameters and parameter_defaults,
//     parameters, timeout_mins, disable_rollback), preview, list (name,
//     status and id filters, sorting, paging), lookup by name or id (302
//     to /stacks/NAME/ID, also for a sub-path such as /stacks/NAME/resources),
//     show, update (PUT, and PATCH for --existing), delete, the
//     cancel_update action, template, environment, outputs;
//   - resources: list (nested_depth shows ResourceGroup members),
//     show, metadata (the template's), mark unhealthy (the next update
//     replaces it); events of the stack and of one resource;
//   - template validate, and resource types: list, show and a template
//     for each HOT type the engine deploys (templates.HOTTypeNames).
//
// Status names and transitions are Heat's, read from the deployment:
// CREATE_* for its first attempt, UPDATE_* for later ones, ROLLBACK_* while
// and after a failed attempt is undone, DELETE_*. Errors are Heat's body
// ({"explanation","code","error":{"message","type","traceback"},"title"})
// with the engine's own words; hidden parameter values are masked in every
// body, as in /v1/deployments.
//
// Not served (404 or a 400 naming the field): template_url and
// files_container (the broker fetches nothing), adopt/abandon, snapshots,
// nested stacks from files, resource_registry entries, stack tags,
// suspend/resume/check, software configs and deployments.
package heat
