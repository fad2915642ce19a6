package fsm

import (
	"net/netip"
	"time"
)

// conn is one endpoint: a connection's TCB (RFC 9293 §3.3.1) or, when lq is
// set, a listener. Field names follow the RFC's variables.
//
// Size matters: with the 8-byte header Go puts on a large object with
// pointers, a conn of at most 760 bytes takes the 768-byte size class and
// one of 769 the 896-byte one (TestIdleConnectionMemory holds an idle
// connection under 1 KiB). Put small fields into the padding beside other
// small ones; state that only some connections need goes behind a pointer.
type conn struct {
	id            EndpointID
	state         State
	local, remote netip.AddrPort
	lq            *listenQueues // non-nil for a listener
	parent        *conn         // the listener of a passive connection until accepted
	inAcceptQueue bool
	passive       bool         // created from a listener (passive OPEN)
	tfo           fastOpenConn // TCP Fast Open flags (fastopen.go)

	// Send sequence space (RFC 9293 §3.3.1).
	iss       Seq
	sndUna    Seq
	sndNxt    Seq
	sndWnd    uint32 // scaled, in bytes
	sndWl1    Seq
	sndWl2    Seq
	maxSndWnd uint32
	// rtxNxt is where go-back-N retransmission resumes after a timeout;
	// it is never beyond sndNxt, and equals it when not retransmitting.
	rtxNxt Seq

	// Receive sequence space.
	irs    Seq
	rcvNxt Seq
	// rcvAdv is the right edge we promised, RCV.NXT+RCV.WND before window
	// scaling rounds it; receiver SWS avoidance works on it. rcvWire is the
	// edge the peer was told after rounding up to the scale unit (RFC 7323
	// §2.3), never left of rcvAdv: acceptance uses it. Keeping both stops the
	// rounding from creeping the window past the buffer.
	rcvAdv  Seq
	rcvWire Seq

	// Negotiated options.
	sndMSS      uint16 // largest payload we send (peer's MSS option, RFC 9293 §3.7.1)
	rcvMSS      uint16 // the MSS we announced
	sndScale    uint8  // shift applied to the peer's window (RFC 7323 §2.3)
	rcvScale    uint8  // shift applied to ours
	wsOK        bool
	md5         bool      // segments carry a TCP-MD5 signature (md5.go)
	softErr     softError // the last ICMP soft error (icmp.go)
	pmtuMSS     uint16    // the MSS the path MTU allows, 0 unknown (icmp.go)
	tsOK        bool
	sackOK      bool
	tsRecent    uint32
	lastAckSent Seq
	tsOffset    uint32
	peerOptions Options // options of the peer's SYN, for inspection

	// Data.
	sndBuf     ring // from the first unacknowledged data byte (sndBufSeq)
	rcvBuf     ring // in order, not yet read
	ooo        reassembly
	synData    []byte // text that came on a SYN, held until ESTABLISHED
	synFin     bool   // the SYN also carried a FIN, held likewise
	finQueued  bool   // CLOSE was called: a FIN follows the data
	finSent    bool
	rcvFin     bool // the peer's FIN has been processed
	userClosed bool // the application will not read again (close, not shutdown)
	err        error

	// Congestion control (RFC 5681, NewReno RFC 6582).
	cwnd       uint32
	ssthresh   uint32
	dupAcks    int
	inRecovery bool
	// recoverGuard: recover was set by a fast retransmit or a timeout and
	// no ACK has gone beyond it yet, so RFC 6582 §3.2 step 2 applies.
	// Cleared once passed, so the comparison never meets a wrapped recover.
	// (Beside inRecovery: an idle connection must stay small.)
	recoverGuard bool
	recover      Seq
	// sack is the SACK scoreboard and RFC 6675 / RFC 6937 state (recovery.go).
	sack *sackState
	// rack is the RACK-TLP state (rack.go), allocated at the first data
	// sent; lossAt is its timer (the reordering timer or the PTO).
	rack   *rackState
	lossAt time.Duration
	// cc is CUBIC and HyStart++ state (cubic.go), allocated when needed.
	cc *ccState

	// RTT estimation (RFC 6298).
	srtt, rttvar, rto time.Duration
	rttMeasuring      bool
	rttSeq            Seq
	rttStart          time.Duration
	retries           int // consecutive retransmissions of the same data
	retransmitted     bool
	rtxHigh           Seq // end of the highest retransmitted range while retransmitted
	probes            int
	probing           bool // SND.NXT includes a zero-window probe beyond the window
	ackPending        bool // an ACK is owed (delayed ACK, RFC 9293 §3.8.6.3)
	sndSmall          Seq  // end of the last sub-MSS segment sent (nagle_minshall)

	// Challenge ACK throttling (RFC 5961 §7): sent in the second from
	// challengeStart on the engine clock.
	challengeStart time.Duration
	challengeAcks  int

	// Delayed ACK (RFC 9293 §3.8.6.3); ackPending is above, with the
	// other flags.
	segsUnacked int

	// Issue 10 (conformance), packed: R2 for the SYN, keep-alive
	// (keepalive.go), D-SACK (dsack.go), urgent pointers (urgent.go),
	// switches (profile.go).
	synStart   time.Duration // when the first SYN went out (RFC 9293 §3.8.3)
	openedAt   time.Duration // when the endpoint was created (TCP_KEEPINIT)
	lastRecv   time.Duration // when the last segment for it arrived
	keepAt     time.Duration // keep-alive (or establishment limit) deadline
	ka         KeepAlive     // keep-alive settings
	opts       SockOpts      // per-connection options (sockopt.go)
	kaProbes   int32         // keep-alive probes sent since lastRecv
	rcvRounded int32         // receive buffer rounded to the MSS (rcvbuf_mss_round); 0 off
	dsack      SACKBlock     // duplicate range the next ACK reports first
	rcvUp      Seq           // RCV.UP, valid when rcvUpSet
	sndUp      Seq           // SND.UP, valid when sndUpSet
	// dataSegsUnacked counts data segments since our last ACK (ack_every_2nd).
	dataSegsUnacked              uint8
	quickAcks                    uint8 // quick ACKs sent so far (quickack)
	rstReply                     bool  // the RST answers a segment: no ACK under rst_ack
	dsackSet, rcvUpSet, sndUpSet bool
	oobRead                      bool // the urgent octet at RCV.UP-1 was read by ReceiveUrgent (oob.go)

	// Timers: deadlines on the engine clock; zero means not armed.
	rtxAt, persistAt, delackAt, timeWaitAt time.Duration
	deadline                               time.Duration
	heapIdx                                int
}

