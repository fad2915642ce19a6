package fsm

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// Determinism: the engine is a pure function of its configuration and its
// inputs. The same inputs, twice, must give the same outputs byte for byte:
// every packet, transition, event and explanation, and the same endpoint
// snapshots at the end. This is what lets a session be replayed from its
// log.

// recordReady appends one output batch to a transcript: packets with their
// wire bytes, transitions, events and explanations with every field.
func recordReady(w *bytes.Buffer, who string, r *Ready) {
	for _, p := range r.Packets {
		fmt.Fprintf(w, "%s packet ep=%d t=%d %v>%v %s\n", who, p.Endpoint, p.Time, p.Src, p.Dst, hex.EncodeToString(p.Data))
	}
	for _, tr := range r.Transitions {
		fmt.Fprintf(w, "%s transition ep=%d t=%d %s>%s cause=%s\n", who, tr.Endpoint, tr.Time, tr.From, tr.To, tr.Cause)
	}
	for _, ev := range r.Events {
		fmt.Fprintf(w, "%s event ep=%d %s\n", who, ev.Endpoint, ev.Kind)
	}
	for _, x := range r.Explanations {
		fmt.Fprintf(w, "%s explain ep=%d %s %s", who, x.Endpoint, x.Code, x.Action)
		for _, f := range x.Fields[:x.NFields] {
			fmt.Fprintf(w, " %s=%d", f.Name, f.Value)
		}
		w.WriteByte('\n')
	}
}

// recordEndpoints appends the snapshot of every visible endpoint.
func recordEndpoints(w *bytes.Buffer, who string, e *Engine) {
	fmt.Fprintf(w, "%s now=%d\n", who, e.Now())
	for _, in := range e.Endpoints() {
		fmt.Fprintf(w, "%s endpoint %+v\n", who, in)
	}
}

// firstDifference describes where two transcripts part.
func firstDifference(a, b []byte) string {
	la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := 0; i < len(la) && i < len(lb); i++ {
		if la[i] != lb[i] {
			return fmt.Sprintf("line %d:\n  first:  %s\n  second: %s", i+1, la[i], lb[i])
		}
	}
	return fmt.Sprintf("one transcript is a prefix of the other (%d and %d lines)", len(la), len(lb))
}

// detPair is two engines driven by a script, with every output recorded.
type detPair struct {
	t        *testing.T
	cli, srv *Engine
	now      time.Duration
	w        bytes.Buffer
	wire     [2][][]byte // packets waiting: to the client, to the server
	// cloneEach: after every drain, both sides go on as clones of
	// themselves (Engine.Clone), the originals are dropped.
	cloneEach bool
}

func (d *detPair) drain() {
	for i, e := range []*Engine{d.cli, d.srv} {
		r := e.Ready()
		recordReady(&d.w, []string{"client", "server"}[i], &r)
		for _, p := range r.Packets {
			d.wire[1-i] = append(d.wire[1-i], bytes.Clone(p.Data))
		}
	}
	if d.cloneEach {
		d.cli, d.srv = d.cli.Clone(), d.srv.Clone()
	}
}

// pump delivers everything in flight, in order, until both sides are quiet;
// drop, if set, loses the n-th packet sent by the client (from 1).
func (d *detPair) pump(dropClient int) {
	d.drain()
	sent := 0
	for len(d.wire[0])+len(d.wire[1]) > 0 {
		for to := range 2 {
			q := d.wire[to]
			d.wire[to] = nil
			for _, pkt := range q {
				if to == 1 {
					sent++
					if sent == dropClient {
						continue
					}
				}
				e := d.cli
				if to == 1 {
					e = d.srv
				}
				if err := e.Deliver(pkt); err != nil {
					d.t.Fatal(err)
				}
				d.drain()
			}
		}
	}
}

func (d *detPair) advance(by time.Duration) {
	d.now += by
	d.cli.AdvanceTo(d.now)
	d.srv.AdvanceTo(d.now)
	d.drain()
}

func (d *detPair) check(err error) {
	d.t.Helper()
	if err != nil {
		d.t.Fatal(err)
	}
}

