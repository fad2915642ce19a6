package bridge

import (
	"testing"
)

func TestIsTCP(t *testing.T) {
	v4 := func(proto byte, frag uint16) []byte {
		p := make([]byte, 40)
		p[0], p[9] = 0x45, proto
		p[6], p[7] = byte(frag>>8), byte(frag)
		return p
	}
	v6 := make([]byte, 60)
	v6[0], v6[6] = 0x60, 6
	icmp6 := append([]byte(nil), v6...)
	icmp6[6] = 58
	cases := []struct {
		name string
		p    []byte
		want bool
	}{
		{"IPv4 TCP", v4(6, 0), true},
		{"IPv4 TCP, don't fragment", v4(6, 0x4000), true},
		{"IPv4 TCP, more fragments", v4(6, 0x2000), false},
		{"IPv4 TCP, a later fragment", v4(6, 0x0010), false},
		{"IPv4 UDP", v4(17, 0), false},
		{"IPv6 TCP", v6, true},
		{"IPv6 ICMPv6 (neighbour discovery)", icmp6, false},
		{"short", []byte{0x45, 0}, false},
		{"not IP", make([]byte, 40), false},
	}
	for _, tc := range cases {
		if got := isTCP(tc.p); got != tc.want {
			t.Errorf("%s: isTCP = %v, want %v", tc.name, got, tc.want)
		}
	}
}
