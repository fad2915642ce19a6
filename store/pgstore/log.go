package pgstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/tcpstated/tcpstated/store"
	"github.com/tcpstated/tcpstated/store/filestore"
)

// Log is one log of a Store, leased to this replica under epoch.
type Log struct {
	s      *Store
	name   string
	header []byte
	seed   uint32
	epoch  int64

	mu      sync.Mutex // serialises appends; guards the fields below
	crc     uint32     // chain value after the last record appended
	size    int64      // header + frames appended
	written uint64     // records appended (queued for commit or committed)
	closed  bool
	last    *round // the round holding the newest queued batch; guarded by s.gc.mu

	committed atomic.Uint64 // records whose transaction committed
	failure   store.Poison

	// Append, AppendAsync and AppendBatch: appendBatch, and with
	// FsyncAlways Append waits for the commit.
	store.Appender
}

var _ store.Log = (*Log)(nil)

func newLog(s *Store, name string, header []byte, seed uint32, epoch, size int64, records uint64, crc uint32) *Log {
	l := &Log{s: s, name: name, header: header, seed: seed, epoch: epoch, crc: crc, size: size, written: records}
	var wait func(uint64) error
	if s.opts.Fsync == store.FsyncAlways {
		wait = l.wait
	}
	l.Appender = store.NewAppender(l.appendBatch, wait)
	l.committed.Store(records)
	return l
}

// Name returns the log's name.
func (l *Log) Name() string { return l.name }

// Epoch is the fencing token this replica holds the log under.
func (l *Log) Epoch() int64 { return l.epoch }

// Len is the number of records appended.
func (l *Log) Len() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.written
}

// Size is the log's size as the file store counts it: header and frames.
func (l *Log) Size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.size
}

// poison records the first failure; every later call returns it. A
// failed commit may or may not have happened (the connection can drop
// after COMMIT was sent), so the log cannot continue from what it
// believes: the service reopens it, which reads what the database holds.
func (l *Log) poison(cause error) error { return l.failure.Set(l.s.log, l.name, cause) }

func (l *Log) err() error { return l.failure.Err() }

// maxUncommitted bounds the records of one log queued for commit and not
// yet committed. Only FsyncBatch and FsyncNever appends get ahead of their
// commits; past the bound they wait, as the file store's write(2) would
// block, so a fast stream cannot grow the queue (and each round's
// statement) without end.
const maxUncommitted = 4096

// throttle waits until the log's uncommitted records are within the bound.
func (l *Log) throttle() {
	for {
		l.mu.Lock()
		ahead := l.written - l.committed.Load()
		l.mu.Unlock()
		if ahead <= maxUncommitted || l.err() != nil {
			return
		}
		r := l.s.gc.roundOf(l)
		if r == nil {
			return
		}
		<-r.done
	}
}

// appendBatch queues records, framed exactly as the file store frames
// them, for one statement of the next group commit. Either all are
// appended or none (ErrTooLarge, ErrLogFull write nothing).
func (l *Log) appendBatch(payloads [][]byte) (first, last uint64, err error) {
	if l.s.opts.Fsync != store.FsyncAlways {
		l.throttle()
	}
	var fs int64
	for _, p := range payloads {
		if len(p) > store.MaxRecordSize {
			return 0, 0, store.ErrTooLarge
		}
		fs += filestore.FrameSize(len(p))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, 0, store.ErrClosed
	}
	if err := l.err(); err != nil {
		return 0, 0, err
	}
	if max := l.s.opts.MaxLogSize; max > 0 && l.size+fs > max {
		return 0, 0, fmt.Errorf("%w: %q has %d bytes, limit %d, the append needs %d", store.ErrLogFull, l.name, l.size, max, fs)
	}
	b := &batch{l: l, first: l.written, frames: make([][]byte, len(payloads)), bytes: fs}
	buf := make([]byte, 0, fs)
	crc := l.crc
	for i, p := range payloads {
		start := len(buf)
		buf, crc = filestore.AppendFrame(buf, crc, p)
		b.frames[i] = buf[start:len(buf):len(buf)]
	}
	b.crc = crc
	if !l.s.gc.enqueue(b) {
		return 0, 0, store.ErrClosed
	}
	l.crc = crc
	l.size += fs
	first = l.written
	l.written += uint64(len(payloads))
	return first, l.written - 1, nil
}

