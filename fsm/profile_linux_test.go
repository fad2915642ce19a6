package fsm

import (
	"errors"
	"testing"
	"time"
)

// TestLinuxProfileValues: the linux profile sets Linux 6.x's defaults and
// names itself; every switch it names exists.
func TestLinuxProfileValues(t *testing.T) {
	p, ok := ProfileByName("linux")
	if !ok {
		t.Fatal("no linux profile")
	}
	var cfg Config
	if err := p.Apply(&cfg); err != nil {
		t.Fatal(err)
	}
	cfg = cfg.Defaults()
	for _, tc := range []struct {
		name string
		got  any
		want any
	}{
		{"Profile", cfg.Profile, "linux"},
		{"InitialWindow", cfg.InitialWindow, 10},
		{"WindowScale", cfg.WindowScale, 7}, // tcp_rmem's maximum, 6 MiB: 22 bits, 7 beyond the field's 16
		{"RecvBuffer", cfg.RecvBuffer, 131072},
		{"RcvMem", cfg.RcvMem, [3]int{4096, 131072, 6291456}},
		{"QuickAck", cfg.QuickAck, 16},
		{"DelayedAckTimeout", cfg.DelayedAckTimeout, 40 * time.Millisecond},
		{"MinRTO", cfg.MinRTO, 200 * time.Millisecond},
		{"InitialRTO", cfg.InitialRTO, time.Second},
		{"MaxRTO", cfg.MaxRTO, 120 * time.Second},
		{"SynRetries", cfg.SynRetries, 6},
		{"SynAckRetries", cfg.SynAckRetries, 5},
		{"ChallengeAckLimit", cfg.ChallengeAckLimit, 2147483647},
		{"RstAck", cfg.RstAck, true},
		{"DelAckFin", cfg.DelAckFin, false}, // Linux 6.18 acknowledged every FIN at once
		{"RstClosingReset", cfg.RstClosingReset, true},
		{"InfoLinux", cfg.InfoLinux, true},
		{"SendWaitConnect", cfg.SendWaitConnect, true},
		{"RACK", !cfg.Recovery.NoRACK, true},
		{"TLP", !cfg.Recovery.NoTLP, true},
		{"CongestionControl", cfg.Recovery.CongestionControl, CCCubic},
		{"HyStart", cfg.Recovery.HyStart, true},
		{"KeepAlive", cfg.KeepAlive, false}, // RFC 1122 §4.2.3.6 MUST: off
	} {
		if tc.got != tc.want {
			t.Errorf("linux %s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

// TestLinuxSysctlSwitch: Linux's net.ipv4.tcp_* sysctls whose values need
// no unit change map to switches; the others do not.
func TestLinuxSysctlSwitch(t *testing.T) {
	for _, tc := range []struct{ sysctl, want string }{
		{"net.ipv4.tcp_syn_retries", "syn_retries"},
		{"net.ipv4.tcp_synack_retries", "synack_retries"},
		{"net.ipv4.tcp_challenge_ack_limit", "challenge_ack_limit"},
		{"net.ipv4.tcp_window_scaling", "window_scaling"},
		{"net.ipv4.tcp_sack", "sack"},
		{"net.ipv4.tcp_timestamps", "timestamps"},
		{"net.ipv4.tcp_congestion_control", "congestion_control"},
		{"net.ipv4.tcp_keepalive_probes", "keepcnt"},
		{"net.ipv4.tcp_keepalive_time", ""}, // seconds, not the switch's ms
		{"net.ipv4.tcp_rmem", "tcp_rmem"},
		{"net.ipv4.tcp_wmem", ""},
		{"net.ipv4.syn_retries", ""},
	} {
		got, ok := SysctlSwitch(tc.sysctl)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("SysctlSwitch(%q) = %q, %v; want %q", tc.sysctl, got, ok, tc.want)
		}
	}
}

// TestQuickAck: with delayed ACKs on, small data segments are
// acknowledged at once while quick-ack mode lasts (quickack=N), then
// wait for the delayed-ACK timer; under rfc (quickack=0) the first waits.
//
//	quickack=2:  < P. 1:3 > . ack 3   < P. 3:5 > . ack 5   < P. 5:7 (nothing)
//	quickack=0:  < P. 1:3 (nothing)
//
// Reference: RFC 9293 §3.8.6.3, RFC 1122 §4.2.3.2, RFC 5681 §4.2.
func TestQuickAck(t *testing.T) {
	for _, tc := range []struct {
		quick  string
		acked  int // segments acknowledged at once
		expect []string
	}{
		{"0", 0, nil},
		{"2", 2, []string{". seq=301 ack=103", ". seq=301 ack=105"}},
		{"16", 3, []string{". seq=301 ack=103", ". seq=301 ack=105", ". seq=301 ack=107"}},
	} {
		t.Run("quickack="+tc.quick, func(t *testing.T) {
			cfg := withSwitches(t, 300, "quickack", tc.quick)
			cfg.NoDelayedAck = false
			_, srv, _, _ := established(t, fixedConfig(100), cfg)
			for i := range 3 {
				srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK | FlagPSH, Seq: Seq(101 + 2*i), Ack: 301, Window: 65535, Payload: []byte("ab")})
				if i >= tc.acked {
					srv.expectNothing()
					continue
				}
				explanationNaming(t, srv.collect(), CodeQuickAck, "quickack")
				srv.expect(tc.expect[i])
			}
		})
	}
}

// TestDelAckFin: a FIN in ESTABLISHED is acknowledged at once under rfc;
// under delack_fin the ACK waits for the delayed-ACK timer, and a close
// before it fires carries the ACK on our FIN.
//
//	rfc:           < F. seq=101      > . ack=102
//	delack_fin=1:  < F. seq=101      (nothing); 40 ms > . ack=102
//	delack_fin=1:  < F. seq=101      close()  > F. seq=301 ack=102
//
// Reference: RFC 9293 §3.10.7.4 eighth step, §3.8.6.3.
func TestDelAckFin(t *testing.T) {
	for _, tc := range []struct {
		name  string
		on    bool
		close bool
	}{{"rfc", false, false}, {"timer", true, false}, {"close", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := withSwitches(t, 300, "delack_fin", b2s(tc.on), "delacktime", "40")
			cfg.NoDelayedAck = false
			_, srv, _, s := established(t, fixedConfig(100), cfg)
			srv.inject(clientAddr, serverAddr, Segment{Flags: FlagFIN | FlagACK, Seq: 101, Ack: 301, Window: 65535})
			if !tc.on {
				srv.expect(". seq=301 ack=102")
				return
			}
			explanationNaming(t, srv.collect(), CodeFinAckDelayed, "delack_fin")
			srv.expectNothing()
			srv.wantState(s, CloseWait)
			if tc.close {
				if err := srv.e.Close(s); err != nil {
					t.Fatal(err)
				}
				srv.expect("F. seq=301 ack=102")
				srv.e.AdvanceTo(srv.e.Now() + 40*time.Millisecond)
				srv.expectNothing()
				return
			}
			srv.e.AdvanceTo(srv.e.Now() + 39*time.Millisecond)
			srv.expectNothing()
			srv.e.AdvanceTo(srv.e.Now() + time.Millisecond)
			srv.expect(". seq=301 ack=102")
		})
	}
}

