// Package duttarget is a device under test as a script target: a TCP
// stack, in any language, behind a DUT agent that serves
// tcpstate.dut.v1.DeviceUnderTestService (see package dut and
// docs/GRADING.md), on the wall clock. Socket calls are RPCs; packets
// travel on the agent's Packets stream and are stamped with the time they
// arrive, and the runner judges those times with the script's tolerance,
// as packetdrill judges a kernel's.
//
// An agent that fails (does not answer, answers a gRPC error or
// nonsense, ends its stream) fails the script's line it was on with what
// it did; the target never hangs for longer than its timeouts.
package duttarget

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	dutv1 "github.com/tcpstated/tcpstated/gen/tcpstate/dut/v1"
	"github.com/tcpstated/tcpstated/script/target"
)

// Options are the target's timeouts.
type Options struct {
	// CallTimeout bounds a call that cannot block (socket, bind, close,
	// ...) and Reset: an agent slower than this fails the line. Default 2 s.
	CallTimeout time.Duration
	// MaxWait bounds an Await without an end (the script waits for a
	// packet at any time). Default 10 s.
	MaxWait time.Duration
	// MinTolerance is the least tolerance scripts are judged with on this
	// target: a script's smaller --tolerance_usecs (packetdrill's default
	// is 4 ms, made for a local kernel) is raised to it, as a stack
	// behind an RPC and a packet stream answers later. Default 20 ms;
	// negative keeps the script's.
	MinTolerance time.Duration
}

func (o Options) defaults() Options {
	if o.CallTimeout <= 0 {
		o.CallTimeout = 2 * time.Second
	}
	if o.MaxWait <= 0 {
		o.MaxWait = 10 * time.Second
	}
	if o.MinTolerance == 0 {
		o.MinTolerance = 20 * time.Millisecond
	}
	return o
}

// PacketsSentKey is the metadata every call carries: how many packets
// were sent on the Packets stream before it. The agent runs the call after
// its stack has taken them (the stream and the call are separate HTTP/2
// streams, with no order between them).
const PacketsSentKey = "tcpstate-packets-sent"

// FirstLocalPort is the local port of the first connect from a socket
// the script did not bind (then FirstLocalPort+1, ...): the target
// chooses it, so that it knows the connection's packets before the SYN.
const FirstLocalPort = 50000

// Target is one script run on an agent.
type Target struct {
	c      dutv1.DeviceUnderTestServiceClient
	opts   Options
	setup  target.Setup
	Stack  string // what the agent said it is
	origin time.Time
	ctx    context.Context
	cancel context.CancelFunc
	stream dutv1.DeviceUnderTestService_PacketsClient

	sent     int64          // packets sent on the stream
	bound    map[int]uint16 // the port each socket was bound to
	nextPort uint16
	pending  chan done // the call in progress

	mu        sync.Mutex
	packets   []target.Packet
	arrived   chan struct{} // closed when a packet arrives or the stream ends
	streamErr error
}

type done struct {
	res target.Result
	at  time.Duration
}

var (
	_ target.Target  = (*Target)(nil)
	_ target.Faulter = (*Target)(nil)
)

// New resets the agent on conn for a script with setup and opens its
// packet stream. Close it when the script is done.
func New(conn grpc.ClientConnInterface, setup target.Setup, opts Options) (*Target, error) {
	opts = opts.defaults()
	setup.Tolerance = Tolerance(setup.Tolerance, opts)
	ctx, cancel := context.WithCancel(context.Background())
	t := &Target{c: dutv1.NewDeviceUnderTestServiceClient(conn), opts: opts, setup: setup, ctx: ctx, cancel: cancel,
		bound: map[int]uint16{}, nextPort: FirstLocalPort, arrived: make(chan struct{})}
	stack, err := t.reset("")
	if err != nil {
		cancel()
		return nil, err
	}
	t.Stack = stack
	t.stream, err = t.c.Packets(ctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("the agent's Packets stream: %v", rpcErr(err))
	}
	t.origin = time.Now()
	go t.receive()
	return t, nil
}

// Tolerance is the tolerance a script written with tol is judged with on
// a DUT target with opts.
func Tolerance(tol time.Duration, opts Options) time.Duration {
	return max(tol, opts.defaults().MinTolerance)
}

