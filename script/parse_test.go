package script

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// everySyntax uses every construct the parser knows.
const everySyntax = `// A script with every construct.
/* a block
   comment */
--ip_version=ipv4 --tolerance_usecs=10000
--mss=1000
--some_unknown_option=7
// compare: strict

` + "`../common/defaults.sh`" + `
0     socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0    setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
+0    setsockopt(3, SOL_SOCKET, SO_LINGER, {onoff=1, linger=0}, 8) = 0
+0    bind(3, {sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr("192.168.0.1")}, 16) = 0
+0    listen(3, 1) = 0
0.100 < S 0:0(0) win 32792 <mss 1000,sackOK,nop,nop,TS val 100 ecr 0,nop,wscale 7>
+0~+0.04 > S. 0:0(0) ack 1 <...>
0.2~0.3 < . 1:1(0) ack 1 win 257
*     > . 1:1(0) ack 1
+0    < [flow 2 ect0] P. 1:1001(1000) ack 1 win 257 urg 3 <nop,nop,sack 1:101 201:301,eol>
+0    > - 0:0(0) <>
+0    < SEW 0:0(0) win 0 <FO 0102030405060708>
+0    fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0
+0    fcntl(3, F_GETFL) = 0x802 (flags O_RDWR|O_NONBLOCK)
+0    connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)
+0    getsockopt(4, SOL_TCP, TCP_INFO, {tcpi_state=TCP_ESTABLISHED,
                                      ...}, [...]) = 0
0.5...0.6 accept(3, ..., ...) = 4
%{
assert tcpi_state == 1
}%
+0 %{ print("inline") }%
+0 ` + "`echo hi`" + ` // trailing comment
`

func TestParseEverySyntax(t *testing.T) {
	s, err := Parse("every.pkt", []byte(everySyntax))
	if err != nil {
		t.Fatal(err)
	}
	if s.Compare != CompareStrict {
		t.Errorf("Compare = %v, want strict", s.Compare)
	}
	if got := len(s.Options); got != 4 {
		t.Fatalf("%d options, want 4", got)
	}
	if o := s.Options[1]; o.Name != "tolerance_usecs" || o.Value != "10000" || o.Pos != (Pos{4, 19}) {
		t.Errorf("option 1 = %+v", o)
	}
	if s.hdr.tolerance != 10*time.Millisecond || s.hdr.cfg.MSS != 1000 {
		t.Errorf("header: tolerance %v, MSS %d", s.hdr.tolerance, s.hdr.cfg.MSS)
	}
	if s.hdr.notes[3] == "" || !strings.Contains(s.hdr.notes[3], "some_unknown_option") {
		t.Errorf("unknown option note = %q", s.hdr.notes[3])
	}
	kinds := ""
	for _, ev := range s.Events {
		kinds += map[EventKind]string{EventPacketIn: "<", EventPacketOut: ">", EventSyscall: "c", EventSkip: "s"}[ev.Kind]
	}
	if want := "sccccc<><><><cccccsss"; kinds != want {
		t.Fatalf("event kinds %q, want %q", kinds, want)
	}
	ev := s.Events
	if ev[0].Time.Kind != TimeNone || ev[0].Skip.Body != "../common/defaults.sh" {
		t.Errorf("shell line: %+v %+v", ev[0].Time, ev[0].Skip)
	}
	syn := ev[6].Packet
	if syn.Flags != "S" || syn.Seq != 0 || syn.End != 0 || *syn.Win != 32792 || len(syn.Opts) != 7 {
		t.Errorf("SYN = %+v", syn)
	}
	if o := syn.Opts[4]; o.Kind != OptTS || o.Val != 100 || o.Ecr != 0 {
		t.Errorf("TS option = %+v", o)
	}
	if tm := ev[7].Time; tm.Kind != TimeRange || !tm.Start.Rel || tm.End.D != 40*time.Millisecond {
		t.Errorf("range time = %+v", tm)
	}
	if !ev[7].Packet.AnyOp || *ev[7].Packet.Ack != 1 {
		t.Errorf("SYN-ACK = %+v", ev[7].Packet)
	}
	if ev[9].Time.Kind != TimeAny {
		t.Errorf("* time = %+v", ev[9].Time)
	}
	data := ev[10].Packet
	if data.Flow != 2 || data.ECN != "ect0" || data.Len != 1000 || *data.Urg != 3 {
		t.Errorf("data = %+v", data)
	}
	if o := data.Opts[2]; o.Kind != OptSACK || len(o.Blocks) != 2 || o.Blocks[1] != [2]uint32{201, 301} {
		t.Errorf("sack = %+v", o)
	}
	if p := ev[11].Packet; p.Flags != "-" || !p.HasOp || len(p.Opts) != 0 {
		t.Errorf("no-flags packet = %+v", p)
	}
	if o := ev[12].Packet.Opts[0]; o.Kind != OptOther || o.Text != "FO 0102030405060708" {
		t.Errorf("unknown option = %+v", o)
	}
	if f := flagsOf(ev[12].Packet.Flags); flagText(f) != "SEW" {
		t.Errorf("flags SEW round trip: %s", flagText(f))
	}
	if sc := ev[14].Syscall; sc.Ret.Int != 0x802 || !sc.Ret.Hex || sc.Note != "flags O_RDWR|O_NONBLOCK" {
		t.Errorf("fcntl = %s", sc)
	}
	if sc := ev[15].Syscall; sc.Ret.Int != -1 || sc.Errno != "EINPROGRESS" || sc.Note != "Operation now in progress" {
		t.Errorf("connect = %s", sc)
	}
	if sc := ev[16].Syscall; ev[16].Pos.Line != 25 || ev[16].EndLine != 26 || sc.Args[3].Kind != ExprStruct {
		t.Errorf("multi-line getsockopt: lines %d-%d, %s", ev[16].Pos.Line, ev[16].EndLine, sc)
	}
	if tm := ev[17].Time; tm.Kind != TimeBlocking || tm.Start.D != 500*time.Millisecond || tm.End.D != 600*time.Millisecond {
		t.Errorf("blocking time = %+v", tm)
	}
	if sk := ev[18].Skip; sk.Kind != SkipPython || !strings.Contains(sk.Body, "assert tcpi_state == 1") || ev[18].EndLine != 30 {
		t.Errorf("python block = %+v (end line %d)", sk, ev[18].EndLine)
	}
	bind := ev[4].Syscall.Args[1]
	if p, ok := portOf(bind); !ok || p != 8080 {
		t.Errorf("bind port = %d, %v", p, ok)
	}
	if v, ok := evalInt(ev[13].Syscall.Args[2]); !ok || v != 0x802 {
		t.Errorf("O_RDWR|O_NONBLOCK = %#x, %v", v, ok)
	}
}

