package fsm

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// FuzzEngine drives a server engine (with a listener) and a client engine
// with a fuzz-chosen sequence of operations: packets the other side emitted,
// delivered, dropped, duplicated or mutated; synthetic segments built near
// the connection's real sequence numbers (so every state and every step of
// RFC 9293 §3.10.7 is reachable); clock advances; and application calls.
// After every operation both engines must satisfy checkEngineInvariants,
// and every packet they emit must parse and carry a valid checksum.
//
// The input: byte 0 selects the configuration (fuzzConfig), then each
// operation is an opcode byte and its arguments (fuzzOp*); a short input
// reads as zeros. The seed corpus in testdata/fuzz/FuzzEngine is written by
// TestFuzzEngineCorpus (TCPSTATED_WRITE_CORPUS=1) and reaches all 11 states.
//
//	go test -run '^$' -fuzz '^FuzzEngine$' -fuzztime 60s ./fsm/

const (
	fuzzMaxOps    = 4096
	fuzzMaxPkts   = 20000 // packets delivered per input, to bound its run time
	fuzzMaxQueue  = 256   // packets held per direction
	fuzzPorts     = 4     // client ports 40000..40003
	fuzzTSVAdvice = 1000  // synthetic TSvals stay within this of the sender's last one
)

// Opcodes (the byte modulo fuzzNumOps).
const (
	fuzzOpConnect   = iota // port
	fuzzOpPump             // deliver everything both ways until quiet
	fuzzOpToServer         // mode, [mutation]: the oldest packet for the server
	fuzzOpToClient         // mode, [mutation]: the oldest packet for the client
	fuzzOpSynServer        // port, flags, seqSel, seqDelta:2, ackSel, ackDelta:2, window:2, opts, len
	fuzzOpSynClient        // the same, from the server to the client
	fuzzOpAdvance          // amount
	fuzzOpClientApp        // call, port, arg
	fuzzOpServerApp        // call, port, arg
	fuzzOpGarbage          // len, bytes: raw bytes to one engine
	fuzzNumOps
)

// Delivery modes of fuzzOpToServer/fuzzOpToClient (the byte modulo 5).
const (
	fuzzDeliver = iota
	fuzzDrop
	fuzzDuplicate // deliver it and keep it queued
	fuzzMutate    // what, value:4
	fuzzCorrupt   // flip a byte: a bad checksum
)

var (
	fuzzCliV4 = netip.MustParseAddr("10.0.0.2")
	fuzzSrvV4 = netip.MustParseAddr("10.0.0.1")
	fuzzCliV6 = netip.MustParseAddr("fd00::2")
	fuzzSrvV6 = netip.MustParseAddr("fd00::1")
)

// fuzzConfig maps the first input byte to the two engines' configuration.
func fuzzConfig(b byte) (cli, srv Config, v6 bool) {
	base := Config{MSL: time.Second, SynQueue: 4, AcceptQueue: 2, RetainClosed: 16}
	base.Secret[0] = 1
	if b&2 != 0 {
		base.NoTimestamps = true
	}
	if b&4 != 0 {
		base.RecvBuffer = 4096
	}
	if b&8 != 0 {
		base.NoDelayedAck = true
	}
	if b&16 != 0 {
		base.ISNMode, base.FixedISN = ISNFixed, 0xfffffff0
	}
	if b&64 != 0 {
		base.NoSACK = true
	}
	if b&128 != 0 {
		base.NoNagle = true
	}
	cli, srv = base, base
	cli.Secret[0] = 2
	if b&1 != 0 {
		srv.SynCookies, srv.SynQueue = true, 1
	}
	return cli, srv, b&32 != 0
}

type fuzzReader struct{ b []byte }

