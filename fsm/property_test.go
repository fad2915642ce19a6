package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Property tests: a client engine and a server engine joined by a seeded
// simulated link that loses, duplicates, reorders and delays packets. Both
// sides write random streams, read everything and close; whatever the link
// does, each side must receive exactly what the other wrote and both
// connections must end in CLOSED without an error. The randomness lives
// here, never in the engine: a seed fixes the configuration, the link and
// the application, so a failing seed replays exactly.
//
// Modes (subtests): the client closes first, the server closes first, both
// close at once, one side aborts, and a simultaneous open. A seed varies
// both configurations (delayed ACKs, Nagle, buffer sizes down to zero
// windows, MSS down to a few bytes, window scale, timestamps, SACK, SYN
// cookies, initial window and RTO, ISNs just below 2^32), IPv4 or IPv6, the
// link (loss 0-20%, duplication, reordering, delay and jitter) and the
// applications (write sizes, slow readers, Close or Shutdown).
//
// After every step: checkEngineInvariants on both engines (SND.UNA <=
// SND.NXT, buffers within bounds, timers after now and NextDeadline their
// minimum, listener queues within limits), every emitted packet well formed,
// the receive window's right edge never moving left, and the byte
// accounting tying each TCB to its application: SND.UNA-ISS-1 bytes
// acknowledged = written - unsent - unacked, and RCV.NXT-IRS-1 bytes
// received = read + readable; every byte read is checked against what the
// peer wrote at that offset.
//
// TCPSTATED_PROPERTY_SEEDS sets how many seeds each mode runs (default
// propDefaultSeeds; `make property-long` runs 20000 of each), and
// TCPSTATED_PROPERTY_SEED runs one seed alone (with a longer trace), e.g.
//
//	TCPSTATED_PROPERTY_SEED=7 go test -run 'TestPropertyLossyLink/abort$' ./fsm/

const (
	propDefaultSeeds = 1229
	// propTimeLimit is the virtual time after which a run counts as stuck.
	// Virtual time costs nothing; only steps do. A run of many small writes
	// over a 20% lossy link can legitimately need over an hour: lost ACKs
	// make retransmitted duplicates draw ACKs that echo the original TSval
	// (RFC 7323 §4.3: an unacceptable segment does not update TS.Recent),
	// the RTT samples include the timeouts, and the RTO sits near its 60 s
	// maximum, so each loss costs a minute.
	propTimeLimit   = 24 * time.Hour
	propStepLimit   = 5_000_000
	propMaxFailures = 5
)

// propMode is how the two applications end the connection.
type propMode uint8

const (
	propClientFirst      propMode = iota // the client closes first: it goes through TIME-WAIT
	propServerFirst                      // the server closes first
	propSimultaneous                     // both close in the same instant: FINs may cross (CLOSING)
	propAbort                            // one side aborts mid-transfer; the other must still reach CLOSED
	propSimultaneousOpen                 // no listener: both connect at once, the SYNs cross; the client closes first
)

var propModeNames = [...]string{"client-closes-first", "server-closes-first", "simultaneous-close", "abort", "simultaneous-open"}

func (m propMode) String() string { return propModeNames[m] }

var (
	propCliV4 = netip.MustParseAddrPort("10.0.0.2:40000")
	propSrvV4 = netip.MustParseAddrPort("10.0.0.1:80")
	propCliV6 = netip.MustParseAddrPort("[fd00::2]:40000")
	propSrvV6 = netip.MustParseAddrPort("[fd00::1]:80")
)

// propParams is everything a seed decides before the run starts.
type propParams struct {
	seed     uint64
	mode     propMode
	cli, srv Config
	cliAddr  netip.AddrPort
	srvAddr  netip.AddrPort
	listen   netip.AddrPort // the listener's address: srvAddr or its wildcard

	loss, dup, reorder float64       // per-packet probabilities
	ce                 float64       // chance an ECT(0) packet arrives marked CE (RFC 3168 §5)
	delay, jitter      time.Duration // one-way delay: delay + [0, jitter)

	size     [2]int        // bytes each side writes: client, server
	maxChunk int           // largest single Send
	pAct     float64       // chance an application acts on an event rather than on its next tick
	appTick  time.Duration // the application's polling interval
	// slowReader: the receiving application reads only on its ticks, so a
	// small receive buffer fills: zero windows, probes, window updates.
	slowReader bool
	// firstClose: the first closer calls Close once it has read all the
	// peer's data instead of Shutdown (half-close) as soon as it has written.
	firstClose bool
	// cookies: a half-open ghost connection fills a one-entry SYN queue, so
	// the client's SYN is answered with a SYN cookie (RFC 4987).
	cookies   bool
	abortSide int           // propAbort: 0 the client aborts, 1 the server
	abortAt   time.Duration // propAbort: when, once established
}

func (p *propParams) String() string {
	cfg := func(c Config) string {
		var b strings.Builder
		fmt.Fprintf(&b, "rbuf=%d sbuf=%d mss=%d", c.RecvBuffer, c.SendBuffer, c.MSS)
		if c.ISNMode == ISNFixed {
			fmt.Fprintf(&b, " isn=%#x", c.FixedISN)
		}
		for _, f := range []struct {
			on   bool
			name string
		}{{c.NoDelayedAck, "nodelack"}, {c.NoNagle, "nonagle"}, {c.NoTimestamps, "nots"}, {c.NoSACK, "nosack"},
			{c.NoWindowScale, "nows"}, {c.SynCookies, "cookies"}} {
			if f.on {
				b.WriteString(" " + f.name)
			}
		}
		if c.InitialWindow != 0 {
			fmt.Fprintf(&b, " iw=%d", c.InitialWindow)
		}
		if c.MinRTO != 0 {
			fmt.Fprintf(&b, " minrto=%v rto0=%v", c.MinRTO, c.InitialRTO)
		}
		if c.WindowScale != 0 {
			fmt.Fprintf(&b, " wscale=%d", c.WindowScale)
		}
		if c.DelayedAckTimeout != 0 {
			fmt.Fprintf(&b, " delack=%v", c.DelayedAckTimeout)
		}
		fmt.Fprintf(&b, " recovery=%+v", c.Recovery)
		return b.String()
	}
	return fmt.Sprintf("mode=%s client{%s} server{%s} %v->%v (listen %v) loss=%.3f dup=%.3f reorder=%.3f ce=%.2f delay=%v+%v size=%v chunk=%d pAct=%.2f tick=%v slowReader=%v firstClose=%v cookies=%v",
		p.mode, cfg(p.cli), cfg(p.srv), p.cliAddr, p.srvAddr, p.listen, p.loss, p.dup, p.reorder, p.ce, p.delay, p.jitter,
		p.size, p.maxChunk, p.pAct, p.appTick, p.slowReader, p.firstClose, p.cookies)
}

