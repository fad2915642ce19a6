package enginetarget

import (
	"net/netip"
	"testing"
	"time"

	"github.com/tcpstated/tcpstated/fsm"
	"github.com/tcpstated/tcpstated/script/target"
)

var (
	local  = netip.MustParseAddrPort("192.168.0.1:8080")
	remote = netip.MustParseAddrPort("192.0.2.1:40000")
)

func newTarget() *Target {
	return New(fsm.New(fsm.Config{ISNMode: fsm.ISNFixed}), Options{})
}

// step is one socket call and what it must return.
type step struct {
	call    target.Call
	ret     int64
	errno   string
	blocked bool
	skip    bool
}

func runSteps(t *testing.T, tg *Target, steps []step) {
	t.Helper()
	for i, s := range steps {
		c := s.call
		res := tg.Call(&c)
		if res.Ret != s.ret || res.Errno != s.errno || res.Blocked != s.blocked || (res.Skip != "") != s.skip {
			t.Errorf("step %d %s(fd %d): got %+v, want ret %d errno %q blocked %v skip %v",
				i, c.Name, c.FD, res, s.ret, s.errno, s.blocked, s.skip)
		}
	}
}

// The socket layer without a peer: descriptors lowest free first from 3,
// Linux's errno for calls on the wrong kind of socket (and for a bind to
// the port a listener holds), EAGAIN from a
// non-blocking accept, and Blocked from a blocking one.
func TestCallsWithoutPeer(t *testing.T) {
	tg := newTarget()
	runSteps(t, tg, []step{
		{call: target.Call{Name: "socket", Type: 1}, ret: 3},
		{call: target.Call{Name: "socket", Type: 1}, ret: 4},
		{call: target.Call{Name: "close", FD: 3}},
		{call: target.Call{Name: "socket", Type: 1}, ret: 3},
		{call: target.Call{Name: "read", FD: 9, Len: 1}, ret: -1, errno: "EBADF"},
		{call: target.Call{Name: "bind", FD: 3, Local: local}},
		{call: target.Call{Name: "bind", FD: 3, Local: local}, ret: -1, errno: "EINVAL"},
		{call: target.Call{Name: "listen", FD: 3, Local: local, Backlog: 0}},
		{call: target.Call{Name: "read", FD: 3, Len: 10}, ret: -1, errno: "ENOTCONN"},
		{call: target.Call{Name: "write", FD: 3, Len: 10}, ret: -1, errno: "EPIPE"},
		{call: target.Call{Name: "shutdown", FD: 3, How: 1}, ret: -1, errno: "ENOTCONN"},
		{call: target.Call{Name: "connect", FD: 3, Remote: remote}, ret: -1, errno: "EISCONN"},
		{call: target.Call{Name: "accept", FD: 4}, ret: -1, errno: "EINVAL"},
		{call: target.Call{Name: "bind", FD: 4, Local: local}, ret: -1, errno: "EADDRINUSE"}, // fd 3 listens there
		{call: target.Call{Name: "fcntl", FD: 3, Cmd: 3}, ret: 2},                            // F_GETFL: O_RDWR
		{call: target.Call{Name: "fcntl", FD: 3, Cmd: 4, Arg: 0x800}},
		{call: target.Call{Name: "fcntl", FD: 3, Cmd: 3}, ret: 0x802},
		{call: target.Call{Name: "accept", FD: 3}, ret: -1, errno: "EAGAIN"},
		{call: target.Call{Name: "fcntl", FD: 3, Cmd: 4, Arg: 0}},
		{call: target.Call{Name: "accept", FD: 3}, ret: 0, blocked: true},
		{call: target.Call{Name: "fcntl", FD: 3, Cmd: 1}, skip: true},
		{call: target.Call{Name: "setsockopt", FD: 3, Opt: "TCP_CORK"}, skip: true},
		{call: target.Call{Name: "epoll_wait"}, skip: true},
		{call: target.Call{Name: "poll"}, skip: true},
	})
	if _, _, ok := tg.Pending(tg.Now()); ok {
		t.Error("accept returned with nothing to accept")
	}
	res := tg.Call(&target.Call{Name: "getsockopt", FD: 3, Opt: "TCP_INFO"})
	if res.Info == nil || res.Info.State != "TCP_LISTEN" || res.Info.StateText != "RFC 9293 LISTEN" {
		t.Errorf("TCP_INFO of a listener: %+v", res.Info)
	}
}

