package fsm

import (
	"net/netip"
	"time"
)

// emit encodes seg from local to remote into the output batch.
func (e *Engine) emit(id EndpointID, local, remote netip.AddrPort, seg *Segment) {
	seg.SrcPort, seg.DstPort = local.Port(), remote.Port()
	src, dst := local.Addr(), remote.Addr()
	ect := e.ecnOnEmit(id, seg) // RFC 3168: ECE, CWR, ECT(0) (ecn.go)
	key := e.md5Key(dst)
	seg.Options.HasMD5 = key != "" // md5.go
	start := len(e.arena)
	e.arena = AppendPacket(e.arena, src, dst, seg)
	data := e.arena[start:len(e.arena):len(e.arena)]
	if key != "" {
		SignMD5(data, []byte(key))
	}
	if e.cfg.HopLimit != ipHopLimit || e.tclassSet || ect != 0 {
		var tclass uint8
		if c := e.byID[id]; c != nil {
			tclass = c.opts.TrafficClass
		}
		setIPFields(data, e.cfg.HopLimit, tclass&^3|ect)
	}
	// Built in place: a Packet is 192 bytes.
	ps := e.ready.Packets
	if len(ps) < cap(ps) {
		ps = ps[:len(ps)+1]
	} else {
		ps = append(ps, Packet{})
	}
	p := &ps[len(ps)-1]
	*p = Packet{Endpoint: id, Time: e.now, Src: src, Dst: dst, Segment: *seg, Data: data}
	if n := len(seg.Payload); n > 0 {
		p.Segment.Payload = data[len(data)-n:]
	}
	e.ready.Packets = ps
}

// tsVal is our timestamp clock: 1 ms ticks plus the connection's offset
// (RFC 7323 §5.4).
func (e *Engine) tsVal(c *conn) uint32 { return uint32(e.now/time.Millisecond) + c.tsOffset }

// segment builds a segment of c with the given flags, sequence number and
// payload, filling ACK, window and options from the TCB.
func (e *Engine) segment(c *conn, flags Flags, seq Seq, payload []byte) Segment {
	s := Segment{Flags: flags, Seq: seq, Payload: payload}
	if flags&FlagACK != 0 {
		s.Ack = c.rcvNxt
		c.lastAckSent = c.rcvNxt
		c.ackPending, c.segsUnacked, c.dataSegsUnacked = false, 0, 0
		if c.delackAt != 0 {
			c.delackAt = 0
			e.schedule(c)
		}
	}
	if flags&FlagSYN != 0 {
		// The window in a SYN is never scaled (RFC 7323 §2.2).
		active := flags&FlagACK == 0
		ts := !active && c.tsOK
		w := e.synWindow(c.rcvMSS, ts)
		c.setRcvEdge(c.rcvNxt.Add(Size(w)))
		s.Window = uint16(w)
		e.explainSynWindow(c, w, ts)
		o := &s.Options
		o.MSS, o.HasMSS = c.rcvMSS, true
		if !e.cfg.NoWindowScale && (active || c.wsOK) {
			o.WScale, o.HasWScale = uint8(e.cfg.WindowScale), true
		}
		if !e.cfg.NoSACK && (active || c.sackOK) {
			o.SACKPermitted = true
		}
		if !e.cfg.NoTimestamps && (active || c.tsOK) {
			o.HasTimestamp, o.TSVal = true, e.tsVal(c)
			if !active {
				o.TSEcr = c.tsRecent
			}
		}
		// A passive open's SYN,ACK does not round: FreeBSD's SYN cache
		// offers the plain buffer in SYN-RECEIVED and rounds it once the
		// socket exists, so a RST or SYN just past 65535 is still
		// outside. A simultaneous open's socket rounds at once.
		if !c.passive {
			c.roundedEdge()
		}
		return s
	}
	s.Window = e.advertise(c)
	c.roundedEdge()
	if c.sndUpSet && flags&FlagRST == 0 {
		c.urgentFlags(&s)
	}
	if c.tsOK && flags&FlagRST == 0 {
		s.Options.HasTimestamp, s.Options.TSVal, s.Options.TSEcr = true, e.tsVal(c), c.tsRecent
	}
	if c.sackOK && flags&FlagACK != 0 && (len(c.ooo.segs) > 0 || c.dsackSet) {
		limit := MaxSACKBlocks
		if c.tsOK {
			limit = 3
		}
		c.sackOption(&s.Options, limit)
	}
	return s
}

