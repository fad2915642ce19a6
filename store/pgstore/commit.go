package pgstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Group commit, as the file store shares an fsync: appends of any number
// of logs queue batches into the next round; one writer goroutine takes a
// round, sends one fenced append statement for all its logs, an implicit
// transaction (one round trip, one commit, one WAL flush under
// synchronous_commit=on), and wakes the round's waiters. Appends arriving
// meanwhile form the next round. A log is in one round in flight at a time, so its
// batches commit in index order (commitDepth rounds of disjoint logs may
// commit at once).

// roundSQL appends the frames of every log of a round in one statement:
// log $1[i] gains records $3[i] … $3[i]+$4[i]-1 (size $5[i] more bytes,
// chain value $6[i]) if and only if it is still leased under epoch $2[i]
// and has exactly $3[i] records; frames $9 go in as records ($7, $8) of
// the logs that passed. The epoch is checked in the statement that
// appends, and the UPDATE's row lock orders it against a takeover's (see
// takeoverSQL). It returns the names of the logs appended to: a log
// missing from them was fenced and had nothing written. One statement
// instead of one per log saves the database most of a round's work (a
// round of 30 logs spent about 9 ms executing 30 statements).
const roundSQL = `WITH u AS (
	SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[])
		AS u(name, epoch, first, n, bytes, crc)
), up AS (
	UPDATE logs SET records = logs.records + u.n, size = logs.size + u.bytes, crc = u.crc
	FROM u WHERE logs.name = u.name AND logs.epoch = u.epoch AND logs.records = u.first
	RETURNING logs.name
), ins AS (
	INSERT INTO records (log, idx, frame)
	SELECT f.log, f.idx, f.frame FROM unnest($7::text[], $8::bigint[], $9::bytea[]) AS f(log, idx, frame)
	WHERE f.log IN (SELECT name FROM up)
)
SELECT name FROM up`

// batch is one AppendBatch call's frames.
type batch struct {
	l      *Log
	first  uint64
	frames [][]byte
	bytes  int64
	crc    uint32 // chain value after the last frame
}

type round struct {
	batches []*batch
	done    chan struct{}
}

func newRound() *round { return &round{done: make(chan struct{})} }

type committer struct {
	s    *Store
	kick chan struct{}
	quit chan struct{}
	exit chan struct{}

	mu     sync.Mutex // Log.mu may be held when taking it, never the reverse
	next   *round
	closed bool

	stats commitStats
}

type commitStats struct {
	rounds, statements, records, fenced, failed atomic.Uint64
}

// Stats counts the store's work since it was opened.
type Stats struct {
	Rounds     uint64 // transactions committed (or tried)
	Statements uint64 // log appends: one per log per round (all in one statement)
	Records    uint64 // records committed
	Fenced     uint64 // appends refused because the lease had moved
	Failed     uint64 // rounds whose transaction failed
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	c := &s.gc.stats
	return Stats{c.rounds.Load(), c.statements.Load(), c.records.Load(), c.fenced.Load(), c.failed.Load()}
}

func newCommitter(s *Store) *committer {
	c := &committer{s: s, kick: make(chan struct{}, 1), quit: make(chan struct{}), exit: make(chan struct{}), next: newRound()}
	go c.loop()
	return c
}

// enqueue adds b to the next round; false if the store is closed.
func (c *committer) enqueue(b *batch) bool {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return false
	}
	r := c.next
	r.batches = append(r.batches, b)
	b.l.last = r
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
	return true
}

// roundOf returns the round holding l's newest batch.
func (c *committer) roundOf(l *Log) *round {
	c.mu.Lock()
	defer c.mu.Unlock()
	return l.last
}

// stop commits what is queued and ends the writer.
func (c *committer) stop() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	close(c.quit)
	<-c.exit
}

// commitDepth is how many rounds may commit at once, on connections of
// their own. With synchronous commit a round spends most of its time
// waiting for the WAL flush; a second round committing meanwhile shares
// the database's flush instead of queueing behind it. Rounds in flight
// never share a log (a round whose logs overlap one in flight waits for
// it), so each log's batches still commit one round after another, in
// index order, and two rounds never wait for each other's row locks.
const commitDepth = 2