// propGenerate derives a run's parameters from its seed.
func propGenerate(seed uint64, mode propMode) propParams {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15^uint64(mode)))
	p := propParams{seed: seed, mode: mode}
	// Every combination of the loss-recovery options, in turn by seed
	// and mode (propRecoveryCombo), the same on both sides.
	propRecoveryCombo(seed, mode, &p.cli.Recovery)
	p.srv.Recovery = p.cli.Recovery
	if p.cli.Recovery.ECNNoRequest {
		p.cli.Recovery.ECNNoRequest = false // the client asks, the server grants only
	}
	if p.cli.Recovery.ECN && seed%2 == 0 {
		p.ce = 0.05 // the link marks congestion instead of only dropping
	}
	for _, c := range []*Config{&p.cli, &p.srv} {
		for i := range c.Secret {
			c.Secret[i] = byte(r.Uint32())
		}
		c.MSL = time.Second // TIME-WAIT lasts 2 s of virtual time
		// A held FIN inside the SACK blocks (sack_fin=1) or not (0, as
		// FreeBSD), by seed: either way the sender must deliver every byte.
		c.SACKDataOnly = seed/3%2 == 1
		// A duplicate's newer TSval taken into TS.Recent (ts_recent_dup=1,
		// as Linux) or not: with 1, a reordered original can fail PAWS and
		// must be resent.
		c.TSRecentDup = seed/5%2 == 1
		// A loss rate of 20% would give up on a SYN now and then with the
		// default retry counts; the property is about delivery, so retry longer.
		c.SynRetries, c.SynAckRetries, c.MaxRetries = 12, 12, 25
		if r.IntN(3) == 0 {
			c.NoDelayedAck = true
		}
		if r.IntN(3) == 0 {
			c.NoNagle = true
		}
		switch r.IntN(8) {
		case 0, 1:
			c.RecvBuffer = 4096 // zero windows and window updates
		case 2:
			c.RecvBuffer = 1024 + r.IntN(16<<10)
		case 3:
			c.RecvBuffer = 256 << 10 // window scaling
		}
		switch r.IntN(12) {
		case 0, 1:
			c.MSS = uint16(64 + r.IntN(500))
		case 2:
			c.MSS = uint16(16 + r.IntN(48)) // a few bytes per segment
		}
		if r.IntN(8) == 0 {
			// Spurious retransmissions: an RTO below the path's RTT.
			c.MinRTO = time.Duration(10+r.IntN(200)) * time.Millisecond
			c.InitialRTO = c.MinRTO + time.Duration(r.IntN(1000))*time.Millisecond
		}
		if r.IntN(8) == 0 {
			c.WindowScale = 1 + r.IntN(14) // coarser than the buffer needs
		}
		if r.IntN(5) == 0 {
			c.SendBuffer = 2048 + r.IntN(16<<10)
		}
		if r.IntN(8) == 0 {
			c.NoTimestamps = true
		}
		if r.IntN(8) == 0 {
			c.NoSACK = true
		}
		if r.IntN(8) == 0 {
			c.NoWindowScale = true
		}
		if r.IntN(6) == 0 {
			c.InitialWindow = 1 + r.IntN(4)
		}
		if r.IntN(10) == 0 {
			c.DelayedAckTimeout = time.Duration(10+r.IntN(480)) * time.Millisecond
		}
		if r.IntN(6) == 0 {
			// Sequence numbers wrap past 2^32 early in the transfer.
			c.ISNMode, c.FixedISN = ISNFixed, 0xffffffff-uint32(r.IntN(1<<12))
		}
	}
	p.cliAddr, p.srvAddr = propCliV4, propSrvV4
	if r.IntN(4) == 0 {
		p.cliAddr, p.srvAddr = propCliV6, propSrvV6
	}
	p.listen = p.srvAddr
	if r.IntN(4) == 0 {
		any := netip.IPv4Unspecified()
		if p.srvAddr.Addr().Is6() {
			any = netip.IPv6Unspecified()
		}
		p.listen = netip.AddrPortFrom(any, p.srvAddr.Port())
	}
	// No cookies after an abort: a retransmission of the survivor's first
	// segment (SEG.SEQ-1 = its ISN) still validates as a cookie and rebuilds
	// a connection nobody accepts, whose closed window the survivor may
	// probe for ever (RFC 9293 §3.8.6.1). Stateless cookies cannot tell
	// (RFC 4987 §3.6); it is not an engine bug.
	if r.IntN(8) == 0 && mode != propSimultaneousOpen && mode != propAbort {
		p.cookies = true
		p.srv.SynCookies, p.srv.SynQueue = true, 1
		if p.cli.MSS != 0 && p.cli.MSS < cookieMSS[0] {
			// No cookie encodes so small an MSS (TestSynCookieNeverExceedsPeerMSS):
			// the SYN would wait for the ghost to leave the SYN queue.
			p.cli.MSS = cookieMSS[0]
		}
	}

	if r.IntN(5) != 0 {
		p.loss = 0.2 * r.Float64()
	}
	if r.IntN(3) == 0 {
		p.dup = 0.05 * r.Float64()
	}
	if r.IntN(3) == 0 {
		p.reorder = 0.1 * r.Float64()
	}
	p.delay = time.Duration(1+r.IntN(50)) * time.Millisecond
	p.jitter = time.Duration(r.Int64N(int64(p.delay) + 1))

	limit := 300 << 10
	for _, c := range []Config{p.cli, p.srv} {
		if c.MSS != 0 && c.MSS < 64 {
			limit = min(limit, 2<<10)
		}
		if (c.MSS != 0 && c.MSS < 300) || (c.RecvBuffer != 0 && c.RecvBuffer < 8192) || (c.SendBuffer != 0 && c.SendBuffer < 8192) {
			limit = min(limit, 64<<10) // many small segments: keep the run short
		}
	}
	for i := range p.size {
		switch r.IntN(8) {
		case 0:
			p.size[i] = 0
		case 1:
			p.size[i] = 1 + r.IntN(100)
		case 2, 3:
			p.size[i] = r.IntN(8 << 10)
		case 4, 5:
			p.size[i] = r.IntN(64 << 10)
		default:
			p.size[i] = r.IntN(limit)
		}
		p.size[i] = min(p.size[i], limit)
	}
	if mode == propSimultaneous && r.IntN(2) == 0 {
		// Small streams, so both FINs leave before either arrives.
		p.size = [2]int{r.IntN(2000), r.IntN(2000)}
	}
	p.maxChunk = 1 + r.IntN(64<<10)
	if r.IntN(3) == 0 {
		p.maxChunk = 1 + r.IntN(200) // small writes: Nagle's case
		lim := min(32<<10, 256*p.maxChunk)
		p.size[0], p.size[1] = min(p.size[0], lim), min(p.size[1], lim)
	}
	p.pAct = 1
	if r.IntN(2) == 0 {
		p.pAct = 0.1 + 0.9*r.Float64()
	}
	p.appTick = time.Duration(1+r.IntN(200)) * time.Millisecond
	if r.IntN(4) == 0 {
		p.slowReader = true
		p.appTick = time.Duration(200+r.IntN(3000)) * time.Millisecond
	}
	p.firstClose = r.IntN(2) == 0
	p.abortSide = r.IntN(2)
	p.abortAt = time.Duration(r.Int64N(int64(2 * time.Second)))
	return p
}

// propRecoverySwitches are the boolean switches of Config.Recovery the
// property runs in every combination.
var propRecoverySwitches = []func(*Recovery){
	func(r *Recovery) { r.NoSACKRecovery = true },
	func(r *Recovery) { r.NoPRR = true },
	func(r *Recovery) { r.PRRConservative = true },
	func(r *Recovery) { r.NoRACK = true },
	func(r *Recovery) { r.NoTLP = true },
	func(r *Recovery) { r.CongestionControl = CCCubic },
	func(r *Recovery) { r.HyStart = true },
	func(r *Recovery) { r.NoEifel = true },
	func(r *Recovery) { r.SlowStartAllBytes = true },
	func(r *Recovery) { r.RTOKeepSACK = true },
}

// propRecoveryCombos is how many combinations of the loss-recovery
// options there are: every subset of propRecoverySwitches, F-RTO on or
// off, and ECN off, on (ecn=1) or granted only (ecn=2).
var propRecoveryCombos = uint64(1<<len(propRecoverySwitches)) * 2 * 3

// propRecoveryCombo sets the combination of the loss-recovery options a
// seed of a mode runs. The runs are numbered mode·propDefaultSeeds + seed,
// so the default seeds of the five modes (5·1229 = 6145) take 6144
// consecutive numbers at least; multiplying by 997 (invertible modulo
// 6144 = 2^11·3) maps those onto every combination once while each mode
// still gets a spread of them (ECN on and off, F-RTO on and off, many
// subsets of the switches). The combination is read as mixed-radix
// digits. TCPSTATED_PROPERTY_SEEDS=6144 (or make property-long) runs all
// of them in every mode.
func propRecoveryCombo(seed uint64, mode propMode, r *Recovery) {
	combo := (uint64(mode)*propDefaultSeeds + seed) % propRecoveryCombos * 997 % propRecoveryCombos
	for i, set := range propRecoverySwitches {
		if combo&(1<<i) != 0 {
			set(r)
		}
	}
	combo >>= len(propRecoverySwitches)
	r.FRTO = combo%2 == 1
	// ECN (RFC 3168): negotiated when both sides ask (1) or one asks and
	// the other grants (2: the server only grants); the link marks CE on
	// some ECT packets (propSim.send). ecn_maxretries varies with the
	// seed: SYNs lost on the link test the fallback (RFC 3168 §6.1.1.1).
	switch combo / 2 {
	case 1:
		r.ECN = true
	case 2:
		r.ECN, r.ECNNoRequest = true, true
	}
	r.ECNMaxRetries = int(seed / 7 % 2)
}

