package filestore

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tcpstated/tcpstated/store"
)

// Group commit. One syncer goroutine per store runs rounds. A round is the
// set of logs whose writers are waiting (or, in store.FsyncBatch mode, that are
// dirty). A writer first writes its frame, then joins the round that has
// not started yet and waits for it to finish. When the syncer takes a round
// it swaps in a fresh one for late joiners, notes each log's written record
// count (every joiner's write precedes this), makes the logs durable with
// one fdatasync each or, from SyncfsThreshold logs on, one syncfs of the
// data directory, advances each log's durable count, and closes the round's
// channel, waking all of its waiters at once. While it syncs, the next
// round fills up; so under load every round's cost is shared by every
// append that arrived during the previous one, across all sessions.

// round is one group commit.
type round struct {
	logs []*FileLog
	done chan struct{} // closed when the round is over
}

func newRound() *round { return &round{done: make(chan struct{})} }

type committer struct {
	s    *FileStore
	kick chan struct{} // capacity 1: "a round is waiting"
	quit chan struct{}
	exit chan struct{}

	mu     sync.Mutex // FileLog.mu may be held when taking it, never the reverse
	next   *round
	closed bool

	// Owned by the syncer goroutine.
	syncfsCost time.Duration // running average of one syncfs
	fileCost   time.Duration // running average of fdatasync time per log in a round
	passed     int           // rounds since syncfs was last chosen
}

func newCommitter(s *FileStore) *committer {
	c := &committer{
		s:    s,
		kick: make(chan struct{}, 1),
		quit: make(chan struct{}),
		exit: make(chan struct{}),
		next: newRound(),
	}
	go c.loop()
	return c
}

// join queues l in the next round, wakes the syncer and returns the round
// to wait on; nil if the store is closed.
func (c *committer) join(l *FileLog) *round {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	r := c.next
	if l.pending != r {
		l.pending = r
		r.logs = append(r.logs, l)
	}
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
	return r
}

// enqueue marks l dirty for the next store.FsyncBatch round without waking the
// syncer or waiting.
func (c *committer) enqueue(l *FileLog) {
	c.mu.Lock()
	if r := c.next; !c.closed && l.pending != r {
		l.pending = r
		r.logs = append(r.logs, l)
	}
	c.mu.Unlock()
}

func (c *committer) stop() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	close(c.quit)
	<-c.exit
}

