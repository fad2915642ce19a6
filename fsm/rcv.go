package fsm

import "time"

// segmentArrives processes a segment for an existing connection
// (RFC 9293 §3.10.7.3 SYN-SENT and §3.10.7.4 "Otherwise"), then lets the
// sending policy run and sends any ACK that could not be piggybacked.
func (e *Engine) segmentArrives(c *conn, seg *Segment) {
	c.lastRecv, c.kaProbes = e.now, 0 // keep-alive: the peer is there
	e.ecnOnArrive(c, seg)             // RFC 3168 §6.1.3 (ecn.go)
	if c.state == SynSent {
		e.synSentArrives(c, seg)
		return
	}
	ackNow := e.otherwiseArrives(c, seg)
	if c.state == Closed {
		return
	}
	e.output(c)
	if ackNow && c.ackPending {
		e.sendAck(c)
	}
	if e.simOpenAck {
		e.simOpenAck = false
		e.sendBareAck(c)
	}
}

// synSentArrives is RFC 9293 §3.10.7.3.
func (e *Engine) synSentArrives(c *conn, seg *Segment) {
	f := seg.Flags
	t := Tuple{c.local, c.remote}
	// First, check the ACK bit.
	if f&FlagACK != 0 && (seg.Ack.LessEq(c.iss) || seg.Ack.GreaterThan(c.sndNxt)) {
		e.synSentBadAckRexmit(c, seg.Ack) // linux_codes.go
		if f&FlagRST != 0 {
			e.explain(c.id, CodeSynSentBadAckRstDropped, ActionDropped, Field{"SEG.ACK", uint64(seg.Ack)})
			return
		}
		e.sendRst(c.id, t, seg)
		e.explain(c.id, CodeSynSentBadAckSentRst, ActionAnswered, Field{"SEG.ACK", uint64(seg.Ack)},
			Field{"ISS", uint64(c.iss)}, Field{"SND.NXT", uint64(c.sndNxt)})
		return
	}
	// Second, check the RST bit.
	if f&FlagRST != 0 {
		if f&FlagACK != 0 {
			e.explain(c.id, CodeSynSentRstRefused, ActionAccepted, Field{"SEG.ACK", uint64(seg.Ack)})
			e.event(c, EventRefused)
			e.toClosed(c, CodeSynSentRstRefused, ErrConnectionRefused)
			return
		}
		e.explain(c.id, CodeSynSentRstNoAckDropped, ActionDropped)
		return
	}
	// Fourth, check the SYN bit.
	if f&FlagSYN == 0 {
		e.explain(c.id, CodeSynSentOtherDropped, ActionDropped)
		return
	}
	if f&FlagFIN != 0 && len(seg.Payload) > 0 && e.cfg.SynFinDataDropFin {
		e.explain(c.id, CodeSynFinDataFinDropped, ActionInfo, Field{"SEG.LEN", uint64(len(seg.Payload))})
		f &^= FlagFIN
		trimmed := *seg
		trimmed.Flags = f
		seg = &trimmed
	}
	c.irs, c.rcvNxt = seg.Seq, seg.Seq+1
	// Our SYN offered synWindow before IRS was known; anchor
	// that window at RCV.NXT now.
	c.setRcvEdge(c.rcvNxt.Add(Size(e.synWindow(c.rcvMSS, false))))
	e.negotiate(c, seg)
	c.sndWnd = uint32(seg.Window) // never scaled in a SYN (RFC 7323 §2.2)
	c.maxSndWnd = c.sndWnd
	c.sndWl1 = seg.Seq
	if f&FlagACK == 0 {
		// Simultaneous open (RFC 9293 §3.5, Figure 8).
		e.setState(c, SynReceived, CodeSynSentSimultaneousOpen)
		e.explain(c.id, CodeSynSentSimultaneousOpen, ActionAnswered, Field{"IRS", uint64(c.irs)}, Field{"RCV.NXT", uint64(c.rcvNxt)})
		c.retries = 0
		e.stopRtx(c)
		e.sendSynAck(c)
		e.queueSynText(c, seg)
		return
	}
	e.fastOpenSynAck(c, seg)
	c.sndWl2 = seg.Ack
	c.sndUna, c.rtxNxt = seg.Ack, seg.Ack
	if c.retries == 0 && c.rttMeasuring {
		e.rttSample(c, e.now-c.rttStart)
	} else if c.retries > 0 {
		e.synTimedOutRTO(c)
	}
	c.rttMeasuring, c.retries = false, 0
	e.stopRtx(c)
	c.cwnd = e.initialCwnd(c)
	e.setState(c, Established, CodeSynSentSynAckEstablished)
	e.event(c, EventEstablished)
	e.explain(c.id, CodeSynSentSynAckEstablished, ActionAnswered, Field{"IRS", uint64(c.irs)},
		Field{"RCV.NXT", uint64(c.rcvNxt)}, Field{"SND.UNA", uint64(c.sndUna)})
	// Data on the SYN,ACK is processed from the sixth step on.
	if (len(seg.Payload) > 0 || f&FlagFIN != 0) && !e.synTextDiscarded(c, seg) {
		e.processText(c, seg.Seq+1, seg.Payload, f&FlagFIN != 0)
	}
	if !e.fastOpenEstablished(c) {
		e.sendAck(c)
		e.output(c)
	}
}

