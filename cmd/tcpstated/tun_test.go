package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
	"github.com/tcpstated/tcpstated/service"
	replaylog "github.com/tcpstated/tcpstated/store"
)

func TestTunFlags(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		check   func(*tunConfig) bool
		wantErr string
	}{
		{"listen with defaults", []string{"--listen", "80"}, func(c *tunConfig) bool {
			return c.listen == 80 && c.local.String() == "10.9.0.2" && c.closeAfter == "eof" && c.session == "tun" &&
				c.receiveWindow == 4<<20 && c.fsync == "never" && !c.netemIn.active()
		}, ""},
		{"a data directory is synced", []string{"--listen", "80", "--data-dir", "d"}, func(c *tunConfig) bool { return c.fsync == "always" }, ""},
		{"serve closes after sending", []string{"--listen", "80", "--serve", "f"}, func(c *tunConfig) bool { return c.closeAfter == "sent" }, ""},
		{"connect", []string{"--connect", "10.9.0.1:5000", "--send-bytes", "10", "--sink", "--abort", "--close-after", "sent"}, func(c *tunConfig) bool {
			return c.connect.String() == "10.9.0.1:5000" && c.sendBytes == 10 && c.abort
		}, ""},
		{"netem", []string{"--listen", "1", "--netem", "loss 5% delay 20ms reorder 10%"}, func(c *tunConfig) bool {
			return c.netemIn.loss == 0.05 && c.netemIn.delay == 20*time.Millisecond && c.netemIn.reorder == 0.1
		}, ""},
		{"neither listen nor connect", nil, nil, "one of --listen"},
		{"both listen and connect", []string{"--listen", "80", "--connect", "10.9.0.1:1"}, nil, "one of --listen"},
		{"connect without a port", []string{"--connect", "10.9.0.1"}, nil, "--connect"},
		{"connect across families", []string{"--connect", "[2001:db8::1]:80"}, nil, "address family"},
		{"echo and send-bytes", []string{"--listen", "80", "--echo", "--send-bytes", "5"}, nil, "--echo"},
		{"serve and send-bytes", []string{"--listen", "80", "--serve", "f", "--send-bytes", "5"}, nil, "give one"},
		{"bad close policy", []string{"--listen", "80", "--close-after", "later"}, nil, "--close-after"},
		{"abort never fires", []string{"--listen", "80", "--close-after", "never", "--abort"}, nil, "--abort"},
		{"bad fsync", []string{"--listen", "80", "--fsync", "sometimes"}, nil, "--fsync"},
		{"bad netem", []string{"--listen", "80", "--netem", "loss 5"}, nil, "--netem"},
		{"port out of range", []string{"--listen", "70000"}, nil, "ports"},
		{"stray argument", []string{"--listen", "80", "extra"}, nil, "unexpected"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseTunFlags(tc.args, io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !tc.check(c) {
				t.Fatalf("config %+v, err %v", c, err)
			}
		})
	}
	t.Setenv("TCPSTATED_TUN_SESSION", "from-env")
	if c, err := parseTunFlags([]string{"--listen", "80"}, io.Discard); err != nil || c.session != "from-env" {
		t.Fatalf("environment fallback: %+v, %v", c, err)
	}
	var help bytes.Buffer
	if code := run([]string{"tun", "--help"}, io.Discard, &help); code != 0 || !strings.Contains(help.String(), "TCPSTATED_TUN_DEV") {
		t.Fatalf("--help: exit %d, %q", code, help.String())
	}
}

func TestParseNetem(t *testing.T) {
	cases := []struct {
		spec    string
		want    netemSpec
		wantErr string
	}{
		{"", netemSpec{}, ""},
		{"loss 5%", netemSpec{loss: 0.05}, ""},
		{"delay 20ms reorder 10% loss 1.5%", netemSpec{loss: 0.015, reorder: 0.1, delay: 20 * time.Millisecond}, ""},
		{"loss 5", netemSpec{}, "percentage"},
		{"loss 101%", netemSpec{}, "percentage"},
		{"reorder 10%", netemSpec{}, "needs a delay"},
		{"delay", netemSpec{}, "needs a value"},
		{"delay 1h", netemSpec{}, "not in"},
		{"duplicate 1%", netemSpec{}, "not loss, delay or reorder"},
	}
	for _, tc := range cases {
		got, err := parseNetem(tc.spec)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parseNetem(%q): err %v, want %q", tc.spec, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseNetem(%q) = %+v, %v; want %+v", tc.spec, got, err, tc.want)
		}
	}
}

