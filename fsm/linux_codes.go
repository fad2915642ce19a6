package fsm

import "time"

// Codes of the linux profile's later switches (issue 12). Their own
// numeric range, like the recovery codes; only the names are API.
const codeLinuxBase Code = 1600

const (
	CodeSimOpenDupAck Code = codeLinuxBase + iota
	CodeSynSentBadAckRexmit
	CodeSynTextDiscarded
	CodeSynFinListenDropped
	CodeSynLinearTimeout
	CodeInvalidRateLimited
	CodeZeroWindowBareAckProbe
	CodeBeyondWindowTaken
	CodeBeyondWindowDropped
	CodeQuickAckSmallWindow
	CodeSynRcvdSynReset
	CodeAcceptQueueFullSynDropped
	CodeSynWindowLinux
	numLinuxCodes
)

var linuxCodeSpecs = [numLinuxCodes - codeLinuxBase]codeSpec{
	CodeSimOpenDupAck - codeLinuxBase:             {"SIMOPEN_DUP_ACK", "RFC 9293 §3.10.7.4", "simopen_dup_ack=1 (as Linux): the SYN,ACK after a simultaneous open repeats the SYN already received (SEG.SEQ {SEG.SEQ} below RCV.NXT {RCV.NXT}); it completes the open and is answered with an ACK, as a duplicate is"},
	CodeSynSentBadAckRexmit - codeLinuxBase:       {"SYNSENT_BADACK_REXMIT", "RFC 9293 §3.10.7.3", "synsent_badack_rexmit (as Linux): the unacceptable ACK {SEG.ACK} in SYN-SENT re-arms the retransmission timer to {RTO.MS} ms, so the SYN not yet retransmitted is sent again soon"},
	CodeSynTextDiscarded - codeLinuxBase:          {"SYN_TEXT_DISCARDED", "RFC 9293 §3.10.7.2", "syn_text_discard=1 (as Linux): the {SEG.LEN} bytes of text (FIN {FIN}) on the SYN are dropped, not acknowledged, since no Fast Open cookie was accepted; the peer sends them again after the handshake"},
	CodeSynFinListenDropped - codeLinuxBase:       {"SYN_FIN_LISTEN_DROPPED", "RFC 9293 §3.10.7.2", "syn_text_discard=1 (as Linux): a SYN with FIN at the listener is dropped without reply"},
	CodeSynLinearTimeout - codeLinuxBase:          {"SYN_LINEAR_TIMEOUT", "RFC 6298 §5.5", "syn_linear_timeouts={LINEAR} (as Linux): the SYN's timeout number {RETRIES} keeps the RTO at {RTO.MS} ms instead of doubling it"},
	CodeInvalidRateLimited - codeLinuxBase:        {"INVALID_RATE_LIMITED", "RFC 5961 §7", "invalid_ratelimit={LIMIT.MS} ms (as Linux): an ACK to a segment not accepted went out {SINCE.MS} ms ago; this one is dropped without reply"},
	CodeZeroWindowBareAckProbe - codeLinuxBase:    {"ZERO_WINDOW_BARE_ACK_PROBE", "RFC 9293 §3.8.6.1", "zwp_bare_ack=1 (as Linux): the peer's window is zero: sent a bare ACK probe at SEG.SEQ {SEG.SEQ} (SND.UNA - 1), no data; next probe in {RTO.MS} ms"},
	CodeBeyondWindowTaken - codeLinuxBase:         {"BEYOND_WINDOW_TAKEN", "RFC 9293 §3.10.7.4", "rcv_beyond_window=1 (as Linux): {SEG.SEQ} {SEG.LEN} ends {BEYOND} bytes past the right edge of the window (RCV.NXT+RCV.WND with {RCV.NXT} {RCV.WND}); nothing waits to be read, so it is taken whole, not trimmed"},
	CodeBeyondWindowDropped - codeLinuxBase:       {"BEYOND_WINDOW_DROPPED", "RFC 9293 §3.10.7.4", "rcv_beyond_window=1 (as Linux): {SEG.SEQ} {SEG.LEN} ends {BEYOND} bytes past the right edge of the window (RCV.NXT+RCV.WND with {RCV.NXT} {RCV.WND}) while {BUFFERED} bytes wait to be read: dropped whole, not trimmed; sent <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>"},
	CodeQuickAckSmallWindow - codeLinuxBase:       {"QUICK_ACK_SMALL_WINDOW", "RFC 9293 §3.8.6.3", "quickack (as Linux): the free receive space, {FREE} bytes, is below half the buffer ({RCV.BUFF}): quick-ack mode ends after {N} quick ACKs, and later data waits for the delayed-ACK timer"},
	CodeSynRcvdSynReset - codeLinuxBase:           {"SYNRCVD_SYN_RESET", "RFC 9293 §3.10.7.4", "synrcvd_syn_reset=1 (as Linux): a new SYN ({SEG.SEQ}, the first was {IRS}) in SYN-RECEIVED of a passive OPEN: sent a reset formed from it (RFC 793's rule) and dropped the half-open connection; RFC 9293 returns it to LISTEN silently"},
	CodeAcceptQueueFullSynDropped - codeLinuxBase: {"ACCEPT_QUEUE_FULL_SYN_DROPPED", "RFC 9293 §3.10.1", "acceptq_linux=1 (as Linux): the accept queue is full ({ACCEPTQ.LEN} of {ACCEPTQ.LIMIT}): the SYN is dropped without reply; the peer sends it again"},
	CodeSynWindowLinux - codeLinuxBase:            {"SYN_WINDOW_LINUX", "RFC 7323 §2.2", "tcp_rmem (as Linux): the receive buffer of {SO_RCVBUF} bytes offers half; the SYN's window is that half rounded down to a multiple of {MSS} (the MSS we offer, less 12 bytes when a SYN,ACK carries timestamps), at most 65535: {WND}; the window scale {WSCALE} covers the largest window the socket may offer: tcp_rmem's maximum {TCP_RMEM.MAX}, or, with {LOCKED} (SO_RCVBUF set), the buffer's own"},
}

