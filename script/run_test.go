package script

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tcpstated/tcpstated/fsm"
)

// handshake is a passive open that the tests below extend.
const handshake = `0     socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0    bind(3, ..., ...) = 0
+0    listen(3, 10) = 0
0.100 < S 0:0(0) win 65535 <mss 1460>
+0    > S. 0:0(0) ack 1 win 65535 <mss 1460>
0.200 < . 1:1(0) ack 1 win 65535
+0    accept(3, ..., ...) = 4
`

func run(t *testing.T, src string, opts Options) *Report {
	t.Helper()
	rep, err := Run([]byte(src), opts)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return rep
}

// failedLine returns the report's failing line, checking there is one.
func failedLine(t *testing.T, rep *Report) LineResult {
	t.Helper()
	if rep.Passed {
		t.Fatalf("the script passed; want a failure:\n%s", verboseText(rep))
	}
	for _, l := range rep.Lines {
		if l.Status == StatusFail {
			return l
		}
	}
	t.Fatalf("no FAIL line in a failed report:\n%s", verboseText(rep))
	return LineResult{}
}

func wantContains(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s\n  %q\nwant it to contain\n  %q", what, got, w)
		}
	}
}

func TestHandshakePasses(t *testing.T) {
	rep := run(t, handshake, Options{})
	if !rep.Passed || rep.Compare != "semantic" || rep.Failure != "" {
		t.Fatalf("report:\n%s", verboseText(rep))
	}
	if got := len(rep.Lines); got != 7 {
		t.Errorf("%d lines, want 7", got)
	}
	syn := rep.Lines[3]
	if syn.Kind != KindPacketIn || syn.Line != 4 || syn.Time != 0.1 || len(syn.Engine) == 0 || len(syn.Transitions) != 1 {
		t.Errorf("SYN line: %+v", syn)
	}
	wantContains(t, "SYN transition", syn.Transitions[0], "LISTEN -> SYN-RECEIVED (LISTEN_SYN_ACCEPTED)")
	wantContains(t, "SYN explanation", syn.Engine[0], "LISTEN_SYN_ACCEPTED (RFC 9293 §3.10.7.2)")
	sa := rep.Lines[4]
	if sa.Expected != "S. 0:0(0) ack 1 win 65535 <mss 1460>" || sa.Actual != "S. 0:0(0) ack 1 win 65535 <mss 1460> at 0.100" {
		t.Errorf("SYN,ACK line: expected %q actual %q", sa.Expected, sa.Actual)
	}
}

// A wrong ack number fails the > line, names the field and both values,
// and carries the engine's explanation of the last inbound segment.
func TestWrongAckNumber(t *testing.T) {
	rep := run(t, handshake+"0.300 < P. 1:101(100) ack 1 win 65535\n0.500 > . 1:1(0) ack 100\n", Options{})
	l := failedLine(t, rep)
	if l.Line != 9 || l.Kind != KindPacketOut {
		t.Errorf("failed line %d kind %s, want 9 packet_out", l.Line, l.Kind)
	}
	wantContains(t, "reason", l.Reason, "ack: expected 100, got 101",
		"the engine on the last inbound packet, line 8", "DATA_IN_ORDER (RFC 9293 §3.10.7.4)")
	if l.Expected != ". 1:1(0) ack 100" || !strings.HasPrefix(l.Actual, ". 1:1(0) ack 101 win 65435 at 0.500") {
		t.Errorf("expected %q actual %q", l.Expected, l.Actual)
	}
	wantContains(t, "report failure", rep.Failure, "line 9: ack: expected 100, got 101")
}

// A packet the engine never sends fails its line: nothing by the end of
// the tolerance window.
func TestMissingPacket(t *testing.T) {
	rep := run(t, handshake+"0.300 < P. 1:101(100) ack 1 win 65535\n0.300 > . 1:1(0) ack 101\n0.310 close(4) = 0\n", Options{})
	l := failedLine(t, rep)
	if l.Line != 9 || l.Actual != "nothing" {
		t.Errorf("line %d actual %q", l.Line, l.Actual)
	}
	wantContains(t, "reason", l.Reason, "expected . 1:1(0) ack 101 was not emitted by 0.304")
	if rep.NotRun != 1 || rep.Lines[len(rep.Lines)-1].Status != StatusSkip {
		t.Errorf("the line after the failure: not_run %d, %+v", rep.NotRun, rep.Lines[len(rep.Lines)-1])
	}
}

