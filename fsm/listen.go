package fsm

// closedArrives handles a segment for which no endpoint exists
// (RFC 9293 §3.10.7.1, CLOSED state).
func (e *Engine) closedArrives(t Tuple, seg *Segment) {
	if seg.Flags&FlagRST != 0 {
		e.explain(0, CodeClosedRstDropped, ActionDropped)
		return
	}
	r := e.sendRst(0, t, seg)
	e.explain(0, CodeClosedSentRst, ActionAnswered, Field{"RST.SEQ", uint64(r.Seq)}, Field{"RST.ACK", uint64(r.Ack)})
}

// listenArrives handles a segment at a listener (RFC 9293 §3.10.7.2).
func (e *Engine) listenArrives(l *conn, t Tuple, seg *Segment) {
	e.listenArrivesISS(l, t, seg, nil)
}

// listenArrivesISS is listenArrives with an optional forced minimum ISS
// (a SYN that reopens a connection from TIME-WAIT, RFC 9293 §3.6.1).
func (e *Engine) listenArrivesISS(l *conn, t Tuple, seg *Segment, minISS *Seq) {
	f := seg.Flags
	q := l.lq
	if f&FlagRST != 0 {
		e.explain(l.id, CodeListenRstIgnored, ActionDropped)
		return
	}
	if f&FlagACK != 0 {
		if f&FlagSYN != 0 && e.cfg.ListenSynAckDrop {
			e.explain(l.id, CodeListenSynAckDropped, ActionDropped, Field{"SEG.ACK", uint64(seg.Ack)})
			return
		}
		if e.cfg.SynCookies && f&FlagSYN == 0 {
			if mss, ok := e.checkCookie(t, seg); ok {
				e.cookieAccepted(l, t, seg, mss)
				return
			}
			q.stats.SynCookiesRejected++
		}
		e.sendRst(l.id, t, seg)
		e.explain(l.id, CodeListenAckSentRst, ActionAnswered, Field{"SEG.ACK", uint64(seg.Ack)})
		return
	}
	if f&FlagSYN == 0 {
		e.explain(l.id, CodeListenOtherDropped, ActionDropped)
		return
	}
	if f&FlagFIN != 0 && e.cfg.SynTextDiscard {
		e.explain(l.id, CodeSynFinListenDropped, ActionDropped) // linux_codes.go
		return
	}
	if e.acceptQueueFullSynDropped(l) { // linux_codes.go
		return
	}
	if len(q.synQueue) >= q.synLimit || (e.cfg.MaxEndpoints > 0 && e.live >= e.cfg.MaxEndpoints) {
		fields := []Field{{"SYNQ.LEN", uint64(len(q.synQueue))}, {"SYNQ.LIMIT", uint64(q.synLimit)}}
		// A cookie encodes at least 536 bytes of MSS: a peer that announced
		// less gets none, so we never exceed its MSS (RFC 9293 §3.7.1).
		if e.cfg.SynCookies && !(seg.Options.HasMSS && seg.Options.MSS < cookieMSS[0]) {
			e.sendCookie(l, t, seg)
			e.explain(l.id, CodeSynCookieSent, ActionAnswered, fields[0], fields[1], Field{"ISS", uint64(e.cookieFor(t, seg.Seq, e.cookieMSSFor(seg)))})
			return
		}
		q.stats.SynQueueDrops++
		e.explain(l.id, CodeSynQueueFull, ActionDropped, fields[0], fields[1], Field{"DROPS", q.stats.SynQueueDrops})
		return
	}
	c := e.newConn(t.Local, t.Remote)
	c.passive, c.parent = true, l
	c.ka = l.ka // socket options are inherited, as accept(2) does
	c.opts = l.opts
	c.state = Listen // the child starts as the listener's copy (RFC 9293 §3.10.7.2)
	iss := e.isn(t)
	if minISS != nil && iss.LessEq(*minISS) {
		iss = *minISS + 1
	}
	e.initConn(c, iss)
	c.irs, c.rcvNxt = seg.Seq, seg.Seq+1
	e.negotiate(c, seg)
	c.sndWnd = uint32(seg.Window) // never scaled in a SYN (RFC 7323 §2.2)
	c.maxSndWnd = c.sndWnd
	c.sndWl1 = seg.Seq
	e.conns[t] = c
	q.synQueue = append(q.synQueue, c)
	e.setState(c, SynReceived, CodeListenSynAccepted)
	seg = e.fastOpenListen(l, c, seg)
	e.sendSynAck(c)
	e.explain(c.id, CodeListenSynAccepted, ActionAnswered,
		Field{"IRS", uint64(c.irs)}, Field{"RCV.NXT", uint64(c.rcvNxt)}, Field{"ISS", uint64(c.iss)},
		Field{"SYNQ.LEN", uint64(len(q.synQueue))}, Field{"SYNQ.LIMIT", uint64(q.synLimit)})
	e.queueSynText(c, seg)
}

