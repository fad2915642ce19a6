//go:build !race

package testserver

// Race is true when this program has the race detector.
const Race = false