// propFailure is a failed run: panicked through propSim.fail.
type propFailure struct{ msg string }

// propPeer is one application and its engine.
type propPeer struct {
	name    string
	e       *Engine
	addr    netip.AddrPort
	id      EndpointID // the connection (0 until the server accepts)
	out     []byte     // the whole stream this side writes
	written int
	read    int // bytes of the peer's stream received so far
	eof     bool
	shut    bool // Shutdown or Close called
	closed  bool // Close called
	aborted bool
	est     bool          // the connection has been seen ESTABLISHED (or later)
	estAt   time.Duration // when
	rcvAdv  Seq           // RCV.NXT+RCV.WND last seen: the right edge never moves left
	states  [TimeWait + 1]bool
}

// propPacket is a packet on the simulated link.
type propPacket struct {
	at   time.Duration
	n    uint64 // send order: ties deliver first-sent first
	to   int    // 0 client, 1 server
	data []byte
}

type propSim struct {
	p        propParams
	link     *rand.Rand // loss, duplication, delay
	app      *rand.Rand // application choices
	now      time.Duration
	peers    [2]*propPeer
	lid      EndpointID // the server's listener
	ghost    netip.AddrPort
	inf      []propPacket // in flight, a min-heap on (at, n)
	sent     uint64
	wake     time.Duration // next application tick; 0: none wanted
	steps    int
	trace    []string      // the last events, for a failure report
	traceLen int           // how many: 80, or 5000 when one seed runs alone
	rec      *bytes.Buffer // the transcript, when recording
	tracePos int
	buf      []byte
	counts   propCounts
}

// propCounts is what a run exercised; the test checks that the seeds as a
// whole reach every state and the interesting paths.
type propCounts struct {
	states      [TimeWait + 1]int
	lost, duped int
	zeroWindow  int // window-zero advertisements seen
	cookies     int
	orphans     int          // abort runs that left the survivor in FIN-WAIT-2
	twReset     int          // TIME-WAIT ended by an RST before the application read end of file
	ceMarked    int          // packets the link marked CE
	recovery    map[Code]int // loss-recovery and ECN explanations, by code
	maxTime     time.Duration
	maxSeed     uint64 // the seed of the longest run
}

func (c *propCounts) add(o propCounts) {
	for i := range c.states {
		c.states[i] += o.states[i]
	}
	c.lost += o.lost
	c.duped += o.duped
	c.zeroWindow += o.zeroWindow
	c.cookies += o.cookies
	c.orphans += o.orphans
	c.twReset += o.twReset
	c.ceMarked += o.ceMarked
	for code, n := range o.recovery {
		if c.recovery == nil {
			c.recovery = map[Code]int{}
		}
		c.recovery[code] += n
	}
	if o.maxTime > c.maxTime {
		c.maxTime, c.maxSeed = o.maxTime, o.maxSeed
	}
}

func (s *propSim) fail(format string, args ...any) {
	panic(propFailure{fmt.Sprintf("t=%v step %d: ", s.now, s.steps) + fmt.Sprintf(format, args...)})
}

func (s *propSim) note(format string, args ...any) {
	line := fmt.Sprintf("%10v ", s.now) + fmt.Sprintf(format, args...)
	if len(s.trace) < s.traceLen {
		s.trace = append(s.trace, line)
		return
	}
	s.trace[s.tracePos] = line
	s.tracePos = (s.tracePos + 1) % len(s.trace)
}

func (s *propSim) traceLines() []string {
	return append(slices.Clone(s.trace[s.tracePos:]), s.trace[:s.tracePos]...)
}

// heap on (at, n)
func (s *propSim) less(i, j int) bool {
	a, b := &s.inf[i], &s.inf[j]
	if a.at != b.at {
		return a.at < b.at
	}
	return a.n < b.n
}

func (s *propSim) push(p propPacket) {
	s.inf = append(s.inf, p)
	for i := len(s.inf) - 1; i > 0; {
		up := (i - 1) / 2
		if !s.less(i, up) {
			break
		}
		s.inf[i], s.inf[up] = s.inf[up], s.inf[i]
		i = up
	}
}

func (s *propSim) pop() propPacket {
	top := s.inf[0]
	last := len(s.inf) - 1
	s.inf[0] = s.inf[last]
	s.inf[last] = propPacket{}
	s.inf = s.inf[:last]
	for i := 0; ; {
		l := 2*i + 1
		if l >= len(s.inf) {
			break
		}
		m := l
		if l+1 < len(s.inf) && s.less(l+1, l) {
			m = l + 1
		}
		if !s.less(m, i) {
			break
		}
		s.inf[i], s.inf[m] = s.inf[m], s.inf[i]
		i = m
	}
	return top
}

// propCheckPacket checks that an emitted packet is well formed: it parses,
// its TCP checksum verifies and its decoded view matches its bytes.
func propCheckPacket(p *Packet) error {
	src, dst, tcp, err := ParsePacket(p.Data)
	if err != nil {
		return fmt.Errorf("emitted packet does not parse: %v", err)
	}
	if src != p.Src || dst != p.Dst {
		return fmt.Errorf("packet addresses %v > %v, Packet says %v > %v", src, dst, p.Src, p.Dst)
	}
	if !TCPChecksumValid(src, dst, tcp) {
		return fmt.Errorf("emitted packet %s has a bad TCP checksum", p.Segment.String())
	}
	seg, err := ParseSegment(tcp)
	if err != nil {
		return fmt.Errorf("emitted segment does not parse: %v", err)
	}
	if seg.Seq != p.Segment.Seq || seg.Flags != p.Segment.Flags || seg.Window != p.Segment.Window ||
		(seg.Flags&FlagACK != 0 && seg.Ack != p.Segment.Ack) || !bytes.Equal(seg.Payload, p.Segment.Payload) {
		return fmt.Errorf("decoded view %s differs from the bytes %s", p.Segment.String(), seg.String())
	}
	if seg.Flags&(FlagSYN|FlagRST) == FlagSYN|FlagRST || seg.Flags&(FlagSYN|FlagFIN) == FlagSYN|FlagFIN {
		return fmt.Errorf("emitted an impossible flag combination: %s", seg.String())
	}
	return nil
}

// checkEngineInvariants checks what must hold of an engine whatever its
// inputs were.
func checkEngineInvariants(e *Engine) error {
	cfg := e.Config()
	eps := e.Endpoints()
	var next time.Duration
	for i := range eps {
		in := &eps[i]
		if in.State > TimeWait {
			return fmt.Errorf("endpoint %d: state %d out of range", in.ID, in.State)
		}
		for _, tm := range in.Timers {
			if in.State == Closed {
				return fmt.Errorf("endpoint %d: CLOSED with timer %s armed", in.ID, tm.Kind)
			}
			if tm.Deadline <= e.Now() {
				return fmt.Errorf("endpoint %d: timer %s at %v is not after now %v", in.ID, tm.Kind, tm.Deadline, e.Now())
			}
			if next == 0 || tm.Deadline < next {
				next = tm.Deadline
			}
		}
		if in.Listener {
			if in.State != Listen && in.State != Closed {
				return fmt.Errorf("listener %d in %s", in.ID, in.State)
			}
			if in.SynQueue > in.SynQueueLimit || in.AcceptQueue > in.AcceptQueueLimit {
				return fmt.Errorf("listener %d: SYN queue %d/%d, accept queue %d/%d", in.ID,
					in.SynQueue, in.SynQueueLimit, in.AcceptQueue, in.AcceptQueueLimit)
			}
			continue
		}
		if in.State == Listen {
			return fmt.Errorf("connection %d in LISTEN", in.ID)
		}
		if !in.SndUna.LessEq(in.SndNxt) {
			return fmt.Errorf("connection %d (%s): SND.UNA %d > SND.NXT %d", in.ID, in.State, in.SndUna, in.SndNxt)
		}
		if in.State == Closed {
			continue
		}
		if !in.ISS.LessEq(in.SndUna) {
			return fmt.Errorf("connection %d (%s): SND.UNA %d before ISS %d", in.ID, in.State, in.SndUna, in.ISS)
		}
		if lim := in.RecvBuffer + 1<<in.RcvScale; in.Readable > lim {
			return fmt.Errorf("connection %d (%s): %d bytes readable, buffer %d", in.ID, in.State, in.Readable, in.RecvBuffer)
		}
		if in.Unsent < 0 || in.Unacked < 0 || in.Unsent+in.Unacked > cfg.SendBuffer {
			return fmt.Errorf("connection %d (%s): unsent %d unacked %d, send buffer %d", in.ID, in.State, in.Unsent, in.Unacked, cfg.SendBuffer)
		}
		if f := int64(in.SndNxt.Sub(in.SndUna)); f > int64(cfg.SendBuffer)+2 {
			return fmt.Errorf("connection %d (%s): %d in flight, send buffer %d", in.ID, in.State, f, cfg.SendBuffer)
		}
		if in.State >= Established && in.State != TimeWait && in.RcvScale == 0 {
			// What was advertised fits what the buffer can hold. With window
			// scaling the right edge may creep past it by up to 2^S-1 per
			// advertisement rather than move left (RFC 7323 §2.4 allows
			// either), so this holds only unscaled.
			if lim := int64(in.RecvBuffer); int64(in.Readable)+int64(in.RcvWnd) > lim && int32(in.RcvWnd) >= 0 {
				return fmt.Errorf("connection %d (%s): %d readable + RCV.WND %d exceeds buffer %d (scale %d)", in.ID, in.State,
					in.Readable, in.RcvWnd, cfg.RecvBuffer, in.RcvScale)
			}
		}
	}
	if d, ok := e.NextDeadline(); ok != (next != 0) || (ok && d != next) {
		return fmt.Errorf("NextDeadline is %v, %v; the earliest endpoint timer is %v", d, ok, next)
	}
	return nil
}

