// Package dut serves a TCP stack as a device under test: the gRPC service
// tcpstate.dut.v1.DeviceUnderTestService over a Stack, so that
// `tcpstated script run --target=dut:HOST:PORT` (script/duttarget) can
// run packetdrill scripts against it. The Stacks here are tcpstated's
// own engine on the wall clock (Engine), optionally broken in one way
// (Bug) to prove that the scripts catch it, and the machine's Linux
// kernel in a network namespace per script (Kernel, with the kernel
// target's code); a student's stack implements the same service in its
// own language (examples/dut-node is a starter).
package dut

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	dutv1 "github.com/tcpstated/tcpstated/gen/tcpstate/dut/v1"
	"github.com/tcpstated/tcpstated/script/duttarget"
	"github.com/tcpstated/tcpstated/script/target"
)

// Stack is a TCP stack behind the service. Its methods may be called
// from several goroutines.
type Stack interface {
	// Reset forgets every socket and connection and prepares for a
	// script with these addresses and options; it returns what the stack
	// is, for the report.
	Reset(setup target.Setup) (string, error)
	// Call runs one socket call, blocking until it returns or ctx ends.
	Call(ctx context.Context, c *target.Call) (target.Result, error)
	// Inject hands the stack one inbound IP packet.
	Inject(pkt []byte) error
	// Output sets where the stack writes each packet it emits.
	Output(out func(pkt []byte))
}

// maxQueue bounds the packets kept while no stream takes them.
const maxQueue = 4096

// Server is the DeviceUnderTestService over a Stack.
type Server struct {
	dutv1.UnimplementedDeviceUnderTestServiceServer
	stack Stack

	mu       sync.Mutex
	queue    [][]byte      // emitted, not yet sent on a stream
	gen      int           // the newest stream (or Reset): older streams stop
	injected int64         // packets the newest stream handed the stack
	wake     chan struct{} // closed when queue, gen or injected changes
}

// PacketsSentKey: a call runs after the packets sent before it.
const PacketsSentKey = duttarget.PacketsSentKey

// NewServer serves s.
func NewServer(s Stack) *Server {
	srv := &Server{stack: s, wake: make(chan struct{})}
	s.Output(srv.emit)
	return srv
}

func (s *Server) emit(pkt []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) < maxQueue {
		s.queue = append(s.queue, pkt)
	}
	s.wakeLocked()
}

func (s *Server) wakeLocked() {
	close(s.wake)
	s.wake = make(chan struct{})
}

// Reset resets the stack and drops the packets it emitted before.
func (s *Server) Reset(_ context.Context, req *dutv1.ResetRequest) (*dutv1.ResetResponse, error) {
	setup := target.Setup{Tolerance: req.GetTolerance().AsDuration(), Options: req.GetOptions()}
	for _, a := range []struct {
		name string
		s    string
		to   *netip.Addr
	}{{"local_address", req.GetLocalAddress(), &setup.Local}, {"remote_address", req.GetRemoteAddress(), &setup.Remote}} {
		if a.s == "" {
			continue
		}
		ip, err := netip.ParseAddr(a.s)
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "%s: %v", a.name, err)
		}
		*a.to = ip
	}
	name, err := s.stack.Reset(setup)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "reset: %v", err)
	}
	s.mu.Lock()
	s.queue = nil
	s.gen++
	s.wakeLocked()
	s.mu.Unlock()
	return &dutv1.ResetResponse{Stack: name}, nil
}

// Packets carries inbound packets to the stack and its packets back. A
// newer stream replaces this one.
func (s *Server) Packets(stream dutv1.DeviceUnderTestService_PacketsServer) error {
	s.mu.Lock()
	s.gen++
	gen := s.gen
	s.injected = 0
	s.wakeLocked()
	s.mu.Unlock()
	if c, ok := s.stack.(interface{ closesStreams() bool }); ok && c.closesStreams() {
		return nil // BugCloseStream
	}
	recvErr := make(chan error, 1)
	go func() {
		for {
			req, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			_ = s.stack.Inject(req.GetPacket()) // a packet the stack refuses is lost, as on a wire
			s.mu.Lock()
			if s.gen == gen {
				s.injected++
				s.wakeLocked()
			}
			s.mu.Unlock()
		}
	}()
	for {
		s.mu.Lock()
		if s.gen != gen {
			s.mu.Unlock()
			return status.Error(codes.Aborted, "a newer Packets stream or a Reset replaced this stream")
		}
		q, w := s.queue, s.wake
		s.queue = nil
		s.mu.Unlock()
		for _, p := range q {
			if err := stream.Send(&dutv1.PacketsResponse{Packet: p}); err != nil {
				return err
			}
		}
		select {
		case <-w:
		case err := <-recvErr:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case <-stream.Context().Done():
			return stream.Context().Err()
		}
	}
}

