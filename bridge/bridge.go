// Package bridge attaches one REALTIME session to a TUN device, so the
// Linux kernel (or anything routed through the device) talks TCP to the
// engine. Everything goes through the public gRPC API, in-process or
// against a running server (Config.Server):
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
//
// `tcpstated tun` is this package behind flags; Run prints the lines its
// --help documents.
package bridge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/maphash"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	"github.com/tcpstated/tcpstated/service/replaylog"
)

// Config says what Run does. The caller checks it (`tcpstated tun` does,
// naming its flags): exactly one of Listen and Connect, at most one thing
// to send, positive buffers.
type Config struct {
	// Server is the gRPC address (host:port or unix:PATH) of a running
	// server; empty starts a service in this process.
	Server string
	// In-process service only: the directory of the session log (empty: a
	// temporary one, removed at the end), when records are synced, and an
	// address to also serve the API on (Run prints "api ADDR").
	DataDir    string
	Fsync      replaylog.FsyncMode
	GRPCListen string

	// Session is the session ID; created if absent with the REALTIME clock,
	// window scaling and the buffers below. An existing one must be REALTIME.
	Session       string
	ReceiveWindow int
	SendBuffer    int

	// Local is the engine's address. The application listens on Listen,
	// or connects to Connect from LocalPort (0: random in 32768-60999).
	Local     netip.Addr
	Listen    uint16
	Connect   netip.AddrPort
	LocalPort uint16

	// The application: Echo sends back what arrives; otherwise ServeFile's
	// content or SendBytes of the pattern byte i = i mod 251 is sent (and
	// what arrives is counted).
	Echo       bool
	ServeFile  string
	SendBytes  int64
	CloseAfter ClosePolicy
	// Abort resets (RST) instead of closing when CloseAfter fires, once
	// everything sent is acknowledged.
	Abort bool
	// Connections: with Listen, return after this many connections ended
	// (0: until ctx ends).
	Connections int
	// Hold keeps the bridge up after the application is done (TIME-WAIT is
	// served, the API inspectable) until ctx ends.
	Hold bool

	// NetemIn impairs packets from the device, NetemOut those to it; the
	// random choices come from NetemSeed.
	NetemIn, NetemOut NetemSpec
	NetemSeed         uint64
}

// ClosePolicy is when a connection is closed.
type ClosePolicy string

const (
	// CloseSent: shutdown once everything is sent, close at end of file
	// (the active close).
	CloseSent ClosePolicy = "sent"
	// CloseEOF: close once the peer's FIN is read and everything is sent
	// (the passive close).
	CloseEOF ClosePolicy = "eof"
	// CloseNever leaves the connection open.
	CloseNever ClosePolicy = "never"
)

// Device is a TUN device: one IP packet per read and per write. Close
// unblocks a pending read, which then fails with os.ErrClosed.
type Device interface {
	ReadPacket(b []byte) (int, error)
	WritePacket(b []byte) error
	Close() error
}

