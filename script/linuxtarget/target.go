//go:build linux

// Package linuxtarget is the machine's own Linux kernel as a script
// target, the way packetdrill runs scripts: as root, in a network
// namespace made for the run, with a TUN device (tun0) whose far end is
// the script's remote peer. Inbound packets are written to the device,
// the kernel's packets are read from it, and socket calls run on real
// sockets created in the namespace, on the wall clock.
//
// The device has no offloads (no IFF_VNET_HDR), so the kernel segments
// before writing (GSO in software): every TCP segment is one packet, as
// the engine emits them, and a script written on a GSO-capable packetdrill
// device that expects one super-segment sees its MSS-sized parts instead.
//
// Only TCP between the script's two addresses is collected: IPv6
// neighbour discovery, router solicitations and MLD reports on the device
// are dropped.
package linuxtarget

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"os/exec"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcpstated/tcpstated/bridge/tun"
	"github.com/tcpstated/tcpstated/script/target"
)

// ErrUnavailable is returned by New when the kernel target cannot run on
// this machine (not root, no TUN device, no namespaces).
var ErrUnavailable = errors.New("the Linux kernel target is not available")

// Device is the name of the TUN device inside the namespace.
const Device = "tun0"

// maxAwait bounds an Await with no end ("*" lines): the kernel's own
// timers are not visible, so the target waits this long at most.
const maxAwait = 10 * time.Second

// Target is the Linux kernel in a namespace of its own, a target.Target
// and a target.Commander. Close it to remove the namespace.
type Target struct {
	setup  target.Setup
	origin time.Time
	ns     *netns
	tun    *os.File
	tunFD  int    // tun's descriptor, non-blocking; read and written directly
	buf    []byte // read buffer, under mu
	family int

	mu      sync.Mutex
	packets []target.Packet
	arrived chan struct{} // signalled when a packet is read
	reader  chan struct{} // closed when the reader has stopped

	fds     map[int]int // script descriptor -> kernel descriptor
	nonblk  map[int]bool
	pending *call // the call in progress

	stop      chan struct{} // closed by Interrupt and Close
	stopOnce  sync.Once
	closeOnce sync.Once
}

var (
	_ target.Target    = (*Target)(nil)
	_ target.Commander = (*Target)(nil)
)

// Available says why the kernel target cannot run here, or "".
func Available() string {
	if os.Geteuid() != 0 {
		return "needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) for a network namespace and a TUN device"
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return "no TUN device: " + err.Error()
	}
	return ""
}

// New makes a namespace with tun0 configured for s: the kernel has
// s.Local, the peer behind tun0 has s.Remote. An error wrapping
// ErrUnavailable means this machine cannot run the kernel target.
func New(s target.Setup) (*Target, error) {
	if why := Available(); why != "" {
		return nil, fmt.Errorf("%w: %s", ErrUnavailable, why)
	}
	if !s.Local.IsValid() || !s.Remote.IsValid() || s.Local.Is4() != s.Remote.Is4() {
		return nil, fmt.Errorf("kernel target: local %v and remote %v must be addresses of one family", s.Local, s.Remote)
	}
	ns, err := newNetns()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	t := &Target{setup: s, ns: ns, family: unix.AF_INET, arrived: make(chan struct{}, 1),
		reader: make(chan struct{}), fds: map[int]int{}, nonblk: map[int]bool{}, stop: make(chan struct{})}
	if s.Local.Is6() {
		t.family = unix.AF_INET6
	}
	ns.run(func() { t.tun, err = tun.Attach(Device) })
	if err == nil {
		err = rawFD(t.tun, &t.tunFD)
	}
	if err != nil {
		close(t.reader)
		t.Close()
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if err := t.configure(); err != nil {
		close(t.reader)
		t.Close()
		return nil, fmt.Errorf("kernel target: configuring %s: %v", Device, err)
	}
	t.origin, t.buf = time.Now(), make([]byte, 65536)
	go t.read()
	return t, nil
}

// configure gives tun0 the kernel's address with the peer's as its
// point-to-point destination, which routes the peer through it.
func (t *Target) configure() error {
	local, remote := t.setup.Local.String(), t.setup.Remote.String()
	// The link first: IPv6 installs an address's routes only once the
	// link is ready.
	steps := [][]string{{"link", "set", "lo", "up"}, {"link", "set", Device, "up"}}
	if t.setup.Local.Is6() {
		// nodad: the address is usable at once, without duplicate
		// address detection's probes and delay.
		steps = append(steps, []string{"-6", "addr", "add", local, "peer", remote, "dev", Device, "nodad"})
	} else {
		steps = append(steps, []string{"addr", "add", local, "peer", remote, "dev", Device})
	}
	for _, a := range steps {
		if err := t.ns.exec("ip", a...); err != nil {
			return err
		}
	}
	if t.setup.Local.Is6() {
		return t.awaitRoutes()
	}
	return nil
}

// awaitRoutes waits for the kernel to install the IPv6 address's local
// route and the peer's route, which addrconf does from a work queue after
// the link comes up: until then an inbound SYN is dropped, or its SYN,ACK
// has no route, without a word.
func (t *Target) awaitRoutes() error {
	route := func(addr, want string) bool {
		out, err := exec.Command("nsenter", "--net="+t.ns.path(), "ip", "-6", "route", "get", addr).Output()
		return err == nil && bytes.Contains(out, []byte(want))
	}
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if route(t.setup.Local.String(), "local ") && route(t.setup.Remote.String(), "dev "+Device) {
			return nil
		}
	}
	return fmt.Errorf("the routes of %s and %s did not appear in 3 s", t.setup.Local, t.setup.Remote)
}