// tsRecentFromDuplicate applies ts_recent_dup: Linux's window test
// (tcp_sequence) lets through a duplicate that ends at or after the last
// ACK sent (its rcv_wup), and tcp_replace_ts_recent then copies a TSval
// newer than TS.Recent when the segment starts at or before that ACK (an
// equal one would change nothing, so it is not explained).
// RFC 7323 §5.3 rejects the segment (R2) before recording (R3). It matters
// when a retransmission overtakes the originals on a reordering path: the
// originals, older, then fail PAWS.
func (e *Engine) tsRecentFromDuplicate(c *conn, seg *Segment, seq Seq, segLen Size, syn bool) {
	o := &seg.Options
	if !e.cfg.TSRecentDup || !c.tsOK || !o.HasTimestamp || syn || seg.Flags&FlagRST != 0 ||
		!seq.LessEq(c.lastAckSent) || seq.Add(segLen).LessThan(c.lastAckSent) || int32(o.TSVal-c.tsRecent) <= 0 {
		return
	}
	e.explain(c.id, CodeTSRecentFromDuplicate, ActionInfo, Field{"SEG.TSVAL", uint64(o.TSVal)}, Field{"TS.RECENT", uint64(c.tsRecent)},
		Field{"SEG.SEQ", uint64(seq)}, Field{"SEG.LEN", uint64(segLen)}, Field{"LAST.ACK.SENT", uint64(c.lastAckSent)})
	c.tsRecent = o.TSVal
}

// acceptable is the four-case acceptability test of RFC 9293 §3.10.7.4.
func acceptable(seq Seq, segLen Size, rcvNxt Seq, rcvWnd Size) bool {
	switch {
	case segLen == 0 && rcvWnd == 0:
		return seq == rcvNxt
	case segLen == 0:
		return seq.InWindow(rcvNxt, rcvWnd)
	case rcvWnd == 0:
		return false
	default:
		return seq.InWindow(rcvNxt, rcvWnd) || seq.Add(segLen-1).InWindow(rcvNxt, rcvWnd)
	}
}

