package bridge

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
	"github.com/tcpstated/tcpstated/service"
	"github.com/tcpstated/tcpstated/store"
)

// Two bridges back to back, without a kernel.

// pipeDev is one end of a link between two fake TUN devices: what one
// writes the other reads. A full link drops, as a device queue does.
type pipeDev struct {
	in, out   chan []byte
	done      chan struct{}
	closeOnce sync.Once
}

func pipePair() (*pipeDev, *pipeDev) {
	ab, ba := make(chan []byte, 4096), make(chan []byte, 4096)
	return &pipeDev{in: ba, out: ab, done: make(chan struct{})}, &pipeDev{in: ab, out: ba, done: make(chan struct{})}
}

func (d *pipeDev) ReadPacket(b []byte) (int, error) {
	select {
	case p := <-d.in:
		return copy(b, p), nil
	case <-d.done:
		return 0, os.ErrClosed
	}
}

func (d *pipeDev) WritePacket(b []byte) error {
	select {
	case <-d.done:
		return os.ErrClosed
	default:
	}
	select {
	case d.out <- append([]byte(nil), b...):
	default: // the link is full: dropped
	}
	return nil
}

func (d *pipeDev) Close() error {
	d.closeOnce.Do(func() { close(d.done) })
	return nil
}

// syncBuffer collects a bridge's stdout.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// line returns the first line starting with prefix, waiting up to 60 s.
func (s *syncBuffer) line(t *testing.T, prefix string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		for l := range strings.SplitSeq(s.String(), "\n") {
			if strings.HasPrefix(l, prefix) {
				return l
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q line in:\n%s", prefix, s.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// bridgeRun is one Run in the background.
type bridgeRun struct {
	out    syncBuffer
	code   chan error
	cancel context.CancelFunc
}

// config is what `tcpstated tun` gives Run by default, with set applied.
func config(set func(*Config)) Config {
	c := Config{Session: "tun", Local: netip.MustParseAddr("10.9.0.2"), Fsync: store.FsyncNever, CloseAfter: CloseEOF,
		ReceiveWindow: service.DefaultMaxBufferBytes, SendBuffer: service.DefaultMaxBufferBytes, NetemSeed: 1}
	set(&c)
	return c
}

func startBridge(t *testing.T, dev Device, c Config) *bridgeRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b := &bridgeRun{code: make(chan error, 1), cancel: cancel}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	go func() { b.code <- Run(ctx, c, dev, &b.out, logger) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-b.code:
		case <-time.After(30 * time.Second):
			t.Errorf("bridge did not stop")
		}
	})
	return b
}

// exit waits for Run's result.
func (b *bridgeRun) exit(t *testing.T) error {
	t.Helper()
	select {
	case err := <-b.code:
		b.code <- err
		return err
	case <-time.After(60 * time.Second):
		t.Fatalf("bridge did not exit:\n%s", b.out.String())
		return nil
	}
}

func patternHash(n int) string {
	h := sha256.New()
	for i := range n {
		h.Write([]byte{byte(i % 251)})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// kv reads "key=value" out of an output line.
func kv(line, key string) string {
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return strings.TrimSuffix(v, ":")
		}
	}
	return ""
}

