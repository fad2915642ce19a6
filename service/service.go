package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"

	"github.com/tcpstated/tcpstated/store"

	"github.com/tcpstated/tcpstated/service/tenant"

	"github.com/tcpstated/tcpstated/service/machine"
)

// Service holds every session of the server and implements the tcpstate.v1
// gRPC services. Sessions live in a sync.Map, so calls on different
// sessions share no lock; calls on one session are serialised by its mutex.
type Service struct {
	cfg     Config
	log     *slog.Logger
	store   store.Store
	metrics *metrics

	sessions sync.Map // sessionKey (tenant, id) → *session
	count    atomic.Int64
	tenants  tenant.Counts // sessions per tenant (tenant.go)
	closed   atomic.Bool
	stopping atomic.Bool   // streams end; no new ones start
	stopCh   chan struct{} // closed by StopStreams
	// createMu serializes CreateSession calls that carry a request_id.
	createMu sync.Mutex
	// janitorStop ends the janitor (expiry.go).
	janitorStop chan struct{}

	restoreMu sync.Mutex
	restored  []RestoreReport
	adoptMu   sync.Mutex // replica.go
}

// RestoreReport says what Open found in one session's log.
type RestoreReport struct {
	Session string // sessions/{id}
	Log     string // the log's name in the store (logName)
	Records uint64 // records re-run
	// Truncated: the log store cut a torn or corrupt tail (see Recovery).
	Truncated bool
	Recovery  store.RecoveryReport
	// Difference is the first output of the re-run that differs from the
	// logged one; Differences counts them. The session continues from the
	// re-run's state.
	Difference  *pb.Difference
	Differences int
	// Completed: the last input had no output record (a crash between the
	// two writes); the re-run's output was appended.
	Completed bool
	// Err: the log could not be re-run; the session is kept as broken
	// (DATA_LOSS) until deleted.
	Err error
	// Tenant owns the session (its start record's tenant), if known.
	Tenant string
}

// New restores every session in st by re-running its log and serves them.
// Damaged logs are reported (RestoreReports and the server's log) and
// never stop the server. The service owns st from then on: Close closes it,
// and so does a failed New.
func New(st store.Store, cfg Config) (*Service, error) {
	cfg = cfg.withDefaults()
	s := &Service{cfg: cfg, log: cfg.Logger, store: st, stopCh: make(chan struct{}), janitorStop: make(chan struct{})}
	s.metrics = newMetrics(s, cfg.Metrics)
	if err := s.restoreAll(); err != nil {
		st.Close()
		return nil, err
	}
	go s.janitor()
	return s, nil
}

// Register registers SessionService, EndpointService, SegmentService,
// LogService and ScriptService on srv.
func (s *Service) Register(srv grpc.ServiceRegistrar) {
	pb.RegisterSessionServiceServer(srv, &sessionServer{s: s})
	pb.RegisterEndpointServiceServer(srv, &endpointServer{s: s})
	pb.RegisterSegmentServiceServer(srv, &segmentServer{s: s})
	pb.RegisterLogServiceServer(srv, &logServer{s: s})
	pb.RegisterScriptServiceServer(srv, &scriptServer{s: s})
}

// RestoreReports returns what Open found in each session's log that was
// not clean: truncations, differences, re-run failures.
func (s *Service) RestoreReports() []RestoreReport {
	s.restoreMu.Lock()
	defer s.restoreMu.Unlock()
	return append([]RestoreReport(nil), s.restored...)
}

// Limits returns the limits in effect.
func (s *Service) Limits() Limits { return s.cfg.Limits }

// SessionCount returns the number of sessions.
func (s *Service) SessionCount() int { return int(s.count.Load()) }