// Run bridges dev and a session and runs the application until it is
// done or ctx ends, printing one line per event on out (session, api,
// listening, connecting, accepted, state, done, error, and stats last).
// It closes dev. A nil error is a clean end (ctx ended, or every
// connection done); otherwise the error says what failed.
func Run(ctx context.Context, cfg Config, dev Device, out io.Writer, logger *slog.Logger) error {
	c := &cfg
	lw := &lineWriter{w: out}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	conn, cleanup, err := c.dial(ctx, lw, logger)
	if err != nil {
		dev.Close()
		return fmt.Errorf("starting: %w", err)
	}
	defer cleanup()
	parent, err := c.ensureSession(ctx, pb.NewSessionServiceClient(conn))
	if err != nil {
		dev.Close()
		return fmt.Errorf("session: %w", err)
	}
	lw.printf("session %s", parent)

	b := &bridge{dev: dev, seg: pb.NewSegmentServiceClient(conn), parent: parent, log: logger, wake: newNotifier(), out: lw}
	rng := rand.New(rand.NewPCG(c.NetemSeed, 0x7463707374617465))
	b.in = make(chan []byte, 8192)
	b.netemIn = newNetem(c.NetemIn, rng, func(p []byte) {
		select {
		case b.in <- p: // a full channel holds the reader back, as a full device queue would
		case <-ctx.Done():
		}
	}, &b.stats.netemDropped)
	b.netemOut = newNetem(c.NetemOut, rand.New(rand.NewPCG(c.NetemSeed+1, 1)), b.write, &b.stats.netemDropped)
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
	a := &app{cfg: c, ep: pb.NewEndpointServiceClient(conn), parent: parent, out: lw, wake: b.wake, log: logger}
	done := make(chan error, 1)
	go func() { done <- a.run(ctx) }()

	var runErr error
	select {
	case runErr = <-done:
		// Keep the bridge up a little for the last segments in flight (the
		// peer's ACK of our FIN); with Hold, to serve TIME-WAIT and the
		// API until ctx ends.
		grace := time.NewTimer(500 * time.Millisecond)
		if c.Hold {
			grace.Stop()
		}
		select {
		case <-grace.C:
		case <-ctx.Done():
		case err := <-errc:
			runErr = fmt.Errorf("bridge failed: %w", err)
		}
	case err := <-errc:
		runErr = fmt.Errorf("bridge failed: %w", err)
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
	lw.printf("stats packets_in=%d packets_out=%d not_tcp=%d exchanges=%d refused_packets=%d netem_dropped=%d write_errors=%d watch_restarts=%d outbound_dropped=%d direct_writes=%d",
		s.packetsIn.Load(), s.packetsOut.Load(), s.notTCP.Load(), s.exchanges.Load(), s.refused.Load(), s.netemDropped.Load(), s.writeErrors.Load(), s.watchRestarts.Load(), dropped, b.wire.direct.Load())
	return runErr
}

// dial connects to Server, or starts a service and a gRPC server in this
// process (over an in-memory connection, and on GRPCListen if given).
func (c *Config) dial(ctx context.Context, out *lineWriter, logger *slog.Logger) (*grpc.ClientConn, func(), error) {
	callOpts := grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20))
	if c.Server != "" {
		conn, err := grpc.NewClient(c.Server, grpc.WithTransportCredentials(insecure.NewCredentials()), callOpts)
		if err != nil {
			return nil, nil, err
		}
		return conn, func() { conn.Close() }, nil
	}
	dir, removeDir := c.DataDir, false
	if dir == "" {
		d, err := os.MkdirTemp("", "tcpstated-tun-")
		if err != nil {
			return nil, nil, err
		}
		dir, removeDir = d, true
	}
	svc, err := service.Open(service.Config{
		DataDir: dir,
		Fsync:   c.Fsync,
		Logger:  logger,
		Limits:  service.Limits{MaxBufferBytes: max(c.ReceiveWindow, c.SendBuffer, service.DefaultMaxBufferBytes), MaxMessageBytes: 16 << 20},
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
	if c.GRPCListen != "" {
		lis, err := listenAddr(c.GRPCListen)
		if err != nil {
			gs.Stop()
			svc.Close()
			if removeDir {
				os.RemoveAll(dir)
			}
			return nil, nil, fmt.Errorf("serving the API on %s: %w", c.GRPCListen, err)
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

// ensureSession gets Session, or creates it: REALTIME, window scaling on,
// the configured buffers. An existing session must be REALTIME.
func (c *Config) ensureSession(ctx context.Context, sc pb.SessionServiceClient) (string, error) {
	name := "sessions/" + c.Session
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
	_, err = sc.CreateSession(ctx, &pb.CreateSessionRequest{SessionId: c.Session, Session: &pb.Session{Options: &pb.SessionOptions{
		ClockMode:     pb.ClockMode_CLOCK_MODE_REALTIME,
		ReceiveWindow: uint32(c.ReceiveWindow),
		SendBuffer:    uint32(c.SendBuffer),
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
	dev      Device
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

// NetemSpec is the part of netem(8) the bridge emulates: "loss P%",
// "delay D" and "reorder P%" (with a delay: that share of packets is sent
// at once, ahead of the delayed ones, as netem does with gap 1). The zero
// value passes every packet on untouched.
type NetemSpec struct {
	Loss, Reorder float64 // probabilities, 0 to 1
	Delay         time.Duration
}

// Active reports whether s impairs anything.
func (s NetemSpec) Active() bool { return s.Loss > 0 || s.Delay > 0 }

// ParseNetem reads a spec in netem(8)'s words, e.g. "loss 5% delay 20ms
// reorder 10%" (empty: no impairment).
func ParseNetem(spec string) (NetemSpec, error) {
	var s NetemSpec
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
			s.Loss, err = percent(f[i+1])
		case "reorder":
			s.Reorder, err = percent(f[i+1])
		case "delay":
			s.Delay, err = time.ParseDuration(f[i+1])
			if err == nil && (s.Delay < 0 || s.Delay > 10*time.Second) {
				err = fmt.Errorf("delay %v is not in [0, 10s]", s.Delay)
			}
		default:
			err = fmt.Errorf("%q is not loss, delay or reorder", f[i])
		}
		if err != nil {
			return s, err
		}
	}
	if s.Reorder > 0 && s.Delay == 0 {
		return s, errors.New("reorder needs a delay (as in netem)")
	}
	return s, nil
}

// netem applies a NetemSpec to a stream of packets and hands the survivors
// to out, in the order the impairment gives them.
type netem struct {
	spec    NetemSpec
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

func newNetem(spec NetemSpec, rng *rand.Rand, out func([]byte), dropped *atomic.Uint64) *netem {
	n := &netem{spec: spec, out: out, rng: rng, dropped: dropped, quit: make(chan struct{})}
	if spec.Delay > 0 {
		n.q = make(chan delayed, netemLimit)
		go n.release()
	}
	return n
}

func (n *netem) send(p []byte) {
	if !n.spec.Active() {
		n.out(p)
		return
	}
	n.mu.Lock()
	lose := n.spec.Loss > 0 && n.rng.Float64() < n.spec.Loss
	now := n.spec.Delay == 0 || (n.spec.Reorder > 0 && n.rng.Float64() < n.spec.Reorder)
	n.mu.Unlock()
	switch {
	case lose:
		n.dropped.Add(1)
	case now:
		n.out(p)
	default:
		select {
		case n.q <- delayed{p, time.Now().Add(n.spec.Delay)}:
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
	cfg    *Config
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

// run opens the endpoint and serves connections. Its error says what
// failed: the endpoint, accepting, or connections (each printed an error
// line).
func (a *app) run(ctx context.Context) error {
	c := a.cfg
	if c.Connect.IsValid() {
		port := c.LocalPort
		if port == 0 {
			port = uint16(32768 + rand.IntN(61000-32768))
		}
		local := netip.AddrPortFrom(c.Local, port)
		resp, err := a.ep.CreateEndpoint(ctx, &pb.CreateEndpointRequest{Parent: a.parent, Mode: &pb.CreateEndpointRequest_Connect{
			Connect: &pb.ConnectConfig{LocalAddress: local.String(), RemoteAddress: c.Connect.String()}}})
		if err != nil {
			return fmt.Errorf("connect: %w", err)
		}
		name := resp.Endpoint.GetName()
		a.out.printf("connecting %s %s %s", name, local, c.Connect)
		a.outputs(resp.Outputs)
		if !a.serveConn(ctx, name) {
			return fmt.Errorf("connection %s failed", name)
		}
		return nil
	}
	local := netip.AddrPortFrom(c.Local, c.Listen)
	resp, err := a.ep.CreateEndpoint(ctx, &pb.CreateEndpointRequest{Parent: a.parent, Mode: &pb.CreateEndpointRequest_Listen{
		Listen: &pb.ListenConfig{LocalAddress: local.String()}}})
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	lname := resp.Endpoint.GetName()
	a.out.printf("listening %s %s", lname, local)
	results := make(chan bool, 16)
	started, ended, failed := 0, 0, 0
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		w := a.wake.wait()
		for c.Connections == 0 || started < c.Connections {
			r, err := a.ep.AcceptConnection(ctx, &pb.AcceptConnectionRequest{Name: lname})
			if status.Code(err) == codes.FailedPrecondition {
				break // nothing to accept
			}
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("accept: %w", err)
			}
			started++
			a.out.printf("accepted %s %s %s", r.Endpoint.GetName(), r.Endpoint.GetLocalAddress(), r.Endpoint.GetRemoteAddress())
			a.outputs(r.Outputs)
			go func(name string) { results <- a.serveConn(ctx, name) }(r.Endpoint.GetName())
		}
		select {
		case ok := <-results:
			ended++
			if !ok {
				failed++
			}
			if c.Connections > 0 && ended == c.Connections {
				if failed > 0 {
					return fmt.Errorf("%d of %d connections failed", failed, ended)
				}
				return nil
			}
		case <-w:
		case <-tick.C:
		case <-ctx.Done():
			return nil
		}
	}
}

// source is what the application sends: the SendBytes pattern, a file,
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
	case c.Echo:
		cs.echo = &bufSource{}
		cs.src = cs.echo
	case c.ServeFile != "":
		data, err := os.ReadFile(c.ServeFile)
		if err != nil {
			a.out.printf("error %s received=0 sent=0: %v", name, err)
			a.ep.AbortEndpoint(ctx, &pb.AbortEndpointRequest{Name: name})
			return false
		}
		cs.src = &bufSource{buf: data, closed: true}
	default:
		cs.src = &patternSource{total: c.SendBytes}
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
	if c.CloseAfter == CloseNever || !cs.src.done() {
		return false, nil
	}
	fire := c.CloseAfter == CloseSent || cs.eof
	switch {
	case !fire:
		return false, nil
	case c.Abort:
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
	case c.CloseAfter == CloseSent && !cs.shutdown:
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