// advertise computes the window field to send and moves the advertised
// right edge, applying receiver-side silly window avoidance (RFC 9293
// §3.8.6.2.2): the edge only moves right once the free space exceeds what
// was offered by min(RCV.BUFF/2, MSS), and never moves left.
func (e *Engine) advertise(c *conn) uint16 {
	free := Size(max(e.rcvSpace()-c.rcvBuf.Len(), 0))
	e.quickAckSmallWindow(c, free) // linux_codes.go
	cur := Size(0)
	if c.rcvAdv.GreaterThan(c.rcvNxt) {
		cur = c.rcvAdv.Sub(c.rcvNxt)
	}
	thresh := Size(min(e.rcvSpace()/2, int(c.rcvMSS)))
	if free > cur && free-cur >= thresh {
		cur = free
	}
	// Round up to the scale unit so the edge the peer sees never moves
	// left; the promise (rcvAdv) itself stays unrounded.
	field := (uint32(cur) + 1<<c.rcvScale - 1) >> c.rcvScale
	if field > 65535 {
		field = 65535
		cur = min(cur, Size(field<<c.rcvScale))
	}
	if e.cfg.rcvMemLinux() {
		// Linux keeps the rounded window as its promise (tcp_select_window
		// sets rcv_wnd to it), so the next window is measured from there.
		cur = Size(field << c.rcvScale)
	}
	c.rcvAdv = c.rcvNxt.Add(cur)
	c.rcvWire = MaxSeq(c.rcvWire, c.rcvNxt.Add(Size(field<<c.rcvScale)))
	return uint16(field)
}

func (e *Engine) sendSyn(c *conn) {
	s := e.segment(c, FlagSYN, c.iss, nil)
	c.sndNxt = c.iss + 1
	e.fastOpenSyn(c, &s)
	if c.rtxNxt.LessThan(c.sndNxt) {
		c.rtxNxt = c.sndNxt
	}
	e.emit(c.id, c.local, c.remote, &s)
	if c.retries == 0 {
		c.rttMeasuring, c.rttStart = true, e.now
		c.synStart = e.now
	}
	if c.rtxAt == 0 {
		e.armSynRtx(c)
	}
}

func (e *Engine) sendSynAck(c *conn) {
	s := e.segment(c, FlagSYN|FlagACK, c.iss, nil)
	e.fastOpenSynAckOption(c, &s)
	c.sndNxt = c.iss + 1
	c.rtxNxt = c.sndNxt
	e.emit(c.id, c.local, c.remote, &s)
	if c.retries == 0 {
		c.rttMeasuring, c.rttStart = true, e.now
	}
	if c.rtxAt == 0 {
		e.armRtx(c)
	}
}

// sendAck sends <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>.
func (e *Engine) sendAck(c *conn) {
	if c.state == Closing && e.cfg.ClosingFinAck && c.finSent && c.sndUna != c.sndNxt {
		e.closingFinAck(c)
		return
	}
	e.sendBareAck(c)
}

// sendBareAck is sendAck without any switch's variation.
func (e *Engine) sendBareAck(c *conn) {
	s := e.segment(c, FlagACK, c.sndNxt, nil)
	e.emit(c.id, c.local, c.remote, &s)
}

// sendRstFor sends <SEQ=SND.NXT><CTL=RST> for an abort (RFC 9293 §3.10.5).
// Under rst_ack it carries <ACK=RCV.NXT> once RCV.NXT is known.
func (e *Engine) sendRstFor(c *conn) {
	s := Segment{Flags: FlagRST, Seq: c.sndNxt}
	if e.cfg.RstAck && c.state != SynSent && !c.rstReply {
		s.Flags |= FlagACK
		s.Ack = c.rcvNxt
		e.explain(c.id, CodeRstWithAck, ActionInfo, Field{"SEG.SEQ", uint64(c.sndNxt)}, Field{"RCV.NXT", uint64(c.rcvNxt)})
	}
	e.emit(c.id, c.local, c.remote, &s)
}