// TestRstAck: the reset of an ABORT, of a close with unread data, and of
// a closed listener's queued connection: <CTL=RST> under rfc, RST,ACK with
// RCV.NXT under rst_ack. Reference: RFC 9293 §3.10.5, §3.4.
func TestRstAck(t *testing.T) {
	for _, how := range []string{"abort", "close-unread"} {
		for _, tc := range []struct {
			on   bool
			want string
		}{{false, "R seq=301"}, {true, "R. seq=301 ack=101"}} {
			t.Run(how+"/rst_ack="+b2s(tc.on), func(t *testing.T) {
				_, srv, _, s := established(t, fixedConfig(100), withSwitches(t, 300, "rst_ack", b2s(tc.on)))
				want := tc.want
				if how == "close-unread" {
					srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: 101, Ack: 301, Window: 65535, Payload: []byte("xy")})
					srv.expect(". seq=301 ack=103")
					if tc.on {
						want = "R. seq=301 ack=103"
					}
					srv.e.Close(s)
				} else {
					srv.e.Abort(s)
				}
				r := srv.collect()
				if tc.on {
					explanationNaming(t, r, CodeRstWithAck, "rst_ack")
				}
				srv.expect(want)
				srv.wantState(s, Closed)
			})
		}
	}
}

// TestLinuxSynBackoff: Linux 6.11+'s SYN timing: 1 s initial RTO kept
// for the first four timeouts (tcp_syn_linear_timeouts), then doubled;
// tcp_syn_retries 6 bounds the time, 127 s, so the open ends at the first
// timeout after it (as this kernel gave up at 7 s with tcp_syn_retries 2
// after SYNs at 0 to 5 s).
//
//	0 s > S, 1, 2, 3, 4, 5, 7, 11, 19, 35, 67 s > S
//	131 s SYN_GIVE_UP
func TestLinuxSynBackoff(t *testing.T) {
	cli := newSide(t, "client", profileConfig(t, "linux", 100))
	c, _ := cli.e.Connect(clientAddr, serverAddr)
	cli.expect("S seq=100")
	for _, s := range []time.Duration{1, 2, 3, 4, 5, 7, 11, 19, 35, 67} {
		cli.e.AdvanceTo(s*time.Second - time.Millisecond)
		cli.expectNothing()
		cli.e.AdvanceTo(s * time.Second)
		cli.expect("S seq=100")
	}
	cli.e.AdvanceTo(131*time.Second - time.Millisecond)
	cli.expectNothing()
	cli.e.AdvanceTo(131 * time.Second)
	wantExplanation(t, cli.collect(), CodeSynGiveUp)
	cli.wantState(c, Closed)
}

