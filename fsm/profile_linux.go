package fsm

import (
	"fmt"
	"strconv"
	"strings"
)

// The linux profile (issue 12): Linux 6.x's default choices, so that a
// script run with --target=both --profile=linux compares the engine with
// the kernel choice for choice. The switches below are the ones only that
// profile needs; the others it sets (rexmit_min, delacktime, syn_retries,
// ...) are in profile.go. Each keeps its rfc value in every other profile.

func init() {
	switches = append(switches, linuxSwitches...)
}

// negBoolSwitch is a switch that reads 1 when the Config field (a "No..."
// field) is false.
func negBoolSwitch(name, doc string, field func(*Config) *bool) switchSpec {
	return switchSpec{Switch{name, doc, "1"},
		func(c *Config) string { return b2s(!*field(c)) },
		func(c *Config, v string) error {
			b, err := parseSwitchBool(v)
			if err == nil {
				*field(c) = !b
			}
			return err
		}}
}

var linuxSwitches = []switchSpec{
	intSwitch("quickack", "The number of data segments acknowledged at once at the start of a connection (quick-ack mode, up to 255), before delayed ACKs begin; 0 off. Linux enters quick-ack mode when the first data arrives (TCP_MAX_QUICKACKS, 16), and leaves it for good (the engine does not model its re-entry on a duplicate segment) once a segment it sends offers a window below half the receive buffer (__tcp_select_window). RFC 9293 §3.8.6.3 and RFC 1122 §4.2.3.2 allow delaying an ACK (SHOULD, up to 0.5 s) and never require it, so acknowledging at once is always allowed (RFC 5681 §4.2).", 0,
		func(c *Config) *int { return &c.QuickAck }),
	boolSwitch("delack_fin", "(Off in the linux profile: Linux 6.18 acknowledged the FIN at once in every script of testdata/scripts.) 1: the ACK of a FIN received in ESTABLISHED waits for the delayed-ACK timer, so a close() soon after carries it on our FIN, as Linux does (tcp_fin enters interactive, \"pingpong\", mode). 0: the FIN is acknowledged at once (RFC 9293 §3.10.7.4 eighth step: send an acknowledgment for the FIN; §3.8.6.3 allows delaying any ACK below 0.5 s).",
		func(c *Config) *bool { return &c.DelAckFin }),
	boolSwitch("rst_ack", "1: the reset of an abort (ABORT, close with unread data, keep-alive and retransmission give-up, a closed listener's queue; not the reply to data after close, which answers the segment) is <SEQ=SND.NXT><ACK=RCV.NXT><CTL=RST,ACK>, as Linux's tcp_send_active_reset sends it. 0: <SEQ=SND.NXT><CTL=RST> (RFC 9293 §3.10.5); the ACK bit is allowed on any segment once RCV.NXT is known (§3.4) and the peer's RST check does not depend on it.",
		func(c *Config) *bool { return &c.RstAck }),
	boolSwitch("info_linux", "1: TCP_INFO reads as Linux's does: a connection in TIME-WAIT is TCP_CLOSE (Linux hands TIME-WAIT to a mini-socket the descriptor no longer sees), tcpi_snd_mss is the MSS less the 12 bytes of the timestamp option when it is in use, and tcpi_rcv_mss is at most 536 until data arrives. 0: the RFC 9293 state and the negotiated MSS. RFC 9293 §3.9.1.10: what STATUS reports is implementation-dependent.",
		func(c *Config) *bool { return &c.InfoLinux }),
	boolSwitch("send_wait_connect", "1: a SEND before the connection is ESTABLISHED (SYN-SENT, SYN-RECEIVED) takes no data yet: \"insufficient resources\" for now (EAGAIN on a non-blocking socket; a blocking one waits), as Linux's tcp_sendmsg waits for the connection (sk_stream_wait_connect). 0: RFC 9293 §3.10.2: queue the data for transmission after entering ESTABLISHED. The RFC's own answer when there is no room to queue is \"insufficient resources\", so either is an answer it allows.",
		func(c *Config) *bool { return &c.SendWaitConnect }),
	boolSwitch("shutrd_eof", "1: shutdown(SHUT_RD) ends the reading side for the application: reads return the data already queued, then end of file (0) at once instead of waiting, and data the peer sends later is still acknowledged and can be read, as Linux does (tcp_shutdown sets RCV_SHUTDOWN; tcp_recvmsg returns 0 when the queue is empty). 0: SHUT_RD changes nothing. RFC 9293 has no half-close of the receiving side (§3.10.4 CLOSE is the sending side's); SHUT_RD is the socket API's (POSIX: further receptions are disallowed), so what it does is the API's choice. The switch is read by socket layers (the script runner's engine target), not by the engine.",
		func(c *Config) *bool { return &c.ShutRdEOF }),
	boolSwitch("rst_errno_linux", "1: the error a RST leaves is Linux's (tcp_reset): \"connection reset\" (ECONNRESET) in SYN-RECEIVED of an active open, and \"connection closing\" (EPIPE) in CLOSE-WAIT, where the application has read the peer's FIN. 0: RFC 9293 §3.10.7.4 second step: \"connection refused\" in SYN-RECEIVED from an active OPEN, \"connection reset\" in CLOSE-WAIT. The RFC names the signals; which errno a socket API maps them to is the API's choice.",
		func(c *Config) *bool { return &c.RstErrnoLinux }),
	boolSwitch("nagle_minshall", "1: Minshall's variant of the Nagle algorithm, as Linux's tcp_nagle_check: a segment shorter than the MSS waits only while an earlier short segment is unacknowledged, so the tail of a write goes out with the full segments before it. 0: RFC 9293 §3.7.4 and RFC 1122 §4.2.3.4: while any data is unacknowledged, a short segment SHOULD wait for the ACK or a full segment. Both keep at most one short segment in flight, which is what the algorithm is for.",
		func(c *Config) *bool { return &c.NagleMinshall }),
	boolSwitch("simopen_dup_ack", "1: after a simultaneous open, the peer's SYN,ACK completes the open (RFC 9293 Figure 8, line 6) and is also answered with an ACK, as a segment whose SYN is below RCV.NXT (Linux's tcp_data_queue acknowledges a retransmission at once); the ACK follows a FIN that CLOSE in SYN-RECEIVED had queued. 0: the SYN,ACK only completes the open. §3.10.7.4's first check answers an unacceptable segment with an ACK, and the SYN,ACK repeats the SYN already received, so either reading is the RFC's.",
		func(c *Config) *bool { return &c.SimOpenDupAck }),
	intSwitch("synsent_badack_rexmit", "Milliseconds after which a SYN not yet retransmitted is sent again when an unacceptable ACK (SEG.ACK =< ISS or > SND.NXT) arrives in SYN-SENT; 0: the retransmission timer is left alone. Linux's tcp_rcv_synsent_state_process re-arms it to TCP_TIMEOUT_MIN (2 jiffies: 8 ms at this kernel's HZ=250), since the peer's answer hints that our SYN met a stale connection our reset now clears. RFC 9293 §3.10.7.3 (first check) says only to send the reset and drop the segment; when to retransmit is the implementation's (§3.8.1), and a SYN carries no data to congest with.", 0,
		func(c *Config) *int { return &c.SynSentBadAckRtx }),
	boolSwitch("syn_text_discard", "1: text and FIN on a SYN or SYN,ACK without an accepted Fast Open cookie are dropped, not acknowledged (the peer sends them again after the handshake), and a listener drops a SYN with FIN without reply, as Linux: tcp_rcv_state_process frees a SYN's payload and discards SYN,FIN in LISTEN, and tcp_rcv_synsent_state_process frees the SYN,ACK's. 0: RFC 9293 §3.10.7.2 and §3.10.7.3: other control or text on the SYN is queued for processing once ESTABLISHED (SYN,ACK: from the sixth step). A receiver may drop any segment text it has not acknowledged; TCP's retransmission recovers it, which is why RFC 7413 needs a cookie to keep it.",
		func(c *Config) *bool { return &c.SynTextDiscard }),
	intSwitch("syn_linear_timeouts", "How many of a SYN's first retransmission timeouts (in SYN-SENT) keep the RTO instead of doubling it; later ones back off as usual. Linux 6.11 and later: net.ipv4.tcp_syn_linear_timeouts, 4, so a SYN goes at 0, 1, 2, 3, 4, 5, 7, 11 s. With it syn_retries bounds the time, as Linux's tcp_model_timeout does: the open is given up at the first timeout (2^(syn_retries+1) - 1) initial RTOs after the first SYN (7 s for 2, 127 s for 6), however many SYNs that took. 0: RFC 6298 §5.5: back off the timer (RTO = RTO * 2) on every timeout. RFC 6298 §5.5 is a MUST for data; §5.7 and RFC 9293 §3.8.1 leave the SYN's timer to the implementation beyond its 1 s initial value and R2 of at least 3 minutes, which the syn_retries limit keeps.", 0,
		func(c *Config) *int { return &c.SynLinearTimeouts }),
	intSwitch("invalid_ratelimit", "Milliseconds: a connection sends at most one ACK in this time in reply to segments it does not accept without text (out of window, RFC 9293 §3.10.7.4 first check) and challenge ACKs (RFC 5961); the others are dropped without reply. It replaces challenge_ack_limit's count per second. Linux's net.ipv4.tcp_invalid_ratelimit, 500 (tcp_oow_rate_limited). 0: no such limit. RFC 5961 §7: an implementation SHOULD limit challenge ACKs and chooses how; RFC 9293 says the ACK of an unacceptable segment \"should\" be sent, which a rate limit against ACK loops (RFC 5961 §10) qualifies.", 0,
		func(c *Config) *int { return &c.InvalidRateLimit }),
	boolSwitch("zwp_bare_ack", "1: a zero-window probe is a bare ACK with SEQ = SND.UNA - 1 and no data (or FIN), which the receiver must answer with an ACK showing its window, as Linux's tcp_write_wakeup and tcp_xmit_probe_skb send it on the probe0 timer; the queued data and FIN wait for the window. 0: the probe carries one byte of new data, or the FIN (RFC 9293 §3.8.6.1). The probe needs only to elicit an ACK (RFC 1122 §4.2.2.17; RFC 9293 §3.8.6.1, MUST-36, and §3.10.7.4's first check, which answers an unacceptable segment with an ACK), so either form probes; the timer, its first interval of one RTO and its backoff are the same under both.",
		func(c *Config) *bool { return &c.ZWPBareAck }),
	boolSwitch("rcv_beyond_window", "1: a segment whose text starts in the receive window and ends past its right edge is never trimmed: while nothing is waiting to be read it is taken whole (the window then reads 0 until the application reads), otherwise it is dropped whole and answered with an ACK, as Linux 6.17 and later (tcp_sequence: \"only accept this packet if receive queue is empty\", SKB_DROP_REASON_TCP_INVALID_END_SEQUENCE; tcp_data_queue then queues the in-order segment whole). 0: the text beyond the right edge is trimmed and the rest processed (RFC 9293 §3.10.7.4, first check). The RFC's trimming is what a receiver \"could\" do to reach the idealized segment it describes; the window is the receiver's offer, which it may exceed when it has the memory (RFC 9293 §3.8.6 forbids shrinking it, not accepting more), and a receiver may drop text it has not acknowledged, which the sender retransmits (§3.8.1).",
		func(c *Config) *bool { return &c.RcvBeyondWindow }),
	boolSwitch("synrcvd_syn_reset", "1: a SYN in the window in SYN-RECEIVED of a passive OPEN (not the first SYN again) is answered with a reset formed from it, <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK> (with an ACK field: <SEQ=SEG.ACK><CTL=RST>), and the half-open connection is dropped, as Linux's tcp_check_req does (embryonic_reset, tcp_v4_send_reset): RFC 793's rule, \"If the SYN is in the window it is an error, send a reset\" (§3.9, fourth, check the SYN bit). 0: RFC 9293 §3.10.7.4 (fourth): return the connection to LISTEN without a reply. Both end the half-open connection; the reset tells the peer at once, and RFC 9293 §3.5.2 forms a reset for a segment without an ACK this way.",
		func(c *Config) *bool { return &c.SynRcvdSynReset }),
	boolSwitch("acceptq_linux", "1: the accept queue holds backlog + 1 established connections, and a SYN that arrives while it is full is dropped without reply (SYN cookies or not), as Linux: sk_acceptq_is_full is true only above sk_max_ack_backlog, and tcp_conn_request drops the SYN then (ListenOverflows). The ACK that finds the queue full is dropped under both values and the SYN,ACK retransmitted on its timer (Linux without tcp_abort_on_overflow). 0: the queue holds backlog connections and a SYN is answered while it is full. RFC 9293 §3.10.1 leaves the queue of a passive OPEN to the implementation; a SYN dropped for want of resources is sent again by its sender (§3.8.1; RFC 4987 §3 on listen queues).",
		func(c *Config) *bool { return &c.AcceptQLinux }),
	boolSwitch("synq_backlog", "1: a listener's SYN queue (half-open connections) holds at most backlog + 1 of them, within the engine's SynQueue limit, as Linux's inet_csk_reqsk_queue_is_full compares the request count with the listen backlog (sk_max_ack_backlog); net.ipv4.tcp_max_syn_backlog, which bounds it further only when SYN cookies are off and the peer is unproven, is not modelled. 0: the SynQueue limit alone (--tcpstated_syn_queue). RFC 9293 §3.10.1 leaves the queue of a passive OPEN to the implementation; RFC 4987 §3.1 describes bounding half-open connections per listener.",
		func(c *Config) *bool { return &c.SynQBacklog }),
	boolSwitch("syn_cookies", "1: a SYN that finds the SYN queue full is answered with a SYN cookie (RFC 4987 §3.6), no state kept, and the returning ACK rebuilds the connection. 0: it is dropped without reply. Linux's net.ipv4.tcp_syncookies, 1 (the value 2, cookies for every SYN, is not modelled). RFC 4987 is informational; a cookie's SYN,ACK is an ordinary one to the peer (RFC 9293 §3.10.7.2), which is why RFC 4987 calls it compatible.",
		func(c *Config) *bool { return &c.SynCookies }),
	intSwitch("synack_retries", "How many times a listener's SYN,ACK is retransmitted before the half-open connection is dropped. RFC 9293 §3.8.3 leaves R2 for a SYN,ACK to the implementation (R2 for a SYN MUST allow 3 minutes). Linux's net.ipv4.tcp_synack_retries, 5.", 5,
		func(c *Config) *int { return &c.SynAckRetries }),
	intSwitch("challenge_ack_limit", "Challenge ACKs (RFC 5961 §3.2, §4.2, §5.2) one connection sends per second; more are dropped without reply. RFC 5961 §7: an implementation SHOULD limit them and the limit is its choice. Linux's net.ipv4.tcp_challenge_ack_limit is 2147483647 (no limit; its per-socket 500 ms tcp_invalid_ratelimit is not modelled).", 1000,
		func(c *Config) *int { return &c.ChallengeAckLimit }),
	intSwitch("initcwnd", "The initial congestion window in segments. RFC 5681 §3.1 allows up to 4 (by bytes), RFC 6928 10 (experimental). Linux's TCP_INIT_CWND, 10.", 10,
		func(c *Config) *int { return &c.InitialWindow }),
	{Switch{"window_scale", "The shift offered in the window scale option (RFC 7323 §2.2: the receiver chooses it, up to 14); 0 offers the smallest that covers the receive buffer. Under tcp_rmem (the linux profile) 0 is Linux's choice: 7 for its default tcp_rmem (6 MiB maximum), less after a small SO_RCVBUF. -1 offers none (as Config.WindowScale).", "0"},
		func(c *Config) string { return strconv.Itoa(c.WindowScale) },
		func(c *Config, v string) error {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < -1 || n > 14 {
				return fmt.Errorf("expected a shift count 0 to 14, or -1 for none, found %q", v)
			}
			c.WindowScale = n
			return nil
		}},
	negBoolSwitch("window_scaling", "1: offer and accept the window scale option (RFC 7323 §2, MAY). 0: never. Linux's net.ipv4.tcp_window_scaling, 1.",
		func(c *Config) *bool { return &c.NoWindowScale }),
	negBoolSwitch("sack", "1: offer and accept SACK (RFC 2018, MAY). 0: never. Linux's net.ipv4.tcp_sack, 1.",
		func(c *Config) *bool { return &c.NoSACK }),
	negBoolSwitch("timestamps", "1: offer and accept the timestamp option (RFC 7323 §3, MAY). 0: never. Linux's net.ipv4.tcp_timestamps, 1.",
		func(c *Config) *bool { return &c.NoTimestamps }),
	negBoolSwitch("rack", "1: RACK loss detection (RFC 8985 §6, needs SACK). 0: RFC 6675's DupThresh rules alone. Linux's net.ipv4.tcp_recovery bit 1, on.",
		func(c *Config) *bool { return &c.Recovery.NoRACK }),
	negBoolSwitch("tlp", "1: tail loss probes (RFC 8985 §7, needs RACK). 0: a lost tail waits for the RTO. Linux's net.ipv4.tcp_early_retrans 3, on.",
		func(c *Config) *bool { return &c.Recovery.NoTLP }),
	boolSwitch("hystart", "1: HyStart++ (RFC 9406) ends the first slow start on a rise in RTT. 0: classic slow start (RFC 5681 §3.1). Linux's CUBIC runs its own HyStart by default.",
		func(c *Config) *bool { return &c.Recovery.HyStart }),
	{Switch{"congestion_control", "The congestion avoidance algorithm: cubic (RFC 9438, Standards Track, which updates RFC 5681 to allow its window; the default, as in Linux, FreeBSD 14, Windows and Apple's stacks) or reno (RFC 5681 §3.1, the IETF baseline: ssthresh = FlightSize/2, one SMSS per round trip). Linux's net.ipv4.tcp_congestion_control, FreeBSD's net.inet.tcp.cc.algorithm (newreno is reno).", CCCubic},
		func(c *Config) string { return c.Recovery.congestionControl() },
		func(c *Config, v string) error {
			switch v = strings.ToLower(strings.TrimSpace(v)); v {
			case CCReno, CCCubic:
				c.Recovery.CongestionControl = v
				return nil
			}
			return fmt.Errorf("expected reno or cubic, found %q", v)
		}},
}

