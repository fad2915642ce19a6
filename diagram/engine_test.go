package diagram

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tcpstated/tcpstated/fsm"
)

// pair joins two engines with a one-way delay and records what they do as
// diagram records: each input's state changes, then the packets it caused.
type pair struct {
	t        *testing.T
	engines  [2]*fsm.Engine
	delay    time.Duration
	now      time.Duration
	inflight []flight
	records  []Record
}

type flight struct {
	at   time.Duration
	to   int
	data []byte
}

func (p *pair) collect(i int) {
	e := p.engines[i]
	r := e.Ready()
	for _, tr := range r.Transitions {
		in, ok := e.Endpoint(tr.Endpoint)
		if !ok {
			p.t.Fatalf("transition of unknown endpoint %d", tr.Endpoint)
		}
		p.records = append(p.records, StateChange{Time: tr.Time, Endpoint: in.Local, State: tr.To})
	}
	for _, pk := range r.Packets {
		data := bytes.Clone(pk.Data)
		seg := pk.Segment
		seg.Payload = make([]byte, len(pk.Segment.Payload)) // Ready's buffers are reused; only the length is drawn
		p.records = append(p.records, Packet{
			Time: pk.Time, RecvTime: pk.Time + p.delay,
			Src: netip.AddrPortFrom(pk.Src, seg.SrcPort), Dst: netip.AddrPortFrom(pk.Dst, seg.DstPort),
			Segment: seg,
		})
		p.inflight = append(p.inflight, flight{pk.Time + p.delay, 1 - i, data})
	}
}

func (p *pair) run(until time.Duration) {
	for {
		p.collect(0)
		p.collect(1)
		next, ok := time.Duration(0), false
		for _, f := range p.inflight {
			if !ok || f.at < next {
				next, ok = f.at, true
			}
		}
		for _, e := range p.engines {
			if d, armed := e.NextDeadline(); armed && (!ok || d < next) {
				next, ok = d, true
			}
		}
		if !ok || next > until {
			return
		}
		p.now = max(p.now, next)
		for i, e := range p.engines {
			e.AdvanceTo(p.now)
			p.collect(i)
		}
		var due, rest []flight
		for _, f := range p.inflight {
			if f.at <= p.now {
				due = append(due, f)
			} else {
				rest = append(rest, f)
			}
		}
		p.inflight = rest
		for _, f := range due {
			if err := p.engines[f.to].Deliver(f.data); err != nil {
				p.t.Fatal(err)
			}
			p.collect(f.to)
		}
	}
}

// TestEngines draws what two engines really do: a handshake, data both
// ways and a close, through TIME-WAIT.
func TestEngines(t *testing.T) {
	cfg := fsm.Config{ISNMode: fsm.ISNFixed, NoTimestamps: true, NoSACK: true, NoWindowScale: true}
	ccfg, scfg := cfg, cfg
	ccfg.FixedISN, scfg.FixedISN = 1000, 5000
	p := &pair{t: t, engines: [2]*fsm.Engine{fsm.New(ccfg), fsm.New(scfg)}, delay: 15 * time.Millisecond}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// Every call's outputs are collected before the next call, so the
	// records keep the order things happened in.
	cl, sv := p.engines[0], p.engines[1]
	lis, err := sv.Listen(server, 0)
	must(err)
	p.collect(1)
	c, err := cl.Connect(client, server)
	must(err)
	p.collect(0)
	p.run(time.Second)
	s, err := sv.Accept(lis)
	must(err)
	_, err = cl.Send(c, []byte("GET / HTTP/1.0\r\n\r\n"))
	must(err)
	p.collect(0)
	p.run(p.now + 100*time.Millisecond)
	buf := make([]byte, 4096)
	_, err = sv.Receive(s, buf)
	must(err)
	p.collect(1)
	_, err = sv.Send(s, []byte("HTTP/1.0 200 OK\r\n\r\nhello"))
	must(err)
	p.collect(1)
	must(sv.Close(s))
	p.collect(1)
	p.run(p.now + 100*time.Millisecond)
	_, err = cl.Receive(c, buf)
	must(err)
	p.collect(0)
	must(cl.Close(c))
	p.collect(0)
	p.run(p.now + 5*time.Minute)

	d := FromPackets("Two tcpstated engines: an HTTP/1.0 exchange", p.records)
	svg := render(t, "engines", d, Options{Relative: true})

	// Each column's states, in order.
	states := map[string][]string{}
	for _, e := range d.Events {
		if m, ok := e.(StateMark); ok {
			states[m.Column] = append(states[m.Column], m.State)
		}
	}
	want := map[string]string{
		client.String(): "SYN-SENT ESTABLISHED CLOSE-WAIT LAST-ACK CLOSED",
		server.String(): "LISTEN SYN-RECEIVED ESTABLISHED FIN-WAIT-1 FIN-WAIT-2 TIME-WAIT CLOSED",
	}
	for col, w := range want {
		if got := strings.Join(states[col], " "); got != w {
			t.Errorf("%s: states %q, want %q", col, got, w)
		}
	}
	for _, s := range []string{">S seq=0 win=65535<", ">S. seq=0 ack=1 win=65535<"} {
		if !bytes.Contains(svg, []byte(s)) {
			t.Errorf("diagram lacks %q", s)
		}
	}
}
