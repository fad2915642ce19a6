// Package enginetarget is the tcpstated engine as a script target: the
// fsm engine on its virtual clock, with Linux's socket layer played over
// it (descriptors, blocking, errno values, tcp_info from the engine's
// endpoint state). It drives an Engine, so a plain *fsm.Engine or a
// service session that logs every call can run a script.
//
// The clock moves only when the runner asks (AdvanceTo, Await), timer by
// timer, so every output carries the time the engine produced it; a call
// that would block is retried by Pending as the clock moves.
package enginetarget

import (
	"bytes"
	"net/netip"
	"time"

	"github.com/tcpstated/tcpstated/fsm"
	"github.com/tcpstated/tcpstated/script/target"
)

// Engine is what the target drives: exactly these methods of *fsm.Engine,
// so an engine, or a service session that logs every call before passing
// it on, can run a script. An Engine that also has Config() fsm.Config
// shows its configuration to getsockopt.
type Engine interface {
	Listen(local netip.AddrPort, backlog int) (fsm.EndpointID, error)
	Connect(local, remote netip.AddrPort) (fsm.EndpointID, error)
	Accept(id fsm.EndpointID) (fsm.EndpointID, error)
	Send(id fsm.EndpointID, data []byte) (int, error)
	Receive(id fsm.EndpointID, buf []byte) (int, error)
	Shutdown(id fsm.EndpointID) error
	Close(id fsm.EndpointID) error
	Abort(id fsm.EndpointID) error
	Deliver(pkt []byte) error
	AdvanceTo(t time.Duration)
	NextDeadline() (time.Duration, bool)
	Ready() fsm.Ready
	Endpoint(id fsm.EndpointID) (fsm.EndpointInfo, bool)
	Now() time.Duration
}

var _ Engine = (*fsm.Engine)(nil)

// FirstLocalPort is the local port of the first unbound connect (then
// FirstLocalPort+1, ...), fixed so that runs repeat.
const FirstLocalPort = 50000

// Options are what the target knows of the script beyond its calls.
type Options struct {
	// Applied names, by event index, the setsockopt calls that already
	// configured the engine before the run (its configuration is fixed
	// for its lifetime): such a call returns 0 with this note.
	Applied map[int]string
	// ConfigNote, if set, says the engine's configuration differs from
	// the script's; it is added to the Applied notes.
	ConfigNote string
	// MD5Secret is the script's --tcp_md5_secret, the TCP-MD5 key that
	// setsockopt TCP_MD5SIG sets for Remote, the script's remote address.
	MD5Secret string
	Remote    netip.Addr
}

// Prepared tells what line idx did when the engine was configured before
// the run (a setsockopt or sysctl line in Options.Applied).
func (t *Target) Prepared(idx int) (string, bool) {
	note, ok := t.opts.Applied[idx]
	return note, ok
}

// Target is an Engine as a target.Target, and a target.Explainer.
type Target struct {
	e        Engine
	opts     Options
	socks    map[int]*sock
	nextPort uint16
	pending  func() (target.Result, time.Duration, bool) // retries the blocked call

	packets     []target.Packet
	transitions []target.Transition
	explained   []target.Explanation
	estAt       map[fsm.EndpointID]time.Duration // when each connection reached ESTABLISHED
	closedAt    map[fsm.EndpointID]time.Duration // and CLOSED
}

var (
	_ target.Target    = (*Target)(nil)
	_ target.Explainer = (*Target)(nil)
)

// New makes e a target. Outputs e produced before are dropped: they are
// not the script's.
func New(e Engine, opts Options) *Target {
	e.Ready()
	return &Target{e: e, opts: opts, socks: map[int]*sock{}, nextPort: FirstLocalPort,
		estAt: map[fsm.EndpointID]time.Duration{}, closedAt: map[fsm.EndpointID]time.Duration{}}
}

// Now is the engine's clock.
func (t *Target) Now() time.Duration { return t.e.Now() }

// maxTimers bounds the timers one AdvanceTo runs.
const maxTimers = 1 << 20

// AdvanceTo moves the engine clock to d, one timer at a time, so that every
// output is collected at the time it happened.
func (t *Target) AdvanceTo(d time.Duration) {
	for range maxTimers {
		next, ok := t.e.NextDeadline()
		if !ok || next > d {
			break
		}
		t.e.AdvanceTo(next)
		t.collect()
	}
	if d > t.e.Now() {
		t.e.AdvanceTo(d)
		t.collect()
	}
}

// maxSilentTimers bounds how many timer expiries Await runs through for a
// packet, so that a timer that keeps re-arming cannot hang a run.
const maxSilentTimers = 100000

// Await runs the engine's timers, one at a time, until one emits a packet
// or the next is after until.
func (t *Target) Await(until time.Duration) {
	for n := 0; len(t.packets) == 0 && n < maxSilentTimers; n++ {
		d, ok := t.e.NextDeadline()
		if !ok || d > until {
			break
		}
		t.AdvanceTo(d)
	}
}

// Inject delivers an inbound packet to the engine.
func (t *Target) Inject(pkt []byte) error {
	err := t.e.Deliver(pkt)
	t.collect()
	return err
}

// Collect returns the packets emitted since the last Collect.
func (t *Target) Collect() []target.Packet {
	p := t.packets
	t.packets = nil
	return p
}

// Explain returns the state changes and the engine's explanations since
// the last Explain.
func (t *Target) Explain() ([]target.Transition, []target.Explanation) {
	tr, x := t.transitions, t.explained
	t.transitions, t.explained = nil, nil
	return tr, x
}

// collect copies the engine's outputs (Ready's memory is the engine's),
// stamping explanations with the engine's time.
func (t *Target) collect() {
	rd := t.e.Ready()
	for _, p := range rd.Packets {
		t.packets = append(t.packets, target.Packet{Time: p.Time, Data: bytes.Clone(p.Data)})
	}
	for _, tr := range rd.Transitions {
		t.transitions = append(t.transitions, target.Transition{Time: tr.Time, Endpoint: uint64(tr.Endpoint),
			From: tr.From.String(), To: tr.To.String(), Cause: tr.Cause.String()})
		switch tr.To {
		case fsm.Established:
			t.estAt[tr.Endpoint] = tr.Time
		case fsm.Closed:
			t.closedAt[tr.Endpoint] = tr.Time
		}
	}
	now := t.e.Now()
	for i := range rd.Explanations {
		x := &rd.Explanations[i]
		t.explained = append(t.explained, target.Explanation{Time: now, Endpoint: uint64(x.Endpoint), Text: x.String()})
	}
}

// Pending retries the blocked call, at the engine's time: until does not
// matter on a virtual clock.
func (t *Target) Pending(until time.Duration) (target.Result, time.Duration, bool) {
	if t.pending == nil {
		return target.Result{}, 0, false
	}
	res, at, ok := t.pending()
	t.collect()
	if ok {
		t.pending = nil
	}
	return res, at, ok
}

// config returns the engine's configuration if it shows it.
func (t *Target) config() *fsm.Config {
	if c, ok := t.e.(interface{ Config() fsm.Config }); ok {
		cfg := c.Config()
		return &cfg
	}
	return nil
}
