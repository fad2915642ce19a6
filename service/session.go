package service

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tcpstated/tcpstated/fsm"
	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"

	"github.com/tcpstated/tcpstated/store"

	"github.com/tcpstated/tcpstated/service/logrecord"

	"github.com/tcpstated/tcpstated/service/machine"
)

// A session is one engine, one replay log and one clock behind one mutex.
//
// Every change goes through exec: under the lock, the input is applied to
// the engine; if the engine refuses it nothing changed and nothing is
// written; otherwise the input record and the output record are appended
// with one write (AppendBatch: written, not yet synced), the outputs are handed to the
// outbound queue and watchers, and the lock is released. Only then does the
// call wait until its records are durable (group commit with every other
// session), and only then does it reply. Records are made durable in index
// order, so waiting for the last one covers the whole call.
type session struct {
	svc        *Service
	id, name   string
	file       string // the log's name in the store (logName)
	tenant     string // the owner (tenant.go); "" without authentication
	createTime time.Time
	opts       *pb.SessionOptions // effective options, shown to clients
	kind       pb.SessionKind
	realtime   bool

	mu   sync.Mutex
	m    *machine.Machine
	log  store.Log
	next uint64 // index of the next record (the log's length)
	pend pendingRecords
	// batching: stepLocked leaves its records in pend for the caller to
	// write with those of later steps (flushLocked) before it releases the
	// lock (execPackets: one write per stream message).
	batching bool
	tally    stepTally // the batch's steps, counted by flushEndLocked
	enc      recordEncoder
	state    sessionState
	failure  error // why the session is failed or broken
	restore  *RestoreReport
	// restoreView is restore as the API shows it (Session.restore); nil
	// for a session this process created.
	restoreView *pb.RestoreStatus
	// travel keeps snapshots for GetEndpoint's at_record (timetravel.go).
	travel timeTravel
	// script is the outcome of a SCRIPT session's script, once it ran.
	script *pb.ScriptResult

	// REALTIME clock: the session clock is base plus the monotonic time
	// since mono, never behind the engine's clock.
	base     time.Duration
	mono     time.Time
	timer    *time.Timer
	timerAt  time.Duration
	timerSet bool

	out       outQueue
	watchers  []*watcher
	recNotify chan struct{} // closed when records are appended; nil when nobody waits
	followers int           // StreamRecords streams following the log
	// tap, when set, sees each batch of outputs stepLocked drains (a
	// script run collects them for its runner: api_script.go).
	tap func(*fsm.Ready)

	// createReq is the request_id of the CreateSession call that made it.
	createReq string
	// expire is when the session expires (expiry.go).
	expire expiration

	// reqs are the request IDs seen (requestid.go); nil until read from
	// the log.
	reqs        map[string]*reqEntry
	reqKept     int // entries holding a response
	reqInflight int // first calls running
}

type sessionState uint8

const (
	stateOpen     sessionState = iota
	stateFailed                // a log write failed: reloaded from the log on the next call
	stateBroken                // the log could not be re-run: only Get, List and Delete work
	stateDeleted               // deleted: every call is NOT_FOUND
	stateClosed                // the service is shutting down
	stateMoved                 // another replica took the session over (replica.go)
	statePanicked              // the engine panicked (panic.go): failed until a restart
)

// usableLocked returns why the session cannot take a call, if it cannot.
func (s *session) usableLocked() error {
	switch s.state {
	case stateOpen:
		return nil
	case stateFailed:
		if err := s.reloadLocked(); err != nil {
			return reasonf(kindUnavailable, "SESSION_FAILED", "session %s: its log failed (%v) and could not be reloaded: %v", s.name, s.failure, err)
		}
		return nil
	case stateBroken:
		return errorf(kindDataLoss, "session %s: its log cannot be re-run: %v (delete the session to discard it)", s.name, s.failure)
	case stateDeleted:
		return sessionNotFound(s.name)
	case statePanicked:
		return reasonf(kindPrecondition, "SESSION_PANICKED", "session %s failed: the engine panicked on an earlier call (%v); a server restart restores it from its log, or delete it", s.name, s.failure)
	case stateMoved:
		return reasonf(kindUnavailable, "SESSION_MOVED", "session %s moved to another replica (%v); retry the call", s.name, s.failure)
	}
	return reasonf(kindUnavailable, "SHUTTING_DOWN", "session %s: the server is shutting down", s.name)
}