// startServer serves a service on a loopback port, for Config.Server.
func startServer(t *testing.T) (string, *grpc.ClientConn) {
	t.Helper()
	svc, err := service.Open(service.Config{DataDir: t.TempDir(), Fsync: store.FsyncNever, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	svc.Register(gs)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gs.Serve(lis)
	t.Cleanup(func() {
		svc.StopStreams()
		gs.Stop()
		svc.Close()
	})
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return lis.Addr().String(), conn
}

// TestBridgesTransferAndClose runs two bridges back to back (one in
// process, one against a server given by Config.Server): a listener and a
// connecting client move a pattern each way, the listener closes first
// (TIME-WAIT on its side), the client closes at end of file.
func TestBridgesTransferAndClose(t *testing.T) {
	const n = 200_000
	addr, conn := startServer(t)
	da, db := pipePair()
	a := startBridge(t, da, config(func(c *Config) {
		c.Listen, c.SendBytes, c.CloseAfter, c.Connections = 80, n, CloseSent, 1
	}))
	a.out.line(t, "listening ")
	b := startBridge(t, db, config(func(c *Config) {
		c.Server, c.Session, c.Local = addr, "client", netip.MustParseAddr("10.9.0.1")
		c.Connect, c.LocalPort, c.SendBytes, c.Hold = netip.MustParseAddrPort("10.9.0.2:80"), 40000, n, true
	}))
	want := patternHash(n)
	for _, r := range []*bridgeRun{a, b} {
		done := r.out.line(t, "done ")
		if kv(done, "received") != fmt.Sprint(n) || kv(done, "received_sha256") != want || kv(done, "sent_sha256") != want {
			t.Errorf("done line %q: want %d bytes with sha256 %s each way", done, n, want)
		}
	}
	if err := a.exit(t); err != nil {
		t.Errorf("listener bridge: %v:\n%s", err, a.out.String())
	}
	if s := kv(a.out.line(t, "done "), "state"); s != "TIME-WAIT" {
		t.Errorf("the side that closed first is in %s, want TIME-WAIT", s)
	}
	// The client's endpoint, seen through the server it used: closed after
	// LAST-ACK, and its TCB shows the MSS it really sends with timestamps.
	ep := pb.NewEndpointServiceClient(conn)
	name := strings.Fields(b.out.line(t, "connecting "))[1]
	deadline := time.Now().Add(10 * time.Second)
	var got *pb.Endpoint
	for {
		r, err := ep.GetEndpoint(context.Background(), &pb.GetEndpointRequest{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		got = r.Endpoint
		if got.StateName == "CLOSED" || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got.StateName != "CLOSED" || got.Error != "" {
		t.Errorf("client endpoint %s (%q), want CLOSED after LAST-ACK", got.StateName, got.Error)
	}
	// Tcb.mss is "the largest payload this endpoint sends": with
	// timestamps on, the peer's MSS of 1460 less the 12 bytes of the
	// option (RFC 7323 §3, RFC 6691), which is what the engine sends.
	if m := got.GetTcb().GetMss(); m != 1448 || got.GetNegotiated().GetMss() != 1460 {
		t.Errorf("Tcb.mss %d and negotiated mss %d, want 1448 (what is sent with timestamps) and 1460 (the peer's option)", m, got.GetNegotiated().GetMss())
	}
	if !strings.Contains(a.out.line(t, "stats "), "packets_out=") {
		t.Errorf("no stats line")
	}
}

// TestBridgesRefuseAndReset: a connect to a port nobody listens on is
// refused (RST in SYN-SENT, RFC 9293 §3.10.7.3), and an abort reaches the
// other side as "connection reset".
func TestBridgesRefuseAndReset(t *testing.T) {
	da, db := pipePair()
	aborting := config(func(c *Config) { c.Listen, c.SendBytes, c.CloseAfter, c.Abort = 80, 5000, CloseSent, true })
	client := func(session, connect string, policy ClosePolicy) Config {
		return config(func(c *Config) {
			c.Session, c.Local, c.Connect, c.CloseAfter = session, netip.MustParseAddr("10.9.0.1"), netip.MustParseAddrPort(connect), policy
		})
	}
	a := startBridge(t, da, aborting)
	a.out.line(t, "listening ")

	refused := startBridge(t, db, client("refused", "10.9.0.2:81", CloseEOF))
	if l := refused.out.line(t, "error "); !strings.HasSuffix(l, ": connection refused") {
		t.Errorf("connect to a closed port: %q, want connection refused", l)
	}
	if err := refused.exit(t); err == nil {
		t.Errorf("refused connect: no error, want one (exit 1)")
	}
	db.Close()

	// A fresh link for the second client (the first bridge closed its end).
	da2, db2 := pipePair()
	a2 := startBridge(t, da2, aborting)
	a2.out.line(t, "listening ")
	reset := startBridge(t, db2, client("reset", "10.9.0.2:80", CloseNever))
	if l := reset.out.line(t, "error "); !strings.HasSuffix(l, ": connection reset") || kv(l, "received") != "5000" {
		t.Errorf("peer aborted after its data was acknowledged: %q, want 5000 bytes then connection reset", l)
	}
	if l := a2.out.line(t, "done "); kv(l, "state") != "CLOSED" {
		t.Errorf("aborting side: %q, want CLOSED", l)
	}
}

// TestBridgesCloseAfterSentWaitsForHandshake: a client whose whole send
// fits the send buffer before the SYN's answer comes (its SYN delayed
// 50 ms by netem-out) still delivers it: the close waits for ESTABLISHED
// instead of deleting the TCB in SYN-SENT (RFC 9293 §3.10.4).
func TestBridgesCloseAfterSentWaitsForHandshake(t *testing.T) {
	const n = 10_000
	da, db := pipePair()
	a := startBridge(t, da, config(func(c *Config) {
		c.Listen, c.Connections = 80, 1
	}))
	a.out.line(t, "listening ")
	b := startBridge(t, db, config(func(c *Config) {
		c.Session, c.Local = "client", netip.MustParseAddr("10.9.0.1")
		c.Connect, c.LocalPort, c.SendBytes, c.CloseAfter, c.Hold = netip.MustParseAddrPort("10.9.0.2:80"), 40000, n, CloseSent, true
		c.NetemOut = NetemSpec{Delay: 50 * time.Millisecond}
	}))
	if done := a.out.line(t, "done "); kv(done, "received") != fmt.Sprint(n) || kv(done, "received_sha256") != patternHash(n) {
		t.Errorf("listener's done line %q: want %d bytes of the pattern", done, n)
	}
	if done := b.out.line(t, "done "); kv(done, "sent") != fmt.Sprint(n) {
		t.Errorf("client's done line %q: want sent=%d", done, n)
	}
}

// TestBridgeSessionProfile: the session Run creates has the configured
// profile and behaviour switches.
func TestBridgeSessionProfile(t *testing.T) {
	addr, conn := startServer(t)
	da, _ := pipePair()
	a := startBridge(t, da, config(func(c *Config) {
		c.Server, c.Listen = addr, 80
		c.Profile, c.Switches = "linux", map[string]string{"congestion_control": "reno"}
	}))
	a.out.line(t, "listening ")
	r, err := pb.NewSessionServiceClient(conn).GetSession(context.Background(), &pb.GetSessionRequest{Name: "sessions/tun"})
	if err != nil {
		t.Fatal(err)
	}
	if o := r.Session.GetOptions(); o.GetProfile() != "linux" || o.GetSwitches()["congestion_control"] != "reno" {
		t.Errorf("session options profile %q switches %v, want linux and congestion_control=reno", o.GetProfile(), o.GetSwitches())
	}
}