// otherwiseArrives is RFC 9293 §3.10.7.4 for SYN-RECEIVED through
// TIME-WAIT. It reports whether an ACK must go out at once.
func (e *Engine) otherwiseArrives(c *conn, seg *Segment) bool {
	f := seg.Flags
	segLen := seg.Len()
	o := &seg.Options

	if c.state == TimeWait && e.cfg.TimeWaitBSD {
		e.timeWaitBSD(c, seg)
		return false
	}
	// A new SYN in TIME-WAIT may reopen the connection (RFC 9293 §3.6.1,
	// RFC 6191 §2): it must be newer than the old incarnation: a larger
	// timestamp, or an equal one (or none) with SEG.SEQ above RCV.NXT. It
	// comes before the RFC 7323 §3.2 check: a new connection need not use
	// timestamps.
	if c.state == TimeWait && f&(FlagSYN|FlagACK|FlagRST) == FlagSYN {
		newer := seg.Seq.GreaterThan(c.rcvNxt)
		if c.tsOK && o.HasTimestamp {
			d := int32(o.TSVal - c.tsRecent)
			newer = d > 0 || (d == 0 && newer)
		}
		if newer && e.reopenFromTimeWait(c, seg, CodeTimeWaitReopened) {
			return false
		}
	}
	// RFC 7323 §3.2: with timestamps on, a non-RST segment without one is dropped.
	if c.tsOK && !o.HasTimestamp && f&FlagRST == 0 {
		e.explain(c.id, CodeNoTimestampDropped, ActionDropped)
		return false
	}
	// A retransmitted SYN while our SYN,ACK is unacknowledged: resend it.
	if c.state == SynReceived && f&(FlagSYN|FlagACK|FlagRST) == FlagSYN && seg.Seq == c.irs {
		e.explain(c.id, CodeDuplicateSynResentSynAck, ActionAnswered, Field{"SEG.SEQ", uint64(seg.Seq)})
		e.sendSynAck(c)
		return false
	}
	// PAWS (RFC 7323 §5.3): an older timestamp marks an old duplicate.
	if c.tsOK && f&FlagRST == 0 && int32(o.TSVal-c.tsRecent) < 0 {
		e.explain(c.id, CodePAWSRejected, ActionAnswered, Field{"SEG.TSVAL", uint64(o.TSVal)}, Field{"TS.RECENT", uint64(c.tsRecent)})
		e.sendAck(c)
		return false
	}
	// TIME-WAIT: the peer's FIN again, exactly where it was, means our last
	// ACK was lost. It lies left of the window, so the first check would
	// only ACK it; the fifth step also restarts the 2·MSL timeout. A FIN
	// elsewhere in the window takes the same path from the eighth step.
	if c.state == TimeWait && f&(FlagFIN|FlagRST|FlagSYN) == FlagFIN && seg.Seq.Add(Size(len(seg.Payload))) == c.rcvNxt-1 {
		e.sendAck(c)
		e.finAgain(c, c.rcvNxt-1)
		return false
	}

	// First, check the sequence number.
	wnd := c.rcvWnd()
	seq, payload := seg.Seq, seg.Payload
	syn, fin := f&FlagSYN != 0, f&FlagFIN != 0
	if c.state == SynReceived && !c.passive && f&(FlagSYN|FlagACK|FlagRST) == FlagSYN|FlagACK && seq == c.irs {
		// Simultaneous open: the peer's SYN,ACK repeats the SYN we have
		// already taken, so it would fail the acceptability test; RFC 9293
		// Figure 8 (line 6) has it complete the open, as Linux does: the SYN
		// is trimmed and the ACK processed.
		seq, syn, segLen = seq+1, false, segLen-1
		e.simOpenDupAck(c) // linux_codes.go
	}
	// Like Linux, a bare FIN at RCV.NXT is taken even into a zero window:
	// it needs no buffer space.
	bareFin := fin && len(payload) == 0 && !syn && seq == c.rcvNxt
	ackNow := false
	if !acceptable(seq, segLen, c.rcvNxt, wnd) && !bareFin {
		if wnd == 0 && seq == c.rcvNxt && f&FlagACK != 0 {
			// RFC 9293: with a zero window, valid ACKs, URGs and RSTs are
			// still processed; the text is not.
			e.explain(c.id, CodeZeroWindowTextDropped, ActionInfo, Field{"SEG.LEN", uint64(len(payload))})
			payload, fin = nil, false         // a SYN still gets its challenge ACK below
			c.ackPending, ackNow = true, true // the probe's answer carries our window
		} else if f&FlagRST != 0 {
			e.explain(c.id, CodeUnacceptableRstDropped, ActionDropped, Field{"SEG.SEQ", uint64(seq)},
				Field{"RCV.NXT", uint64(c.rcvNxt)}, Field{"RCV.WND", uint64(wnd)})
			return false
		} else {
			e.explain(c.id, CodeUnacceptableSentAck, ActionAnswered, Field{"SEG.SEQ", uint64(seq)}, Field{"SEG.LEN", uint64(segLen)},
				Field{"RCV.NXT", uint64(c.rcvNxt)}, Field{"RCV.WND", uint64(wnd)})
			if end := seq.Add(Size(len(payload))); len(payload) > 0 && !syn && end.LessEq(c.rcvNxt) {
				c.noteDuplicate(seq, end) // all of it was received before (RFC 2883 §4.1.1)
			}
			e.tsRecentFromDuplicate(c, seg, seq, segLen, syn)
			// As Linux's tcp_oow_rate_limited: a segment with text or FIN
			// (sequence space) is always answered, a SYN is limited.
			if (len(payload) == 0 && !fin || syn) && e.oowRateLimited(c) { // linux_codes.go
				return false
			}
			// Never a FIN retransmission (closing_fin_ack): this segment's
			// ACK is not processed, so two CLOSING peers answering each
			// other's repeated FIN with a FIN would never stop. A SYN here
			// gets a challenge ACK "irrespective of the sequence number"
			// (RFC 5961 §4.2), which BSD sends directly too.
			e.sendBareAck(c)
			return false
		}
	}
	keepWhole, dropped := e.beyondWindow(c, seg) // linux_codes.go
	if dropped {
		return false
	}
	// RFC 7323 §4.3 (R3 of §5.3): an acceptable segment that starts at or
	// before the last ACK we sent updates TS.Recent, the TSval we echo
	// (PAWS above refused any older one).
	if c.tsOK && o.HasTimestamp && f&FlagRST == 0 && seg.Seq.LessEq(c.lastAckSent) {
		c.tsRecent = o.TSVal
	}
	// Trim to the window: what lies before RCV.NXT was received already.
	if seq.LessThan(c.rcvNxt) && f&FlagRST == 0 {
		d := int(c.rcvNxt.Sub(seq))
		if syn {
			// The SYN's number is trimmed, but the SYN bit stays for the
			// fourth check: a challenge ACK "irrespective of the sequence
			// number" (RFC 5961 §4.2), never its text taken as data.
			seq++
			d--
		}
		trimmed := min(d, len(payload))
		payload = payload[trimmed:]
		seq = seq.Add(Size(trimmed))
		if d > trimmed {
			fin = false // the FIN too was seen before
		}
		if trimmed > 0 {
			e.explain(c.id, CodeDataDuplicate, ActionInfo, Field{"TRIMMED", uint64(trimmed)}, Field{"RCV.NXT", uint64(c.rcvNxt)})
			if !syn && c.sackOK {
				// The D-SACK goes out at once: the next in-order ACK would
				// no longer carry it (RFC 2883 §4, as BSD does). Without
				// SACK the ACK may be delayed as usual.
				c.noteDuplicate(seq-Seq(trimmed), seq)
				c.ackPending, ackNow = true, true
			}
		}
	}
	if right := c.rcvWire; !keepWhole && len(payload) > 0 && seq.Add(Size(len(payload))).GreaterThan(right) {
		keep := int(right.Sub(seq))
		if int32(right.Sub(seq)) < 0 {
			keep = 0
		}
		e.explain(c.id, CodeDataTrimmed, ActionInfo, Field{"TRIMMED", uint64(len(payload) - keep)}, Field{"SEG.SEQ", uint64(seq)},
			Field{"SEG.LEN", uint64(len(payload))}, Field{"RCV.NXT", uint64(c.rcvNxt)}, Field{"RCV.WND", uint64(wnd)})
		payload, fin = payload[:keep], false
	}

	// Second, check the RST bit (RFC 5961 §3.2 narrows RFC 9293's rule).
	if f&FlagRST != 0 {
		if seg.Seq != c.rcvNxt {
			if !e.cfg.InsecureRST {
				e.challengeAck(c, CodeRstChallengeAck, Field{"SEG.SEQ", uint64(seg.Seq)}, Field{"RCV.NXT", uint64(c.rcvNxt)})
				return false
			}
			e.explain(c.id, CodeRstInsecureAccepted, ActionInfo, Field{"SEG.SEQ", uint64(seg.Seq)}, Field{"RCV.NXT", uint64(c.rcvNxt)})
		}
		switch c.state {
		case SynReceived:
			if c.passive {
				e.explain(c.id, CodeRstReturnToListen, ActionAccepted)
				e.toClosed(c, CodeRstReturnToListen, ErrConnectionReset)
				return false
			}
			e.explain(c.id, CodeRstReset, ActionAccepted, Field{"SEG.SEQ", uint64(seg.Seq)})
			e.event(c, EventRefused)
			e.toClosed(c, CodeRstReset, e.rstError(c, ErrConnectionRefused))
		case Established, FinWait1, FinWait2, CloseWait:
			e.explain(c.id, CodeRstReset, ActionAccepted, Field{"SEG.SEQ", uint64(seg.Seq)})
			e.event(c, EventReset)
			e.toClosed(c, CodeRstReset, e.rstError(c, ErrConnectionReset))
		default: // CLOSING, LAST-ACK, TIME-WAIT
			if e.cfg.RstClosingReset && c.state != TimeWait {
				e.explain(c.id, CodeRstClosedReset, ActionAccepted)
				e.event(c, EventReset)
				e.toClosed(c, CodeRstClosedReset, ErrConnectionReset)
				break
			}
			e.explain(c.id, CodeRstClosed, ActionAccepted)
			e.toClosed(c, CodeRstClosed, nil)
		}
		return false
	}

	// Third, security: not implemented (RFC 9293 §3.10.7.4 allows this).

	// Fourth, check the SYN bit.
	if syn {
		if c.state == SynReceived && c.passive {
			if e.synRcvdSynReset(c, seg) { // linux_codes.go
				return false
			}
			e.explain(c.id, CodeSynReturnToListen, ActionAccepted)
			e.toClosed(c, CodeSynReturnToListen, nil)
			return false
		}
		if e.cfg.InsecureSYN && seg.Seq.InWindow(c.rcvNxt, wnd) {
			e.explain(c.id, CodeSynInsecureReset, ActionAnswered, Field{"SEG.SEQ", uint64(seg.Seq)}, Field{"RCV.NXT", uint64(c.rcvNxt)})
			// BSD drops the connection and its output sends the RST
			// with ACK, as for any connection it drops.
			r := Segment{Flags: FlagRST | FlagACK, Seq: c.sndNxt, Ack: c.rcvNxt}
			e.emit(c.id, c.local, c.remote, &r)
			e.event(c, EventReset)
			e.toClosed(c, CodeSynInsecureReset, ErrConnectionReset)
			return false
		}
		e.challengeAck(c, CodeSynChallengeAck, Field{"SND.NXT", uint64(c.sndNxt)}, Field{"RCV.NXT", uint64(c.rcvNxt)})
		return false
	}

	// Fifth, check the ACK field.
	if f&FlagACK == 0 {
		e.explain(c.id, CodeNoAckDropped, ActionDropped)
		return false
	}
	if c.state == SynReceived {
		if !(c.sndUna.LessThan(seg.Ack) && seg.Ack.LessEq(c.sndNxt)) {
			e.sendRst(c.id, Tuple{c.local, c.remote}, seg)
			e.explain(c.id, CodeSynReceivedBadAckSentRst, ActionAnswered, Field{"SEG.ACK", uint64(seg.Ack)},
				Field{"SND.UNA", uint64(c.sndUna)}, Field{"SND.NXT", uint64(c.sndNxt)})
			return false
		}
		if p := c.parent; p != nil && !c.inAcceptQueue && len(p.lq.acceptQueue) >= p.lq.acceptLimit {
			p.lq.stats.AcceptQueueDrops++
			e.explain(c.id, CodeAcceptQueueFull, ActionDropped, Field{"ACCEPTQ.LEN", uint64(len(p.lq.acceptQueue))},
				Field{"ACCEPTQ.LIMIT", uint64(p.lq.acceptLimit)}, Field{"DROPS", p.lq.stats.AcceptQueueDrops})
			return false
		}
		e.establish(c, seg)
		ackNow = e.deliverSynData(c)
	}
	if seg.Ack.GreaterThan(c.sndNxt) {
		e.challengeAck(c, CodeAckTooHighSentAck, Field{"SEG.ACK", uint64(seg.Ack)}, Field{"SND.NXT", uint64(c.sndNxt)})
		return false
	}
	if seg.Ack.LessThan(c.sndUna - Seq(c.maxSndWnd)) {
		e.challengeAck(c, CodeAckOutsideRangeChallenge, Field{"SEG.ACK", uint64(seg.Ack)},
			Field{"SND.UNA", uint64(c.sndUna)}, Field{"SND.NXT", uint64(c.sndNxt)})
		return false
	}
	wasUna := c.sndUna
	sndWnd := segWnd(c, seg)
	if c.sack != nil {
		c.sack.newly = 0
	}
	if (seg.Options.NumSACK > 0 || c.sack != nil && len(c.sack.board) > 0 || c.rack != nil) && e.sackOn(c) && c.sndUna.LessEq(seg.Ack) {
		// RFC 6675 §5: Update() on every ACK with SACK information (or a
		// scoreboard or RACK state to bring up to date).
		e.sackUpdate(c, seg)
		if c.sack.rackOn {
			c.sack.rackLost = e.rackOnAck(c, seg)
			if seg.Ack == c.sndUna && c.rack != nil && c.rack.sackRTT >= 0 {
				// An ACK that SACKs new, never retransmitted data but
				// does not move SND.UNA still times that data: RFC 6298
				// §3 asks for samples of segments not retransmitted (Karn);
				// RFC 7323 §4.1 keeps timestamp samples to ACKs that
				// advance SND.UNA, so the send time comes from RACK's
				// record of the segment.
				e.rttSample(c, c.rack.sackRTT)
				e.explain(c.id, CodeRTTSampleSACK, ActionInfo, Field{"RTT.MS", uint64(c.rack.sackRTT / time.Millisecond)},
					Field{"SRTT.MS", uint64(c.srtt / time.Millisecond)}, Field{"RTTVAR.MS", uint64(c.rttvar / time.Millisecond)}, Field{"RTO.MS", uint64(c.rto / time.Millisecond)})
			}
		}
	}
	switch {
	case c.sndUna.LessThan(seg.Ack):
		e.ackNew(c, seg)
	case seg.Ack == c.sndUna:
		// RFC 5681 §2: no data, no SYN or FIN in the segment as it
		// arrived (a refused zero-window probe is not a duplicate ACK).
		// With SACK, RFC 6675 §2 counts an ACK with new SACK information.
		if c.rack != nil {
			e.tlpOnAck(c, seg)
		}
		if e.sackMode(c) && c.flight() > 0 && (c.sack.newly > 0 || c.sack.inRecovery) {
			e.sackOnAck(c, seg, 0)
		} else if len(seg.Payload) == 0 && f&(FlagSYN|FlagFIN) == 0 && sndWnd == c.sndWnd && c.flight() > 0 && !e.sackMode(c) {
			e.dupAck(c, seg)
		}
		e.frtoOnDup(c, seg) // RFC 5682 steps 2, 3 (frto.go)
	default:
		e.explain(c.id, CodeAckOld, ActionInfo, Field{"SEG.ACK", uint64(seg.Ack)}, Field{"SND.UNA", uint64(c.sndUna)})
	}
	e.ecnOnAck(c, seg) // RFC 3168 §6.1.2 (ecn.go)
	// Update the send window (RFC 9293 §3.10.7.4: only when
	// SND.UNA =< SEG.ACK =< SND.NXT, and only from segments newer than the
	// last update). wasUna is SND.UNA before this ACK moved it.
	if wasUna.LessEq(seg.Ack) && (c.sndWl1.LessThan(seg.Seq) || (c.sndWl1 == seg.Seq && c.sndWl2.LessEq(seg.Ack))) {
		if sndWnd != c.sndWnd {
			e.explain(c.id, CodeWindowUpdated, ActionInfo, Field{"SND.WND", uint64(sndWnd)},
				Field{"SND.WL1", uint64(seg.Seq)}, Field{"SND.WL2", uint64(seg.Ack)})
		}
		c.sndWnd, c.sndWl1, c.sndWl2 = sndWnd, seg.Seq, seg.Ack
		c.maxSndWnd = max(c.maxSndWnd, sndWnd)
	}
	finAcked := c.finSent && c.sndUna == c.sndNxt && wasUna != c.sndUna
	switch c.state {
	case FinWait1:
		if finAcked {
			e.explain(c.id, CodeFinAcked, ActionAccepted, Field{"SEG.ACK", uint64(seg.Ack)})
			e.setState(c, FinWait2, CodeFinAcked)
			e.armFinWait2(c)
		}
	case Closing:
		if finAcked {
			e.explain(c.id, CodeFinAcked, ActionAccepted, Field{"SEG.ACK", uint64(seg.Ack)})
			e.enterTimeWait(c, CodeFinAcked)
		}
	case LastAck:
		if finAcked {
			e.explain(c.id, CodeFinAcked, ActionAccepted, Field{"SEG.ACK", uint64(seg.Ack)})
			e.toClosed(c, CodeFinAcked, nil)
			return false
		}
	}

	// Sixth, check the URG bit (urgent.go).
	if f&FlagURG != 0 {
		e.urgentArrives(c, seg)
	}

	// Seventh and eighth: the segment text and the FIN.
	if len(payload) > 0 || fin {
		if e.processText(c, seq, payload, fin) {
			ackNow = true
		}
	}
	return ackNow
}