// sendRst replies to seg with a reset (RFC 9293 §3.5.2): if the segment has
// an ACK, <SEQ=SEG.ACK><CTL=RST>; otherwise <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
func (e *Engine) sendRst(id EndpointID, t Tuple, seg *Segment) Segment {
	var r Segment
	if seg.Flags&FlagACK != 0 {
		r = Segment{Flags: FlagRST, Seq: seg.Ack}
	} else {
		r = Segment{Flags: FlagRST | FlagACK, Seq: 0, Ack: seg.Seq.Add(seg.Len())}
	}
	e.emit(id, t.Local, t.Remote, &r)
	return r
}

// output sends what the sending policy allows now: retransmissions first
// (go-back-N after a timeout), then new data and the FIN, within
// min(SND.WND, cwnd), with Nagle (RFC 9293 §3.7.4) and sender-side silly
// window avoidance (RFC 9293 §3.8.6.2.1).
func (e *Engine) output(c *conn) {
	switch c.state {
	case Established, CloseWait, FinWait1, Closing, LastAck:
	default:
		return
	}
	if c.probing && c.sndWnd > 0 {
		// The window reopened while a probe is unacknowledged: the probe
		// was refused, so take it back and send it again as normal data.
		c.probing = false
		if c.sndUna.LessThan(c.sndNxt) {
			if c.finSent && c.sndNxt == c.finSeq()+1 {
				c.finSent = false
			}
			c.sndNxt, c.rtxNxt = c.sndUna, c.sndUna
		}
	}
	if c.sack != nil && c.sack.inRecovery {
		e.sackSend(c) // RFC 6675 §5 (C)
		e.armPersist(c)
		return
	}
	mss := c.segMSS()
	wnd := min(c.sndWnd, c.cwnd+c.limitedTransmit())
	sackLT := e.sackMode(c) && c.dupAcks > 0
	if sackLT {
		// RFC 6675 §5 step 3: limited transmit sends new data while
		// cwnd - pipe >= 1 SMSS.
		wnd = min(c.sndWnd, c.flight()+c.cwnd-min(c.sack.pipe, c.cwnd))
	}
	startNxt := c.sndNxt
	for {
		next := c.sndNxt
		retx := c.rtxNxt.LessThan(c.sndNxt)
		holeEnd := c.sndNxt
		if retx && c.sack != nil && len(c.sack.board) > 0 {
			// Go-back-N after a timeout skips what the peer has SACKed since.
			c.rtxNxt, holeEnd = c.sackSkip(c.rtxNxt)
			retx = c.rtxNxt.LessThan(c.sndNxt)
		}
		if retx {
			next = c.rtxNxt
		}
		off := int(next.Sub(c.sndBufSeq()))
		avail := c.sndBuf.Len() - off
		if retx {
			avail = min(avail, int(holeEnd.Sub(next)))
		}
		avail = max(avail, 0)
		usable := 0 // room left in min(SND.WND, cwnd) from next on
		edge := c.sndUna.Add(Size(wnd))
		if retx && e.cfg.Recovery.RTOKeepSACK && c.sack != nil {
			edge = c.sackedEdge(edge)
		}
		if edge.GreaterThan(next) {
			usable = int(edge.Sub(next))
		}
		n := min(avail, mss, usable)
		finHere := c.finQueued && n == avail && next.Add(Size(n)) == c.finSeq() &&
			(!c.finSent || retx)
		if n == 0 && !(finHere && usable > 0) {
			break
		}
		if !retx && n < mss && !finHere {
			inFlight := c.sndNxt != c.sndUna
			switch {
			case inFlight && !c.opts.NoDelay && !e.minshallSends(c, next, n):
				n = 0 // Nagle: wait for the outstanding data to be acknowledged
			case n == avail:
			case c.maxSndWnd > 0 && uint32(n) >= c.maxSndWnd/2:
			case !inFlight && c.probes > 0:
				// The persist timer fired while the window was too small
				// for a full segment: the override timeout of sender SWS
				// avoidance (RFC 9293 §3.8.6.2.1) sends what fits.
			default:
				n = 0 // SWS: wait for a bigger window
			}
			if n == 0 {
				break
			}
		}
		flags := FlagACK
		var payload []byte
		if n > 0 {
			if cap(e.scratch) < n {
				e.scratch = make([]byte, max(n, 1<<16))
			}
			payload = e.scratch[:n]
			c.sndBuf.peek(off, payload)
			if !retx && n < mss {
				c.sndSmall = next.Add(Size(n)) // nagle_minshall
			}
			if n == avail {
				flags |= FlagPSH
			}
		}
		if finHere {
			flags |= FlagFIN
		}
		s := e.segment(c, flags, next, payload)
		e.emit(c.id, c.local, c.remote, &s)
		segLen := Size(n)
		if finHere {
			segLen++
			if !c.finSent {
				c.finSent = true
				e.explain(c.id, CodeFinSent, ActionInfo, Field{"SEG.SEQ", uint64(next.Add(Size(n)))})
			}
		}
		e.rackSent(c, next, next.Add(segLen), retx)
		if retx {
			c.rtxNxt = next.Add(segLen)
			c.noteRetransmit(c.rtxNxt)
			if c.rtxNxt.GreaterThan(c.sndNxt) {
				c.sndNxt = c.rtxNxt // the FIN went out for the first time on a retransmission
			}
		} else {
			if !c.rttMeasuring && !c.tsOK && segLen > 0 {
				c.rttMeasuring, c.rttSeq, c.rttStart = true, next.Add(segLen), e.now
			}
			c.sndNxt = next.Add(segLen)
			c.rtxNxt = c.sndNxt
		}
		if c.rtxAt == 0 {
			e.armRtx(c)
		}
		if finHere {
			break
		}
	}
	if c.sndNxt != startNxt {
		e.armPTO(c) // RFC 8985 §7.2: after sending new data
	}
	if sackLT {
		sent := uint32(c.sndNxt.Sub(startNxt))
		// Limited transmit is what went past SND.UNA + cwnd (RFC 5681
		// §3.2, RFC 3042 §2: segments "beyond the congestion window"),
		// the part RFC 5681 leaves out of FlightSize. New data within it
		// replaces what this ACK acknowledged cumulatively; counting it
		// too halved ssthresh again after every stretch ACK.
		if from := MaxSeq(startNxt, c.sndUna.Add(Size(c.cwnd))); c.sndNxt.GreaterThan(from) {
			c.sack.ltBytes += uint32(c.sndNxt.Sub(from))
		}
		c.sack.pipe += sent // in flight now, until the next SetPipe()
	}
	e.armPersist(c)
}

