// Package store is what the service needs from a place that keeps replay
// logs: one append-only log of opaque records per session (the service
// puts protobuf-encoded inputs and outputs in them), made durable before a
// call replies, read back from any record number, and recovered after a
// crash. It knows nothing about what the records mean.
//
// Implementations: store/filestore (one file per log, the embedded
// default) and store/memstore (in memory, for tests). store/storetest is
// the conformance suite every implementation's tests run, so a new one
// (PostgreSQL) is held to the same contract.
//
// A store keeps each record's payload exactly: the bytes Append was given
// are the bytes Records hands back, in the same order and with the same
// indexes, whatever the store. How it frames and checksums them is its own
// business.
package store

import (
	"errors"
	"fmt"
	"io/fs"
)

// Store holds the logs of many sessions. Its methods are safe for
// concurrent use.
type Store interface {
	// Create makes a new, empty, durable log. It fails with ErrExists if one
	// with that name exists (or ErrBusy if it is open).
	Create(name string) (Log, error)
	// Open opens an existing log, recovers it (a torn or corrupt tail is
	// cut off and reported) and positions it for appending. ErrNotFound if
	// there is none; ErrBusy if it is open already. A *DamageError in the
	// error means the log is unreadable from its start and was not changed.
	Open(name string) (Log, RecoveryReport, error)
	// List returns the names of all logs, sorted.
	List() ([]string, error)
	// Remove deletes a log that is not open, durably. ErrNotFound if there
	// is none.
	Remove(name string) error
	// Close closes every open log (making it durable unless FsyncNever) and
	// the store. Later calls return ErrClosed.
	Close() error
}

// Log is one session's append-only log. Its methods are safe for
// concurrent use. Indexes count records from 0.
type Log interface {
	// Name returns the log's name.
	Name() string
	// Append writes one record and, in FsyncAlways mode, returns only once
	// it is durable.
	Append(payload []byte) (index uint64, err error)
	// AppendBatch writes several records at once and returns the first and
	// last index without waiting for durability: Durable(last) covers them
	// all. Either every record is appended or none: a payload over
	// MaxRecordSize (ErrTooLarge) or a batch past the log's size limit
	// (ErrLogFull) writes nothing. An empty batch is ErrEmptyBatch.
	AppendBatch(payloads [][]byte) (first, last uint64, err error)
	// Durable waits until record index and every record before it are
	// durable (FsyncAlways mode); in the other modes it only reports a
	// failure of the log. nil means those records are durable.
	// ErrNotAppended if index was never appended.
	Durable(index uint64) error
	// Sync makes every record appended so far durable, whatever the mode.
	Sync() error
	// Records calls fn for each record from index from on that was appended
	// before the call, in order. payload is only valid during the call. An
	// error from fn stops the iteration and is returned. fn may append but
	// must not Close the log.
	Records(from uint64, fn func(index uint64, payload []byte) error) error
	// Len is the number of records appended.
	Len() uint64
	// Size is the bytes the log takes in the store, which is what the
	// store's size limit (ErrLogFull) counts.
	Size() int64
	// Close makes the log durable (unless FsyncNever) and closes it. It
	// returns the failure if the log had failed (ErrPoisoned).
	Close() error
}

// FramedLog is a Log that writes records framed where they were encoded,
// without copying them into frames: the caller encodes each record's
// payload between BeginFrame and EndFrame, end to end in one buffer, and
// AppendFramed writes the buffer with AppendBatch's bytes and its all or
// nothing. The frame layout is the log's own; a caller that does not ask
// for it uses AppendBatch.
type FramedLog interface {
	Log
	// BeginFrame appends the start of a frame to dst; the payload is
	// appended after it, from offset payload.
	BeginFrame(dst []byte) (_ []byte, payload int)
	// EndFrame ends the frame whose payload, the rest of dst, starts at
	// payload (BeginFrame's).
	EndFrame(dst []byte, payload int) []byte
	// AppendFramed is AppendBatch for the n records framed in frames. It
	// writes into frames (their checksums) and does not keep it. Bytes
	// that are not n whole frames are refused and nothing is written.
	AppendFramed(frames []byte, n int) (first, last uint64, err error)
}

// MaxRecordSize bounds a record's payload in every store.
const MaxRecordSize = 16 << 20

// Errors returned by stores and their logs. Implementations wrap them
// (with the log's name) so callers test with errors.Is.
var (
	ErrInvalidName = errors.New("store: invalid log name (want [a-z0-9-]{1,63})")
	ErrExists      = fmt.Errorf("store: log already exists: %w", fs.ErrExist)
	ErrNotFound    = fmt.Errorf("store: no such log: %w", fs.ErrNotExist)
	ErrBusy        = errors.New("store: log is open")
	ErrClosed      = errors.New("store: closed")
	ErrTooLarge    = fmt.Errorf("store: record larger than %d bytes", MaxRecordSize)
	ErrLogFull     = errors.New("store: log size limit reached")
	ErrNotAppended = errors.New("store: index not appended")
	ErrEmptyBatch  = errors.New("store: empty batch")
	// ErrPoisoned is wrapped by the error every call returns after a write
	// or sync failure on a log; the cause is wrapped too. A failed sync is
	// never retried (the lost data could be reported durable): the caller
	// reopens the log instead.
	ErrPoisoned = errors.New("store: log failed")
)

// ValidName reports whether name can name a log: 1 to 63 characters from
// [a-z0-9-].
func ValidName(name string) bool {
	if len(name) == 0 || len(name) > 63 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