// detScript runs a fixed conversation: handshake, data both ways with a
// lost segment (a retransmission timeout), delayed ACKs, a half-close,
// TIME-WAIT and a reset of a second connection. It returns the transcript.
func detScript(t *testing.T, cli, srv Config) []byte {
	return detScriptCloning(t, cli, srv, false)
}

// detConnect makes a pair with a listener (l) and a connection between
// them, open and accepted on both sides (c at the client, s at the server).
func detConnect(t *testing.T, cli, srv Config, cloneEach bool) (d *detPair, l, c, s EndpointID) {
	d = &detPair{t: t, cli: New(cli), srv: New(srv), cloneEach: cloneEach}
	l, err := d.srv.Listen(serverAddr, 4)
	d.check(err)
	c, err = d.cli.Connect(clientAddr, serverAddr)
	d.check(err)
	d.pump(0)
	s, err = d.srv.Accept(l)
	d.check(err)
	return d, l, c, s
}

func detScriptCloning(t *testing.T, cli, srv Config, cloneEach bool) []byte {
	d, l, c, s := detConnect(t, cli, srv, cloneEach)
	var err error

	msg := make([]byte, 5000)
	for i := range msg {
		msg[i] = byte(i * 7)
	}
	_, err = d.cli.Send(c, msg)
	d.check(err)
	_, err = d.srv.Send(s, msg[:3000])
	d.check(err)
	d.pump(2) // the client's second data segment is lost
	d.advance(300 * time.Millisecond)
	d.pump(0)
	d.advance(2 * time.Second) // the retransmission timeout
	d.pump(0)
	buf := make([]byte, 8192)
	for _, x := range []struct {
		e  *Engine
		id EndpointID
	}{{d.cli, c}, {d.srv, s}} {
		for {
			n, err := x.e.Receive(x.id, buf)
			d.check(err)
			fmt.Fprintf(&d.w, "read %d %x\n", n, buf[:n])
			if n == 0 {
				break
			}
		}
	}
	d.pump(0)
	d.check(d.cli.Shutdown(c))
	d.pump(0)
	_, err = d.srv.Send(s, []byte("after the client's FIN"))
	d.check(err)
	d.check(d.srv.Close(s))
	d.pump(0)
	n, err := d.cli.Receive(c, buf)
	fmt.Fprintf(&d.w, "read %d %v\n", n, err)
	d.check(d.cli.Close(c))
	d.advance(3 * time.Second) // TIME-WAIT ends
	d.pump(0)

	// A second connection, reset by the server's application.
	c2, err := d.cli.Connect(netip.AddrPortFrom(clientAddr.Addr(), clientAddr.Port()+1), serverAddr)
	d.check(err)
	d.pump(0)
	s2, err := d.srv.Accept(l)
	d.check(err)
	d.check(d.srv.Abort(s2))
	d.pump(0)
	_, err = d.cli.Send(c2, []byte("x"))
	fmt.Fprintf(&d.w, "send after reset: %v\n", err)

	recordEndpoints(&d.w, "client", d.cli)
	recordEndpoints(&d.w, "server", d.srv)
	return d.w.Bytes()
}

func detConfig(secret byte) Config {
	var c Config
	for i := range c.Secret {
		c.Secret[i] = secret + byte(i)
	}
	c.MSL = time.Second
	// The script drops a segment to exercise the retransmission timeout;
	// RACK-TLP (RFC 8985) would repair it first.
	c.Recovery.NoRACK, c.Recovery.NoTLP = true, true
	return c
}