// rawFD reads f's descriptor without os.File.Fd, which would make it
// blocking.
func rawFD(f *os.File, fd *int) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	return rc.Control(func(d uintptr) { *fd = int(d) })
}

// Namespace is the inode of the run's namespace (for tests that check it
// is gone after Close).
func (t *Target) Namespace() (uint64, error) { return t.ns.inode() }

// read waits for the device to be readable and takes what is there;
// Inject takes what its packet provoked at once. Both read under mu, so
// the packets stay in the order the kernel wrote them, and a reply the
// kernel makes while handling the write (most are: the write runs the
// receive path) is stamped when the write returns, not when this
// goroutine is next scheduled on a busy machine.
func (t *Target) read() {
	defer close(t.reader)
	for {
		select {
		case <-t.stop:
			return
		default:
		}
		fds := []unix.PollFd{{Fd: int32(t.tunFD), Events: unix.POLLIN}}
		if n, err := unix.Poll(fds, 50); err != nil && err != unix.EINTR || n <= 0 {
			continue
		}
		t.mu.Lock()
		t.take()
		t.mu.Unlock()
	}
}

// take reads every packet the device holds now; mu is held.
func (t *Target) take() {
	for {
		n, err := unix.Read(t.tunFD, t.buf)
		if err != nil || n <= 0 {
			return // EAGAIN: nothing more
		}
		at := time.Since(t.origin)
		if !t.ours(t.buf[:n]) {
			continue
		}
		t.packets = append(t.packets, target.Packet{Time: at, Data: append([]byte(nil), t.buf[:n]...)})
		select {
		case t.arrived <- struct{}{}:
		default:
		}
	}
}

// ours is a TCP packet from the kernel's address to the peer's.
func (t *Target) ours(p []byte) bool {
	var src, dst netip.Addr
	switch {
	case len(p) >= 20 && p[0]>>4 == 4 && p[9] == unix.IPPROTO_TCP:
		src, dst = netip.AddrFrom4([4]byte(p[12:16])), netip.AddrFrom4([4]byte(p[16:20]))
	case len(p) >= 40 && p[0]>>4 == 6 && p[6] == unix.IPPROTO_TCP:
		src, dst = netip.AddrFrom16([16]byte(p[8:24])), netip.AddrFrom16([16]byte(p[24:40]))
	default:
		return false
	}
	return src == t.setup.Local && dst == t.setup.Remote
}

// Now is the wall clock since the device was configured.
func (t *Target) Now() time.Duration { return time.Since(t.origin) }

// AdvanceTo sleeps until d.
func (t *Target) AdvanceTo(d time.Duration) {
	if wait := d - t.Now(); wait > 0 {
		tm := time.NewTimer(wait)
		defer tm.Stop()
		select {
		case <-tm.C:
		case <-t.stop:
		}
	}
}

// Await waits for a packet not yet collected, or until the clock reads
// until (at most maxAwait from now).
func (t *Target) Await(until time.Duration) {
	if until == math.MaxInt64 || until-t.Now() > maxAwait {
		until = t.Now() + maxAwait
	}
	for {
		t.mu.Lock()
		n := len(t.packets)
		t.mu.Unlock()
		wait := until - t.Now()
		if n > 0 || wait <= 0 {
			return
		}
		tm := time.NewTimer(wait)
		select {
		case <-t.arrived:
		case <-tm.C:
		case <-t.stop:
			tm.Stop()
			return
		}
		tm.Stop()
	}
}

// Inject writes an inbound packet to the device.
func (t *Target) Inject(pkt []byte) error {
	select {
	case <-t.stop:
		return errors.New("interrupted")
	default:
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, err := unix.Write(t.tunFD, pkt); err != nil {
		return err
	}
	t.take()
	return nil
}

// Collect returns the packets read since the last Collect.
func (t *Target) Collect() []target.Packet {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.packets
	t.packets = nil
	return p
}

// Interrupt ends the run early: waits return at once and calls fail with
// EINTR, so that the runner finishes and the caller can Close. It may be
// called from any goroutine (a signal handler's, a timeout's).
func (t *Target) Interrupt() { t.stopOnce.Do(func() { close(t.stop) }) }

// Close removes everything the run made: it wakes a blocked call
// (shutdown), closes the sockets and the device and ends the namespace's
// thread; the kernel then drops the namespace. Safe to call twice.
func (t *Target) Close() error {
	t.closeOnce.Do(func() {
		t.Interrupt()
		for _, kfd := range t.fds {
			_ = unix.Shutdown(kfd, unix.SHUT_RDWR) // wakes accept, connect, read, write
		}
		if c := t.pending; c != nil {
			select {
			case r := <-c.done:
				if r.newFD >= 0 {
					unix.Close(r.newFD)
				}
			case <-time.After(2 * time.Second):
			}
			t.pending = nil
		}
		for sfd, kfd := range t.fds {
			unix.Close(kfd)
			delete(t.fds, sfd)
		}
		<-t.reader // it sees stop within its poll timeout
		if t.tun != nil {
			t.tun.Close()
		}
		t.ns.close()
	})
	return nil
}