func TestIsTCP(t *testing.T) {
	v4 := func(proto byte, frag uint16) []byte {
		p := make([]byte, 40)
		p[0], p[9] = 0x45, proto
		p[6], p[7] = byte(frag>>8), byte(frag)
		return p
	}
	v6 := make([]byte, 60)
	v6[0], v6[6] = 0x60, 6
	icmp6 := append([]byte(nil), v6...)
	icmp6[6] = 58
	cases := []struct {
		name string
		p    []byte
		want bool
	}{
		{"IPv4 TCP", v4(6, 0), true},
		{"IPv4 TCP, don't fragment", v4(6, 0x4000), true},
		{"IPv4 TCP, more fragments", v4(6, 0x2000), false},
		{"IPv4 TCP, a later fragment", v4(6, 0x0010), false},
		{"IPv4 UDP", v4(17, 0), false},
		{"IPv6 TCP", v6, true},
		{"IPv6 ICMPv6 (neighbour discovery)", icmp6, false},
		{"short", []byte{0x45, 0}, false},
		{"not IP", make([]byte, 40), false},
	}
	for _, tc := range cases {
		if got := isTCP(tc.p); got != tc.want {
			t.Errorf("%s: isTCP = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestNetemImpairs checks the user-space netem does what netem does: drops
// the given share, delays the rest, and sends the reordered share at once,
// ahead of delayed packets.
func TestNetemImpairs(t *testing.T) {
	spec, _ := parseNetem("loss 5% delay 20ms reorder 10%")
	var mu sync.Mutex
	var got []int
	var dropped atomic.Uint64
	n := newNetem(spec, rand.New(rand.NewPCG(1, 2)), func(p []byte) {
		mu.Lock()
		got = append(got, int(p[0])<<8|int(p[1]))
		mu.Unlock()
	}, &dropped)
	defer n.stop()
	const total = 900 // under the delay queue's limit
	start := time.Now()
	for i := range total {
		n.send([]byte{byte(i >> 8), byte(i)})
	}
	mu.Lock()
	immediate := len(got)
	mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		k := len(got)
		mu.Unlock()
		if k+int(dropped.Load()) == total || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if time.Since(start) < 20*time.Millisecond {
		t.Errorf("every packet arrived within %v, before the 20ms delay", time.Since(start))
	}
	mu.Lock()
	defer mu.Unlock()
	d := int(dropped.Load())
	if len(got)+d != total {
		t.Fatalf("%d delivered + %d dropped != %d sent", len(got), d, total)
	}
	if d < total*2/100 || d > total*9/100 {
		t.Errorf("dropped %d of %d, want about 5%%", d, total)
	}
	if immediate < total*5/100 || immediate > total*16/100 {
		t.Errorf("%d of %d sent at once, want about 10%% of the survivors", immediate, total)
	}
	reordered := 0
	for i := 1; i < len(got); i++ {
		if got[i] < got[i-1] {
			reordered++
		}
	}
	if reordered == 0 {
		t.Errorf("no packet overtook another")
	}
}

// ---- two tun bridges back to back, without a kernel ----

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

// bridgeRun is one runTun in the background.
type bridgeRun struct {
	out    syncBuffer
	code   chan int
	cancel context.CancelFunc
}

func startBridge(t *testing.T, dev packetDevice, args ...string) *bridgeRun {
	t.Helper()
	c, err := parseTunFlags(args, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &bridgeRun{code: make(chan int, 1), cancel: cancel}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	go func() { b.code <- runTun(ctx, c, dev, &b.out, logger) }()
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

func (b *bridgeRun) exit(t *testing.T) int {
	t.Helper()
	select {
	case c := <-b.code:
		b.code <- c
		return c
	case <-time.After(60 * time.Second):
		t.Fatalf("bridge did not exit:\n%s", b.out.String())
		return -1
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

// startTunServer serves a service on a loopback port, for --server.
func startTunServer(t *testing.T) (string, *grpc.ClientConn) {
	t.Helper()
	svc, err := service.Open(service.Config{DataDir: t.TempDir(), Fsync: replaylog.FsyncNever, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
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

// TestTunBridgesTransferAndClose runs two bridges back to back (one in
// process, one against a server given by --server): a listener and a
// connecting client move a pattern each way, the listener closes first
// (TIME-WAIT on its side), the client closes at end of file.
func TestTunBridgesTransferAndClose(t *testing.T) {
	const n = 200_000
	addr, conn := startTunServer(t)
	da, db := pipePair()
	a := startBridge(t, da, "--local", "10.9.0.2", "--listen", "80", "--send-bytes", fmt.Sprint(n), "--sink",
		"--close-after", "sent", "--connections", "1", "--fsync", "never")
	a.out.line(t, "listening ")
	b := startBridge(t, db, "--server", addr, "--session", "client", "--local", "10.9.0.1", "--connect", "10.9.0.2:80",
		"--local-port", "40000", "--send-bytes", fmt.Sprint(n), "--sink", "--hold")
	want := patternHash(n)
	for _, r := range []*bridgeRun{a, b} {
		done := r.out.line(t, "done ")
		if kv(done, "received") != fmt.Sprint(n) || kv(done, "received_sha256") != want || kv(done, "sent_sha256") != want {
			t.Errorf("done line %q: want %d bytes with sha256 %s each way", done, n, want)
		}
	}
	if code := a.exit(t); code != 0 {
		t.Errorf("listener bridge exit %d:\n%s", code, a.out.String())
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

// TestTunBridgesRefuseAndReset: a connect to a port nobody listens on is
// refused (RST in SYN-SENT, RFC 9293 §3.10.7.3), and an abort reaches the
// other side as "connection reset".
func TestTunBridgesRefuseAndReset(t *testing.T) {
	da, db := pipePair()
	a := startBridge(t, da, "--local", "10.9.0.2", "--listen", "80", "--send-bytes", "5000", "--close-after", "sent", "--abort", "--fsync", "never")
	a.out.line(t, "listening ")

	refused := startBridge(t, db, "--session", "refused", "--local", "10.9.0.1", "--connect", "10.9.0.2:81", "--fsync", "never")
	if l := refused.out.line(t, "error "); !strings.HasSuffix(l, ": connection refused") {
		t.Errorf("connect to a closed port: %q, want connection refused", l)
	}
	if code := refused.exit(t); code != 1 {
		t.Errorf("refused connect: exit %d, want 1", code)
	}
	db.Close()

	// A fresh link for the second client (the first bridge closed its end).
	da2, db2 := pipePair()
	a2 := startBridge(t, da2, "--local", "10.9.0.2", "--listen", "80", "--send-bytes", "5000", "--close-after", "sent", "--abort", "--fsync", "never")
	a2.out.line(t, "listening ")
	reset := startBridge(t, db2, "--session", "reset", "--local", "10.9.0.1", "--connect", "10.9.0.2:80", "--sink", "--close-after", "never", "--fsync", "never")
	if l := reset.out.line(t, "error "); !strings.HasSuffix(l, ": connection reset") || kv(l, "received") != "5000" {
		t.Errorf("peer aborted after its data was acknowledged: %q, want 5000 bytes then connection reset", l)
	}
	if l := a2.out.line(t, "done "); kv(l, "state") != "CLOSED" {
		t.Errorf("aborting side: %q, want CLOSED", l)
	}
}

// TestWireWritesInWatchOrder: the watch writes every segment, in its
// order; settle waits until the segments of a response have been written,
// whether the watch brought them before or after, and writes them itself
// only if the watch never does.
func TestWireWritesInWatchOrder(t *testing.T) {
	cases := []struct {
		name          string
		before, after string // watched before settle, and while it waits
		response      string // the response's segments
		want          string // written, in order
		direct        uint64
	}{
		{"watch first", "ab", "", "ab", "ab", 0},
		{"response first", "", "ab", "ab", "ab", 0},
		{"split", "a", "b", "ab", "ab", 0},
		{"timers and calls nobody waits for", "xay", "bz", "ab", "xaybz", 0},
		{"the same bytes twice", "aa", "", "aa", "aa", 0},
		{"never watched: written after the timeout", "", "", "ab", "ab", 2},
		{"one of two never watched", "a", "", "ab", "ab", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var got strings.Builder
			w := newWire(func(p []byte) { mu.Lock(); got.Write(p); mu.Unlock() })
			for _, c := range tc.before {
				w.watched([]byte{byte(c)})
			}
			go func() {
				time.Sleep(20 * time.Millisecond)
				for _, c := range tc.after {
					w.watched([]byte{byte(c)})
				}
			}()
			out := &pb.Outputs{}
			for _, c := range tc.response {
				out.Segments = append(out.Segments, &pb.Segment{Raw: []byte{byte(c)}})
			}
			start := time.Now()
			w.settle(context.Background(), out, 300*time.Millisecond)
			if tc.direct == 0 && time.Since(start) > 250*time.Millisecond {
				t.Errorf("settle waited %v for segments the watch brought", time.Since(start))
			}
			time.Sleep(50 * time.Millisecond)
			mu.Lock()
			defer mu.Unlock()
			if got.String() != tc.want || w.direct.Load() != tc.direct {
				t.Errorf("written %q with %d direct, want %q with %d", got.String(), w.direct.Load(), tc.want, tc.direct)
			}
		})
	}
}

// TestWireWritesWhatALostWatchDropped: when the watch is dropped, settle
// stops waiting soon after and writes what never came.
func TestWireWritesWhatALostWatchDropped(t *testing.T) {
	var mu sync.Mutex
	var got strings.Builder
	w := newWire(func(p []byte) { mu.Lock(); got.Write(p); mu.Unlock() })
	go func() {
		time.Sleep(20 * time.Millisecond)
		w.watchLost()
	}()
	start := time.Now()
	w.settle(context.Background(), &pb.Outputs{Segments: []*pb.Segment{{Raw: []byte("a")}}}, time.Minute)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("settle waited %v after the watch was lost", d)
	}
	mu.Lock()
	defer mu.Unlock()
	if got.String() != "a" || w.direct.Load() != 1 {
		t.Errorf("written %q with %d direct, want the lost segment written directly", got.String(), w.direct.Load())
	}
}
