package main

// `tcpstated tun`: one REALTIME session attached to a TUN device, so the
// Linux kernel (or anything routed through the device) talks TCP to the
// engine. Everything goes through the public gRPC API, in-process or
// against a running server (--server):
//
//	device ──read──► reader ──(netem)──► ExchangeSegments (batches of packets)
//	device ◄─write── (netem-out) ◄── WatchSegments: every segment the session emits, in order
//	application (echo, serve, sink, send-bytes) ── AcceptConnection, ReceiveData, SendData,
//	                                               ShutdownEndpoint, CloseEndpoint, AbortEndpoint
//
// The watch is the one writer to the device, so segments leave in the
// order the engine emitted them (writing them from several call responses
// at once reordered them, and Linux answered with duplicate ACKs and SACKs
// that set off spurious fast retransmits). The server drops a watch that
// falls 256 batches (inputs) behind; so the exchange loop waits, before
// its next request, until the watch has written the segments its last
// response listed (the wire type), and only writes them itself if they do
// not come (a watch dropped after all, and its outbound queue overflowed).
//
// The application is woken by every exchange response (the events of
// inbound packets) and otherwise polls every 100 ms, for changes only
// timers cause.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"hash"
	"hash/maphash"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/tcpstated/tcpstated/fsm"
	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
	"github.com/tcpstated/tcpstated/service"
	replaylog "github.com/tcpstated/tcpstated/store"
)

// tunConfig is what `tcpstated tun` is told by flags and environment.
type tunConfig struct {
	dev        string
	server     string
	dataDir    string
	fsync      string
	grpcListen string
	session    string
	local      netip.Addr
	peer       netip.Addr
	listen     uint16
	connect    netip.AddrPort
	localPort  uint16

	echo       bool
	serveFile  string
	sink       bool
	sendBytes  int64
	closeAfter string
	abort      bool
	conns      int
	hold       bool

	receiveWindow int
	sendBuffer    int
	netemIn       netemSpec
	netemOut      netemSpec
	netemSeed     uint64
	logLevel      string
}

const tunUsage = `Usage: tcpstated tun [flags]

Attaches one REALTIME session to a TUN device: every IP packet the kernel
writes to the device is submitted to the session (ExchangeSegments), every
segment the session emits is written to the device (WatchSegments). An
application in the same process, through the same API, listens (--listen)
or connects (--connect) and echoes, serves a file, sends a pattern, or sinks
what arrives. Needs CAP_NET_ADMIN for the device.

  # a device of its own (created and configured: kernel 10.9.0.1, tcpstated 10.9.0.2)
  sudo tcpstated tun --dev tcpst0 --listen 7 --echo
  nc 10.9.0.2 7

Output, one line per event, on stdout:
  session NAME | api ADDR | listening NAME LOCAL | connecting NAME LOCAL REMOTE
  accepted NAME LOCAL REMOTE
  state NAME FROM TO CAUSE TIME           (state changes of inbound segments and application calls)
  done NAME received=N received_sha256=HEX sent=N sent_sha256=HEX state=STATE recv_mbps=X recv_end_unix_ns=T
  error NAME received=N sent=N: REASON   (e.g. "connection reset", "connection refused")
  stats packets_in=N packets_out=N ...

The pattern of --send-bytes is byte i = i mod 251. recv_mbps is MB/s (10^6
bytes) from the first byte read to the last; recv_end_unix_ns is when the
last one was read.

Flags (each can also be set by the environment variable shown):
`