// run runs c on the stack, after the packets sent before it; an error is
// a gRPC status.
func (s *Server) run(ctx context.Context, c *target.Call) (target.Result, error) {
	if err := s.awaitPackets(ctx); err != nil {
		return target.Result{}, err
	}
	res, err := s.stack.Call(ctx, c)
	if err != nil {
		if _, ok := status.FromError(err); ok {
			return res, err
		}
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return res, status.FromContextError(err).Err() // DEADLINE_EXCEEDED or CANCELED
		}
		return res, status.Errorf(codes.Internal, "%s: %v", c.Name, err)
	}
	return res, nil
}

// awaitPackets waits until the stack has taken the packets the client
// sent before this call.
func (s *Server) awaitPackets(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	v := md.Get(PacketsSentKey)
	if len(v) == 0 {
		return nil
	}
	n, err := strconv.ParseInt(v[0], 10, 64)
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "metadata %s: %v", PacketsSentKey, err)
	}
	for {
		s.mu.Lock()
		got, w := s.injected, s.wake
		s.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-w:
		case <-ctx.Done():
			return status.Errorf(codes.DeadlineExceeded, "the call waited for %d packets from the stream and got %d", n, got)
		}
	}
}

// call runs c on the stack and returns its result's wire form.
func (s *Server) call(ctx context.Context, c *target.Call) (*dutv1.Result, error) {
	res, err := s.run(ctx, c)
	if err != nil {
		return nil, err
	}
	return ResultProto(res), nil
}

// ResultProto is the wire form of a call's result (its value, TCP_INFO
// and poll entries travel in the responses that have them).
func ResultProto(r target.Result) *dutv1.Result {
	return &dutv1.Result{Ret: r.Ret, Errno: r.Errno, Detail: r.Detail, Skip: r.Skip}
}

func addrArg(field string, a *dutv1.Address) (netip.AddrPort, error) {
	ap, err := duttarget.AddrPort(a)
	if err != nil {
		return ap, status.Errorf(codes.InvalidArgument, "%s: %v", field, err)
	}
	return ap, nil
}

func (s *Server) Socket(ctx context.Context, req *dutv1.SocketRequest) (*dutv1.SocketResponse, error) {
	r, err := s.call(ctx, &target.Call{Name: "socket", Type: req.GetType()})
	return &dutv1.SocketResponse{Result: r}, err
}

func (s *Server) Bind(ctx context.Context, req *dutv1.BindRequest) (*dutv1.BindResponse, error) {
	local, err := addrArg("address", req.GetAddress())
	if err != nil {
		return nil, err
	}
	r, err := s.call(ctx, &target.Call{Name: "bind", FD: int(req.GetFd()), Local: local})
	return &dutv1.BindResponse{Result: r}, err
}

func (s *Server) Listen(ctx context.Context, req *dutv1.ListenRequest) (*dutv1.ListenResponse, error) {
	local, err := addrArg("address", req.GetAddress())
	if err != nil {
		return nil, err
	}
	r, err := s.call(ctx, &target.Call{Name: "listen", FD: int(req.GetFd()), Local: local, Backlog: req.GetBacklog()})
	return &dutv1.ListenResponse{Result: r}, err
}

func (s *Server) Accept(ctx context.Context, req *dutv1.AcceptRequest) (*dutv1.AcceptResponse, error) {
	r, err := s.call(ctx, &target.Call{Name: "accept", FD: int(req.GetFd())})
	return &dutv1.AcceptResponse{Result: r}, err
}

func (s *Server) Connect(ctx context.Context, req *dutv1.ConnectRequest) (*dutv1.ConnectResponse, error) {
	remote, err := addrArg("address", req.GetAddress())
	if err != nil {
		return nil, err
	}
	local, err := addrArg("local", req.GetLocal())
	if err != nil {
		return nil, err
	}
	r, err := s.call(ctx, &target.Call{Name: "connect", FD: int(req.GetFd()), Local: local, Remote: remote})
	return &dutv1.ConnectResponse{Result: r}, err
}

// ioName is the call a read or write request names, or def.
func ioName(name, def string, allowed ...string) string {
	for _, a := range allowed {
		if name == a {
			return name
		}
	}
	return def
}