func (r *fuzzReader) u8() byte {
	if len(r.b) == 0 {
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *fuzzReader) u16() uint16 { return uint16(r.u8())<<8 | uint16(r.u8()) }

func (r *fuzzReader) u32() uint32 { return uint32(r.u16())<<16 | uint32(r.u16()) }

// fuzzSide is one engine and the packets addressed to it.
type fuzzSide struct {
	name   string
	e      *Engine
	addr   netip.Addr
	queue  [][]byte // emitted by the other side, not yet delivered
	tsVal  uint32   // the last TSval this side sent (for synthetic segments)
	states [TimeWait + 1]bool
	codes  map[Code]bool // explanations seen (only when recording for the corpus test)
}

type fuzzRun struct {
	cli, srv *fuzzSide
	lid      EndpointID
	now      time.Duration
	v6       bool
	buf      []byte // application reads and writes
	pkts     int    // packets delivered so far
}

// fuzzFail is a broken invariant, raised by panic and turned into an error.
type fuzzFail struct{ err error }

func (f *fuzzRun) failf(format string, args ...any) {
	panic(fuzzFail{fmt.Errorf(format, args...)})
}

func (f *fuzzRun) other(s *fuzzSide) *fuzzSide {
	if s == f.cli {
		return f.srv
	}
	return f.cli
}

// drain takes a side's outputs: checks each packet and queues it for the
// other side.
func (f *fuzzRun) drain(s *fuzzSide) {
	r := s.e.Ready()
	o := f.other(s)
	for i := range r.Packets {
		p := &r.Packets[i]
		if err := propCheckPacket(p); err != nil {
			f.failf("%s: %v", s.name, err)
		}
		if p.Segment.Options.HasTimestamp {
			s.tsVal = p.Segment.Options.TSVal
		}
		if len(o.queue) >= fuzzMaxQueue {
			o.queue = o.queue[1:]
		}
		o.queue = append(o.queue, bytes.Clone(p.Data))
	}
	if s.codes != nil {
		for _, x := range r.Explanations {
			s.codes[x.Code] = true
		}
	}
	for _, tr := range r.Transitions {
		if tr.To > TimeWait || tr.From > TimeWait {
			f.failf("%s: transition %d -> %d out of range", s.name, tr.From, tr.To)
		}
		s.states[tr.To] = true
	}
}

func (f *fuzzRun) check() {
	for _, s := range []*fuzzSide{f.cli, f.srv} {
		f.drain(s)
		if err := checkEngineInvariants(s.e); err != nil {
			f.failf("%s: %v", s.name, err)
		}
	}
}

func (f *fuzzRun) cliPort(i byte) netip.AddrPort {
	return netip.AddrPortFrom(f.cli.addr, 40000+uint16(i%fuzzPorts))
}

func (f *fuzzRun) srvPort() netip.AddrPort { return netip.AddrPortFrom(f.srv.addr, 80) }

// conn returns the snapshot of side s's connection with client port i.
func (f *fuzzRun) conn(s *fuzzSide, i byte) (EndpointInfo, bool) {
	t := Tuple{Local: f.srvPort(), Remote: f.cliPort(i)}
	if s == f.cli {
		t = Tuple{Local: f.cliPort(i), Remote: f.srvPort()}
	}
	id, ok := s.e.Lookup(t)
	if !ok {
		return EndpointInfo{}, false
	}
	return s.e.Endpoint(id)
}

func (f *fuzzRun) deliver(to *fuzzSide, pkt []byte) {
	f.pkts++
	_ = to.e.Deliver(pkt) // a malformed packet is an error, and changes nothing
}

// deliverQueued handles the oldest packet queued for side to.
func (f *fuzzRun) deliverQueued(to *fuzzSide, r *fuzzReader) {
	mode := r.u8() % 5
	if len(to.queue) == 0 {
		return
	}
	pkt := to.queue[0]
	switch mode {
	case fuzzDeliver:
		to.queue = to.queue[1:]
		f.deliver(to, pkt)
	case fuzzDrop:
		to.queue = to.queue[1:]
	case fuzzDuplicate:
		f.deliver(to, bytes.Clone(pkt))
	case fuzzMutate:
		to.queue = to.queue[1:]
		what, v := r.u8(), r.u32()
		src, dst, tcp, err := ParsePacket(pkt)
		if err != nil {
			f.failf("queued packet does not parse: %v", err)
		}
		seg, err := ParseSegment(tcp)
		if err != nil {
			f.failf("queued segment does not parse: %v", err)
		}
		switch what % 7 {
		case 0:
			seg.Flags ^= Flags(v)
		case 1:
			seg.Seq += Seq(int16(v))
		case 2:
			seg.Ack += Seq(int16(v))
		case 3:
			seg.Window = uint16(v)
		case 4:
			seg.Payload = seg.Payload[:min(len(seg.Payload), int(v%1500))]
		case 5:
			seg.Options.HasTimestamp = false
		case 6:
			seg.Options.TSVal -= v % 100000 // an old timestamp: PAWS
		}
		f.deliver(to, AppendPacket(nil, src, dst, &seg))
	case fuzzCorrupt:
		to.queue = to.queue[1:]
		c := bytes.Clone(pkt)
		i := int(r.u16()) % len(c)
		c[i] ^= 1 + r.u8()%255
		f.deliver(to, c)
	}
}

// synthetic builds a segment from side from to side to on the connection of
// client port i, with sequence and acknowledgment numbers chosen relative to
// the receiver's TCB, and delivers it.
func (f *fuzzRun) synthetic(from, to *fuzzSide, r *fuzzReader) {
	port, flags := r.u8(), Flags(r.u8())
	seqSel, seqDelta := r.u8(), int16(r.u16())
	ackSel, ackDelta := r.u8(), int16(r.u16())
	window, opts, n := r.u16(), r.u8(), r.u8()
	rcv, _ := f.conn(to, port)
	snd, _ := f.conn(from, port)
	var seq, ack Seq
	switch seqSel % 4 {
	case 0:
		seq = rcv.RcvNxt
	case 1:
		seq = rcv.IRS + 1
	case 2:
		seq = snd.SndNxt
	}
	switch ackSel % 4 {
	case 0:
		ack = rcv.SndNxt
	case 1:
		ack = rcv.SndUna
	case 2:
		ack = rcv.ISS + 1
	}
	seg := Segment{Flags: flags, Seq: seq + Seq(seqDelta), Ack: ack + Seq(ackDelta), Window: window}
	if from == f.cli {
		seg.SrcPort, seg.DstPort = f.cliPort(port).Port(), 80
	} else {
		seg.SrcPort, seg.DstPort = 80, f.cliPort(port).Port()
	}
	o := &seg.Options
	if opts&1 != 0 {
		o.MSS, o.HasMSS = uint16(64+int(n)*8), true
	}
	if opts&2 != 0 {
		o.WScale, o.HasWScale = opts>>5, true
	}
	if opts&4 != 0 {
		o.SACKPermitted = true
	}
	if opts&8 != 0 {
		o.HasTimestamp = true
		o.TSVal = from.tsVal + uint32(int32(seqDelta)%fuzzTSVAdvice)
		o.TSEcr = to.tsVal
	}
	if opts&16 != 0 {
		o.NumSACK = 1
		o.SACK[0] = SACKBlock{ack + 100, ack + 100 + Seq(n)}
	}
	if n > 0 {
		seg.Payload = bytes.Repeat([]byte{n}, int(n)*int(1+opts>>6))
	}
	f.deliver(to, AppendPacket(nil, from.addr, to.addr, &seg))
}

func (f *fuzzRun) advance(amt byte) {
	if amt == 0 {
		next := time.Duration(-1)
		for _, s := range []*fuzzSide{f.cli, f.srv} {
			if d, ok := s.e.NextDeadline(); ok && (next < 0 || d < next) {
				next = d
			}
		}
		if next < 0 {
			return
		}
		f.now = max(f.now, next)
	} else {
		units := [...]time.Duration{time.Millisecond, 10 * time.Millisecond, 100 * time.Millisecond, time.Second,
			10 * time.Second, time.Minute, time.Millisecond, 100 * time.Millisecond}
		f.now += time.Duration(amt%32+1) * units[amt>>5]
	}
	f.cli.e.AdvanceTo(f.now)
	f.drain(f.cli)
	f.srv.e.AdvanceTo(f.now)
	f.drain(f.srv)
}

func (f *fuzzRun) pump() {
	for range 64 {
		if len(f.cli.queue)+len(f.srv.queue) == 0 {
			return
		}
		for _, s := range []*fuzzSide{f.srv, f.cli} {
			q := s.queue
			s.queue = nil
			for _, pkt := range q {
				f.deliver(s, pkt)
				f.drain(s)
			}
		}
	}
}

func (f *fuzzRun) app(s *fuzzSide, call, port, arg byte) {
	if s == f.srv && call%7 == 6 {
		_ = f.srv.e.Close(f.lid) // stop listening
		return
	}
	if s == f.srv && call%7 == 0 {
		_, _ = f.srv.e.Accept(f.lid)
		return
	}
	in, ok := f.conn(s, port)
	id := in.ID
	if !ok {
		// A connection that has left the 4-tuple table may still be
		// visible in CLOSED: call it anyway, by ID, to exercise that path.
		id = EndpointID(arg%8 + 1)
	}
	n := int(arg) * 64
	switch call % 7 {
	case 1:
		_, _ = s.e.Send(id, f.buf[:n])
	case 2:
		_, _ = s.e.Receive(id, f.buf[:n+1])
	case 3:
		_ = s.e.Shutdown(id)
	case 4:
		_ = s.e.Close(id)
	case 5:
		_ = s.e.Abort(id)
	case 0, 6: // the client's accept and listener close: a send of one byte
		_, _ = s.e.Send(id, f.buf[:1])
	}
}

// fuzzEngineRun interprets one input. It returns the broken invariant, if
// any, and the states each side reached.
func fuzzEngineRun(data []byte, recordCodes bool) (f *fuzzRun, err error) {
	r := &fuzzReader{data}
	ccfg, scfg, v6 := fuzzConfig(r.u8())
	f = &fuzzRun{v6: v6, buf: make([]byte, 1<<15)}
	ca, sa := fuzzCliV4, fuzzSrvV4
	if v6 {
		ca, sa = fuzzCliV6, fuzzSrvV6
	}
	f.cli = &fuzzSide{name: "client", e: New(ccfg), addr: ca}
	f.srv = &fuzzSide{name: "server", e: New(scfg), addr: sa}
	if recordCodes {
		f.cli.codes, f.srv.codes = map[Code]bool{}, map[Code]bool{}
	}
	defer func() {
		if p := recover(); p != nil {
			ff, ok := p.(fuzzFail)
			if !ok {
				panic(p)
			}
			err = ff.err
		}
	}()
	lid, lerr := f.srv.e.Listen(f.srvPort(), 0)
	if lerr != nil {
		return f, lerr
	}
	f.lid = lid
	f.check()
	for ops := 0; len(r.b) > 0 && ops < fuzzMaxOps && f.pkts < fuzzMaxPkts; ops++ {
		switch r.u8() % fuzzNumOps {
		case fuzzOpConnect:
			_, _ = f.cli.e.Connect(f.cliPort(r.u8()), f.srvPort())
		case fuzzOpPump:
			f.pump()
		case fuzzOpToServer:
			f.deliverQueued(f.srv, r)
		case fuzzOpToClient:
			f.deliverQueued(f.cli, r)
		case fuzzOpSynServer:
			f.synthetic(f.cli, f.srv, r)
		case fuzzOpSynClient:
			f.synthetic(f.srv, f.cli, r)
		case fuzzOpAdvance:
			f.advance(r.u8())
		case fuzzOpClientApp:
			f.app(f.cli, r.u8(), r.u8(), r.u8())
		case fuzzOpServerApp:
			f.app(f.srv, r.u8(), r.u8(), r.u8())
		case fuzzOpGarbage:
			n := int(r.u8())
			b := r.b[:min(n, len(r.b))]
			r.b = r.b[len(b):]
			to := f.srv
			if n%2 == 1 {
				to = f.cli
			}
			f.deliver(to, bytes.Clone(b))
		}
		f.check()
	}
	return f, nil
}

func FuzzEngine(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := fuzzEngineRun(data, false); err != nil {
			t.Fatal(err)
		}
	})
}