// linuxSysctls maps Linux's net.ipv4.tcp_* sysctls to the switch each
// sets, where the sysctl's value is the switch's value (no unit change).
var linuxSysctls = map[string]string{
	"net.ipv4.tcp_syn_retries":         "syn_retries",
	"net.ipv4.tcp_synack_retries":      "synack_retries",
	"net.ipv4.tcp_syn_linear_timeouts": "syn_linear_timeouts",
	"net.ipv4.tcp_invalid_ratelimit":   "invalid_ratelimit",
	"net.ipv4.tcp_challenge_ack_limit": "challenge_ack_limit",
	"net.ipv4.tcp_window_scaling":      "window_scaling",
	"net.ipv4.tcp_sack":                "sack",
	"net.ipv4.tcp_timestamps":          "timestamps",
	"net.ipv4.tcp_congestion_control":  "congestion_control",
	"net.ipv4.tcp_keepalive_probes":    "keepcnt",
	"net.ipv4.tcp_syncookies":          "syn_cookies",
	"net.ipv4.tcp_rmem":                "tcp_rmem", // rcvwnd_linux.go
}

// quickAck reports whether data of n bytes is acknowledged at once in
// quick-ack mode (quickack), counting the quick ACK.
func (e *Engine) quickAck(c *conn, n int) bool {
	if e.cfg.QuickAck <= 0 || int(c.quickAcks) >= e.cfg.QuickAck || c.quickAcks == 255 {
		return false
	}
	c.quickAcks++
	e.explain(c.id, CodeQuickAck, ActionInfo, Field{"SEG.LEN", uint64(n)}, Field{"RCV.NXT", uint64(c.rcvNxt)},
		Field{"N", uint64(c.quickAcks)}, Field{"QUICKACK", uint64(e.cfg.QuickAck)})
	return true
}

