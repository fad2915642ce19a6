package script

import (
	"errors"
	"fmt"

	"github.com/tcpstated/tcpstated/script/linuxtarget"
)

// Targets a script can run against (script run --target).
const (
	TargetEngine = "engine" // the tcpstated engine on a virtual clock (the default)
	TargetLinux  = "linux"  // the machine's Linux kernel in a network namespace of its own
	TargetBoth   = "both"   // both, and where they differ
)

// ParseTarget checks a --target value; "" is the engine.
func ParseTarget(s string) (string, error) {
	switch s {
	case "", TargetEngine:
		return TargetEngine, nil
	case TargetLinux, TargetBoth:
		return s, nil
	}
	return "", fmt.Errorf("unknown target %q: want engine, linux or both", s)
}

// ErrKernelUnavailable wraps the reason the kernel target cannot run on
// this machine (not root, no TUN device).
var ErrKernelUnavailable = linuxtarget.ErrUnavailable

// ErrInterrupted is the error of a kernel run that Options.Stop ended.
var ErrInterrupted = errors.New("interrupted")

// RunLinux parses src and runs it against the machine's Linux kernel in a
// network namespace made for the run, which is removed before it returns,
// whatever happened. Closing opts.Stop interrupts the run (its report is
// returned with ErrInterrupted). A syntax error is a *ParseError; a
// machine that cannot run it, an error wrapping ErrKernelUnavailable.
func RunLinux(src []byte, opts Options) (*Report, error) {
	// The kernel is Linux whatever the engine's profile: its #ifdef Linux
	// lines are always in.
	s, err := ParseDefines(opts.Name, src, append(opts.defines(src), "Linux"))
	if err != nil {
		return nil, err
	}
	if rep := s.headerError(opts); rep != nil {
		return rep, nil
	}
	s.hdr.late = max(opts.LateTolerance, 0)
	setup, err := s.Setup()
	if err != nil {
		return nil, err
	}
	t, err := linuxtarget.New(setup)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	done, stopped := make(chan struct{}), make(chan bool, 1)
	go func() {
		select {
		case <-opts.Stop:
			t.Interrupt()
			stopped <- true
		case <-done:
			stopped <- false
		}
	}()
	rep := func() *Report { defer close(done); return RunTarget(t, s, opts) }()
	rep.Target = TargetLinux
	if <-stopped {
		rep.Passed = false
		rep.Failure = "interrupted: " + rep.Failure
		return rep, ErrInterrupted
	}
	return rep, nil
}
