package fsm

import (
	"fmt"
	"testing"
)

// TestRcvWindowLinux: under tcp_rmem the SYN's window and shift are the
// ones this machine's Linux 6.18 sent in the same exchanges (measured
// with script run --target=linux, tcp_rmem "4096 131072 6291456"):
//
//	passive, timestamps:      < S <mss 1460,sackOK,TS,nop,wscale 7>  > S. win 65160 <... wscale 7>  (45 x 1448)
//	passive, no options:      < S <mss 1000>                         > S. win 64240 <mss 1460>    (44 x 1460)
//	active:                   > S win 64240 <mss 1460,sackOK,TS,nop,wscale 7>
//	SO_RCVBUF 8192 (16384):   > S. win 7240 <... wscale 0>           (5 x 1448)
//	SO_RCVBUF 300000 (600000): > S win 65535 <... wscale 3>
//	tcp_rmem max 33554432:    wscale 10
//
// and off (rfc), the window is the buffer and the shift the smallest that
// covers it. Reference: RFC 7323 §2.2; RFC 9293 §3.8.6.
func TestRcvWindowLinux(t *testing.T) {
	const rmem = "4096 131072 6291456"
	for _, tc := range []struct {
		name    string
		rmem    string
		rcvbuf  int // setsockopt(SO_RCVBUF) before the open; 0 none
		passive bool
		peer    Options
		wnd     uint16
		wscale  int // -1 not offered
		buffer  int // getsockopt(SO_RCVBUF)
	}{
		{"passive timestamps", rmem, 0, true, Options{HasMSS: true, MSS: 1460, SACKPermitted: true, HasTimestamp: true, TSVal: 1, HasWScale: true, WScale: 7}, 65160, 7, 131072},
		{"passive no options", rmem, 0, true, Options{HasMSS: true, MSS: 1000}, 64240, -1, 131072},
		{"active", rmem, 0, false, Options{}, 64240, 7, 131072},
		{"SO_RCVBUF 8192", rmem, 8192, true, Options{HasMSS: true, MSS: 1460, SACKPermitted: true, HasTimestamp: true, TSVal: 1, HasWScale: true, WScale: 7}, 7240, 0, 16384},
		{"SO_RCVBUF 300000", rmem, 300000, false, Options{}, 65535, 3, 600000},
		{"host tcp_rmem", "4096 131072 33554432", 0, false, Options{}, 64240, 10, 131072},
		{"rfc", "0", 0, false, Options{}, 65535, 0, 65535},
		{"rfc SO_RCVBUF 300000", "0", 300000, false, Options{}, 65535, 3, 300000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := withSwitches(t, 300, "tcp_rmem", tc.rmem)
			cfg.NoTimestamps = false
			if tc.rcvbuf > 0 {
				cfg.SetRecvBufferOption(tc.rcvbuf)
			}
			srv := newSide(t, "server", cfg)
			var r Ready
			if tc.passive {
				if _, err := srv.e.Listen(serverAddr, 0); err != nil {
					t.Fatal(err)
				}
				srv.inject(clientAddr, serverAddr, Segment{Flags: FlagSYN, Seq: 100, Window: 65535, Options: tc.peer})
				r = srv.collect()
			} else {
				if _, err := srv.e.Connect(serverAddr, clientAddr); err != nil {
					t.Fatal(err)
				}
				r = srv.collect()
			}
			p := srv.out[0]
			o := p.Segment.Options
			wscale := -1
			if o.HasWScale {
				wscale = int(o.WScale)
			}
			if p.Segment.Window != tc.wnd || wscale != tc.wscale {
				t.Errorf("SYN win %d wscale %d; want win %d wscale %d", p.Segment.Window, wscale, tc.wnd, tc.wscale)
			}
			if got := srv.e.Config().RecvBuffer; got != tc.buffer {
				t.Errorf("SO_RCVBUF reads %d, want %d", got, tc.buffer)
			}
			if tc.rmem != "0" {
				explanationNaming(t, r, CodeSynWindowLinux, "WND")
			} else if hasExplanation(r, CodeSynWindowLinux) {
				t.Errorf("SYN_WINDOW_LINUX explained with tcp_rmem off")
			}
		})
	}
}

// TestRcvWindowLinuxKeepsRightEdge: the first ACK after data keeps the
// right edge the SYN,ACK offered, rounded up to the scale unit, as the
// kernel did (Linux 6.18):
//
//	> S. 0:0(0) ack 1 win 65160 <...,wscale 7>
//	< P. 1:1001(1000) ack 1
//	> . 1:1(0) ack 1001 win 502      (64160 bytes to the edge, 501.25 units)
func TestRcvWindowLinuxKeepsRightEdge(t *testing.T) {
	cfg := withSwitches(t, 300, "tcp_rmem", "4096 131072 6291456")
	cfg.NoTimestamps = false
	srv := newSide(t, "server", cfg)
	if _, err := srv.e.Listen(serverAddr, 0); err != nil {
		t.Fatal(err)
	}
	peer := Options{HasMSS: true, MSS: 1460, SACKPermitted: true, HasTimestamp: true, TSVal: 1, HasWScale: true, WScale: 7}
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagSYN, Seq: 0, Window: 65535, Options: peer})
	if p := srv.expect("S. seq=300 ack=1"); p.Segment.Window != 65160 {
		t.Fatalf("SYN,ACK win %d, want 65160", p.Segment.Window)
	}
	ts := Options{HasTimestamp: true, TSVal: 2, TSEcr: 0}
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: 1, Ack: 301, Window: 514, Options: ts})
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK | FlagPSH, Seq: 1, Ack: 301, Window: 514, Options: ts, Payload: make([]byte, 1000)})
	p := srv.expect(". seq=301 ack=1001")
	if got := fmt.Sprint(p.Segment.Window); got != "502" {
		t.Errorf("ACK win %s, want 502 (<<7: 64256)", got)
	}
}

// TestRcvMemSwitchValues: tcp_rmem takes Linux's three counts or 0 (off),
// and names anything else.
func TestRcvMemSwitchValues(t *testing.T) {
	for _, tc := range []struct {
		v    string
		want [3]int
		ok   bool
	}{
		{"4096 131072 6291456", [3]int{4096, 131072, 6291456}, true},
		{"4096\t131072   6291456", [3]int{4096, 131072, 6291456}, true},
		{"0", [3]int{}, true},
		{"0 0 0", [3]int{}, true},
		{"4096 131072", [3]int{}, false},
		{"3 2 1", [3]int{}, false},
		{"4096 131072 x", [3]int{}, false},
		{"-1 131072 6291456", [3]int{}, false},
	} {
		var c Config
		err := c.SetSwitch("tcp_rmem", tc.v)
		if (err == nil) != tc.ok || c.RcvMem != tc.want {
			t.Errorf("tcp_rmem=%q: RcvMem %v, err %v; want %v, ok %v", tc.v, c.RcvMem, err, tc.want, tc.ok)
		}
	}
}
