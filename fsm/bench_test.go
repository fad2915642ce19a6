package fsm

import (
	"net/netip"
	"runtime"
	"testing"
	"time"
)

// Engine benchmarks and the memory and allocation tests behind
// docs/PERFORMANCE.md (issue 2, "What must show"). `make bench-engine` runs
// the benchmarks; the two tests run with the ordinary unit tests.
//
//	BenchmarkBaseline             decode a 20-byte header + 4-tuple map lookup + encode a bare ACK
//	BenchmarkDataSegments/64B     in-order 64-byte segments into an ESTABLISHED receiver
//	BenchmarkDataSegments/1460B   the same with 1460-byte segments (b.SetBytes: MB/s of payload)
//	BenchmarkLifecycle            handshake, one segment each way, close, TIME-WAIT expiry
//	BenchmarkIdleConnections100k  heap per idle ESTABLISHED connection, per engine

var (
	benchCli = netip.MustParseAddrPort("10.1.0.2:40000")
	benchSrv = netip.MustParseAddrPort("10.1.0.1:80")
)

// benchRecvEvery is how often (in segments) the receiving application
// calls Receive in the data benchmarks; it reads everything readable.
const benchRecvEvery = 16

// benchPump moves packets between two engines until neither emits any.
// Packets are delivered straight from Ready's memory: a batch stays valid
// until the next input to the engine that emitted it, and each batch is
// fully delivered to the other engine before that happens.
func benchPump(tb testing.TB, a, b *Engine) {
	for range 1000 {
		ra := a.Ready()
		for i := range ra.Packets {
			if err := b.Deliver(ra.Packets[i].Data); err != nil {
				tb.Fatal(err)
			}
		}
		rb := b.Ready()
		for i := range rb.Packets {
			if err := a.Deliver(rb.Packets[i].Data); err != nil {
				tb.Fatal(err)
			}
		}
		if len(ra.Packets) == 0 && len(rb.Packets) == 0 {
			return
		}
	}
	tb.Fatal("benchPump: no quiescence")
}

// benchStream is an ESTABLISHED receiver fed in-order data segments that
// were encoded ahead of time, as the peer (or the NIC) would hand them over.
type benchStream struct {
	tb       testing.TB
	rx       *Engine
	rxID     EndpointID
	src, dst netip.Addr
	tmpl     Segment // a data segment as the peer engine emitted it
	next     Seq     // SEG.SEQ of the next segment to encode
	ring     [][]byte
	pos      int
	buf      []byte // the receiving application's read buffer
	n        int    // segments delivered
	acks     int    // packets the receiver emitted
	read     int    // bytes the application received
}

// newBenchStream sets up a connection between two engines with cfg (both
// sides), lets the client engine emit one data segment of size bytes to
// serve as the template, and pre-encodes ringLen segments.
func newBenchStream(tb testing.TB, cfg Config, size, ringLen int) *benchStream {
	tx, rx := New(cfg), New(cfg)
	l, err := rx.Listen(benchSrv, 0)
	if err != nil {
		tb.Fatal(err)
	}
	cid, err := tx.Connect(benchCli, benchSrv)
	if err != nil {
		tb.Fatal(err)
	}
	benchPump(tb, tx, rx)
	sid, err := rx.Accept(l)
	if err != nil {
		tb.Fatal(err)
	}
	rx.Ready()
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(i*7 + 1)
	}
	if n, err := tx.Send(cid, payload); err != nil || n != size {
		tb.Fatalf("Send = %d, %v", n, err)
	}
	r := tx.Ready()
	if len(r.Packets) != 1 || len(r.Packets[0].Segment.Payload) != size {
		tb.Fatalf("the sender emitted %d packets for one %d-byte write", len(r.Packets), size)
	}
	p := r.Packets[0]
	s := &benchStream{
		tb: tb, rx: rx, rxID: sid, src: p.Src, dst: p.Dst,
		tmpl: p.Segment, next: p.Segment.Seq,
		ring: make([][]byte, ringLen), buf: make([]byte, 1<<17),
	}
	s.tmpl.Payload = payload
	for i := range s.ring {
		s.ring[i] = make([]byte, 0, PacketLen(s.src, &s.tmpl))
	}
	s.refill()
	return s
}

// refill encodes the next len(ring) segments in sequence-number order.
func (s *benchStream) refill() {
	seg := s.tmpl
	for i := range s.ring {
		seg.Seq = s.next
		s.ring[i] = AppendPacket(s.ring[i][:0], s.src, s.dst, &seg)
		s.next = s.next.Add(Size(len(seg.Payload)))
	}
	s.pos = 0
}

// step delivers one segment, drains Ready and, every benchRecvEvery
// segments, lets the application read everything.
func (s *benchStream) step() {
	if err := s.rx.Deliver(s.ring[s.pos]); err != nil {
		s.tb.Fatal(err)
	}
	s.pos++
	s.n++
	s.acks += len(s.rx.Ready().Packets)
	if s.n%benchRecvEvery == 0 {
		for {
			k, err := s.rx.Receive(s.rxID, s.buf)
			if err != nil {
				s.tb.Fatal(err)
			}
			if k == 0 {
				break
			}
			s.read += k
		}
		s.acks += len(s.rx.Ready().Packets)
	}
}