func (s *Server) Read(ctx context.Context, req *dutv1.ReadRequest) (*dutv1.ReadResponse, error) {
	if req.GetLength() < 0 || req.GetLength() > 1<<20 {
		return nil, status.Errorf(codes.InvalidArgument, "length %d: want 0 to 1 MiB", req.GetLength())
	}
	r, err := s.call(ctx, &target.Call{Name: ioName(req.GetCall(), "read", "recv", "recvfrom"), FD: int(req.GetFd()),
		Len: int(req.GetLength()), Flags: req.GetFlags()})
	return &dutv1.ReadResponse{Result: r}, err
}

func (s *Server) Write(ctx context.Context, req *dutv1.WriteRequest) (*dutv1.WriteResponse, error) {
	if req.GetLength() < 0 || req.GetLength() > 1<<20 {
		return nil, status.Errorf(codes.InvalidArgument, "length %d: want 0 to 1 MiB", req.GetLength())
	}
	r, err := s.call(ctx, &target.Call{Name: ioName(req.GetCall(), "write", "send", "sendto"), FD: int(req.GetFd()),
		Len: int(req.GetLength()), Flags: req.GetFlags()})
	return &dutv1.WriteResponse{Result: r}, err
}

func (s *Server) Shutdown(ctx context.Context, req *dutv1.ShutdownRequest) (*dutv1.ShutdownResponse, error) {
	r, err := s.call(ctx, &target.Call{Name: "shutdown", FD: int(req.GetFd()), How: req.GetHow()})
	return &dutv1.ShutdownResponse{Result: r}, err
}

func (s *Server) Close(ctx context.Context, req *dutv1.CloseRequest) (*dutv1.CloseResponse, error) {
	r, err := s.call(ctx, &target.Call{Name: "close", FD: int(req.GetFd())})
	return &dutv1.CloseResponse{Result: r}, err
}

func (s *Server) Fcntl(ctx context.Context, req *dutv1.FcntlRequest) (*dutv1.FcntlResponse, error) {
	r, err := s.call(ctx, &target.Call{Name: "fcntl", FD: int(req.GetFd()), Cmd: req.GetCmd(), Arg: req.GetArg()})
	return &dutv1.FcntlResponse{Result: r}, err
}

func (s *Server) SetSockOpt(ctx context.Context, req *dutv1.SetSockOptRequest) (*dutv1.SetSockOptResponse, error) {
	c := &target.Call{Name: "setsockopt", FD: int(req.GetFd()), Level: req.GetLevel(), Opt: req.GetOption(), Value: req.GetValue()}
	if l := req.GetLinger(); l != nil {
		c.Linger = &target.Linger{OnOff: l.GetOnoff(), Linger: l.GetLinger()}
	}
	r, err := s.call(ctx, c)
	return &dutv1.SetSockOptResponse{Result: r}, err
}

func (s *Server) GetSockOpt(ctx context.Context, req *dutv1.GetSockOptRequest) (*dutv1.GetSockOptResponse, error) {
	c := &target.Call{Name: "getsockopt", FD: int(req.GetFd()), Level: req.GetLevel(), Opt: req.GetOption()}
	res, err := s.run(ctx, c)
	if err != nil {
		return nil, err
	}
	resp := &dutv1.GetSockOptResponse{Result: ResultProto(res)}
	if res.Value != nil {
		v := res.Value.Int
		resp.Value = &v
	}
	if in := res.Info; in != nil {
		resp.TcpInfo = &dutv1.TcpInfo{State: in.State, StateText: in.StateText, Fields: in.Fields}
	}
	return resp, nil
}

func (s *Server) Poll(ctx context.Context, req *dutv1.PollRequest) (*dutv1.PollResponse, error) {
	c := &target.Call{Name: "poll", Timeout: req.GetTimeout()}
	for _, p := range req.GetFds() {
		c.Poll = append(c.Poll, target.PollFD{FD: int(p.GetFd()), Events: p.GetEvents()})
	}
	res, err := s.run(ctx, c)
	if err != nil {
		return nil, err
	}
	resp := &dutv1.PollResponse{Result: ResultProto(res)}
	for _, p := range res.Poll {
		resp.Fds = append(resp.Fds, &dutv1.PollFd{Fd: int64(p.FD), Events: p.Events, Revents: p.Revents})
	}
	return resp, nil
}

// Serve serves stack on lis until ctx ends.
func Serve(ctx context.Context, lis net.Listener, stack Stack) error {
	gs := grpc.NewServer()
	dutv1.RegisterDeviceUnderTestServiceServer(gs, NewServer(stack))
	go func() {
		<-ctx.Done()
		gs.Stop() // streams and blocked calls end now: the client gets UNAVAILABLE
	}()
	err := gs.Serve(lis)
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}
