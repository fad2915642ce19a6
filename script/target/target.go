// Package target is what a packetdrill script runs against: a TCP stack
// seen from outside, through its packets, its socket calls and its clock.
// The script package parses a script and judges what a Target did; a
// Target only does what it is told. Implementations: the tcpstated engine
// on a virtual clock (script/enginetarget); the Linux kernel in a network
// namespace behind TUN and a device under test over gRPC come next, both
// on the wall clock.
//
// # Who owns what
//
// The runner (package script) plays the remote peer: it builds every
// inbound packet, decodes every outbound one, keeps the flows and their
// relative sequence numbers, chooses the addresses (the local address a
// socket binds or listens on, the remote address it connects to), checks
// the arguments it can read without the stack (a descriptor the script
// never opened is EBADF; too few arguments EINVAL; an argument it cannot
// read skips the line), and judges results against the script. The
// Target owns the socket layer: descriptors (numbered as the stack's
// kernel would, lowest free from 3), blocking, errno values (packetdrill's
// names, "EAGAIN"), option values, the local port of an unbound connect,
// and its packets.
//
// # Time
//
// The target owns the clock. Every time in this package is the target's
// own clock (a duration since an origin of the target's choosing); the
// runner reads Now when a run starts and counts script time from there,
// so a target whose clock is already running is fine. A virtual target's
// clock moves only in AdvanceTo and Await, instantly, running its timers
// in order so that every packet carries the time it was emitted. A
// wall-clock target sleeps in AdvanceTo and waits in Await, stamps each
// packet with the time it read it, and the runner judges those times with
// the script's tolerance (--tolerance_usecs), exactly as it judges a
// virtual target's: a wall-clock target does not have to be punctual,
// only within tolerance.
//
// # Blocking calls
//
// Call never blocks the runner for long. If a call would block on a
// blocking socket, the target returns Result{Blocked: true} and keeps the
// call in progress (a virtual target retries it as its clock moves; a
// wall-clock target runs it on its own goroutine); the runner then polls
// Pending before and after each later line, and Pending reports the
// call's result and the time it returned once it has. A wall-clock target
// may wait briefly (up to the script's tolerance) before answering
// Blocked. At most one call is in progress: the runner never starts a
// second, and if it gives up on a blocked call (the script did not write
// "START...END call"), the run is over and the target may abandon it.
// When the runner is about to declare a call late, it lets Pending wait
// until the end of the call's window (END plus the tolerance), so that a
// wall-clock target's call returning at END is not lost to a race.
//
// # Capabilities
//
// Some targets can say more than a kernel can: what rule they applied to
// each packet and which state changes followed (Explainer), or their RFC
// 9293 state name in TCP_INFO (TCPInfo.StateText); a kernel target can
// run a script's shell commands (Commander). The runner reports what a
// target offers and works without it.
//
// A target is made for one run, from the script's Setup; whoever made it
// closes it (a kernel target removes its namespace and device, a DUT
// target resets its agent): the runner never does.
package target

import (
	"net/netip"
	"time"
)

// Target is one stack under test for the length of one script run. Its
// methods are called from one goroutine.
type Target interface {
	// Now reads the target's clock.
	Now() time.Duration
	// AdvanceTo moves the clock to t, collecting what the target emits
	// on the way with the time it emitted it. A t not after Now does
	// nothing. A virtual target runs its timers due by t one by one;
	// a wall-clock target sleeps until t.
	AdvanceTo(t time.Duration)
	// Await waits for the target to emit a packet that Collect has not
	// returned yet, or for its clock to reach until, whichever comes
	// first; it returns at once if such a packet is already there. A
	// virtual target runs its timers one by one and stops after the
	// first that emits; it does not move its clock past its last timer
	// at or before until (with nothing armed, it stays where it is).
	// until may be math.MaxInt64: wait as long as the target has
	// something to do (a virtual target, within a bound of its own).
	Await(until time.Duration)
	// Inject hands the target one inbound IP packet (IPv4 or IPv6 with
	// TCP), as the wire would. An error means the target refused it.
	Inject(pkt []byte) error
	// Collect returns, in order, the packets the target emitted since
	// the last Collect. The runner may keep them.
	Collect() []Packet
	// Call executes one socket call (see Call for the arguments each
	// takes) and returns what it returned.
	Call(c *Call) Result
	// Pending reports on the call in progress (the last Call that
	// returned Blocked): its result and the time it returned, once it
	// has; ok is false while it is still blocked. A wall-clock target
	// waits for it until its clock reads until, at most; a virtual
	// target does not wait (its clock moves only in AdvanceTo and Await).
	Pending(until time.Duration) (res Result, at time.Duration, ok bool)
}

// Setup is what a script tells a target before it runs: the addresses its
// packets use (the target is local, the runner plays remote) and the
// tolerance its times are judged with. A kernel target configures its
// device and routes from it.
type Setup struct {
	Local, Remote netip.Addr
	Tolerance     time.Duration
	// Options are the script's header options as written, by name
	// without "--" ("mss": "1460"): a target that configures a stack
	// from them may, others ignore them.
	Options map[string]string
}

// Packet is one packet a target emitted.
type Packet struct {
	Time time.Duration // when it was emitted (target clock)
	Data []byte        // the IP packet
}

// Explainer is the optional capability of a target that says why it did
// what it did, such as the tcpstated engine.
type Explainer interface {
	// Explain returns the state changes and explanations since the last
	// Explain, in order.
	Explain() ([]Transition, []Explanation)
}

// Commander is the optional capability of a target that runs a script's
// backquoted shell commands, such as a kernel target running "sysctl -w
// net.ipv4.tcp_..." lines inside its own network namespace. Without it,
// the runner reports those lines as skipped.
type Commander interface {
	// Command runs one command. skip, if set, says why the target does
	// not run this one (the line is skipped); err is a command that ran
	// and failed (the line fails).
	Command(cmd string) (skip string, err error)
}

// Faulter is the optional capability of a target that can fail on its
// own, such as a device under test whose agent ended its packet stream:
// the runner adds the fault to the first failure after it.
type Faulter interface {
	// Fault is what went wrong with the target, or nil.
	Fault() error
}

// Transition is a change of a connection's state, in the target's names.
type Transition struct {
	Time     time.Duration
	Endpoint uint64 // the target's name for the connection or listener
	From, To string // "ESTABLISHED", "CLOSE-WAIT"
	Cause    string // the rule that caused it
}

// Explanation is what the target says about one thing it did.
type Explanation struct {
	Time     time.Duration // when it said it (target clock)
	Endpoint uint64        // 0 when no endpoint matched
	Text     string
}
