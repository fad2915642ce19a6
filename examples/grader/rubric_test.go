package main

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/tcpstated/tcpstated/dut"
	"github.com/tcpstated/tcpstated/internal/scripttest"
)

// agent serves the engine with bug as a DUT agent on a free port.
func agent(t *testing.T, bug dut.Bug) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := dut.NewEngine(bug)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- dut.Serve(ctx, lis, e) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		e.Close()
	})
	return lis.Addr().String()
}

// gradeRubric runs the grader on rubric against addr.
func gradeRubric(t *testing.T, rubric, addr, format string) (int, string) {
	t.Helper()
	var stdout, stderr strings.Builder
	// Three runs of a failing script, and 40 ms of tolerance: the wall
	// clock on two shared cores, with -race. (No bug here is about time
	// so fine.)
	status := run([]string{"--rubric", rubric, "--dut", addr, "--format", format, "--attempts", "3", "--tolerance", "40ms"}, &stdout, &stderr)
	if status == 2 {
		t.Fatalf("grader: status 2:\n%s", stderr.String())
	}
	return status, stdout.String()
}

func decodeGrade(t *testing.T, out string) *Grade {
	t.Helper()
	var g Grade
	if err := json.Unmarshal([]byte(out), &g); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	return &g
}

// failed are the names of the scripts that failed.
func failed(g *Grade) []string {
	var out []string
	for _, r := range g.Results {
		if !r.Passed {
			out = append(out, r.Name)
		}
	}
	return out
}

// TestRubricEngineAsDUT: the sample rubric gives the engine served as a
// DUT every point, in both roles.
func TestRubricEngineAsDUT(t *testing.T) {
	t.Parallel()
	status, out := gradeRubric(t, "rubric.tsv", agent(t, dut.BugNone), "json")
	g := decodeGrade(t, out)
	roles := map[string]int{}
	for _, r := range g.Results {
		roles[r.Role]++
	}
	if status != 0 || g.Score != 17 || g.Max != 17 || roles[RoleServer] == 0 || roles[RoleClient] == 0 {
		t.Errorf("status %d, %g of %g points, roles %v; failed %v:\n%s", status, g.Score, g.Max, roles, failed(g), out)
	}
	if g.Stack != "tcpstated engine (wall clock)" {
		t.Errorf("stack %q", g.Stack)
	}
}

// TestRubricBuggyDUT: each buggy DUT loses the points of the scripts
// about the rule it breaks, and the report says where and why, with the
// reference engine's explanation.
func TestRubricBuggyDUT(t *testing.T) {
	t.Parallel()
	rubric := filepath.Join("testdata", "bugs.tsv")
	for _, tc := range []struct {
		bug     dut.Bug
		score   float64 // of 8
		failed  []string
		script  string // a failing script whose report says
		line    string // at the line that begins so
		nth     int
		reason  string
		explain string // the reference engine's explanation code
	}{
		{dut.BugWrongAck, 1, []string{"handshake-passive.pkt", "data-transfer.pkt", "time-wait-reack.pkt", "zero-window-probe.pkt", "handshake-active.pkt"},
			"handshake-passive.pkt", "+0    > S. 0:0(0) ack 1", 1, "ack: expected 1, got 2", "LISTEN_SYN_ACCEPTED (RFC 9293 §3.10.7.2)"},
		{dut.BugIgnoreWindow, 7, []string{"zero-window-probe.pkt"},
			"zero-window-probe.pkt", "1.400 > . 1:2(1)", 1, "before this line's window", "ZERO_WINDOW_PROBE (RFC 9293 §3.8.6.1)"},
		{dut.BugNoTimeWait, 7, []string{"time-wait-reack.pkt"},
			"time-wait-reack.pkt", "+0    > . 2:2(0) ack 2", 2, "flags: expected ., got R", "FIN_TIME_WAIT_REACK (RFC 9293 §3.10.7.4)"},
	} {
		t.Run(tc.bug.String(), func(t *testing.T) {
			t.Parallel()
			status, out := gradeRubric(t, rubric, agent(t, tc.bug), "json")
			g := decodeGrade(t, out)
			if status != 1 || g.Score != tc.score || g.Max != 8 || strings.Join(failed(g), " ") != strings.Join(tc.failed, " ") {
				t.Fatalf("status %d, %g of %g points, failed %v; want %g points, failed %v:\n%s", status, g.Score, g.Max, failed(g), tc.score, tc.failed, out)
			}
			want := scripttest.Line(t, filepath.Join("..", "..", "testdata", "scripts"), tc.script, tc.line, tc.nth)
			for _, r := range g.Results {
				if r.Name != tc.script {
					continue
				}
				if r.Line != want || !strings.Contains(r.Failure, tc.reason) || r.Expected == "" || r.Actual == "" ||
					!strings.Contains(strings.Join(r.Explanation, "\n"), tc.explain) || r.Earned != 0 {
					t.Errorf("want line %d, %q, expected and sent, and %q explained:\n%+v", want, tc.reason, tc.explain, r)
				}
			}
		})
	}
}