// StopStreams ends every WatchSegments stream and every following
// StreamRecords stream with UNAVAILABLE, and refuses new ones, so that a
// graceful stop of the gRPC server does not wait for them. Unary calls are
// not affected.
func (s *Service) StopStreams() {
	if s.stopping.Swap(true) {
		return
	}
	close(s.stopCh)
	s.sessions.Range(func(_, v any) bool {
		ss := v.(*session)
		ss.mu.Lock()
		for _, w := range ss.watchers {
			w.end(errShuttingDown)
		}
		ss.watchers = nil
		if ss.recNotify != nil {
			close(ss.recNotify)
			ss.recNotify = nil
		}
		ss.mu.Unlock()
		return true
	})
}

var errShuttingDown = reasonf(kindUnavailable, "SHUTTING_DOWN", "the server is shutting down")

// Close stops every session's timers and watchers and syncs and closes
// every log. Calls still running get UNAVAILABLE.
func (s *Service) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(s.janitorStop)
	var first error
	s.sessions.Range(func(_, v any) bool {
		ss := v.(*session)
		ss.mu.Lock()
		if err := ss.closeLocked(stateClosed); err != nil && first == nil {
			first = err
		}
		ss.mu.Unlock()
		return true
	})
	if err := s.store.Close(); err != nil && first == nil && !errors.Is(err, store.ErrClosed) {
		first = err
	}
	return first
}

// lookup finds a session by ID within the caller's tenant: another
// tenant's session of that ID is a different session (tenant.go).
func (s *Service) lookup(ctx context.Context, id string) (*session, error) {
	if s.closed.Load() {
		return nil, reasonf(kindUnavailable, "SHUTTING_DOWN", "the server is shutting down")
	}
	t, ok := s.caller(ctx)
	if !ok {
		return nil, sessionNotFound(machine.SessionName(id))
	}
	v, ok := s.sessions.Load(sessionKey{t, id})
	if !ok {
		return nil, sessionNotFound(machine.SessionName(id))
	}
	return v.(*session), nil
}

// lookupName finds a session by resource name.
func (s *Service) lookupName(ctx context.Context, field, name string) (*session, error) {
	id, err := machine.ParseSessionName(field, name)
	if err != nil {
		return nil, err
	}
	return s.lookup(ctx, id)
}

// create makes a new session: validates the options, creates its log with
// the start record (durable before the call returns) and registers it.
func (s *Service) create(ctx context.Context, id string, req *pb.SessionOptions, kind pb.SessionKind, spec *pb.Session, useDefaultTTL bool, reqID string) (*session, error) {
	owner, ok := s.caller(ctx)
	if !ok {
		return nil, errorf(kindUnauthenticated, "the call has no tenant: this server requires a bearer token")
	}
	if reqID != "" {
		if err := checkRequestID(reqID); err != nil {
			return nil, err
		}
		// Creates with a request ID run one at a time, so that a repeat
		// finds the session its first call made.
		s.createMu.Lock()
		defer s.createMu.Unlock()
		if ss := s.sessionByRequest(owner, reqID); ss != nil {
			s.metrics.repeats.Inc()
			return ss, nil
		}
	}
	switch {
	case id == "":
		id = newSessionID() // random: unique in every namespace
	case !machine.ValidSessionID(id):
		return nil, invalidf("session_id: %q is not 1 to 63 characters of a-z, 0-9 and -", id)
	case owner != "" && len(id) > maxTenantSessionIDLen:
		return nil, invalidf("session_id: %q is %d characters; a tenant's session IDs are at most %d (its log is named after the tenant and the ID, in at most 63 characters)", id, len(id), maxTenantSessionIDLen)
	}
	opts, secret, err := effectiveOptions(req, s.cfg.Limits)
	if err != nil {
		return nil, err
	}
	exp, err := s.sessionExpiration(spec, opts.ClockMode == pb.ClockMode_CLOCK_MODE_REALTIME, useDefaultTTL, time.Now())
	if err != nil {
		return nil, err
	}
	if s.closed.Load() {
		return nil, reasonf(kindUnavailable, "SHUTTING_DOWN", "the server is shutting down")
	}
	key := sessionKey{owner, id}
	if _, ok := s.sessions.Load(key); ok {
		return nil, reasonf(kindExists, "SESSION_ALREADY_EXISTS", "session %s already exists", machine.SessionName(id))
	}
	tenant, err := s.reserveSession(ctx)
	if err != nil {
		return nil, err
	}
	if n := s.count.Add(1); n > int64(s.cfg.Limits.MaxSessions) {
		s.count.Add(-1)
		s.tenants.Release(tenant)
		return nil, exhaustedf("the server holds its limit of %d sessions", s.cfg.Limits.MaxSessions)
	}
	ss, err := s.createLog(id, tenant, opts, secret, kind, exp, reqID)
	if err != nil {
		s.count.Add(-1)
		s.tenants.Release(tenant)
		return nil, err
	}
	if _, loaded := s.sessions.LoadOrStore(key, ss); loaded {
		// Cannot happen: the store refuses a second log of the same name.
		ss.mu.Lock()
		ss.closeLocked(stateDeleted)
		ss.mu.Unlock()
		s.count.Add(-1)
		s.tenants.Release(tenant)
		return nil, reasonf(kindExists, "SESSION_ALREADY_EXISTS", "session %s already exists", machine.SessionName(id))
	}
	s.metrics.sessionsCreated.Inc()
	return ss, nil
}

