package fsm

// Explicit Congestion Notification, RFC 3168, with Config.Recovery.ECN:
// negotiation on the SYN (ECE and CWR) and SYN,ACK (ECE alone, §6.1.1),
// ECT(0) in the IP header of new data segments (never of retransmissions,
// pure ACKs or SYNs, §6.1.5, §6.1.1), ECE on every ACK after a CE-marked
// data segment until the peer's CWR (§6.1.3), and the sender's response to
// ECE: cwnd and ssthresh reduced as for a loss, at most once per window of
// data, with CWR on the next new data segment (§6.1.2). The CE mark is in
// the IP header, so only Deliver (the whole packet) sees it; DeliverSegment
// carries none.

// IP ECN codepoints (RFC 3168 §5).
const (
	ecnNotECT = 0b00
	ecnECT0   = 0b10
	ecnCE     = 0b11
)

// ecnState is a connection's ECN state, kept in ccState.
type ecnState struct {
	ok         bool // negotiated
	echo       bool // receiver: a CE mark is being echoed with ECE
	cwrPending bool // sender: CWR goes on the next new data segment
	reduced    bool // sender: a reduction's window is still outstanding
	recover    Seq  // SND.NXT at the last reduction
	sndMax     Seq  // one past the highest sequence number sent: beyond it data is new
}

// ipECN returns the ECN field of an IPv4 or IPv6 packet's header.
func ipECN(pkt []byte) uint8 {
	if len(pkt) < 2 {
		return 0
	}
	if pkt[0]>>4 == 6 {
		return pkt[1] >> 4 & 3
	}
	return pkt[1] & 3
}

// ecnNegotiate applies RFC 3168 §6.1.1 to the peer's SYN or SYN,ACK: a SYN
// with ECE and CWR asks for ECN, a SYN,ACK with ECE and not CWR grants it.
func (e *Engine) ecnNegotiate(c *conn, seg *Segment) {
	if !e.cfg.Recovery.ECN {
		return
	}
	f := seg.Flags & (FlagECE | FlagCWR)
	ok := f == FlagECE|FlagCWR
	if seg.Flags&FlagACK != 0 {
		// A grant counts only if we asked (ecn=2 never asks). A grant
		// after the fallback (ecnOnEmit) still counts: the peer can only
		// have answered one of our ECN-setup SYNs with it (§6.1.1).
		ok = f == FlagECE && !e.cfg.Recovery.ECNNoRequest
	}
	if !ok {
		return
	}
	s := &c.ccs().ecn
	s.ok, s.sndMax = true, c.iss+1
	e.explain(c.id, CodeECNNegotiated, ActionAccepted, Field{"SYN.ACK", b2u(seg.Flags&FlagACK != 0)})
}

// ecnOnEmit sets the ECN flags of a segment about to be built and returns
// the ECN codepoint for its IP header.
func (e *Engine) ecnOnEmit(id EndpointID, seg *Segment) uint8 {
	if !e.cfg.Recovery.ECN {
		return 0
	}
	c := e.byID[id]
	if c == nil || seg.Flags&FlagRST != 0 {
		return 0
	}
	if seg.Flags&FlagSYN != 0 {
		if seg.Flags&FlagACK == 0 {
			if !e.cfg.Recovery.ECNNoRequest && !e.ecnFallback(c, false) {
				seg.Flags |= FlagECE | FlagCWR // an ECN-setup SYN
			}
		} else if c.cc != nil && c.cc.ecn.ok && !e.ecnFallback(c, true) {
			seg.Flags |= FlagECE // an ECN-setup SYN,ACK
		}
		return 0 // a SYN is never ECT (§6.1.1)
	}
	if c.cc == nil || !c.cc.ecn.ok {
		return 0
	}
	s := &c.cc.ecn
	if s.echo && seg.Flags&FlagACK != 0 {
		seg.Flags |= FlagECE
	}
	end := seg.Seq.Add(Size(len(seg.Payload)))
	if len(seg.Payload) == 0 || !end.GreaterThan(s.sndMax) {
		return 0 // pure ACKs and retransmissions are not ECT (§6.1.4, §6.1.5)
	}
	s.sndMax = end
	if s.cwrPending {
		s.cwrPending = false
		seg.Flags |= FlagCWR
	}
	return ecnECT0
}

