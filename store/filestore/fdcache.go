package filestore

import (
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/tcpstated/tcpstated/store"
)

// DefaultMaxOpenLogs is the number of log files a store keeps open when
// Options.MaxOpenLogs is 0.
const DefaultMaxOpenLogs = 1024

// fdCache bounds the log files a store holds open, so the number of
// sessions is not limited by the open-file limit. A log whose fd was
// closed keeps its CRC chain value, size and record count in memory and
// reopens its file (O_APPEND, checked to end where the log does) on its
// next use; nothing is rescanned.
//
// The victim is chosen by CLOCK, an approximation of least recently used
// that costs the hot path one atomic flag instead of a shared list: every
// use sets the log's recent flag, and the hand sweeping the open logs
// clears the flag of a recently used log and passes it, closing the first
// one found unflagged. A log in use at that moment (its fdMu held by an
// append, a sync or a read) is never closed; when every open log is in
// use, reserve waits up to about busyTries·busyWait for one to become
// idle and then lets the count pass the limit (it never blocks for good,
// so a reader's callback that appends to another log cannot deadlock);
// the next reopens bring it back under.
//
// Lock order: FileLog.fdMu, then fdCache.mu (the victim's fdMu is only
// ever tried, never waited for), then the victim's FileLog.mu.
type fdCache struct {
	limit int // ≤ 0: no limit (the ring is not kept)

	mu   sync.Mutex
	n    int        // fds counted: logs in ring plus reserved slots
	ring []*FileLog // logs whose fd is open
	hand int
}

// reserve counts one more fd, first closing idle logs' fds while the
// store is at its limit. The caller opens the file and then calls insert,
// or release if it could not.
func (c *fdCache) reserve() {
	if c.limit <= 0 {
		return
	}
	c.mu.Lock()
	for tries := 0; c.n >= c.limit; {
		v := c.victimLocked()
		if v == nil {
			// Every open log is in use (appends, an fdatasync round):
			// wait a little for one to become idle, then go over.
			if tries++; tries > busyTries {
				break
			}
			c.mu.Unlock()
			time.Sleep(busyWait)
			c.mu.Lock()
			continue
		}
		v.evict()
		v.fdMu.Unlock()
	}
	c.n++
	c.mu.Unlock()
}

// How long reserve waits for an open log to become idle before it lets
// the count pass the limit: a write or an fdatasync is over long before.
const (
	busyTries = 100
	busyWait  = 100 * time.Microsecond
)

func (c *fdCache) release() {
	if c.limit <= 0 {
		return
	}
	c.mu.Lock()
	c.n--
	c.mu.Unlock()
}

// insert registers l, whose fd was opened under a reserved slot.
func (c *fdCache) insert(l *FileLog) {
	l.recent.Store(true)
	if c.limit <= 0 {
		return
	}
	c.mu.Lock()
	l.slot = len(c.ring)
	c.ring = append(c.ring, l)
	c.mu.Unlock()
}

// remove forgets l after its fd was closed other than by eviction.
func (c *fdCache) remove(l *FileLog) {
	if c.limit <= 0 {
		return
	}
	c.mu.Lock()
	if l.slot >= 0 {
		c.removeLocked(l)
		c.n--
	}
	c.mu.Unlock()
}

func (c *fdCache) removeLocked(l *FileLog) {
	last := len(c.ring) - 1
	m := c.ring[last]
	c.ring[l.slot] = m
	m.slot = l.slot
	c.ring[last] = nil
	c.ring = c.ring[:last]
	l.slot = -1
}

// victimLocked takes the next log the hand finds idle out of the ring,
// with its fdMu held exclusively; nil if two sweeps found none.
func (c *fdCache) victimLocked() *FileLog {
	for range 2 * len(c.ring) {
		if c.hand >= len(c.ring) {
			c.hand = 0
		}
		l := c.ring[c.hand]
		if l.recent.Load() {
			l.recent.Store(false)
			c.hand++
			continue
		}
		if !l.fdMu.TryLock() {
			c.hand++
			continue
		}
		c.removeLocked(l) // the hand now points at the log moved into the slot
		c.n--
		return l
	}
	return nil
}

// touch marks l recently used.
func (l *FileLog) touch() {
	if !l.recent.Load() {
		l.recent.Store(true)
	}
}

// evict closes l's fd; l.fdMu is held exclusively. Records written but not
// yet durable are synced first, so closing never drops what a pending
// group-commit round (or a later Sync) would have to make durable, and
// a write-back error is not lost with the fd; a failure poisons the log.
func (l *FileLog) evict() {
	l.mu.Lock()
	n := l.written
	l.mu.Unlock()
	if l.err() == nil && l.durable.Load() < n {
		l.s.stats.fdatasyncs.Add(1)
		if err := l.s.fdatasync(l.f); err != nil {
			l.poison(fmt.Errorf("fdatasync before closing an idle log: %w", err))
		} else {
			l.advance(n)
		}
	}
	if err := l.f.Close(); err != nil {
		l.poison(fmt.Errorf("closing an idle log: %w", err))
	}
	l.f = nil
	l.s.stats.evictions.Add(1)
}

// rlockFD returns with l.fdMu read-locked and l.f open, reopening the
// file if its fd was closed as idle.
func (l *FileLog) rlockFD() error {
	for {
		l.fdMu.RLock()
		if l.fileClosed {
			l.fdMu.RUnlock()
			return store.ErrClosed
		}
		if l.f != nil {
			l.touch()
			return nil
		}
		l.fdMu.RUnlock()
		l.fdMu.Lock()
		err := l.reopen()
		l.fdMu.Unlock()
		if err != nil {
			return err
		}
	}
}

// reopen opens l's file again, appending at its end; l.fdMu is held
// exclusively. A failure poisons the log.
func (l *FileLog) reopen() error {
	if l.fileClosed {
		return store.ErrClosed
	}
	if l.f != nil {
		return nil
	}
	if err := l.err(); err != nil {
		return err
	}
	l.mu.Lock()
	size := l.size
	l.mu.Unlock()
	s := l.s
	s.fds.reserve()
	f, err := os.OpenFile(s.path(l.name), os.O_RDWR|os.O_APPEND, 0)
	if err == nil {
		var fi os.FileInfo
		if fi, err = f.Stat(); err == nil && fi.Size() != size {
			err = fmt.Errorf("the file has %d bytes, the log %d", fi.Size(), size)
		}
		if err != nil {
			f.Close()
		}
	}
	if err != nil {
		s.fds.release()
		return l.poison(fmt.Errorf("reopen: %w", err))
	}
	l.f = f
	s.fds.insert(l)
	s.stats.reopens.Add(1)
	return nil
}

func (c *fdCache) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}
