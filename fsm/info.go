package fsm

import (
	"net/netip"
	"time"
)

// TimerKind names a connection timer.
type TimerKind uint8

const (
	TimerRetransmission TimerKind = iota + 1
	TimerPersist
	TimerDelayedAck
	TimerTimeWait
	TimerKeepAlive // keep-alive, or the TCP_KEEPINIT establishment limit
	// TimerLossDetection is RACK's reordering timer or the tail loss
	// probe timeout (RFC 8985 §6.3, §7.2).
	TimerLossDetection
)

var timerNames = [...]string{"", "RETRANSMISSION", "PERSIST", "DELAYED_ACK", "TIME_WAIT", "KEEPALIVE", "LOSS_DETECTION"}

func (k TimerKind) String() string {
	if int(k) < len(timerNames) {
		return timerNames[k]
	}
	return "UNKNOWN"
}

// Timer is an armed timer and its deadline on the engine clock.
type Timer struct {
	Kind     TimerKind
	Deadline time.Duration
}

// EndpointInfo is a snapshot of an endpoint: its state, the TCB variables
// of RFC 9293 §3.3.1 and, for a listener, its queues.
type EndpointInfo struct {
	ID            EndpointID
	Listener      bool
	State         State
	Local, Remote netip.AddrPort
	Parent        EndpointID // the listener of a connection not yet accepted
	Err           error      // why the connection closed, if it did abnormally

	ISS, SndUna, SndNxt Seq
	SndWnd              uint32
	SndWl1, SndWl2      Seq
	IRS, RcvNxt         Seq
	RcvWnd              uint32

	SndMSS, RcvMSS       uint16
	SndScale, RcvScale   uint8
	WindowScale          bool
	Timestamps           bool
	SACKPermitted        bool
	Cwnd, Ssthresh       uint32
	SRTT, RTTVar, RTO    time.Duration
	Readable             int  // bytes the application can Receive
	Unsent, Unacked      int  // bytes in the send buffer not yet sent / sent but unacknowledged
	FinReceived, FinSent bool // end of the peer's stream seen / our FIN sent
	Timers               []Timer
	// RecvBuffer is the receive buffer in effect (SO_RCVBUF): RecvBuffer
	// of the Config, rounded up to the MSS under rcvbuf_mss_round.
	RecvBuffer int

	SynQueue, SynQueueLimit       int
	AcceptQueue, AcceptQueueLimit int
	Stats                         ListenerStats
}

func (e *Engine) info(c *conn) EndpointInfo {
	in := EndpointInfo{
		ID: c.id, Listener: c.lq != nil, State: c.state, Local: c.local, Remote: c.remote, Err: c.err,
		ISS: c.iss, SndUna: c.sndUna, SndNxt: c.sndNxt, SndWnd: c.sndWnd, SndWl1: c.sndWl1, SndWl2: c.sndWl2,
		IRS: c.irs, RcvNxt: c.rcvNxt, RcvWnd: uint32(c.rcvWnd()),
		SndMSS: c.sndMSS, RcvMSS: c.rcvMSS, SndScale: c.sndScale, RcvScale: c.rcvScale,
		WindowScale: c.wsOK, Timestamps: c.tsOK, SACKPermitted: c.sackOK,
		Cwnd: c.cwnd, Ssthresh: c.ssthresh, SRTT: c.srtt, RTTVar: c.rttvar, RTO: c.rto,
		Readable: c.readable(), FinReceived: c.rcvFin, FinSent: c.finSent,
		RecvBuffer: e.rcvLimit(c),
	}
	if c.parent != nil {
		in.Parent = c.parent.id
	}
	if c.lq == nil && c.state != Closed && c.state != Listen {
		sent := int(c.sndNxt.Sub(c.sndBufSeq()))
		if c.finSent {
			sent--
		}
		sent = min(max(sent, 0), c.sndBuf.Len())
		in.Unacked, in.Unsent = sent, c.sndBuf.Len()-sent
	}
	for _, t := range []Timer{{TimerRetransmission, c.rtxAt}, {TimerPersist, c.persistAt}, {TimerDelayedAck, c.delackAt}, {TimerTimeWait, c.timeWaitAt}, {TimerKeepAlive, c.keepAt}, {TimerLossDetection, c.lossAt}} {
		if t.Deadline != 0 {
			in.Timers = append(in.Timers, t)
		}
	}
	if q := c.lq; q != nil {
		in.SynQueue, in.SynQueueLimit = len(q.synQueue), q.synLimit
		in.AcceptQueue, in.AcceptQueueLimit = len(q.acceptQueue), q.acceptLimit
		in.Stats = q.stats
	}
	return in
}
