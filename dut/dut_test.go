package dut

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tcpstated/tcpstated/internal/scripttest"
	"github.com/tcpstated/tcpstated/script"
	"github.com/tcpstated/tcpstated/script/duttarget"
)

// serve starts an engine stack with bug on a free port and returns a
// client connection to it.
func serve(t *testing.T, bug Bug) *grpc.ClientConn {
	t.Helper()
	return serveStack(t, NewEngine(bug))
}

// serveStack serves stack on a free port until the test ends, then closes
// it, and returns a client connection to it.
func serveStack(t *testing.T, stack interface {
	Stack
	Close()
}) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, lis, stack) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		stack.Close()
	})
	return conn
}

func runScript(t *testing.T, conn *grpc.ClientConn, name string, opts duttarget.Options) *script.Report {
	t.Helper()
	path := filepath.Join("..", "testdata", "scripts", name)
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := script.RunDUT(conn, src, script.Options{Name: name}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// attempts is how often a wall-clock script runs before its outcome
// counts as wrong: on a loaded machine (CI, two shared cores) a packet
// can miss a 20 ms window now and then.
const attempts = 3

// rubric are the project's scripts the DUT tests run: the handshake both
// ways, data, both closes, RST, TIME-WAIT and the peer's window, each
// fast enough for the wall clock.
var rubric = []string{
	"handshake-passive.pkt", "handshake-active.pkt", "handshake-active-blocking.pkt", "data-transfer.pkt",
	"close-passive.pkt", "close-active.pkt", "rst-established.pkt", "connection-refused.pkt",
	"time-wait-reack.pkt", "zero-window-probe.pkt", "window-right-edge.pkt",
}

// TestEngineAsDUT: the rubric passes against the engine served as a
// device under test on the wall clock. The rubric's lines are at least
// 100 ms apart, so judging with 50 ms rather than 20 ms still places every
// packet on its own line, and a gRPC round trip on two loaded cores (the
// whole of make test at once) no longer misses the window.
func TestEngineAsDUT(t *testing.T) {
	conn := serve(t, BugNone)
	names := rubric
	if env := os.Getenv("DUT_SCRIPTS"); env != "" {
		names = strings.Fields(env) // DUT_SCRIPTS="a.pkt b.pkt": try others
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			var rep *script.Report
			for range attempts {
				if rep = runScript(t, conn, name, duttarget.Options{MinTolerance: 50 * time.Millisecond}); rep.Passed {
					return
				}
			}
			var b strings.Builder
			_ = rep.WriteText(&b, true)
			t.Errorf("failed %d times; the last:\n%s", attempts, b.String())
		})
	}
}

// lineOf is the number of the nth line (from 1) of a script that starts
// with text.
// TestBuggyDUT: each broken rule is caught by the script about it, at the
// line where the rule applies, with what the stack sent.
func TestBuggyDUT(t *testing.T) {
	for _, tc := range []struct {
		bug    Bug
		script string
		line   string // the failing line starts with it
		nth    int
		reason string // the failure says
	}{
		{BugWrongAck, "handshake-passive.pkt", "+0    > S. 0:0(0) ack 1", 1, "ack: expected 1, got 2"},
		{BugIgnoreWindow, "zero-window-probe.pkt", "1.400 > . 1:2(1)", 1, "before this line's window"},
		{BugNoTimeWait, "time-wait-reack.pkt", "+0    > . 2:2(0) ack 2", 2, "flags: expected ., got R"},
	} {
		t.Run(tc.bug.String(), func(t *testing.T) {
			conn := serve(t, tc.bug)
			want := scripttest.Line(t, filepath.Join("..", "testdata", "scripts"), tc.script, tc.line, tc.nth)
			var rep *script.Report
			for range attempts {
				rep = runScript(t, conn, tc.script, duttarget.Options{})
				if !rep.Passed && strings.HasPrefix(rep.Failure, fmt.Sprintf("line %d: ", want)) && strings.Contains(rep.Failure, tc.reason) {
					return
				}
			}
			t.Errorf("want a failure at line %d saying %q; the last of %d runs:\n%s", want, tc.reason, attempts, rep.Text())
		})
	}
}

