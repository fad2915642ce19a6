package pgstore

import (
	"context"
	"errors"
	"fmt"
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
}

func (s *Store) renew(ctx context.Context) error {
	sent := time.Now()
	ctx, cancel := context.WithTimeout(ctx, s.opts.LeaseTTL)
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

func (s *Store) heartbeatLoop() {
	defer close(s.hbDone)
	t := time.NewTicker(s.opts.Renew)
	defer t.Stop()
	for {
		select {
		case <-s.hbStop:
			return
		case <-t.C:
		}
		wasValid := s.LeaseValid()
		if err := s.renew(context.Background()); err != nil {
			s.log.Warn("lease renewal failed", "err", err, "lease_valid", s.LeaseValid())
			continue
		}
		if !wasValid {
			// Other replicas may have taken logs over while this one
			// could not renew: their appends from here are fenced
			// anyway, but say so now.
			s.log.Warn("lease renewed after it had expired; logs taken over meanwhile will refuse appends")
		}
	}
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