// oowRateLimited, under invalid_ratelimit, reports whether the ACK that
// answers an unaccepted segment (or a challenge ACK) is suppressed
// because one went out less than the limit ago; if not, it records this
// one. It keeps the time in the challenge-ACK fields, whose per-second
// count the switch replaces.
func (e *Engine) oowRateLimited(c *conn) bool {
	limit := time.Duration(e.cfg.InvalidRateLimit) * time.Millisecond
	if limit <= 0 {
		return false
	}
	if c.challengeAcks > 0 && e.now-c.challengeStart < limit {
		e.explain(c.id, CodeInvalidRateLimited, ActionDropped, Field{"LIMIT.MS", uint64(e.cfg.InvalidRateLimit)}, Field{"SINCE.MS", uint64((e.now - c.challengeStart) / time.Millisecond)})
		return true
	}
	c.challengeStart, c.challengeAcks = e.now, 1
	return false
}

// synModelTimeout is Linux's tcp_model_timeout for n SYN retries: the
// time n doubling retransmissions after a SYN at 0 would take, (2^(n+1) - 1)
// initial RTOs (each part capped at MaxRTO). Under syn_linear_timeouts
// Linux gives the open up at the first timeout this long after the first
// SYN, so it sends more SYNs than n, sooner.
func (e *Engine) synModelTimeout(n int) time.Duration {
	var t time.Duration
	for i, r := 0, e.cfg.InitialRTO; i <= n; i++ {
		t += r
		r = min(r*2, e.cfg.MaxRTO)
	}
	return t
}

// synLinearTimeout, under syn_linear_timeouts, reports whether this
// timeout of a SYN keeps its RTO (the first syn_linear_timeouts do).
func (e *Engine) synLinearTimeout(c *conn) bool {
	if c.state != SynSent || c.retries > e.cfg.SynLinearTimeouts {
		return false
	}
	e.explain(c.id, CodeSynLinearTimeout, ActionInfo, Field{"LINEAR", uint64(e.cfg.SynLinearTimeouts)}, Field{"RETRIES", uint64(c.retries)}, Field{"RTO.MS", uint64(c.rto / time.Millisecond)})
	return true
}