// armPersist starts or stops the persist timer after output.
func (e *Engine) armPersist(c *conn) {
	// Something to send and nothing outstanding: with a zero window, probe
	// (RFC 9293 §3.8.6.1); with a window too small to use (SWS avoidance),
	// the same timer is the override timeout (§3.8.6.2.1), as on Linux.
	// Either way a lost window update cannot stall the connection.
	pending := c.sndBuf.Len() > int(c.sndNxt.Sub(c.sndBufSeq())) || (c.finQueued && !c.finSent)
	if pending && c.sndNxt == c.sndUna {
		if c.persistAt == 0 {
			c.persistAt = e.deadlineAfter(e.persistInterval(c))
			e.schedule(c)
		}
	} else if c.persistAt != 0 && c.sndWnd > 0 {
		c.persistAt, c.probes = 0, 0
		e.schedule(c)
	}
}

func (e *Engine) persistInterval(c *conn) time.Duration {
	d := max(c.rto, e.cfg.MinRTO)
	for i := 0; i < c.probes && d < e.cfg.MaxRTO; i++ {
		d *= 2
	}
	return min(d, e.cfg.MaxRTO)
}

// persistTimeout sends a zero-window probe: one byte of new data (or the
// FIN) beyond the window, or that byte again if it is still unacknowledged.
func (e *Engine) persistTimeout(c *conn) {
	if c.sndWnd > 0 {
		c.probes++ // lets output override SWS avoidance, and backs off
		e.output(c)
		return
	}
	if e.zwpBareAck(c) { // linux_codes.go
		return
	}
	seq := c.sndUna
	off := int(seq.Sub(c.sndBufSeq()))
	var payload []byte
	flags := FlagACK
	if off < c.sndBuf.Len() {
		if cap(e.scratch) < 1 {
			e.scratch = make([]byte, 1<<16)
		}
		payload = e.scratch[:1]
		c.sndBuf.peek(off, payload)
	} else if c.finQueued {
		flags |= FlagFIN
		c.finSent = true
	} else {
		return
	}
	s := e.segment(c, flags, seq, payload)
	e.emit(c.id, c.local, c.remote, &s)
	if end := seq.Add(s.Len()); end.GreaterThan(c.sndNxt) {
		e.rackSent(c, c.sndNxt, end, false)
		c.sndNxt, c.rtxNxt = end, end
		c.probing = true
	} else {
		c.noteRetransmit(end)
	}
	c.probes++
	next := e.persistInterval(c) // backed off by this probe
	c.persistAt = e.deadlineAfter(next)
	e.schedule(c)
	e.explain(c.id, CodePersistProbe, ActionAccepted, Field{"SEG.SEQ", uint64(seq)}, Field{"RTO.MS", uint64(next / time.Millisecond)})
}

