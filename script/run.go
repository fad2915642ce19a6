package script

import (
	"fmt"
	"math"
	"net/netip"
	"strings"
	"time"

	"github.com/tcpstated/tcpstated/fsm"
	"github.com/tcpstated/tcpstated/script/target"
)

// CompareMode says how expected outbound packets are compared.
type CompareMode uint8

const (
	// CompareAuto uses the script's "// compare:" header comment, else semantic.
	CompareAuto CompareMode = iota
	// CompareSemantic judges the SYN, ACK, FIN and RST flags, seq, ack and
	// payload length; PSH, window, options and the values of buffer-size
	// socket options are reported but not judged.
	CompareSemantic
	// CompareStrict judges every field packetdrill compares: all flags,
	// seq, ack, length, window (when written) and options (unless <...>).
	CompareStrict
)

func (m CompareMode) String() string {
	switch m {
	case CompareSemantic:
		return "semantic"
	case CompareStrict:
		return "strict"
	}
	return "auto"
}

// ParseCompareMode parses "strict", "semantic" or "" (auto), in any case,
// with or without a "COMPARE_" prefix (as the API's enum spells them).
func ParseCompareMode(s string) (CompareMode, error) {
	switch strings.TrimPrefix(strings.ToLower(s), "compare_") {
	case "", "auto", "unspecified":
		return CompareAuto, nil
	case "semantic":
		return CompareSemantic, nil
	case "strict":
		return CompareStrict, nil
	}
	return CompareAuto, fmt.Errorf("unknown compare mode %q: want strict or semantic", s)
}

// Options control a run.
type Options struct {
	Compare CompareMode // CompareAuto: the script's directive, else semantic
	Name    string      // the script's file name, for messages and the report
	Session string      // the session the script runs in, recorded in the report
	// Config is the engine configuration Run starts from before the
	// script's options; nil means fixed ISNs of 0 and the engine defaults.
	Config *fsm.Config
	// RemoteISN is the ISN of the peer the runner plays, unless the script
	// sets --tcpstated_remote_isn. Inbound sequence numbers are relative to it.
	RemoteISN uint32
}

// runner is the state of one run.
type runner struct {
	s         *Script
	h         *header
	t         target.Target
	x         target.Explainer // nil if the target does not explain itself
	strict    bool
	base      time.Duration // target time at script time 0
	rep       *Report
	cur       *LineResult
	queue     []*outPkt    // emitted, not yet matched by a > line
	flows     []*flow      // flow n is flows[n-1]
	open      map[int]bool // the descriptors the script holds
	cfgNote   string       // set when the engine's configuration is not the script's
	remoteISN uint32       // the ISN of the peer the runner plays

	last       time.Duration // resolved time of the previous event (script time)
	lastIn     int           // line of the last inbound packet
	lastInExpl []string      // what the engine said about it
	listenPort uint16        // port of the most recent listen()
	pending    *blocked      // a blocking system call in progress
	failed     bool
	failLine   int
}

// RunTarget runs a parsed script on t and returns its report. Script
// times count from t.Now() when the run starts.
func RunTarget(t target.Target, s *Script, opts Options) *Report {
	if rep := s.headerError(opts); rep != nil {
		return rep
	}
	return runTarget(t, s, opts, "")
}

// headerError is the report of a script whose header options do not
// resolve, or nil.
func (s *Script) headerError(opts Options) *Report {
	if s.hdr == nil {
		if err := s.resolveHeader(); err != nil {
			return &Report{Script: s.Name, Session: opts.Session, Failure: err.Error(), Error: err.Error(), Lines: []LineResult{}}
		}
	}
	return nil
}

