//go:build linux && !amd64 && !arm64

package replaylog

// Not wired up on this architecture: rounds use fdatasync only.
const (
	sysSYNCFS  = 0
	haveSyncfs = false
)