// synTextDiscarded, under syn_text_discard, drops the text and FIN of a
// SYN (or SYN,ACK) and reports whether it did.
func (e *Engine) synTextDiscarded(c *conn, seg *Segment) bool {
	if !e.cfg.SynTextDiscard {
		return false
	}
	e.explain(c.id, CodeSynTextDiscarded, ActionDropped, Field{"SEG.LEN", uint64(len(seg.Payload))}, Field{"FIN", b2u(seg.Flags&FlagFIN != 0)})
	return true
}

// synSentBadAckRexmit, under synsent_badack_rexmit, re-arms the
// retransmission timer of a SYN not yet retransmitted to the switch's
// short delay (Linux's TCP_TIMEOUT_MIN).
func (e *Engine) synSentBadAckRexmit(c *conn, ack Seq) {
	ms := e.cfg.SynSentBadAckRtx
	if ms <= 0 || c.retries != 0 {
		return
	}
	c.rtxAt = e.deadlineAfter(time.Duration(ms) * time.Millisecond)
	e.schedule(c)
	e.explain(c.id, CodeSynSentBadAckRexmit, ActionInfo, Field{"SEG.ACK", uint64(ack)}, Field{"RTO.MS", uint64(ms)})
}

// simOpenDupAck, under simopen_dup_ack, has segmentArrives answer the
// SYN,ACK that completes a simultaneous open with an ACK once the
// segment is processed (and a queued FIN is sent).
func (e *Engine) simOpenDupAck(c *conn) {
	if !e.cfg.SimOpenDupAck {
		return
	}
	e.simOpenAck = true
	e.explain(c.id, CodeSimOpenDupAck, ActionAnswered, Field{"SEG.SEQ", uint64(c.irs)}, Field{"RCV.NXT", uint64(c.rcvNxt)})
}

// zwpBareAck, under zwp_bare_ack, sends persistTimeout's zero-window
// probe as Linux does (tcp_xmit_probe_skb): an ACK with SEQ = SND.UNA - 1,
// outside the receiver's window, so it is answered with an ACK (RFC 9293
// §3.10.7.4, first check) and takes no sequence space; the queued data or
// FIN stays queued until the window opens. It reports whether it did.
func (e *Engine) zwpBareAck(c *conn) bool {
	if !e.cfg.ZWPBareAck {
		return false
	}
	pending := c.sndBuf.Len() > int(c.sndNxt.Sub(c.sndBufSeq())) || (c.finQueued && !c.finSent)
	if !pending || c.sndNxt != c.sndUna {
		return true // nothing to probe for, or a probe is in flight: no timer
	}
	seq := c.sndUna - 1
	s := e.segment(c, FlagACK, seq, nil)
	e.emit(c.id, c.local, c.remote, &s)
	c.probes++
	next := e.persistInterval(c) // backed off by this probe
	c.persistAt = e.deadlineAfter(next)
	e.schedule(c)
	e.explain(c.id, CodeZeroWindowBareAckProbe, ActionAccepted, Field{"SEG.SEQ", uint64(seq)}, Field{"RTO.MS", uint64(next / time.Millisecond)})
	return true
}

// beyondWindow, under rcv_beyond_window, judges a segment whose text ends
// past the advertised right edge (RCV.NXT+RCV.WND) as Linux's
// tcp_sequence does: with nothing waiting to be read it is kept whole
// (keep), else it is dropped whole and answered with an ACK (dropped;
// Linux's tcp_send_dupack, which tcp_oow_rate_limited never limits for a
// segment with text). A RST or SYN is left to the RFC's checks.
func (e *Engine) beyondWindow(c *conn, seg *Segment) (keep, dropped bool) {
	n := len(seg.Payload)
	end := seg.Seq.Add(Size(n))
	if !e.cfg.RcvBeyondWindow || n == 0 || seg.Flags&(FlagRST|FlagSYN) != 0 || !end.GreaterThan(c.rcvWire) {
		return false, false
	}
	fields := [...]Field{{"SEG.SEQ", uint64(seg.Seq)}, {"SEG.LEN", uint64(n)}, {"BEYOND", uint64(end.Sub(c.rcvWire))},
		{"RCV.NXT", uint64(c.rcvNxt)}, {"RCV.WND", uint64(c.rcvWnd())}, {"BUFFERED", uint64(c.rcvBuf.Len())}}
	if c.rcvBuf.Len() == 0 {
		e.explain(c.id, CodeBeyondWindowTaken, ActionAccepted, fields[:5]...)
		return true, false
	}
	e.explain(c.id, CodeBeyondWindowDropped, ActionAnswered, fields[:]...)
	e.sendBareAck(c)
	return false, true
}