// retransmitTimeout handles the retransmission timer (RFC 6298 §5, RFC 9293
// §3.8.3): give up after too many tries, else back off the RTO, collapse
// the congestion window (RFC 5681 §3.1) and resend from SND.UNA.
func (e *Engine) retransmitTimeout(c *conn) {
	c.retries++
	if !e.synLinearTimeout(c) { // linux_codes.go
		c.rto = min(c.rto*2, e.cfg.MaxRTO)
	}
	c.rttMeasuring = false // Karn's algorithm
	fields := []Field{{"RTO.MS", uint64(c.rto / time.Millisecond)}, {"RETRIES", uint64(c.retries)}}
	switch c.state {
	case SynSent:
		if e.synExpired(c) {
			e.explain(c.id, CodeSynGiveUp, ActionAccepted, Field{"RETRIES", uint64(c.retries - 1)},
				Field{"ELAPSED.MS", uint64((e.now - c.synStart) / time.Millisecond)})
			e.event(c, EventTimedOut)
			e.toClosed(c, CodeSynGiveUp, c.timeoutErr())
			return
		}
		e.explainSynRetransmit(c, CodeSynRetransmit, fields)
		e.sendSyn(c)
		e.armSynRtx(c)
		return
	case SynReceived:
		if c.retries > e.cfg.SynAckRetries {
			if c.passive {
				e.explain(c.id, CodeSynReceivedGiveUp, ActionAccepted, Field{"RETRIES", uint64(c.retries - 1)})
				e.toClosed(c, CodeSynReceivedGiveUp, ErrTimedOut)
			} else {
				e.giveUp(c, CodeGiveUp)
			}
			return
		}
		e.explainSynRetransmit(c, CodeSynAckRetransmit, fields)
		e.sendSynAck(c)
		c.rtxAt = e.deadlineAfter(e.synRTO(c))
		e.schedule(c)
		return
	case Established, CloseWait, FinWait1, Closing, LastAck:
	default:
		return
	}
	if c.sndNxt == c.sndUna {
		return
	}
	if c.retries > c.opts.MaxRetries {
		e.giveUp(c, CodeGiveUp)
		return
	}
	mss := uint32(c.effMSS())
	e.eifelOnTimeout(c)
	e.frtoOnTimeout(c)
	c.ssthresh = e.ccReduce(c, c.flight())
	c.cwnd = mss
	e.sackOnTimeout(c)
	c.inRecovery, c.dupAcks = false, 0
	// RFC 6582 §3.2 step 4: record the highest sequence number sent, so
	// duplicate ACKs caused by this go-back-N resend do not start a fast
	// retransmit (step 2).
	c.recover, c.recoverGuard = c.sndNxt, true
	e.explain(c.id, CodeRetransmitTimeout, ActionAccepted, Field{"SND.UNA", uint64(c.sndUna)}, fields[0], fields[1])
	// Resend the first segment whatever the window says: after a timeout it
	// doubles as a window probe.
	c.rtxNxt = c.sndUna
	e.retransmitOne(c)
	e.armRtx(c)
	e.output(c)
}

// synExpired reports whether R2 for our SYN has passed (synR2), or
// SynRetries, if set, is used up.
func (e *Engine) synExpired(c *conn) bool {
	if n := e.cfg.SynRetries; n > 0 && e.cfg.SynLinearTimeouts > 0 {
		if e.now-c.synStart >= e.synModelTimeout(n) { // linux_codes.go
			return true
		}
	} else if n > 0 && c.retries > n {
		return true
	}
	// A TCP_KEEPINIT is the application's bound on the open instead of
	// R2, shorter or longer: its own timer ends the open (keepalive.go).
	return c.ka.Init == 0 && e.now-c.synStart >= e.cfg.SynTimeout
}