// A packet emitted earlier than its line's window is a failure too.
func TestPacketTooEarly(t *testing.T) {
	rep := run(t, handshake+"0.300 < P. 1:101(100) ack 1 win 65535\n0.600 > . 1:1(0) ack 101\n", Options{})
	l := failedLine(t, rep)
	wantContains(t, "reason", l.Reason, "a packet was emitted at 0.500, before this line's window [0.596, 0.604]")
}

// An extra packet fails the next > line (the script expects something
// else first) or, at the end, a pseudo-line listing what was not expected.
func TestExtraPacket(t *testing.T) {
	// The delayed ACK at 0.5 is not in the script; the next > line expects
	// the data the engine writes at 0.6.
	rep := run(t, handshake+"0.300 < P. 1:101(100) ack 1 win 65535\n0.600 write(4, ..., 10) = 10\n+0 > P. 1:11(10) ack 101\n", Options{})
	l := failedLine(t, rep)
	if l.Line != 10 {
		t.Errorf("failed at line %d, want 10", l.Line)
	}
	wantContains(t, "reason", l.Reason, "a packet was emitted at 0.500, before this line's window", ". 1:1(0) ack 101 win 65435")

	// At the end of the script.
	rep = run(t, handshake+"0.300 < P. 1:101(100) ack 1 win 65535\n0.600 getsockopt(4, SOL_SOCKET, SO_ERROR, [0], [4]) = 0\n", Options{})
	l = failedLine(t, rep)
	if l.Line != 0 || l.Text != "(end of script)" || l.Kind != KindPacketOut {
		t.Errorf("end-of-script line: %+v", l)
	}
	wantContains(t, "reason", l.Reason, "1 unexpected outbound packet(s) by the end of the script: . 1:1(0) ack 101 win 65435 at 0.500")
}

// A wrong state in TCP_INFO names the state found, in Linux's and the
// RFC's names, and the transition that led there.
func TestWrongTCPInfoState(t *testing.T) {
	rep := run(t, handshake+"0.300 < F. 1:1(0) ack 1 win 65535\n+0 > . 1:1(0) ack 2\n+0 getsockopt(4, SOL_TCP, TCP_INFO, {tcpi_state=TCP_ESTABLISHED, ...}, [...]) = 0\n", Options{})
	l := failedLine(t, rep)
	if l.Line != 10 || l.Kind != KindSyscall {
		t.Errorf("failed line %d kind %s", l.Line, l.Kind)
	}
	wantContains(t, "reason", l.Reason, "tcpi_state: expected TCP_ESTABLISHED, got TCP_CLOSE_WAIT (RFC 9293 CLOSE-WAIT)",
		"last transition: 0.300 endpoint 2: ESTABLISHED -> CLOSE-WAIT (FIN_RECEIVED) (line 8)")
}

// Lines tcpstated cannot honour are listed as skipped, never silently.
func TestSkippedLines(t *testing.T) {
	src := "--tolerance_usecs=10000 --wire_server=1.2.3.4\n" +
		"`sysctl -q net.ipv4.tcp_timestamps=0`\n" +
		handshake +
		"+0 %{ assert tcpi_state == TCP_ESTABLISHED }%\n" +
		"+0 poll([{fd=4, events=POLLIN, revents=0}], 1, 0) = 0\n" +
		"+0 setsockopt(4, SOL_TCP, TCP_CORK, [1], 4) = 0\n" +
		"+0 `tc qdisc show`\n"
	rep := run(t, src, Options{})
	if !rep.Passed {
		t.Fatalf("report:\n%s", verboseText(rep))
	}
	if rep.Skipped != 6 {
		t.Errorf("skipped = %d, want 6:\n%s", rep.Skipped, verboseText(rep))
	}
	var reasons []string
	for _, l := range rep.Lines {
		if l.Status == StatusSkip {
			reasons = append(reasons, l.Reason)
		}
	}
	wantContains(t, "skip reasons", strings.Join(reasons, "\n"),
		"ignored: --wire_server", "skipped: shell commands are not run by tcpstated",
		"skipped: python blocks are not run by tcpstated", "skipped: system call poll is not supported",
		"skipped: setsockopt TCP_CORK is not supported")
	if rep.Lines[0].Kind != KindOption || rep.Lines[0].Status != StatusPass || rep.Lines[1].Status != StatusSkip {
		t.Errorf("option lines: %+v", rep.Lines[:2])
	}
	if l := rep.Lines[2]; l.Kind != KindSkip || l.Line != 2 {
		t.Errorf("shell line: %+v", l)
	}
}