// runTarget runs s, whose header is resolved, on t. cfgNote, if set, is
// noted on the header options that configure the engine.
func runTarget(t target.Target, s *Script, opts Options, cfgNote string) *Report {
	mode := opts.Compare
	if mode == CompareAuto {
		mode = s.Compare
	}
	if mode == CompareAuto {
		mode = CompareSemantic
	}
	r := &runner{
		s: s, h: s.hdr, t: t, strict: mode == CompareStrict, base: t.Now(),
		rep:  &Report{Script: opts.Name, Session: opts.Session, Compare: mode.String()},
		open: map[int]bool{}, listenPort: s.hdr.bindPort, cfgNote: cfgNote,
	}
	r.x, _ = t.(target.Explainer)
	if r.rep.Script == "" {
		r.rep.Script = s.Name
	}
	r.remoteISN = opts.RemoteISN
	if r.h.remoteISNSet {
		r.remoteISN = r.h.remoteISN
	}
	r.header()
	r.run()
	return r.rep
}

// header reports the option lines.
func (r *runner) header() {
	for i, o := range r.s.Options {
		lr := LineResult{Line: o.Pos.Line, Text: o.Text, Kind: KindOption, Status: StatusPass}
		if note := r.h.notes[i]; note != "" {
			lr.Status, lr.Reason = StatusSkip, note
			r.rep.Skipped++
		} else if spec := headerOptions[o.Name]; spec.engine && r.cfgNote != "" {
			lr.Notes = append(lr.Notes, r.cfgNote)
		}
		r.rep.Lines = append(r.rep.Lines, lr)
	}
}

func (r *runner) run() {
	for i, ev := range r.s.Events {
		if r.failed {
			r.rep.Lines = append(r.rep.Lines, LineResult{Line: ev.Pos.Line, Text: ev.Text, Kind: kindOf(ev),
				Status: StatusSkip, Reason: fmt.Sprintf("not run: line %d failed", r.failLine)})
			r.rep.NotRun++
			continue
		}
		r.rep.Lines = append(r.rep.Lines, LineResult{Line: ev.Pos.Line, Text: ev.Text, Kind: kindOf(ev), Status: StatusPass})
		r.cur = &r.rep.Lines[len(r.rep.Lines)-1]
		r.event(i, ev)
		if r.cur.Status == StatusFail {
			r.fail(ev.Pos.Line)
		}
	}
	if !r.failed {
		r.finish()
	}
	r.rep.Passed = !r.failed
	r.rep.EndTime = seconds(r.t.Now() - r.base)
	for i := range r.rep.Lines {
		if l := &r.rep.Lines[i]; l.Status == StatusFail && r.rep.Failure == "" {
			r.rep.Failure = fmt.Sprintf("line %d: %s", l.Line, l.Reason)
		}
	}
}

func (r *runner) fail(line int) {
	if !r.failed {
		r.failed, r.failLine = true, line
	}
}

func kindOf(ev *Event) string {
	switch ev.Kind {
	case EventPacketIn:
		return KindPacketIn
	case EventPacketOut:
		return KindPacketOut
	case EventSyscall:
		return KindSyscall
	}
	return KindSkip
}

func seconds(d time.Duration) float64 { return math.Round(d.Seconds()*1e6) / 1e6 }

// failf fails the current line.
func (r *runner) failf(format string, args ...any) {
	r.cur.Status = StatusFail
	msg := fmt.Sprintf(format, args...)
	if r.cur.Reason == "" {
		r.cur.Reason = msg
	} else {
		r.cur.Reason += "; " + msg
	}
}

// resolve turns a time value into script time.
func (r *runner) resolve(t TimeVal) time.Duration {
	if t.Rel {
		return r.last + t.D
	}
	return t.D
}

