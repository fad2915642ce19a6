package service

import (
	"errors"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
	"github.com/tcpstated/tcpstated/store"
)

// Sessions expire (AIP-214): at a wall-clock time (expireTime), or, for a
// VIRTUAL session given a ttl, when its own clock reaches expireClock. The
// janitor removes expired sessions and their logs every
// Config.ExpiryInterval. Both times are kept in the start record.

// expiration is when a new session expires: at most one field is set.
type expiration struct {
	wall  time.Time     // expire_time
	clock time.Duration // expire_clock (VIRTUAL sessions); 0: none
}

func (e expiration) none() bool { return e.wall.IsZero() && e.clock == 0 }

// maxTTL bounds a ttl (about 100 years, as the session clock).
const maxTTL = maxClock

// sessionExpiration reads a Session's expiration for a session with the
// given options; useDefault applies the server's default when it has none.
func (s *Service) sessionExpiration(v *pb.Session, realtime, useDefault bool, now time.Time) (expiration, error) {
	var ttl time.Duration
	switch e := v.GetExpiration().(type) {
	case *pb.Session_ExpireTime:
		if err := e.ExpireTime.CheckValid(); err != nil {
			return expiration{}, invalidf("session.expire_time: %v", err)
		}
		t := e.ExpireTime.AsTime()
		if !t.After(now) {
			return expiration{}, invalidf("session.expire_time: %s is not in the future", t.Format(time.RFC3339Nano))
		}
		return expiration{wall: t}, nil
	case *pb.Session_Ttl:
		if err := e.Ttl.CheckValid(); err != nil {
			return expiration{}, invalidf("session.ttl: %v", err)
		}
		ttl = e.Ttl.AsDuration()
		if ttl <= 0 || ttl > maxTTL {
			return expiration{}, invalidf("session.ttl: %v is not in (0, %v]", ttl, maxTTL)
		}
	default:
		if !useDefault || s.cfg.SessionTTL <= 0 {
			return expiration{}, nil
		}
		ttl = s.cfg.SessionTTL
	}
	if realtime {
		return expiration{wall: now.Add(ttl)}, nil
	}
	return expiration{clock: ttl}, nil
}

// setStart writes e into a start record.
func (e expiration) setStart(st *pb.SessionStart) {
	if !e.wall.IsZero() {
		st.ExpireTime = timestamppb.New(e.wall)
	}
	if e.clock > 0 {
		st.ExpireClock = durationpb.New(e.clock)
	}
}

// startExpiration reads e back from a start record.
func startExpiration(st *pb.SessionStart) expiration {
	var e expiration
	if st.ExpireTime != nil {
		e.wall = st.ExpireTime.AsTime()
	}
	if st.ExpireClock != nil {
		e.clock = st.ExpireClock.AsDuration()
	}
	return e
}

// setView shows e in a Session.
func (e expiration) setView(v *pb.Session) {
	if !e.wall.IsZero() {
		v.Expiration = &pb.Session_ExpireTime{ExpireTime: timestamppb.New(e.wall)}
	}
	if e.clock > 0 {
		v.ExpireClock = durationpb.New(e.clock)
	}
}

// expiredLocked reports whether the session has expired.
func (ss *session) expiredLocked(now time.Time) bool {
	e := ss.expire
	if !e.wall.IsZero() && !now.Before(e.wall) {
		return true
	}
	return e.clock > 0 && ss.m != nil && ss.m.Now() >= e.clock
}

// janitor removes expired sessions until the service closes.
func (s *Service) janitor() {
	t := time.NewTicker(s.cfg.ExpiryInterval)
	defer t.Stop()
	for {
		select {
		case <-s.janitorStop:
			return
		case now := <-t.C:
			s.expire(now)
		}
	}
}

// expire removes every session expired at now, with its log.
func (s *Service) expire(now time.Time) {
	var due []sessionKey
	s.sessions.Range(func(k, v any) bool {
		ss := v.(*session)
		ss.mu.Lock()
		if ss.state == stateOpen && ss.expiredLocked(now) {
			due = append(due, k.(sessionKey))
		}
		ss.mu.Unlock()
		return true
	})
	for _, k := range due {
		name, err := s.deleteKey(k)
		if errors.Is(err, errGone) {
			continue // deleted meanwhile
		}
		if err != nil {
			s.log.Warn("removing an expired session", "session", name, "tenant", k.tenant, "err", err)
			continue
		}
		s.metrics.expired.Inc()
		s.log.Info("session expired; removed with its log", "session", name, "tenant", k.tenant)
	}
}

// errGone: deleteKey found no session.
var errGone = errors.New("no such session")

// deleteKey removes a session and its log by registry key.
func (s *Service) deleteKey(key sessionKey) (string, error) {
	v, ok := s.sessions.LoadAndDelete(key)
	if !ok {
		return "", errGone
	}
	ss := v.(*session)
	s.tenants.Release(ss.tenant)
	ss.mu.Lock()
	err := ss.closeLocked(stateDeleted)
	ss.mu.Unlock()
	if err != nil {
		s.log.Warn("closing a deleted session's log", "session", ss.name, "err", err)
	}
	s.count.Add(-1)
	if err := s.store.Remove(ss.file); err != nil && !errors.Is(err, store.ErrNotFound) {
		return ss.name, errorf(storeKind(err), "removing the log of session %s: %v", ss.name, err)
	}
	return ss.name, nil
}