// drain takes a peer's outputs: packets go on the link (or are lost).
func (s *propSim) drain(i int) {
	pe := s.peers[i]
	r := pe.e.Ready()
	if s.rec != nil {
		recordReady(s.rec, pe.name, &r)
	}
	for _, tr := range r.Transitions {
		s.note("%s ep%d %s -> %s (%s)", pe.name, tr.Endpoint, tr.From, tr.To, tr.Cause)
		if tr.Endpoint == pe.id {
			pe.states[tr.To] = true
		} else if in, _ := pe.e.Endpoint(tr.Endpoint); pe.id == 0 && !in.Listener && in.Remote == s.peers[1-i].addr {
			pe.states[tr.To] = true // the server's connection before it is accepted
		}
		if tr.Time != s.now {
			s.fail("%s transition at %v, clock is %v", pe.name, tr.Time, s.now)
		}
	}
	for k := range r.Packets {
		p := &r.Packets[k]
		if err := propCheckPacket(p); err != nil {
			s.fail("%s: %v", pe.name, err)
		}
		if p.Segment.Window == 0 && p.Segment.Flags&FlagRST == 0 {
			s.counts.zeroWindow++
		}
		// No segment is larger than the smaller of the two MSS values
		// (RFC 9293 §3.7.1: the sender's own limit and the peer's option).
		if n, mss := len(p.Segment.Payload), min(s.peers[0].e.Config().MSS, s.peers[1].e.Config().MSS); n > int(mss) {
			s.fail("%s sent %d bytes in one segment, MSS %d", pe.name, n, mss)
		}
		to := -1
		dst := netip.AddrPortFrom(p.Dst, p.Segment.DstPort)
		switch dst {
		case s.peers[0].addr:
			to = 0
		case s.peers[1].addr:
			to = 1
		}
		if to < 0 || to == i {
			s.note("%s > nowhere %s", pe.name, p.Segment.String())
			continue
		}
		// In cookie mode the handshake runs on a clean link: a SYN cookie
		// cannot survive losing the handshake ACK when later data arrives
		// first (RFC 4987 §3.6: the cookie is checked against SEG.SEQ-1).
		clean := s.p.cookies && s.peers[1].id == 0
		if !clean && s.link.Float64() < s.p.loss {
			s.counts.lost++
			s.note("%s > lost %s", pe.name, p.Segment.String())
			continue
		}
		copies := 1
		if !clean && s.link.Float64() < s.p.dup {
			copies = 2
			s.counts.duped++
		}
		for range copies {
			d := s.p.delay
			if !clean {
				if s.p.jitter > 0 {
					d += time.Duration(s.link.Int64N(int64(s.p.jitter)))
				}
				if s.link.Float64() < s.p.reorder {
					d += time.Duration(s.link.Int64N(int64(3*s.p.delay) + 1))
				}
			}
			s.sent++
			data := bytes.Clone(p.Data)
			if s.p.ce > 0 && !clean && ipECN(data) == ecnECT0 && s.link.Float64() < s.p.ce {
				propMarkCE(data)
				s.counts.ceMarked++
			}
			s.push(propPacket{at: s.now + d, n: s.sent, to: to, data: data})
		}
		s.note("%s > %s (x%d)", pe.name, p.Segment.String(), copies)
	}
	for _, x := range r.Explanations {
		switch x.Code {
		case CodeSACKRecovery, CodeTLPProbe, CodeRACKLost, CodeSpuriousRTO, CodeSpuriousFastRetransmit, CodeFRTOSpurious,
			CodeECNNegotiated, CodeECNReduce, CodeECNSetupFallback, CodeCubicEpoch, CodeFinOutOfOrder, CodeFinNotSACKed, CodeTSRecentFromDuplicate:
			if s.counts.recovery == nil {
				s.counts.recovery = map[Code]int{}
			}
			s.counts.recovery[x.Code]++
		}
	}
	for _, ev := range r.Events {
		if ev.Kind == EventClosed && ev.Endpoint == pe.id {
			if in, ok := pe.e.Endpoint(pe.id); ok && in.Err != nil && s.p.mode != propAbort && !s.resetAfterTimeWait(pe, in.Err) {
				s.fail("%s connection closed with error: %v", pe.name, in.Err)
			}
		}
	}
}

// resetAfterTimeWait: a reset that closes pe after everything was
// delivered both ways and the peer's connection went through TIME-WAIT
// and is gone. The peer's ACK of pe's FIN was lost and pe's retransmission
// of the FIN (or of data the peer already has) came, after more losses
// and backed-off timeouts, later than the peer's 2·MSL: the peer has
// forgotten the connection and the RST is right (RFC 9293 §3.10.7.1: a
// segment for no connection is answered with a reset). TIME-WAIT protects
// only retransmissions within 2·MSL; on a link losing one segment in five
// two consecutive timeouts of up to MaxRTO can exceed it.
func (s *propSim) resetAfterTimeWait(pe *propPeer, err error) bool {
	other := s.peers[0]
	if other == pe {
		other = s.peers[1]
	}
	if !errors.Is(err, ErrConnectionReset) || !pe.eof || other.read != len(pe.out) || pe.read != len(other.out) || !other.states[TimeWait] {
		return false
	}
	in, ok := other.e.Endpoint(other.id)
	return !ok || in.State == Closed && in.Err == nil
}

