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
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
	"github.com/tcpstated/tcpstated/store"
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
	Fsync      store.FsyncMode
	GRPCListen string

	// Session is the session ID; created if absent with the REALTIME clock,
	// window scaling and the buffers below. An existing one must be REALTIME.
	Session       string
	ReceiveWindow int
	SendBuffer    int
	// Profile ("rfc" when empty) and Switches (behaviour switches by name,
	// set after the profile) of a session Run creates (SessionOptions).
	Profile  string
	Switches map[string]string

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

	// NetemIn impairs packets from the device, NetemOut those to it. Each
	// direction draws its random choices from its own generators, both
	// seeded with NetemSeed, so the two directions (and a Relay with the
	// same seed) drop the same packet numbers. NetemLimit is the length of
	// each direction's delay queue (0: DefaultNetemLimit, netem's default).
	NetemIn, NetemOut NetemSpec
	NetemSeed         uint64
	NetemLimit        int

	// FastOpen turns on TCP Fast Open (RFC 7413): a session this command
	// creates gets the switches fastopen.server_enable and
	// fastopen.client_enable, the listener is made with
	// ListenConfig.fast_open (TCP_FASTOPEN) and a connect with
	// ConnectConfig.fast_open (a cookie request, or the cached cookie).
	FastOpen bool
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
	b.in = make(chan []byte, 8192)
	warn := func(dir string) func(int) {
		return func(limit int) {
			logger.Warn("netem delay queue full: dropping packets past the limit, as netem does (raise --netem-limit)", "direction", dir, "limit", limit)
		}
	}
	b.netemIn = newNetem(c.NetemIn, c.NetemLimit, c.NetemSeed, func(p []byte) {
		select {
		case b.in <- p: // a full channel holds the reader back, as a full device queue would
		case <-ctx.Done():
		}
	}, &b.stats.netemIn, warn("in"))
	b.netemOut = newNetem(c.NetemOut, c.NetemLimit, c.NetemSeed, b.write, &b.stats.netemOut, warn("out"))
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
	a := &app{cfg: c, ep: pb.NewEndpointServiceClient(conn), parent: parent, out: lw, wake: b.wake}
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
	in, eg := &s.netemIn, &s.netemOut
	netemDropped := in.Lost.Load() + in.LimitDropped.Load() + eg.Lost.Load() + eg.LimitDropped.Load()
	lw.printf("stats packets_in=%d packets_out=%d not_tcp=%d exchanges=%d refused_packets=%d netem_dropped=%d netem_in_lost=%d netem_in_limit_dropped=%d netem_out_lost=%d netem_out_limit_dropped=%d write_errors=%d watch_restarts=%d outbound_dropped=%d direct_writes=%d",
		s.packetsIn.Load(), s.packetsOut.Load(), s.notTCP.Load(), s.exchanges.Load(), s.refused.Load(), netemDropped,
		in.Lost.Load(), in.LimitDropped.Load(), eg.Lost.Load(), eg.LimitDropped.Load(), s.writeErrors.Load(), s.watchRestarts.Load(), dropped, b.wire.direct.Load())
	return runErr
}