func (c *committer) loop() {
	defer close(c.exit)
	var (
		inflight sync.WaitGroup
		mu       sync.Mutex
		cond     = sync.NewCond(&mu)
		busy     = map[*Log]bool{} // logs of the rounds in flight
	)
	defer inflight.Wait()
	slots := make(chan struct{}, commitDepth)
	overlaps := func(r *round) bool {
		for _, b := range r.batches {
			if busy[b.l] {
				return true
			}
		}
		return false
	}
	for {
		quit := false
		select {
		case <-c.kick:
		case <-c.quit:
			quit = true
		}
		// Take a slot before the round, so that appends keep joining
		// it while every slot is committing.
		slots <- struct{}{}
		c.mu.Lock()
		r := c.next
		has := len(r.batches) > 0
		if has {
			c.next = newRound()
		}
		c.mu.Unlock()
		if !has {
			<-slots
		} else {
			mu.Lock()
			for overlaps(r) {
				cond.Wait()
			}
			for _, b := range r.batches {
				busy[b.l] = true
			}
			mu.Unlock()
			inflight.Add(1)
			go func() {
				defer inflight.Done()
				c.run(r)
				mu.Lock()
				for _, b := range r.batches {
					delete(busy, b.l)
				}
				cond.Broadcast()
				mu.Unlock()
				close(r.done)
				<-slots
			}()
		}
		if quit {
			return
		}
	}
}

// group is one log's share of a round: its batches, merged.
type group struct {
	l      *Log
	first  uint64
	frames [][]byte
	bytes  int64
	crc    uint32
}

func (c *committer) run(r *round) {
	var groups []*group
	byLog := make(map[*Log]*group)
	for _, b := range r.batches {
		if b.l.err() != nil {
			continue // poisoned by an earlier round: nothing after it can fit
		}
		g := byLog[b.l]
		if g == nil {
			g = &group{l: b.l, first: b.first}
			byLog[b.l] = g
			groups = append(groups, g)
		}
		g.frames = append(g.frames, b.frames...)
		g.bytes += b.bytes
		g.crc = b.crc
	}
	if len(groups) == 0 {
		return
	}
	c.stats.rounds.Add(1)
	c.stats.statements.Add(uint64(len(groups)))
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	began := time.Now()
	n := len(groups)
	names, epochs, firsts, counts, sizes, crcs := make([]string, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	var flogs []string
	var fidx []int64
	var frames [][]byte
	for i, g := range groups {
		names[i], epochs[i], firsts[i], counts[i], sizes[i], crcs[i] = g.l.name, g.l.epoch, int64(g.first), int64(len(g.frames)), g.bytes, int64(g.crc)
		for j, f := range g.frames {
			flogs, fidx, frames = append(flogs, g.l.name), append(fidx, int64(g.first)+int64(j)), append(frames, f)
		}
	}
	// One statement is one implicit transaction: it commits, or not, for
	// every log at once, and the reply comes after the commit.
	appended := make(map[string]bool, n)
	rows, err := c.s.pool.Query(ctx, roundSQL, names, epochs, firsts, counts, sizes, crcs, flogs, fidx, frames)
	if err == nil {
		var name string
		_, err = pgx.ForEachRow(rows, []any{&name}, func() error {
			appended[name] = true
			return nil
		})
	}
	if d := time.Since(began); d > time.Second {
		c.s.log.Warn("slow commit", "took", d, "logs", len(groups))
	}
	if err != nil {
		// The transaction failed, or its outcome is unknown (the
		// connection dropped around the COMMIT): every log in it must be
		// reopened to learn what the database holds.
		c.stats.failed.Add(1)
		if !errors.As(err, new(*pgconn.PgError)) {
			// The connection was lost, not a statement refused: the
			// database likely went away, and every pooled connection
			// with it.
			c.s.resetPool()
		}
		for _, g := range groups {
			g.l.poison(fmt.Errorf("commit: %w", err))
		}
		return
	}
	for _, g := range groups {
		if !appended[g.l.name] {
			c.stats.fenced.Add(1)
			g.l.poison(c.whyFenced(ctx, g))
			continue
		}
		c.stats.records.Add(uint64(len(g.frames)))
		g.l.advance(g.first + uint64(len(g.frames)))
	}
}

// whyFenced explains an append that matched no row.
func (c *committer) whyFenced(ctx context.Context, g *group) error {
	var epoch, records int64
	var owner string
	err := c.s.pool.QueryRow(ctx, `SELECT epoch, records, owner FROM logs WHERE name = $1`, g.l.name).Scan(&epoch, &records, &owner)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("%w: the log was removed", ErrFenced)
	case err != nil:
		return fmt.Errorf("%w: (and reading the lease failed: %v)", ErrFenced, err)
	case epoch != g.l.epoch:
		return fmt.Errorf("%w: appending at epoch %d, the log is at epoch %d (owner %q)", ErrFenced, g.l.epoch, epoch, owner)
	}
	return fmt.Errorf("%w: appending at record %d, the log has %d", ErrFenced, g.first, records)
}

// advance raises the committed count to n.
func (l *Log) advance(n uint64) {
	for {
		d := l.committed.Load()
		if d >= n || l.committed.CompareAndSwap(d, n) {
			return
		}
	}
}