func (c *committer) loop() {
	defer close(c.exit)
	var tick <-chan time.Time
	if c.s.opts.Fsync == store.FsyncBatch {
		t := time.NewTicker(c.s.opts.BatchInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		quit := false
		select {
		case <-c.kick:
		case <-tick:
		case <-c.quit:
			quit = true
		}
		c.mu.Lock()
		r := c.next
		busy := len(r.logs) > 0
		if busy {
			c.next = newRound()
		}
		c.mu.Unlock()
		if busy {
			c.run(r)
			close(r.done)
		}
		if quit {
			return
		}
	}
}

type syncJob struct {
	l    *FileLog
	upto uint64 // records written when the round started
}

// run makes the round's logs durable up to what they had written when it
// started.
func (c *committer) run(r *round) {
	s := c.s
	jobs := make([]syncJob, 0, len(r.logs))
	for _, l := range r.logs {
		l.mu.Lock()
		upto := l.written
		l.mu.Unlock()
		if l.err() == nil && l.durable.Load() < upto {
			jobs = append(jobs, syncJob{l, upto})
		}
	}
	n := len(jobs)
	if n == 0 {
		return
	}
	s.stats.rounds.Add(1)
	s.stats.roundLogs.Add(uint64(n))
	began := time.Now()
	start := began
	defer func() {
		if d := time.Since(began); d > slowSync {
			s.log.Warn("slow fsync round", "took", d, "logs", n)
		}
	}()
	if c.chooseSyncfs(n) {
		s.stats.syncfs.Add(1)
		err := s.syncfs(s.dirf)
		if err == nil {
			// syncfs wrote back every dirty page and inode of the file
			// system, ours included, and (Linux ≥ 5.8) would have failed if
			// any write-back had.
			c.syncfsCost = ewma(c.syncfsCost, time.Since(start))
			for _, j := range jobs {
				j.l.advance(j.upto)
			}
			return
		}
		// Find out which logs the failure touches: fdatasync reports a
		// write-back error to each file that has not seen it yet.
		s.log.Warn("syncfs failed; syncing logs one by one", "err", err)
		start = time.Now()
	}
	c.syncEach(jobs)
	c.fileCost = ewma(c.fileCost, time.Since(start)/time.Duration(n))
}

// chooseSyncfs decides how to sync n dirty logs. syncfs costs about the
// same whatever n is, but it also writes back every other dirty file on the
// file system, so a busy neighbour can make it slow; hence the choice
// compares running averages of the observed costs (one syncfs against n
// times one fdatasync) and, when syncfs lost, still tries it every
// syncfsProbe rounds so the estimate can recover.
func (c *committer) chooseSyncfs(n int) bool {
	if c.s.syncfs == nil || n < c.s.opts.SyncfsThreshold {
		return false
	}
	if c.syncfsCost == 0 || c.fileCost == 0 || c.syncfsCost <= c.fileCost*time.Duration(n) {
		c.passed = 0
		return true
	}
	c.passed++
	if c.passed >= syncfsProbe {
		c.passed = 0
		return true
	}
	return false
}

const (
	syncfsProbe      = 64 // rounds between tries of a syncfs that looked slower
	maxParallelSyncs = 16 // concurrent fdatasyncs share journal commits on ext4/xfs
)

// ewma folds sample into avg with weight 1/4.
func ewma(avg, sample time.Duration) time.Duration {
	if avg == 0 {
		return sample
	}
	return avg + (sample-avg)/4
}

// syncEach fdatasyncs the logs, several at a time.
func (c *committer) syncEach(jobs []syncJob) {
	if len(jobs) == 1 {
		c.syncOne(jobs[0])
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(len(jobs), maxParallelSyncs) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(jobs) {
					return
				}
				c.syncOne(jobs[i])
			}
		})
	}
	wg.Wait()
}

func (c *committer) syncOne(j syncJob) {
	l := j.l
	if l.durable.Load() >= j.upto {
		return // closed as idle, which synced it
	}
	if err := l.rlockFD(); err != nil {
		return // closed, or poisoned by the reopen
	}
	defer l.fdMu.RUnlock()
	c.s.stats.fdatasyncs.Add(1)
	if err := c.s.fdatasync(l.f); err != nil {
		l.poison(fmt.Errorf("fdatasync: %w", err))
		return
	}
	l.advance(j.upto)
}

// advance raises the durable count to n.
func (l *FileLog) advance(n uint64) {
	for {
		d := l.durable.Load()
		if d >= n || l.durable.CompareAndSwap(d, n) {
			return
		}
	}
}

// Stats counts the store's work since it was opened.
type Stats struct {
	Appends    uint64 // records written
	Writes     uint64 // write(2) calls that appended them (a batch is one)
	Rounds     uint64 // group-commit rounds that had something to sync
	RoundLogs  uint64 // logs synced, summed over rounds
	Fdatasyncs uint64 // fdatasync(2) calls on logs
	Syncfs     uint64 // syncfs(2) calls
	Evictions  uint64 // idle logs' fds closed to stay within MaxOpenLogs
	Reopens    uint64 // fds of such logs opened again
	OpenLogs   int    // log fds counted open now (0 without a limit)
}

type storeStats struct {
	appends, writes, rounds, roundLogs, fdatasyncs, syncfs atomic.Uint64
	evictions, reopens                                     atomic.Uint64
}

// Stats returns the store's counters.
func (s *FileStore) Stats() Stats {
	return Stats{
		Appends:    s.stats.appends.Load(),
		Writes:     s.stats.writes.Load(),
		Rounds:     s.stats.rounds.Load(),
		RoundLogs:  s.stats.roundLogs.Load(),
		Fdatasyncs: s.stats.fdatasyncs.Load(),
		Syncfs:     s.stats.syncfs.Load(),
		Evictions:  s.stats.evictions.Load(),
		Reopens:    s.stats.reopens.Load(),
		OpenLogs:   s.fds.count(),
	}
}
