package service

import (
	"context"
	"errors"

	"github.com/tcpstated/tcpstated/service/machine"
	"github.com/tcpstated/tcpstated/store"
)

// With a store shared by several replicas (store/pgstore), a session is
// served by the replica holding its log's lease. The replica package routes
// calls with Route and Adopt; a session whose lease another replica took
// (its append was fenced, and reopening its log found the lease held)
// leaves this replica's registry, so the next call is forwarded.

// Route returns the name of the log of session id as the caller of ctx
// sees it, and whether this replica serves that session now. A caller the
// service would refuse (no tenant where one is required) is "served" so
// the service gives the error.
func (s *Service) Route(ctx context.Context, id string) (log string, served bool) {
	t, ok := s.caller(ctx)
	if !ok || !machine.ValidSessionID(id) {
		return "", true
	}
	if _, ok := s.sessions.Load(sessionKey{t, id}); ok {
		return logName(t, id), true
	}
	return logName(t, id), false
}

// Adopt takes over the session whose log is named file by replaying it,
// exactly as a restart restores one (outputs compared, differences
// reported in the session's restore status). It fails, registering
// nothing, when another replica holds the log's lease.
func (s *Service) Adopt(file string) error {
	if s.closed.Load() {
		return errShuttingDown
	}
	if !store.ValidName(file) {
		return store.ErrInvalidName
	}
	// One takeover at a time: a call's and the background's for the same
	// session must not race (the loser then finds the session here).
	s.adoptMu.Lock()
	defer s.adoptMu.Unlock()
	err := s.restore(file)
	if err == nil {
		s.metrics.takeovers.Inc()
	}
	return err
}

// handOverLocked drops a session another replica now holds: its timers,
// watchers and streams end, it leaves the registry and later calls are
// routed to the new owner. cause says who holds it.
func (ss *session) handOverLocked(cause error) {
	s := ss.svc
	ss.closeLocked(stateMoved)
	ss.failure = cause
	if s.sessions.CompareAndDelete(sessionKey{ss.tenant, ss.id}, ss) {
		s.count.Add(-1)
		s.tenants.Release(ss.tenant)
		s.metrics.handovers.Inc()
	}
	s.log.Warn("session taken over by another replica; calls will be forwarded there", "session", ss.name, "cause", cause)
}

// storeKind is the kind of a store failure the service reports: a store
// that cannot be reached now (or a log that failed) is UNAVAILABLE, the
// call may be retried; anything else is INTERNAL.
func storeKind(err error) kind {
	if errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrPoisoned) || errors.Is(err, store.ErrBusy) {
		return kindUnavailable
	}
	return kindInternal
}

// HandOver drops the sessions whose logs are named in files: the store
// found that other replicas took them over (or removed them) while this
// replica's lease had lapsed.
func (s *Service) HandOver(files []string) {
	set := make(map[string]bool, len(files))
	for _, f := range files {
		set[f] = true
	}
	var lost []*session
	s.sessions.Range(func(_, v any) bool {
		if ss := v.(*session); set[ss.file] {
			lost = append(lost, ss)
		}
		return true
	})
	for _, ss := range lost {
		ss.mu.Lock()
		ss.handOverLocked(errLeaseLapsed)
		ss.mu.Unlock()
	}
}

var errLeaseLapsed = errors.New("this replica's lease lapsed and another replica took the session over")