func parseTunFlags(args []string, stderr io.Writer) (*tunConfig, error) {
	c := &tunConfig{}
	fs := flag.NewFlagSet("tcpstated tun", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var local, peer, connect, netemIn, netemOut string
	var listen, localPort uint
	fs.StringVar(&c.dev, "dev", "tcpstated0", "TUN device name; opened if it exists, else created and configured (kernel side --peer, point-to-point to --local, up)")
	fs.StringVar(&c.server, "server", "", "use the running server at this gRPC address (host:port or unix:PATH) instead of one in this process")
	fs.StringVar(&c.dataDir, "data-dir", "", "in-process server: directory of the session log (default: a temporary directory, removed at exit)")
	fs.StringVar(&c.fsync, "fsync", "", "in-process server: always, batch or never (see tcpstated serve --help); default never with the temporary directory, always with --data-dir")
	fs.StringVar(&c.grpcListen, "grpc-listen", "", "in-process server: also serve the API here (host:port or unix:PATH), to watch the session with other clients")
	fs.StringVar(&c.session, "session", "tun", "session ID; created if absent with the REALTIME clock, window scaling and the buffers below")
	fs.StringVar(&local, "local", "10.9.0.2", "tcpstated's IP address (the source of what it sends)")
	fs.StringVar(&peer, "peer", "10.9.0.1", "the kernel's address on the device (used only to configure a device this command creates)")
	fs.UintVar(&listen, "listen", 0, "listen on this port of --local")
	fs.StringVar(&connect, "connect", "", "connect to ADDR:PORT (e.g. 10.9.0.1:5000)")
	fs.UintVar(&localPort, "local-port", 0, "with --connect: the local port (default: random in 32768-60999)")
	fs.BoolVar(&c.echo, "echo", false, "application: send back what arrives")
	fs.StringVar(&c.serveFile, "serve", "", "application: send this file, then close (--close-after sent)")
	fs.BoolVar(&c.sink, "sink", false, "application: read and count what arrives (the default when nothing else is asked)")
	fs.Int64Var(&c.sendBytes, "send-bytes", 0, "application: send this many bytes of the pattern i mod 251 (combines with --sink)")
	fs.StringVar(&c.closeAfter, "close-after", "", "when to close: sent (shutdown once everything is sent, close at end of file; the active close), eof (close once the peer's FIN is read and everything is sent; the passive close) or never; default eof, sent for --serve")
	fs.BoolVar(&c.abort, "abort", false, "abort (RST) instead of closing when --close-after fires, once everything sent is acknowledged")
	fs.IntVar(&c.conns, "connections", 0, "with --listen: exit after this many connections ended (0: run until SIGINT/SIGTERM)")
	fs.BoolVar(&c.hold, "hold", false, "keep running after the application is done (TIME-WAIT is served, the API inspectable) until SIGINT/SIGTERM")
	fs.IntVar(&c.receiveWindow, "receive-window", service.DefaultMaxBufferBytes, "receive buffer (window) of a session this command creates, in bytes")
	fs.IntVar(&c.sendBuffer, "send-buffer", service.DefaultMaxBufferBytes, "send buffer of a session this command creates, in bytes")
	fs.StringVar(&netemIn, "netem", "", `impair packets from the device, as a netem qdisc on it would: "loss 5% delay 20ms reorder 10%"`)
	fs.StringVar(&netemOut, "netem-out", "", "impair packets to the device the same way")
	fs.Uint64Var(&c.netemSeed, "netem-seed", 1, "seed of the impairments' random choices")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level on stderr: debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), tunUsage)
		fs.VisitAll(func(f *flag.Flag) {
			fmt.Fprintf(fs.Output(), "  --%s (%s, default %q)\n    \t%s\n", f.Name, envName("tun-"+f.Name), f.DefValue, f.Usage)
		})
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if err := envFallback(fs, "tun-"); err != nil {
		return nil, err
	}
	var err error
	if c.local, err = netip.ParseAddr(local); err != nil {
		return nil, fmt.Errorf("--local: %v", err)
	}
	if c.peer, err = netip.ParseAddr(peer); err != nil {
		return nil, fmt.Errorf("--peer: %v", err)
	}
	if listen > 65535 || localPort > 65535 {
		return nil, errors.New("--listen and --local-port are ports, 1 to 65535")
	}
	c.listen, c.localPort = uint16(listen), uint16(localPort)
	if connect != "" {
		if c.connect, err = netip.ParseAddrPort(connect); err != nil {
			return nil, fmt.Errorf("--connect: %v", err)
		}
		if c.connect.Port() == 0 || c.connect.Addr().Is4() != c.local.Is4() {
			return nil, fmt.Errorf("--connect: %s needs a port and the address family of --local %s", connect, c.local)
		}
	}
	switch {
	case (c.listen == 0) == (connect == ""):
		return nil, errors.New("give one of --listen PORT or --connect ADDR:PORT")
	case c.echo && (c.serveFile != "" || c.sendBytes != 0):
		return nil, errors.New("--echo sends what arrives: it does not combine with --serve or --send-bytes")
	case c.serveFile != "" && c.sendBytes != 0:
		return nil, errors.New("--serve and --send-bytes both say what to send: give one")
	case c.sendBytes < 0:
		return nil, errors.New("--send-bytes: negative")
	case c.conns < 0:
		return nil, errors.New("--connections: negative")
	}
	if c.closeAfter == "" {
		c.closeAfter = "eof"
		if c.serveFile != "" {
			c.closeAfter = "sent"
		}
	}
	switch c.closeAfter {
	case "sent", "eof", "never":
	default:
		return nil, fmt.Errorf("--close-after: %q is not sent, eof or never", c.closeAfter)
	}
	if c.abort && c.closeAfter == "never" {
		return nil, errors.New("--abort acts when --close-after fires: not with never")
	}
	if c.fsync == "" {
		c.fsync = "never" // the log goes with the temporary directory
		if c.dataDir != "" {
			c.fsync = "always"
		}
	}
	if _, err := replaylog.ParseFsyncMode(c.fsync); err != nil {
		return nil, fmt.Errorf("--fsync: %v", err)
	}
	if c.netemIn, err = parseNetem(netemIn); err != nil {
		return nil, fmt.Errorf("--netem: %v", err)
	}
	if c.netemOut, err = parseNetem(netemOut); err != nil {
		return nil, fmt.Errorf("--netem-out: %v", err)
	}
	if c.receiveWindow <= 0 || c.sendBuffer <= 0 {
		return nil, errors.New("--receive-window and --send-buffer must be positive")
	}
	return c, nil
}

// envFallback sets every flag not given on the command line from its
// environment variable (envName(prefix+name)).
func envFallback(fs *flag.FlagSet, prefix string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		if v, ok := os.LookupEnv(envName(prefix + f.Name)); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s=%q: %v", envName(prefix+f.Name), v, e)
			}
		}
	})
	return err
}