// fuzzProg writes FuzzEngine inputs operation by operation.
type fuzzProg struct{ b []byte }

func newFuzzProg(config byte) *fuzzProg { return &fuzzProg{b: []byte{config}} }

func (p *fuzzProg) op(code byte, args ...byte) *fuzzProg {
	p.b = append(append(p.b, code), args...)
	return p
}

func (p *fuzzProg) connect(port byte) *fuzzProg { return p.op(fuzzOpConnect, port) }
func (p *fuzzProg) pump() *fuzzProg             { return p.op(fuzzOpPump) }
func (p *fuzzProg) toServer(mode byte, args ...byte) *fuzzProg {
	return p.op(fuzzOpToServer, append([]byte{mode}, args...)...)
}
func (p *fuzzProg) advance(amt byte) *fuzzProg { return p.op(fuzzOpAdvance, amt) }
func (p *fuzzProg) cli(call, port, arg byte) *fuzzProg {
	return p.op(fuzzOpClientApp, call, port, arg)
}
func (p *fuzzProg) srv(call, port, arg byte) *fuzzProg {
	return p.op(fuzzOpServerApp, call, port, arg)
}

// synth adds a synthetic segment (to the server if toServer, else to the
// client) on client port 0 with seq = base(seqSel)+seqDelta and ack =
// base(ackSel)+ackDelta.
func (p *fuzzProg) synth(toServer bool, flags Flags, seqSel byte, seqDelta int16, ackSel byte, ackDelta int16, window uint16, opts, n byte) *fuzzProg {
	code := byte(fuzzOpSynClient)
	if toServer {
		code = fuzzOpSynServer
	}
	b := []byte{0, byte(flags), seqSel}
	b = binary.BigEndian.AppendUint16(b, uint16(seqDelta))
	b = append(b, ackSel)
	b = binary.BigEndian.AppendUint16(b, uint16(ackDelta))
	b = binary.BigEndian.AppendUint16(b, window)
	b = append(b, opts, n)
	return p.op(code, b...)
}

