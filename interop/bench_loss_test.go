package interop

// Goodput under loss, side by side with the kernel (issue 11): `make
// bench-loss` runs TestBenchLoss over 5 MB and writes the tables into
// docs/PERFORMANCE.md; `make test` runs it over a short transfer and only
// checks that every transfer arrives whole and the figures are sane.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"

	"github.com/tcpstated/tcpstated/bridge"
	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
	"github.com/tcpstated/tcpstated/internal/mddoc"
)

// The impairments of the issue, applied to the data path only (the
// direction the data goes; ACKs pass untouched), each with the same seed,
// so every cell drops the same packet numbers (the k-th data-path packet is
// lost in every transfer or in none).
var benchImpairments = []struct{ name, spec string }{
	{"delay 20 ms", "delay 20ms"},
	{"delay 20 ms, loss 1 %", "delay 20ms loss 1%"},
	{"delay 20 ms, loss 5 %", "delay 20ms loss 5%"},
	{"delay 20 ms, loss 5 %, reorder 10 %", "delay 20ms loss 5% reorder 10%"},
}

const (
	benchSeed       = 11
	benchQuickBytes = 300_000
	benchTimeout    = 300 * time.Second
	// benchLimit is the delay queue of every impairment: above netem's
	// default of 1000, so that "delay 20 ms" stays loss-free for the
	// kernel's fast sender (the tables count what the limit dropped).
	benchLimit = 20000
)

// benchRun is one transfer: who sent, how fast, what the impairment
// dropped, and each side's counters.
type benchRun struct {
	cc                string  // the kernel sender's congestion control; "" when tcpstated sends
	mbps              float64 // MB/s from the receiver's start to its last byte
	impLost, impLimit uint64  // data-path packets dropped by the loss model and by the limit
	devDropped        uint64  // the kernel sender's packets its tun0 queue dropped (the reader was behind)
	sampled           senderSamples
	kernelSnd         map[string]uint64
	kernelRcv         map[string]uint64
	engine            engineCount
}

// engineCount is what tcpstated's explanations (ListRecords with explain)
// and its emitted segments say about one transfer.
type engineCount struct {
	dataSent, retransmitted uint64            // data segments emitted; of them, those ending at or below the highest end sent before
	codes                   map[string]uint64 // recovery explanations by code; "DROPPED:CODE" for discarded inbound segments
}

// senderSamples is the sender's congestion window and smoothed RTT,
// sampled every 100 ms during the transfer (tcpstated: GetEndpoint's Tcb;
// the kernel: TCP_INFO).
type senderSamples struct {
	n             int
	cwndSum       float64 // segments
	srttSum       float64 // ms
	minSRTT       float64
	sndWndLimited int // samples where the peer's window was under cwnd
}

func (s *senderSamples) add(cwndSegs, srttMS float64, wndLimited bool) {
	if srttMS <= 0 {
		return
	}
	if s.n == 0 || srttMS < s.minSRTT {
		s.minSRTT = srttMS
	}
	s.n++
	s.cwndSum += cwndSegs
	s.srttSum += srttMS
	if wndLimited {
		s.sndWndLimited++
	}
}

func (s senderSamples) String() string {
	if s.n == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f / %.0f", s.cwndSum/float64(s.n), s.srttSum/float64(s.n))
}

// sample calls f every 100 ms until the returned stop is called.
func sample(f func()) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
				f()
			}
		}
	}()
	return func() { close(quit); <-done }
}

// sampleKernel samples a kernel sender's TCP_INFO.
func sampleKernel(k *net.TCPConn, s *senderSamples) (stop func()) {
	return sample(func() {
		if info, err := kernelTCPInfo(k); err == nil && (info.State == unix.BPF_TCP_ESTABLISHED || info.State == unix.BPF_TCP_FIN_WAIT1) {
			s.add(float64(info.Snd_cwnd), float64(info.Rtt)/1000, info.Snd_wnd > 0 && info.Snd_wnd < info.Snd_cwnd*info.Snd_mss)
		}
	})
}