func tunCommand(args []string, stdout, stderr io.Writer) int {
	c, err := parseTunFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "tcpstated tun: %v\n", err)
		return 2
	}
	logger, err := newLogger("text", c.logLevel, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "tcpstated tun: %v\n", err)
		return 2
	}
	dev, err := openTun(c.dev, c.peer, c.local, logger)
	if err != nil {
		fmt.Fprintf(stderr, "tcpstated tun: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return runTun(ctx, c, dev, stdout, logger)
}

// packetDevice is a TUN device: one IP packet per read and per write.
type packetDevice interface {
	ReadPacket(b []byte) (int, error)
	WritePacket(b []byte) error
	Close() error
}

// runTun bridges dev and a session and runs the application until it is
// done or ctx ends. It returns the exit code and closes dev.
func runTun(ctx context.Context, c *tunConfig, dev packetDevice, stdout io.Writer, logger *slog.Logger) int {
	out := &lineWriter{w: stdout}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	conn, cleanup, err := c.dial(ctx, out, logger)
	if err != nil {
		dev.Close()
		logger.Error("starting", "err", err)
		return 1
	}
	defer cleanup()
	parent, err := c.ensureSession(ctx, pb.NewSessionServiceClient(conn))
	if err != nil {
		dev.Close()
		logger.Error("session", "err", err)
		return 1
	}
	out.printf("session %s", parent)

	b := &bridge{dev: dev, seg: pb.NewSegmentServiceClient(conn), parent: parent, log: logger, wake: newNotifier(), out: out}
	rng := rand.New(rand.NewPCG(c.netemSeed, 0x7463707374617465))
	b.in = make(chan []byte, 8192)
	b.netemIn = newNetem(c.netemIn, rng, func(p []byte) {
		select {
		case b.in <- p: // a full channel holds the reader back, as a full device queue would
		case <-ctx.Done():
		}
	}, &b.stats.netemDropped)
	b.netemOut = newNetem(c.netemOut, rand.New(rand.NewPCG(c.netemSeed+1, 1)), b.write, &b.stats.netemDropped)
	b.wire = newWire(b.netemOut.send)
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	for _, f := range []func(context.Context) error{b.readLoop, b.exchangeLoop, b.watchLoop} {
		wg.Go(func() {
			if err := f(ctx); err != nil && ctx.Err() == nil {
				errc <- err
			}
		})
	}
	a := &app{cfg: c, ep: pb.NewEndpointServiceClient(conn), parent: parent, out: out, wake: b.wake, log: logger}
	done := make(chan int, 1)
	go func() { done <- a.run(ctx) }()

	code := 0
	select {
	case code = <-done:
		// Keep the bridge up a little for the last segments in flight (the
		// peer's ACK of our FIN); with --hold, to serve TIME-WAIT and the
		// API until a signal.
		grace := time.NewTimer(500 * time.Millisecond)
		if c.hold {
			grace.Stop()
		}
		select {
		case <-grace.C:
		case <-ctx.Done():
		case err := <-errc:
			logger.Error("bridge failed", "err", err)
			code = 1
		}
	case err := <-errc:
		logger.Error("bridge failed", "err", err)
		code = 1
	case <-ctx.Done():
	}
	cancel()
	dev.Close()
	b.netemIn.stop()
	b.netemOut.stop()
	wg.Wait()
	s := &b.stats
	dropped := uint64(0)
	gctx, gcancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer gcancel()
	if r, err := pb.NewSessionServiceClient(conn).GetSession(gctx, &pb.GetSessionRequest{Name: parent}); err == nil {
		dropped = r.Session.GetOutboundDropped()
	}
	out.printf("stats packets_in=%d packets_out=%d not_tcp=%d exchanges=%d refused_packets=%d netem_dropped=%d write_errors=%d watch_restarts=%d outbound_dropped=%d direct_writes=%d",
		s.packetsIn.Load(), s.packetsOut.Load(), s.notTCP.Load(), s.exchanges.Load(), s.refused.Load(), s.netemDropped.Load(), s.writeErrors.Load(), s.watchRestarts.Load(), dropped, b.wire.direct.Load())
	return code
}

// dial connects to --server, or starts a service and a gRPC server in this
// process (over an in-memory connection, and on --grpc-listen if given).
func (c *tunConfig) dial(ctx context.Context, out *lineWriter, logger *slog.Logger) (*grpc.ClientConn, func(), error) {
	callOpts := grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20))
	if c.server != "" {
		conn, err := grpc.NewClient(c.server, grpc.WithTransportCredentials(insecure.NewCredentials()), callOpts)
		if err != nil {
			return nil, nil, err
		}
		return conn, func() { conn.Close() }, nil
	}
	dir, removeDir := c.dataDir, false
	if dir == "" {
		d, err := os.MkdirTemp("", "tcpstated-tun-")
		if err != nil {
			return nil, nil, err
		}
		dir, removeDir = d, true
	}
	fsync, _ := replaylog.ParseFsyncMode(c.fsync)
	svc, err := service.Open(service.Config{
		DataDir: dir,
		Fsync:   fsync,
		Logger:  logger,
		Limits:  service.Limits{MaxBufferBytes: max(c.receiveWindow, c.sendBuffer, service.DefaultMaxBufferBytes), MaxMessageBytes: 16 << 20},
	})
	if err != nil {
		if removeDir {
			os.RemoveAll(dir)
		}
		return nil, nil, err
	}
	gs := grpc.NewServer(grpc.MaxRecvMsgSize(16 << 20))
	svc.Register(gs)
	reflection.Register(gs)
	mem := bufconn.Listen(4 << 20)
	go gs.Serve(mem)
	if c.grpcListen != "" {
		lis, err := listenAddr(c.grpcListen)
		if err != nil {
			gs.Stop()
			svc.Close()
			if removeDir {
				os.RemoveAll(dir)
			}
			return nil, nil, fmt.Errorf("--grpc-listen: %w", err)
		}
		go gs.Serve(lis)
		addr := lis.Addr().String()
		if lis.Addr().Network() == "unix" {
			addr = "unix:" + addr
		}
		out.printf("api %s", addr)
	}
	conn, err := grpc.NewClient("passthrough:///tcpstated-tun",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return mem.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()), callOpts)
	if err != nil {
		gs.Stop()
		svc.Close()
		return nil, nil, err
	}
	cleanup := func() {
		conn.Close()
		svc.StopStreams()
		gs.Stop()
		if err := svc.Close(); err != nil {
			logger.Warn("closing the session log", "err", err)
		}
		if removeDir {
			os.RemoveAll(dir)
		}
	}
	return conn, cleanup, nil
}