// delayFinAck, under delack_fin, leaves the ACK of a FIN received in
// ESTABLISHED to the delayed-ACK timer; it reports whether it did.
func (e *Engine) delayFinAck(c *conn) bool {
	if !e.cfg.DelAckFin || e.cfg.NoDelayedAck || c.state != Established {
		return false
	}
	if c.delackAt == 0 {
		c.delackAt = e.deadlineAfter(e.cfg.DelayedAckTimeout)
		e.schedule(c)
	}
	e.explain(c.id, CodeFinAckDelayed, ActionInfo, Field{"RCV.NXT", uint64(c.rcvNxt)},
		Field{"DELAY.MS", uint64(e.cfg.DelayedAckTimeout.Milliseconds())})
	return true
}

// LinuxInfo is what TCP_INFO shows of an endpoint under info_linux: the
// state name's RFC state (TIME-WAIT reads CLOSED), tcpi_snd_mss and
// tcpi_rcv_mss. Without the switch it returns in's own values.
func (c *Config) LinuxInfo(in EndpointInfo) (state State, sndMSS, rcvMSS uint16) {
	state, sndMSS, rcvMSS = in.State, in.SndMSS, in.RcvMSS
	if !c.InfoLinux {
		return
	}
	if state == TimeWait {
		state = Closed
	}
	if in.Timestamps && sndMSS > 12 {
		sndMSS -= 12
	}
	if in.RcvNxt.Sub(in.IRS) <= 1 && rcvMSS > 536 {
		rcvMSS = 536
	}
	return
}