// sampleEngine samples tcpstated's endpoint (GetEndpoint).
func sampleEngine(p *tunProc, name string, s *senderSamples) (stop func()) {
	return sample(func() {
		ep, err := p.endpoint(name)
		tcb := ep.GetTcb()
		if err != nil || (ep.GetStateName() != "ESTABLISHED" && ep.GetStateName() != "FIN-WAIT-1") || tcb.GetSrtt() == nil || tcb.GetMss() == 0 {
			return
		}
		s.add(float64(tcb.GetCwnd())/float64(tcb.GetMss()), float64(tcb.GetSrtt().AsDuration().Microseconds())/1000, tcb.GetSndWnd() < tcb.GetCwnd())
	})
}

// benchBytes is the transfer size: TCPSTATED_BENCH_LOSS_BYTES, or the quick
// size of `make test`.
func benchBytes(t *testing.T) int64 {
	if v := os.Getenv("TCPSTATED_BENCH_LOSS_BYTES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			t.Fatalf("TCPSTATED_BENCH_LOSS_BYTES=%q: not a positive number", v)
		}
		return n
	}
	return benchQuickBytes
}

// TestBenchLoss measures goodput through the user-space impairment of
// `tcpstated tun` (package bridge) in both directions, one transfer at a
// time, interleaved per impairment: tcpstated → kernel, kernel → kernel on
// the namespace's default congestion control and on CUBIC (TCP_CONGESTION
// on the socket), kernel → tcpstated on each. The kernel-to-kernel
// baseline goes through bridge.Relay, the same impairment code with the
// same seed. Nothing is timed: the test fails only when a transfer does not
// arrive whole or a figure is not a finite positive rate.
func TestBenchLoss(t *testing.T) {
	if why := requirements(); why != "" {
		skipOrFail(t, why)
	}
	n := benchBytes(t)
	runs := 1
	if v := os.Getenv("TCPSTATED_BENCH_LOSS_RUNS"); v != "" {
		var err error
		if runs, err = strconv.Atoi(v); err != nil || runs < 1 {
			t.Fatalf("TCPSTATED_BENCH_LOSS_RUNS=%q: not a positive number", v)
		}
	}
	start := time.Now()
	dir, err := os.MkdirTemp("", "tcpst-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	bin := buildTcpstated(t, dir)
	defaultCC := ""
	results := map[string][]map[string]*benchRun{} // impairment → run → cell
	var rt roundTrips
	t.Run("round-trips", func(t *testing.T) { rt = benchRoundTrips(t, bin, dir) })
	for run := range runs {
		seed := uint64(benchSeed + run)
		for _, imp := range benchImpairments {
			cells := map[string]*benchRun{}
			results[imp.name] = append(results[imp.name], cells)
			t.Run(fmt.Sprintf("run%d/%s", run+1, strings.ReplaceAll(imp.spec, " ", "_")), func(t *testing.T) {
				for _, v := range tcpstatedVariants {
					cells["t→k"+v.key] = benchTcpstatedSends(t, bin, dir, imp.spec, n, seed, v.flags...)
				}
				for _, cc := range []string{"", "cubic"} {
					k := benchKernelToKernel(t, bin, dir, imp.spec, n, seed, cc)
					if cc == "" && k != nil {
						defaultCC = k.cc
					}
					cells["k→k"+cc] = k
					cells["k→t"+cc] = benchKernelSends(t, bin, dir, imp.spec, n, seed, cc)
				}
				for name, c := range cells {
					if c == nil {
						continue
					}
					if !(c.mbps > 0) || math.IsInf(c.mbps, 0) {
						t.Errorf("%s: %v MB/s is not a rate", name, c.mbps)
					}
					if imp.spec == "delay 20ms" && c.impLost != 0 {
						t.Errorf("%s: the loss model dropped %d packets with no loss", name, c.impLost)
					}
				}
			})
		}
	}
	md := benchTables(results, rt, n, runs, defaultCC, time.Since(start))
	t.Log("\n" + md)
	if os.Getenv("TCPSTATED_WRITE_BENCH_LOSS_DOCS") != "" {
		if err := mddoc.ReplaceSection(filepath.Join("..", "docs", "PERFORMANCE.md"), "bench-loss", md); err != nil {
			t.Error(err)
		}
	}
}

// tcpstatedVariants are tcpstated's senders: the rfc profile's defaults
// (what the goal is about), RFC 5681's Reno (the default before issue 11,
// to show what CUBIC changed) and the linux profile.
var tcpstatedVariants = []struct {
	key, name string
	flags     []string
}{
	{"", "rfc", nil},
	{"reno", "rfc + congestion_control=reno", []string{"--switch", "congestion_control=reno"}},
	{"linux", "profile linux (cubic, HyStart++, min RTO 200 ms)", []string{"--profile", "linux"}},
}

// impairFlags are tcpstated tun's flags for the impairment on one side.
func impairFlags(flag, spec string, seed uint64) []string {
	return []string{flag, spec, "--netem-seed", strconv.FormatUint(seed, 10), "--netem-limit", strconv.Itoa(benchLimit)}
}

// benchTcpstatedSends: tcpstated connects to a kernel listener and sends n
// bytes through --netem-out; the kernel reads to the end.
func benchTcpstatedSends(t *testing.T, bin, dir, spec string, n int64, seed uint64, extra ...string) *benchRun {
	l := newLab(t, bin, dir)
	ln, err := l.listen(kernelAddr + ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p := l.startTun(t, append([]string{"--connect", ln.Addr().String(), "--send-bytes", strconv.FormatInt(n, 10),
		"--close-after", "sent", "--hold"}, append(impairFlags("--netem-out", spec, seed), extra...)...)...)
	ln.SetDeadline(time.Now().Add(30 * time.Second))
	k, err := ln.AcceptTCP()
	if err != nil {
		t.Errorf("tcpstated → kernel: accept: %v", err)
		return nil
	}
	var samples senderSamples
	stop := func() {}
	if line, err := p.waitLine("connecting ", stateTimeout); err == nil {
		name, _ := lineFields(line)
		stop = sampleEngine(p, name, &samples)
	}
	x := exchange(k, 0, tcpstatedFirst, benchTimeout)
	stop()
	if x.readErr != nil || x.received != n || x.sha != patternSHA(n) {
		t.Errorf("tcpstated → kernel through %q: the kernel read %d of %d bytes (sha256 matches: %v), %v", spec, x.received, n, x.sha == patternSHA(n), x.readErr)
		return nil
	}
	r := &benchRun{mbps: x.mbps(), kernelRcv: nstatCounts(t, l), sampled: samples}
	r.engine = engineCounts(t, p)
	r.impLost, r.impLimit = tunNetemCounts(t, p, "out")
	return r
}

// benchKernelSends: the kernel (on congestion control cc, "" for the
// namespace's default) connects to tcpstated and sends n bytes through
// --netem; tcpstated reads to the end.
func benchKernelSends(t *testing.T, bin, dir, spec string, n int64, seed uint64, cc string) *benchRun {
	l := newLab(t, bin, dir)
	p := l.startTun(t, append([]string{"--listen", "80", "--sink"}, impairFlags("--netem", spec, seed)...)...)
	k, err := dialCC(l, tcpstatedAddr+":80", cc)
	if err != nil {
		t.Errorf("kernel → tcpstated: dial: %v", err)
		return nil
	}
	got := socketCC(k)
	acc, err := p.waitLine("accepted ", stateTimeout)
	if err != nil {
		t.Fatal(err)
	}
	name, _ := lineFields(acc)
	var samples senderSamples
	stop := sampleKernel(k, &samples)
	x := exchange(k, n, kernelFirst, benchTimeout)
	stop()
	done, err := p.waitLine("done "+name, benchTimeout)
	_, kv := lineFields(done)
	want := patternSHA(n)
	if err != nil || x.writeErr != nil || kv["received"] != strconv.FormatInt(n, 10) || kv["received_sha256"] != want {
		t.Errorf("kernel (%s) → tcpstated through %q: tcpstated read %s of %d bytes (sha256 matches: %v); write err %v; %v", got, spec, kv["received"], n, kv["received_sha256"] == want, x.writeErr, err)
		return nil
	}
	endNS, _ := strconv.ParseInt(kv["recv_end_unix_ns"], 10, 64)
	r := &benchRun{cc: got, mbps: rateUntil(n, x.start, time.Unix(0, endNS)), kernelSnd: nstatCounts(t, l), devDropped: txDropped(t, l), sampled: samples}
	r.engine = engineCounts(t, p)
	r.impLost, r.impLimit = tunNetemCounts(t, p, "in")
	return r
}

// benchKernelToKernel: the baseline. Two namespaces, each with its tun0,
// joined by bridge.Relay in this process: the sender's packets go through
// the impairment, the receiver's pass untouched.
func benchKernelToKernel(t *testing.T, bin, dir, spec string, n int64, seed uint64, cc string) *benchRun {
	snd := newLab(t, bin, dir)
	rcv := newLabAt(t, bin, dir, tcpstatedAddr, kernelAddr)
	counts, stopRelay := startRelay(t, snd, rcv, spec, seed)
	defer stopRelay()
	ln, err := rcv.listen(tcpstatedAddr + ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srvc := make(chan *transfer, 1)
	go func() {
		ln.SetDeadline(time.Now().Add(30 * time.Second))
		c, err := ln.AcceptTCP()
		if err != nil {
			srvc <- &transfer{readErr: err}
			return
		}
		srvc <- exchange(c, 0, tcpstatedFirst, benchTimeout)
	}()
	k, err := dialCC(snd, ln.Addr().String(), cc)
	if err != nil {
		t.Errorf("kernel → kernel: dial: %v", err)
		return nil
	}
	got := socketCC(k)
	var samples senderSamples
	stop := sampleKernel(k, &samples)
	cli := exchange(k, n, kernelFirst, benchTimeout)
	stop()
	srv := <-srvc
	if srv.readErr != nil || cli.writeErr != nil || srv.received != n || srv.sha != patternSHA(n) {
		t.Errorf("kernel (%s) → kernel through %q: read %d of %d bytes (sha256 matches: %v), %v; write err %v", got, spec, srv.received, n, srv.sha == patternSHA(n), srv.readErr, cli.writeErr)
		return nil
	}
	return &benchRun{cc: got, mbps: srv.mbps(), impLost: counts.AToB.Lost.Load(), impLimit: counts.AToB.LimitDropped.Load(),
		kernelSnd: nstatCounts(t, snd), kernelRcv: nstatCounts(t, rcv), devDropped: txDropped(t, snd), sampled: samples}
}

// startRelay joins the tun0 devices of snd and rcv with bridge.Relay in
// this process: snd's packets go through the impairment spec, rcv's pass
// untouched.
func startRelay(t *testing.T, snd, rcv *lab, spec string, seed uint64) (*bridge.RelayCounts, func()) {
	ns, err := bridge.ParseNetem(spec)
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var devs [2]*bridge.TUN
	for i, l := range []*lab{snd, rcv} {
		if err := l.do(func() error {
			var err error
			devs[i], err = bridge.OpenTUN("tun0", netip.MustParseAddr(kernelAddr), netip.MustParseAddr(tcpstatedAddr), quiet)
			return err
		}); err != nil {
			t.Fatalf("attaching tun0 of %s: %v", l.name, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	counts := &bridge.RelayCounts{}
	relayed := make(chan error, 1)
	go func() {
		relayed <- bridge.Relay(ctx, devs[0], devs[1], bridge.RelayConfig{AToB: ns, Seed: seed, Limit: benchLimit}, counts)
	}()
	return counts, func() {
		cancel()
		if err := <-relayed; err != nil {
			t.Errorf("relay: %v", err)
		}
	}
}

// roundTrips is what a path adds to every round trip, measured by the
// kernel's connect(): the time from its SYN to the SYN,ACK, with no
// impairment, over handshakes.
type roundTrips struct{ engine, relay []time.Duration }

const probeHandshakes = 40

// benchRoundTrips times handshakes from the kernel to tcpstated tun (the
// packets go through the bridge's reader, ExchangeSegments, the engine
// and the watch) and to a kernel listener through bridge.Relay (the
// kernel-to-kernel baseline's path).
func benchRoundTrips(t *testing.T, bin, dir string) roundTrips {
	handshakes := func(l *lab, addr string) []time.Duration {
		var ds []time.Duration
		for range probeHandshakes {
			start := time.Now()
			c, err := l.dial(addr)
			if err != nil {
				t.Errorf("round-trip probe: dial %s: %v", addr, err)
				return nil
			}
			ds = append(ds, time.Since(start))
			c.SetLinger(0)
			c.Close()
			time.Sleep(10 * time.Millisecond)
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds
	}
	var rt roundTrips
	l := newLab(t, bin, dir)
	p := l.startTun(t, "--listen", "80", "--sink")
	rt.engine = handshakes(l, tcpstatedAddr+":80")
	p.stop()
	snd := newLab(t, bin, dir)
	rcv := newLabAt(t, bin, dir, tcpstatedAddr, kernelAddr)
	_, stop := startRelay(t, snd, rcv, "delay 0ms", benchSeed)
	defer stop()
	ln, err := rcv.listen(tcpstatedAddr + ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	rt.relay = handshakes(snd, ln.Addr().String())
	return rt
}

// quantile is the q-quantile of sorted ds (0 when empty).
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return ds[min(len(ds)-1, int(q*float64(len(ds))))]
}

func (rt roundTrips) String() string {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/1e6) }
	return fmt.Sprintf("a handshake (SYN to SYN,ACK, no impairment, %d each) takes p50 %s ms, p90 %s ms through tcpstated tun (reader, ExchangeSegments, engine, watch) against p50 %s ms, p90 %s ms through bridge.Relay; the difference is added to every round trip of tcpstated's transfers",
		probeHandshakes, ms(quantile(rt.engine, 0.5)), ms(quantile(rt.engine, 0.9)), ms(quantile(rt.relay, 0.5)), ms(quantile(rt.relay, 0.9)))
}

// txDropped is what the kernel's tun0 queue dropped on its way to the
// device's reader (tcpstated tun or the relay).
func txDropped(t *testing.T, l *lab) uint64 {
	out, err := l.exec("cat", "/sys/class/net/tun0/statistics/tx_dropped")
	if err != nil {
		t.Errorf("tun0 tx_dropped: %v", err)
		return 0
	}
	v, _ := strconv.ParseUint(strings.TrimSpace(out), 10, 64)
	return v
}

// dialCC connects from the kernel with congestion control cc set on the
// socket before the SYN (TCP_CONGESTION; "" leaves the namespace's
// default: a namespace may not change tcp_congestion_control).
func dialCC(l *lab, addr, cc string) (*net.TCPConn, error) {
	var c net.Conn
	err := l.do(func() error {
		d := net.Dialer{Timeout: 10 * time.Second}
		if cc != "" {
			d.Control = func(_, _ string, rc syscall.RawConn) error {
				var serr error
				err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION, cc) })
				if err == nil {
					err = serr
				}
				if err != nil {
					return fmt.Errorf("TCP_CONGESTION %s: %w", cc, err)
				}
				return nil
			}
		}
		var err error
		c, err = d.Dial("tcp4", addr)
		return err
	})
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

// socketCC is the congestion control of a kernel socket (TCP_CONGESTION).
func socketCC(c *net.TCPConn) string {
	rc, err := c.SyscallConn()
	if err != nil {
		return "?"
	}
	name := "?"
	rc.Control(func(fd uintptr) {
		if s, err := unix.GetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION); err == nil {
			name = strings.TrimRight(s, "\x00")
		}
	})
	return name
}

// kernelCounters are the nstat counters the tables show: the sender's
// recovery and the receiver's view of what arrived.
var kernelCounters = []string{
	"TcpRetransSegs", "TcpExtTCPSackRecovery", "TcpExtTCPFastRetrans", "TcpExtTCPLossProbes", "TcpExtTCPTimeouts",
	"TcpExtTCPSpuriousRTOs", "TcpExtTCPDSACKUndo", "TcpExtTCPLostRetransmit", "TcpExtTCPDSACKRecv", "TcpExtTCPDSACKRecvSegs",
	"TcpExtTCPOFOQueue", "TcpExtTCPDSACKOldSent", "TcpExtTCPOFODrop", "TcpExtTCPRcvQDrop", "TcpExtPAWSEstab", "TcpInSegs", "TcpOutSegs",
}

// nstatCounts reads the namespace's TCP counters (a fresh namespace for
// each transfer, so they are the transfer's).
func nstatCounts(t *testing.T, l *lab) map[string]uint64 {
	out, err := l.exec(append([]string{"nstat", "-asz"}, kernelCounters...)...)
	if err != nil {
		t.Errorf("nstat: %v", err)
		return nil
	}
	m := map[string]uint64{}
	for line := range strings.SplitSeq(out, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && !strings.HasPrefix(f[0], "#") {
			m[f[0]], _ = strconv.ParseUint(f[1], 10, 64)
		}
	}
	return m
}

// tunNetemCounts stops the tun process and reads what its impairment of
// one direction ("in" or "out") dropped from the stats line.
func tunNetemCounts(t *testing.T, p *tunProc, dir string) (lost, limit uint64) {
	p.stop()
	line, err := p.waitLine("stats ", stateTimeout)
	if err != nil {
		t.Errorf("no stats line: %v", err)
		return 0, 0
	}
	_, kv := lineFields("stats - " + strings.TrimPrefix(line, "stats "))
	lost, _ = strconv.ParseUint(kv["netem_"+dir+"_lost"], 10, 64)
	limit, _ = strconv.ParseUint(kv["netem_"+dir+"_limit_dropped"], 10, 64)
	return lost, limit
}

// recoveryCodes are the explanations of the sender's loss recovery.
var recoveryCodes = map[string]bool{
	"FAST_RETRANSMIT": true, "SACK_RECOVERY": true, "SACK_NEXT_SEGMENT": true, "RACK_LOST": true, "TLP_PROBE": true,
	"RETRANSMIT_TIMEOUT": true, "SPURIOUS_RTO": true, "FRTO_SPURIOUS": true, "PRR": true,
}

// engineCounts pages through the session's log with explanations (the
// log does not store them; the service re-runs it) and counts the
// recovery decisions, the data segments sent and resent, and the inbound
// segments the engine dropped.
func engineCounts(t *testing.T, p *tunProc) engineCount {
	c := engineCount{codes: map[string]uint64{}}
	lc := pb.NewLogServiceClient(p.conn)
	var high uint32
	started := false
	for tok := ""; ; {
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		r, err := lc.ListRecords(ctx, &pb.ListRecordsRequest{Parent: "sessions/tun", PageSize: 1000, PageToken: tok, Explain: true},
			grpc.MaxCallRecvMsgSize(256<<20))
		cancel()
		if err != nil {
			t.Errorf("ListRecords: %v", err)
			return c
		}
		for _, rec := range r.Records {
			out := rec.GetOutput()
			for _, sg := range out.GetSegments() {
				if sg.GetPayloadLength() == 0 {
					continue
				}
				c.dataSent++
				end := sg.GetSeq() + sg.GetPayloadLength()
				if started && int32(end-high) <= 0 {
					c.retransmitted++
				} else {
					high, started = end, true
				}
			}
			for _, x := range out.GetExplanations() {
				switch {
				case x.GetCode() == "SACK_NEXT_SEGMENT" && x.GetFields()["RULE"] == 2:
					// new data, not a repair
				case recoveryCodes[x.GetCode()]:
					c.codes[x.GetCode()]++
				case x.GetAction() == pb.Explanation_ACTION_DROPPED:
					c.codes["DROPPED:"+x.GetCode()]++
				}
			}
		}
		if tok = r.GetNextPageToken(); tok == "" {
			return c
		}
	}
}

// ---- the tables ----

func (e engineCount) sender() string {
	c := e.codes
	return fmt.Sprintf("%d of %d resent; FR %d, SACK rec %d, NextSeg %d, RACK %d, TLP %d, RTO %d, spurious RTO %d",
		e.retransmitted, e.dataSent, c["FAST_RETRANSMIT"], c["SACK_RECOVERY"], c["SACK_NEXT_SEGMENT"], c["RACK_LOST"], c["TLP_PROBE"],
		c["RETRANSMIT_TIMEOUT"], c["SPURIOUS_RTO"]+c["FRTO_SPURIOUS"])
}

// dropped lists the inbound segments the engine discarded, by code.
func (e engineCount) dropped() string {
	var parts []string
	for k, v := range e.codes {
		if code, ok := strings.CutPrefix(k, "DROPPED:"); ok {
			parts = append(parts, fmt.Sprintf("%s %d", code, v))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func kernelSender(m map[string]uint64) string {
	return fmt.Sprintf("%d resent (%d D-SACKed); SACK rec %d, TLP %d, RTO %d, undo %d",
		m["TcpRetransSegs"], m["TcpExtTCPDSACKRecvSegs"], m["TcpExtTCPSackRecovery"], m["TcpExtTCPLossProbes"], m["TcpExtTCPTimeouts"], m["TcpExtTCPDSACKUndo"]+m["TcpExtTCPSpuriousRTOs"])
}

// pawsDiscards is what the receiving kernel discarded as old duplicates
// by their timestamps (RFC 7323 §5, PAWS): a copy that overtook the
// segments before it raised TS.Recent, and they arrived older.
func pawsDiscards(rcv map[string]uint64) string {
	return fmt.Sprintf("; receiver's PAWS discards %d", rcv["TcpExtPAWSEstab"])
}

func (r *benchRun) rate() string {
	if r == nil {
		return "failed"
	}
	return fmt.Sprintf("%.2f", r.mbps)
}

func (r *benchRun) samples() string {
	if r == nil {
		return "–"
	}
	return r.sampled.String()
}

func ratio(a, b *benchRun) string {
	if a == nil || b == nil || b.mbps == 0 {
		return "–"
	}
	return fmt.Sprintf("**%.2f×**", a.mbps/b.mbps)
}

func (r *benchRun) lost() string {
	if r == nil {
		return "–"
	}
	s := strconv.FormatUint(r.impLost, 10)
	if r.impLimit > 0 {
		s += fmt.Sprintf(" + %d by the limit", r.impLimit)
	}
	if r.devDropped > 0 {
		s += fmt.Sprintf(" + %d by tun0's queue", r.devDropped)
	}
	return s
}

// benchTables renders the results as the Markdown docs/PERFORMANCE.md
// keeps (between <!-- begin bench-loss --> and <!-- end bench-loss -->).
func benchTables(results map[string][]map[string]*benchRun, rt roundTrips, n int64, runs int, defaultCC string, took time.Duration) string {
	var b strings.Builder
	host, _ := os.Hostname()
	uname, _ := run("uname", "-sr")
	fmt.Fprintf(&b, "%.1f MB one way per transfer, %d run(s), seeds %d–%d, delay queue limit %d; machine %s, %d CPUs, %s; %s; %v in all.\n\n",
		float64(n)/1e6, runs, benchSeed, benchSeed+runs-1, benchLimit, host, runtime.NumCPU(), strings.TrimSpace(uname),
		time.Now().UTC().Format("2006-01-02 15:04 MST"), took.Round(time.Second))
	fmt.Fprintf(&b, "**The bridge's own delay**: %s.\n\n", rt)
	fmt.Fprintf(&b, "**Goodput, tcpstated sending** (profile rfc with its defaults: CUBIC, SACK + PRR + RACK-TLP, min RTO 1 s, IW 10) against the kernel sending to the kernel through the same impairment; the last two columns are tcpstated with Reno (RFC 5681, the rfc default before issue 11) and with the linux profile, each ÷ the kernel on CUBIC:\n\n")
	fmt.Fprintf(&b, "| impairment (data path) | run | tcpstated → kernel MB/s | kernel → kernel, %s | kernel → kernel, cubic | tcpstated ÷ %s | tcpstated ÷ cubic | tcpstated, congestion_control=reno | tcpstated, profile linux |\n", defaultCC, defaultCC)
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	for _, imp := range benchImpairments {
		for i, c := range results[imp.name] {
			t, kd, kc := c["t→k"], c["k→k"], c["k→kcubic"]
			fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s | %s (%s) | %s (%s) |\n", imp.name, i+1,
				t.rate(), kd.rate(), kc.rate(), ratio(t, kd), ratio(t, kc), c["t→kreno"].rate(), ratio(c["t→kreno"], kc), c["t→klinux"].rate(), ratio(c["t→klinux"], kc))
		}
	}
	fmt.Fprintf(&b, "\n**Recovery, each sender**: packets the impairment dropped on the data path, and the sender's account (tcpstated: data segments resent of those sent, and its explanations: FAST_RETRANSMIT, SACK_RECOVERY, SACK_NEXT_SEGMENT repairs, RACK_LOST, TLP_PROBE, RETRANSMIT_TIMEOUT, SPURIOUS_RTO/FRTO_SPURIOUS; the kernel: nstat TcpRetransSegs, TcpExtTCPDSACKRecvSegs, TcpExtTCPSackRecovery, TcpExtTCPLossProbes, TcpExtTCPTimeouts, TcpExtTCPDSACKUndo + TcpExtTCPSpuriousRTOs; each with the receiving kernel's nstat TcpExtPAWSEstab, segments it discarded by their timestamps, RFC 7323 §5):\n\n")
	b.WriteString("| impairment (data path) | run | sender | MB/s | dropped | mean cwnd (segments) / SRTT (ms) | recovery |\n|---|---|---|---|---|---|---|\n")
	for _, imp := range benchImpairments {
		for i, c := range results[imp.name] {
			for _, v := range tcpstatedVariants {
				r, rec := c["t→k"+v.key], "–"
				if r != nil {
					rec = r.engine.sender() + pawsDiscards(r.kernelRcv)
				}
				fmt.Fprintf(&b, "| %s | %d | tcpstated (%s) | %s | %s | %s | %s |\n", imp.name, i+1, v.name, r.rate(), r.lost(), r.samples(), rec)
			}
			for _, cc := range []string{"", "cubic"} {
				r, rec, name := c["k→k"+cc], "–", cc
				if name == "" {
					name = defaultCC
				}
				if r != nil {
					rec = kernelSender(r.kernelSnd) + pawsDiscards(r.kernelRcv)
				}
				fmt.Fprintf(&b, "| %s | %d | kernel (%s) | %s | %s | %s | %s |\n", imp.name, i+1, name, r.rate(), r.lost(), r.samples(), rec)
			}
		}
	}
	fmt.Fprintf(&b, "\n**tcpstated receiving**: the kernel sends to tcpstated and to the kernel through the same impairment. With no discards the kernel resends what was dropped, plus what it resends spuriously (D-SACKed: a copy that arrived twice), plus a dropped retransmission again:\n\n")
	b.WriteString("| impairment (data path) | run | kernel sender | → tcpstated MB/s | → kernel MB/s | ÷ | to tcpstated: resent (D-SACKed) / dropped | to the kernel: the same | kernel's mean cwnd / SRTT (ms), to tcpstated; to the kernel | tcpstated's discards (explanations) |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, imp := range benchImpairments {
		for i, c := range results[imp.name] {
			for _, cc := range []string{"", "cubic"} {
				t, k := c["k→t"+cc], c["k→k"+cc]
				name := cc
				if name == "" {
					name = defaultCC
				}
				tre, kre, disc, rec := "–", "–", "–", "–"
				if t != nil {
					tre = fmt.Sprintf("%d (%d) / %s", t.kernelSnd["TcpRetransSegs"], t.kernelSnd["TcpExtTCPDSACKRecvSegs"], t.lost())
					disc = t.engine.dropped()
				}
				rec = t.samples() + "; " + k.samples()
				if k != nil {
					kre = fmt.Sprintf("%d (%d) / %s", k.kernelSnd["TcpRetransSegs"], k.kernelSnd["TcpExtTCPDSACKRecvSegs"], k.lost())
				}
				fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |\n", imp.name, i+1, name, t.rate(), k.rate(), ratio(t, k), tre, kre, rec, disc)
			}
		}
	}
	return b.String()
}