func (s *Service) createLog(id, tenant string, opts *pb.SessionOptions, secret [16]byte, kind pb.SessionKind, exp expiration, reqID string) (*session, error) {
	file := logName(tenant, id)
	lg, err := s.store.Create(file)
	switch {
	case errors.Is(err, store.ErrExists), errors.Is(err, store.ErrBusy):
		return nil, reasonf(kindExists, "SESSION_ALREADY_EXISTS", "session %s already exists", machine.SessionName(id))
	case err != nil:
		return nil, errorf(storeKind(err), "creating the log of session %s: %v", machine.SessionName(id), err)
	}
	now := time.Now()
	params := machine.Params{MaxEndpoints: s.cfg.Limits.MaxEndpoints}
	params.Switches = machine.PinSwitches(machine.EngineConfig(opts, secret, params))
	start := &pb.SessionStart{
		Name:          machine.SessionName(id),
		Options:       opts,
		SecretKey:     secret[:],
		CreateTime:    timestamppb.New(now),
		FormatVersion: 1,
		EngineVersion: machine.EngineName,
		MaxEndpoints:  uint32(params.MaxEndpoints),
		Tenant:        tenant,
		Kind:          kind,
		RequestId:     reqID,
		SwitchValues:  params.Switches,
	}
	exp.setStart(start)
	// Deterministic: the pinned switches are a map, and a log is the same bytes on every run.
	rec, err := proto.MarshalOptions{Deterministic: true}.Marshal(&pb.LogRecord{Index: 0, Time: durationpb.New(0), Body: &pb.LogRecord_Start{Start: start}})
	if err == nil {
		_, err = lg.Append(rec)
		if err == nil {
			err = lg.Sync() // a session exists once its start record is durable, whatever the fsync mode
		}
	}
	if err != nil {
		lg.Close()
		s.store.Remove(file)
		return nil, errorf(storeKind(err), "writing the log of session %s: %v", machine.SessionName(id), err)
	}
	ss := &session{
		svc:        s,
		id:         id,
		name:       machine.SessionName(id),
		file:       file,
		tenant:     tenant,
		createTime: now,
		opts:       opts,
		kind:       kind,
		realtime:   opts.ClockMode == pb.ClockMode_CLOCK_MODE_REALTIME,
		m:          machine.New(machine.SessionName(id), machine.EngineConfig(opts, secret, params)),
		log:        lg,
		next:       1,
		mono:       now,
		expire:     exp,
		createReq:  reqID,
	}
	ss.startTimer()
	return ss, nil
}

func (ss *session) startTimer() {
	if ss.realtime {
		ss.timer = time.AfterFunc(time.Hour, ss.onTimer)
		ss.timer.Stop()
	}
}