// sendWaitsForEstablished: under send_wait_connect a SEND in SYN-SENT or
// SYN-RECEIVED takes nothing yet.
func (e *Engine) sendWaitsForEstablished(c *conn) bool {
	if !e.cfg.SendWaitConnect || (c.state != SynSent && c.state != SynReceived) {
		return false
	}
	e.begin()
	e.explain(c.id, CodeSendWaitConnect, ActionInfo)
	return true
}

// rstError is the error a RST accepted in c's state leaves: rfc, the
// RFC's; under rst_errno_linux, Linux's.
func (e *Engine) rstError(c *conn, rfc error) error {
	if !e.cfg.RstErrnoLinux {
		return rfc
	}
	var err error
	switch c.state {
	case SynReceived:
		err = ErrConnectionReset
	case CloseWait:
		err = ErrConnectionClosing
	default:
		return rfc
	}
	e.explain(c.id, CodeRstErrnoLinux, ActionInfo, Field{"RFC.ERROR", b2u(rfc == ErrConnectionRefused)})
	return err
}

// minshallSends, under nagle_minshall, lets a short segment [next,
// next+n) go while data is in flight when no earlier short segment is
// unacknowledged.
func (e *Engine) minshallSends(c *conn, next Seq, n int) bool {
	if !e.cfg.NagleMinshall || (c.sndSmall.GreaterThan(c.sndUna) && !c.sndSmall.GreaterThan(c.sndNxt)) {
		return false
	}
	e.explain(c.id, CodeNagleMinshall, ActionInfo, Field{"SEG.SEQ", uint64(next)}, Field{"SEG.LEN", uint64(n)}, Field{"SND.UNA", uint64(c.sndUna)})
	return true
}
