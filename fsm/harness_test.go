package fsm

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// Test harness: a client engine and a server engine joined by a wire the
// test controls packet by packet, in the spirit of smoltcp's send!/recv!
// and packetdrill's < and > lines.

var (
	clientAddr = netip.MustParseAddrPort("10.0.0.2:40000")
	serverAddr = netip.MustParseAddrPort("10.0.0.1:80")
)

// fixedConfig gives small, readable ISNs, immediate ACKs and no timestamps
// (so hand-made segments need none) unless a test changes them.
func fixedConfig(isn uint32) Config {
	return Config{ISNMode: ISNFixed, FixedISN: isn, NoDelayedAck: true, NoTimestamps: true, MSL: time.Second}
}

type side struct {
	t    *testing.T
	name string
	e    *Engine
	out  []Packet // emitted, not yet delivered
	log  []string
}

func newSide(t *testing.T, name string, cfg Config) *side {
	return &side{t: t, name: name, e: New(cfg)}
}

// collect drains the engine's outputs into the side's queue, copying the
// packets (Ready's memory is reused on the next input).
func (s *side) collect() Ready {
	r := s.e.Ready()
	for _, p := range r.Packets {
		cp := p
		cp.Data = bytes.Clone(p.Data)
		_, _, tcp, err := ParsePacket(cp.Data)
		if err == nil {
			cp.Segment, err = ParseSegment(tcp)
		}
		if err != nil {
			s.t.Fatalf("%s emitted an undecodable packet: %v", s.name, err)
		}
		s.out = append(s.out, cp)
	}
	for _, tr := range r.Transitions {
		s.log = append(s.log, fmt.Sprintf("%d %s->%s", tr.Endpoint, tr.From, tr.To))
	}
	return r
}

// expect pops the next emitted packet and checks it against a summary like
// "S seq=100 win=65535" — see segSummary.
func (s *side) expect(want string) Packet {
	s.t.Helper()
	s.collect()
	if len(s.out) == 0 {
		s.t.Fatalf("%s: expected %q, emitted nothing", s.name, want)
	}
	p := s.out[0]
	s.out = s.out[1:]
	if got := segSummary(&p.Segment); got != want {
		s.t.Fatalf("%s: emitted %q, want %q", s.name, got, want)
	}
	return p
}

func (s *side) expectNothing() {
	s.t.Helper()
	s.collect()
	if len(s.out) != 0 {
		s.t.Fatalf("%s: expected no segment, emitted %q", s.name, segSummary(&s.out[0].Segment))
	}
}

// segSummary renders the fields scenario tests assert on.
func segSummary(g *Segment) string {
	var f []string
	for _, n := range []struct {
		bit Flags
		s   string
	}{{FlagSYN, "S"}, {FlagFIN, "F"}, {FlagRST, "R"}, {FlagPSH, "P"}, {FlagACK, "."}} {
		if g.Flags&n.bit != 0 {
			f = append(f, n.s)
		}
	}
	s := strings.Join(f, "") + fmt.Sprintf(" seq=%d", g.Seq)
	if g.Flags&FlagACK != 0 {
		s += fmt.Sprintf(" ack=%d", g.Ack)
	}
	if len(g.Payload) > 0 {
		s += fmt.Sprintf(" len=%d", len(g.Payload))
	}
	return s
}

func (s *side) state(id EndpointID) State {
	in, ok := s.e.Endpoint(id)
	if !ok {
		s.t.Fatalf("%s: endpoint %d not found", s.name, id)
	}
	return in.State
}

func (s *side) wantState(id EndpointID, want State) {
	s.t.Helper()
	if got := s.state(id); got != want {
		s.t.Fatalf("%s: endpoint %d is %s, want %s", s.name, id, got, want)
	}
}

// deliver hands p to s's engine.
func (s *side) deliver(p Packet) {
	s.t.Helper()
	if err := s.e.Deliver(p.Data); err != nil {
		s.t.Fatalf("%s: deliver: %v", s.name, err)
	}
}

// relay moves the next packet from one side to the other and checks it.
func relay(from, to *side, want string) Packet {
	from.t.Helper()
	p := from.expect(want)
	to.deliver(p)
	return p
}

// pump delivers packets both ways until both sides are quiet.
func pump(a, b *side) {
	for i := 0; i < 100000; i++ {
		a.collect()
		b.collect()
		if len(a.out) == 0 && len(b.out) == 0 {
			return
		}
		for _, p := range a.out {
			b.deliver(p)
		}
		a.out = nil
		for _, p := range b.out {
			a.deliver(p)
		}
		b.out = nil
	}
	a.t.Fatal("pump: no quiescence")
}

func TestSmokeHandshakeDataClose(t *testing.T) {
	cli := newSide(t, "client", fixedConfig(100))
	srv := newSide(t, "server", fixedConfig(300))
	l, err := srv.e.Listen(serverAddr, 0)
	if err != nil {
		t.Fatal(err)
	}
	c, err := cli.e.Connect(clientAddr, serverAddr)
	if err != nil {
		t.Fatal(err)
	}
	relay(cli, srv, "S seq=100")
	relay(srv, cli, "S. seq=300 ack=101")
	relay(cli, srv, ". seq=101 ack=301")
	s, err := srv.e.Accept(l)
	if err != nil {
		t.Fatal(err)
	}
	cli.wantState(c, Established)
	srv.wantState(s, Established)
	if _, err := cli.e.Send(c, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	relay(cli, srv, "P. seq=101 ack=301 len=5")
	relay(srv, cli, ". seq=301 ack=106")
	buf := make([]byte, 10)
	n, _ := srv.e.Receive(s, buf)
	if string(buf[:n]) != "hello" {
		t.Fatalf("got %q", buf[:n])
	}
	if err := cli.e.Close(c); err != nil {
		t.Fatal(err)
	}
	relay(cli, srv, "F. seq=106 ack=301")
	relay(srv, cli, ". seq=301 ack=107")
	cli.wantState(c, FinWait2)
	srv.wantState(s, CloseWait)
	if err := srv.e.Close(s); err != nil {
		t.Fatal(err)
	}
	relay(srv, cli, "F. seq=301 ack=107")
	relay(cli, srv, ". seq=107 ack=302")
	cli.wantState(c, TimeWait)
	srv.wantState(s, Closed)
	cli.e.AdvanceTo(2 * time.Second)
	cli.wantState(c, Closed)
}
