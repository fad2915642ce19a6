package filestore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/tcpstated/tcpstated/store"
)

// FileLog is a Log kept in one file of a FileStore.
type FileLog struct {
	s    *FileStore
	name string
	seed uint32

	mu      sync.Mutex // serialises appends; guards the fields below
	crc     uint32     // chain value after the last record
	size    int64      // file size = offset of the next frame
	written uint64     // records written
	closed  bool
	buf     []byte

	// The file's pages leave the page cache once written back (see
	// shedLocked): write-back has been started below wbEnd, and the
	// pages below dropped are gone. Both are page-aligned.
	wbEnd, dropped int64
	noShed         bool // the file system refused the hints

	// fdMu is shared while the fd is used (append, sync, read) and
	// exclusive to open or close it. f is nil while the fd is closed as
	// idle (see fdCache); rlockFD reopens it.
	fdMu       sync.RWMutex
	f          *os.File
	fileClosed bool        // also guarded by mu
	recent     atomic.Bool // used since the fdCache hand last passed
	slot       int         // index in fdCache.ring, -1 if not there; guarded by fdCache.mu

	durable atomic.Uint64 // records known to be on stable storage
	failure store.Poison  // set once

	pending *round // the round this log is queued in; guarded by s.gc.mu

	// Append, AppendAsync and AppendBatch: appendBatch, and in
	// store.FsyncAlways mode Append waits for durability.
	store.Appender
}

var _ store.FramedLog = (*FileLog)(nil)

func newFileLog(s *FileStore, name string, f *os.File, seed uint32, size int64, records uint64) *FileLog {
	l := &FileLog{s: s, name: name, seed: seed, f: f, crc: seed, size: size, written: records, slot: -1}
	// What the restore read is clean in the cache: the first shed drops it.
	l.wbEnd = size &^ (pageSize - 1)
	var wait func(uint64) error
	if s.opts.Fsync == store.FsyncAlways {
		wait = l.waitDurable
	}
	l.Appender = store.NewAppender(l.appendBatch, wait)
	l.durable.Store(records)
	return l
}

// Name returns the log's name.
func (l *FileLog) Name() string { return l.name }

// Len is the number of records appended.
func (l *FileLog) Len() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.written
}

// Size is the file size, header included.
func (l *FileLog) Size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.size
}

// poison records the first write or sync failure; every later call returns
// it. After a failed fsync the kernel may have dropped the dirty pages, so
// retrying could report success for data that is gone.
func (l *FileLog) poison(cause error) error { return l.failure.Set(l.s.log, l.name, cause) }

func (l *FileLog) err() error { return l.failure.Err() }

// Buffers for batches: a log keeps one of at most keepBuf bytes for its
// next append (an idle session holds no more); larger batches borrow one
// from bigBufs, which keeps those of at most maxPooledBuf bytes.
const (
	keepBuf      = 64 << 10
	maxPooledBuf = 8 << 20
)

var bigBufs sync.Pool // *[]byte

// appendBatch writes payloads as the next len(payloads) records, framed
// exactly as that many single appends would frame them (same bytes, same
// CRC chain, same indexes), with one write(2) of all the frames, and
// returns the indexes of the first and the last record without waiting
// for durability. Either every record is appended or none: a payload over
// store.MaxRecordSize (store.ErrTooLarge) or a batch that would pass
// MaxLogSize (store.ErrLogFull) writes nothing, and a failed write poisons
// the log (recovery then keeps the complete frames before the tear, which
// the caller was never told about, and drops the rest).
func (l *FileLog) appendBatch(payloads [][]byte) (first, last uint64, err error) {
	var fs int64
	for _, p := range payloads {
		if len(p) > store.MaxRecordSize {
			return 0, 0, store.ErrTooLarge
		}
		fs += frameSize(len(p))
	}
	if err := l.beginAppend(); err != nil {
		return 0, 0, err
	}
	defer l.endAppend()
	if err := l.fitsLocked(fs); err != nil {
		return 0, 0, err
	}
	var buf []byte
	var pooled *[]byte
	if fs <= keepBuf {
		buf = l.buf[:0]
	} else if fs <= maxPooledBuf {
		if p, ok := bigBufs.Get().(*[]byte); ok && int64(cap(*p)) >= fs {
			pooled, buf = p, (*p)[:0]
		} else {
			pooled, buf = new([]byte), make([]byte, 0, fs)
		}
	} else {
		buf = make([]byte, 0, fs)
	}
	crc := l.crc
	for _, p := range payloads {
		buf, crc = appendFrame(buf, crc, p)
	}
	first, last, err = l.writeLocked(buf, len(payloads), crc)
	if pooled != nil {
		*pooled = buf[:0]
		bigBufs.Put(pooled)
	} else if cap(buf) <= keepBuf {
		l.buf = buf
	}
	return first, last, err
}