// beyondWindowLimit is the receive buffer bound of processText: limit, or
// under rcv_beyond_window at least what the window check took (the
// buffered text, n bytes more and the reassembly queue), which Linux
// charges to its socket memory, not to the window.
func (e *Engine) beyondWindowLimit(c *conn, limit, n int) int {
	if !e.cfg.RcvBeyondWindow {
		return limit
	}
	return max(limit, c.rcvBuf.Len()+n+c.ooo.bytes)
}

// quickAckSmallWindow, under quickack, ends quick-ack mode when the
// window being offered, free bytes, is below half the receive buffer, as
// Linux's __tcp_select_window clears icsk_ack.quick on every segment it
// sends then (the window is closing: acknowledging each segment at once
// would only announce less room).
func (e *Engine) quickAckSmallWindow(c *conn, free Size) {
	if e.cfg.QuickAck <= 0 || c.quickAcks == 255 || int(free) >= e.rcvSpace()/2 {
		return
	}
	e.explain(c.id, CodeQuickAckSmallWindow, ActionInfo, Field{"FREE", uint64(free)}, Field{"RCV.BUFF", uint64(e.rcvSpace())}, Field{"N", uint64(c.quickAcks)})
	c.quickAcks = 255
}

// synRcvdSynReset, under synrcvd_syn_reset, answers a new SYN in
// SYN-RECEIVED of a passive OPEN with the reset of RFC 9293 §3.5.2 for
// that segment and closes the half-open connection, as Linux's
// tcp_check_req does; it reports whether it did.
func (e *Engine) synRcvdSynReset(c *conn, seg *Segment) bool {
	if !e.cfg.SynRcvdSynReset {
		return false
	}
	e.explain(c.id, CodeSynRcvdSynReset, ActionAnswered, Field{"SEG.SEQ", uint64(seg.Seq)}, Field{"IRS", uint64(c.irs)})
	e.sendRst(c.id, Tuple{c.local, c.remote}, seg)
	e.toClosed(c, CodeSynRcvdSynReset, nil)
	return true
}

// acceptLimit is the accept queue limit of a listener with this backlog:
// the backlog, or under acceptq_linux one more (Linux's
// sk_acceptq_is_full compares with >).
func (e *Engine) acceptLimit(backlog int) int {
	if e.cfg.AcceptQLinux {
		return backlog + 1
	}
	return backlog
}

// acceptQueueFullSynDropped, under acceptq_linux, drops a SYN that finds
// the accept queue full, as Linux's tcp_conn_request does; it reports
// whether it did.
func (e *Engine) acceptQueueFullSynDropped(l *conn) bool {
	q := l.lq
	if !e.cfg.AcceptQLinux || len(q.acceptQueue) < q.acceptLimit {
		return false
	}
	q.stats.AcceptQueueDrops++
	e.explain(l.id, CodeAcceptQueueFullSynDropped, ActionDropped, Field{"ACCEPTQ.LEN", uint64(len(q.acceptQueue))}, Field{"ACCEPTQ.LIMIT", uint64(q.acceptLimit)})
	return true
}

// synLimit is the SYN queue limit of a listener with this backlog:
// Config.SynQueue, or under synq_backlog at most backlog + 1 (Linux's
// inet_csk_reqsk_queue_is_full compares with >).
func (e *Engine) synLimit(backlog int) int {
	if e.cfg.SynQBacklog {
		return min(e.cfg.SynQueue, backlog+1)
	}
	return e.cfg.SynQueue
}
