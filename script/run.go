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
	// Defines are the names #ifdef lines see as defined (--define NAME).
	Defines []string
	// Profile is the engine's behaviour profile ("" takes the script's
	// --tcpstated_profile, else rfc); it also defines its OS name for
	// #ifdef lines.
	Profile string
	// End is the end-of-script rule; EndAuto takes the script's
	// --tcpstated_end option, else EndStrict.
	End EndRule
	// Stop, when closed, interrupts a run on a wall-clock target (the
	// kernel): a signal, a timeout. The engine's runs are not interrupted.
	Stop <-chan struct{}
	// LateTolerance widens, on the kernel target only, the end of every
	// timed line's window: a packet or a blocking call's return may come
	// this much later than the script's tolerance allows, never earlier.
	// A kernel on a loaded host sends late (its timers and the runner's
	// reads wait for a CPU) but never early, so lateness up to this bound
	// is the host's scheduling and not the kernel's TCP. Keep it below the
	// shortest timer difference worth seeing: Linux's 40 ms delayed-ACK
	// minimum (TCP_ATO_MIN) against an immediate ACK. 0 (the default) is
	// packetdrill's rule; the engine runs on a virtual clock and ignores it.
	LateTolerance time.Duration
	// Coalesce presents contiguous data segments a target emits at the
	// same instant as the one super-segment a > line expects, as a
	// packetdrill script written on a GSO-capable device sees them (Linux
	// hands such a device one packet of up to 64 KB and lets it segment).
	// It applies when a > line's payload is longer than the first
	// segment waiting to be matched: segments of the same flow that follow
	// it in sequence, at the same time, with the same ACK and no SYN or
	// RST, are joined (PSH and FIN from the last) up to the line's length.
	// Off by default: tcpstated's engine and the kernel target's TUN
	// device (no offloads) emit one packet per MSS.
	Coalesce bool
}

// EndRule says what becomes of packets the target emits after the
// script's last line.
type EndRule uint8

const (
	EndAuto EndRule = iota
	// EndStrict (tcpstated's default) fails the script: every packet the
	// target sent must have been expected by a > line.
	EndStrict
	// EndPacketdrill is packetdrill's rule: the run ends at the last line,
	// and what is sent after it is listed but not judged.
	EndPacketdrill
)

func (e EndRule) String() string {
	switch e {
	case EndStrict:
		return "strict"
	case EndPacketdrill:
		return "packetdrill"
	}
	return "auto"
}

// ParseEndRule parses "strict", "packetdrill" or "" (auto).
func ParseEndRule(s string) (EndRule, error) {
	switch strings.ToLower(s) {
	case "", "auto":
		return EndAuto, nil
	case "strict":
		return EndStrict, nil
	case "packetdrill":
		return EndPacketdrill, nil
	}
	return EndAuto, fmt.Errorf("expected strict or packetdrill, found %q", s)
}

// runner is the state of one run.
type runner struct {
	s         *Script
	h         *header
	t         target.Target
	x         target.Explainer // nil if the target does not explain itself
	strict    bool
	end       EndRule       // the end-of-script rule in force
	base      time.Duration // target time at script time 0
	coalesce  bool          // Options.Coalesce (exchange.go)
	lag       time.Duration // how late the last matched packet left (kernel timers re-arm from it); 0 after an inbound packet
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
	faultNoted bool // the target's fault is in a failure already
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
		s: s, h: s.hdr, t: t, strict: mode == CompareStrict, coalesce: opts.Coalesce, base: t.Now(),
		rep:  &Report{Script: opts.Name, Session: opts.Session, Compare: mode.String()},
		open: map[int]bool{}, listenPort: s.hdr.bindPort, cfgNote: cfgNote,
	}
	r.x, _ = t.(target.Explainer)
	if r.rep.Script == "" {
		r.rep.Script = s.Name
	}
	r.end = opts.End
	if r.end == EndAuto {
		r.end = s.hdr.end
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
		} else if spec, _ := headerOption(o.Name); spec.engine && r.cfgNote != "" {
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
	if f, ok := r.t.(target.Faulter); ok && !r.faultNoted {
		if err := f.Fault(); err != nil {
			if !strings.Contains(msg, err.Error()) {
				msg += " (" + err.Error() + ")"
			}
			r.faultNoted = true
		}
	}
	if r.cur.Reason == "" {
		r.cur.Reason = msg
	} else {
		r.cur.Reason += "; " + msg
	}
}

// lateness is how much later than its window a packet due at script time
// at may come on the kernel target (Options.LateTolerance > 0), never
// earlier: the host's scheduling (LateTolerance itself), the rounding of
// Linux's timer wheel, which fires a timer up to an eighth of its delay
// late (kernel/time/timer.c: each level is 8 times coarser than the one
// below; the delay is taken as the time since the previous line), and
// the lag of the last packet, from which the kernel re-arms its next
// timer (a keep-alive or a retransmission backs off from when it fired).
// packetdrill likewise shifts later relative times by a late packet's
// lateness. A timer that fires early, or later than this by a real
// difference (an RTO of 1 s against 200 ms), still fails.
func (r *runner) lateness(at time.Duration) time.Duration {
	return r.h.late + max(at-r.last, 0)/8 + r.lag
}

