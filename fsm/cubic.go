package fsm

import "time"

// Congestion control: RFC 5681's slow start and Reno congestion avoidance,
// or CUBIC (RFC 9438), with HyStart++ (RFC 9406) as an option for the
// initial slow start. All arithmetic is in integers (bytes, milliseconds)
// so that every platform replays a session bit for bit.

// Congestion control names (Config.Recovery.CongestionControl).
const (
	CCReno  = "reno"
	CCCubic = "cubic"
)

// CUBIC constants (RFC 9438 §5): C = 0.4, β_cubic = 0.7, and α_cubic =
// 3(1-β)/(1+β) = 9/17 for the Reno-friendly estimate.
const (
	cubicBetaNum, cubicBetaDen   = 7, 10
	cubicAlphaNum, cubicAlphaDen = 9, 17
	// cubicMaxT bounds t-K so (t-K)^3·4·SMSS stays in an int64.
	cubicMaxT = 100_000 // ms
)

// HyStart++ constants (RFC 9406 §4.3), L for a sender that does not pace.
const (
	hsMinRTTThresh  = 4 * time.Millisecond
	hsMaxRTTThresh  = 16 * time.Millisecond
	hsMinRTTDivisor = 8
	hsNRTTSample    = 8
	hsCSSGrowthDiv  = 4
	hsCSSRounds     = 5
	hsL             = 8
	hsInf           = time.Duration(1<<63 - 1)
)

// ccState is the congestion controller's state beyond cwnd and ssthresh,
// allocated on a connection's first ACK of data.
type ccState struct {
	cubicCurve

	// Eifel (RFC 3522, RFC 4015): armed by the first timeout of a flight.
	eifelArmed   bool
	retransmitTS uint32 // RetransmitTS: the TSval of the retransmission
	pipePrev     uint32 // FlightSize (or ssthresh, if larger) before the timeout
	eifelFast    bool   // armed by a fast retransmit (SACK recovery), not a timeout
	// undo is what a fast retransmit's reduction changed, for the Eifel
	// response to give back if it was spurious (RFC 4015 §2, RFC 9438 §4.9).
	undo ccUndo

	frto frtoState // F-RTO (RFC 5682), frto.go
	ecn  ecnState  // ECN (RFC 3168), ecn.go

	// HyStart++ (RFC 9406 §4.2).
	hsDone          bool // a congestion event ended the initial slow start
	windowEnd       Seq
	roundSet        bool
	lastRoundMinRTT time.Duration
	curRoundMinRTT  time.Duration
	rttSamples      int
	inCSS           bool
	cssBaseline     time.Duration
	cssRounds       int

	// Reno congestion avoidance (reno.go): bytes acknowledged since cwnd
	// last grew.
	renoAcked uint32
}

// cubicCurve is CUBIC's state (RFC 9438 §4).
type cubicCurve struct {
	wMax      int64         // W_max, bytes
	cwndPrior int64         // cwnd before the last reduction
	k         int64         // K, ms
	epoch     time.Duration // t_epoch; valid while epochSet
	epochSet  bool
	wEstQ     int64 // W_est, bytes·1024
	cntQ      int64 // growth carried between ACKs, bytes·cwnd
}

// ccUndo is cwnd, ssthresh and CUBIC's curve before a reduction.
type ccUndo struct {
	cwnd, ssthresh uint32
	curve          cubicCurve
}

func (e *Engine) cubic() bool { return e.cfg.Recovery.CongestionControl == CCCubic }

func (c *conn) ccs() *ccState {
	if c.cc == nil {
		c.cc = &ccState{lastRoundMinRTT: hsInf, curRoundMinRTT: hsInf}
	}
	return c.cc
}

