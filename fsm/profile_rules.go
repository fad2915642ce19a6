package fsm

// The rules behind behaviour switches that need more than a line where
// they apply (profile.go documents each switch).

// timeWaitBSD is TIME-WAIT under tw_bsd, in the order BSD's tcp_twcheck
// takes its tests: RSTs are ignored (RFC 1337 §3), a new SYN above
// RCV.NXT reopens, anything else without ACK is dropped, only an exact
// repeat of the peer's FIN restarts 2·MSL, and everything but an exact
// duplicate ACK gets <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>.
func (e *Engine) timeWaitBSD(c *conn, seg *Segment) {
	f := seg.Flags
	if f&FlagRST != 0 {
		e.explain(c.id, CodeTimeWaitBSDDropped, ActionDropped, Field{"SEG.SEQ", uint64(seg.Seq)}, Field{"RCV.NXT", uint64(c.rcvNxt)})
		return
	}
	if f&(FlagSYN|FlagACK) == FlagSYN && seg.Seq.GreaterThan(c.rcvNxt) && e.reopenFromTimeWait(c, seg, CodeTimeWaitBSDReopened) {
		return
	}
	if f&FlagACK == 0 || (c.tsOK && !seg.Options.HasTimestamp) {
		e.explain(c.id, CodeTimeWaitBSDDropped, ActionDropped, Field{"SEG.SEQ", uint64(seg.Seq)}, Field{"RCV.NXT", uint64(c.rcvNxt)})
		return
	}
	restarted := false
	if f&FlagFIN != 0 {
		end := seg.Seq.Add(Size(len(seg.Payload)))
		if f&FlagSYN != 0 {
			end++
		}
		if end+1 == c.rcvNxt {
			c.timeWaitAt = e.deadlineAfter(2 * e.cfg.MSL)
			e.schedule(c)
			restarted = true
		}
	}
	if f == FlagACK && len(seg.Payload) == 0 && seg.Seq == c.rcvNxt && seg.Ack == c.sndNxt {
		e.explain(c.id, CodeTimeWaitBSDDupAck, ActionDropped, Field{"SEG.SEQ", uint64(seg.Seq)}, Field{"SEG.ACK", uint64(seg.Ack)})
		return
	}
	e.explain(c.id, CodeTimeWaitBSDAck, ActionAnswered, Field{"SEG.SEQ", uint64(seg.Seq)}, Field{"RESTARTED", b2u(restarted)})
	s := e.segment(c, FlagACK, c.sndNxt, nil)
	e.emit(c.id, c.local, c.remote, &s)
}

// rcvLimit is the receive buffer of c: RecvBuffer, or under
// rcvbuf_mss_round RecvBuffer rounded up to a multiple of the MSS.
func (e *Engine) rcvLimit(c *conn) int {
	if c.rcvRounded > 0 {
		return int(c.rcvRounded)
	}
	return e.cfg.RecvBuffer
}

// roundedEdge, under rcvbuf_mss_round, lets the acceptance test use the
// whole rounded buffer even where the 16-bit window field could only say
// less (65535 without window scaling), as FreeBSD does.
func (c *conn) roundedEdge() {
	if c.rcvRounded > 0 {
		c.rcvWire = MaxSeq(c.rcvWire, c.rcvNxt.Add(Size(max(int(c.rcvRounded)-c.rcvBuf.Len(), 0))))
	}
}

// closingFinAck sends the ACK CLOSING owes as a retransmission of our FIN
// (closing_fin_ack), as BSD's tcp_output does while the FIN is
// unacknowledged: <SEQ=FIN><ACK=RCV.NXT><CTL=FIN,ACK>.
func (e *Engine) closingFinAck(c *conn) {
	seq := c.sndNxt - 1
	e.explain(c.id, CodeClosingFinAck, ActionInfo, Field{"SEG.SEQ", uint64(seq)}, Field{"RCV.NXT", uint64(c.rcvNxt)})
	s := e.segment(c, FlagFIN|FlagACK, seq, nil)
	e.emit(c.id, c.local, c.remote, &s)
	c.noteRetransmit(c.sndNxt)
}
