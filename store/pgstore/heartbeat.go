package pgstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// heartbeat is this replica's lease on all the logs it owns: its row in
// replicas, renewed every Options.Renew to expire LeaseTTL later by the
// database's clock. Locally the lease is trusted until LeaseTTL after the
// start of the last renewal that succeeded (measured on this machine's
// monotonic clock from before the request left, so it never outlives the
// row's expiry as the database sees it, whatever the clocks say).
type heartbeat struct {
	mu     sync.Mutex
	sentOK time.Time // when the last successful renewal was sent
	fails  int
	onLost func(names []string)
}

func (s *Store) renew(ctx context.Context) error {
	sent := time.Now()
	ctx, cancel := context.WithTimeout(ctx, s.renewTimeout())
	defer cancel()
	_, err := s.pool.Exec(ctx, `INSERT INTO replicas (id, addr, expires) VALUES ($1, $2, now() + make_interval(secs => $3))
		ON CONFLICT (id) DO UPDATE SET addr = excluded.addr, expires = excluded.expires`,
		s.opts.Replica, s.opts.Addr, s.opts.LeaseTTL.Seconds())
	s.hb.mu.Lock()
	defer s.hb.mu.Unlock()
	if err != nil {
		s.hb.fails++
		return fmt.Errorf("pgstore: renewing the lease of replica %s: %w", s.opts.Replica, err)
	}
	s.hb.sentOK, s.hb.fails = sent, 0
	return nil
}

// renewTimeout bounds one renewal attempt: a renewal that hangs (a
// database restarting, a network cut) must not hold the next attempt back
// past the lease. It does not bear on fencing: the lease is trusted from
// when the request was sent, whatever its answer took.
func (s *Store) renewTimeout() time.Duration {
	return min(s.opts.LeaseTTL, max(s.opts.Renew, time.Second))
}

// renewRetry is how soon a failed renewal is tried again: much sooner
// than Renew, so that once the database answers again (after a restart,
// say) the lease is live again within this much rather than a whole
// interval later, and the sessions here are served again at once instead
// of lapsing and being taken over by replicas that renewed first.
func (s *Store) renewRetry() time.Duration {
	return max(s.opts.Renew/10, 20*time.Millisecond)
}

func (s *Store) heartbeatLoop() {
	defer close(s.hbDone)
	wait := s.opts.Renew
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-s.hbStop:
			return
		case <-t.C:
		}
		wasValid := s.LeaseValid()
		if err := s.renew(context.Background()); err != nil {
			s.hb.mu.Lock()
			fails := s.hb.fails
			s.hb.mu.Unlock()
			if fails == 1 {
				// The database is likely gone (crashed, restarting, cut
				// off): every pooled connection is then dead too. Drop
				// them all now, so that the calls after it is back get
				// fresh ones instead of failing once per stale
				// connection.
				s.resetPool()
			}
			if fails == 1 || fails%50 == 0 {
				s.log.Warn("lease renewal failed; retrying", "err", err, "failures", fails,
					"retry_every", s.renewRetry(), "lease_valid", s.LeaseValid())
			}
			t.Reset(s.renewRetry())
			continue
		}
		t.Reset(s.opts.Renew)
		if !wasValid {
			// Other replicas may have taken logs over (or removed them)
			// while this one could not renew: their appends from here
			// are fenced anyway, but the service must also stop serving
			// them from memory.
			s.checkLost()
		}
	}
}

// resetPool closes every pooled connection (those in use when they are
// released), after a failure that says the database connection was lost.
// At most once per 100 ms, as many calls may see the same loss.
func (s *Store) resetPool() {
	now := time.Now().UnixNano()
	last := s.lastReset.Load()
	if now-last < int64(100*time.Millisecond) || !s.lastReset.CompareAndSwap(last, now) {
		return
	}
	s.pool.Reset()
}

// LeaseValid reports whether this replica's lease is certainly still live
// (a renewal succeeded less than LeaseTTL ago). When it is not, another
// replica may be taking its logs over: the service should stop serving
// from memory until it is valid again.
func (s *Store) LeaseValid() bool {
	s.hb.mu.Lock()
	defer s.hb.mu.Unlock()
	return !s.hb.sentOK.IsZero() && time.Since(s.hb.sentOK) < s.opts.LeaseTTL
}