// AppendFramed is AppendBatch for the n records framed in frames with
// BeginFrame and EndFrame, where they were encoded (store.FramedLog): it
// fills in their CRCs, continuing the log's chain, and writes frames as
// they are, without copying them: the bytes AppendBatch of the payloads
// writes, with the same all or nothing. frames is written to and not
// kept. Frames that are not n whole frames as EndFrame leaves them are
// refused, and nothing is written.
func (l *FileLog) AppendFramed(frames []byte, n int) (first, last uint64, err error) {
	if n == 0 {
		return 0, 0, store.ErrEmptyBatch
	}
	if err := l.beginAppend(); err != nil {
		return 0, 0, err
	}
	defer l.endAppend()
	// One pass checks each frame and chains its CRC; a refusal leaves the
	// log as it was (the CRCs written into frames are the caller's).
	crc, count := l.crc, 0
	for off := 0; off < len(frames); count++ {
		if len(frames)-off < frameHeaderSize {
			return 0, 0, fmt.Errorf("filestore: AppendFramed: %d bytes at %d are not a frame", len(frames)-off, off)
		}
		word := binary.LittleEndian.Uint64(frames[off:])
		size := word & lengthMask
		if size > store.MaxRecordSize {
			return 0, 0, store.ErrTooLarge
		}
		pad := padFor(int(size))
		fs := frameHeaderSize + int(size) + pad // at least 16 bytes
		// The padding is the top pad bytes of the frame's last 8.
		if int(word>>56) != pad || len(frames)-off < fs || pad > 0 && binary.LittleEndian.Uint64(frames[off+fs-8:])>>(64-8*pad) != 0 {
			return 0, 0, fmt.Errorf("filestore: AppendFramed: the frame at %d is not one EndFrame ended", off)
		}
		// The CRC covers the length word and the payload, which the CRC
		// slot separates: the word is copied next to the payload, over its
		// own top half and the slot, for one CRC call instead of two, and
		// put back.
		binary.LittleEndian.PutUint64(frames[off+4:], word)
		crc = crc32.Update(crc, castagnoli, frames[off+4:off+frameHeaderSize+int(size)])
		binary.LittleEndian.PutUint64(frames[off:], word)
		binary.LittleEndian.PutUint32(frames[off+8:], crc)
		off += fs
	}
	if count != n {
		return 0, 0, fmt.Errorf("filestore: AppendFramed: %d frames, said %d", count, n)
	}
	if err := l.fitsLocked(int64(len(frames))); err != nil {
		return 0, 0, err
	}
	return l.writeLocked(frames, n, crc)
}

// beginAppend takes the fd and the lock for an append, unless the log
// cannot take one; endAppend releases them.
func (l *FileLog) beginAppend() error {
	if err := l.rlockFD(); err != nil {
		return err
	}
	l.mu.Lock()
	err := l.err()
	if l.closed {
		err = store.ErrClosed
	}
	if err != nil {
		l.endAppend()
	}
	return err
}

// fitsLocked checks that fs more bytes of frames fit under MaxLogSize.
func (l *FileLog) fitsLocked(fs int64) error {
	if max := l.s.opts.MaxLogSize; max > 0 && l.size+fs > max {
		return fmt.Errorf("%w: %q has %d bytes, limit %d, the append needs %d", store.ErrLogFull, l.name, l.size, max, fs)
	}
	return nil
}

func (l *FileLog) endAppend() {
	l.mu.Unlock()
	l.fdMu.RUnlock()
}

// writeLocked writes the n whole frames in buf, whose chain ends at crc,
// with one write(2).
func (l *FileLog) writeLocked(buf []byte, n int, crc uint32) (first, last uint64, err error) {
	if _, err := l.f.Write(buf); err != nil {
		// Part of the batch may be in the file: the next Open keeps its
		// complete frames and truncates the rest.
		return 0, 0, l.poison(fmt.Errorf("write: %w", err))
	}
	l.crc = crc
	l.size += int64(len(buf))
	first = l.written
	l.written += uint64(n)
	l.s.stats.appends.Add(uint64(n))
	l.s.stats.writes.Add(1)
	if l.s.opts.Fsync == store.FsyncBatch {
		l.s.gc.enqueue(l)
	}
	if l.size-l.wbEnd >= shedWindow && !l.noShed {
		if err := l.shedLocked(); err != nil {
			return 0, 0, err
		}
	}
	return first, l.written - 1, nil
}

// A log is read back only by a restore, a dump or a re-run, so the pages
// it writes need not stay in the page cache, and on a virtual machine
// they are dear: a page the guest has never touched (or has handed back
// to the host) costs a fault in the host on its first write, which made
// write(2) about 3.5 µs per KiB here against 1 µs for a page used before
// (docs/PERFORMANCE.md). Every shedWindow bytes the log starts write-back
// of the window just filled and drops the one before it, whose
// write-back was started a window ago, so each log keeps at most two
// windows in the cache, and freed pages are reused, hot, by the next
// writes.
const (
	shedWindow = 4 << 20
	// The hints' ranges are aligned to 4 KiB; on larger pages the kernel
	// rounds them to its own (fadvise drops only whole pages inside the
	// range), so a page still being appended to is never dropped.
	pageSize = 4096
)