// Application calls (the call byte of cli/srv).
const (
	fuzzAccept   = 0
	fuzzSend     = 1
	fuzzReceive  = 2
	fuzzShutdown = 3
	fuzzClose    = 4
	fuzzAbort    = 5
)

// established: a connection on client port 0, accepted.
func (p *fuzzProg) established() *fuzzProg {
	return p.connect(0).pump().srv(fuzzAccept, 0, 0)
}

// fuzzCorpus is the seed corpus: each entry names the state (or path) it
// is for, and the state it must reach.
func fuzzCorpus() []struct {
	name  string
	state State
	code  Code // an explanation the entry must produce, if set
	data  []byte
} {
	type entry = struct {
		name  string
		state State
		code  Code
		data  []byte
	}
	const sel0 = 0 // seqSel/ackSel: RCV.NXT / SND.NXT of the receiver
	return []entry{
		{"listen", Listen, CodeAppListen, newFuzzProg(0).b},
		{"syn-sent", SynSent, CodeAppConnect, newFuzzProg(0).connect(0).b},
		{"syn-received", SynReceived, CodeListenSynAccepted, newFuzzProg(0).connect(0).toServer(fuzzDeliver).b},
		{"established-data", Established, CodeDelayedAckSent, newFuzzProg(0).established().cli(fuzzSend, 0, 40).srv(fuzzSend, 0, 20).pump().
			srv(fuzzReceive, 0, 255).cli(fuzzReceive, 0, 255).pump().advance(0x20 | 30).b},
		{"fin-wait-1", FinWait1, CodeFinSent, newFuzzProg(0).established().cli(fuzzClose, 0, 0).b},
		{"fin-wait-2", FinWait2, CodeFinAcked, newFuzzProg(0).established().cli(fuzzShutdown, 0, 0).pump().b},
		{"close-wait", CloseWait, CodeDataAfterCloseReset, newFuzzProg(8).established().cli(fuzzClose, 0, 0).pump().srv(fuzzSend, 0, 10).pump().b},
		{"closing", Closing, CodeFinReceived, newFuzzProg(0).established().cli(fuzzClose, 0, 0).srv(fuzzClose, 0, 0).pump().b},
		{"last-ack", LastAck, CodeFinSent, newFuzzProg(0).established().cli(fuzzClose, 0, 0).pump().srv(fuzzClose, 0, 0).b},
		{"time-wait", TimeWait, CodeFinReceived, newFuzzProg(0).established().cli(fuzzClose, 0, 0).pump().srv(fuzzClose, 0, 0).pump().b},
		{"closed-after-time-wait", Closed, CodeTimeWaitExpired, newFuzzProg(16).established().srv(fuzzClose, 0, 0).pump().cli(fuzzClose, 0, 0).pump().
			advance(0x60 | 3).b},
		{"reset-by-abort", Closed, CodeRstReset, newFuzzProg(0).established().cli(fuzzSend, 0, 4).cli(fuzzAbort, 0, 0).pump().srv(fuzzReceive, 0, 1).b},
		{"syn-cookie", Established, CodeSynCookieAccepted, newFuzzProg(1).connect(1).toServer(fuzzDeliver).connect(0).pump().srv(fuzzAccept, 0, 0).
			srv(fuzzAccept, 0, 0).cli(fuzzSend, 0, 3).pump().b},
		{"zero-window-probe", Established, CodePersistProbe, newFuzzProg(4|8).established().cli(fuzzSend, 0, 200).pump().advance(0x60|1).pump().
			advance(0x60|3).pump().srv(fuzzReceive, 0, 255).pump().b},
		{"loss-and-retransmit", Established, CodeSACKRecovery, newFuzzProg(0x80).established().cli(fuzzSend, 0, 100).toServer(fuzzDrop).
			toServer(fuzzDuplicate).toServer(fuzzMutate, 1, 0, 0, 0, 200).pump().advance(0).pump().advance(0).pump().b},
		{"simultaneous-open", SynReceived, CodeSynSentSimultaneousOpen, newFuzzProg(0).connect(0).
			synth(false, FlagSYN, 3, 1000, 3, 0, 1000, 1, 0).b},
		{"rst-and-syn-challenges", Closed, CodeSynChallengeAck, newFuzzProg(2).established().
			synth(true, FlagRST, sel0, 5, sel0, 0, 0, 0, 0).
			synth(true, FlagSYN, sel0, 0, sel0, 0, 0, 0, 0).
			synth(true, FlagACK, sel0, 0, sel0, 1000, 100, 0, 10).
			synth(true, FlagRST, sel0, 0, sel0, 0, 0, 0, 0).pump().b},
		{"garbage", Listen, CodeNone, newFuzzProg(32).op(fuzzOpGarbage, 20, 0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1).b},
	}
}