// ccReduce is the congestion response shared by fast retransmit, SACK
// recovery, a repaired tail loss and the RTO: it returns the new ssthresh,
// FlightSize/2 for Reno (RFC 5681 (4)) or FlightSize·β_cubic for CUBIC
// (RFC 9438 §4.6), at least 2·SMSS, and records W_max with fast
// convergence (§4.7).
func (e *Engine) ccReduce(c *conn, flight uint32) uint32 {
	mss := uint32(c.effMSS())
	if !e.cubic() {
		if c.cc != nil {
			c.cc.hsDone, c.cc.inCSS, c.cc.renoAcked = true, false, 0
		}
		return max(flight/2, 2*mss)
	}
	s := c.ccs()
	s.hsDone, s.inCSS = true, false
	cwnd := int64(c.cwnd)
	if cwnd < s.wMax {
		s.wMax = cwnd * (cubicBetaDen + cubicBetaNum) / (2 * cubicBetaDen) // fast convergence: W_max·(1+β)/2
	} else {
		s.wMax = cwnd
	}
	s.cwndPrior = cwnd
	s.epochSet = false
	ssthresh := max(uint32(int64(flight)*cubicBetaNum/cubicBetaDen), 2*mss)
	e.explain(c.id, CodeCubicReduce, ActionInfo, Field{"FLIGHT", uint64(flight)}, Field{"SSTHRESH", uint64(ssthresh)},
		Field{"W_MAX", uint64(s.wMax)}, Field{"CWND", uint64(cwnd)})
	return ssthresh
}

// ccGrow opens cwnd on an ACK of acked new bytes outside recovery: slow
// start below ssthresh (with HyStart++ if enabled), then Reno or CUBIC
// congestion avoidance.
func (e *Engine) ccGrow(c *conn, acked uint32) {
	mss := uint32(c.effMSS())
	if c.cwnd < c.ssthresh {
		if e.cfg.Recovery.HyStart && (c.cc == nil || !c.cc.hsDone) {
			e.hystartGrow(c, acked)
			return
		}
		if e.cfg.Recovery.SlowStartAllBytes && acked > mss {
			// RFC 3465 §2.2 with L unbounded (ss_all_bytes): a stretch
			// ACK counts whole, up to ssthresh.
			was := c.cwnd
			c.cwnd = min(c.cwnd+acked, max(c.ssthresh, was+mss))
			e.explain(c.id, CodeSlowStartAllBytes, ActionInfo, Field{"ACKED", uint64(acked)}, Field{"CWND", uint64(c.cwnd)},
				Field{"OLD.CWND", uint64(was)}, Field{"SSTHRESH", uint64(c.ssthresh)})
			return
		}
		c.cwnd += min(acked, mss) // RFC 5681 (2)
		return
	}
	if !e.cubic() {
		e.renoGrow(c, acked) // RFC 5681 §3.1, byte counting
		return
	}
	e.cubicGrow(c, acked)
}

// cubicGrow is RFC 9438 §4.2-§4.5 for one ACK in congestion avoidance.
func (e *Engine) cubicGrow(c *conn, acked uint32) {
	s := c.ccs()
	smss := int64(c.effMSS())
	cwnd := int64(c.cwnd)
	if !s.epochSet {
		// The first ACK of a congestion avoidance stage starts the epoch.
		s.epoch, s.epochSet = e.now, true
		if s.wMax <= cwnd {
			s.wMax, s.k = cwnd, 0
		} else {
			s.k = icbrt((s.wMax - cwnd) * 10_000_000_000 / (4 * smss)) // K³ = (W_max - cwnd_epoch)/C, in ms³
		}
		s.wEstQ, s.cntQ = cwnd*1024, 0
		if s.cwndPrior == 0 {
			s.cwndPrior = cwnd
		}
		e.explain(c.id, CodeCubicEpoch, ActionInfo, Field{"W_MAX", uint64(s.wMax)}, Field{"K.MS", uint64(s.k)},
			Field{"CWND", uint64(cwnd)}, Field{"SSTHRESH", uint64(c.ssthresh)})
	}
	t := int64((e.now - s.epoch) / time.Millisecond)
	rtt := int64(c.srtt / time.Millisecond)
	// §4.3 Reno-friendly region: W_est grows like Reno with α_cubic (1
	// once it passes cwnd_prior).
	if s.wEstQ >= s.cwndPrior*1024 {
		s.wEstQ += int64(acked) * smss * 1024 / cwnd
	} else {
		s.wEstQ += int64(acked) * smss * 1024 * cubicAlphaNum / (cubicAlphaDen * cwnd)
	}
	wEst := s.wEstQ / 1024
	if cubicW(s, t, smss) < wEst {
		c.cwnd = uint32(max(wEst, cwnd))
		return
	}
	// §4.4, §4.5: target = W_cubic(t+RTT), within [cwnd, 1.5·cwnd];
	// cwnd += (target - cwnd)/cwnd per SMSS acknowledged.
	target := min(max(cubicW(s, t+rtt, smss), cwnd), cwnd+cwnd/2)
	s.cntQ += (target - cwnd) * int64(acked)
	if inc := s.cntQ / cwnd; inc > 0 {
		c.cwnd += uint32(inc)
		s.cntQ -= inc * cwnd
	}
}