// TestPropertyLossyLinkLinux: the lossy-link delivery property under the
// linux profile (quick ACKs, delayed FIN ACKs, RST,ACK, CUBIC, RACK-TLP,
// 200 ms minimum RTO).
func TestPropertyLossyLinkLinux(t *testing.T) {
	propertyLossyLinkProfile(t, "linux")
}

// TestRstAckDataAfterClose: the RST that answers data arriving after
// close is a reply to that segment and carries no ACK even under rst_ack,
// as Linux's. Reference: RFC 9293 §3.10.7.4 seventh step.
func TestRstAckDataAfterClose(t *testing.T) {
	_, srv, _, s := established(t, fixedConfig(100), withSwitches(t, 300, "rst_ack", "1"))
	srv.e.Close(s)
	srv.expect("F. seq=301 ack=101")
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: 101, Ack: 302, Window: 65535, Payload: []byte("late")})
	wantExplanation(t, srv.collect(), CodeDataAfterCloseReset)
	srv.expect("R seq=302")
	srv.wantState(s, Closed)
}

// TestSendWaitConnect: SEND in SYN-SENT queues under rfc and takes
// nothing (insufficient resources) under send_wait_connect; once
// ESTABLISHED both take the data.
//
//	rfc:                   connect; send "hi" = 2
//	send_wait_connect=1:   connect; send "hi" = insufficient resources
//
// Reference: RFC 9293 §3.10.2.
func TestSendWaitConnect(t *testing.T) {
	for _, on := range []bool{false, true} {
		cli := newSide(t, "client", withSwitches(t, 100, "send_wait_connect", b2s(on)))
		c, _ := cli.e.Connect(clientAddr, serverAddr)
		cli.expect("S seq=100")
		n, err := cli.e.Send(c, []byte("hi"))
		if !on {
			if n != 2 || err != nil {
				t.Fatalf("rfc: Send = %d, %v; want 2 queued", n, err)
			}
			continue
		}
		if n != 0 || !errors.Is(err, ErrInsufficientResources) {
			t.Fatalf("send_wait_connect: Send = %d, %v; want insufficient resources", n, err)
		}
		explanationNaming(t, cli.collect(), CodeSendWaitConnect, "send_wait_connect")
		cli.inject(serverAddr, clientAddr, Segment{Flags: FlagSYN | FlagACK, Seq: 300, Ack: 101, Window: 65535})
		cli.expect(". seq=101 ack=301")
		if n, err := cli.e.Send(c, []byte("hi")); n != 2 || err != nil {
			t.Fatalf("ESTABLISHED: Send = %d, %v", n, err)
		}
	}
}

// TestLinuxInfo: what TCP_INFO shows under info_linux: TIME-WAIT as
// CLOSED, the send MSS less the timestamp option, the receive MSS at most
// 536 before data; without the switch the engine's own values.
// Reference: RFC 9293 §3.9.1.10 (STATUS is implementation-dependent).
func TestLinuxInfo(t *testing.T) {
	for _, tc := range []struct {
		name           string
		on             bool
		in             EndpointInfo
		state          State
		sndMSS, rcvMSS uint16
	}{
		{"rfc time-wait", false, EndpointInfo{State: TimeWait, SndMSS: 1460, RcvMSS: 1460, Timestamps: true, IRS: 1, RcvNxt: 2}, TimeWait, 1460, 1460},
		{"linux time-wait", true, EndpointInfo{State: TimeWait, SndMSS: 1460, RcvMSS: 1460, Timestamps: true, IRS: 1, RcvNxt: 2}, Closed, 1448, 536},
		{"linux no timestamps, data", true, EndpointInfo{State: Established, SndMSS: 1460, RcvMSS: 1460, IRS: 1, RcvNxt: 101}, Established, 1460, 1460},
		{"linux small mss", true, EndpointInfo{State: Established, SndMSS: 500, RcvMSS: 500, Timestamps: true, IRS: 1, RcvNxt: 2}, Established, 488, 500},
	} {
		cfg := Config{InfoLinux: tc.on}
		st, snd, rcv := cfg.LinuxInfo(tc.in)
		if st != tc.state || snd != tc.sndMSS || rcv != tc.rcvMSS {
			t.Errorf("%s: LinuxInfo = %s %d %d, want %s %d %d", tc.name, st, snd, rcv, tc.state, tc.sndMSS, tc.rcvMSS)
		}
	}
}