// listenAddr listens on "unix:PATH" or a TCP host:port.
func listenAddr(addr string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		return net.Listen("unix", path)
	}
	return net.Listen("tcp", addr)
}

// ensureSession gets --session, or creates it: REALTIME, window scaling on,
// the configured buffers. An existing session must be REALTIME.
func (c *tunConfig) ensureSession(ctx context.Context, sc pb.SessionServiceClient) (string, error) {
	name := "sessions/" + c.session
	got, err := sc.GetSession(ctx, &pb.GetSessionRequest{Name: name})
	if err == nil {
		if m := got.Session.GetOptions().GetClockMode(); m != pb.ClockMode_CLOCK_MODE_REALTIME {
			return "", fmt.Errorf("session %s has clock mode %v: a device needs CLOCK_MODE_REALTIME", name, m)
		}
		return name, nil
	}
	if status.Code(err) != codes.NotFound {
		return "", err
	}
	_, err = sc.CreateSession(ctx, &pb.CreateSessionRequest{SessionId: c.session, Session: &pb.Session{Options: &pb.SessionOptions{
		ClockMode:     pb.ClockMode_CLOCK_MODE_REALTIME,
		ReceiveWindow: uint32(c.receiveWindow),
		SendBuffer:    uint32(c.sendBuffer),
	}}})
	if err != nil {
		return "", fmt.Errorf("creating session %s: %w", name, err)
	}
	return name, nil
}

// ---- the bridge: device ⇄ session ----

type bridge struct {
	out      *lineWriter
	wire     *wire
	dev      packetDevice
	seg      pb.SegmentServiceClient
	parent   string
	log      *slog.Logger
	wake     *notifier
	in       chan []byte // packets from the device, after netem
	netemIn  *netem
	netemOut *netem
	stats    struct {
		packetsIn, packetsOut, notTCP, exchanges, refused, netemDropped, writeErrors, watchRestarts atomic.Uint64
	}
}

// readLoop reads packets from the device; TCP ones go on (through netem)
// to the session, others (IPv6 neighbour discovery, ICMP, ...) are counted
// and dropped.
func (b *bridge) readLoop(ctx context.Context) error {
	buf := make([]byte, 65536)
	for {
		n, err := b.dev.ReadPacket(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, os.ErrClosed) {
				return nil
			}
			return fmt.Errorf("reading the device: %w", err)
		}
		if !isTCP(buf[:n]) {
			b.stats.notTCP.Add(1)
			continue
		}
		b.stats.packetsIn.Add(1)
		p := make([]byte, n)
		copy(p, buf[:n])
		if ctx.Err() != nil {
			return nil
		}
		b.netemIn.send(p)
	}
}

// isTCP reports whether p is an unfragmented IPv4 packet or an IPv6 packet
// (without extension headers) carrying TCP.
func isTCP(p []byte) bool {
	if len(p) < 20 {
		return false
	}
	switch p[0] >> 4 {
	case 4:
		fragment := (uint16(p[6])<<8|uint16(p[7]))&0x3fff != 0 // MF or an offset
		return p[9] == 6 && !fragment
	case 6:
		return len(p) >= 40 && p[6] == 6
	}
	return false
}

// Batches stay well under the server's request limits, and under the
// 256 batches (one per packet) a watch may fall behind.
const (
	maxBatchPackets = 192
	maxBatchBytes   = 1 << 20
)

// exchangeLoop submits packets in batches on one ExchangeSegments stream:
// one request in flight; packets arriving meanwhile make the next batch.
// The responses' events wake the application; their segments reach the
// device through the watch, which the loop lets catch up first.
func (b *bridge) exchangeLoop(ctx context.Context) error {
	stream, err := b.seg.ExchangeSegments(ctx)
	if err != nil {
		return err
	}
	var seq uint64
	batch := make([][]byte, 0, maxBatchPackets)
	for {
		batch = batch[:0]
		select {
		case p := <-b.in:
			batch = append(batch, p)
		case <-ctx.Done():
			return nil
		}
		size := len(batch[0])
	fill:
		for len(batch) < maxBatchPackets && size < maxBatchBytes {
			select {
			case p := <-b.in:
				batch = append(batch, p)
				size += len(p)
			default:
				break fill
			}
		}
		for pkts := batch; len(pkts) > 0; {
			seq++
			err := stream.Send(&pb.ExchangeSegmentsRequest{Parent: b.parent, IpPackets: pkts, RawOnly: true, Sequence: seq})
			var resp *pb.ExchangeSegmentsResponse
			if err == nil || err == io.EOF {
				resp, err = stream.Recv() // after a failed Send, Recv has the reason
			}
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("ExchangeSegments: %w", err)
			}
			b.stats.exchanges.Add(1)
			b.out.transitions(resp.GetOutputs())
			b.wire.settle(ctx, resp.GetOutputs(), settleTimeout)
			if len(resp.GetOutputs().GetEvents()) > 0 || len(resp.GetOutputs().GetTransitions()) > 0 || resp.Processed > 0 {
				b.wake.notify()
			}
			if resp.Error == "" {
				break
			}
			// A packet the engine could not parse: skip it, submit the rest.
			b.stats.refused.Add(1)
			b.log.Warn("a packet from the device was refused", "err", resp.Error)
			pkts = pkts[min(int(resp.Processed)+1, len(pkts)):]
		}
	}
}

