package fsm

import "time"

// Keep-alive (RFC 9293 §3.8.4, RFC 1122 §4.2.3.6). A connection with
// keep-alive on that has received nothing for KeepAlive.Idle sends a probe
// <SEQ=SND.NXT-1><ACK=RCV.NXT><CTL=ACK>: the byte before SND.NXT was
// acknowledged long ago, so the peer finds the segment outside its window
// and answers with an ACK (§3.10.7.4 first check). Anything received
// counts as the answer. When Count probes, Interval apart, go unanswered
// the connection is aborted with "timed out" and a RST, as Linux and
// FreeBSD do (the RFCs prescribe neither). RFC 1122: keep-alive MUST
// default to off, its interval MUST be configurable and MUST default to
// no less than two hours, and a probe without data MUST be accepted.
//
// KeepAlive.Init is FreeBSD's TCP_KEEPINIT: a bound on connection
// establishment that runs on the same timer, whether keep-alive is on or
// not. Zero (the rfc default) leaves the open to the SYN and SYN,ACK
// retransmission limits.

// KeepAlive holds one endpoint's keep-alive settings, the socket options
// SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT and TCP_KEEPINIT.
// A connection accepted from a listener starts with the listener's.
type KeepAlive struct {
	Enabled  bool          // SO_KEEPALIVE
	Idle     time.Duration // TCP_KEEPIDLE: silence before the first probe
	Interval time.Duration // TCP_KEEPINTVL: between unanswered probes
	Count    int           // TCP_KEEPCNT: unanswered probes before the abort
	Init     time.Duration // TCP_KEEPINIT: limit on SYN-SENT and SYN-RECEIVED; 0 none
}

// keepAliveDefaults is what a new endpoint starts with.
func (c *Config) keepAliveDefaults() KeepAlive {
	return KeepAlive{Enabled: c.KeepAlive, Idle: c.KeepIdle, Interval: c.KeepInterval, Count: c.KeepCount, Init: c.KeepInit}
}

// KeepAlive returns an endpoint's keep-alive settings.
func (e *Engine) KeepAlive(id EndpointID) (KeepAlive, error) {
	c, err := e.lookup(id)
	if err != nil {
		return KeepAlive{}, err
	}
	return c.ka, nil
}

// SetKeepAlive changes an endpoint's keep-alive settings (setsockopt). Zero
// durations and counts take the engine's defaults (Config.KeepIdle, ...).
// A connection re-arms its timer from the last segment it received.
func (e *Engine) SetKeepAlive(id EndpointID, ka KeepAlive) error {
	c, err := e.lookup(id)
	if err != nil {
		return err
	}
	if c.state == Closed {
		return e.closedErr(c)
	}
	if ka.Idle <= 0 {
		ka.Idle = e.cfg.KeepIdle
	}
	if ka.Interval <= 0 {
		ka.Interval = e.cfg.KeepInterval
	}
	if ka.Count <= 0 {
		ka.Count = e.cfg.KeepCount
	}
	ka.Init = max(ka.Init, 0)
	e.begin()
	c.ka = ka
	c.kaProbes = 0
	e.armKeep(c)
	return nil
}

// keepState reports whether keep-alive probes run in c's state: the
// synchronized states in which the connection can sit idle waiting for
// the peer. In FIN-WAIT-1, CLOSING and LAST-ACK our FIN is outstanding, so
// the retransmission timer already finds out whether the peer is there.
func keepState(s State) bool {
	return s == Established || s == CloseWait || s == FinWait2
}

// armKeep sets the keep-alive timer for c's state: the establishment limit
// in SYN-SENT and SYN-RECEIVED, the idle deadline when probes may run.
func (e *Engine) armKeep(c *conn) {
	at := time.Duration(0)
	switch {
	case c.lq != nil:
	case c.state == SynSent || c.state == SynReceived:
		if c.ka.Init > 0 {
			at = max(c.openedAt+c.ka.Init, 1)
		}
	case c.ka.Enabled && keepState(c.state):
		at = max(c.lastRecv+c.ka.Idle, 1)
		if c.kaProbes > 0 {
			at = e.deadlineAfter(c.ka.Interval)
		}
	}
	if at != c.keepAt {
		c.keepAt = at
		e.schedule(c)
	}
}

// keepTimeout runs when the keep-alive timer falls due.
func (e *Engine) keepTimeout(c *conn) {
	c.keepAt = 0
	e.schedule(c)
	switch {
	case c.state == SynSent || c.state == SynReceived:
		e.explain(c.id, CodeKeepInitTimeout, ActionAccepted, Field{"TIMEOUT.MS", uint64(c.ka.Init / time.Millisecond)})
		if c.passive && c.state == SynReceived {
			e.toClosed(c, CodeKeepInitTimeout, ErrTimedOut)
			return
		}
		e.event(c, EventTimedOut)
		e.toClosed(c, CodeKeepInitTimeout, ErrTimedOut)
		return
	case !c.ka.Enabled || !keepState(c.state):
		return
	}
	if c.kaProbes == 0 && e.now-c.lastRecv < c.ka.Idle {
		e.armKeep(c) // something arrived since the timer was set
		return
	}
	if int(c.kaProbes) >= c.ka.Count {
		e.explain(c.id, CodeKeepAliveGiveUp, ActionAccepted, Field{"PROBES", uint64(c.kaProbes)},
			Field{"IDLE.MS", uint64((e.now - c.lastRecv) / time.Millisecond)})
		e.sendRstFor(c)
		e.event(c, EventTimedOut)
		e.toClosed(c, CodeKeepAliveGiveUp, ErrTimedOut)
		return
	}
	if c.sndNxt != c.sndUna || c.rtxAt != 0 {
		// Data or a FIN is outstanding: the retransmission timer is on it.
		c.keepAt = e.deadlineAfter(c.ka.Idle)
		e.schedule(c)
		return
	}
	c.kaProbes++
	s := e.segment(c, FlagACK, c.sndNxt-1, nil)
	e.emit(c.id, c.local, c.remote, &s)
	code := CodeKeepAliveProbe
	if e.cfg.KeepAlive {
		code = CodeKeepAliveProbeAlways // on because of always_keepalive
	}
	e.explain(c.id, code, ActionAccepted, Field{"SEG.SEQ", uint64(c.sndNxt - 1)},
		Field{"PROBE", uint64(c.kaProbes)}, Field{"COUNT", uint64(c.ka.Count)},
		Field{"IDLE.MS", uint64((e.now - c.lastRecv) / time.Millisecond)})
	e.armKeep(c)
}