// cubicW is W_cubic(t) = C·(t-K)³ + W_max in bytes, t in ms (RFC 9438 §4.2).
func cubicW(s *ccState, t, smss int64) int64 {
	d := min(max(t-s.k, -cubicMaxT), cubicMaxT)
	return s.wMax + 4*smss*d*d*d/10_000_000_000
}

// icbrt is the integer cube root (floor) of v >= 0.
func icbrt(v int64) int64 {
	if v <= 0 {
		return 0
	}
	lo, hi := int64(0), int64(2_097_152) // 2^21: (2^21)^3 = 2^63
	for lo < hi {
		m := (lo + hi + 1) / 2
		if m*m*m <= v {
			lo = m
		} else {
			hi = m - 1
		}
	}
	return lo
}

// hystartRTT feeds an RTT sample to HyStart++ (RFC 9406 §4.2).
func (e *Engine) hystartRTT(c *conn, r time.Duration) {
	if !e.cfg.Recovery.HyStart || c.cc == nil || c.cc.hsDone || c.cwnd >= c.ssthresh {
		return
	}
	s := c.cc
	s.curRoundMinRTT = min(s.curRoundMinRTT, r)
	s.rttSamples++
}

// hystartGrow is slow start under HyStart++ (RFC 9406 §4.2): rounds end
// when SND.UNA passes windowEnd; a round whose minimum RTT rose by
// RttThresh over the last one's moves to Conservative Slow Start (a
// quarter of the growth); CSS_ROUNDS rounds of it end slow start.
func (e *Engine) hystartGrow(c *conn, acked uint32) {
	s := c.ccs()
	mss := uint32(c.effMSS())
	if !s.roundSet || c.sndUna.GreaterEq(s.windowEnd) {
		if s.roundSet && s.inCSS {
			if s.cssRounds++; s.cssRounds >= hsCSSRounds {
				c.ssthresh = c.cwnd
				s.hsDone, s.inCSS = true, false
				e.explain(c.id, CodeHyStartExit, ActionInfo, Field{"CWND", uint64(c.cwnd)}, Field{"CSS.ROUNDS", uint64(s.cssRounds)})
				return
			}
		}
		s.lastRoundMinRTT, s.curRoundMinRTT, s.rttSamples = s.curRoundMinRTT, hsInf, 0
		s.windowEnd, s.roundSet = c.sndNxt, true
	}
	if s.inCSS {
		c.cwnd += max(min(acked, hsL*mss)/hsCSSGrowthDiv, 1)
		if s.rttSamples >= hsNRTTSample && s.curRoundMinRTT < s.cssBaseline {
			s.inCSS, s.cssBaseline = false, hsInf // the RTT rise was spurious: back to slow start
		}
		return
	}
	c.cwnd += min(acked, hsL*mss)
	if s.rttSamples >= hsNRTTSample && s.curRoundMinRTT != hsInf && s.lastRoundMinRTT != hsInf {
		thresh := min(max(s.lastRoundMinRTT/hsMinRTTDivisor, hsMinRTTThresh), hsMaxRTTThresh)
		if s.curRoundMinRTT >= s.lastRoundMinRTT+thresh {
			s.inCSS, s.cssBaseline, s.cssRounds = true, s.curRoundMinRTT, 0
			e.explain(c.id, CodeHyStartCSS, ActionInfo, Field{"RTT.MS", uint64(s.curRoundMinRTT / time.Millisecond)},
				Field{"LAST.RTT.MS", uint64(s.lastRoundMinRTT / time.Millisecond)}, Field{"RTT.THRESH.MS", uint64(thresh / time.Millisecond)},
				Field{"CWND", uint64(c.cwnd)})
		}
	}
}