// watchLoop writes every segment the session emits to the device, in
// order. A watch dropped for falling behind is opened again (the server
// keeps the newest segments meanwhile in the outbound queue, which a new
// watch drains first).
func (b *bridge) watchLoop(ctx context.Context) error {
	for {
		stream, err := b.seg.WatchSegments(ctx, &pb.WatchSegmentsRequest{Parent: b.parent})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("WatchSegments: %w", err)
		}
		for {
			resp, err := stream.Recv()
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				if status.Code(err) == codes.ResourceExhausted {
					if b.stats.watchRestarts.Add(1) == 1 {
						b.log.Warn("the segment watch fell behind; watching again", "err", err)
					}
					b.wire.watchLost()
					break
				}
				if err == io.EOF {
					return errors.New("WatchSegments: the session was deleted")
				}
				return fmt.Errorf("WatchSegments: %w", err)
			}
			for _, s := range resp.Segments {
				b.wire.watched(s.Raw)
			}
		}
	}
}

func (b *bridge) write(p []byte) {
	b.stats.packetsOut.Add(1)
	if err := b.dev.WritePacket(p); err != nil {
		if b.stats.writeErrors.Add(1) == 1 {
			b.log.Warn("writing to the device", "err", err)
		}
	}
}

// wire is the device's writer: the watch writes every segment (watched),
// and the exchange loop waits until the segments its response listed have
// been written (settle). Segments are matched by a hash of their bytes;
// identical segments are counted. The watch remembers the last
// wireMemory segments it wrote that nobody waited for (those of
// application calls and timers), forgetting the oldest.
type wire struct {
	mu      sync.Mutex
	seed    maphash.Seed
	written map[uint64]int // written, not yet claimed by settle
	ring    []uint64       // written keys in order, for forgetting
	next    int
	pending map[uint64]int // claimed by settle, not yet written
	drained chan struct{}  // closed when pending empties
	lost    chan struct{}  // closed when a watch was dropped (and replaced)
	write   func([]byte)
	direct  atomic.Uint64 // segments settle wrote itself
}

const wireMemory = 16384

// settleTimeout bounds how long the exchange loop waits for the watch (a
// loaded machine can hold it up for a while); after a dropped watch it
// waits settleAfterLoss for the new watch to drain the outbound queue.
const (
	settleTimeout   = 2 * time.Second
	settleAfterLoss = 100 * time.Millisecond
)

func newWire(write func([]byte)) *wire {
	return &wire{seed: maphash.MakeSeed(), written: map[uint64]int{}, ring: make([]uint64, wireMemory),
		pending: map[uint64]int{}, lost: make(chan struct{}), write: write}
}

// watchLost tells a waiting settle that segments may never come: the
// watch was dropped, and the outbound queue may have overflowed meanwhile.
func (w *wire) watchLost() {
	w.mu.Lock()
	close(w.lost)
	w.lost = make(chan struct{})
	w.mu.Unlock()
}

// watched writes a segment from the watch.
func (w *wire) watched(raw []byte) {
	w.write(raw)
	k := maphash.Bytes(w.seed, raw)
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := w.pending[k]; n > 0 {
		if n == 1 {
			delete(w.pending, k)
		} else {
			w.pending[k] = n - 1
		}
		if len(w.pending) == 0 && w.drained != nil {
			close(w.drained)
			w.drained = nil
		}
		return
	}
	if old := w.ring[w.next]; w.written[old] > 0 {
		if w.written[old]--; w.written[old] == 0 {
			delete(w.written, old)
		}
	}
	w.ring[w.next] = k
	w.next = (w.next + 1) % len(w.ring)
	w.written[k]++
}

// settle returns once every segment of out has been written by the
// watch, or after timeout, when it writes the missing ones itself.
func (w *wire) settle(ctx context.Context, out *pb.Outputs, timeout time.Duration) {
	segs := out.GetSegments()
	if len(segs) == 0 {
		return
	}
	w.mu.Lock()
	for _, s := range segs {
		k := maphash.Bytes(w.seed, s.Raw)
		if w.written[k] > 0 {
			w.written[k]-- // already written (an emptied entry leaves its ring slot to age out)
			if w.written[k] == 0 {
				delete(w.written, k)
			}
			continue
		}
		w.pending[k]++
	}
	if len(w.pending) == 0 {
		w.mu.Unlock()
		return
	}
	w.drained = make(chan struct{})
	drained, lost := w.drained, w.lost
	w.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-drained:
		return
	case <-ctx.Done():
	case <-t.C:
	case <-lost:
		t.Reset(settleAfterLoss)
		select {
		case <-drained:
			return
		case <-ctx.Done():
		case <-t.C:
		}
	}
	w.mu.Lock()
	missing := w.pending
	w.pending, w.drained = map[uint64]int{}, nil
	w.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	for _, s := range segs {
		k := maphash.Bytes(w.seed, s.Raw)
		if missing[k] > 0 {
			missing[k]--
			w.direct.Add(1)
			w.write(s.Raw)
		}
	}
}