// TestFuzzEngineCorpus checks that the committed seed corpus is current and
// that each entry reaches its state (together: all 11), with every
// invariant holding. TCPSTATED_WRITE_CORPUS=1 rewrites the files.
func TestFuzzEngineCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzEngine")
	write := os.Getenv("TCPSTATED_WRITE_CORPUS") != ""
	if write {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var reached [TimeWait + 1]bool
	for _, c := range fuzzCorpus() {
		f, err := fuzzEngineRun(c.data, true)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		reached[Listen] = true
		states := f.cli.states
		for i, s := range f.srv.states {
			states[i] = states[i] || s
		}
		for i, s := range states {
			reached[i] = reached[i] || s
		}
		if !states[c.state] && c.state != Listen {
			t.Errorf("%s: never reached %s", c.name, c.state)
		}
		if c.code != CodeNone && !f.cli.codes[c.code] && !f.srv.codes[c.code] {
			t.Errorf("%s: no %s explanation", c.name, c.code)
		}
		file := filepath.Join(dir, c.name)
		enc := []byte("go test fuzz v1\n[]byte(" + strconv.Quote(string(c.data)) + ")\n")
		if write {
			if err := os.WriteFile(file, enc, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if got, err := os.ReadFile(file); err != nil || !bytes.Equal(got, enc) {
			t.Errorf("%s: %s is missing or stale: run TCPSTATED_WRITE_CORPUS=1 go test -run TestFuzzEngineCorpus ./fsm/", c.name, file)
		}
	}
	for st, ok := range reached {
		if !ok {
			t.Errorf("no corpus entry reaches %s", State(st))
		}
	}
}