func TestParseRoundTrip(t *testing.T) {
	s, err := Parse("every.pkt", []byte(everySyntax))
	if err != nil {
		t.Fatal(err)
	}
	text := s.Format()
	s2, err := Parse("formatted", []byte(text))
	if err != nil {
		t.Fatalf("formatted script does not parse: %v\n%s", err, text)
	}
	if got := s2.Format(); got != text {
		t.Errorf("format is not stable:\n%s\n---\n%s", text, got)
	}
}

// TestParseErrors checks that each error says where and what was expected.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"no time", "socket(..., SOCK_STREAM, IPPROTO_TCP) = 3", `1:1: expected a time`},
		{"bad action", "0 hello", `1:8: expected '(' after the system call name "hello", found end of file`},
		{"bad action char", "0 ?", `1:3: expected a packet (< or >), a system call`},
		{"bad flags", "0 < SX 0:0(0) win 1", `1:6: expected TCP flags (letters of "FSRP.UEW", or - for none), found 'X'`},
		{"repeated flag", "0 < SS 0:0(0)", `1:6: flag 'S' is repeated`},
		{"missing colon", "0 < S 0 0(0)", `1:8: expected ':' in start:end(len)`},
		{"bad len", "0 < P. 1:11(20) ack 1", `1:13: payload length 20 does not match 1:11 (end - start = 10)`},
		{"seq too big", "0 < S 4294967296:0(0)", `1:7: a sequence number (start:end(len)) 4294967296 is out of range`},
		{"win too big", "0 < . 1:1(0) ack 1 win 70000", `1:24: a window after win 70000 is out of range (at most 65535)`},
		{"junk after packet", "0 < . 1:1(0) ack 1 foo", `1:20: expected ack N, win N, urg N, <options> or end of line, found "foo"`},
		{"double ack", "0 < . 1:1(0) ack 1 ack 2", `1:20: ack is given twice`},
		{"unterminated options", "0 < S 0:0(0) <mss 1460", `1:14: unterminated option list`},
		{"bad option value", "0 < S 0:0(0) <mss x>", `1:19: expected an MSS value after mss, found "x"`},
		{"TS without ecr", "0 < S 0:0(0) <TS val 1>", `1:23: expected ecr after TS val N`},
		{"any options inbound", "0 < S 0:0(0) <...>", `1:14: <...> (any options) is only for > lines`},
		{"too many sack blocks", "0 > . 1:1(0) <sack 1:2 3:4 5:6 7:8 9:10>", `1:15: a SACK option holds at most 4 blocks, found 5`},
		{"bad bracket", "0 < [foo] S 0:0(0)", `1:6: expected flow N or an ECN marker`},
		{"flow zero", "0 < [flow 0] S 0:0(0)", `1:11: flows are numbered from 1`},
		{"missing =", "0 close(3) 0", `1:12: expected '= RESULT' after the system call's arguments, found "0"`},
		{"bad errno", "0 close(3) = -1 FOO", `1:17: expected an errno name (such as EINPROGRESS) after the result, found "FOO"`},
		{"unterminated args", "0 close(3, 4", `1:8: unterminated (: expected )`},
		{"junk after call", "0 close(3) = 0 (note) x", `1:23: expected end of line after the system call, found "x"`},
		{"bad expr", "0 close(#) = 0", `1:9: expected an expression`},
		{"unterminated shell", "0 `ls", "1:3: unterminated shell command: expected a closing `"},
		{"unterminated python", "0 %{ x", "1:3: unterminated python block: expected }% to close %{"},
		{"unterminated comment", "0 close(3) = 0 /* x", "1:16: unterminated /* comment"},
		{"option after event", "0 close(3) = 0\n--mss=100", "2:1: header options (--mss) must come before the first event"},
		{"bad option value", "--tolerance_usecs=abc", "1:19: --tolerance_usecs: expected an integer"},
		{"bad ip version", "--ip_version=ipx", "1:14: --ip_version: expected ipv4, ipv6 or ipv4-mapped-ipv6"},
		{"bad compare", "// compare: fuzzy\n", `1:1: expected "// compare: strict" or "// compare: semantic"`},
		{"conflicting compare", "// compare: strict\n// compare: semantic\n", `2:1: conflicting compare directive`},
		{"backwards range", "0.2~0.1 > . 1:1(0)", `1:8: time range 0.200~0.100 ends before it starts`},
		{"blocking packet", "0...1 > . 1:1(0)", `1:1: a blocking time (start...end) is only allowed on a system call`},
		{"deep nesting", "0 f(" + strings.Repeat("[", 100) + ") = 0", `1:69: expression nested more than 64 deep`},
		{"unterminated string", `0 f("abc) = 0`, `1:5: unterminated string`},
		{"unicode column", "0 close(3) = 0 // é\n0 é", `2:3: expected a packet (< or >), a system call, a ` + "`shell command`" + ` or a %{ python }% block after the time, found "é"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.pkt", []byte(tc.src))
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T %v is not a *ParseError", err, err)
			}
			if !strings.Contains(err.Error(), "t.pkt:"+tc.want) {
				t.Errorf("error\n  %v\nwant it to contain\n  t.pkt:%s", err, tc.want)
			}
		})
	}
}

func TestParseTimes(t *testing.T) {
	s, err := Parse("", []byte("0 close(3) = 0\n+.25 close(3) = 0\n1. close(3) = 0\n+0...+0.1 close(3) = 0\n0.1...0.2 close(3) = 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"0.000", "+0.250", "1.000", "+0.000...+0.100", "0.100...0.200"}
	for i, ev := range s.Events {
		if got := ev.Time.String(); got != want[i] {
			t.Errorf("event %d time %q, want %q", i, got, want[i])
		}
	}
}

func TestParseEmptyAndComments(t *testing.T) {
	s, err := Parse("", []byte("// nothing\n/* at */ // all\n\n"))
	if err != nil || len(s.Events) != 0 || len(s.Options) != 0 {
		t.Fatalf("s=%+v err=%v", s, err)
	}
	// A compare directive after the first event is an ordinary comment.
	s, err = Parse("", []byte("0 close(3) = 0\n// compare: bogus\n"))
	if err != nil || s.Compare != CompareAuto {
		t.Fatalf("compare=%v err=%v", s.Compare, err)
	}
}