// appTurn lets one application act: accept, read, write, close. With force
// unset it acts on each thing with probability pAct and otherwise asks to
// be woken at its next tick.
func (s *propSim) appTurn(i int, force bool) {
	pe, other := s.peers[i], s.peers[1-i]
	defer s.drain(i)
	act := func() bool {
		if force || s.p.pAct >= 1 || s.app.Float64() < s.p.pAct {
			return true
		}
		return s.later()
	}
	readNow := func() bool {
		if s.p.slowReader && !force {
			return s.later()
		}
		return act()
	}
	if i == 1 && pe.id == 0 {
		in, _ := pe.e.Endpoint(s.lid)
		if in.AcceptQueue == 0 || !act() {
			return
		}
		id, err := pe.e.Accept(s.lid)
		if err != nil {
			s.fail("accept: %v", err)
		}
		pe.id = id
		s.note("server accepted ep%d", id)
		if c, _ := pe.e.Endpoint(id); c.Remote != s.peers[0].addr {
			s.fail("accepted a connection from %v", c.Remote)
		}
	}
	if pe.aborted {
		return
	}
	in, ok := pe.e.Endpoint(pe.id)
	if !ok {
		s.fail("%s endpoint %d vanished", pe.name, pe.id)
	}
	if !pe.est && in.State >= Established {
		pe.est, pe.estAt = true, s.now
	}
	if s.p.mode == propAbort && i == s.p.abortSide && pe.est && other.est && in.State != Closed &&
		(s.now >= pe.estAt+s.p.abortAt || (pe.written == len(pe.out) && pe.read == len(other.out))) {
		if err := pe.e.Abort(pe.id); err != nil {
			s.fail("%s abort: %v", pe.name, err)
		}
		pe.aborted = true
		s.note("%s aborted", pe.name)
		return
	}

	// Read, until end of file or Close (after which the application reads
	// no more). Data stays readable after the connection has closed.
	if !pe.eof && !pe.closed && (in.Readable > 0 || in.FinReceived) && readNow() {
		for {
			b := s.buf[:1+s.app.IntN(len(s.buf))]
			n, err := pe.e.Receive(pe.id, b)
			if n > 0 {
				if pe.read+n > len(other.out) || !bytes.Equal(b[:n], other.out[pe.read:pe.read+n]) {
					s.fail("%s received %d bytes at offset %d that %s did not write there", pe.name, n, pe.read, other.name)
				}
				pe.read += n
			}
			if errors.Is(err, ErrConnectionClosing) {
				pe.eof = true
				if pe.read != len(other.out) && s.p.mode != propAbort {
					s.fail("%s read end of file after %d of %d bytes", pe.name, pe.read, len(other.out))
				}
				s.note("%s read EOF after %d bytes", pe.name, pe.read)
				break
			}
			if err != nil && in.State == Closed {
				break
			}
			if err != nil {
				s.fail("%s receive: %v", pe.name, err)
			}
			if n == 0 {
				break
			}
		}
	}

	if in.State == Closed {
		if s.p.mode == propAbort {
			return
		}
		// A connection closes only after its application has read end of
		// file or called Close, or in TIME-WAIT (the FIN is in) when an RST
		// cuts TIME-WAIT short: RFC 9293 §3.10.7.4 has TIME-WAIT accept an
		// RST, as Linux does by default (RFC 1337 describes the hazard), and
		// once the data is read Receive answers "connection does not exist"
		// rather than end of file.
		if !pe.eof && !pe.closed && in.FinReceived && in.Err == nil && pe.read == len(other.out) {
			pe.eof = true
			s.counts.twReset++
		}
		if !pe.eof && !pe.closed && (!s.p.slowReader || force) {
			s.fail("%s connection CLOSED before its application read end of file", pe.name)
		}
		return
	}

	// Write.
	if !pe.shut && pe.written < len(pe.out) && in.Unsent+in.Unacked < pe.e.Config().SendBuffer && act() {
		for k := 0; k < 4 && pe.written < len(pe.out); k++ {
			n := min(1+s.app.IntN(s.p.maxChunk), len(pe.out)-pe.written)
			m, err := pe.e.Send(pe.id, pe.out[pe.written:pe.written+n])
			if errors.Is(err, ErrInsufficientResources) {
				break
			}
			if err != nil {
				s.fail("%s send: %v", pe.name, err)
			}
			pe.written += m
		}
	}

	// Close, once established: CLOSE in SYN-SENT would just delete the TCB.
	if !pe.est {
		return
	}
	done := pe.written == len(pe.out)
	first := ((s.p.mode == propClientFirst || s.p.mode == propSimultaneousOpen) && i == 0) || (s.p.mode == propServerFirst && i == 1)
	var shut, closeNow bool
	switch s.p.mode {
	case propClientFirst, propServerFirst, propSimultaneousOpen:
		if first {
			if s.p.firstClose {
				closeNow = done && pe.read == len(other.out)
			} else {
				shut = done
				closeNow = pe.shut && pe.eof
			}
		} else {
			closeNow = done && pe.eof
		}
	case propSimultaneous:
		// Both shut down in the same instant, once both have written all.
		if done && other.written == len(other.out) && other.est && !pe.shut {
			s.appShut(i)
			s.appShut(1 - i)
			s.drain(1 - i)
		}
		closeNow = pe.shut && pe.eof
	case propAbort:
		// The survivor closes once it has written everything and read all
		// there is; it learns of the abort from the peer's RST (or, if that
		// is lost, from the RST its next segment draws).
		closeNow = done && (pe.eof || pe.read == len(other.out) || other.aborted)
	}
	if shut && !pe.shut && act() {
		if err := pe.e.Shutdown(pe.id); err != nil {
			s.fail("%s shutdown: %v", pe.name, err)
		}
		pe.shut = true
		s.note("%s shutdown", pe.name)
	}
	if closeNow && !pe.closed && act() {
		if err := pe.e.Close(pe.id); err != nil && s.p.mode != propAbort {
			s.fail("%s close: %v", pe.name, err)
		}
		pe.shut, pe.closed = true, true
		s.note("%s close", pe.name)
	}
}

// later asks for an application tick: something was left for it to do.
func (s *propSim) later() bool {
	if s.wake == 0 || s.now+s.p.appTick < s.wake {
		s.wake = s.now + s.p.appTick
	}
	return false
}

// appShut is the other half of a simultaneous close.
func (s *propSim) appShut(i int) {
	pe := s.peers[i]
	if pe.shut || pe.id == 0 {
		return
	}
	if in, _ := pe.e.Endpoint(pe.id); in.State == Closed {
		return
	}
	if err := pe.e.Shutdown(pe.id); err != nil {
		s.fail("%s shutdown: %v", pe.name, err)
	}
	pe.shut = true
	s.note("%s shutdown (simultaneous)", pe.name)
}

// check runs the invariants after a step: the engine-wide ones and the
// byte accounting that ties each TCB to what its application did.
func (s *propSim) check() {
	for i, pe := range s.peers {
		if err := checkEngineInvariants(pe.e); err != nil {
			s.fail("%s: %v", pe.name, err)
		}
		if pe.id == 0 {
			continue
		}
		in, ok := pe.e.Endpoint(pe.id)
		if !ok {
			s.fail("%s endpoint %d vanished", pe.name, pe.id)
		}
		s.peers[i].states[in.State] = true
		if in.State < Established || in.State == Closed {
			continue
		}
		// Everything the application wrote is acknowledged, unacknowledged
		// or unsent: SND.UNA-ISS-1 counts the acknowledged data bytes.
		finAcked := in.FinSent && in.SndUna == in.SndNxt && in.State != Established && in.State != CloseWait
		acked := int64(in.SndUna.Sub(in.ISS)) - 1
		if finAcked {
			acked--
		}
		if want := int64(pe.written - in.Unsent - in.Unacked); acked != want && !(pe.aborted) {
			s.fail("%s (%s): SND.UNA-ISS-1 = %d data bytes acknowledged, but %d written - %d unsent - %d unacked = %d",
				pe.name, in.State, acked, pe.written, in.Unsent, in.Unacked, want)
		}
		if adv := in.RcvNxt.Add(Size(in.RcvWnd)); in.State <= CloseWait {
			if pe.rcvAdv != 0 && adv.LessThan(pe.rcvAdv) {
				s.fail("%s (%s): the receive window's right edge moved left from %d to %d", pe.name, in.State, pe.rcvAdv, adv)
			}
			pe.rcvAdv = adv
		}
		// Everything received in order was read or is readable.
		got := int64(in.RcvNxt.Sub(in.IRS)) - 1
		if in.FinReceived {
			got--
		}
		if want := int64(pe.read + in.Readable); got != want {
			s.fail("%s (%s): RCV.NXT-IRS-1 = %d bytes received, but %d read + %d readable = %d",
				pe.name, in.State, got, pe.read, in.Readable, want)
		}
	}
}

// nextEvent returns the time of the next packet arrival, engine timer or
// application tick, or -1 if there is none.
func (s *propSim) nextEvent() time.Duration {
	next := time.Duration(-1)
	consider := func(t time.Duration) {
		if next < 0 || t < next {
			next = t
		}
	}
	if len(s.inf) > 0 {
		consider(s.inf[0].at)
	}
	for _, pe := range s.peers {
		if d, ok := pe.e.NextDeadline(); ok {
			consider(d)
		}
	}
	if s.wake != 0 {
		consider(s.wake)
	}
	return next
}

func (s *propSim) finished() bool {
	for _, pe := range s.peers {
		if pe.id == 0 {
			return false
		}
		if in, _ := pe.e.Endpoint(pe.id); in.State != Closed {
			return false
		}
	}
	return true
}