// exec applies one input, logs it and waits until it is durable. out, when
// not nil, receives the API view of the outputs; then, when not nil, runs
// under the lock after a successful step (to take a consistent view).
func (s *session) exec(in *pb.Input, out *pb.Outputs, then func(res *pb.CallResult)) (*pb.CallResult, error) {
	s.mu.Lock()
	res, err := s.execLocked(in, out, false)
	if err == nil && then != nil {
		then(res)
	}
	last := s.next
	s.rearmLocked()
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return res, s.waitDurable(last)
}

// execLocked is exec's work under the lock, without the wait.
func (s *session) execLocked(in *pb.Input, out *pb.Outputs, rawOnly bool) (*pb.CallResult, error) {
	if err := s.writableLocked(); err != nil {
		return nil, err
	}
	if err := s.catchUpLocked(); err != nil {
		return nil, err
	}
	return s.stepLocked(in, out, rawOnly)
}

// writableLocked checks the session can take a call that changes it.
func (s *session) writableLocked() error {
	if err := s.usableLocked(); err != nil {
		return err
	}
	if max := s.svc.cfg.Limits.MaxLogBytes; s.log.Size() >= max {
		return exhaustedf("session %s: its log has reached the limit of %d bytes; no further changes are accepted", s.name, max)
	}
	return nil
}

// stepLocked applies one input and logs it with its outputs. An input the
// engine refuses changes nothing and is not logged. Calls that changed
// nothing (a receive with nothing to read, a clock advance to the current
// time) are not logged either.
func (s *session) stepLocked(in *pb.Input, out *pb.Outputs, rawOnly bool) (*pb.CallResult, error) {
	m := s.m
	t0 := m.Now()
	res, err := s.applyLocked(in)
	rd := &m.Ready
	if err != nil {
		return nil, err
	}
	m.Observe(rd)
	if s.tap != nil {
		s.tap(rd)
	}
	if unchanged(in, res, rd, t0) {
		return res, nil
	}
	idx := s.next + uint64(len(s.pend.spans))
	// The digest is the machine's own, reused: the record encoding, the
	// response and the outbound queue take its slices and messages, never
	// the digest itself.
	d := &m.Live
	machine.ClearDigest(d)
	m.FillDigest(d, rd, idx, res)
	if err := s.appendPairLocked(idx, t0, in, d); err != nil {
		return nil, s.failLocked(err)
	}
	// Watchers are handed the outputs below: write them first, as without
	// batching.
	if !s.batching || len(s.watchers) > 0 {
		if err := s.flushLocked(); err != nil {
			return nil, s.failLocked(err)
		}
	}
	if out != nil {
		m.AppendOutputs(out, rd, d, rawOnly)
	}
	s.dispatchLocked(in, t0, rd, d)
	if s.batching {
		s.tally.add(in, len(d.Packets))
	} else {
		s.svc.metrics.observeStep(in, len(d.Packets))
	}
	return res, nil
}

// unchanged reports whether an input left the engine as it was.
func unchanged(in *pb.Input, res *pb.CallResult, rd *fsm.Ready, t0 time.Duration) bool {
	if !rd.Empty() {
		return false
	}
	switch k := in.Kind.(type) {
	case *pb.Input_Receive:
		return len(res.GetData()) == 0
	case *pb.Input_Send:
		return res.GetCount() == 0
	case *pb.Input_AdvanceClock:
		return k.AdvanceClock.GetTo().AsDuration() <= t0
	}
	return false
}

// appendPairLocked encodes an input record and its output record into the
// pending batch (flushLocked writes it). The record messages are the
// session's own, reused for every pair.
func (s *session) appendPairLocked(idx uint64, t0 time.Duration, in *pb.Input, d *pb.OutputDigest) error {
	r := &s.enc
	defer func() { r.in.Input, r.out.Output, r.rec.Body = nil, nil, nil }()
	r.rec.Index, r.rec.Time, r.rec.Body, r.in.Input = idx, setDuration(&r.time, t0), &r.in, in
	if err := s.stageLocked(&r.rec); err != nil {
		return err
	}
	r.rec.Index, r.rec.Time, r.rec.Body, r.out.Output = idx+1, setDuration(&r.time, s.m.Now()), &r.out, d
	// The digest names endpoints and states with the machine's strings.
	return s.stageWithLocked(&r.rec, s.m.NamesValid())
}

// recordEncoder holds the messages a session encodes its records with.
type recordEncoder struct {
	rec   pb.LogRecord
	in    pb.LogRecord_Input
	out   pb.LogRecord_Output
	time  durationpb.Duration
	codec logrecord.Encoder
}

func setDuration(p *durationpb.Duration, d time.Duration) *durationpb.Duration {
	p.Seconds, p.Nanos = int64(d/time.Second), int32(d%time.Second)
	return p
}

