package dut

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/tcpstated/tcpstated/script/linuxtarget"
	"github.com/tcpstated/tcpstated/script/target"
)

// Kernel is the machine's Linux kernel as a Stack: the kernel target's
// code (script/linuxtarget), a network namespace of its own per script
// with a TUN device whose far end is the DUT protocol's packet stream,
// and real sockets in it. It needs root, as the kernel target does.
type Kernel struct {
	life sync.Mutex // Reset and Close, one at a time
	mu   sync.Mutex // the calls: the target's descriptors are not shared

	state sync.Mutex          // the fields below
	cur   *linuxtarget.Target // nil before the first script's Reset
	stop  chan struct{}       // closed to stop cur's pump
	done  chan struct{}       // closed when the pump has stopped

	outMu sync.Mutex
	out   func([]byte)
}

// KernelStack is what Reset says the kernel stack is.
const KernelStack = "the Linux kernel (a network namespace per script, wall clock)"

// NewKernel is a kernel stack; it makes no namespace until a Reset
// names a script's addresses. Close it to remove the namespace.
func NewKernel() *Kernel { return &Kernel{out: func([]byte) {}} }

// KernelAvailable says why the kernel stack cannot run here, or "".
func KernelAvailable() string { return linuxtarget.Available() }

// Output sets where the kernel's packets go.
func (k *Kernel) Output(out func([]byte)) {
	k.outMu.Lock()
	k.out = out
	k.outMu.Unlock()
}

// Reset removes the last script's namespace, and makes a fresh one for a
// script with these addresses.
func (k *Kernel) Reset(setup target.Setup) (string, error) {
	k.life.Lock()
	defer k.life.Unlock()
	k.closeLocked()
	if !setup.Local.IsValid() || !setup.Remote.IsValid() {
		return KernelStack, nil // between scripts: nothing to run on
	}
	t, err := linuxtarget.New(setup)
	if err != nil {
		return "", err
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go k.pump(t, stop, done)
	k.state.Lock()
	k.cur, k.stop, k.done = t, stop, done
	k.state.Unlock()
	return KernelStack, nil
}

// Close removes the namespace.
func (k *Kernel) Close() {
	k.life.Lock()
	defer k.life.Unlock()
	k.closeLocked()
}

// closeLocked interrupts the current target (a blocked call returns),
// stops its pump and closes it.
func (k *Kernel) closeLocked() {
	k.state.Lock()
	t, stop, done := k.cur, k.stop, k.done
	k.state.Unlock()
	if t == nil {
		return
	}
	t.Interrupt()
	close(stop) // a blocked call returns EINTR
	<-done
	k.mu.Lock() // no call runs on t now, and none starts
	k.state.Lock()
	k.cur = nil
	k.state.Unlock()
	k.mu.Unlock()
	_ = t.Close()
}

// pump sends the packets the kernel writes to the device.
func (k *Kernel) pump(t *linuxtarget.Target, stop, done chan struct{}) {
	defer close(done)
	for {
		t.Await(t.Now() + 50*time.Millisecond) // returns at once when interrupted
		pkts := t.Collect()
		k.outMu.Lock()
		out := k.out
		k.outMu.Unlock()
		for _, p := range pkts {
			out(p.Data)
		}
		select {
		case <-stop:
			return
		default:
		}
	}
}

// errNoScript is a packet or a call before a script's Reset.
var errNoScript = errors.New("the kernel stack has no script's addresses yet: Reset with local_address and remote_address first")

// Inject writes an inbound packet to the namespace's device.
func (k *Kernel) Inject(pkt []byte) error {
	k.state.Lock()
	t := k.cur
	k.state.Unlock()
	if t == nil {
		return errNoScript
	}
	return t.Inject(pkt)
}

// Call runs a socket call on a real socket in the namespace; one that
// blocks waits for the kernel to complete it, or for ctx to end.
func (k *Kernel) Call(ctx context.Context, c *target.Call) (target.Result, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.state.Lock()
	t, stop := k.cur, k.stop
	k.state.Unlock()
	if t == nil {
		return target.Result{}, errNoScript
	}
	switch c.Name {
	case "connect", "listen":
		// The client chose the address: bind to it first (EINVAL, kept
		// quiet, if the socket is bound already).
		if c.Local.Port() != 0 {
			t.Call(&target.Call{Name: "bind", FD: c.FD, Local: c.Local})
		}
	}
	res := t.Call(c)
	for res.Blocked {
		r, _, ok := t.Pending(t.Now() + 10*time.Millisecond)
		if ok {
			return r, nil
		}
		if err := ctx.Err(); err != nil {
			return target.Result{}, err
		}
		select {
		case <-stop: // Reset while the call blocked
			return target.Err("EINTR"), nil
		default:
		}
	}
	return res, nil
}