// event runs one line.
func (r *runner) event(i int, ev *Event) {
	tol := r.h.tolerance
	var at, lo, hi time.Duration
	switch ev.Time.Kind {
	case TimeNone:
		at, lo, hi = r.last, r.last, r.last
	case TimeExact:
		at = r.resolve(ev.Time.Start)
		lo, hi = at-tol, at+tol
	case TimeRange:
		at = r.resolve(ev.Time.Start)
		end := r.resolve(ev.Time.End)
		lo, hi = at-tol, end+tol
	case TimeAny:
		at, lo, hi = r.last, math.MinInt64, math.MaxInt64
	case TimeBlocking:
		at = r.resolve(ev.Time.Start)
		lo, hi = at-tol, at+tol
	}
	r.cur.Time = seconds(at)
	if ev.Time.Kind != TimeAny && ev.Time.Kind != TimeNone && at < r.last-tol {
		r.failf("time %s is before the previous event's time %s: script times must not go backwards",
			formatSeconds(at), formatSeconds(r.last))
		return
	}
	if ev.Kind == EventPacketOut {
		r.outbound(ev, at, lo, hi)
		return
	}
	r.advance(at)
	if r.checkPending(at); r.failed {
		return
	}
	if ev.Time.Kind != TimeAny {
		r.last = at
	}
	switch ev.Kind {
	case EventPacketIn:
		r.inbound(ev)
	case EventSyscall:
		r.syscall(i, ev)
	case EventSkip:
		r.skip(ev.Skip)
	}
	if r.cur.Status != StatusFail {
		r.checkPending(at)
	}
}

// skip runs a shell command on a target that runs them, and otherwise
// lists the line as skipped.
func (r *runner) skip(sk *Skip) {
	if c, ok := r.t.(target.Commander); ok && sk.Kind == SkipShell {
		why, err := c.Command(sk.Body)
		switch {
		case err != nil:
			r.failf("the command failed: %v", err)
		case why != "":
			r.skipLine(why)
		default:
			r.cur.Actual = "ran"
			r.drain()
		}
		return
	}
	if sk.Kind == SkipShell {
		r.skipLine("skipped: shell commands are not run by tcpstated")
	} else {
		r.skipLine("skipped: python blocks are not run by tcpstated")
	}
}

// Setup is what a target needs to know of the script before it runs: its
// addresses and tolerance, from the header options. A bad option is a
// *ParseError.
func (s *Script) Setup() (target.Setup, error) {
	if s.hdr == nil {
		if err := s.resolveHeader(); err != nil {
			return target.Setup{}, err
		}
	}
	return target.Setup{Local: s.hdr.localIP, Remote: s.hdr.remoteIP, Tolerance: s.hdr.tolerance}, nil
}

// now is the target's clock in script time.
func (r *runner) now() time.Duration { return r.t.Now() - r.base }

// advance moves the target's clock to script time t and collects what it
// emitted on the way.
func (r *runner) advance(t time.Duration) {
	r.t.AdvanceTo(r.base + t)
	r.drain()
}

// drain copies the target's outputs: packets join the queue, transitions
// and explanations are noted on the current line.
func (r *runner) drain() {
	for _, p := range r.t.Collect() {
		o := &outPkt{t: p.Time - r.base, data: p.Data}
		src, dst, tcp, err := fsm.ParsePacket(o.data)
		if err == nil {
			o.seg, err = fsm.ParseSegment(tcp)
		}
		if err != nil {
			r.failf("the engine emitted a packet that does not decode: %v", err)
			continue
		}
		o.opts = decodeOptions(tcp)
		o.flow = r.flowOf(src, o.seg.SrcPort, netip.AddrPortFrom(dst, o.seg.DstPort))
		if f := o.flow; f != nil {
			if o.seg.Flags&fsm.FlagSYN != 0 {
				f.iss, f.issKnown = uint32(o.seg.Seq), true
			}
			if o.seg.Options.HasTimestamp {
				f.lastTSVal, f.hasTS = o.seg.Options.TSVal, true
			}
		}
		r.queue = append(r.queue, o)
	}
	if r.x == nil {
		return
	}
	transitions, explained := r.x.Explain()
	for _, t := range transitions {
		r.cur.Transitions = append(r.cur.Transitions, fmt.Sprintf("%s endpoint %d: %s -> %s (%s)",
			formatSeconds(t.Time-r.base), t.Endpoint, t.From, t.To, t.Cause))
	}
	for _, x := range explained {
		r.cur.Engine = append(r.cur.Engine, fmt.Sprintf("%s endpoint %d: %s", formatSeconds(x.Time-r.base), x.Endpoint, x.Text))
	}
}