// Durable returns nil once record index and all before it are committed.
// With FsyncAlways it waits for the commit; otherwise it only reports a
// failure, as the file store's does.
func (l *Log) Durable(index uint64) error {
	if err := l.err(); err != nil {
		return err
	}
	if l.committed.Load() > index {
		return nil
	}
	if l.s.opts.Fsync != store.FsyncAlways {
		if index >= l.Len() {
			return fmt.Errorf("%w: %d", store.ErrNotAppended, index)
		}
		return nil
	}
	return l.wait(index)
}

// Sync waits until every record appended so far is committed.
func (l *Log) Sync() error {
	n := l.Len()
	if err := l.err(); err != nil || n == 0 {
		return err
	}
	return l.wait(n - 1)
}

// wait blocks until record index is committed or the log fails.
func (l *Log) wait(index uint64) error {
	for {
		if err := l.err(); err != nil {
			return err
		}
		if l.committed.Load() > index {
			return nil
		}
		l.mu.Lock()
		written := l.written
		l.mu.Unlock()
		if index >= written {
			return fmt.Errorf("%w: %d", store.ErrNotAppended, index)
		}
		r := l.s.gc.roundOf(l)
		if r == nil {
			if l.committed.Load() > index {
				return nil
			}
			if err := l.err(); err != nil {
				return err
			}
			return store.ErrClosed
		}
		<-r.done
	}
}

// Records reads back the records from index from on that were appended
// before the call (waiting for their commit first), verifying each frame's
// CRC against the chain value stored in the frame before it (the seed for
// record 0): the rows before from are not read.
func (l *Log) Records(from uint64, fn func(index uint64, payload []byte) error) error {
	l.mu.Lock()
	n, closed := l.written, l.closed
	l.mu.Unlock()
	if closed {
		return store.ErrClosed
	}
	if n > 0 {
		if err := l.wait(n - 1); err != nil {
			return err
		}
	}
	if from >= n {
		return nil
	}
	ctx, cancel := opCtx()
	defer cancel()
	crc, next, lo := l.seed, from, int64(from)
	if from > 0 {
		lo-- // the frame before holds the chain value to start from
	}
	err := l.s.scan(ctx, l.name, lo, int64(n), func(idx int64, frame []byte) error {
		if from > 0 && idx == int64(from)-1 {
			if len(frame) < 12 {
				return &store.DamageError{Kind: store.ErrCorrupt, Index: uint64(idx), Reason: "frame too short"}
			}
			crc = binary.LittleEndian.Uint32(frame[8:12])
			return nil
		}
		if idx != int64(next) {
			return fmt.Errorf("%w: %q: record %d is missing", store.ErrCorrupt, l.name, next)
		}
		p, c, reason := filestore.CheckFrame(crc, frame)
		if reason != "" {
			return &store.DamageError{Kind: store.ErrCorrupt, Index: next, Reason: reason}
		}
		crc = c
		next++
		return fn(uint64(idx), p)
	})
	if err != nil {
		return err
	}
	if next != n {
		return fmt.Errorf("%w: %q ended after %d of %d records", store.ErrCorrupt, l.name, next, n)
	}
	return nil
}

// Close waits for the log's commits (in every mode: the commit is the
// write). The lease stays with this replica: a session being deleted must
// not be taken over between its Close and its Remove; Store.Close ends the
// replica's heartbeat, which frees all its leases at once.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return store.ErrClosed
	}
	l.closed = true
	n := l.written
	l.mu.Unlock()
	defer l.s.forget(l)
	err := l.err()
	if err == nil && n > 0 {
		err = l.wait(n - 1)
	}
	if errors.Is(err, store.ErrClosed) {
		return fmt.Errorf("pgstore: closing %q: the store closed before its records were committed", l.name)
	}
	return err
}