// reopenFromTimeWait ends TIME-WAIT for a new SYN and hands it to the
// listener with an ISS above the old SND.NXT (RFC 9293 §3.6.1). It
// reports false, changing nothing, when nothing listens on the port.
func (e *Engine) reopenFromTimeWait(c *conn, seg *Segment, code Code) bool {
	l := e.listenerFor(c.local)
	if l == nil {
		return false
	}
	minISS := c.sndNxt.Add(1 << 17)
	e.explain(c.id, code, ActionAccepted, Field{"SEG.SEQ", uint64(seg.Seq)}, Field{"RCV.NXT", uint64(c.rcvNxt)})
	t := Tuple{c.local, c.remote}
	e.toClosed(c, code, nil)
	e.listenArrivesISS(l, t, seg, &minISS)
	return true
}

// challengeAck answers with the ACK the rule code calls for (RFC 5961
// §3.2, §4.2, §5.2) unless this connection has already sent
// Config.ChallengeAckLimit of them in the current second of the engine
// clock, in which case the segment is dropped without reply (RFC 5961 §7).
func (e *Engine) challengeAck(c *conn, code Code, fs ...Field) {
	if e.oowRateLimited(c) { // linux_codes.go
		return
	}
	if limit := e.cfg.ChallengeAckLimit; limit > 0 && e.cfg.InvalidRateLimit <= 0 {
		if c.challengeAcks == 0 || e.now-c.challengeStart >= time.Second {
			c.challengeStart, c.challengeAcks = e.now, 0
		}
		if c.challengeAcks >= limit {
			var buf [maxFields]Field
			n := copy(buf[:maxFields-1], fs)
			buf[n] = Field{"LIMIT", uint64(limit)}
			e.explain(c.id, CodeChallengeAckThrottled, ActionDropped, buf[:n+1]...)
			return
		}
		c.challengeAcks++
	}
	e.explain(c.id, code, ActionAnswered, fs...)
	e.sendBareAck(c) // never a FIN retransmission (closing_fin_ack): BSD sends it directly too
}