// ecnOnArrive is the receiver's side (RFC 3168 §6.1.3) for a segment of a
// synchronized connection: CWR ends the echo, a CE mark on data starts it.
func (e *Engine) ecnOnArrive(c *conn, seg *Segment) {
	if c.cc == nil || !c.cc.ecn.ok || seg.Flags&FlagSYN != 0 {
		return
	}
	s := &c.cc.ecn
	if seg.Flags&FlagCWR != 0 && s.echo {
		s.echo = false
		e.explain(c.id, CodeECNCWRReceived, ActionInfo, Field{"SEG.SEQ", uint64(seg.Seq)})
	}
	if e.inECN == ecnCE && len(seg.Payload) > 0 {
		if !s.echo {
			e.explain(c.id, CodeECNCongestionExperienced, ActionInfo, Field{"SEG.SEQ", uint64(seg.Seq)}, Field{"SEG.LEN", uint64(len(seg.Payload))})
		}
		s.echo = true
	}
}

// ecnOnAck is the sender's response to ECE on an acceptable ACK (RFC 3168
// §6.1.2): reduce as for a loss once per window of data.
func (e *Engine) ecnOnAck(c *conn, seg *Segment) {
	if c.cc == nil || !c.cc.ecn.ok || seg.Flags&(FlagECE|FlagSYN) != FlagECE {
		return
	}
	s := &c.cc.ecn
	if s.reduced && c.sndUna.LessEq(s.recover) || c.inRecovery {
		// This window (the data outstanding at the last reduction, up to
		// RECOVER) was already reduced, or loss recovery reduced it.
		return
	}
	flight := c.flight()
	c.ssthresh = e.ccReduce(c, flight)
	c.cwnd = c.ssthresh
	s.reduced, s.recover, s.cwrPending = true, c.sndNxt, true
	e.explain(c.id, CodeECNReduce, ActionAccepted, Field{"SEG.ACK", uint64(seg.Ack)}, Field{"FLIGHT", uint64(flight)},
		Field{"SSTHRESH", uint64(c.ssthresh)}, Field{"CWND", uint64(c.cwnd)}, Field{"RECOVER", uint64(s.recover)})
}

// ecnFallback applies RFC 3168 §6.1.1.1 to a SYN (synAck false) or
// SYN,ACK about to be retransmitted: "a host that receives no reply to an
// ECN-setup SYN within the normal SYN retransmission timeout interval MAY
// resend the SYN and any subsequent SYN retransmissions with CWR and ECE
// cleared", since a middlebox may drop ECN-setup packets. After
// ECNMaxRetries retransmissions with the setup (ecn_maxretries: 0, the
// first retransmission goes without, as Linux's tcp_ecn_clear_syn; 1 on
// FreeBSD, whose third SYN goes without) it reports true. A SYN,ACK sent
// without ECE no longer grants ECN, so the connection does without it (as
// FreeBSD's syncache does; the peer, told nothing, sees a non-ECN-setup
// SYN,ACK if that one arrives, §6.1.1). Each fallback is explained once,
// with the retransmission count.
func (e *Engine) ecnFallback(c *conn, synAck bool) bool {
	if c.retries <= e.cfg.Recovery.ECNMaxRetries {
		return false
	}
	if c.retries == e.cfg.Recovery.ECNMaxRetries+1 {
		e.explain(c.id, CodeECNSetupFallback, ActionAccepted, Field{"SYN.ACK", b2u(synAck)},
			Field{"RETRIES", uint64(c.retries)}, Field{"ECN.MAXRETRIES", uint64(e.cfg.Recovery.ECNMaxRetries)})
	}
	if synAck {
		c.cc.ecn.ok = false
	}
	return true
}

// IPECN returns the ECN field (RFC 3168 §5: 0 Not-ECT, 1 ECT(1), 2 ECT(0),
// 3 CE) of an IPv4 or IPv6 packet's header.
func IPECN(pkt []byte) uint8 { return ipECN(pkt) }

// SetIPECN sets the ECN field of an IPv4 or IPv6 packet's header to ecn
// (0 to 3), keeping the DSCP and the hop limit; an IPv4 header checksum is
// recomputed. A host uses it to hand the engine a packet a router marked
// CE. It does nothing to a packet too short to hold an IP header.
func SetIPECN(pkt []byte, ecn uint8) {
	switch {
	case len(pkt) >= ipv4HeaderLen && pkt[0]>>4 == 4:
		setIPFields(pkt, pkt[8], pkt[1]&^3|ecn&3)
	case len(pkt) >= 40 && pkt[0]>>4 == 6:
		setIPFields(pkt, pkt[7], (pkt[0]<<4|pkt[1]>>4)&^3|ecn&3)
	}
}
