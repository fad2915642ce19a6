package script

import (
	"errors"
	"strings"
	"testing"
)

// FreeBSD's packetdrill dialect: the constructs its TCP test suite uses,
// written here in the project's own words.

func TestPreprocessConditionals(t *testing.T) {
	const src = `0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
#ifdef FreeBSD
+0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
#else
+0 setsockopt(3, SOL_SOCKET, SO_REUSEPORT, [1], 4) = 0
#endif
#ifndef Linux
+0 bind(3, ..., ...) = 0
#endif
#ifdef A
#ifdef B
+0 listen(3, 1) = 0
#endif
#endif
`
	for _, tc := range []struct {
		defines []string
		want    []string // the system calls that remain, with their lines
	}{
		{nil, []string{"1 socket", "5 setsockopt", "8 bind"}},
		{[]string{"FreeBSD"}, []string{"1 socket", "3 setsockopt", "8 bind"}},
		{[]string{"Linux", "A"}, []string{"1 socket", "5 setsockopt"}},
		{[]string{"A", "B"}, []string{"1 socket", "5 setsockopt", "8 bind", "12 listen"}},
	} {
		s, err := ParseDefines("cond.pkt", []byte(src), tc.defines)
		if err != nil {
			t.Fatalf("%v: %v", tc.defines, err)
		}
		var got []string
		for _, ev := range s.Events {
			got = append(got, itoa(ev.Pos.Line)+" "+ev.Syscall.Name)
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("defines %v: events %v, want %v", tc.defines, got, tc.want)
		}
		if string(s.Source) != src {
			t.Errorf("defines %v: Source is not the text as written", tc.defines)
		}
	}
}

func itoa(n int) string { return u32(uint32(n)) }

func TestPreprocessErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"#ifdef A\n0 close(3) = 0\n", "1:1: #ifdef A is not closed: expected #endif before end of file"},
		{"#endif\n", "1:1: #endif without #ifdef"},
		{"#else\n", "1:1: #else without #ifdef"},
		{"#ifdef A\n#else\n#else\n#endif\n", "3:1: a second #else for the #ifdef of line 1"},
		{"#if A\n#endif\n", "1:1: unknown directive #if: expected #ifdef, #ifndef, #else or #endif"},
		{"#ifdef\n#endif\n", `1:1: expected #ifdef NAME, found "#ifdef"`},
		{"#\n", "1:1: expected #ifdef NAME, #ifndef NAME, #else or #endif, found a lone #"},
	} {
		_, err := Parse("", []byte(tc.src))
		var pe *ParseError
		if !errors.As(err, &pe) || err.Error() != tc.want {
			t.Errorf("%q: error %v, want %s", tc.src, err, tc.want)
		}
	}
}

func TestParseFreeBSDPacketForms(t *testing.T) {
	const src = `0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+ 0.10 < (tos 0x28) S 0:0(0) win 65535 <mss 1460,sackOK,eol,eol>
+0 > (ttl 64, tos 0x20) S. ...(0) ack 1 win 65535 <...>
+0 > (hlim 4) R. 0:0(0)! ack 2 win 0
+0 < (class 0x20) . 1:1(0) ack 1 win 32767/udp(9811 > 1)
+0 < icmp unreachable port_unreachable [1:1(0)]
+0 <icmp unreachable frag_needed mtu 1200 [1:1461(1460)/udp(9811 > 1)]
+0 < icmp packet_too_big mtu 1280 [0:0(0)]
`
	s, err := Parse("bsd.pkt", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	ev := s.Events
	if got := ev[1].Time; !got.Start.Rel || got.Start.D.Milliseconds() != 100 {
		t.Errorf(`"+ 0.10" parsed as %v`, got)
	}
	if p := ev[1].Packet; p.TOS == nil || *p.TOS != 0x28 || p.TTL != nil {
		t.Errorf("(tos 0x28): %+v", p)
	}
	if p := ev[2].Packet; !p.SeqAny || p.Len != 0 || *p.TTL != 64 || *p.TOS != 0x20 {
		t.Errorf("...(0) with (ttl 64, tos 0x20): %+v", p)
	}
	if p := ev[3].Packet; !p.SeqAbs || *p.TTL != 4 {
		t.Errorf("0:0(0)! with (hlim 4): %+v", p)
	}
	if p := ev[4].Packet; p.UDPEncap != "9811 > 1" || *p.TOS != 0x20 {
		t.Errorf("/udp(9811 > 1) with (class 0x20): %+v", p)
	}
	if c := ev[5].Packet.ICMP; c == nil || c.Type != "unreachable" || c.Code != "port_unreachable" || c.Seq != 1 || c.Len != 0 {
		t.Errorf("icmp unreachable: %+v", c)
	}
	if c := ev[6].Packet.ICMP; c == nil || c.Code != "frag_needed" || *c.MTU != 1200 || c.Len != 1460 || c.UDPEncap != "9811 > 1" {
		t.Errorf("icmp frag_needed: %+v", c)
	}
	if c := ev[7].Packet.ICMP; c == nil || c.Type != "packet_too_big" || c.Code != "" || *c.MTU != 1280 {
		t.Errorf("icmp packet_too_big: %+v", c)
	}
	// The canonical form parses back to the same script.
	s2, err := Parse("formatted", []byte(s.Format()))
	if err != nil {
		t.Fatalf("%v\n%s", err, s.Format())
	}
	if s.Format() != s2.Format() {
		t.Errorf("format round trip:\n%s\n%s", s.Format(), s2.Format())
	}
}

func TestParseFreeBSDPacketFormErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"0 < S ...(0) win 1\n", "1:7: ...(len) (any sequence number) is only for > lines: an inbound packet needs its sequence number"},
		{"0 < (tos 0x20 S 0:0(0) win 1\n", `1:15: expected tos N, class N, ttl N, hlim N or ) in the IP fields (...), found "S"`},
		{"0 < (tos 0x100) S 0:0(0) win 1\n", "1:10: a TOS byte after tos 0x100 is out of range (at most 255)"},
		{"0 > icmp unreachable port_unreachable [0:0(0)]\n", "1:5: > icmp lines are not supported: tcpstated's targets emit TCP only"},
		{"0 < icmp unreachable port_unreachable\n", "1:38: expected [seq:end(len)], the TCP segment the ICMP error quotes, found end of line"},
		{"0 < icmp unreachable [0:5(4)]\n", "1:27: quoted length 4 does not match 0:5 (end - start = 5)"},
		{"0 < . 1:1(0) win 1/udp(\n", "1:19: unterminated /udp(: expected ) on the same line"},
	} {
		_, err := Parse("", []byte(tc.src))
		if err == nil || err.Error() != tc.want {
			t.Errorf("%q:\n got  %v\n want %s", tc.src, err, tc.want)
		}
	}
}

