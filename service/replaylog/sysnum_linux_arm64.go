package replaylog

// The syscall package has no SYS_SYNCFS.
const (
	sysSYNCFS  = 267
	haveSyncfs = true
)