// advance moves both clocks to t, firing their timers.
func (s *propSim) advance(t time.Duration) {
	s.now = t
	for i, pe := range s.peers {
		pe.e.AdvanceTo(t)
		s.drain(i)
	}
}

// propRun runs one seed. It returns the failure message ("" on success)
// and what the run exercised.
// With rec set, every output batch and the final snapshots are written to
// it (see recordReady), for the determinism test.
func propRun(p propParams, traceLen int, rec *bytes.Buffer) (msg string, counts propCounts) {
	s := &propSim{
		p:        p,
		traceLen: traceLen,
		rec:      rec,
		link:     rand.New(rand.NewPCG(p.seed, 2)),
		app:      rand.New(rand.NewPCG(p.seed, 3)),
		buf:      make([]byte, 20000),
	}
	data := rand.New(rand.NewPCG(p.seed, 4))
	s.peers[0] = &propPeer{name: "client", e: New(p.cli), addr: p.cliAddr}
	s.peers[1] = &propPeer{name: "server", e: New(p.srv), addr: p.srvAddr}
	for i, pe := range s.peers {
		pe.out = make([]byte, p.size[i])
		for k := range pe.out {
			pe.out[k] = byte(data.Uint32())
		}
	}
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if f, ok := r.(propFailure); ok {
			msg = f.msg
		} else {
			msg = fmt.Sprintf("panic: %v\n%s", r, debug.Stack())
		}
		var b strings.Builder
		b.WriteString(msg)
		fmt.Fprintf(&b, "\n  params: %s", p.String())
		for _, pe := range s.peers {
			fmt.Fprintf(&b, "\n  %s: wrote %d/%d, read %d, eof=%v shut=%v closed=%v aborted=%v", pe.name,
				pe.written, len(pe.out), pe.read, pe.eof, pe.shut, pe.closed, pe.aborted)
			for _, in := range pe.e.Endpoints() {
				fmt.Fprintf(&b, "\n    %+v", in)
			}
		}
		b.WriteString("\n  last events:")
		for _, l := range s.traceLines() {
			b.WriteString("\n    " + l)
		}
		msg = b.String()
		counts = s.counts
	}()

	srv := s.peers[1]
	if p.mode != propSimultaneousOpen {
		lid, err := srv.e.Listen(p.listen, 0)
		if err != nil {
			s.fail("listen: %v", err)
		}
		s.lid = lid
		s.drain(1)
	}
	if p.cookies {
		// A ghost's SYN fills the one-entry SYN queue; its SYN,ACKs go nowhere.
		s.ghost = netip.AddrPortFrom(p.cliAddr.Addr(), p.cliAddr.Port()+1)
		g := Segment{SrcPort: s.ghost.Port(), DstPort: p.srvAddr.Port(), Flags: FlagSYN, Seq: 12345, Window: 65535}
		g.Options.MSS, g.Options.HasMSS = 1460, true
		if err := srv.e.Deliver(AppendPacket(nil, s.ghost.Addr(), p.srvAddr.Addr(), &g)); err != nil {
			s.fail("ghost SYN: %v", err)
		}
		s.drain(1)
	}
	cli := s.peers[0]
	cid, err := cli.e.Connect(p.cliAddr, p.srvAddr)
	if err != nil {
		s.fail("connect: %v", err)
	}
	cli.id = cid
	s.drain(0)
	if p.mode == propSimultaneousOpen {
		sid, err := srv.e.Connect(p.srvAddr, p.cliAddr)
		if err != nil {
			s.fail("connect: %v", err)
		}
		srv.id = sid
		s.drain(1)
	}

	for !s.finished() {
		s.steps++
		if s.steps > propStepLimit {
			s.fail("no convergence after %d steps", s.steps)
		}
		force := s.wake != 0 && s.now >= s.wake
		if force {
			s.wake = 0
		}
		for i := range s.peers {
			s.appTurn(i, force)
		}
		s.check()
		if s.finished() {
			break
		}
		next := s.nextEvent()
		if next < 0 {
			// Nothing scheduled: the applications get a last look first.
			for i := range s.peers {
				s.appTurn(i, true)
			}
			next = s.nextEvent()
		}
		if next < 0 {
			if sv := s.peers[1-p.abortSide]; p.mode == propAbort && s.peers[p.abortSide].aborted {
				if in, _ := sv.e.Endpoint(sv.id); in.State == FinWait2 {
					// The RST of the abort was lost and the survivor had
					// nothing left to send: without a FIN-WAIT-2 timeout
					// (RFC 9293 has none) it waits for a FIN for ever.
					s.counts.orphans++
					return "", s.counts
				}
			}
			if s.finished() {
				break
			}
			s.fail("stuck: no packet in flight, no timer armed, nothing for the applications to do")
		}
		if next > propTimeLimit {
			s.fail("no convergence within %v of virtual time", propTimeLimit)
		}
		s.advance(max(next, s.now))
		for len(s.inf) > 0 && s.inf[0].at <= s.now {
			pk := s.pop()
			if err := s.peers[pk.to].e.Deliver(pk.data); err != nil {
				s.fail("deliver to %s: %v", s.peers[pk.to].name, err)
			}
			s.drain(pk.to)
			s.check()
		}
	}

	// Final checks, after a last look by each application.
	for i := range s.peers {
		s.appTurn(i, true)
	}
	for i, pe := range s.peers {
		other := s.peers[1-i]
		in, _ := pe.e.Endpoint(pe.id)
		for st, seen := range pe.states {
			if seen {
				s.counts.states[st]++
			}
		}
		if p.mode == propAbort {
			// rst_errno_linux: a RST in CLOSE-WAIT leaves "connection closing" (EPIPE).
			if in.Err != nil && in.Err != ErrConnectionReset && !(pe.e.cfg.RstErrnoLinux && in.Err == ErrConnectionClosing) {
				s.fail("%s closed with %v after the abort", pe.name, in.Err)
			}
			continue
		}
		if in.Err != nil && !s.resetAfterTimeWait(pe, in.Err) {
			s.fail("%s closed with error %v", pe.name, in.Err)
		}
		if pe.read != len(other.out) || (!pe.eof && !pe.closed) {
			s.fail("%s read %d of %d bytes (eof %v)", pe.name, pe.read, len(other.out), pe.eof)
		}
		if pe.written != len(pe.out) {
			s.fail("%s wrote %d of %d bytes", pe.name, pe.written, len(pe.out))
		}
	}
	if l, _ := srv.e.Endpoint(s.lid); l.AcceptQueue != 0 {
		s.fail("listener still has %d connections to accept", l.AcceptQueue)
	}
	if p.cookies {
		if l, _ := srv.e.Endpoint(s.lid); l.Stats.SynCookiesAccepted > 0 {
			s.counts.cookies++
		}
	}
	s.counts.maxTime, s.counts.maxSeed = s.now, p.seed
	if s.rec != nil {
		for _, pe := range s.peers {
			recordEndpoints(s.rec, pe.name, pe.e)
		}
	}
	return "", s.counts
}

// propSeeds returns the seeds to run: TCPSTATED_PROPERTY_SEED alone, or
// 1..TCPSTATED_PROPERTY_SEEDS (default n).
func propSeeds(t *testing.T, n int) []uint64 {
	if v := os.Getenv("TCPSTATED_PROPERTY_SEED"); v != "" {
		seed, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("TCPSTATED_PROPERTY_SEED=%q: %v", v, err)
		}
		return []uint64{seed}
	}
	if v := os.Getenv("TCPSTATED_PROPERTY_SEEDS"); v != "" {
		k, err := strconv.Atoi(v)
		if err != nil || k < 1 {
			t.Fatalf("TCPSTATED_PROPERTY_SEEDS=%q: want a positive count", v)
		}
		n = k
	}
	seeds := make([]uint64, n)
	for i := range seeds {
		seeds[i] = uint64(i + 1)
	}
	return seeds
}