// delete removes a session and its log.
func (s *Service) delete(ctx context.Context, id string) error {
	t, ok := s.caller(ctx)
	if !ok {
		return sessionNotFound(machine.SessionName(id))
	}
	_, err := s.deleteKey(sessionKey{t, id})
	if errors.Is(err, errGone) {
		return sessionNotFound(machine.SessionName(id))
	}
	return err
}

// sortedIDs returns the IDs of the sessions with no owner, in name order.
func (s *Service) sortedIDs() []string {
	var ids []string
	s.sessions.Range(func(k, _ any) bool {
		if k := k.(sessionKey); k.tenant == "" {
			ids = append(ids, k.id)
		}
		return true
	})
	sort.Strings(ids)
	return ids
}

// restoreAll re-runs every log in the store, a few at a time.
func (s *Service) restoreAll() error {
	names, err := s.store.List()
	if err != nil {
		return fmt.Errorf("service: listing logs: %w", err)
	}
	if len(names) > s.cfg.Limits.MaxSessions {
		s.log.Warn("more sessions on disk than the session limit; all are restored", "sessions", len(names), "limit", s.cfg.Limits.MaxSessions)
	}
	start := time.Now()
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for _, file := range names {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := s.restore(file); err != nil {
				s.log.Debug("session held by another replica; not restored here", "log", file, "err", err)
			}
		})
	}
	wg.Wait()
	s.log.Info("sessions restored", "sessions", s.count.Load(), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// restore opens the log named file and re-runs it. It returns an error,
// and registers nothing, when the log is open elsewhere (store.ErrBusy:
// another replica holds its lease), was removed since it was listed
// (store.ErrNotFound) or the store cannot be reached (store.ErrUnavailable);
// every other problem is registered as a broken session.
func (s *Service) restore(file string) error {
	name := machine.SessionName(file)
	lg, rep, err := s.store.Open(file)
	if errors.Is(err, store.ErrBusy) || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrUnavailable) {
		return err // held elsewhere, deleted meanwhile, or not reachable now: nothing to register
	}
	if err != nil {
		s.addBroken(sessionKey{"", file}, nil, RestoreReport{Session: name, Log: file, Err: err})
		return nil
	}
	ss, r := s.rebuild(file, lg, rep)
	if ss == nil {
		lg.Close()
		if r.Err == errEmptyLog && !(rep.Damage != nil && errors.Is(rep.Damage, store.ErrCorrupt)) {
			// Created but its start record never made it: the create call
			// never returned, so there is no session to restore.
			s.log.Info("removing the log of a session whose creation did not complete", "session", name)
			if err := s.store.Remove(file); err != nil {
				s.log.Warn("removing an empty log", "session", name, "err", err)
			}
			return nil
		}
		if r.Err == errEmptyLog {
			// The start record itself is corrupt (not torn): that is
			// damage, not an unfinished create, and the client must learn
			// of it (DATA_LOSS until deleted).
			r.Err = fmt.Errorf("the start record is damaged: %s", rep.Reason)
		}
		s.addBroken(r.key(), nil, r)
		return nil
	}
	if _, dup := s.sessions.LoadOrStore(sessionKey{ss.tenant, ss.id}, ss); dup {
		// Two logs hold the same session (one of them renamed or copied
		// by hand): keep the first, report the second as damage.
		ss.log.Close()
		r.Err = fmt.Errorf("the log %s holds session %s of tenant %q, which another log holds too", file, ss.name, ss.tenant)
		s.addBroken(sessionKey{"", file}, nil, r)
		return nil
	}
	if r.Truncated || r.Difference != nil || r.Completed {
		s.restoreMu.Lock()
		s.restored = append(s.restored, r)
		s.restoreMu.Unlock()
	}
	ss.restore, ss.restoreView = &r, r.status()
	ss.startTimer()
	s.count.Add(1)
	s.tenants.Reserve(ss.tenant, 0)
	ss.mu.Lock()
	ss.rearmLocked()
	ss.mu.Unlock()
	return nil
}

var errEmptyLog = errors.New("the log has no records")