// Lines the engine target cannot run (TCP over UDP) are skipped with the
// reason, never reported as syntax errors, and the script goes on; an ICMP
// line is sent (script/icmp.go) and, quoting SND.NXT of a SYN,ACK, ignored
// by the engine (RFC 5927 §4.1).
func TestRunSkipsICMPAndUDPLines(t *testing.T) {
	const src = `--tolerance_usecs=10000
0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
+0 bind(3, ..., ...) = 0
+0 listen(3, 1) = 0
+0 < S 0:0(0) win 65535 <mss 1460>
+0 > S. 0:0(0) ack 1 win 65535 <mss 1460>
+0.1 < icmp unreachable port_unreachable [1:1(0)]
+0 < . 1:1(0) ack 1 win 65535/udp(9811 > 1)
+0 < . 1:1(0) ack 1 win 65535
+0 accept(3, ..., ...) = 4
`
	rep, err := Run([]byte(src), Options{Name: "skip.pkt"})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Passed {
		t.Fatalf("failed: %s", rep.Failure)
	}
	reasons := map[int]string{}
	icmpSent := false
	for _, l := range rep.Lines {
		if l.Status == StatusSkip {
			reasons[l.Line] = l.Reason
		}
		if l.Line == 8 && strings.Contains(l.Actual, "sent icmp unreachable port_unreachable") {
			icmpSent = true
		}
	}
	if !icmpSent || reasons[8] != "" || !strings.Contains(reasons[9], "TCP over UDP") {
		t.Errorf("skip reasons: %v", reasons)
	}
}

// "...(len)" accepts any sequence number; the ISN is still learnt from the
// SYN-ACK, so later lines stay relative to it.
func TestRunSequenceWildcardAndAbsolute(t *testing.T) {
	const src = `--tolerance_usecs=10000
--tcpstated_isn=5000
0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
+0 bind(3, ..., ...) = 0
+0 listen(3, 1) = 0
+0 < S 0:0(0) win 65535 <mss 1460>
+0 > S. ...(0) ack 1 win 65535 <mss 1460>
+0 < . 1:1(0) ack 1 win 65535
+0 accept(3, ..., ...) = 4
+0 close(4) = 0
+0 > F. 5001:5001(0)! ack 1 win 65535
`
	rep, err := Run([]byte(src), Options{Name: "wild.pkt"})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Passed {
		t.Fatalf("failed: %s", rep.Failure)
	}
}

func TestDefinesReachTheRunner(t *testing.T) {
	const src = `0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
#ifdef FreeBSD
+0 close(3) = 0
#else
+0 close(3) = -1 EBADF (wrong on purpose)
#endif
`
	rep, err := Run([]byte(src), Options{Name: "d.pkt", Defines: []string{"FreeBSD"}})
	if err != nil || !rep.Passed {
		t.Fatalf("with FreeBSD defined: %v %+v", err, rep)
	}
	rep, err = Run([]byte(src), Options{Name: "d.pkt"})
	if err != nil || rep.Passed {
		t.Fatalf("without it the #else branch runs and fails: %v %+v", err, rep)
	}
}