// synTimedOutRTO applies RFC 6298 §5.7: the timer expired awaiting the ACK
// of our SYN (or SYN,ACK), so there is no RTT sample, and an RTO under 3 s
// MUST be re-initialized to 3 s when data transmission begins.
func (e *Engine) synTimedOutRTO(c *conn) {
	const fallback = 3 * time.Second
	if e.cfg.InitialRTO < fallback {
		c.rto = min(max(fallback, e.cfg.MinRTO), e.cfg.MaxRTO)
	}
}

// segWnd is SEG.WND in bytes: shifted by the peer's scale, except in a
// segment with SYN set (a SYN,ACK completing a simultaneous open), whose
// window is never scaled (RFC 7323 §2.2).
func segWnd(c *conn, seg *Segment) uint32 {
	if seg.Flags&FlagSYN != 0 {
		return uint32(seg.Window)
	}
	return uint32(seg.Window) << c.sndScale
}

// establish completes a passive or simultaneous open on an acceptable ACK
// in SYN-RECEIVED.
func (e *Engine) establish(c *conn, seg *Segment) {
	c.sndWnd = segWnd(c, seg)
	c.maxSndWnd = max(c.maxSndWnd, c.sndWnd)
	c.sndWl1, c.sndWl2 = seg.Seq, seg.Ack
	c.cwnd = e.initialCwnd(c)
	if c.retries == 0 && c.rttMeasuring {
		e.rttSample(c, e.now-c.rttStart)
	} else if c.retries > 0 {
		e.synTimedOutRTO(c)
	}
	c.rttMeasuring, c.retries = false, 0
	e.stopRtx(c)
	e.explain(c.id, CodeSynReceivedAckEstablished, ActionAccepted, Field{"SEG.ACK", uint64(seg.Ack)})
	e.setState(c, Established, CodeSynReceivedAckEstablished)
	e.event(c, EventEstablished)
	if p := c.parent; p != nil {
		p.lq.remove(c)
		p.lq.acceptQueue = append(p.lq.acceptQueue, c)
		c.inAcceptQueue = true
		e.event(p, EventAcceptReady)
	}
	if c.finQueued {
		e.setState(c, FinWait1, CodeAppClose)
	}
}

