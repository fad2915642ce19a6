package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/tcpstated/tcpstated/service"
	"github.com/tcpstated/tcpstated/store"
)

func TestMain(m *testing.M) {
	if bug := os.Getenv("GRADER_TEST_AGENT"); bug != "" {
		os.Exit(serveAgent(bug)) // the test binary as an agent (rubric_test.go)
	}
	// A program built with -race sleeps a second at exit unless told not to.
	os.Setenv("GORACE", "atexit_sleep_ms=0")
	os.Exit(m.Run())
}

// buildFlags are the flags the peer is built with: -race when the tests
// run with it (race_test.go), so the build reuses the test's compiled
// packages.
var buildFlags []string

// server starts tcpstated's service on a loopback port.
func server(t *testing.T) string {
	t.Helper()
	svc, err := service.Open(service.Config{DataDir: t.TempDir(), Fsync: store.FsyncNever,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	svc.Register(gs)
	go gs.Serve(lis)
	t.Cleanup(func() { gs.Stop(); svc.Close() })
	return lis.Addr().String()
}

// buildPeer builds the model answer, examples/grader/peer.
func buildPeer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "peer")
	cmd := exec.Command("go", append(append([]string{"build"}, buildFlags...), "-o", bin, "./peer")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the peer: %v\n%s", err, out)
	}
	return bin
}

// TestGraderJudgesPeers grades the model peer and three buggy ones, each
// run as a program the way a student's would be: the verdict passes only
// the correct one, and each bug fails the checks it breaks with the
// engine's explanation of the segment it got wrong.
func TestGraderJudgesPeers(t *testing.T) {
	addr := server(t)
	peer := buildPeer(t)
	tests := []struct {
		name, bug  string
		passed     bool
		failed     []string // the checks that fail
		codes      []string // rejected segments' codes, in order
		reasonHas  string   // in the first failing check's reason
		wantStates []string
	}{
		{"a correct peer passes", "", true, nil, nil, "",
			[]string{"SYN-RECEIVED", "ESTABLISHED", "CLOSE-WAIT", "LAST-ACK", "CLOSED"}},
		{"a wrong ACK number fails the handshake", "ack", false, []string{"handshake", "data", "close", "every segment taken"},
			[]string{"SYN_RECEIVED_BAD_ACK_SENT_RST", "SYN_RECEIVED_BAD_ACK_SENT_RST", "SYN_RECEIVED_BAD_ACK_SENT_RST"},
			"SEG.ACK=5000 is not in (SND.UNA, SND.NXT]", []string{"SYN-RECEIVED"}},
		{"data outside the window fails the data", "window", false, []string{"data", "close", "every segment taken"},
			[]string{"UNACCEPTABLE_SENT_ACK", "DATA_OUT_OF_ORDER", "FIN_OUT_OF_ORDER"},
			"outside the receive window", []string{"SYN-RECEIVED", "ESTABLISHED"}},
		{"a missing ACK of the FIN fails the close", "fin", false, []string{"close"}, nil,
			"stayed in LAST-ACK", []string{"SYN-RECEIVED", "ESTABLISHED", "CLOSE-WAIT", "LAST-ACK"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out, errOut bytes.Buffer
			// The buggy peers wait in vain for segments that never come:
			// a second is long enough for those that do.
			args := []string{"--grpc", addr, "--timeout", "60s", "--", peer, "--wait=1s"}
			if tt.bug != "" {
				args = append(args, "--bug="+tt.bug)
			}
			t0 := time.Now()
			code := run(args, &out, &errOut)
			t.Logf("graded in %v", time.Since(t0))
			if want := map[bool]int{true: 0, false: 1}[tt.passed]; code != want {
				t.Fatalf("exit %d, want %d; stderr %s\n%s", code, want, errOut.String(), out.String())
			}
			var v Verdict
			if err := json.Unmarshal(out.Bytes(), &v); err != nil {
				t.Fatalf("verdict: %v\n%s", err, out.String())
			}
			if v.Passed != tt.passed || !slices.Equal(v.States, tt.wantStates) || !strings.HasPrefix(v.Session, "sessions/") {
				t.Fatalf("verdict: passed %t states %v session %q\n%s", v.Passed, v.States, v.Session, out.String())
			}
			var failed []string
			for _, c := range v.Checks {
				if c.Reason == "" {
					t.Errorf("check %s has no reason", c.Name)
				}
				if !c.Passed {
					failed = append(failed, c.Name)
				}
			}
			if !slices.Equal(failed, tt.failed) {
				t.Errorf("failed checks %v, want %v\n%s", failed, tt.failed, out.String())
			}
			var codes []string
			for _, r := range v.Rejected {
				codes = append(codes, r.Code)
				if r.Section == "" || r.Text == "" || r.Segment == "" {
					t.Errorf("rejection without its explanation: %+v", r)
				}
			}
			if !slices.Equal(codes, tt.codes) {
				t.Errorf("rejected codes %v, want %v", codes, tt.codes)
			}
			if len(tt.failed) > 0 {
				for _, c := range v.Checks {
					if c.Name == tt.failed[0] && !strings.Contains(c.Reason, tt.reasonHas) {
						t.Errorf("check %s: reason %q lacks %q", c.Name, c.Reason, tt.reasonHas)
					}
				}
			}
		})
	}
}

func TestGraderUsage(t *testing.T) {
	if code := run(nil, io.Discard, io.Discard); code != 2 {
		t.Fatalf("no command: exit %d, want 2", code)
	}
	if code := run([]string{"--nope"}, io.Discard, io.Discard); code != 2 {
		t.Fatalf("unknown flag: exit %d, want 2", code)
	}
}
