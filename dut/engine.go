package dut

import (
	"context"
	"sync"
	"time"

	"github.com/tcpstated/tcpstated/fsm"
	"github.com/tcpstated/tcpstated/script"
	"github.com/tcpstated/tcpstated/script/enginetarget"
	"github.com/tcpstated/tcpstated/script/target"
)

// Engine is the tcpstated engine as a Stack, on the wall clock: the
// engine target's socket layer (script/enginetarget) over an fsm.Engine
// whose clock a goroutine keeps at the wall clock, firing its timers when
// they are due. A Bug breaks one rule on purpose.
type Engine struct {
	bug Bug

	mu      sync.Mutex
	origin  time.Time // engine time 0
	cfg     fsm.Config
	eng     *swapEngine
	t       *enginetarget.Target
	opened  bool // a listen or connect happened: the configuration is fixed
	out     func([]byte)
	changed chan struct{} // closed after every step of the engine
	kick    chan struct{} // wakes the clock goroutine: the next deadline moved
	armed   time.Duration // the deadline the clock goroutine sleeps until; -1 none
	done    chan struct{}
}

// swapEngine is the fsm.Engine the target drives, replaced (before the
// first connection) when a setsockopt changes the configuration; the
// target keeps its sockets.
type swapEngine struct{ *fsm.Engine }

// NewEngine starts an engine stack with the given bug (BugNone for a
// correct one). Close stops its clock.
func NewEngine(bug Bug) *Engine {
	e := &Engine{bug: bug, out: func([]byte) {}, changed: make(chan struct{}),
		kick: make(chan struct{}, 1), done: make(chan struct{})}
	_, _ = e.Reset(target.Setup{})
	go e.clock()
	return e
}

// Close stops the engine's clock.
func (e *Engine) Close() { close(e.done) }

// Output sets where emitted packets go.
func (e *Engine) Output(out func([]byte)) {
	e.mu.Lock()
	e.out = out
	e.mu.Unlock()
}

// baseConfig is the engine's configuration before a script's options:
// ISN 0, as on the engine target, so a report reads the same.
func baseConfig() fsm.Config { return fsm.Config{ISNMode: fsm.ISNFixed} }

// Reset starts a fresh engine configured from the script's options.
func (e *Engine) Reset(setup target.Setup) (string, error) {
	cfg, err := script.OptionsConfig(baseConfig(), setup.Options)
	if err != nil {
		return "", err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.origin = time.Now()
	e.cfg = e.bug.config(cfg)
	e.eng = &swapEngine{fsm.New(e.cfg)}
	e.t = enginetarget.New(e.eng, enginetarget.Options{})
	e.opened = false
	e.kickLocked()
	return e.bug.Stack(), nil
}

func (e *Engine) now() time.Duration { return time.Since(e.origin) }

// clock keeps the engine at the wall clock: it sleeps until the next
// deadline (or a kick), then runs the timers due.
func (e *Engine) clock() {
	tm := time.NewTimer(time.Hour)
	defer tm.Stop()
	for {
		e.mu.Lock()
		e.stepLocked()
		wait := time.Second
		e.armed = -1
		if d, ok := e.eng.NextDeadline(); ok {
			wait = max(d-e.now(), 0)
			e.armed = d
		}
		e.mu.Unlock()
		tm.Reset(wait)
		select {
		case <-tm.C:
		case <-e.kick: // Reset discards a stale expiry (Go 1.23 timers)
		case <-e.done:
			return
		}
	}
}

// stepLocked moves the engine to the wall clock and sends what it emitted.
func (e *Engine) stepLocked() {
	e.t.AdvanceTo(e.now())
	for _, p := range e.t.Collect() {
		if data := e.bug.outbound(p.Data); data != nil {
			e.out(data)
		}
	}
	e.t.Explain() // not carried over the wire: the engine target explains
	close(e.changed)
	e.changed = make(chan struct{})
}

// kickLocked steps the engine after a call or a packet, and wakes the
// clock goroutine if the engine's next deadline moved.
func (e *Engine) kickLocked() {
	e.stepLocked()
	d, ok := e.eng.NextDeadline()
	if !ok {
		d = -1
	}
	if d == e.armed {
		return
	}
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// Inject delivers an inbound packet at the wall clock's time.
func (e *Engine) Inject(pkt []byte) error {
	pkt = e.bug.inbound(pkt)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.t.AdvanceTo(e.now())
	err := e.t.Inject(pkt)
	e.kickLocked()
	return err
}

// Call runs a socket call; one that blocks waits for the engine to
// complete it, or for ctx to end.
func (e *Engine) Call(ctx context.Context, c *target.Call) (target.Result, error) {
	if err := e.bug.call(ctx); err != nil {
		return target.Result{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.t.AdvanceTo(e.now())
	res := e.callLocked(c)
	e.kickLocked()
	for res.Blocked {
		ch := e.changed
		e.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			e.mu.Lock()
			return target.Result{}, ctx.Err()
		}
		e.mu.Lock()
		r, _, ok := e.t.Pending(0)
		e.kickLocked()
		if ok {
			res = r
			break
		}
	}
	return e.bug.result(c, res), nil
}

func (e *Engine) callLocked(c *target.Call) target.Result {
	switch c.Name {
	case "setsockopt":
		// Before the first connection a buffer option configures a fresh
		// engine, as the engine target does from the script ahead of time.
		if !e.opened {
			cfg := e.cfg
			if note := enginetarget.Sockopt(&cfg, c.Opt, c.Value); note != "" {
				e.cfg = e.bug.config(cfg)
				e.eng.Engine = fsm.New(e.cfg)
				e.eng.AdvanceTo(e.now())
				return target.Result{Detail: note}
			}
		}
	case "connect":
		// The client chose the local port: bind to it (EINVAL if the
		// socket is bound already, to that port).
		if c.Local.Port() != 0 {
			e.t.Call(&target.Call{Name: "bind", FD: c.FD, Local: c.Local})
		}
		e.opened = true
	case "listen":
		e.opened = true
	}
	return e.t.Call(c)
}
