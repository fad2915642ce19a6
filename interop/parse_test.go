package interop

import (
	"bytes"
	"testing"
)

// The suite reads ss(8) and tcpstated tun's output; these check the
// readers against real output, without root.

const ssTan = `State     Recv-Q Send-Q Local Address:Port  Peer Address:PortProcess
TIME-WAIT 0      0           10.9.0.1:57654     10.9.0.2:80
ESTAB     0      0           10.9.0.1:57655     10.9.0.2:80
`

const ssTni = `State Recv-Q Send-Q Local Address:Port  Peer Address:PortProcess
ESTAB 0      0           10.9.0.1:46532     10.9.0.2:80
	 bbr wscale:7,10 rto:204 rtt:0.278/0.148 ato:40 mss:1448 pmtu:1500 rcvmss:536 advmss:1448 cwnd:11
`

func TestSSState(t *testing.T) {
	cases := []struct{ local, remote, want string }{
		{"10.9.0.1:57654", "10.9.0.2:80", "TIME-WAIT"},
		{"10.9.0.1:57655", "10.9.0.2:80", "ESTAB"},
		{"10.9.0.1:1", "10.9.0.2:80", ""}, // no socket: CLOSED
	}
	for _, tc := range cases {
		if got := ssState(ssTan, tc.local, tc.remote); got != tc.want {
			t.Errorf("ssState(%s→%s) = %q, want %q", tc.local, tc.remote, got, tc.want)
		}
	}
}

func TestSSDetails(t *testing.T) {
	info, ok := ssDetails(ssTni, "10.9.0.1:46532", "10.9.0.2:80")
	if !ok || info.sndWscale != 7 || info.rcvWscale != 10 || info.mss != 1448 {
		t.Errorf("ssDetails = %+v, %v; want wscale 7,10 and mss 1448 (not advmss or rcvmss)", info, ok)
	}
	if _, ok := ssDetails(ssTni, "10.9.0.1:1", "10.9.0.2:80"); ok {
		t.Errorf("found a socket that is not there")
	}
}

func TestLineFields(t *testing.T) {
	name, kv := lineFields("done sessions/tun/endpoints/2 received=14 received_sha256=c88d state=LAST-ACK")
	if name != "sessions/tun/endpoints/2" || kv["received"] != "14" || kv["state"] != "LAST-ACK" || kv["received_sha256"] != "c88d" {
		t.Errorf("lineFields: %q %v", name, kv)
	}
	name, kv = lineFields("error sessions/tun/endpoints/1 received=0 sent=0: connection refused")
	if name != "sessions/tun/endpoints/1" || kv["sent"] != "0" {
		t.Errorf("lineFields of an error line: %q %v", name, kv)
	}
}

// TestPattern: the kernel's pattern is tcpstated tun's --send-bytes one,
// byte i = i mod 251, whatever the write sizes.
func TestPattern(t *testing.T) {
	var b bytes.Buffer
	writePattern(&b, 200_000)
	for i, c := range b.Bytes() {
		if c != byte(i%251) {
			t.Fatalf("byte %d is %d, want %d", i, c, i%251)
		}
	}
	if patternSHA(0) != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("the empty pattern's SHA-256 is not the empty string's")
	}
}