// Owner says who holds the lease of log name: this replica (self), another
// live one (its address), or nobody live (the log can be taken over).
// exists is false when there is no such log.
func (s *Store) Owner(ctx context.Context, name string) (owner, addr string, live, exists bool, err error) {
	err = s.pool.QueryRow(ctx, `SELECT l.owner, coalesce(r.addr, ''), coalesce(r.expires > now(), false)
		FROM logs l LEFT JOIN replicas r ON r.id = l.owner WHERE l.name = $1`, name).Scan(&owner, &addr, &live)
	if err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return "", "", false, false, nil
		}
		return "", "", false, false, fmt.Errorf("pgstore: owner of %q: %w", name, err)
	}
	return owner, addr, live, true, nil
}

// Orphans returns up to limit logs whose lease is held by no live replica
// (their owner was killed or paused past its lease), for a takeover.
func (s *Store) Orphans(ctx context.Context, limit int) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT l.name FROM logs l WHERE l.owner <> $1 AND NOT EXISTS (
		SELECT 1 FROM replicas r WHERE r.id = l.owner AND r.expires > now()) ORDER BY l.name LIMIT $2`, s.opts.Replica, limit)
	if err != nil {
		return nil, fmt.Errorf("pgstore: orphans: %w", err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		names = append(names, n)
	}
	return names, rows.Err()
}

// pauseHeartbeat and resumeHeartbeat stop and restart renewals, as a
// SIGSTOP would (tests only).
func (s *Store) pauseHeartbeat() {
	close(s.hbStop)
	<-s.hbDone
}

func (s *Store) resumeHeartbeat() {
	s.hbStop, s.hbDone = make(chan struct{}), make(chan struct{})
	go s.heartbeatLoop()
}

// OnLeaseLost sets fn to be told the names of logs open here, or closed
// here and not removed, whose lease another replica took (or that were
// removed) while this replica's own lease had lapsed; it is checked after every renewal that follows a
// lapse. fn runs on its own goroutine.
func (s *Store) OnLeaseLost(fn func(names []string)) {
	s.hb.mu.Lock()
	defer s.hb.mu.Unlock()
	s.hb.onLost = fn
}

func (s *Store) checkLost() {
	s.checks.Add(1)
	var names []string
	var epochs []int64
	s.open.Range(func(n string, l *Log) {
		names, epochs = append(names, n), append(epochs, l.epoch)
	})
	// Logs closed here and not removed are still leased to this replica
	// as far as it knows: a session whose log failed and could not be
	// reopened (the database was down) holds none open, yet must be
	// dropped too if another replica took its log over or removed it.
	open := len(names)
	s.keptMu.Lock()
	for n, e := range s.kept {
		names, epochs = append(names, n), append(epochs, e)
	}
	s.keptMu.Unlock()
	ctx, cancel := opCtx()
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT t.n FROM unnest($1::text[], $2::bigint[]) AS t(n, e)
		LEFT JOIN logs l ON l.name = t.n WHERE l.name IS NULL OR l.epoch <> t.e OR l.owner <> $3`, names, epochs, s.opts.Replica)
	if err != nil {
		s.log.Warn("checking leases after a lapse", "err", err)
		return
	}
	lost, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		s.log.Warn("checking leases after a lapse", "err", err)
		return
	}
	s.keptMu.Lock()
	for _, n := range lost {
		delete(s.kept, n) // not ours any more: Remove falls back to owner = this replica
	}
	s.keptMu.Unlock()
	// A log reopened here since the snapshot (a failed session reloaded)
	// holds an epoch newer than the one checked: it was not lost.
	checked := make(map[string][]int64, len(names))
	for i, n := range names {
		checked[n] = append(checked[n], epochs[i])
	}
	still := lost[:0]
	for _, n := range lost {
		if l, ok := s.open.Lookup(n); ok && !slices.Contains(checked[n], l.epoch) {
			continue
		}
		still = append(still, n)
	}
	lost = still
	s.log.Warn("lease renewed after it had lapsed", "logs_open", open, "logs_closed", len(names)-open, "logs_lost", len(lost))
	s.hb.mu.Lock()
	fn := s.hb.onLost
	s.hb.mu.Unlock()
	if len(lost) > 0 && fn != nil {
		go fn(lost)
	}
}