// check verifies that every delivered byte was accepted and read.
func (s *benchStream) check() {
	want := s.n / benchRecvEvery * benchRecvEvery * len(s.tmpl.Payload)
	if s.read != want {
		s.tb.Fatalf("the application read %d bytes of %d segments, want %d: segments were dropped", s.read, s.n, want)
	}
}

func BenchmarkDataSegments(b *testing.B) {
	for _, c := range []struct {
		name       string
		size, ring int
	}{
		{"64B", 64, 4096},
		{"1460B", 1460, 512},
	} {
		b.Run(c.name, func(b *testing.B) {
			cfg := Config{}
			if c.size == 1460 {
				// A full 1460-byte MSS segment: with timestamps on, Linux
				// would carry 1448 bytes in it.
				cfg.NoTimestamps = true
			}
			s := newBenchStream(b, cfg, c.size, c.ring)
			s.run(b, c.size)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "segs/s")
			b.ReportMetric(float64(s.acks)/float64(b.N), "acks/seg")
		})
	}
}

// TestSteadyStateZeroAllocs checks that the small-segment path does not
// allocate once warm: each run delivers 256 segments (with the ACKs the
// receiver emits and 16 Receive calls), so a single allocation anywhere in
// it fails the test.
func TestSteadyStateZeroAllocs(t *testing.T) {
	s := newBenchStream(t, Config{}, 64, 256)
	run := func() {
		for range len(s.ring) {
			if s.pos == len(s.ring) {
				s.refill() // reuses the ring's memory
			}
			s.step()
		}
	}
	for range 8 {
		run()
	}
	if n := testing.AllocsPerRun(20, run); n != 0 {
		t.Fatalf("%v allocations per 256 segments in steady state, want 0", n)
	}
	s.check()
	if s.acks == 0 {
		t.Fatal("the receiver never acknowledged")
	}
}

// BenchmarkLifecycle runs whole connections between two engines: connect,
// the three-way handshake, accept, one 64-byte segment each way, close from
// the client (which goes through TIME-WAIT), close from the server, and the
// client's TIME-WAIT expiry via AdvanceTo. RetainClosed = -1, so both
// engines forget closed endpoints and end each iteration empty.
func BenchmarkLifecycle(b *testing.B) {
	cfg := Config{RetainClosed: -1}
	cli, srv := New(cfg), New(cfg)
	l, err := srv.Listen(benchSrv, 0)
	if err != nil {
		b.Fatal(err)
	}
	msg := make([]byte, 64)
	buf := make([]byte, 256)
	now := time.Duration(0)
	wait := 2*cli.Config().MSL + time.Millisecond
	life := func(i int) {
		local := netip.AddrPortFrom(benchCli.Addr(), uint16(1024+i%60000))
		c, err := cli.Connect(local, benchSrv)
		if err != nil {
			b.Fatal(err)
		}
		benchPump(b, cli, srv)
		s, err := srv.Accept(l)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := cli.Send(c, msg); err != nil {
			b.Fatal(err)
		}
		benchPump(b, cli, srv)
		if n, _ := srv.Receive(s, buf); n != len(msg) {
			b.Fatalf("server received %d bytes", n)
		}
		if _, err := srv.Send(s, msg); err != nil {
			b.Fatal(err)
		}
		benchPump(b, cli, srv)
		if n, _ := cli.Receive(c, buf); n != len(msg) {
			b.Fatalf("client received %d bytes", n)
		}
		if err := cli.Close(c); err != nil {
			b.Fatal(err)
		}
		benchPump(b, cli, srv)
		if err := srv.Close(s); err != nil {
			b.Fatal(err)
		}
		benchPump(b, cli, srv)
		now += wait
		cli.AdvanceTo(now)
		srv.AdvanceTo(now)
		cli.Ready()
		srv.Ready()
	}
	for i := range 100 {
		life(i)
	}
	if len(cli.Endpoints()) != 0 || len(srv.Endpoints()) != 1 {
		b.Fatalf("after the warm-up: %d client endpoints, %d server endpoints (want 0 and the listener)",
			len(cli.Endpoints()), len(srv.Endpoints()))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		life(i)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "conns/s")
	if len(cli.Endpoints()) != 0 || len(srv.Endpoints()) != 1 {
		b.Fatalf("%d client endpoints, %d server endpoints left (want 0 and the listener)",
			len(cli.Endpoints()), len(srv.Endpoints()))
	}
}

