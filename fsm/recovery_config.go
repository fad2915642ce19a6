package fsm

// Recovery is the loss-recovery and congestion-control section of Config
// (issue 11). Its zero value is what the rfc profile uses: SACK-based loss
// recovery (RFC 6675) whenever SACK is negotiated, with Proportional Rate
// Reduction (RFC 6937, slow-start reduction bound) deciding how much is
// sent during recovery. Connections without SACK keep NewReno (RFC 6582).
type Recovery struct {
	// NoSACKRecovery keeps NewReno (RFC 6582) even when SACK is negotiated:
	// SACK blocks are then only parsed, as before issue 11.
	NoSACKRecovery bool
	// NoPRR turns Proportional Rate Reduction off: during SACK recovery
	// cwnd stays at ssthresh and RFC 6675 §5 (C) sends while
	// cwnd - pipe >= 1 SMSS.
	NoPRR bool
	// PRRConservative uses PRR's conservative reduction bound (PRR-CRB,
	// RFC 6937 §3: strict packet conservation once pipe falls below
	// ssthresh) instead of the slow-start reduction bound (PRR-SSRB), which
	// RFC 6937 §6 recommends and is the default.
	PRRConservative bool
	// NoRACK turns off RACK (RFC 8985 §6): losses are then detected by
	// RFC 6675's DupThresh rules (IsLost) alone. RACK needs SACK.
	NoRACK bool
	// NoTLP turns off the tail loss probe (RFC 8985 §7), so a lost tail
	// waits for the RTO. TLP needs RACK.
	NoTLP bool
	// CongestionControl is the congestion avoidance algorithm: "cubic"
	// (RFC 9438, the default: Standards Track, it updates RFC 5681 so
	// that its window is allowed, and every major stack runs it) or
	// "reno" (RFC 5681 §3.1, the IETF baseline, whose FlightSize/2 the
	// recovery RFCs' own examples assume). Under Reno at 1 % random loss
	// the rfc profile sent at a median 0.90× the kernel's CUBIC, under
	// CUBIC at 1.05× (docs/PERFORMANCE.md, issue 11): the default follows
	// the stacks users compare with.
	CongestionControl string
	// HyStart enables HyStart++ (RFC 9406) in the initial slow start:
	// slow start ends on a rise in RTT before it overshoots into loss.
	HyStart bool
	// SlowStartAllBytes makes slow start open cwnd by every byte an ACK
	// acknowledges, up to ssthresh (RFC 3465 §2.2's limit L unbounded, as
	// Linux's tcp_slow_start counts every segment acknowledged), instead
	// of RFC 5681 (2)'s RECOMMENDED min(N, SMSS) per ACK. Against a
	// receiver that acknowledges a window in one or two stretch ACKs (RFC
	// 5681 §4.2 asks for one per second segment) the RFC's rule grows
	// cwnd by about one SMSS per round trip instead of doubling it.
	SlowStartAllBytes bool
	// RTOKeepSACK keeps the SACK scoreboard across a retransmission
	// timeout unless the receiver reneged (SND.UNA itself is SACKed), as
	// Linux does (tcp_timeout_mark_lost), so going back N after the
	// timeout resends only the holes. Off, the scoreboard is cleared (RFC
	// 2018 §8: the data sender SHOULD turn off its SACKed bits, because a
	// timeout may mean the receiver reneged) and only the blocks of later
	// ACKs are skipped; an ACK carries three or four blocks, so with more
	// holes than that data the receiver holds is sent again.
	RTOKeepSACK bool
	// NoEifel turns off spurious-timeout detection with timestamps (the
	// Eifel detection algorithm, RFC 3522) and its response (RFC 4015),
	// which undoes the congestion response of an RTO, or of a SACK fast
	// retransmit (reordering taken for loss), the first ACK shows to have
	// been spurious.
	NoEifel bool
	// FRTO enables F-RTO (RFC 5682): after a retransmission timeout the
	// sender sends new data on the first ACK and judges from the second
	// whether the timeout was spurious, undoing its congestion response if
	// so (the Eifel response, RFC 4015). It needs no timestamps; with SACK
	// negotiated the SACK-enhanced variant (§3) is used, otherwise the
	// basic one (§2.1). Off by default: RFC 5682 is optional.
	FRTO bool
	// ECN enables Explicit Congestion Notification (RFC 3168): the SYN
	// asks for it (ECE, CWR), a SYN,ACK grants it (ECE) when the peer
	// asked; new data then goes out ECT(0), a CE mark the peer saw comes
	// back as ECE and reduces cwnd once per window, answered by CWR. CE
	// marks are read from the IP header, so only Deliver (not
	// DeliverSegment) reports them. Off by default: RFC 3168 makes ECN
	// optional. SYN cookies' SYN,ACKs never grant it.
	ECN bool
	// ECNNoRequest, with ECN on, grants ECN to a peer whose SYN asks for
	// it but never asks on our own SYN: the ecn switch's 2, the default of
	// Linux's net.ipv4.tcp_ecn and FreeBSD's net.inet.tcp.ecn.enable.
	ECNNoRequest bool
	// ECNMaxRetries is how many retransmissions of an ECN-setup SYN or
	// SYN,ACK still ask for (or grant) ECN; later ones go without, the
	// fallback RFC 3168 §6.1.1.1 allows (ecn.go). 0, the default, falls
	// back on the first retransmission as Linux does (tcp_ecn_clear_syn);
	// FreeBSD's net.inet.tcp.ecn.maxretries is 1.
	ECNMaxRetries int
}

// congestionControl is CongestionControl, or the default where unset.
func (r *Recovery) congestionControl() string {
	if r.CongestionControl == "" {
		return CCCubic
	}
	return r.CongestionControl
}