// reset calls Reset with the script's setup.
func (t *Target) reset(name string) (string, error) {
	req := &dutv1.ResetRequest{Tolerance: durationpb.New(t.setup.Tolerance), Options: t.setup.Options, Script: name}
	if t.setup.Local.IsValid() {
		req.LocalAddress = t.setup.Local.String()
	}
	if t.setup.Remote.IsValid() {
		req.RemoteAddress = t.setup.Remote.String()
	}
	ctx, cancel := context.WithTimeout(context.Background(), t.opts.CallTimeout)
	defer cancel()
	resp, err := t.c.Reset(ctx, req)
	if err != nil {
		return "", fmt.Errorf("the agent's Reset: %v", rpcErr(err))
	}
	return resp.GetStack(), nil
}

// Close ends the packet stream and any call in progress, and resets the
// agent.
func (t *Target) Close() error {
	t.cancel()
	_, err := t.reset("")
	return err
}

// rpcErr says what a failed RPC was, in words.
func rpcErr(err error) string {
	if s, ok := status.FromError(err); ok {
		return fmt.Sprintf("%s: %s", s.Code(), s.Message())
	}
	return err.Error()
}

// receive stamps each packet the agent sends with the time it arrived.
func (t *Target) receive() {
	for {
		resp, err := t.stream.Recv()
		t.mu.Lock()
		if err != nil {
			switch {
			case errors.Is(err, io.EOF):
				t.streamErr = errors.New("the agent ended its Packets stream")
			case t.ctx.Err() == nil:
				t.streamErr = fmt.Errorf("the agent ended its Packets stream: %s", rpcErr(err))
			default:
				t.streamErr = errors.New("the target is closed")
			}
		} else {
			t.packets = append(t.packets, target.Packet{Time: t.Now(), Data: resp.GetPacket()})
		}
		close(t.arrived)
		t.arrived = make(chan struct{})
		t.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// Now is the wall clock since the run started.
func (t *Target) Now() time.Duration { return time.Since(t.origin) }

// AdvanceTo sleeps until d.
func (t *Target) AdvanceTo(d time.Duration) {
	if wait := d - t.Now(); wait > 0 {
		time.Sleep(wait)
	}
}

// Await waits for a packet, or until the clock reads until (MaxWait at
// most from now), or for the stream to end.
func (t *Target) Await(until time.Duration) {
	if until == math.MaxInt64 {
		until = t.Now() + t.opts.MaxWait
	}
	for {
		t.mu.Lock()
		ready, ch := len(t.packets) > 0 || t.streamErr != nil, t.arrived
		t.mu.Unlock()
		wait := until - t.Now()
		if ready || wait <= 0 {
			return
		}
		tm := time.NewTimer(wait)
		select {
		case <-ch:
		case <-tm.C:
		}
		tm.Stop()
	}
}

// Inject sends a packet on the stream.
func (t *Target) Inject(pkt []byte) error {
	t.mu.Lock()
	err := t.streamErr
	t.mu.Unlock()
	if err != nil {
		return err
	}
	if err := t.stream.Send(&dutv1.PacketsRequest{Packet: pkt}); err != nil {
		return fmt.Errorf("sending to the agent's Packets stream: %v", rpcErr(err))
	}
	t.sent++
	return nil
}

// Collect returns the packets that arrived since the last Collect.
func (t *Target) Collect() []target.Packet {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.packets
	t.packets = nil
	return p
}

// Fault is why the packet stream ended, or nil.
func (t *Target) Fault() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.streamErr
}

// canBlock says whether a call may block on its socket: those wait up to
// the tolerance, then run on as a call in progress.
var canBlock = map[string]bool{
	"accept": true, "accept4": true, "connect": true, "read": true, "recv": true, "recvfrom": true,
	"write": true, "send": true, "sendto": true, "poll": true,
}

// Call runs the call on the agent. One that cannot block gets
// CallTimeout; one that can is given the tolerance, then reported as
// blocked and left running (its RPC ends when the target closes).
func (t *Target) Call(c *target.Call) target.Result {
	if c.Name == "connect" {
		port, ok := t.bound[c.FD]
		if !ok {
			port = t.nextPort
			t.nextPort++
		}
		c.Local = netip.AddrPortFrom(c.Local.Addr(), port)
	}
	ctx, cancel := t.ctx, context.CancelFunc(func() {})
	wait := t.setup.Tolerance
	if !canBlock[c.Name] {
		ctx, cancel = context.WithTimeout(t.ctx, t.opts.CallTimeout)
		wait = t.opts.CallTimeout + time.Second // the RPC's own deadline ends it first
	}
	ctx = metadata.AppendToOutgoingContext(ctx, PacketsSentKey, strconv.FormatInt(t.sent, 10))
	ch := make(chan done, 1)
	go func() {
		defer cancel()
		res := t.do(ctx, c)
		ch <- done{res, t.Now()}
	}()
	tm := time.NewTimer(wait)
	defer tm.Stop()
	select {
	case d := <-ch:
		return t.note(c, d.res)
	case <-tm.C:
	}
	select {
	case d := <-ch:
		return t.note(c, d.res)
	default:
	}
	t.pending = ch
	res := target.Result{Blocked: true}
	if c.Name == "connect" {
		res.Local = c.Local
	}
	return res
}

// note records what the target must remember of a call's result.
func (t *Target) note(c *target.Call, r target.Result) target.Result {
	if c.Name == "connect" && r.Error == "" && r.Skip == "" {
		r.Local = c.Local // EINPROGRESS too: the SYN comes from it
	}
	if r.Error != "" || r.Skip != "" || r.Ret < 0 {
		return r
	}
	switch c.Name {
	case "bind":
		t.bound[c.FD] = c.Local.Port()
	case "listen":
		port, ok := t.bound[c.FD]
		if !ok {
			port = c.Local.Port()
		}
		r.Local = netip.AddrPortFrom(c.Local.Addr(), port)
	case "close":
		delete(t.bound, c.FD)
	}
	return r
}

// Pending waits for the call in progress until the clock reads until.
func (t *Target) Pending(until time.Duration) (target.Result, time.Duration, bool) {
	if t.pending == nil {
		return target.Result{}, 0, false
	}
	select { // first: a result that is there wins over a timer that is due
	case d := <-t.pending:
		t.pending = nil
		return d.res, d.at, true
	default:
	}
	wait := max(until-t.Now(), 0)
	tm := time.NewTimer(wait)
	defer tm.Stop()
	select {
	case d := <-t.pending:
		t.pending = nil
		return d.res, d.at, true
	case <-tm.C:
		return target.Result{}, 0, false
	}
}

// do makes the RPC for c and reads its answer.
func (t *Target) do(ctx context.Context, c *target.Call) target.Result {
	fd := int64(c.FD)
	var (
		r   *dutv1.Result
		err error
		res target.Result
	)
	switch c.Name {
	case "socket":
		var resp *dutv1.SocketResponse
		resp, err = t.c.Socket(ctx, &dutv1.SocketRequest{Type: c.Type, Domain: domain(t.setup.Local)})
		r = resp.GetResult()
	case "bind":
		var resp *dutv1.BindResponse
		resp, err = t.c.Bind(ctx, &dutv1.BindRequest{Fd: fd, Address: Address(c.Local)})
		r = resp.GetResult()
	case "listen":
		var resp *dutv1.ListenResponse
		resp, err = t.c.Listen(ctx, &dutv1.ListenRequest{Fd: fd, Backlog: c.Backlog, Address: Address(c.Local)})
		r = resp.GetResult()
	case "accept", "accept4":
		var resp *dutv1.AcceptResponse
		resp, err = t.c.Accept(ctx, &dutv1.AcceptRequest{Fd: fd})
		r = resp.GetResult()
	case "connect":
		var resp *dutv1.ConnectResponse
		resp, err = t.c.Connect(ctx, &dutv1.ConnectRequest{Fd: fd, Address: Address(c.Remote), Local: Address(c.Local)})
		r = resp.GetResult()
	case "read", "recv", "recvfrom":
		var resp *dutv1.ReadResponse
		resp, err = t.c.Read(ctx, &dutv1.ReadRequest{Fd: fd, Length: int64(c.Len), Flags: c.Flags, Call: c.Name})
		r = resp.GetResult()
	case "write", "send", "sendto":
		var resp *dutv1.WriteResponse
		resp, err = t.c.Write(ctx, &dutv1.WriteRequest{Fd: fd, Length: int64(c.Len), Flags: c.Flags, Call: c.Name})
		r = resp.GetResult()
	case "shutdown":
		var resp *dutv1.ShutdownResponse
		resp, err = t.c.Shutdown(ctx, &dutv1.ShutdownRequest{Fd: fd, How: c.How})
		r = resp.GetResult()
	case "close":
		var resp *dutv1.CloseResponse
		resp, err = t.c.Close(ctx, &dutv1.CloseRequest{Fd: fd})
		r = resp.GetResult()
	case "fcntl":
		var resp *dutv1.FcntlResponse
		resp, err = t.c.Fcntl(ctx, &dutv1.FcntlRequest{Fd: fd, Cmd: c.Cmd, Arg: c.Arg})
		r = resp.GetResult()
	case "setsockopt":
		req := &dutv1.SetSockOptRequest{Fd: fd, Level: c.Level, Option: c.Opt, Value: c.Value}
		if c.Linger != nil {
			req.Linger = &dutv1.Linger{Onoff: c.Linger.OnOff, Linger: c.Linger.Linger}
		}
		var resp *dutv1.SetSockOptResponse
		resp, err = t.c.SetSockOpt(ctx, req)
		r = resp.GetResult()
	case "getsockopt":
		var resp *dutv1.GetSockOptResponse
		resp, err = t.c.GetSockOpt(ctx, &dutv1.GetSockOptRequest{Fd: fd, Level: c.Level, Option: c.Opt})
		r = resp.GetResult()
		if resp.Value != nil {
			res.Value = &target.Value{Int: resp.GetValue()}
		}
		if in := resp.GetTcpInfo(); in != nil {
			res.Info = &target.TCPInfo{State: in.GetState(), StateText: in.GetStateText(), Fields: in.GetFields()}
		}
	case "poll":
		req := &dutv1.PollRequest{Timeout: c.Timeout}
		for _, p := range c.Poll {
			req.Fds = append(req.Fds, &dutv1.PollFd{Fd: int64(p.FD), Events: p.Events})
		}
		var resp *dutv1.PollResponse
		resp, err = t.c.Poll(ctx, req)
		r = resp.GetResult()
		for _, p := range resp.GetFds() {
			res.Poll = append(res.Poll, target.PollFD{FD: int(p.GetFd()), Events: p.GetEvents(), Revents: p.GetRevents()})
		}
	default:
		return target.Result{Skip: "skipped: system call " + c.Name + " has no RPC in the DUT protocol"}
	}
	if err != nil {
		// The deadline passed: on this side, or first on the agent's
		// (gRPC carries it), which then answers DEADLINE_EXCEEDED.
		if (ctx.Err() != nil || status.Code(err) == codes.DeadlineExceeded) && t.ctx.Err() == nil {
			return target.Result{Ret: -1, Error: fmt.Sprintf("the agent did not answer %s within %s", c.Name, t.opts.CallTimeout)}
		}
		return target.Result{Ret: -1, Error: fmt.Sprintf("the agent failed %s: %s", c.Name, rpcErr(err))}
	}
	if r == nil {
		return target.Result{Ret: -1, Error: fmt.Sprintf("the agent answered %s without a result", c.Name)}
	}
	res.Ret, res.Errno, res.Detail, res.Skip = r.GetRet(), r.GetErrno(), r.GetDetail(), r.GetSkip()
	if why := garbage(res); why != "" {
		return target.Result{Ret: res.Ret, Error: fmt.Sprintf("the agent answered %s with %s", c.Name, why)}
	}
	return res
}

// garbage says what is wrong with a result no socket call returns, or "".
func garbage(r target.Result) string {
	switch {
	case r.Ret == -1 && r.Errno == "" && r.Skip == "":
		return "-1 and no errno"
	case r.Ret == -1 && target.Symbols[r.Errno] == 0 && r.Skip == "":
		return fmt.Sprintf("-1 and errno %q, which is not an errno name (want packetdrill's: EAGAIN, ECONNRESET, ...)", r.Errno)
	case r.Ret < -1:
		return fmt.Sprintf("%d: a socket call returns -1 or a value from 0", r.Ret)
	case r.Ret >= 0 && r.Errno != "":
		return fmt.Sprintf("%d and errno %s: an errno goes with -1 only", r.Ret, r.Errno)
	}
	return ""
}

// domain is the socket's address family (Linux's numbers).
func domain(local netip.Addr) int64 {
	if local.Is6() && !local.Is4In6() {
		return target.Symbols["AF_INET6"]
	}
	return target.Symbols["AF_INET"]
}

// AddrPort reads an Address; the zero AddrPort if a is nil or its IP is
// empty (the wildcard).
func AddrPort(a *dutv1.Address) (netip.AddrPort, error) {
	if a == nil {
		return netip.AddrPort{}, nil
	}
	if a.GetPort() > 65535 {
		return netip.AddrPort{}, fmt.Errorf("port %d is out of range", a.GetPort())
	}
	if a.GetIp() == "" {
		return netip.AddrPortFrom(netip.Addr{}, uint16(a.GetPort())), nil
	}
	ip, err := netip.ParseAddr(a.GetIp())
	if err != nil {
		return netip.AddrPort{}, err
	}
	return netip.AddrPortFrom(ip, uint16(a.GetPort())), nil
}

// Address is the wire form of ap.
func Address(ap netip.AddrPort) *dutv1.Address {
	a := &dutv1.Address{Port: uint32(ap.Port())}
	if ap.Addr().IsValid() {
		a.Ip = ap.Addr().String()
	}
	return a
}