// pendingRecords are encoded records not yet written: buf holds them end
// to end, record i at spans[i] of buf, each in its frame when the log is a
// store.FramedLog, which then writes buf as it is; recs is the slice
// AppendBatch takes from any other log.
type pendingRecords struct {
	buf   []byte
	spans []span
	recs  [][]byte
}

// span is where a record lies in pendingRecords.buf.
type span struct{ start, end int }

// reset empties the batch, keeping small buffers for the next one.
func (p *pendingRecords) reset() {
	if cap(p.buf) > 64<<10 {
		p.buf = nil
	}
	if cap(p.spans) > 1024 {
		p.spans, p.recs = nil, nil
	}
	clear(p.recs)
	p.buf, p.spans, p.recs = p.buf[:0], p.spans[:0], p.recs[:0]
}

// appendLocked encodes and writes one record (not yet durable).
func (s *session) appendLocked(rec *pb.LogRecord) error {
	if err := s.stageLocked(rec); err != nil {
		return err
	}
	return s.flushLocked()
}

// stageLocked encodes one record into the pending batch; its index must be
// the next one after those already pending.
func (s *session) stageLocked(rec *pb.LogRecord) error { return s.stageWithLocked(rec, false) }

// stageWithLocked is stageLocked, with logrecord.AppendTrusted when
// trusted.
func (s *session) stageWithLocked(rec *pb.LogRecord, trusted bool) error {
	p := &s.pend
	if want := s.next + uint64(len(p.spans)); rec.Index != want {
		return fmt.Errorf("log %s: record %d staged, expected %d", s.file, rec.Index, want)
	}
	fl, framed := s.log.(store.FramedLog)
	frame := len(p.buf)
	b, start := p.buf, frame
	if framed {
		b, start = fl.BeginFrame(b)
	}
	var err error
	if trusted {
		b, err = s.enc.codec.AppendTrusted(b, rec)
	} else {
		b, err = s.enc.codec.Append(b, rec)
	}
	if err != nil {
		p.buf = b[:frame]
		return fmt.Errorf("encoding record %d: %w", rec.Index, err)
	}
	if len(b)-start > store.MaxRecordSize {
		// Refused as AppendAsync refuses it, after the records before it
		// are written.
		p.buf = b[:frame]
		if err := s.flushLocked(); err != nil {
			return err
		}
		return store.ErrTooLarge
	}
	p.spans = append(p.spans, span{start, len(b)})
	if framed {
		b = fl.EndFrame(b, start)
	}
	p.buf = b
	return nil
}

// flushLocked writes the pending records with one write (not yet durable)
// and advances next past them.
func (s *session) flushLocked() error {
	p := &s.pend
	n := len(p.spans)
	if n == 0 {
		return nil
	}
	want := s.next
	var first, last uint64
	var err error
	if fl, ok := s.log.(store.FramedLog); ok {
		first, last, err = fl.AppendFramed(p.buf, n)
	} else {
		for _, r := range p.spans {
			p.recs = append(p.recs, p.buf[r.start:r.end])
		}
		first, last, err = s.log.AppendBatch(p.recs)
	}
	p.reset()
	if err != nil {
		return err
	}
	if first != want || last != want+uint64(n)-1 {
		return fmt.Errorf("log %s: records written at indexes %d..%d, expected %d..%d", s.file, first, last, want, want+uint64(n)-1)
	}
	s.next = last + 1
	s.svc.metrics.logAppends.Add(float64(n))
	if s.recNotify != nil {
		close(s.recNotify)
		s.recNotify = nil
	}
	return nil
}

// failLocked marks the session failed after a log write error: the engine
// may now be ahead of its log, so the next call reloads it from the log.
func (s *session) failLocked(err error) error {
	if errors.Is(err, store.ErrClosed) && (s.state == stateDeleted || s.state == stateClosed) {
		return s.usableLocked()
	}
	s.pend.reset() // never written: the reload rebuilds from the log
	s.state = stateFailed
	s.failure = err
	s.svc.log.Error("session log write failed; the session will be reloaded from its log", "session", s.name, "err", err)
	return reasonf(kindUnavailable, "SESSION_FAILED", "session %s: writing its log failed: %v", s.name, err)
}

// waitDurable waits until the first n records are durable.
func (s *session) waitDurable(n uint64) error {
	if n == 0 {
		return nil
	}
	start := time.Now()
	err := s.log.Durable(n - 1)
	s.svc.metrics.durableWait.Observe(time.Since(start).Seconds())
	if err == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if errors.Is(err, store.ErrClosed) && (s.state == stateDeleted || s.state == stateClosed) {
		// Closing the log synced it first (except with fsync=never, where
		// nothing is promised).
		return nil
	}
	if s.state == stateOpen {
		return s.failLocked(err)
	}
	return reasonf(kindUnavailable, "SESSION_FAILED", "session %s: its log failed: %v", s.name, err)
}