// propRunSeeds runs every seed of a mode on all CPUs and reports the first
// failures in seed order.
func propRunSeeds(t *testing.T, mode propMode, n int) propCounts {
	seeds := propSeeds(t, n)
	traceLen := 80
	if len(seeds) == 1 {
		traceLen = 5000
	}
	type result struct {
		seed uint64
		msg  string
	}
	var (
		mu       sync.Mutex
		failures []result
		total    propCounts
		wg       sync.WaitGroup
		work     = make(chan uint64)
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seed := range work {
				msg, c := propRun(propGenerate(seed, mode), traceLen, nil)
				mu.Lock()
				total.add(c)
				if msg != "" {
					failures = append(failures, result{seed, msg})
				}
				mu.Unlock()
			}
		}()
	}
	for _, seed := range seeds {
		mu.Lock()
		stop := len(failures) >= propMaxFailures
		mu.Unlock()
		if stop {
			break
		}
		work <- seed
	}
	close(work)
	wg.Wait()
	slices.SortFunc(failures, func(a, b result) int { return int(a.seed) - int(b.seed) })
	for _, f := range failures {
		t.Errorf("seed %d (%s): %s\nreproduce: TCPSTATED_PROPERTY_SEED=%d go test -run 'TestPropertyLossyLink/%s$' ./fsm/",
			f.seed, mode, f.msg, f.seed, mode)
	}
	return total
}

// TestPropertyLossyLink is the lossy-link property: over any seed's link
// (loss up to 20%, duplication, reordering, delay), configuration and
// application behaviour, each side receives exactly the bytes the other
// wrote, then end of file, and both connections end in CLOSED with no
// error; every emitted packet is well formed and the TCB invariants hold
// after every step. Reference: RFC 9293 §3.8 (reliability), §3.6 (closing).
func TestPropertyLossyLink(t *testing.T) {
	single := os.Getenv("TCPSTATED_PROPERTY_SEED") != ""
	var all propCounts
	for _, mode := range []propMode{propClientFirst, propServerFirst, propSimultaneous, propAbort, propSimultaneousOpen} {
		t.Run(mode.String(), func(t *testing.T) {
			c := propRunSeeds(t, mode, propDefaultSeeds)
			all.add(c)
			t.Logf("%s: states %v, %d lost, %d duplicated, %d zero-window segments, %d via SYN cookies, %d FIN-WAIT-2 orphans, %d TIME-WAITs reset, %d CE marks; longest run %v (seed %d)",
				mode, c.states, c.lost, c.duped, c.zeroWindow, c.cookies, c.orphans, c.twReset, c.ceMarked, c.maxTime.Round(time.Second), c.maxSeed)
			if single || t.Failed() || testing.Short() {
				return
			}
			// The seeds as a whole must exercise what the test is for.
			want := []State{SynSent, SynReceived, Established, FinWait1, Closed}
			switch mode {
			case propClientFirst, propServerFirst, propSimultaneousOpen:
				want = append(want, FinWait2, CloseWait, LastAck, TimeWait)
			case propSimultaneous:
				want = append(want, Closing, TimeWait)
			}
			for _, st := range want {
				if c.states[st] == 0 {
					t.Errorf("no seed reached %s", st)
				}
			}
			if mode == propClientFirst && (c.zeroWindow == 0 || c.cookies == 0 || c.lost == 0) {
				t.Errorf("the seeds never hit a zero window (%d), a SYN cookie (%d) or a loss (%d)", c.zeroWindow, c.cookies, c.lost)
			}
		})
	}
	if single || t.Failed() || testing.Short() {
		return
	}
	// Across the modes the seeds must exercise every loss-recovery
	// mechanism the combinations turn on, and hold a FIN above a hole
	// with and without it in the SACK blocks (sack_fin), and take a
	// duplicate's TSval (ts_recent_dup).
	t.Logf("recovery explanations: %v", all.recovery)
	for _, code := range []Code{CodeSACKRecovery, CodeTLPProbe, CodeRACKLost, CodeSpuriousRTO, CodeFRTOSpurious,
		CodeECNNegotiated, CodeECNReduce, CodeECNSetupFallback, CodeCubicEpoch, CodeFinOutOfOrder, CodeFinNotSACKed, CodeTSRecentFromDuplicate} {
		if all.recovery[code] == 0 {
			t.Errorf("no seed explained %s", code)
		}
	}
	if all.ceMarked == 0 {
		t.Error("the link never marked CE")
	}
}

// TestPropertyRecoveryCombinations: the default seeds of the five modes
// of TestPropertyLossyLink run every combination of the loss-recovery
// options (propRecoveryCombo).
func TestPropertyRecoveryCombinations(t *testing.T) {
	seen := map[Recovery]bool{}
	for mode := propClientFirst; mode <= propSimultaneousOpen; mode++ {
		for seed := uint64(1); seed <= propDefaultSeeds; seed++ {
			r := propGenerate(seed, mode).srv.Recovery
			r.ECNMaxRetries = 0
			seen[r] = true
		}
	}
	if uint64(len(seen)) != propRecoveryCombos {
		t.Fatalf("%d combinations run, want all %d", len(seen), propRecoveryCombos)
	}
}

// Regressions the property tests found, minimised.

// TestReadyReturnsEachOutputOnce: Ready returns the outputs accumulated
// since the previous call, so a second call with no input in between, or
// after an input that produced nothing (a Receive with nothing to read),
// returns an empty batch rather than the previous one again; a host that
// drains after every call would otherwise send every packet twice.
func TestReadyReturnsEachOutputOnce(t *testing.T) {
	e := New(fixedConfig(100))
	id, err := e.Connect(clientAddr, serverAddr)
	if err != nil {
		t.Fatal(err)
	}
	if r := e.Ready(); len(r.Packets) != 1 || len(r.Transitions) != 1 {
		t.Fatalf("after Connect: %d packets, %d transitions; want the SYN and SYN-SENT", len(r.Packets), len(r.Transitions))
	}
	if r := e.Ready(); !r.Empty() {
		t.Fatalf("second Ready with no input returned %d packets again", len(r.Packets))
	}
	if n, err := e.Receive(id, make([]byte, 10)); n != 0 || err != nil {
		t.Fatalf("Receive in SYN-SENT = %d, %v", n, err)
	}
	if r := e.Ready(); !r.Empty() {
		t.Fatalf("Ready after a Receive that did nothing returned %d packets again", len(r.Packets))
	}
}

// TestTimestampRecentFollowsInSequenceSegments: TS.Recent, the TSval a
// side echoes in TSecr, is updated from every acceptable segment that
// starts at or before the last ACK sent, not only from the SYN; echoing
// the SYN's TSval forever makes the peer's RTT samples grow without bound
// until its RTO sits at the maximum. Found by TestPropertyLossyLink (a
// transfer at one segment per minute). Reference: RFC 7323 §4.3, §5.3 R3.
func TestTimestampRecentFollowsInSequenceSegments(t *testing.T) {
	ccfg, scfg := fixedConfig(100), fixedConfig(300)
	ccfg.NoTimestamps, scfg.NoTimestamps = false, false
	cli, srv, c, _ := established(t, ccfg, scfg)
	for i, at := range []time.Duration{500 * time.Millisecond, 900 * time.Millisecond} {
		cli.e.AdvanceTo(at)
		srv.e.AdvanceTo(at)
		if _, err := cli.e.Send(c, []byte("x")); err != nil {
			t.Fatal(err)
		}
		d := relay(cli, srv, fmt.Sprintf("P. seq=%d ack=301 len=1", 101+i))
		a := relay(srv, cli, fmt.Sprintf(". seq=301 ack=%d", 102+i))
		if a.Segment.Options.TSEcr != d.Segment.Options.TSVal {
			t.Fatalf("at %v the server echoes TSecr=%d, want the TSval %d of the segment it acknowledges",
				at, a.Segment.Options.TSEcr, d.Segment.Options.TSVal)
		}
	}
	if in, _ := cli.e.Endpoint(c); in.SRTT > 100*time.Millisecond {
		t.Fatalf("client SRTT %v on a zero-delay link", in.SRTT)
	}
}