// flowOf finds the flow of an emitted packet by its addresses.
func (r *runner) flowOf(src netip.Addr, srcPort uint16, dst netip.AddrPort) *flow {
	for _, f := range r.flows {
		if f != nil && f.local.Port() == srcPort && f.remote == dst && f.local.Addr() == src {
			return f
		}
	}
	return nil
}

// flow returns flow n (1 for 0), creating a passive one (the runner's
// peer dialing the listening port from port 40000+n-1) on first use.
func (r *runner) flow(n int) *flow {
	if n == 0 {
		n = 1
	}
	for len(r.flows) < n {
		r.flows = append(r.flows, nil)
	}
	if r.flows[n-1] == nil {
		r.flows[n-1] = &flow{
			n:         n,
			local:     netip.AddrPortFrom(r.h.localIP, r.listenPort),
			remote:    netip.AddrPortFrom(r.h.remoteIP, r.h.remotePort+uint16(n-1)),
			remoteISN: r.remoteISN,
			tsMap:     map[uint32]uint32{},
		}
	}
	return r.flows[n-1]
}

// newActiveFlow allocates the first unused flow number for a connect().
func (r *runner) newActiveFlow(local, remote netip.AddrPort) *flow {
	n := len(r.flows) + 1
	for i, f := range r.flows {
		if f == nil {
			n = i + 1
			break
		}
	}
	for len(r.flows) < n {
		r.flows = append(r.flows, nil)
	}
	f := &flow{n: n, local: local, remote: remote, remoteISN: r.remoteISN, tsMap: map[uint32]uint32{}, active: true}
	r.flows[n-1] = f
	return f
}

// flowByRemote finds the flow of an accepted connection.
func (r *runner) flowByRemote(local, remote netip.AddrPort) *flow {
	for _, f := range r.flows {
		if f != nil && f.remote == remote && f.local.Port() == local.Port() {
			return f
		}
	}
	return nil
}

// inbound builds the segment of a < line and delivers it.
func (r *runner) inbound(ev *Event) {
	p := ev.Packet
	f := r.flow(p.Flow)
	flags := flagsOf(p.Flags)
	seg := fsm.Segment{Flags: flags, Seq: fsm.Seq(f.remoteISN + p.Seq), Window: 65535}
	if p.Ack != nil {
		seg.Ack = fsm.Seq(f.iss + *p.Ack)
	} else if flags&fsm.FlagACK != 0 {
		r.cur.Notes = append(r.cur.Notes, "ACK is set without an ack number: sent ack 0 (relative)")
		seg.Ack = fsm.Seq(f.iss)
	}
	if p.Win != nil {
		seg.Window = uint16(*p.Win)
	} else {
		r.cur.Notes = append(r.cur.Notes, "no win given: sent win 65535")
	}
	if p.Urg != nil {
		seg.Urgent = uint16(*p.Urg)
	}
	if p.ECN != "" {
		r.cur.Notes = append(r.cur.Notes, "ECN marking ["+p.ECN+"] ignored: tcpstated does not do ECN")
	}
	seg.Payload = make([]byte, p.Len)
	for i := range seg.Payload {
		seg.Payload[i] = byte('a' + i%26)
	}
	opts, err := encodeOptions(p.Opts, f.iss, func(ecr uint32) uint32 {
		switch v, ok := f.tsMap[ecr]; {
		case ecr == 0:
			return 0
		case ok:
			if v != ecr {
				r.cur.Notes = append(r.cur.Notes, fmt.Sprintf("TS ecr %d is the val of an earlier > line: sent the engine's actual TSval %d", ecr, v))
			}
			return v
		case f.hasTS:
			if f.lastTSVal != ecr {
				r.cur.Notes = append(r.cur.Notes, fmt.Sprintf("TS ecr %d: sent the engine's most recent TSval %d", ecr, f.lastTSVal))
			}
			return f.lastTSVal
		}
		return ecr
	})
	if err != nil {
		r.failf("%v", err)
		return
	}
	pkt := buildPacket(f.remote, f.local, &seg, opts)
	_, _, tcp, _ := fsm.ParsePacket(pkt)
	sent, _ := fsm.ParseSegment(tcp)
	r.cur.Actual = "sent " + sent.String()
	mark := len(r.cur.Engine)
	if err := r.t.Inject(pkt); err != nil {
		r.failf("the engine refused the packet: %v", err)
		return
	}
	r.drain()
	r.lastIn, r.lastInExpl = ev.Pos.Line, append([]string(nil), r.cur.Engine[mark:]...)
}