// benchIdle opens n connections from a client engine to a server engine,
// accepts them all and returns the heap bytes per connection each engine
// holds once they are idle in ESTABLISHED. Both engines start with their
// listener (server) and nothing else; the heap is measured with
// runtime.ReadMemStats after runtime.GC: before, with both engines, and
// after dropping the client engine.
func benchIdle(tb testing.TB, n int) (cliPer, srvPer float64) {
	srv := New(Config{})
	l, err := srv.Listen(benchSrv, 0)
	if err != nil {
		tb.Fatal(err)
	}
	// The client engine is only reachable through cell, so clearing the
	// cell makes it garbage whatever the stack frame keeps.
	cell := new(*Engine)
	base := benchHeap()
	benchIdleOpen(tb, cell, srv, l, n)
	both := benchHeap()
	runtime.KeepAlive(*cell) // live while measured
	*cell = nil
	srvOnly := benchHeap()
	runtime.KeepAlive(srv)
	return float64(both-srvOnly) / float64(n), float64(srvOnly-base) / float64(n)
}

func benchIdleOpen(tb testing.TB, cell **Engine, srv *Engine, l EndpointID, n int) {
	cli := New(Config{})
	*cell = cli
	for i := range n {
		// 50000 ports per client address.
		a := benchCli.Addr().As4()
		a[2] += byte(i / 50000)
		local := netip.AddrPortFrom(netip.AddrFrom4(a), uint16(10000+i%50000))
		if _, err := cli.Connect(local, benchSrv); err != nil {
			tb.Fatal(err)
		}
		benchPump(tb, cli, srv)
		if _, err := srv.Accept(l); err != nil {
			tb.Fatal(err)
		}
		srv.Ready()
	}
	for _, e := range []*Engine{cli, srv} {
		if d, ok := e.NextDeadline(); ok {
			tb.Fatalf("an idle connection has a timer armed at %v", d)
		}
	}
	if got := len(cli.Endpoints()); got != n {
		tb.Fatalf("client has %d endpoints, want %d", got, n)
	}
}

func benchHeap() int64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

func BenchmarkIdleConnections100k(b *testing.B) {
	var cliPer, srvPer float64
	for range b.N {
		cliPer, srvPer = benchIdle(b, 100_000)
	}
	b.ReportMetric(cliPer, "client-B/conn")
	b.ReportMetric(srvPer, "server-B/conn")
}

// TestIdleConnectionMemory is the cheap form of the 100k measurement: an
// idle ESTABLISHED connection must cost at most 1 KiB of heap per engine.
func TestIdleConnectionMemory(t *testing.T) {
	cliPer, srvPer := benchIdle(t, 10_000)
	t.Logf("heap per idle connection: client %.0f B, server %.0f B", cliPer, srvPer)
	if cliPer > 1024 || srvPer > 1024 {
		t.Fatalf("an idle connection costs %.0f B (client) and %.0f B (server) of heap, want at most 1024", cliPer, srvPer)
	}
}

// benchSink keeps the baseline's results alive.
var benchSink struct {
	n   int
	out []byte
}

// BenchmarkBaseline is the yardstick the engine figures are compared to,
// the least any TCP endpoint does per segment: decode a 20-byte TCP header
// (ParseSegment), look the 4-tuple up in a map keyed like the engine's
// (1024 connections), and encode the reply (AppendPacket of a bare ACK,
// IPv4, checksums included). One op is those three.
func BenchmarkBaseline(b *testing.B) {
	type tcb struct{ sndNxt, rcvNxt Seq }
	src, dst := benchCli.Addr(), benchSrv.Addr()
	m := make(map[Tuple]*tcb)
	for i := range 1024 {
		m[Tuple{Local: benchSrv, Remote: netip.AddrPortFrom(src, uint16(10000+i))}] = &tcb{sndNxt: Seq(i), rcvNxt: Seq(i)}
	}
	in := Segment{SrcPort: 10500, DstPort: benchSrv.Port(), Seq: 1000, Ack: 2000, Flags: FlagACK | FlagPSH, Window: 65535}
	hdr := AppendSegment(nil, &in, src, dst)
	if len(hdr) != MinHeaderLen {
		b.Fatalf("header is %d bytes", len(hdr))
	}
	out := make([]byte, 0, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		seg, err := ParseSegment(hdr)
		if err != nil {
			b.Fatal(err)
		}
		c := m[Tuple{Local: netip.AddrPortFrom(dst, seg.DstPort), Remote: netip.AddrPortFrom(src, seg.SrcPort)}]
		reply := Segment{SrcPort: seg.DstPort, DstPort: seg.SrcPort, Seq: c.sndNxt, Ack: seg.Seq.Add(1), Flags: FlagACK, Window: 65535}
		out = AppendPacket(out[:0], dst, src, &reply)
	}
	benchSink.out = out
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// run warms s up (Ready's slices and the buffers grow to steady state),
// then times b.N segments of size bytes, refilling the ring off the clock.
func (s *benchStream) run(b *testing.B, size int) {
	for range 4 * len(s.ring) {
		if s.pos == len(s.ring) {
			s.refill()
		}
		s.step()
	}
	s.n, s.acks, s.read = 0, 0, 0
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if s.pos == len(s.ring) {
			b.StopTimer()
			s.refill()
			b.StartTimer()
		}
		s.step()
	}
	b.StopTimer()
	s.check()
}
