package replaylog

// The syscall package has no SYS_SYNCFS.
const (
	sysSYNCFS  = 306
	haveSyncfs = true
)