// negotiate applies the options of the peer's SYN (RFC 9293 §3.7.1 MSS,
// RFC 7323 window scale and timestamps, RFC 2018 SACK-permitted). We offer
// every option not disabled, so each is on when the peer's SYN has it.
func (e *Engine) negotiate(c *conn, seg *Segment) {
	o := &seg.Options
	c.peerOptions = *o
	if o.HasMSS && o.MSS > 0 {
		c.sndMSS = o.MSS
	}
	c.sndMSS = min(c.sndMSS, e.cfg.MSS)
	if e.cfg.RcvBufMSSRound && e.cfg.RecvBuffer < 1<<30 {
		mss := int(c.sndMSS)
		c.rcvRounded = int32((e.cfg.RecvBuffer + mss - 1) / mss * mss)
		e.explain(c.id, CodeRcvBufRounded, ActionInfo, Field{"RCVBUF", uint64(c.rcvRounded)}, Field{"MSS", uint64(mss)})
	}
	if !e.cfg.NoWindowScale && o.HasWScale {
		c.wsOK = true
		c.sndScale = min(o.WScale, 14) // RFC 7323 §2.3: treat larger shifts as 14
		c.rcvScale = uint8(e.cfg.WindowScale)
	}
	if !e.cfg.NoSACK && o.SACKPermitted {
		c.sackOK = true
	}
	if !e.cfg.NoTimestamps && o.HasTimestamp {
		c.tsOK = true
		c.tsRecent = o.TSVal
	}
	e.ecnNegotiate(c, seg) // RFC 3168 §6.1.1 (ecn.go)
}

func (e *Engine) cookieMSSFor(seg *Segment) uint16 {
	if seg.Options.HasMSS {
		return min(seg.Options.MSS, e.cfg.MSS)
	}
	return 536
}

// sendCookie answers a SYN with a SYN,ACK whose ISS is a SYN cookie and
// keeps no state (RFC 4987 §3.6).
func (e *Engine) sendCookie(l *conn, t Tuple, seg *Segment) {
	l.lq.stats.SynCookiesSent++
	mss := e.cookieMSSFor(seg)
	s := Segment{
		Flags: FlagSYN | FlagACK, Seq: e.cookieFor(t, seg.Seq, mss), Ack: seg.Seq + 1,
		Window: uint16(e.synWindow(e.cfg.MSS, false)),
	}
	s.Options.MSS, s.Options.HasMSS = e.cfg.MSS, true
	e.emit(l.id, t.Local, t.Remote, &s)
}

