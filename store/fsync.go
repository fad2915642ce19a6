package store

import "fmt"

// FsyncMode chooses when appended records reach stable storage (the
// --fsync flag). Every store honours it in its own way.
type FsyncMode int

const (
	// FsyncAlways (the default): Append returns after the record is
	// durable; concurrent appenders share syncs (group commit).
	FsyncAlways FsyncMode = iota
	// FsyncBatch: Append returns after the write; the store makes dirty
	// logs durable periodically. A crash can lose that much.
	FsyncBatch
	// FsyncNever: durable only on an explicit Sync (and Close). A crash of
	// the machine (not of the process) can lose anything not yet written
	// back.
	FsyncNever
)

func (m FsyncMode) String() string {
	switch m {
	case FsyncAlways:
		return "always"
	case FsyncBatch:
		return "batch"
	case FsyncNever:
		return "never"
	}
	return fmt.Sprintf("FsyncMode(%d)", int(m))
}

// ParseFsyncMode parses "always", "batch" or "never".
func ParseFsyncMode(s string) (FsyncMode, error) {
	switch s {
	case "always":
		return FsyncAlways, nil
	case "batch":
		return FsyncBatch, nil
	case "never":
		return FsyncNever, nil
	}
	return 0, fmt.Errorf("store: unknown fsync mode %q (want always, batch or never)", s)
}
