package script

import (
	"fmt"
	"net"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tcpstated/tcpstated/script/duttarget"
)

// targetSpec is the --target flag: the stack scripts run against.
type targetSpec struct {
	kind string // "engine" or "dut"
	addr string // dut: HOST:PORT of the agent
}

// parseTarget reads --target: engine (the default), or dut:HOST:PORT.
func parseTarget(v string) (targetSpec, error) {
	switch {
	case v == "" || v == "engine":
		return targetSpec{kind: "engine"}, nil
	case strings.HasPrefix(v, "dut:"):
		addr := strings.TrimPrefix(v, "dut:")
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return targetSpec{}, fmt.Errorf("--target=%s: want dut:HOST:PORT: %v", v, err)
		}
		return targetSpec{kind: "dut", addr: addr}, nil
	}
	return targetSpec{}, fmt.Errorf("--target=%s: want engine or dut:HOST:PORT", v)
}

// runner returns how to run one script file on the target, and a
// function that releases what it holds.
func (ts targetSpec) runner() (func(src []byte, opts Options) (*Report, error), func(), error) {
	if ts.kind != "dut" {
		return Run, func() {}, nil
	}
	conn, err := grpc.NewClient(ts.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, fmt.Errorf("--target=dut:%s: %v", ts.addr, err)
	}
	return func(src []byte, opts Options) (*Report, error) {
		return RunDUT(conn, src, opts, duttarget.Options{})
	}, func() { _ = conn.Close() }, nil
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