// outbound matches a > line against the first emitted, unmatched packet.
func (r *runner) outbound(ev *Event, at, lo, hi time.Duration) {
	p := ev.Packet
	f := r.flow(p.Flow)
	r.cur.Expected = p.body()
	if at > r.now() {
		r.advance(at)
	}
	// Wait for the next emission until the window closes (for "*", as
	// long as the target has something to do).
	if len(r.queue) == 0 {
		until := time.Duration(math.MaxInt64)
		if hi < math.MaxInt64-r.base {
			until = r.base + hi
		}
		r.t.Await(until)
		r.drain()
	}
	if r.checkPending(r.now()); r.failed {
		return
	}
	if len(r.queue) == 0 {
		when := "by " + formatSeconds(hi)
		if hi == math.MaxInt64 {
			when = "ever: no timer is armed"
		}
		r.cur.Actual = "nothing"
		r.failf("expected %s was not emitted %s%s", p.body(), when, r.lastInbound())
		return
	}
	o := r.queue[0]
	r.queue = r.queue[1:]
	r.cur.Actual = o.render() + " at " + formatSeconds(o.t)
	r.cur.Time = seconds(o.t)
	if o.t < lo {
		r.failf("a packet was emitted at %s, before this line's window [%s, %s]: %s%s",
			formatSeconds(o.t), formatSeconds(lo), formatSeconds(hi), o.render(), r.lastInbound())
		return
	}
	fails, notes := comparePacket(p, o, f, r.strict)
	r.cur.Notes = append(r.cur.Notes, notes...)
	if len(fails) > 0 {
		r.failf("%s%s", strings.Join(fails, "; "), r.lastInbound())
		return
	}
	// Remember which TSval the script called what, for later ecr values.
	if o.seg.Options.HasTimestamp {
		for _, opt := range p.Opts {
			if opt.Kind == OptTS {
				f.tsMap[opt.Val] = o.seg.Options.TSVal
			}
		}
	}
	if ev.Time.Kind == TimeExact {
		r.last = at
	} else {
		r.last = o.t
	}
}

// lastInbound is the engine's explanation of the last inbound packet, for
// failure reasons.
func (r *runner) lastInbound() string {
	if r.lastIn == 0 {
		return ""
	}
	if len(r.lastInExpl) == 0 {
		return fmt.Sprintf(" (the engine said nothing about the last inbound packet, line %d)", r.lastIn)
	}
	return fmt.Sprintf(" (the engine on the last inbound packet, line %d: %s)", r.lastIn, strings.Join(r.lastInExpl, "; "))
}

// finish ends the run: a blocking call still pending must return by its
// end time, and every emitted packet must have been expected.
func (r *runner) finish() {
	if b := r.pending; b != nil {
		r.advance(b.end)
		r.cur = &r.rep.Lines[b.idx]
		r.checkPending(b.end + r.h.tolerance + 1)
		if r.failed {
			return
		}
	}
	if len(r.queue) > 0 {
		var ps []string
		for _, o := range r.queue {
			ps = append(ps, o.render()+" at "+formatSeconds(o.t))
		}
		r.rep.Lines = append(r.rep.Lines, LineResult{
			Line: 0, Time: seconds(r.now()), Text: "(end of script)", Kind: KindPacketOut, Status: StatusFail,
			Actual: strings.Join(ps, "; "),
			Reason: fmt.Sprintf("%d unexpected outbound packet(s) by the end of the script: %s%s", len(ps), strings.Join(ps, "; "), r.lastInbound()),
		})
		r.fail(0)
	}
}