// armSynRtx arms the SYN's retransmission timer, never beyond R2: the open
// is given up when SynTimeout has passed since the first SYN, not at the
// next backed-off retransmission after it. Under a TCP_KEEPINIT the SYN is
// retransmitted until that limit, however long (FreeBSD's rule), and the
// keep-alive timer gives the open up.
func (e *Engine) armSynRtx(c *conn) {
	next := e.deadlineAfter(e.synRTO(c))
	switch {
	case c.ka.Init == 0:
		c.rtxAt = min(next, max(c.synStart+e.cfg.SynTimeout, 1))
	case next < c.openedAt+c.ka.Init:
		c.rtxAt = next
	default:
		c.rtxAt = 0
	}
	e.schedule(c)
}

// synRTO is the wait before the next SYN or SYN,ACK retransmission: the
// backed-off RTO, plus rexmit_slop after the first timeout (profile.go).
func (e *Engine) synRTO(c *conn) time.Duration {
	if c.retries == 0 || e.cfg.SynRexmitSlop == 0 {
		return c.rto
	}
	return min(c.rto+e.cfg.SynRexmitSlop, e.cfg.MaxRTO)
}

// explainSynRetransmit explains a SYN or SYN,ACK retransmission, naming
// rexmit_slop when it pads the next wait.
func (e *Engine) explainSynRetransmit(c *conn, code Code, fields []Field) {
	if e.cfg.SynRexmitSlop == 0 {
		e.explain(c.id, code, ActionAccepted, fields...)
		return
	}
	e.explain(c.id, CodeSynRetransmitSlop, ActionAccepted, fields[0], fields[1],
		Field{"SLOP.MS", uint64(e.cfg.SynRexmitSlop / time.Millisecond)}, Field{"NEXT.MS", uint64(e.synRTO(c) / time.Millisecond)})
}

// retransmitOne resends the segment at rtxNxt (up to one MSS, with the FIN
// if it falls there) and advances rtxNxt past it.
func (e *Engine) retransmitOne(c *conn) {
	next := c.rtxNxt
	off := int(next.Sub(c.sndBufSeq()))
	n := min(max(c.sndBuf.Len()-off, 0), c.segMSS(), int(c.sndNxt.Sub(next)))
	fin := c.finSent && next.Add(Size(n)) == c.finSeq()
	var payload []byte
	if n > 0 {
		if cap(e.scratch) < n {
			e.scratch = make([]byte, max(n, 1<<16))
		}
		payload = e.scratch[:n]
		c.sndBuf.peek(off, payload)
	}
	flags := FlagACK
	if n > 0 && off+n == c.sndBuf.Len() {
		flags |= FlagPSH
	}
	if fin {
		flags |= FlagFIN
	}
	if n == 0 && !fin {
		return
	}
	s := e.segment(c, flags, next, payload)
	e.emit(c.id, c.local, c.remote, &s)
	e.rackSent(c, next, next.Add(s.Len()), true)
	c.rtxNxt = next.Add(s.Len())
	c.noteRetransmit(c.rtxNxt)
}

func (e *Engine) giveUp(c *conn, code Code) {
	e.explain(c.id, code, ActionAccepted, Field{"RETRIES", uint64(c.retries - 1)})
	e.event(c, EventTimedOut)
	e.toClosed(c, code, c.timeoutErr())
}

// maybeWindowUpdate sends a window update after the application read, when
// the window it can now offer is at least double the one the peer knows
// and the SWS threshold is met (RFC 9293 §3.8.6.2.2).
func (e *Engine) maybeWindowUpdate(c *conn) {
	switch c.state {
	case Established, FinWait1, FinWait2:
	default:
		return
	}
	free := Size(max(e.rcvSpace()-c.rcvBuf.Len(), 0))
	cur := c.rcvWnd()
	if free <= cur {
		return
	}
	adv := free - cur
	if e.cfg.WndUpdateBSD {
		buf, mss := Size(e.cfg.RecvBuffer), Size(c.rcvMSS)
		if adv >= 2*mss && (4*adv >= buf || 8*cur <= buf || buf <= 8*mss) || 2*adv >= buf {
			e.explain(c.id, CodeWindowUpdateBSD, ActionInfo, Field{"ADV", uint64(adv)}, Field{"MSS", uint64(mss)})
			e.sendAck(c)
		}
		return
	}
	thresh := Size(min(e.rcvSpace()/2, int(c.rcvMSS)))
	if adv >= thresh && free >= 2*cur {
		e.sendAck(c)
	}
}