// status is the report as the API shows it in Session.restore.
func (r *RestoreReport) status() *pb.RestoreStatus {
	st := &pb.RestoreStatus{
		Records:         r.Records,
		Truncated:       r.Truncated,
		Identical:       r.Err == nil && r.Difference == nil,
		FirstDifference: r.Difference,
		Unreadable:      r.Err != nil,
	}
	if r.Truncated {
		st.DroppedBytes = r.Recovery.DroppedBytes
		st.Damage = r.Recovery.Reason
	}
	if r.Err != nil {
		if st.Damage != "" {
			st.Damage += "; "
		}
		st.Damage += r.Err.Error()
	}
	return st
}

// rebuild re-runs the open log named file and returns the live session
// built from it, or nil and the reason in the report. The session's owner
// and ID come from the start record; r.Session and r.Tenant say which
// session the log holds (sessions/{file} and no owner when the start record
// is unreadable or does not agree with the file's name).
func (s *Service) rebuild(file string, lg store.Log, rep store.RecoveryReport) (*session, RestoreReport) {
	r := RestoreReport{Session: machine.SessionName(file), Log: file, Truncated: rep.Truncated, Recovery: rep}
	if rep.Truncated {
		s.log.Warn("session log had a damaged tail; truncated", "log", file,
			"records_kept", rep.Records, "dropped_bytes", rep.DroppedBytes, "reason", rep.Reason)
	}
	if lg.Len() == 0 {
		r.Err = errEmptyLog
		return nil, r
	}
	rr := newRerun()
	err := lg.Records(0, rr.Feed)
	r.Records = rr.Records
	var key sessionKey
	if rr.Start != nil {
		var kerr error
		if key, kerr = startKey(file, rr.Start); kerr != nil {
			r.Err = kerr
			s.log.Error("session log belongs to another session", "log", file, "start_name", rr.Start.GetName(), "tenant", rr.Start.GetTenant())
			return nil, r
		}
		r.Session, r.Tenant = machine.SessionName(key.id), key.tenant
	}
	if err == nil && rr.Start == nil {
		err = errors.New("the log has no start record")
	}
	if err != nil {
		r.Err = err
		s.log.Error("session log cannot be re-run; the session is kept as broken until deleted", "session", r.Session, "tenant", r.Tenant, "log", file, "err", err)
		return nil, r
	}
	createTime := rr.Start.CreateTime.AsTime()
	name := r.Session
	ss := &session{
		svc:        s,
		id:         key.id,
		name:       name,
		file:       file,
		tenant:     r.Tenant,
		createTime: createTime,
		opts:       rr.Start.Options,
		kind:       rr.Start.Kind,
		realtime:   rr.Start.Options.GetClockMode() == pb.ClockMode_CLOCK_MODE_REALTIME,
		m:          rr.Machine,
		log:        lg,
		next:       lg.Len(),
		mono:       time.Now(),
		base:       time.Since(createTime),
		expire:     startExpiration(rr.Start),
		createReq:  rr.Start.GetRequestId(),
	}
	if rr.Pending != nil {
		// The input is in the log but its output is not: append the
		// re-run's output so the log is whole again.
		ss.mu.Lock()
		err := ss.appendLocked(&pb.LogRecord{Index: ss.next, Time: durationpb.New(rr.Machine.Now()), Body: &pb.LogRecord_Output{Output: rr.Pending}})
		ss.mu.Unlock()
		if err != nil {
			r.Err = err
			return nil, r
		}
		r.Completed = true
		s.log.Info("session log ended with an input and no output; appended the re-run's output", "session", name, "input_index", rr.PendingIndex)
	}
	r.Difference, r.Differences = rr.Diff, rr.Diffs
	if rr.Diff != nil {
		s.log.Warn("session re-run differs from its log; continuing from the re-run's state",
			"session", name, "differences", rr.Diffs, "index", rr.Diff.Index, "field", rr.Diff.Field,
			"expected", rr.Diff.Expected, "actual", rr.Diff.Actual)
		s.metrics.restoreDifferences.Inc()
	}
	return ss, r
}

