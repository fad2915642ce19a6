package script

import (
	"bytes"
	"testing"
)

// TestFastOpenOptionSyntax: packetdrill's FO and FOEXP options are sent as
// kind 34 and kind 254 (magic 0xF989), and emitted ones shown that way.
func TestFastOpenOptionSyntax(t *testing.T) {
	tests := []struct {
		text string
		wire []byte
	}{
		{"FO", []byte{34, 2}},
		{"FO 0102030405060708", []byte{34, 10, 1, 2, 3, 4, 5, 6, 7, 8}},
		{"FO 01", []byte{34, 3, 1}},
		{"FOEXP", []byte{254, 4, 0xF9, 0x89}},
		{"FOEXP 01020304", []byte{254, 8, 0xF9, 0x89, 1, 2, 3, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			b, ok, err := encodeFastOpen(nil, tt.text)
			if !ok || err != nil || !bytes.Equal(b, tt.wire) {
				t.Fatalf("encode: % x, %v, %v; want % x", b, ok, err, tt.wire)
			}
			text, ok := decodeFastOpen(tt.wire[0], tt.wire[2:])
			if !ok || text != tt.text {
				t.Fatalf("decode: %q, %v", text, ok)
			}
		})
	}
	if _, ok, err := encodeFastOpen(nil, "FO 01x"); !ok || err == nil {
		t.Error("a cookie that is not hex is not reported")
	}
	if _, ok, _ := encodeFastOpen(nil, "md5"); ok {
		t.Error("md5 taken for Fast Open")
	}
	if _, ok := decodeFastOpen(254, []byte{0x12, 0x34}); ok {
		t.Error("another experimental option shown as FOEXP")
	}
}

// fastOpenClient is FreeBSD's way, as its suite's fast-open/ scripts
// write it: TCP_FASTOPEN on the socket, then sendto connects with data.
// The first connection asks for a cookie, the second sends its data on
// the SYN with it.
const fastOpenClient = `--tolerance_usecs=10000
 0.00 ` + "`sysctl -w net.inet.tcp.fastopen.client_enable=1`" + `
+0.00 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0.00 setsockopt(3, IPPROTO_TCP, TCP_FASTOPEN, [1], 4) = 0
+0.00 sendto(3, ..., 100, 0, ..., ...) = 100
+0.00 > S    0:0(0)             win 65535 <...>
+0.05 < S.   0:0(0)     ack   1 win 65535 <mss 1460,sackOK,FO 0102030405060708>
+0.00 > P.   1:101(100) ack   1 win 65535
+0.05 <  .   1:1(0)     ack 101 win 65535
+0.00 < F.   1:1(0)     ack 101 win 65535
+0.00 >  . 101:101(0)   ack   2 win 65535
+0.00 close(3) = 0
+0.00 > F. 101:101(0)   ack   2 win 65535
+0.05 <  .   2:2(0)     ack 102 win 65535
+0.00 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0.00 sendto(3, ..., 100, MSG_FASTOPEN, ..., ...) = 100
+0.00 > S    0:100(100)         win 65535 <...>
+0.05 < S.   0:0(0)     ack 101 win 65535 <mss 1460,sackOK,eol,eol>
+0.00 >  . 101:101(0)   ack   1 win 65535
`

func TestFastOpenClientScript(t *testing.T) {
	for _, profile := range []string{"rfc", "freebsd"} {
		rep := run(t, fastOpenClient, Options{Profile: profile, End: EndPacketdrill})
		if !rep.Passed {
			t.Fatalf("profile %s:\n%s", profile, verboseText(rep))
		}
	}
}

// TestFastOpenClientOffScript: without the client role the same calls
// make a plain SYN and send the data after the handshake.
func TestFastOpenClientOffScript(t *testing.T) {
	src := `0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 setsockopt(3, IPPROTO_TCP, TCP_FASTOPEN, [1], 4) = 0
+0 sendto(3, ..., 100, 0, ..., ...) = 100
+0 > S 0:0(0) win 65535 <...>
+0.05 < S. 0:0(0) ack 1 win 65535 <mss 1460>
+0 > P. 1:101(100) ack 1 win 65535
`
	rep := run(t, src, Options{End: EndPacketdrill})
	if !rep.Passed {
		t.Fatal(verboseText(rep))
	}
}

// TestFastOpenServerScript: a listener with TCP_FASTOPEN under
// fastopen.server_enable=1 answers a cookie request with a SYN,ACK, and
// a SYN with a wrong cookie has its data left unacknowledged.
func TestFastOpenServerScript(t *testing.T) {
	src := `0 ` + "`sysctl -w net.inet.tcp.fastopen.server_enable=1`" + `
+0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 bind(3, ..., ...) = 0
+0 listen(3, 10) = 0
+0 setsockopt(3, IPPROTO_TCP, TCP_FASTOPEN, [1], 4) = 0
0.100 < S 0:10(10) win 65535 <mss 1460,FO 0102030405060708>
+0    > S. 0:0(0) ack 1 win 65535 <...>
0.200 < . 1:1(0) ack 1 win 65535
+0    accept(3, ..., ...) = 4
`
	rep := run(t, src, Options{End: EndPacketdrill})
	if !rep.Passed {
		t.Fatal(verboseText(rep))
	}
}

// TestFastOpenConnectScript: Linux's TCP_FASTOPEN_CONNECT: connect returns
// at once without a SYN, and the first write sends it (a cookie request
// here, the data after the handshake).
func TestFastOpenConnectScript(t *testing.T) {
	src := `0 ` + "`sysctl -w net.inet.tcp.fastopen.client_enable=1`" + `
+0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 setsockopt(3, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, [1], 4) = 0
+0 connect(3, ..., ...) = 0
+0.1 write(3, ..., 100) = 100
+0 > S 0:0(0) win 65535 <...>
+0.05 < S. 0:0(0) ack 1 win 65535 <mss 1460,FO 0102030405060708>
+0 > P. 1:101(100) ack 1 win 65535
`
	rep := run(t, src, Options{End: EndPacketdrill})
	if !rep.Passed {
		t.Fatal(verboseText(rep))
	}
}
