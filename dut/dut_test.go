package dut

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tcpstated/tcpstated/script"
	"github.com/tcpstated/tcpstated/script/duttarget"
)

// serve starts an engine stack with bug on a free port and returns a
// client connection to it.
func serve(t *testing.T, bug Bug) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine(bug)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, lis, e) }()
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
		e.Close()
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
// device under test on the wall clock.
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
				if rep = runScript(t, conn, name, duttarget.Options{}); rep.Passed {
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
func lineOf(t *testing.T, name, text string, nth int) int {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "testdata", "scripts", name))
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(src), "\n") {
		if strings.HasPrefix(l, text) {
			if nth--; nth == 0 {
				return i + 1
			}
		}
	}
	t.Fatalf("%s has no line %q", name, text)
	return 0
}

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
			want := lineOf(t, tc.script, tc.line, tc.nth)
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