// queueSynText holds the text and FIN of a SYN until the connection is
// ESTABLISHED: "any other control or text should be queued for processing
// later" (RFC 9293 §3.10.7.2 third check, §3.10.7.3 fourth).
func (e *Engine) queueSynText(c *conn, seg *Segment) {
	fin := seg.Flags&FlagFIN != 0
	if len(seg.Payload) == 0 && !fin || e.synTextDiscarded(c, seg) {
		return
	}
	c.synData = append([]byte(nil), seg.Payload...)
	c.synFin = fin
	e.explain(c.id, CodeSynDataQueued, ActionQueued, Field{"SEG.LEN", uint64(len(seg.Payload))}, Field{"FIN", b2u(fin)})
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// deliverSynData hands text (and a FIN) that arrived on the SYN to the
// application now that the connection is ESTABLISHED.
func (e *Engine) deliverSynData(c *conn) bool {
	if len(c.synData) == 0 && !c.synFin {
		return false
	}
	d, fin := c.synData, c.synFin
	c.synData, c.synFin = nil, false
	return e.processText(c, c.irs+1, d, fin)
}

// ackNew handles an ACK of new data: SND.UNA advances, acknowledged bytes
// leave the send buffer, RTT is sampled, the congestion window grows.
func (e *Engine) ackNew(c *conn, seg *Segment) {
	old := c.sndUna
	acked := uint32(seg.Ack.Sub(old))
	start := c.sndBufSeq()
	end := start.Add(Size(c.sndBuf.Len()))
	upto := MinSeq(seg.Ack, end)
	if upto.GreaterThan(start) {
		c.sndBuf.discard(int(upto.Sub(start)))
		if c.sndBuf.Len() == 0 {
			c.sndBuf.release(&e.sndSpare)
		}
	}
	c.sndUna = seg.Ack
	if c.rtxNxt.LessThan(c.sndUna) {
		c.rtxNxt = c.sndUna
	}
	e.explain(c.id, CodeAckNew, ActionAccepted, Field{"SEG.ACK", uint64(seg.Ack)}, Field{"OLD.SND.UNA", uint64(old)})

	// RTT (RFC 6298 §3, RFC 7323 §4): from the echoed timestamp, or from
	// the one timed segment. Karn's rule applies to both: an ACK covering
	// retransmitted data gives no sample, because a duplicate the peer
	// already had echoes the TSval of the first transmission (RFC 7323 §4.3
	// keeps TS.Recent for unacceptable segments) and would count the timeout
	// into the RTT.
	e.eifelOnAck(c, seg, acked)
	karn := c.retransmitted && old.LessThan(c.rtxHigh)
	if c.retransmitted && c.sndUna.GreaterEq(c.rtxHigh) {
		c.retransmitted = false
	}
	if karn {
		c.rttMeasuring = false
	} else if c.tsOK && seg.Options.HasTimestamp && seg.Options.TSEcr != 0 {
		if d := e.tsVal(c) - seg.Options.TSEcr; int32(d) >= 0 {
			e.rttSample(c, time.Duration(d)*time.Millisecond)
		}
	} else if c.rttMeasuring && seg.Ack.GreaterEq(c.rttSeq) {
		c.rttMeasuring = false
		if c.retries == 0 {
			e.rttSample(c, e.now-c.rttStart)
		}
	}
	c.retries, c.probes = 0, 0
	if c.sndUna == c.sndNxt {
		c.probing = false
	}

	// Congestion control: RFC 5681 §3.1, NewReno recovery per RFC 6582.
	mss := uint32(c.effMSS())
	sack := e.sackMode(c)
	if old != c.iss && sack {
		e.sackOnAck(c, seg, acked)
	} else if old != c.iss {
		switch {
		case c.inRecovery && seg.Ack.GreaterEq(c.recover):
			c.cwnd = min(c.ssthresh, max(c.flight(), mss)+mss)
			c.inRecovery = false
		case c.inRecovery:
			// Partial ACK: resend the next hole, deflate by what was acked.
			c.rtxNxt = c.sndUna
			keep := c.sndNxt
			e.retransmitOne(c)
			c.rtxNxt = keep
			// RFC 6582 §3.2 step 5: deflate by the new data acknowledged;
			// add SMSS back only if at least SMSS was acknowledged.
			c.cwnd -= min(acked, c.cwnd)
			if acked >= mss {
				c.cwnd += mss
			}
			c.cwnd = max(c.cwnd, mss)
		default:
			e.ccGrow(c, acked)
		}
	}
	if c.recoverGuard && c.sndUna.GreaterThan(c.recover) {
		c.recoverGuard = false
	}
	e.frtoOnAck(c, seg, acked) // RFC 5682 steps 2, 3 (frto.go)
	if !sack {
		c.dupAcks = 0
		if c.sack != nil {
			c.sack.ltBytes = 0
		}
	}
	if c.sndUna == c.sndNxt {
		e.stopRtx(c)
	} else {
		e.armRtx(c) // RFC 6298 §5.3
	}
	if c.rack != nil {
		e.tlpOnAck(c, seg)
		e.armPTO(c) // RFC 8985 §7.2: on an ACK of new data
	}
}

// dupAck counts duplicate ACKs and starts fast retransmit on the third
// (RFC 5681 §3.2).
func (e *Engine) dupAck(c *conn, seg *Segment) {
	c.dupAcks++
	e.explain(c.id, CodeAckDuplicate, ActionInfo, Field{"DUPACKS", uint64(c.dupAcks)}, Field{"SEG.ACK", uint64(seg.Ack)})
	mss := uint32(c.effMSS())
	switch {
	case c.inRecovery:
		c.cwnd += mss
	case c.dupAcks == 3 && c.recoverGuard && !seg.Ack.GreaterThan(c.recover):
		// RFC 6582 §3.2 step 2: the ACK does not cover more than recover
		// (the highest sequence number sent at the last fast retransmit or
		// timeout): no fast retransmit, ssthresh unchanged.
		e.explain(c.id, CodeFastRetransmitSkipped, ActionInfo, Field{"SEG.ACK", uint64(seg.Ack)}, Field{"RECOVER", uint64(c.recover)})
	case c.dupAcks == 3:
		c.ssthresh = e.ccReduce(c, c.flight())
		c.recover, c.recoverGuard = c.sndNxt, true
		c.inRecovery = true
		c.cwnd = c.ssthresh + 3*mss
		e.explain(c.id, CodeFastRetransmit, ActionAccepted, Field{"SEG.SEQ", uint64(c.sndUna)},
			Field{"SSTHRESH", uint64(c.ssthresh)}, Field{"CWND", uint64(c.cwnd)})
		keep := c.rtxNxt
		c.rtxNxt = c.sndUna
		e.retransmitOne(c)
		c.rtxNxt = MaxSeq(keep, c.rtxNxt)
		if c.rtxNxt.LessThan(c.sndNxt) && keep == c.sndNxt {
			c.rtxNxt = c.sndNxt
		}
	}
}

func (e *Engine) rttSample(c *conn, r time.Duration) {
	if r < 0 {
		return
	}
	if s := c.sack; s != nil && (s.minRTT == 0 || r < s.minRTT) {
		s.minRTT = r // RACK.min_RTT (RFC 8985 §6.2 step 1), from the first data sent
	}
	e.hystartRTT(c, r)
	if c.srtt == 0 && c.rttvar == 0 {
		c.srtt, c.rttvar = r, r/2
	} else {
		delta := c.srtt - r
		if delta < 0 {
			delta = -delta
		}
		c.rttvar = (3*c.rttvar + delta) / 4
		c.srtt = (7*c.srtt + r) / 8
	}
	c.rto = min(max(c.srtt+max(time.Millisecond, 4*c.rttvar), e.cfg.MinRTO), e.cfg.MaxRTO)
}

// processText is the seventh (segment text) and eighth (FIN) steps of
// RFC 9293 §3.10.7.4 for text starting at seq, already trimmed to the
// window. It reports whether an ACK must be sent at once.
func (e *Engine) processText(c *conn, seq Seq, payload []byte, fin bool) bool {
	switch c.state {
	case Established, FinWait1, FinWait2:
	default:
		if len(payload) > 0 {
			e.explain(c.id, CodeDataAfterFinIgnored, ActionDropped, Field{"SEG.SEQ", uint64(seq)}, Field{"SEG.LEN", uint64(len(payload))}, Field{"RCV.NXT", uint64(c.rcvNxt)})
		}
		if fin {
			return e.finAgain(c, seq.Add(Size(len(payload))))
		}
		return false
	}
	if c.userClosed && len(payload) > 0 {
		e.explain(c.id, CodeDataAfterCloseReset, ActionAnswered)
		c.rstReply = true // Linux answers the segment: <SEQ=SND.NXT><CTL=RST>
		e.sendRstFor(c)
		e.toClosed(c, CodeDataAfterCloseReset, ErrConnectionReset)
		return false
	}
	if seq != c.rcvNxt {
		c.noteHeldDuplicate(seq, seq.Add(Size(len(payload))))
		res, added := c.ooo.insert(seq, payload, fin, e.maxOOOBlocks(c))
		segFields := [...]Field{{"SEG.SEQ", uint64(seq)}, {"SEG.LEN", uint64(len(payload))}, {"RCV.NXT", uint64(c.rcvNxt)},
			{"OOO.BYTES", uint64(c.ooo.bytes)}, {"OOO.BLOCKS", uint64(len(c.ooo.segs))}}
		switch res {
		case oooQueued:
			e.explain(c.id, CodeDataOutOfOrder, ActionQueued, segFields[0], segFields[1], segFields[2],
				Field{"QUEUED", uint64(added)}, segFields[3], segFields[4])
			if fin {
				finSeq := uint64(seq.Add(Size(len(payload))))
				e.explain(c.id, CodeFinOutOfOrder, ActionQueued, Field{"SEG.SEQ", finSeq}, Field{"RCV.NXT", uint64(c.rcvNxt)})
				if c.sackOK && !c.ooo.sackFin {
					e.explain(c.id, CodeFinNotSACKed, ActionInfo, Field{"SEG.SEQ", finSeq})
				}
			}
		case oooDuplicate:
			e.explain(c.id, CodeDataOutOfOrderDuplicate, ActionDropped, segFields[:]...)
		case oooFull:
			e.explain(c.id, CodeOutOfOrderQueueFull, ActionDropped, segFields[:]...)
		}
		c.ackPending = true
		return true
	}
	ackNow := false
	if len(payload) > 0 {
		limit := e.beyondWindowLimit(c, e.rcvLimit(c)+1<<c.rcvScale, len(payload)) // linux_codes.go
		n := c.rcvBuf.write(payload, limit, &e.rcvSpare)
		c.rcvNxt = c.rcvNxt.Add(Size(n))
		if n < len(payload) {
			// The window never offers more than the buffer holds, so only
			// a peer overrunning it gets here.
			fin = false // the FIN lies beyond what was taken
			e.explain(c.id, CodeDataBufferFull, ActionDropped, Field{"BUFFERED", uint64(c.rcvBuf.Len())}, Field{"RCV.BUFF", uint64(limit)},
				Field{"DISCARDED", uint64(len(payload) - n)}, Field{"SEG.SEQ", uint64(c.rcvNxt)})
		}
		e.explain(c.id, CodeDataInOrder, ActionAccepted, Field{"SEG.LEN", uint64(n)}, Field{"RCV.NXT", uint64(c.rcvNxt)})
		e.event(c, EventDataReadable)
		hadHoles := len(c.ooo.segs) > 0
		// Pull whatever the reassembly queue now continues.
		for hadHoles {
			s, ok := c.ooo.pop(c.rcvNxt)
			if !ok {
				break
			}
			if d := int(c.rcvNxt.Sub(s.seq)); d < len(s.data) {
				k := c.rcvBuf.write(s.data[d:], limit, &e.rcvSpare)
				c.rcvNxt = c.rcvNxt.Add(Size(k))
				if k < len(s.data)-d {
					e.explain(c.id, CodeDataBufferFull, ActionDropped, Field{"BUFFERED", uint64(c.rcvBuf.Len())}, Field{"RCV.BUFF", uint64(limit)},
						Field{"DISCARDED", uint64(len(s.data) - d - k)}, Field{"SEG.SEQ", uint64(c.rcvNxt)})
					if len(c.ooo.segs) > 0 {
						e.explain(c.id, CodeOutOfOrderDiscarded, ActionDropped, Field{"RCV.NXT", uint64(c.rcvNxt)},
							Field{"OOO.BYTES", uint64(c.ooo.bytes)}, Field{"OOO.BLOCKS", uint64(len(c.ooo.segs))})
					}
					c.ooo.clear()
					break
				}
			}
			if s.fin && s.end()-1 == c.rcvNxt {
				fin = true
			}
		}
		if hadHoles {
			ackNow = true // RFC 5681 §4.2: ACK at once when a hole is filled
		}
		c.ackPending = true
		c.segsUnacked += n
		// A full-sized segment from the peer holds our MSS less the
		// timestamp option every segment carries (RFC 7323 §3.2).
		full := int(c.rcvMSS)
		if c.tsOK {
			full -= 12
		}
		if e.cfg.AckEverySecond {
			c.dataSegsUnacked++
		}
		if e.cfg.NoDelayedAck || c.segsUnacked >= 2*full {
			ackNow = true
		} else if e.quickAck(c, n) {
			ackNow = true
		} else if c.dataSegsUnacked >= 2 {
			e.explain(c.id, CodeAckEverySecond, ActionInfo, Field{"SEG.LEN", uint64(n)}, Field{"RCV.NXT", uint64(c.rcvNxt)})
			ackNow = true
		} else if c.delackAt == 0 {
			c.delackAt = e.deadlineAfter(e.cfg.DelayedAckTimeout)
			e.schedule(c)
		}
	}
	if fin {
		c.rcvNxt++
		c.rcvFin = true
		c.ooo.clear()
		e.explain(c.id, CodeFinReceived, ActionAccepted, Field{"SEG.SEQ", uint64(c.rcvNxt - 1)}, Field{"RCV.NXT", uint64(c.rcvNxt)})
		e.event(c, EventPeerClosed)
		e.event(c, EventDataReadable)
		c.ackPending = true
		ackNow = ackNow || !e.delayFinAck(c)
		switch c.state {
		case Established:
			e.setState(c, CloseWait, CodeFinReceived)
		case FinWait1:
			if c.finSent && c.sndUna == c.sndNxt {
				e.enterTimeWait(c, CodeFinReceived)
			} else {
				e.setState(c, Closing, CodeFinReceived)
			}
		case FinWait2:
			e.enterTimeWait(c, CodeFinReceived)
		}
	}
	return ackNow
}

// maxOOOBlocks bounds the islands of out-of-order data one connection
// holds: their bytes are bounded by the window, but each island costs
// memory of its own. RCV.BUFF/MSS islands (at least 64) is one hole per
// full segment the window can hold, far more than any loss pattern makes.
func (e *Engine) maxOOOBlocks(c *conn) int {
	return max(64, e.rcvLimit(c)/max(int(c.rcvMSS), 1))
}

// finAgain is the eighth step for a FIN that passed the acceptability
// test in CLOSE-WAIT, CLOSING, LAST-ACK or TIME-WAIT: the peer's FIN was
// already taken, so this is a retransmission (our ACK was lost) wherever in
// the window it claims to sit. RFC 9293 §3.10.7.4 says to acknowledge it
// and remain; TIME-WAIT also restarts the 2·MSL timeout (fifth and eighth
// steps). RCV.NXT does not move again. It reports that an ACK is due now.
func (e *Engine) finAgain(c *conn, at Seq) bool {
	if c.state == TimeWait {
		e.explain(c.id, CodeFinTimeWaitReAck, ActionAnswered, Field{"SEG.SEQ", uint64(at)}, Field{"RCV.NXT", uint64(c.rcvNxt)})
		c.timeWaitAt = e.deadlineAfter(2 * e.cfg.MSL)
		e.schedule(c)
	} else {
		e.explain(c.id, CodeFinAgainAcked, ActionAnswered, Field{"SEG.SEQ", uint64(at)}, Field{"RCV.NXT", uint64(c.rcvNxt)})
	}
	c.ackPending = true
	return true
}

// enterTimeWait starts the 2·MSL wait (RFC 9293 §3.10.7.4 eighth step),
// turning off the other timers.
func (e *Engine) enterTimeWait(c *conn, cause Code) {
	e.setState(c, TimeWait, cause)
	c.rtxAt, c.persistAt, c.lossAt = 0, 0, 0
	c.timeWaitAt = e.deadlineAfter(2 * e.cfg.MSL)
	e.schedule(c)
	c.sndBuf.drop(&e.sndSpare)
	c.ooo.clear()
}
