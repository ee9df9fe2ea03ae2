// Command cloudmux is the one binary: `serve` runs a broker (`-dev` for an
// all-embedded one), `peer` manages the resource pool through the broker's
// /v1 API, `version` prints the build.
package main
