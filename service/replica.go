package service

import (
	"context"

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
	if !ok || !validSessionID(id) {
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