// TestRubricFormats: the grade as JUnit XML and as Gradescope's
// results.json, from a DUT that loses one script's point.
func TestRubricFormats(t *testing.T) {
	t.Parallel()
	addr := agent(t, dut.BugIgnoreWindow)
	rubric := filepath.Join("testdata", "bugs.tsv")

	_, out := gradeRubric(t, rubric, addr, "junit")
	var doc struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Suites   []struct {
			Cases []struct {
				Classname string `xml:"classname,attr"`
				Name      string `xml:"name,attr"`
				Failure   *struct {
					Message string `xml:"message,attr"`
					Text    string `xml:",chardata"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if doc.Tests != 6 || doc.Failures != 1 || len(doc.Suites) != 1 {
		t.Fatalf("want 6 tests, 1 failure:\n%s", out)
	}
	for _, c := range doc.Suites[0].Cases {
		if c.Name == "zero-window-probe.pkt" && (c.Classname != "grader.server" || c.Failure == nil ||
			!strings.Contains(c.Failure.Text, "ZERO_WINDOW_PROBE") || !strings.Contains(c.Failure.Text, "sent:")) {
			t.Errorf("the failing case: %+v", c)
		}
	}

	_, out = gradeRubric(t, rubric, addr, "gradescope")
	var gs struct {
		Score float64 `json:"score"`
		Tests []struct {
			Name     string  `json:"name"`
			Score    float64 `json:"score"`
			MaxScore float64 `json:"max_score"`
			Status   string  `json:"status"`
			Output   string  `json:"output"`
		} `json:"tests"`
	}
	if err := json.Unmarshal([]byte(out), &gs); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if gs.Score != 7 || len(gs.Tests) != 6 {
		t.Fatalf("want 7 points in 6 tests:\n%s", out)
	}
	for _, x := range gs.Tests {
		if x.Name == "client: handshake-active.pkt" && (x.Score != 2 || x.MaxScore != 2 || x.Status != "passed") {
			t.Errorf("%+v", x)
		}
		if x.Name == "server: zero-window-probe.pkt" && (x.Score != 0 || x.Status != "failed" || !strings.Contains(x.Output, "ZERO_WINDOW_PROBE")) {
			t.Errorf("%+v", x)
		}
	}
}

// TestParseRubric: a rubric's mistakes are told by line.
func TestParseRubric(t *testing.T) {
	for _, tc := range []struct{ text, err string }{
		{"a.pkt 1 server auto rfc\n", ""},
		{"# only a comment\n\n", "lists no scripts"},
		{"\na.pkt 1 server auto\n", "rubric line 2: want 5 columns"},
		{"a.pkt x server auto rfc\n", "points: want a number above 0"},
		{"a.pkt 0 server auto rfc\n", "points: want a number above 0"},
		{"a.pkt 1 peer auto rfc\n", "role: want server or client"},
		{"a.pkt 1 client loose rfc\n", "compare: want strict, semantic or auto"},
		{"a.pkt 1 client strict linux\n", "profile: want rfc, freebsd or auto"},
	} {
		items, err := ParseRubric(strings.NewReader(tc.text), "dir")
		switch {
		case tc.err == "" && (err != nil || len(items) != 1 || items[0].Path != filepath.Join("dir", "a.pkt") || items[0].Points != 1):
			t.Errorf("%q: %v %+v", tc.text, err, items)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: got %v, want %q", tc.text, err, tc.err)
		}
	}
}

// TestRubricRole: a script that does not grade the role the rubric gives
// it is a mistake of the rubric's (status 2), found before anything runs.
func TestRubricRole(t *testing.T) {
	rubric := filepath.Join(t.TempDir(), "r.tsv")
	script, _ := filepath.Abs(filepath.Join("..", "..", "testdata", "scripts", "handshake-passive.pkt"))
	if err := os.WriteFile(rubric, []byte(script+" 1 client auto rfc\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr strings.Builder
	if status := run([]string{"--rubric", rubric, "--dut", "127.0.0.1:1"}, &stdout, &stderr); status != 2 ||
		!strings.Contains(stderr.String(), "grades the stack as a client but never calls connect(") {
		t.Errorf("status %d: %s", status, stderr.String())
	}
}

// serveAgent is the test binary run as an agent by the grader: the
// engine with the named bug on $DUT_ADDRESS, until SIGTERM or SIGKILL.
func serveAgent(bugName string) int {
	bug, err := dut.ParseBug(bugName)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	lis, err := net.Listen("tcp", os.Getenv("DUT_ADDRESS"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	e := dut.NewEngine(bug)
	defer e.Close()
	if err := dut.Serve(ctx, lis, e); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// freeAddr is a loopback address nothing listens on (for a moment).
func freeAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	return lis.Addr().String()
}

// TestRubricStartsAgent: "grader --rubric R --dut ADDR -- AGENT" starts the
// agent with DUT_ADDRESS, grades it once it answers, and stops it; an
// agent that exits first is reported, and every script fails.
func TestRubricStartsAgent(t *testing.T) {
	rubric := filepath.Join(t.TempDir(), "r.tsv")
	dir, _ := filepath.Abs(filepath.Join("..", "..", "testdata", "scripts"))
	text := filepath.Join(dir, "handshake-passive.pkt") + " 1 server auto rfc\n" + filepath.Join(dir, "handshake-active.pkt") + " 1 client auto rfc\n"
	if err := os.WriteFile(rubric, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GRADER_TEST_AGENT", "wrong-ack")
	var stdout, stderr strings.Builder
	addr := freeAddr(t)
	status := run([]string{"--rubric", rubric, "--dut", addr, "--attempts", "1", "--", os.Args[0]}, &stdout, &stderr)
	if status != 1 || !strings.Contains(stdout.String(), "with bug wrong-ack") || !strings.Contains(stdout.String(), "total: 0 of 2 points") {
		t.Errorf("status %d:\n%s%s", status, stdout.String(), stderr.String())
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Errorf("the agent still listens on %s after grading", addr)
	}

	stdout.Reset()
	stderr.Reset()
	status = run([]string{"--rubric", rubric, "--dut", freeAddr(t), "--", "sh", "-c", "echo no stack here; exit 3"}, &stdout, &stderr)
	if status != 1 || !strings.Contains(stderr.String(), "exited with status 3 before it answered; its output:\nno stack here") ||
		!strings.Contains(stdout.String(), "the script did not start") {
		t.Errorf("status %d:\n%s%s", status, stdout.String(), stderr.String())
	}
}
