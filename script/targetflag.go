package script

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tcpstated/tcpstated/script/duttarget"
)

// targetSpec is the --target flag: the stack scripts run against.
type targetSpec struct {
	kind string // TargetEngine, TargetLinux, TargetBoth or "dut"
	addr string // dut: HOST:PORT of the agent
}

// parseTarget reads --target: engine (the default), linux, both, or
// dut:HOST:PORT.
func parseTarget(v string) (targetSpec, error) {
	if addr, ok := strings.CutPrefix(v, "dut:"); ok {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return targetSpec{}, fmt.Errorf("--target=%s: want dut:HOST:PORT: %v", v, err)
		}
		return targetSpec{kind: "dut", addr: addr}, nil
	}
	kind, err := ParseTarget(v)
	if err != nil {
		return targetSpec{}, fmt.Errorf("--target=%s: want engine, linux, both or dut:HOST:PORT", v)
	}
	return targetSpec{kind: kind}, nil
}

// runner returns how to run one script file on the target, and a
// function that releases what it holds. A wall-clock run (every target
// but the engine) is interrupted on SIGINT, SIGTERM or after timeout
// (when not 0), so that a kernel run removes its namespace and a DUT is
// reset before the process exits.
func (ts targetSpec) runner(timeout time.Duration) (func(src []byte, opts Options) (*Report, error), func(), error) {
	var run func(src []byte, opts Options) (*Report, error)
	release := func() {}
	switch ts.kind {
	case TargetEngine:
		return Run, release, nil
	case TargetLinux:
		run = RunLinux
	case TargetBoth:
		run = RunBoth
	case "dut":
		conn, err := grpc.NewClient(ts.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, nil, fmt.Errorf("--target=dut:%s: %v", ts.addr, err)
		}
		run = func(src []byte, opts Options) (*Report, error) {
			return RunDUT(conn, src, opts, duttarget.Options{})
		}
		release = func() { _ = conn.Close() }
	}
	return func(src []byte, opts Options) (*Report, error) {
		ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer cancel()
		if timeout > 0 {
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		opts.Stop = ctx.Done()
		return run(src, opts)
	}, release, nil
}

// RunDUT parses src and runs it against the DUT agent on conn, reset
// before and after. An agent that cannot be reset fails the script (the
// report says why), so a run of many scripts goes on to the next.
func RunDUT(conn grpc.ClientConnInterface, src []byte, opts Options, dopts duttarget.Options) (*Report, error) {
	s, err := ParseDefines(opts.Name, src, opts.defines(src))
	if err != nil {
		return nil, err
	}
	if rep := s.headerError(opts); rep != nil {
		return rep, nil
	}
	s.hdr.tolerance = duttarget.Tolerance(s.hdr.tolerance, dopts)
	setup, _ := s.Setup()
	t, err := duttarget.New(conn, setup, dopts)
	if err != nil {
		name := opts.Name
		if name == "" {
			name = s.Name
		}
		mode := opts.Compare
		if mode == CompareAuto {
			mode = s.Compare
		}
		if mode == CompareAuto {
			mode = CompareSemantic
		}
		return &Report{Script: name, Session: opts.Session, Compare: mode.String(),
			Failure: "the script did not start: " + err.Error(), Lines: []LineResult{}}, nil
	}
	defer t.Close()
	return RunTarget(t, s, opts), nil
}