// notifier wakes every waiter at once: wait returns a channel that the
// next notify closes.
type notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

func newNotifier() *notifier { return &notifier{ch: make(chan struct{})} }

func (n *notifier) wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ch
}

func (n *notifier) notify() {
	n.mu.Lock()
	close(n.ch)
	n.ch = make(chan struct{})
	n.mu.Unlock()
}

// ---- netem: loss, delay and reordering in user space ----

// netemSpec is the part of netem(8) this command emulates: "loss P%",
// "delay D" and "reorder P%" (with a delay: that share of packets is sent
// at once, ahead of the delayed ones, as netem does with gap 1).
type netemSpec struct {
	loss, reorder float64 // probabilities, 0 to 1
	delay         time.Duration
}

func (s netemSpec) active() bool { return s.loss > 0 || s.delay > 0 }

func parseNetem(spec string) (netemSpec, error) {
	var s netemSpec
	f := strings.Fields(spec)
	percent := func(v string) (float64, error) {
		p, err := strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
		if err != nil || !strings.HasSuffix(v, "%") || p < 0 || p > 100 {
			return 0, fmt.Errorf("%q is not a percentage like 5%%", v)
		}
		return p / 100, nil
	}
	for i := 0; i < len(f); i += 2 {
		if i+1 >= len(f) {
			return s, fmt.Errorf("%q needs a value", f[i])
		}
		var err error
		switch f[i] {
		case "loss":
			s.loss, err = percent(f[i+1])
		case "reorder":
			s.reorder, err = percent(f[i+1])
		case "delay":
			s.delay, err = time.ParseDuration(f[i+1])
			if err == nil && (s.delay < 0 || s.delay > 10*time.Second) {
				err = fmt.Errorf("delay %v is not in [0, 10s]", s.delay)
			}
		default:
			err = fmt.Errorf("%q is not loss, delay or reorder", f[i])
		}
		if err != nil {
			return s, err
		}
	}
	if s.reorder > 0 && s.delay == 0 {
		return s, errors.New("reorder needs a delay (as in netem)")
	}
	return s, nil
}

// netem applies a netemSpec to a stream of packets and hands the survivors
// to out, in the order the impairment gives them.
type netem struct {
	spec    netemSpec
	out     func([]byte)
	rng     *rand.Rand
	mu      sync.Mutex // rng
	q       chan delayed
	dropped *atomic.Uint64
	quit    chan struct{}
	once    sync.Once
}

type delayed struct {
	p   []byte
	due time.Time
}

// netemLimit is the queue of delayed packets (netem's default limit).
const netemLimit = 1000

func newNetem(spec netemSpec, rng *rand.Rand, out func([]byte), dropped *atomic.Uint64) *netem {
	n := &netem{spec: spec, out: out, rng: rng, dropped: dropped, quit: make(chan struct{})}
	if spec.delay > 0 {
		n.q = make(chan delayed, netemLimit)
		go n.release()
	}
	return n
}

func (n *netem) send(p []byte) {
	if !n.spec.active() {
		n.out(p)
		return
	}
	n.mu.Lock()
	lose := n.spec.loss > 0 && n.rng.Float64() < n.spec.loss
	now := n.spec.delay == 0 || (n.spec.reorder > 0 && n.rng.Float64() < n.spec.reorder)
	n.mu.Unlock()
	switch {
	case lose:
		n.dropped.Add(1)
	case now:
		n.out(p)
	default:
		select {
		case n.q <- delayed{p, time.Now().Add(n.spec.delay)}:
		default:
			n.dropped.Add(1) // over the limit, as netem drops
		}
	}
}

func (n *netem) release() {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		select {
		case d := <-n.q:
			if w := time.Until(d.due); w > 0 {
				t.Reset(w)
				select {
				case <-t.C:
				case <-n.quit:
					return
				}
			}
			n.out(d.p)
		case <-n.quit:
			return
		}
	}
}

func (n *netem) stop() { n.once.Do(func() { close(n.quit) }) }

// ---- the application ----

type app struct {
	cfg    *tunConfig
	ep     pb.EndpointServiceClient
	parent string
	out    *lineWriter
	wake   *notifier
	log    *slog.Logger
}

// outputs handles what one of the application's calls caused: its state
// changes are printed (its segments reach the device through the watch).
func (a *app) outputs(o *pb.Outputs) { a.out.transitions(o) }

// pollInterval bounds how long the application waits without a wake-up
// (changes caused by timers only, such as the end of TIME-WAIT).
const pollInterval = 100 * time.Millisecond