// Semantic mode reports PSH, window and option differences without
// failing; strict mode fails on them.
func TestCompareModes(t *testing.T) {
	src := handshake + "0.300 write(4, ..., 10) = 10\n+0 > . 1:11(10) ack 1 win 100 <nop,nop,TS val 1 ecr 2>\n"
	rep := run(t, src, Options{})
	if !rep.Passed {
		t.Fatalf("semantic run failed:\n%s", verboseText(rep))
	}
	notes := strings.Join(rep.Lines[len(rep.Lines)-1].Notes, "\n")
	wantContains(t, "notes", notes, "not judged: flags: expected ., got P.", "not judged: win: expected 100, got 65535",
		"not judged: options: expected <nop,nop,TS val 1 ecr 2>, got <>")
	rep = run(t, src, Options{Compare: CompareStrict})
	l := failedLine(t, rep)
	wantContains(t, "strict reason", l.Reason, "flags: expected ., got P.", "win: expected 100, got 65535", "options:")
	if rep.Compare != "strict" {
		t.Errorf("compare = %q", rep.Compare)
	}
	// The script's directive applies when the run does not choose.
	rep = run(t, "// compare: strict\n"+src, Options{})
	if rep.Passed || rep.Compare != "strict" {
		t.Errorf("directive ignored: passed=%v compare=%s", rep.Passed, rep.Compare)
	}
	// Semantic mode still judges SYN/ACK/FIN/RST.
	rep = run(t, handshake+"0.300 close(4) = 0\n+0 > . 1:1(0) ack 1\n", Options{})
	wantContains(t, "FIN reason", failedLine(t, rep).Reason, "flags: expected ., got F.")
}

func TestBlockingCalls(t *testing.T) {
	// accept blocks from 0.05 until the handshake completes at 0.2.
	src := strings.Replace(handshake, "+0    accept(3, ..., ...) = 4\n", "", 1)
	src = strings.Replace(src, "+0    listen(3, 10) = 0\n", "+0    listen(3, 10) = 0\n0.050...0.200 accept(3, ..., ...) = 4\n", 1)
	rep := run(t, src, Options{})
	if !rep.Passed {
		t.Fatalf("blocking accept:\n%s", verboseText(rep))
	}
	if a := rep.Lines[3].Actual; a != "= 4 (endpoint 2) at 0.200" {
		t.Errorf("accept actual %q", a)
	}
	// Returning later than the script says.
	rep = run(t, strings.Replace(src, "0.050...0.200", "0.050...0.150", 1), Options{})
	l := failedLine(t, rep)
	wantContains(t, "late accept", l.Reason, "accept did not return by 0.150")
	if l.Line != 4 {
		t.Errorf("failed line %d, want 4", l.Line)
	}
	// A blocking call written without START...END would block.
	rep = run(t, "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 bind(3, ..., ...) = 0\n+0 listen(3, 1) = 0\n+0 accept(3, ..., ...) = 4\n", Options{})
	wantContains(t, "would block", failedLine(t, rep).Reason, "accept would block", "START...END accept(...)")
}

func TestTimeGoesBackwards(t *testing.T) {
	rep := run(t, "0.5 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n0.1 close(3) = 0\n", Options{})
	wantContains(t, "reason", failedLine(t, rep).Reason, "time 0.100 is before the previous event's time 0.500")
}

func TestWrongSyscallResult(t *testing.T) {
	rep := run(t, "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 read(3, ..., 10) = -1 EAGAIN\n", Options{})
	l := failedLine(t, rep)
	wantContains(t, "reason", l.Reason, "read errno: expected EAGAIN, got ENOTCONN")
	if l.Expected != "= -1 EAGAIN" || l.Actual != "= -1 ENOTCONN" {
		t.Errorf("expected %q actual %q", l.Expected, l.Actual)
	}
	rep = run(t, "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 4\n", Options{})
	wantContains(t, "reason", failedLine(t, rep).Reason, "socket returned 3, expected 4")
}