// TestBadAgents: an agent that misbehaves fails each script clearly, and
// the run goes on to the next script.
func TestBadAgents(t *testing.T) {
	// A loaded host may deliver the agent's answer after a line's window
	// closes; a wide tolerance and a few attempts keep the outcome about the
	// agent, not the scheduler.
	opts := duttarget.Options{CallTimeout: 300 * time.Millisecond, MinTolerance: 250 * time.Millisecond}
	for _, tc := range []struct {
		bug    Bug
		script string
		reason string
	}{
		{BugHang, "handshake-passive.pkt", "line 8: the agent did not answer socket within 300ms"},
		{BugGarbage, "handshake-passive.pkt", `line 8: the agent answered socket with -1 and errno "EGARBAGE", which is not an errno name`},
		{BugCloseStream, "handshake-passive.pkt", "line 15: the target refused the packet: the agent ended its Packets stream"},
		{BugCloseStream, "handshake-active.pkt", "the agent ended its Packets stream"},
		// Line 15 or 16: the SYN-ACK may come back before the runner moves on.
		{BugMalformed, "handshake-passive.pkt", ": the target emitted a packet that does not decode (45 00 00 2c 00 00 40): ipv4 header length"},
	} {
		t.Run(tc.bug.String()+"/"+tc.script, func(t *testing.T) {
			conn := serve(t, tc.bug)
			for run := range 2 { // the second run shows the agent was reset and the run went on
				var rep *script.Report
				for range attempts {
					start := time.Now()
					rep = runScript(t, conn, tc.script, opts)
					if d := time.Since(start); d > 5*time.Second {
						t.Errorf("run %d took %s", run, d)
					}
					if !rep.Passed && strings.Contains(rep.Failure, tc.reason) {
						break
					}
				}
				if rep.Passed || !strings.Contains(rep.Failure, tc.reason) {
					t.Errorf("run %d: want a failure saying %q; the last of %d attempts:\n%s", run, tc.reason, attempts, rep.Text())
				}
			}
		})
	}
}

// TestScriptRunTarget: tcpstated script run --target=dut:HOST:PORT runs
// scripts against an agent, with the run's exit codes: 0 all passed, 1 a
// script failed (and the next still ran), 2 a bad --target.
func TestScriptRunTarget(t *testing.T) {
	good := serve(t, BugNone)
	bad := serve(t, BugWrongAck)
	file := filepath.Join("..", "testdata", "scripts", "handshake-passive.pkt")
	for _, tc := range []struct {
		target string
		status int
		out    string
	}{
		{"dut:" + good.Target(), 0, "handshake-passive.pkt: PASS"},
		{"dut:" + bad.Target(), 1, "ack: expected 1, got 2"},
		{"dut:nowhere", 2, "want dut:HOST:PORT"},
		{"kernel", 2, "want engine, linux, both or dut:HOST:PORT"},
	} {
		var stdout, stderr strings.Builder
		status := -1
		for range attempts {
			stdout.Reset()
			stderr.Reset()
			if status = script.Main([]string{"run", "--target=" + tc.target, file, file}, &stdout, &stderr); status == tc.status {
				break
			}
		}
		got := stdout.String() + stderr.String()
		if status != tc.status || !strings.Contains(got, tc.out) {
			t.Errorf("--target=%s: status %d, want %d with %q:\n%s", tc.target, status, tc.status, tc.out, got)
		}
		if tc.status == 1 && strings.Count(got, "handshake-passive.pkt: FAIL") != 2 {
			t.Errorf("--target=%s: want both scripts reported:\n%s", tc.target, got)
		}
	}
}