// cookieAccepted rebuilds a connection from a valid SYN cookie and carries
// on processing the ACK (which may carry data) in ESTABLISHED.
func (e *Engine) cookieAccepted(l *conn, t Tuple, seg *Segment, mss uint16) {
	q := l.lq
	if e.cfg.MaxEndpoints > 0 && e.live >= e.cfg.MaxEndpoints {
		// Cookies answered SYNs without counting them; the limit still holds.
		q.stats.SynCookiesRejected++
		e.explain(l.id, CodeSynQueueFull, ActionDropped, Field{"SYNQ.LEN", uint64(len(q.synQueue))},
			Field{"SYNQ.LIMIT", uint64(q.synLimit)}, Field{"DROPS", q.stats.SynQueueDrops})
		return
	}
	if len(q.acceptQueue) >= q.acceptLimit {
		q.stats.AcceptQueueDrops++
		e.explain(l.id, CodeAcceptQueueFull, ActionDropped, Field{"ACCEPTQ.LEN", uint64(len(q.acceptQueue))},
			Field{"ACCEPTQ.LIMIT", uint64(q.acceptLimit)}, Field{"DROPS", q.stats.AcceptQueueDrops})
		return
	}
	q.stats.SynCookiesAccepted++
	c := e.newConn(t.Local, t.Remote)
	c.passive, c.parent = true, l
	c.ka, c.opts = l.ka, l.opts
	c.state = Listen
	e.initConn(c, seg.Ack-1)
	c.sndUna, c.sndNxt, c.rtxNxt = seg.Ack, seg.Ack, seg.Ack
	c.irs, c.rcvNxt = seg.Seq-1, seg.Seq
	c.setRcvEdge(c.rcvNxt.Add(Size(e.synWindow(e.cfg.MSS, false))))
	c.sndMSS = min(mss, e.cfg.MSS)
	c.sndWnd, c.maxSndWnd = uint32(seg.Window), uint32(seg.Window)
	c.sndWl1, c.sndWl2 = seg.Seq, seg.Ack
	c.cwnd = e.initialCwnd(c)
	e.conns[t] = c
	e.setState(c, SynReceived, CodeSynCookieAccepted)
	e.setState(c, Established, CodeSynCookieAccepted)
	e.explain(c.id, CodeSynCookieAccepted, ActionAccepted, Field{"SEG.ACK", uint64(seg.Ack)})
	q.acceptQueue = append(q.acceptQueue, c)
	c.inAcceptQueue = true
	e.event(c, EventEstablished)
	e.event(l, EventAcceptReady)
	if len(seg.Payload) > 0 || seg.Flags&FlagFIN != 0 {
		e.segmentArrives(c, seg)
	}
}

// initialCwnd is the initial congestion window (RFC 5681 §3.1 with
// RFC 6928's larger initial window: min(IW·MSS, max(2·MSS, IW·1460))).
func (e *Engine) initialCwnd(c *conn) uint32 {
	mss := uint32(c.effMSS())
	iw := uint32(e.cfg.InitialWindow)
	return min(iw*mss, max(2*mss, iw*1460))
}

func (q *listenQueues) remove(c *conn) {
	del := func(s []*conn) []*conn {
		for i, x := range s {
			if x == c {
				copy(s[i:], s[i+1:])
				s[len(s)-1] = nil
				return s[:len(s)-1]
			}
		}
		return s
	}
	q.synQueue = del(q.synQueue)
	q.acceptQueue = del(q.acceptQueue)
	c.inAcceptQueue = false
}

// closeListener stops listening. Connections not yet accepted are reset,
// as Linux does; half-open ones are dropped.
func (e *Engine) closeListener(l *conn) {
	e.explain(l.id, CodeListenerClosed, ActionAccepted)
	for len(l.lq.acceptQueue) > 0 {
		c := l.lq.acceptQueue[0]
		e.sendRstFor(c)
		e.toClosed(c, CodeListenerClosed, ErrConnectionReset)
	}
	for len(l.lq.synQueue) > 0 {
		e.toClosed(l.lq.synQueue[0], CodeListenerClosed, nil)
	}
	e.toClosed(l, CodeListenerClosed, nil)
}