func TestFlowMismatch(t *testing.T) {
	rep := run(t, "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 bind(3, ..., ...) = 0\n+0 listen(3, 10) = 0\n"+
		"0.1 < [flow 2] S 0:0(0) win 65535\n+0 > S. 0:0(0) ack 1\n", Options{})
	wantContains(t, "reason", failedLine(t, rep).Reason, "flow: expected flow 1 (192.168.0.1:8080 <-> 192.0.2.1:40000), got flow 2 (192.168.0.1:8080 <-> 192.0.2.1:40001)")
}

// TestRunOnEngine runs on a caller's engine whose clock is already past
// zero: script times count from its Now, and its earlier outputs are not
// the script's.
func TestRunOnEngine(t *testing.T) {
	e := fsm.New(fsm.Config{ISNMode: fsm.ISNRandom})
	e.AdvanceTo(5 * time.Second)
	if _, err := e.Listen(netipMust("10.9.9.9:1"), 1); err != nil {
		t.Fatal(err)
	}
	rep, err := RunOn(e, []byte(handshake+"0.300 < P. 1:101(100) ack 1 win 65535\n0.500 > . 1:1(0) ack 101\n"), Options{Session: "sessions/abc", RemoteISN: 12345})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Passed || rep.Session != "sessions/abc" || rep.EndTime != 0.5 {
		t.Fatalf("passed=%v session=%q end=%v\n%s", rep.Passed, rep.Session, rep.EndTime, verboseText(rep))
	}
	if e.Now() != 5*time.Second+500*time.Millisecond {
		t.Errorf("engine clock %v", e.Now())
	}
	// The header asked for something the caller's engine does not have.
	rep, _ = RunOn(fsm.New(fsm.Config{}), []byte("--tcpstated_delayed_ack=false\n"+handshake), Options{})
	wantContains(t, "config note", strings.Join(rep.Lines[0].Notes, ""), "differs from what the script asks for")
}

func TestParseErrorFromRun(t *testing.T) {
	_, err := Run([]byte("0 < S 0:0(0) win x\n"), Options{Name: "bad.pkt"})
	wantContains(t, "error", errString(err), "bad.pkt:1:18: expected a window after win")
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestReportJSON(t *testing.T) {
	rep := run(t, handshake+"0.300 < P. 1:101(100) ack 1 win 65535\n0.500 > . 1:1(0) ack 100\n", Options{Name: "x.pkt"})
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"passed", "session", "script", "compare", "failure", "lines", "skipped", "not_run", "end_time"} {
		if _, ok := m[k]; !ok {
			t.Errorf("report JSON has no %q: %s", k, b)
		}
	}
	lines := m["lines"].([]any)
	last := lines[len(lines)-1].(map[string]any)
	for k, want := range map[string]any{"line": 9.0, "time": 0.5, "text": "0.500 > . 1:1(0) ack 100", "kind": "packet_out",
		"expected": ". 1:1(0) ack 100", "status": "FAIL"} {
		if last[k] != want {
			t.Errorf("line JSON %q = %v, want %v", k, last[k], want)
		}
	}
	for _, k := range []string{"actual", "reason"} {
		if _, ok := last[k]; !ok {
			t.Errorf("line JSON has no %q", k)
		}
	}
}

func TestMain_CLI(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.pkt", handshake)
	bad := write("bad.pkt", handshake+"0.300 > . 1:1(0) ack 1\n")
	broken := write("broken.pkt", "0 < Q 0:0(0)\n")
	strict := write("strict.pkt", handshake+"0.300 write(4, ..., 10) = 10\n+0 > . 1:11(10) ack 1\n")

	for _, tc := range []struct {
		args   []string
		status int
		out    string
	}{
		{[]string{"run", good}, 0, "good.pkt: PASS (semantic compare, 7 lines, 0 skipped)"},
		{[]string{"run", good, bad}, 1, "bad.pkt: FAIL"},
		{[]string{"run", "--compare=strict", strict}, 1, "flags: expected ., got P."},
		{[]string{"run", "--compare=semantic", strict}, 0, "not judged: flags"},
		{[]string{"run", broken, good}, 2, "good.pkt: PASS"},
		{[]string{"run"}, 2, ""},
		{[]string{"run", "--compare=fuzzy", good}, 2, ""},
		{[]string{"frobnicate"}, 2, ""},
		{[]string{"run", filepath.Join(dir, "missing.pkt")}, 2, ""},
	} {
		var out, errb bytes.Buffer
		if got := Main(tc.args, &out, &errb); got != tc.status {
			t.Errorf("Main(%v) = %d, want %d\nstdout:\n%s\nstderr:\n%s", tc.args, got, tc.status, out.String(), errb.String())
		}
		wantContains(t, "stdout of "+strings.Join(tc.args, " "), out.String(), tc.out)
	}

	var out, errb bytes.Buffer
	if got := Main([]string{"run", "--json", good, bad, broken}, &out, &errb); got != 2 {
		t.Errorf("--json status %d", got)
	}
	dec := json.NewDecoder(&out)
	var reps []Report
	for dec.More() {
		var r Report
		if err := dec.Decode(&r); err != nil {
			t.Fatal(err)
		}
		reps = append(reps, r)
	}
	if len(reps) != 3 || !reps[0].Passed || reps[1].Passed || reps[2].Error == "" {
		t.Errorf("--json reports: %+v", reps)
	}
	wantContains(t, "stderr", errb.String(), "broken.pkt:1:5: expected TCP flags")
}

