// Package e2e holds the end-to-end tests: they build the real tcpstated
// binary once (TestMain), start it on free loopback ports with a temporary
// data directory, and drive it over REST and gRPC as a user would: the
// README walkthroughs (run from README.md itself), restarts, SIGKILL under
// concurrent writers, a table of bad requests, the standard surfaces
// (/openapi.json, /healthz, /metrics, grpc.health.v1, reflection), and a
// short smoke run of the load generator.
//
// Run them with `go test ./e2e/` (with -race, the server binary is built
// with -race too, and a data race in it fails the test that stopped it).
package e2e