// TestDeterminism runs a scripted conversation and a lossy-link run twice
// each with the same configuration and seed and requires identical
// transcripts: every emitted packet's bytes, every transition, event and
// explanation (code, action, fields), and the final endpoint snapshots.
func TestDeterminism(t *testing.T) {
	t.Run("script", func(t *testing.T) {
		a := detScript(t, detConfig(1), detConfig(2))
		b := detScript(t, detConfig(1), detConfig(2))
		if !bytes.Equal(a, b) {
			t.Fatalf("two runs of the same script differ at %s", firstDifference(a, b))
		}
		if !bytes.Contains(a, []byte("RETRANSMIT_TIMEOUT")) || !bytes.Contains(a, []byte("TIME-WAIT>CLOSED")) {
			t.Fatalf("the script did not exercise a retransmission timeout and TIME-WAIT:\n%s", a)
		}
		// A different secret changes the ISNs, hence the bytes.
		if c := detScript(t, detConfig(3), detConfig(2)); bytes.Equal(a, c) {
			t.Fatal("a different client secret gave the same transcript")
		}
	})
	t.Run("lossy-link", func(t *testing.T) {
		for _, seed := range []uint64{3, 17, 42} {
			for _, mode := range []propMode{propClientFirst, propSimultaneous} {
				p := propGenerate(seed, mode)
				p.loss, p.dup, p.reorder = 0.1, 0.05, 0.05
				var a, b bytes.Buffer
				if msg, _ := propRun(p, 80, &a); msg != "" {
					t.Fatalf("seed %d: %s", seed, msg)
				}
				if msg, _ := propRun(p, 80, &b); msg != "" {
					t.Fatalf("seed %d: %s", seed, msg)
				}
				if !bytes.Equal(a.Bytes(), b.Bytes()) {
					t.Fatalf("seed %d %s: two runs differ at %s", seed, mode, firstDifference(a.Bytes(), b.Bytes()))
				}
			}
		}
	})
}

// TestISNSecret: with ISNRandom the ISN is M + F(4-tuple, secret) (RFC 6528
// §3): two secrets give different ISNs for the same connection, the same
// secret the same ISN, another 4-tuple another ISN, and M advances one per
// 4 µs of engine time. ISNFixed gives exactly FixedISN, on both the active
// and the passive side. Reference: RFC 6528 §3, RFC 9293 §3.4.1.
func TestISNSecret(t *testing.T) {
	iss := func(cfg Config, at time.Duration, local netip.AddrPort) Seq {
		t.Helper()
		e := New(cfg)
		e.AdvanceTo(at)
		id, err := e.Connect(local, serverAddr)
		if err != nil {
			t.Fatal(err)
		}
		r := e.Ready()
		in, _ := e.Endpoint(id)
		if len(r.Packets) != 1 || r.Packets[0].Segment.Seq != in.ISS {
			t.Fatalf("the SYN does not carry ISS %d", in.ISS)
		}
		return in.ISS
	}
	other := netip.AddrPortFrom(clientAddr.Addr(), clientAddr.Port()+1)
	a, b := iss(detConfig(1), 0, clientAddr), iss(detConfig(9), 0, clientAddr)
	if a == b {
		t.Fatalf("secrets 1 and 9 both give ISN %d", a)
	}
	if again := iss(detConfig(1), 0, clientAddr); again != a {
		t.Fatalf("the same secret gave ISNs %d and %d", a, again)
	}
	if o := iss(detConfig(1), 0, other); o == a {
		t.Fatalf("two 4-tuples got the same ISN %d", a)
	}
	if later := iss(detConfig(1), 4*time.Millisecond, clientAddr); later.Sub(a) != 1000 {
		t.Fatalf("4 ms later the ISN moved by %d, want 1000 (one per 4 µs)", later.Sub(a))
	}

	for _, fixed := range []uint32{0, 100, 0xffffffff} {
		cfg := Config{ISNMode: ISNFixed, FixedISN: fixed}
		if got := iss(cfg, 0, clientAddr); got != Seq(fixed) {
			t.Fatalf("ISNFixed %d: ISS %d", fixed, got)
		}
		srv := New(cfg)
		if _, err := srv.Listen(serverAddr, 0); err != nil {
			t.Fatal(err)
		}
		syn := Segment{SrcPort: clientAddr.Port(), DstPort: serverAddr.Port(), Flags: FlagSYN, Seq: 5000, Window: 1000}
		if err := srv.Deliver(AppendPacket(nil, clientAddr.Addr(), serverAddr.Addr(), &syn)); err != nil {
			t.Fatal(err)
		}
		r := srv.Ready()
		if len(r.Packets) != 1 || r.Packets[0].Segment.Seq != Seq(fixed) || r.Packets[0].Segment.Ack != 5001 {
			t.Fatalf("ISNFixed %d: the SYN,ACK is %v", fixed, r.Packets)
		}
	}
}