// noteRetransmit records that sequence numbers up to end were sent again,
// so ACKs covering them give no RTT sample (Karn's rule, RFC 6298 §3).
func (c *conn) noteRetransmit(end Seq) {
	if !c.retransmitted || end.GreaterThan(c.rtxHigh) {
		c.rtxHigh = end
	}
	c.retransmitted = true
}

// limitedTransmit is the extra room RFC 3042 §2 gives on the first two
// duplicate ACKs outside recovery: one new segment each, beyond cwnd
// (which does not change), so a small window can still collect the three
// duplicate ACKs fast retransmit needs instead of waiting for the RTO.
func (c *conn) limitedTransmit() uint32 {
	if c.inRecovery || c.dupAcks < 1 || c.dupAcks > 2 {
		return 0
	}
	return uint32(c.dupAcks * c.effMSS())
}

// sndBufSeq is the sequence number of the first byte in sndBuf: the SYN
// occupies ISS, so data starts at ISS+1 until the SYN is acknowledged.
func (c *conn) sndBufSeq() Seq {
	if c.sndUna == c.iss {
		return c.iss + 1
	}
	return c.sndUna
}

// finSeq is the sequence number our FIN takes (valid once finQueued).
func (c *conn) finSeq() Seq { return c.sndBufSeq().Add(Size(c.sndBuf.Len())) }

// rcvWnd is RCV.WND as last advertised.
func (c *conn) rcvWnd() Size {
	if c.rcvWire.LessThan(c.rcvNxt) {
		return 0
	}
	return c.rcvWire.Sub(c.rcvNxt)
}

// setRcvEdge sets both right edges at once (SYN and SYN cookie paths, where
// the window is not scaled).
func (c *conn) setRcvEdge(e Seq) { c.rcvAdv, c.rcvWire = e, e }

// effMSS is the payload per segment after the option space that every
// segment carries (timestamps: 12 bytes, RFC 7323 §3.2).
func (c *conn) effMSS() int {
	m := int(c.sndMSS)
	if c.pmtuMSS != 0 {
		m = min(m, int(c.pmtuMSS)) // icmp.go: RFC 1191, RFC 8201
	}
	if c.tsOK {
		m -= 12
	}
	if c.md5 {
		m -= md5Space // RFC 2385 §4.0: the MSS counts the option
	}
	return max(m, 1)
}

// segMSS is the data a segment may carry now: effMSS less the SACK option
// the segment will carry while out-of-order data is held (RFC 9293 §3.7.1:
// the send MSS counts options and data together; RFC 6691 §2).
func (c *conn) segMSS() int {
	m := c.effMSS()
	if c.sackOK && (len(c.ooo.segs) > 0 || c.dsackSet) {
		k := c.ooo.numBlocks()
		if c.dsackSet {
			k++ // the D-SACK block comes first (dsack.go)
		}
		if c.tsOK {
			k = min(k, 3)
		}
		m -= 4 + optLenSACKBlock*min(k, MaxSACKBlocks)
	}
	return max(m, 1)
}

// flight is the number of sequence numbers sent and not yet acknowledged.
func (c *conn) flight() uint32 { return uint32(c.sndNxt.Sub(c.sndUna)) }

// listenQueues are a listener's two queues (the seed article's "half-open"
// and "full" queues).
type listenQueues struct {
	synQueue    []*conn // SYN-RECEIVED children, oldest first
	acceptQueue []*conn // ESTABLISHED (or later) children not yet accepted
	synLimit    int
	acceptLimit int
	stats       ListenerStats
}

// ListenerStats count what happened to a listener's SYNs.
type ListenerStats struct {
	SynQueueDrops      uint64 // SYNs dropped because the SYN queue was full
	AcceptQueueDrops   uint64 // handshake ACKs dropped because the accept queue was full
	SynCookiesSent     uint64
	SynCookiesAccepted uint64
	SynCookiesRejected uint64
	Accepted           uint64 // connections handed to the application
}
