package script

import (
	"strings"
	"testing"
)

// ICMP lines run against the engine: the runner builds the ICMP error
// quoting the target's own segment, as packetdrill does.
func TestRunICMPLines(t *testing.T) {
	for _, tc := range []struct {
		name, src string
	}{
		{"port unreachable refuses an open", `--tolerance_usecs=10000
0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 fcntl(3, F_SETFL, O_RDWR | O_NONBLOCK) = 0
+0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)
+0 > S 0:0(0) <...>
+0.1 < icmp unreachable port_unreachable [4294967295:4294967295(0)]
+0 getsockopt(3, SOL_SOCKET, SO_ERROR, [0], [4]) = 0
+0.1 < icmp unreachable port_unreachable [0:0(0)]
+0 getsockopt(3, SOL_SOCKET, SO_ERROR, [ECONNREFUSED], [4]) = 0
`},
		{"frag needed resends at the new size", `--tolerance_usecs=10000
0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
+0 bind(3, ..., ...) = 0
+0 listen(3, 1) = 0
+0 < S 0:0(0) win 65535 <mss 1460>
+0 > S. 0:0(0) ack 1 <...>
+0 < . 1:1(0) ack 1 win 65535
+0 accept(3, ..., ...) = 4
+0 write(4, ..., 1460) = 1460
+0 > P. 1:1461(1460) ack 1
+0.01 < icmp unreachable frag_needed mtu 1000 [1:1461(1460)]
+0 > . 1:961(960) ack 1
+0 > P. 961:1461(500) ack 1
`},
		{"ICMPv6 packet too big resends at the new size", `--ip_version=ipv6
--tolerance_usecs=10000
0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
+0 bind(3, ..., ...) = 0
+0 listen(3, 1) = 0
+0 < S 0:0(0) win 65535 <mss 1440>
+0 > S. 0:0(0) ack 1 <...>
+0 < . 1:1(0) ack 1 win 65535
+0 accept(3, ..., ...) = 4
+0 write(4, ..., 1440) = 1440
+0 > P. 1:1441(1440) ack 1
+0.01 < icmp packet_too_big mtu 1280 [1:1441(1440)]
+0 > . 1:1221(1220) ack 1
+0 > P. 1221:1441(220) ack 1
+0.01 < icmp packet_too_big mtu 1280 [1:1221(1220)]
`},
		{"ICMPv6 unknown next header in SYN-SENT refuses", `--ip_version=ipv6
--tolerance_usecs=10000
0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 fcntl(3, F_SETFL, O_RDWR | O_NONBLOCK) = 0
+0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)
+0 > S 0:0(0) <...>
+0.1 < icmp parameter_problem unknown_next_header [0:0(0)]
+0 getsockopt(3, SOL_SOCKET, SO_ERROR, [ECONNREFUSED], [4]) = 0
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := Run([]byte(tc.src), Options{Name: "icmp.pkt"})
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Passed {
				t.Fatalf("failed: %s", rep.Failure)
			}
			for _, l := range rep.Lines {
				if l.Status == StatusSkip && strings.Contains(l.Reason, "ICMP") {
					t.Errorf("line %d skipped: %s", l.Line, l.Reason)
				}
			}
		})
	}
}

// TCP-MD5 lines: with --tcp_md5_secret and TCP_MD5SIG, inbound "md5 valid"
// segments are signed, the engine signs its own, and the runner checks
// them; an inbound segment without the option is dropped by the engine.
func TestRunMD5Lines(t *testing.T) {
	const src = `--tolerance_usecs=10000
--tcp_md5_secret=secret
0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
+0 setsockopt(3, IPPROTO_TCP, TCP_MD5SIG, [1], 4) = 0
+0 bind(3, ..., ...) = 0
+0 listen(3, 1) = 0
+0 < S 0:0(0) win 32767 <mss 1460,sackOK>
+0 < S 0:0(0) win 32767 <mss 1460,sackOK,md5 valid>
+0 > S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,md5 valid>
+0.1 < . 1:1(0) ack 1 win 32767 <nop,nop,md5 valid>
+0 accept(3, ..., ...) = 4
+0 write(4, ..., 1440) = 1440
+0 > P. 1:1441(1440) ack 1 <nop,nop,md5 valid>
`
	rep, err := Run([]byte(src), Options{Name: "md5.pkt"})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Passed {
		t.Fatalf("failed: %s", rep.Failure)
	}
	dropped := false
	for _, l := range rep.Lines {
		if l.Line == 8 {
			dropped = strings.Contains(strings.Join(l.Engine, " "), "MD5_MISSING")
		}
	}
	if !dropped {
		t.Error("the unsigned SYN was not dropped as MD5_MISSING")
	}
}