// A blocking connect returns Blocked with the address its SYN comes from,
// and returns, at the time the connection was established, once the
// SYN,ACK is in. Reference: RFC 9293 §3.10.7.3.
func TestConnectBlocksUntilEstablished(t *testing.T) {
	tg := newTarget()
	runSteps(t, tg, []step{{call: target.Call{Name: "socket", Type: 1}, ret: 3}})
	res := tg.Call(&target.Call{Name: "connect", FD: 3, Local: netip.AddrPortFrom(local.Addr(), 0), Remote: remote})
	wantLocal := netip.AddrPortFrom(local.Addr(), FirstLocalPort)
	if !res.Blocked || res.Local != wantLocal {
		t.Fatalf("connect: %+v, want blocked from %s", res, wantLocal)
	}
	syn := onePacket(t, tg)
	if syn.Flags != fsm.FlagSYN || syn.SrcPort != FirstLocalPort {
		t.Fatalf("> %s, want a SYN from port %d", syn, FirstLocalPort)
	}
	tg.AdvanceTo(100 * time.Millisecond)
	synAck := fsm.Segment{SrcPort: remote.Port(), DstPort: FirstLocalPort, Seq: 1000, Ack: syn.Seq + 1,
		Flags: fsm.FlagSYN | fsm.FlagACK, Window: 65535}
	if err := tg.Inject(fsm.AppendPacket(nil, remote.Addr(), local.Addr(), &synAck)); err != nil {
		t.Fatal(err)
	}
	tg.AdvanceTo(200 * time.Millisecond)
	got, at, ok := tg.Pending(tg.Now())
	if !ok || got.Ret != 0 || got.Errno != "" || at != 100*time.Millisecond {
		t.Fatalf("pending connect: %+v at %v ok %v, want 0 at 100ms", got, at, ok)
	}
	if ack := onePacket(t, tg); ack.Flags != fsm.FlagACK {
		t.Errorf("> %s, want the ACK of the SYN,ACK", ack)
	}
	transitions, explained := tg.Explain()
	if len(transitions) != 2 || transitions[1].To != "ESTABLISHED" || transitions[1].Time != 100*time.Millisecond {
		t.Errorf("transitions %+v", transitions)
	}
	if len(explained) == 0 || explained[len(explained)-1].Time != 100*time.Millisecond {
		t.Errorf("explanations %+v", explained)
	}
}

// The virtual clock: AdvanceTo runs each timer at its time, so the
// retransmitted SYN carries the RTO's time (RFC 6298 §5: 1 s, then
// doubled); Await stops after the first timer that emits, and does not
// move the clock when nothing is armed.
func TestVirtualClock(t *testing.T) {
	tg := newTarget()
	tg.Call(&target.Call{Name: "socket", Type: 1})
	tg.Call(&target.Call{Name: "connect", FD: 3, Local: netip.AddrPortFrom(local.Addr(), 0), Remote: remote})
	tg.Collect()
	tg.Await(10 * time.Second)
	if ps := tg.Collect(); len(ps) != 1 || ps[0].Time != time.Second || tg.Now() != time.Second {
		t.Fatalf("Await: %d packets, now %v; want the retransmission at 1s", len(ps), tg.Now())
	}
	tg.AdvanceTo(3500 * time.Millisecond)
	if ps := tg.Collect(); len(ps) != 1 || ps[0].Time != 3*time.Second || tg.Now() != 3500*time.Millisecond {
		t.Fatalf("AdvanceTo: %+v, now %v; want the second retransmission at 3s", ps, tg.Now())
	}

	idle := newTarget()
	idle.Await(5 * time.Second)
	if idle.Now() != 0 || len(idle.Collect()) != 0 {
		t.Errorf("Await with nothing armed moved the clock to %v", idle.Now())
	}
}

func onePacket(t *testing.T, tg *Target) fsm.Segment {
	t.Helper()
	ps := tg.Collect()
	if len(ps) != 1 {
		t.Fatalf("%d packets emitted, want 1", len(ps))
	}
	_, _, tcp, err := fsm.ParsePacket(ps[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	seg, err := fsm.ParseSegment(tcp)
	if err != nil {
		t.Fatal(err)
	}
	return seg
}