func netipMust(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestAnyTimeAndRanges(t *testing.T) {
	// The delayed ACK comes at 0.5: "*" waits for it; a range accepts it.
	base := handshake + "0.300 < P. 1:101(100) ack 1 win 65535\n"
	for _, tc := range []struct {
		line string
		pass bool
	}{
		{"* > . 1:1(0) ack 101\n+0 read(4, ..., 1000) = 100\n", true},
		{"+0~+0.3 > . 1:1(0) ack 101\n", true},
		{"0.4~0.45 > . 1:1(0) ack 101\n", false},
		{"0.45~0.6 > . 1:1(0) ack 101\n", true},
		{"+0.196 > . 1:1(0) ack 101\n", true},  // within the 4 ms tolerance
		{"+0.195 > . 1:1(0) ack 101\n", false}, // 5 ms late
	} {
		rep := run(t, base+tc.line, Options{})
		if rep.Passed != tc.pass {
			t.Errorf("%q: passed=%v, want %v\n%s", tc.line, rep.Passed, tc.pass, verboseText(rep))
		}
	}
	// Relative times after "*" count from when the packet came.
	rep := run(t, base+"* > . 1:1(0) ack 101\n+0.1 < . 101:101(0) ack 1 win 65535\n", Options{})
	if l := rep.Lines[len(rep.Lines)-1]; !rep.Passed || l.Time != 0.6 {
		t.Errorf("time after *: %v passed=%v", l.Time, rep.Passed)
	}
	// --tolerance_usecs widens the window.
	rep = run(t, "--tolerance_usecs=10000\n"+base+"+0.195 > . 1:1(0) ack 101\n", Options{})
	if !rep.Passed {
		t.Errorf("tolerance 10 ms:\n%s", verboseText(rep))
	}
}

func TestIPv4MappedIPv6(t *testing.T) {
	rep := run(t, "--ip_version=ipv4-mapped-ipv6\n"+handshake, Options{})
	if !rep.Passed {
		t.Fatalf("%s", verboseText(rep))
	}
	wantContains(t, "SYN sent", rep.Lines[4].Actual, "sent 40000 > 8080 S")
}

// TestTimestampEcho: an inbound ecr naming a TSval the script wrote on a >
// line is replaced by the TSval the engine really sent; any other non-zero
// ecr by the engine's most recent TSval; 0 stays 0.
func TestTimestampEcho(t *testing.T) {
	src := `0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 bind(3, ..., ...) = 0
+0 listen(3, 10) = 0
0.1 < S 0:0(0) win 65535 <nop,nop,TS val 10 ecr 0>
+0 > S. 0:0(0) ack 1 <nop,nop,TS val 4242 ecr 10>
0.2 < . 1:1(0) ack 1 win 65535 <nop,nop,TS val 20 ecr 4242>
0.3 < . 1:1(0) ack 1 win 65535 <nop,nop,TS val 30 ecr 999>
`
	e := fsm.New(fsm.Config{ISNMode: fsm.ISNRandom, Secret: [16]byte{1}})
	rep, err := RunOn(e, []byte(src), Options{})
	if err != nil || !rep.Passed {
		t.Fatalf("err=%v\n%s", err, verboseText(rep))
	}
	wantContains(t, "ecr mapped", strings.Join(rep.Lines[5].Notes, ""), "TS ecr 4242 is the val of an earlier > line: sent the engine's actual TSval")
	wantContains(t, "ecr latest", strings.Join(rep.Lines[6].Notes, ""), "TS ecr 999: sent the engine's most recent TSval")
	if !strings.Contains(strings.Join(rep.Lines[5].Engine, ""), "ACK_NEW") {
		t.Errorf("the ACK was not taken: %v", rep.Lines[5].Engine)
	}
}

// TestEngineConfig: header options and setsockopt calls before the first
// connection configure the engine; later ones are reported as not judged.
func TestEngineConfig(t *testing.T) {
	s, err := Parse("", []byte(`--mss=1000 --tcpstated_delayed_ack=false --tcpstated_msl=2s --tcpstated_syn_queue=3
0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 setsockopt(3, SOL_SOCKET, SO_RCVBUF, [4096], 4) = 0
+0 setsockopt(3, SOL_SOCKET, SO_SNDBUF, [8192], 4) = 0
+0 setsockopt(3, SOL_TCP, TCP_NODELAY, [1], 4) = 0
+0 listen(3, 1) = 0
+0 setsockopt(3, SOL_SOCKET, SO_RCVBUF, [100], 4) = 0
`))
	if err != nil {
		t.Fatal(err)
	}
	cfg, applied := s.EngineConfig(fsm.Config{})
	if cfg.MSS != 1000 || !cfg.NoDelayedAck || cfg.MSL != 2*time.Second || cfg.SynQueue != 3 ||
		cfg.RecvBuffer != 4096 || cfg.SendBuffer != 8192 || !cfg.NoNagle {
		t.Errorf("config %+v", cfg)
	}
	if len(applied) != 3 {
		t.Errorf("applied %v", applied)
	}
	rep, _ := Run([]byte(s.Format()), Options{})
	if !rep.Passed {
		t.Fatalf("%s", verboseText(rep))
	}
	wantContains(t, "late SO_RCVBUF", rep.Lines[len(rep.Lines)-1].Actual, "not judged: SO_RCVBUF after the first connection")
	wantContains(t, "early SO_RCVBUF", rep.Lines[5].Actual, "configures the engine: receive buffer (and window) 4096 bytes")
}

// TestCoalesce: three MSS-sized segments written at one instant match one
// 3000-byte > line under Options.Coalesce, and fail it without.
func TestCoalesce(t *testing.T) {
	const src = `0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 bind(3, ..., ...) = 0
+0 listen(3, 10) = 0
0.100 < S 0:0(0) win 65535 <mss 1000>
+0 > S. 0:0(0) ack 1 win 65535 <mss 1460>
0.200 < . 1:1(0) ack 1 win 65535
+0 accept(3, ..., ...) = 4
+0 write(4, ..., 3000) = 3000
+0 > P. 1:3001(3000) ack 1 win 65535
`
	for _, tt := range []struct {
		coalesce, pass bool
	}{{false, false}, {true, true}} {
		rep, err := Run([]byte(src), Options{Coalesce: tt.coalesce})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Passed != tt.pass {
			t.Errorf("Coalesce %v: passed %v, want %v\n%s", tt.coalesce, rep.Passed, tt.pass, rep.Text())
		}
	}
}

// TestLateness: the kernel target's allowance after a line's window is
// Options.LateTolerance, an eighth of the time since the previous line
// (the Linux timer wheel's rounding) and the last packet's lag; 0 without
// LateTolerance, which is packetdrill's rule.
func TestLateness(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		late, last, lag, at, want time.Duration
	}{
		{20 * ms, 300 * ms, 0, 300 * ms, 20 * ms},             // at once: scheduling only
		{20 * ms, 200 * ms, 0, 240 * ms, 25 * ms},             // a 40 ms delayed ACK: 5 ms of rounding
		{20 * ms, 0, 0, 1000 * ms, 145 * ms},                  // a 1 s RTO
		{20 * ms, 20200 * ms, 342 * ms, 22200 * ms, 612 * ms}, // a keep-alive re-armed from a late one
	}
	for _, tt := range tests {
		r := &runner{h: &header{late: tt.late}, last: tt.last, lag: tt.lag}
		if got := r.lateness(tt.at); got != tt.want {
			t.Errorf("lateness(%v) after %v, lag %v = %v, want %v", tt.at, tt.last, tt.lag, got, tt.want)
		}
	}
}
