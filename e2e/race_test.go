//go:build race

package e2e

// raceEnabled: the test binary, and so the server it builds, has the race
// detector.
const raceEnabled = true