// catchUpLocked moves a REALTIME session's engine to the wall clock before
// an input, logging the advance, when a timer is due or the clock has moved
// by at least the configured resolution.
func (s *session) catchUpLocked() error {
	if !s.realtime {
		return nil
	}
	now, cur := s.wallNow(), s.m.Now()
	if now <= cur {
		return nil
	}
	dl, armed := s.m.Engine.NextDeadline()
	if !(armed && dl <= now) && now-cur < s.svc.cfg.RealtimeResolution {
		return nil
	}
	_, err := s.stepLocked(advanceInput(now), nil, false)
	return err
}

func advanceInput(to time.Duration) *pb.Input {
	return &pb.Input{Kind: &pb.Input_AdvanceClock{AdvanceClock: &pb.AdvanceClockInput{To: durationpb.New(to)}}}
}

// wallNow is a REALTIME session's clock.
func (s *session) wallNow() time.Duration {
	now := s.base + time.Since(s.mono)
	if cur := s.m.Now(); now < cur {
		return cur
	}
	return now
}

// rearmLocked sets a REALTIME session's timer to the engine's next deadline.
func (s *session) rearmLocked() {
	if !s.realtime || s.timer == nil {
		return
	}
	dl, ok := s.m.Engine.NextDeadline()
	if !ok || s.state != stateOpen {
		if s.timerSet {
			s.timer.Stop()
			s.timerSet = false
		}
		return
	}
	if s.timerSet && s.timerAt == dl {
		return
	}
	wait := dl - s.wallNow()
	if wait < 0 {
		wait = 0
	}
	s.timer.Reset(wait)
	s.timerAt, s.timerSet = dl, true
}

// onTimer fires a REALTIME session's due timers (the time.AfterFunc body).
func (s *session) onTimer() {
	s.mu.Lock()
	s.timerSet = false
	if s.state != stateOpen {
		s.mu.Unlock()
		return
	}
	before := s.next
	err := s.catchUpLocked()
	last := s.next
	s.rearmLocked()
	s.mu.Unlock()
	if err != nil {
		s.svc.log.Error("firing timers failed", "session", s.name, "err", err)
		return
	}
	if last > before {
		// Nobody waits for these records; make them durable promptly anyway.
		if err := s.waitDurable(last); err != nil {
			s.svc.log.Error("syncing timer records failed", "session", s.name, "err", err)
		}
	}
}

// view returns the API's Session.
func (s *session) viewLocked() *pb.Session {
	v := &pb.Session{
		Name:       s.name,
		Options:    s.opts,
		CreateTime: timestamppb.New(s.createTime),
		Restore:    s.restoreView,
		Kind:       s.kind,
		Script:     s.script,
	}
	s.expire.setView(v)
	if v.Kind == pb.SessionKind_SESSION_KIND_UNSPECIFIED {
		v.Kind = pb.SessionKind_SESSION_KIND_INTERACTIVE // a log from before kinds
	}
	if s.m == nil {
		return v
	}
	v.Clock = durationpb.New(s.m.Now())
	v.EndpointCount = uint32(len(s.m.Engine.Endpoints()))
	v.RecordCount = s.next
	if dl, ok := s.m.Engine.NextDeadline(); ok {
		v.NextDeadline = durationpb.New(dl)
	}
	v.OutboundQueueLength = uint32(s.out.len())
	v.OutboundDropped = s.out.dropped
	return v
}

// closeLocked stops the session (deleted or server shutdown): timers stop,
// watchers end, and the log is closed (synced unless fsync=never).
func (s *session) closeLocked(st sessionState) error {
	if s.state == stateDeleted || s.state == stateClosed {
		return nil
	}
	s.state = st
	if s.timer != nil {
		s.timer.Stop()
		s.timerSet = false
	}
	for _, w := range s.watchers {
		w.end(nil)
	}
	s.watchers = nil
	if s.recNotify != nil {
		close(s.recNotify)
		s.recNotify = nil
	}
	if s.log == nil {
		return nil
	}
	err := s.log.Close()
	if errors.Is(err, store.ErrClosed) {
		err = nil
	}
	return err
}

// recordsChanged returns a channel closed at the next append (or close).
func (s *session) recordsChangedLocked() <-chan struct{} {
	if s.recNotify == nil {
		s.recNotify = make(chan struct{})
	}
	return s.recNotify
}
