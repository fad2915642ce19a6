//go:build race

package testserver

// Race is true when this program has the race detector, so a server built
// with it reuses the compiled packages.
const Race = true
