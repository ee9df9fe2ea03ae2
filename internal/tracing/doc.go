// Package tracing sets up OpenTelemetry tracing for a broker: off by
// default (the global no-op provider, which costs a few nanoseconds per
// span), or exporting over OTLP/HTTP to a collector when configured.
//
// Spans are made where the work is: one per API request (broker), per
// placement decision (policy), per call to an OpenStack peer
// (peers/openstack) and per Consul store call (registry/consul). Each
// package asks the global provider through Tracer, so tests swap in an
// in-memory exporter with SetProvider.
package tracing
