package store

import (
	"errors"
	"fmt"
)

// Kinds of damage, wrapped by *DamageError. Test with errors.Is.
var (
	// ErrTornTail: the log ends inside a record, as an interrupted write
	// leaves it. Expected after a crash; it costs only records that were
	// never acknowledged as durable (in FsyncAlways mode).
	ErrTornTail = errors.New("store: torn tail")
	// ErrCorrupt: a complete record fails its checksum or cannot be
	// framed. Something other than an interrupted append changed the log.
	// A store's own kinds (a bad file header) wrap it.
	ErrCorrupt = errors.New("store: corrupt log")
)

// DamageError describes where and why a log stops being readable.
type DamageError struct {
	Kind   error  // ErrTornTail, ErrCorrupt or a store's kind that wraps one of them
	Offset int64  // where in the log the damage starts (a file offset for the file store)
	Index  uint64 // the index the damaged record would have had (= good records before it)
	Reason string
}

func (e *DamageError) Error() string {
	return fmt.Sprintf("%v at offset %d (record %d): %s", e.Kind, e.Offset, e.Index, e.Reason)
}

// Unwrap lets errors.Is match the kind.
func (e *DamageError) Unwrap() error { return e.Kind }

// RecoveryReport says what Store.Open found.
type RecoveryReport struct {
	Records      int          // good records kept
	Truncated    bool         // the log was cut back to the last good record
	TruncatedAt  int64        // new size (Log.Size), when Truncated
	DroppedBytes int64        // bytes removed, when Truncated
	Reason       string       // what was wrong, when Truncated
	Damage       *DamageError // the damage found, when Truncated
}