// TestRstErrnoLinux: the error a RST leaves, by state, under rfc and
// rst_errno_linux. Reference: RFC 9293 §3.10.7.4 second step.
//
//	CLOSE-WAIT:                  rfc "connection reset", linux "connection closing" (EPIPE)
//	SYN-RECEIVED (active open):  rfc "connection refused", linux "connection reset"
//	ESTABLISHED:                 "connection reset" under both
func TestRstErrnoLinux(t *testing.T) {
	for _, tc := range []struct {
		state    State
		on       bool
		want     error
		explains bool
	}{
		{CloseWait, false, ErrConnectionReset, false},
		{CloseWait, true, ErrConnectionClosing, true},
		{SynReceived, false, ErrConnectionRefused, false},
		{SynReceived, true, ErrConnectionReset, true},
		{Established, true, ErrConnectionReset, false},
	} {
		t.Run(tc.state.String()+"/"+b2s(tc.on), func(t *testing.T) {
			cfg := withSwitches(t, 100, "rst_errno_linux", b2s(tc.on))
			var sd *side
			var id EndpointID
			var rst Segment
			if tc.state == SynReceived {
				sd = newSide(t, "client", cfg)
				id, _ = sd.e.Connect(clientAddr, serverAddr)
				sd.expect("S seq=100")
				sd.inject(serverAddr, clientAddr, Segment{Flags: FlagSYN, Seq: 300, Window: 65535})
				sd.collect()
				rst = Segment{Flags: FlagRST, Seq: 301}
			} else {
				cfg = withSwitches(t, 300, "rst_errno_linux", b2s(tc.on))
				_, sd, _, id = established(t, fixedConfig(100), cfg)
				if tc.state == CloseWait {
					sd.inject(clientAddr, serverAddr, Segment{Flags: FlagFIN | FlagACK, Seq: 101, Ack: 301, Window: 65535})
					sd.collect()
					rst = Segment{Flags: FlagRST, Seq: 102}
				} else {
					rst = Segment{Flags: FlagRST, Seq: 101}
				}
			}
			sd.wantState(id, tc.state)
			if tc.state == SynReceived {
				sd.inject(serverAddr, clientAddr, rst)
			} else {
				sd.inject(clientAddr, serverAddr, rst)
			}
			r := sd.collect()
			sd.wantState(id, Closed)
			if tc.explains {
				explanationNaming(t, r, CodeRstErrnoLinux, "rst_errno_linux")
			}
			if in, _ := sd.e.Endpoint(id); !errors.Is(in.Err, tc.want) {
				t.Fatalf("error %v, want %v", in.Err, tc.want)
			}
		})
	}
}

// TestNagleMinshall: a 2000-byte write with one full segment in flight:
// under rfc the 540-byte tail waits for the ACK (Nagle); under
// nagle_minshall it goes at once, and a second short write then waits,
// since a short segment is unacknowledged.
//
//	rfc:               write 2000  > . 301:1761   (tail waits)
//	nagle_minshall=1:  write 2000  > . 301:1761  > P. 1761:2301
//	                   write 10    (waits for the ACK of 2301)
//
// Reference: RFC 9293 §3.7.4, RFC 1122 §4.2.3.4.
func TestNagleMinshall(t *testing.T) {
	for _, on := range []bool{false, true} {
		cfg := withSwitches(t, 300, "nagle_minshall", b2s(on))
		_, srv, _, s := established(t, fixedConfig(100), cfg)
		mustSend(t, srv, s, string(make([]byte, 2000)))
		r := srv.collect()
		srv.expect(". seq=301 ack=101 len=1460")
		if !on {
			srv.expectNothing()
			continue
		}
		explanationNaming(t, r, CodeNagleMinshall, "nagle_minshall")
		srv.expect("P. seq=1761 ack=101 len=540")
		mustSend(t, srv, s, "0123456789")
		srv.expectNothing()
		srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: 101, Ack: 2301, Window: 65535})
		srv.expect("P. seq=2301 ack=101 len=10")
	}
}
