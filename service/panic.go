package service

import (
	"bytes"
	"fmt"
	"runtime/debug"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// A panic in the engine while it applies one session's input fails that
// session only: the panic is recovered under the session lock, the call
// gets INTERNAL (SESSION_PANICKED), every later call on the session gets
// FAILED_PRECONDITION (SESSION_PANICKED), and the other sessions keep
// serving. The input that panicked was not logged (an input is logged
// after the engine took it), so a restart restores the session from its
// log as it was before the call. Panics elsewhere in a call are recovered
// by the server's recovery interceptor (cmd/tcpstated).

// applyLocked applies in to the session's engine, recovering a panic.
func (s *session) applyLocked(in *pb.Input) (res *pb.CallResult, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = s.panickedLocked(r, Stack())
		}
	}()
	if h := s.svc.cfg.PanicHook; h != nil {
		h(s.id, in)
	}
	m := s.m
	res, err = m.Apply(in)
	m.Ready = m.Engine.Ready()
	return res, err
}

// Stack is the calling goroutine's stack for a log line, without the
// "goroutine N [running]:" header (which reads as a crash to tools that
// scan logs for one: the panic was recovered).
func Stack() string {
	s := debug.Stack()
	if i := bytes.IndexByte(s, '\n'); i >= 0 && bytes.HasPrefix(s, []byte("goroutine ")) {
		s = s[i+1:]
	}
	return string(s)
}

// panickedLocked marks the session failed by a panic.
func (s *session) panickedLocked(r any, stack string) error {
	s.pend.reset()
	s.state = statePanicked
	s.failure = fmt.Errorf("panic: %v", r)
	s.svc.metrics.panics.Inc()
	s.svc.log.Error("the engine panicked; the session is failed until the server restarts and restores it from its log",
		"session", s.name, "panic", fmt.Sprint(r), "stack", stack)
	return reasonf(kindInternal, "SESSION_PANICKED", "session %s: the engine panicked on this call (%v); the session is failed until the server restarts and restores it from its log", s.name, r)
}