// blockLate is lateness for a blocking call's return: the same rule, with
// the call's own duration as the timer's delay.
func (r *runner) blockLate(b *blocked) time.Duration {
	if r.h.late <= 0 {
		return 0
	}
	return r.h.late + max(b.end-b.start, 0)/8 + r.lag
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
	if r.h.late > 0 && ev.Time.Kind != TimeAny && ev.Time.Kind != TimeNone {
		hi += r.lateness(at)
	}
	r.cur.Time = seconds(at)
	if ev.Time.Kind != TimeAny && ev.Time.Kind != TimeNone && at < r.last-tol {
		r.failf("time %s is before the previous event's time %s: script times must not go backwards",
			formatSeconds(at), formatSeconds(r.last))
		return
	}
	if ev.Kind == EventPacketOut {
		if reason := unsupportedPacket(ev.Packet); reason != "" {
			r.skipLine(reason)
			return
		}
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
		if ev.Packet.ICMP != nil && ev.Packet.UDPEncap == "" && ev.Packet.ICMP.UDPEncap == "" {
			r.inboundICMP(ev) // icmp.go
		} else if reason := unsupportedPacket(ev.Packet); reason != "" {
			r.skipLine(reason)
		} else {
			r.inbound(ev)
		}
	case EventSyscall:
		r.syscall(i, ev)
	case EventSkip:
		r.skip(i, ev.Skip)
	}
	if r.cur.Status != StatusFail {
		r.checkPending(at)
	}
}

// unsupportedPacket says why a packet line cannot be run, or "".
func unsupportedPacket(p *Packet) string {
	switch {
	case p.ICMP != nil:
		return "skipped: ICMP input (" + p.ICMP.Type + ") is not supported by the engine yet"
	case p.UDPEncap != "":
		return "skipped: TCP over UDP (/udp(" + p.UDPEncap + ")) is not supported"
	}
	return ""
}

// skip runs a shell command on a target that runs them, and otherwise
// lists the line as skipped.
func (r *runner) skip(idx int, sk *Skip) {
	if p, ok := r.t.(preparer); ok {
		if note, ok := p.Prepared(idx); ok {
			if strings.HasPrefix(note, "skipped:") {
				r.skipLine(note)
			} else {
				r.cur.Notes = append(r.cur.Notes, note)
			}
			return
		}
	}
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
	switch {
	case sk.Kind == SkipShell && sysctlSkip(sk.Body) != "":
		r.skipLine(sysctlSkip(sk.Body))
	case sk.Kind == SkipShell:
		r.skipLine("skipped: shell commands are not run by tcpstated")
	default:
		r.skipLine("skipped: python blocks are not run by tcpstated")
	}
}

// preparer is a target that applied some lines before the run (the
// engine target's fixed configuration): Prepared tells what line idx did.
type preparer interface {
	Prepared(idx int) (note string, ok bool)
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
	opts := map[string]string{}
	for _, o := range s.Options {
		opts[o.Name] = o.Value
	}
	return target.Setup{Local: s.hdr.localIP, Remote: s.hdr.remoteIP, Tolerance: s.hdr.tolerance, Options: opts}, nil
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
			r.failf("the target emitted a packet that does not decode (% x): %v", o.data[:min(len(o.data), 40)], err)
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

// finish ends the run: a blocking call still pending must return by its
// end time, and every emitted packet must have been expected.
func (r *runner) finish() {
	if b := r.pending; b != nil {
		r.advance(b.end)
		r.cur = &r.rep.Lines[b.idx]
		r.checkPending(b.end + r.h.tolerance + r.blockLate(b) + 1)
		if r.failed {
			return
		}
	}
	if len(r.queue) > 0 {
		var ps []string
		for _, o := range r.queue {
			ps = append(ps, o.render()+" at "+formatSeconds(o.t))
		}
		if r.end == EndPacketdrill {
			r.rep.Lines = append(r.rep.Lines, LineResult{
				Line: 0, Time: seconds(r.now()), Text: "(end of script)", Kind: KindPacketOut, Status: StatusPass,
				Actual: strings.Join(ps, "; "),
				Notes: []string{fmt.Sprintf("not judged (packetdrill's end-of-script rule, --tcpstated_end=packetdrill): %d outbound packet(s) after the last line: %s",
					len(ps), strings.Join(ps, "; "))},
			})
			return
		}
		r.rep.Lines = append(r.rep.Lines, LineResult{
			Line: 0, Time: seconds(r.now()), Text: "(end of script)", Kind: KindPacketOut, Status: StatusFail,
			Actual: strings.Join(ps, "; "),
			Reason: fmt.Sprintf("%d unexpected outbound packet(s) by the end of the script: %s%s", len(ps), strings.Join(ps, "; "), r.lastInbound()),
		})
		r.fail(0)
	}
}
