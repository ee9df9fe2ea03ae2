// Package broker is cloudmux's northbound HTTP side: the /v1 native API
// (peers now; policies, templates and deployments later), the OpenStack
// service APIs, authentication and tenancy, health and metrics. Handlers read
// the pool from the registry's in-memory snapshot, so serving a request never
// waits on Consul for peer lookups.
package broker