// packetdrill ends a run at the script's last line; tcpstated by default
// fails a script whose target sent packets nobody expected.
func TestEndRule(t *testing.T) {
	const body = `0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
+0 bind(3, ..., ...) = 0
+0 listen(3, 1) = 0
+0 < S 0:0(0) win 65535 <mss 1460>
+0 > S. 0:0(0) ack 1 win 65535 <mss 1460>
+0 < . 1:1(0) ack 1 win 65535
+0 accept(3, ..., ...) = 4
+0 close(4) = 0
`
	for _, tc := range []struct {
		header string
		opt    EndRule
		pass   bool
	}{
		{"", EndAuto, false},
		{"--tcpstated_end=packetdrill\n", EndAuto, true},
		{"--tcpstated_end=packetdrill\n", EndStrict, false}, // the caller's rule wins
		{"", EndPacketdrill, true},
	} {
		rep, err := Run([]byte(tc.header+body), Options{Name: "end.pkt", End: tc.opt})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Passed != tc.pass {
			t.Errorf("header %q, option %v: passed %v, want %v (%s)", tc.header, tc.opt, rep.Passed, tc.pass, rep.Failure)
		}
		last := rep.Lines[len(rep.Lines)-1]
		if last.Text != "(end of script)" || !strings.Contains(last.Actual, "F. 1:1(0) ack 1") {
			t.Errorf("the trailing FIN is not listed: %+v", last)
		}
	}
}

// sysctl lines before the first connection set the behaviour switch they
// map to; later ones, and ones no switch maps, are skipped with a reason
// that names them.
func TestSysctlLinesSetSwitches(t *testing.T) {
	const src = "0 `sysctl -w net.inet.tcp.insecure_rst=1`\n" +
		"+0 `sysctl -w net.inet.tcp.hostcache.purgenow=1`\n" +
		"+0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n" +
		"+0 bind(3, ..., ...) = 0\n" +
		"+0 listen(3, 1) = 0\n" +
		"+0 `sysctl -w net.inet.tcp.drop_synfin=1`\n"
	s, err := Parse("sysctl.pkt", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	cfg, applied, err := s.ProfileConfig(defaultConfig(), "")
	if err != nil || !cfg.InsecureRST || cfg.DropSynFin {
		t.Fatalf("config: insecure_rst %v drop_synfin %v (%v)", cfg.InsecureRST, cfg.DropSynFin, err)
	}
	if applied[0] != "configures the engine: switch insecure_rst=1 (net.inet.tcp.insecure_rst)" {
		t.Errorf("line 1: %q", applied[0])
	}
	rep, err := Run([]byte(src), Options{Name: "sysctl.pkt"})
	if err != nil || !rep.Passed {
		t.Fatalf("%v %+v", err, rep)
	}
	byLine := map[int]LineResult{}
	for _, l := range rep.Lines {
		byLine[l.Line] = l
	}
	if l := byLine[1]; l.Status != StatusPass || len(l.Notes) != 1 || !strings.Contains(l.Notes[0], "switch insecure_rst=1") {
		t.Errorf("line 1: %+v", l)
	}
	if l := byLine[2]; l.Status != StatusSkip || !strings.Contains(l.Reason, "no behaviour switch of tcpstated maps net.inet.tcp.hostcache.purgenow") {
		t.Errorf("line 2: %+v", l)
	}
	if l := byLine[6]; l.Status != StatusSkip || !strings.Contains(l.Reason, "sets switch drop_synfin, but the engine's configuration is fixed") {
		t.Errorf("line 6: %+v", l)
	}
}

// A profile sets its switches, and the caller's profile wins over the
// script's own.
func TestProfileConfig(t *testing.T) {
	s, err := Parse("p.pkt", []byte("--tcpstated_profile=freebsd\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, err := s.ProfileConfig(defaultConfig(), "")
	if err != nil || !cfg.TimeWaitBSD || cfg.Profile != "freebsd" {
		t.Fatalf("the script's profile: tw_bsd %v profile %q (%v)", cfg.TimeWaitBSD, cfg.Profile, err)
	}
	cfg, _, err = s.ProfileConfig(defaultConfig(), "rfc")
	if err != nil || cfg.TimeWaitBSD {
		t.Fatalf("--profile=rfc: tw_bsd %v (%v)", cfg.TimeWaitBSD, err)
	}
	if _, _, err := s.ProfileConfig(defaultConfig(), "solaris"); err == nil {
		t.Fatal("an unknown profile was accepted")
	}
	if _, err := Parse("p.pkt", []byte("--tcpstated_profile=solaris\n0 close(3) = 0\n")); err == nil || !strings.Contains(err.Error(), `unknown profile "solaris"`) {
		t.Fatalf("header: %v", err)
	}
}