// key is the registry key of the session a report is about.
func (r *RestoreReport) key() sessionKey {
	return sessionKey{r.Tenant, strings.TrimPrefix(r.Session, machine.SessionsPrefix)}
}

// startKey returns the registry key of the session whose start record is
// st, read from the log named file, and checks that the file's name is
// the one that session's log has: logName(tenant, id), or, for a tenant's
// session, the plain ID (logs written before tenants had namespaces). A
// mismatch is damage: the log is not trusted to say whose it is.
func startKey(file string, st *pb.SessionStart) (sessionKey, error) {
	id, err := machine.ParseSessionName("start.name", st.GetName())
	if err != nil {
		return sessionKey{}, fmt.Errorf("the log %s: start record: %w", file, err)
	}
	t := st.GetTenant()
	if t != "" && !tenant.ValidName(t) {
		return sessionKey{}, fmt.Errorf("the log %s: start record: tenant %q is not a tenant name", file, t)
	}
	if file != logName(t, id) && !(t != "" && file == id) {
		if t == "" {
			return sessionKey{}, fmt.Errorf("the log %s says it belongs to %s (no tenant), whose log is %s", file, st.GetName(), logName(t, id))
		}
		return sessionKey{}, fmt.Errorf("the log %s says it belongs to %s of tenant %q, whose log is %s", file, st.GetName(), t, logName(t, id))
	}
	return sessionKey{t, id}, nil
}

// addBroken registers a session whose log cannot be re-run under key, so
// that its ID stays taken and clients learn why (DATA_LOSS) and can delete
// it.
func (s *Service) addBroken(key sessionKey, lg store.Log, r RestoreReport) {
	r.Session, r.Tenant = machine.SessionName(key.id), key.tenant
	s.log.Error("session cannot be restored; kept as broken until deleted", "session", r.Session, "tenant", r.Tenant, "log", r.Log, "err", r.Err)
	ss := &session{svc: s, id: key.id, name: r.Session, file: r.Log, tenant: r.Tenant, state: stateBroken, failure: r.Err, log: lg, restore: &r, restoreView: r.status()}
	if _, dup := s.sessions.LoadOrStore(key, ss); dup {
		// Only a hand-made data directory gets here (a log named like
		// another's session): the server's log names it.
		s.log.Error("a broken session's log is shadowed by another session of the same name; remove its file", "log", r.Log)
	} else {
		s.count.Add(1)
		s.tenants.Reserve(ss.tenant, 0)
	}
	s.restoreMu.Lock()
	s.restored = append(s.restored, r)
	s.restoreMu.Unlock()
}

// reloadLocked rebuilds a failed session from its log: the engine may have
// run ahead of what was written, and the log is the truth.
func (ss *session) reloadLocked() error {
	s := ss.svc
	if ss.log != nil {
		ss.log.Close()
		ss.log = nil
	}
	lg, rep, err := s.store.Open(ss.file)
	if errors.Is(err, store.ErrBusy) || errors.Is(err, store.ErrNotFound) {
		// Another replica holds the log now, or took it over and removed
		// it (the session was deleted there): this copy must go, or it
		// would linger in this replica's registry (and ListSessions).
		ss.handOverLocked(err)
		return err
	}
	if err != nil {
		return err
	}
	fresh, r := s.rebuild(ss.file, lg, rep)
	if fresh == nil {
		lg.Close()
		return r.Err
	}
	if fresh.id != ss.id || fresh.tenant != ss.tenant {
		fresh.log.Close()
		return fmt.Errorf("the log %s now holds session %s of tenant %q", ss.file, fresh.name, fresh.tenant)
	}
	ss.m, ss.log, ss.next = fresh.m, fresh.log, fresh.next
	ss.reqs, ss.reqKept = nil, 0 // read again from the log
	ss.state, ss.failure = stateOpen, nil
	ss.out = outQueue{}
	s.log.Info("session reloaded from its log", "session", ss.name, "records", ss.next)
	return nil
}