// run opens the endpoint and serves connections; it returns the exit code.
func (a *app) run(ctx context.Context) int {
	c := a.cfg
	if c.connect.IsValid() {
		port := c.localPort
		if port == 0 {
			port = uint16(32768 + rand.IntN(61000-32768))
		}
		local := netip.AddrPortFrom(c.local, port)
		resp, err := a.ep.CreateEndpoint(ctx, &pb.CreateEndpointRequest{Parent: a.parent, Mode: &pb.CreateEndpointRequest_Connect{
			Connect: &pb.ConnectConfig{LocalAddress: local.String(), RemoteAddress: c.connect.String()}}})
		if err != nil {
			a.log.Error("connect", "err", err)
			return 1
		}
		name := resp.Endpoint.GetName()
		a.out.printf("connecting %s %s %s", name, local, c.connect)
		a.outputs(resp.Outputs)
		if !a.serveConn(ctx, name) {
			return 1
		}
		return 0
	}
	local := netip.AddrPortFrom(c.local, c.listen)
	resp, err := a.ep.CreateEndpoint(ctx, &pb.CreateEndpointRequest{Parent: a.parent, Mode: &pb.CreateEndpointRequest_Listen{
		Listen: &pb.ListenConfig{LocalAddress: local.String()}}})
	if err != nil {
		a.log.Error("listen", "err", err)
		return 1
	}
	lname := resp.Endpoint.GetName()
	a.out.printf("listening %s %s", lname, local)
	results := make(chan bool, 16)
	started, ended, failed := 0, 0, false
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		w := a.wake.wait()
		for c.conns == 0 || started < c.conns {
			r, err := a.ep.AcceptConnection(ctx, &pb.AcceptConnectionRequest{Name: lname})
			if status.Code(err) == codes.FailedPrecondition {
				break // nothing to accept
			}
			if err != nil {
				if ctx.Err() != nil {
					return 0
				}
				a.log.Error("accept", "err", err)
				return 1
			}
			started++
			a.out.printf("accepted %s %s %s", r.Endpoint.GetName(), r.Endpoint.GetLocalAddress(), r.Endpoint.GetRemoteAddress())
			a.outputs(r.Outputs)
			go func(name string) { results <- a.serveConn(ctx, name) }(r.Endpoint.GetName())
		}
		select {
		case ok := <-results:
			ended++
			failed = failed || !ok
			if c.conns > 0 && ended == c.conns {
				if failed {
					return 1
				}
				return 0
			}
		case <-w:
		case <-tick.C:
		case <-ctx.Done():
			return 0
		}
	}
}

// source is what the application sends: the --send-bytes pattern, a file,
// or (echo) what it received.
type source interface {
	// peek returns up to n bytes to send next (nil when none are ready).
	peek(n int) []byte
	advance(n int)
	done() bool // nothing more will be sent
}

type patternSource struct{ off, total int64 }

func (s *patternSource) peek(n int) []byte {
	n = int(min(int64(n), s.total-s.off))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte((s.off + int64(i)) % 251)
	}
	return b
}
func (s *patternSource) advance(n int) { s.off += int64(n) }
func (s *patternSource) done() bool    { return s.off >= s.total }

// bufSource sends a byte slice (a file, or what echo received).
type bufSource struct {
	buf    []byte
	closed bool // no more will be appended
}

func (s *bufSource) peek(n int) []byte { return s.buf[:min(n, len(s.buf))] }
func (s *bufSource) advance(n int)     { s.buf = s.buf[n:] }
func (s *bufSource) done() bool        { return s.closed && len(s.buf) == 0 }

// SendData chunk sizes: large while the send buffer takes everything,
// small probes while it is full.
const (
	sendChunk = 256 << 10
	sendProbe = 16 << 10
)

// connState is one connection of the application.
type connState struct {
	name                string
	src                 source
	echo                *bufSource
	recvHash, sentHash  hash.Hash
	received, sent      int64
	firstRecv, lastRecv time.Time
	eof, shutdown       bool
	chunk               int
	closed              bool
}

// serveConn runs one connection to its end and prints its result line.
func (a *app) serveConn(ctx context.Context, name string) bool {
	c := a.cfg
	cs := &connState{name: name, recvHash: sha256.New(), sentHash: sha256.New(), chunk: sendChunk}
	switch {
	case c.echo:
		cs.echo = &bufSource{}
		cs.src = cs.echo
	case c.serveFile != "":
		data, err := os.ReadFile(c.serveFile)
		if err != nil {
			a.out.printf("error %s received=0 sent=0: %v", name, err)
			a.ep.AbortEndpoint(ctx, &pb.AbortEndpointRequest{Name: name})
			return false
		}
		cs.src = &bufSource{buf: data, closed: true}
	default:
		cs.src = &patternSource{total: c.sendBytes}
	}
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		w := a.wake.wait()
		finished, err := a.step(ctx, cs)
		if err != nil && a.endedCleanly(ctx, cs, err) {
			finished, err = true, nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return false
			}
			msg := err.Error()
			if st, ok := status.FromError(err); ok {
				msg = st.Message()
			}
			a.out.printf("error %s received=%d sent=%d: %s", name, cs.received, cs.sent, msg)
			return false
		}
		if finished {
			state := ""
			if r, err := a.ep.GetEndpoint(ctx, &pb.GetEndpointRequest{Name: name}); err == nil {
				state = r.Endpoint.GetStateName()
			}
			rate := 0.0
			if d := cs.lastRecv.Sub(cs.firstRecv); d > 0 {
				rate = float64(cs.received) / 1e6 / d.Seconds()
			}
			end := int64(0)
			if cs.received > 0 {
				end = cs.lastRecv.UnixNano()
			}
			a.out.printf("done %s received=%d received_sha256=%s sent=%d sent_sha256=%s state=%s recv_mbps=%.2f recv_end_unix_ns=%d",
				name, cs.received, hex.EncodeToString(cs.recvHash.Sum(nil)), cs.sent, hex.EncodeToString(cs.sentHash.Sum(nil)), state, rate, end)
			return true
		}
		select {
		case <-w:
		case <-tick.C:
		case <-ctx.Done():
			return false
		}
	}
}