// shedLocked starts write-back of [wbEnd, size) rounded down to whole
// pages and drops [dropped, wbEnd) from the page cache. Neither waits,
// nor consumes a write-back error that a later fdatasync must report
// (sync_file_range is called without SYNC_FILE_RANGE_WAIT_*, and
// fadvise leaves dirty pages where they are). An I/O error poisons the
// log as a failed write does; a file system that refuses either hint is
// no longer given them.
func (l *FileLog) shedLocked() error {
	end := l.size &^ (pageSize - 1)
	if l.wbEnd > l.dropped {
		if err := dropCached(l.f, l.dropped, l.wbEnd-l.dropped); err != nil {
			l.noShed = true
			return nil
		}
		l.dropped = l.wbEnd
	}
	switch err := l.s.writeback(l.f, l.wbEnd, end-l.wbEnd); {
	case err == nil:
		l.wbEnd = end
	case errors.Is(err, syscall.EIO) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT):
		return l.poison(fmt.Errorf("write-back: %w", err))
	default:
		l.noShed = true
	}
	return nil
}

// Durable returns nil once record index and all records before it are on
// stable storage. In store.FsyncAlways mode it waits for the group-commit round
// that covers index (joining the next one if needed); in store.FsyncBatch and
// store.FsyncNever modes it does not wait and only reports a failure of the log.
// Records are made durable in index order: a nil return for index i implies
// every record ≤ i is durable.
func (l *FileLog) Durable(index uint64) error {
	if err := l.err(); err != nil {
		return err
	}
	if l.durable.Load() > index {
		return nil
	}
	if l.s.opts.Fsync != store.FsyncAlways {
		if index >= l.Len() {
			return fmt.Errorf("%w: %d", store.ErrNotAppended, index)
		}
		return nil
	}
	return l.waitDurable(index)
}

// Sync makes every record appended so far durable, in any mode.
func (l *FileLog) Sync() error {
	n := l.Len()
	if err := l.err(); err != nil || n == 0 {
		return err
	}
	return l.waitDurable(n - 1)
}

func (l *FileLog) waitDurable(index uint64) error {
	for {
		if err := l.err(); err != nil {
			return err
		}
		if l.durable.Load() > index {
			return nil
		}
		l.mu.Lock()
		written, closed := l.written, l.fileClosed
		l.mu.Unlock()
		if index >= written {
			return fmt.Errorf("%w: %d", store.ErrNotAppended, index)
		}
		if closed {
			return store.ErrClosed
		}
		r := l.s.gc.join(l)
		if r == nil {
			return store.ErrClosed
		}
		<-r.done
	}
}

// Records reads back the records from index from on that were appended
// before the call, verifying the CRC chain from the file's seed (so every
// earlier frame is read too). payload is only valid during fn.
func (l *FileLog) Records(from uint64, fn func(index uint64, payload []byte) error) error {
	l.mu.Lock()
	size, n, closed := l.size, l.written, l.closed
	l.mu.Unlock()
	if err := l.err(); err != nil {
		return err
	}
	if closed {
		return store.ErrClosed
	}
	if err := l.rlockFD(); err != nil {
		return err
	}
	defer l.fdMu.RUnlock()
	sc, _, err := newScanner(l.f, size)
	if err != nil {
		return err
	}
	for i := uint64(0); i < n; i++ {
		p, err := sc.next()
		if err == io.EOF {
			return fmt.Errorf("%w: log ended after %d of %d records", store.ErrCorrupt, i, n)
		}
		if err != nil {
			return err
		}
		if i < from {
			continue
		}
		if err := fn(i, p); err != nil {
			return err
		}
	}
	return nil
}

// Close makes the log durable (unless store.FsyncNever) and closes its file. It
// returns the poison if the log had failed.
func (l *FileLog) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return store.ErrClosed
	}
	l.closed = true
	n := l.written
	l.mu.Unlock()

	err := l.err()
	if err == nil && l.s.opts.Fsync != store.FsyncNever && n > 0 {
		err = l.waitDurable(n - 1)
	}
	l.fdMu.Lock()
	l.mu.Lock()
	l.fileClosed = true
	l.mu.Unlock()
	var cerr error
	if l.f != nil {
		cerr = l.f.Close()
		l.f = nil
		l.s.fds.remove(l)
	}
	l.fdMu.Unlock()
	l.s.forget(l)
	if err == nil && cerr != nil {
		err = fmt.Errorf("filestore: closing %q: %w", l.name, cerr)
	}
	return err
}