// TestFinFirstSentOnRetransmissionAdvancesSndNxt: a FIN held back by the
// congestion window may first leave attached to a go-back-N retransmission
// of the last data; it then occupies a sequence number, so SND.NXT must
// move past it. Otherwise the peer's ACK of the FIN is "too high" (above
// SND.NXT), is answered with an ACK and dropped, every time: an ACK storm,
// and the FIN-WAIT-1 side never reaches FIN-WAIT-2 or sees the peer's FIN.
// Found by TestPropertyLossyLink. Reference: RFC 9293 §3.4 (the FIN
// occupies a sequence number), §3.10.7.4 fifth step.
func TestFinFirstSentOnRetransmissionAdvancesSndNxt(t *testing.T) {
	ccfg := fixedConfig(100)
	ccfg.InitialWindow = 2
	cli, srv, c, _ := established(t, ccfg, fixedConfig(300))
	if _, err := cli.e.Send(c, make([]byte, 2*1460)); err != nil {
		t.Fatal(err)
	}
	cli.expect(". seq=101 ack=301 len=1460")   // lost
	cli.expect("P. seq=1561 ack=301 len=1460") // lost
	if err := cli.e.Close(c); err != nil {
		t.Fatal(err)
	}
	cli.expectNothing() // the congestion window is full: the FIN waits
	cli.e.AdvanceTo(time.Second)
	relay(cli, srv, ". seq=101 ack=301 len=1460")
	relay(srv, cli, ". seq=301 ack=1561")
	relay(cli, srv, "FP. seq=1561 ack=301 len=1460")
	relay(srv, cli, ". seq=301 ack=3022")
	cli.expectNothing()
	cli.wantState(c, FinWait2)
}

// TestSWSOverrideAfterLostWindowUpdate: a sender that holds data back
// because the usable window is too small to be worth a segment (sender
// SWS avoidance) has nothing in flight, so no ACK will come to tell it of
// a bigger window if the receiver's window update is lost. The override
// timeout must send what fits (the persist timer doubles as it, as on
// Linux); without it the connection stalls for ever. Found by
// TestPropertyLossyLink with a 4 KiB receive buffer. Reference: RFC 9293
// §3.8.6.2.1, RFC 1122 §4.2.3.4.
func TestSWSOverrideAfterLostWindowUpdate(t *testing.T) {
	scfg := fixedConfig(300)
	scfg.RecvBuffer = 4096
	cli, srv, c, s := established(t, fixedConfig(100), scfg)
	if _, err := cli.e.Send(c, make([]byte, 8000)); err != nil {
		t.Fatal(err)
	}
	relay(cli, srv, ". seq=101 ack=301 len=1460")
	relay(cli, srv, ". seq=1561 ack=301 len=1460")
	cli.expectNothing() // 1176 bytes of window: too small to send (SWS)
	relay(srv, cli, ". seq=301 ack=1561")
	relay(srv, cli, ". seq=301 ack=3021")
	cli.expectNothing()
	if n, _ := srv.e.Receive(s, make([]byte, 4096)); n != 2920 {
		t.Fatalf("server read %d bytes, want 2920", n)
	}
	if p := srv.expect(". seq=301 ack=3021"); p.Segment.Window != 4096 {
		t.Fatalf("window update offers %d, want 4096", p.Segment.Window)
	} // lost
	d, ok := cli.e.NextDeadline()
	if !ok {
		t.Fatal("client holds 5080 bytes with nothing in flight and no timer armed: stalled")
	}
	cli.e.AdvanceTo(d)
	relay(cli, srv, ". seq=3021 ack=301 len=1176")
	relay(srv, cli, ". seq=301 ack=4197")
}

// TestScaledWindowNeverOverfillsBuffer: with a coarse window scale and an
// application that never reads, rounding the window up to the scale unit
// (RFC 7323 §2.3) must not creep the right edge: the window closes when the
// buffer is full, and every byte the receiver acknowledged is stored, so no
// acknowledged text (nor a FIN after it) is ever dropped. Found by
// TestPropertyLossyLink with scale 9 and a 1000-byte buffer.
func TestScaledWindowNeverOverfillsBuffer(t *testing.T) {
	scfg := fixedConfig(300)
	scfg.RecvBuffer, scfg.WindowScale = 1000, 9
	_, srv, _, s := established(t, fixedConfig(100), scfg)
	seg := func(seq Seq, flags Flags, n int) Packet {
		g := Segment{SrcPort: clientAddr.Port(), DstPort: serverAddr.Port(), Flags: flags | FlagACK, Seq: seq, Ack: 301,
			Window: 65535, Payload: bytes.Repeat([]byte{byte(seq)}, n)}
		return Packet{Data: AppendPacket(nil, clientAddr.Addr(), serverAddr.Addr(), &g)}
	}
	// Send 10-byte segments for as long as the window admits them.
	seq := Seq(101)
	for i := 0; i < 1000; i++ {
		in, _ := srv.e.Endpoint(s)
		if in.Readable != int(in.RcvNxt.Sub(101)) {
			t.Fatalf("acknowledged %d bytes but stored %d", in.RcvNxt.Sub(101), in.Readable)
		}
		if in.Readable+int(in.RcvWnd) > scfg.RecvBuffer+1<<9 {
			t.Fatalf("readable %d + window %d exceed the buffer %d plus one scale unit", in.Readable, in.RcvWnd, scfg.RecvBuffer)
		}
		if in.RcvWnd < 10 {
			break
		}
		srv.deliver(seg(seq, FlagPSH, 10))
		seq += 10
		srv.collect()
	}
	// A FIN with text at the closed window's edge is not taken early.
	srv.deliver(seg(seq, FlagPSH|FlagFIN, 10))
	srv.collect()
	in, _ := srv.e.Endpoint(s)
	if in.FinReceived || in.Readable != int(in.RcvNxt.Sub(101)) {
		t.Fatalf("FIN received %v, readable %d, RCV.NXT-IRS-1 %d", in.FinReceived, in.Readable, in.RcvNxt.Sub(101))
	}
}

// TestSynCookieNeverExceedsPeerMSS: a SYN cookie can only encode the MSS
// values of its table, the smallest 536; a peer that announced less must
// not be answered with a cookie, or the connection rebuilt from it would
// send segments larger than the peer's MSS option. Such a SYN is dropped
// as if there were no cookies (the peer retries once the SYN queue has
// room), while a SYN with an MSS the table covers still gets its cookie.
// Found by TestPropertyLossyLink with a 386-byte client MSS. Reference:
// RFC 9293 §3.7.1 (the send MSS is at most the peer's MSS option),
// RFC 4987 §3.6.
func TestSynCookieNeverExceedsPeerMSS(t *testing.T) {
	cfg := fixedConfig(300)
	cfg.SynCookies, cfg.SynQueue = true, 1
	srv := newSide(t, "server", cfg)
	l, err := srv.e.Listen(serverAddr, 0)
	if err != nil {
		t.Fatal(err)
	}
	syn := func(port uint16, mss uint16) Packet {
		g := Segment{SrcPort: port, DstPort: serverAddr.Port(), Flags: FlagSYN, Seq: 1000, Window: 65535}
		g.Options.MSS, g.Options.HasMSS = mss, true
		return Packet{Data: AppendPacket(nil, clientAddr.Addr(), serverAddr.Addr(), &g)}
	}
	srv.deliver(syn(1001, 1460)) // fills the SYN queue
	srv.expect("S. seq=300 ack=1001")
	srv.deliver(syn(1002, 386))
	srv.expectNothing()
	if in, _ := srv.e.Endpoint(l); in.Stats.SynQueueDrops != 1 || in.Stats.SynCookiesSent != 0 {
		t.Fatalf("SYN with MSS 386 and a full queue: stats %+v, want one drop and no cookie", in.Stats)
	}
	srv.deliver(syn(1003, 1460))
	srv.collect()
	if len(srv.out) != 1 || srv.out[0].Segment.Flags != FlagSYN|FlagACK || srv.out[0].Segment.Options.MSS < 536 {
		t.Fatalf("SYN with MSS 1460 and a full queue: answered with %d segments, want a cookie SYN,ACK", len(srv.out))
	}
	if in, _ := srv.e.Endpoint(l); in.Stats.SynCookiesSent != 1 {
		t.Fatalf("SYN with MSS 1460 and a full queue: stats %+v, want a cookie", in.Stats)
	}
}

// propMarkCE sets the IP header's ECN field to CE, as a congested router
// does to an ECT packet (RFC 3168 §5), keeping the IPv4 checksum right.
func propMarkCE(pkt []byte) {
	if pkt[0]>>4 == 4 {
		setIPFields(pkt, pkt[8], pkt[1]|ecnCE)
		return
	}
	setIPFields(pkt, pkt[7], (pkt[0]<<4|pkt[1]>>4)|ecnCE)
}