// endedCleanly reports whether err only says the connection is already
// gone after a clean end: CLOSED with the peer's FIN received, everything
// read and no error (e.g. TIME-WAIT cut short by a RST, RFC 9293 §3.10.7.4,
// before the application's close). Reads and closes then answer
// "connection does not exist".
func (a *app) endedCleanly(ctx context.Context, cs *connState, err error) bool {
	if st, _ := status.FromError(err); st.Code() != codes.FailedPrecondition || st.Message() != fsm.ErrConnectionDoesNotExist.Error() {
		return false
	}
	r, gerr := a.ep.GetEndpoint(ctx, &pb.GetEndpointRequest{Name: cs.name})
	if gerr != nil {
		return false
	}
	e := r.Endpoint
	if cs.echo != nil {
		cs.echo.closed = true
	}
	if e.StateName != "CLOSED" || !e.FinReceived || e.Error != "" || e.BytesReadable > 0 || !cs.src.done() {
		return false
	}
	cs.eof, cs.closed = true, true
	return true
}

// step reads what is readable, sends what the send buffer takes and
// applies the close policy. It reports whether the connection is finished.
func (a *app) step(ctx context.Context, cs *connState) (bool, error) {
	c := a.cfg
	if !cs.eof {
		r, err := a.ep.ReceiveData(ctx, &pb.ReceiveDataRequest{Name: cs.name})
		if err != nil {
			return false, err
		}
		a.outputs(r.Outputs)
		if n := len(r.Data); n > 0 {
			now := time.Now()
			if cs.received == 0 {
				cs.firstRecv = now
			}
			cs.lastRecv = now
			cs.received += int64(n)
			cs.recvHash.Write(r.Data)
			if cs.echo != nil {
				cs.echo.buf = append(cs.echo.buf, r.Data...)
			}
		}
		if r.Eof {
			cs.eof = true
			if cs.echo != nil {
				cs.echo.closed = true
			}
		}
	}
	for !cs.shutdown && !cs.closed {
		b := cs.src.peek(cs.chunk)
		if len(b) == 0 {
			break
		}
		r, err := a.ep.SendData(ctx, &pb.SendDataRequest{Name: cs.name, Payload: &pb.SendDataRequest_Data{Data: b}})
		if st, _ := status.FromError(err); st.Code() == codes.ResourceExhausted && st.Message() == fsm.ErrInsufficientResources.Error() {
			err = nil // the send buffer is full
		}
		if err != nil {
			return false, err
		}
		a.outputs(r.GetOutputs())
		n := int(r.GetBytesAccepted())
		cs.sentHash.Write(b[:n])
		cs.sent += int64(n)
		cs.src.advance(n)
		if n < len(b) {
			cs.chunk = sendProbe
			break
		}
		cs.chunk = sendChunk
	}
	if c.closeAfter == "never" || !cs.src.done() {
		return false, nil
	}
	fire := c.closeAfter == "sent" || cs.eof
	switch {
	case !fire:
		return false, nil
	case c.abort:
		r, err := a.ep.GetEndpoint(ctx, &pb.GetEndpointRequest{Name: cs.name})
		if err != nil {
			return false, err
		}
		if e := r.Endpoint; e.BytesUnsent+e.BytesUnacknowledged > 0 {
			return false, nil // abort once the peer has everything
		}
		r2, err := a.ep.AbortEndpoint(ctx, &pb.AbortEndpointRequest{Name: cs.name})
		if err != nil {
			return false, err
		}
		a.outputs(r2.Outputs)
		return true, nil
	case c.closeAfter == "sent" && !cs.shutdown:
		// The active close: FIN now, reading on until the peer's FIN.
		r, err := a.ep.ShutdownEndpoint(ctx, &pb.ShutdownEndpointRequest{Name: cs.name})
		if err != nil {
			return false, err
		}
		a.outputs(r.Outputs)
		cs.shutdown = true
	}
	if !cs.eof {
		return false, nil
	}
	// Everything read and sent: close(2). After a shutdown this only
	// releases the endpoint; otherwise it is the passive close.
	r, err := a.ep.CloseEndpoint(ctx, &pb.CloseEndpointRequest{Name: cs.name})
	if err != nil {
		return false, err
	}
	a.outputs(r.Outputs)
	cs.closed = true
	return true, nil
}

// transitions prints the state changes in out: "state NAME FROM TO CAUSE
// TIME" (TIME on the session clock: lines from different goroutines may
// come out of order).
// Those of inbound segments and application calls are seen; those of
// timers alone (the end of TIME-WAIT, a retransmission give-up) are not.
func (l *lineWriter) transitions(out *pb.Outputs) {
	for _, t := range out.GetTransitions() {
		l.printf("state %s %s %s %s %v", t.Endpoint, t.FromStateName, t.ToStateName, t.Cause, t.Time.AsDuration())
	}
}

// lineWriter writes whole lines from many goroutines.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format+"\n", args...)
}
