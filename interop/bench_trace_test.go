package interop

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"context"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// engineTrace and engineTraceDone, when set, sample a tcpstated sender
// beside sampleEngine and see its session once the transfer is done.
var (
	engineTrace     func(p *tunProc, name string) (stop func())
	engineTraceDone func(p *tunProc)
)

// kernelTrace, when set, samples a kernel sender beside sampleKernel
// (TestBenchLossTrace).
var kernelTrace func(k *net.TCPConn) (stop func())

// kernelSample is one TCP_INFO reading of a kernel sender.
type kernelSample struct {
	at                                                  time.Duration
	caState                                             uint8
	cwnd, ssthresh, unacked, sacked, lost, retrans, rtt uint32
	delivered                                           uint32
}

// TestBenchLossTrace is a study aid for issue 11 (TCPSTATED_BENCH_TRACE
// set): kernel → kernel on reno and cubic through one impairment
// (TCPSTATED_BENCH_TRACE_SPEC, default 1 % loss), TCP_INFO read every
// millisecond, and a summary of each recovery episode: cwnd before it,
// ssthresh, cwnd after, and the growth in between.
func TestBenchLossTrace(t *testing.T) {
	if os.Getenv("TCPSTATED_BENCH_TRACE") == "" {
		t.Skip("TCPSTATED_BENCH_TRACE not set")
	}
	if why := requirements(); why != "" {
		skipOrFail(t, why)
	}
	spec := "delay 20ms loss 1%"
	if v := os.Getenv("TCPSTATED_BENCH_TRACE_SPEC"); v != "" {
		spec = v
	}
	n := benchBytes(t)
	dir := t.TempDir()
	bin := buildTcpstated(t, dir)
	ccs := strings.Fields(os.Getenv("TCPSTATED_BENCH_TRACE_CC"))
	if len(ccs) == 0 {
		ccs = []string{"reno", "cubic"}
	}
	seeds := []uint64{11, 12}
	if v := os.Getenv("TCPSTATED_BENCH_TRACE_SEEDS"); v != "" {
		seeds = nil
		for _, f := range strings.Fields(v) {
			s, _ := strconv.ParseUint(f, 10, 64)
			seeds = append(seeds, s)
		}
	}
	defer func() { kernelTrace, engineTrace, engineTraceDone = nil, nil, nil }()
	variants := map[string][]string{"rfc": nil, "rfc-cubic": {"--switch", "congestion_control=cubic"}, "linux": {"--profile", "linux"},
		"rfc-ssall": {"--switch", "ss_all_bytes=1"}}
	for _, seed := range seeds {
		for _, v := range strings.Fields(os.Getenv("TCPSTATED_BENCH_TRACE_ENGINE")) {
			var tr []kernelSample
			engineTrace = func(p *tunProc, name string) func() {
				quit, done := make(chan struct{}), make(chan struct{})
				start := time.Now()
				go func() {
					defer close(done)
					for {
						select {
						case <-quit:
							return
						default:
						}
						ep, err := p.endpoint(name)
						tcb := ep.GetTcb()
						if err == nil && tcb.GetMss() > 0 && tcb.GetSrtt() != nil && (ep.GetStateName() == "ESTABLISHED" || ep.GetStateName() == "FIN-WAIT-1") {
							m := tcb.GetMss()
							tr = append(tr, kernelSample{at: time.Since(start), cwnd: tcb.GetCwnd() / m, ssthresh: min(tcb.GetSsthresh()/m, 1<<20),
								rtt: uint32(tcb.GetSrtt().AsDuration().Microseconds())})
						}
						time.Sleep(time.Millisecond)
					}
				}()
				return func() { close(quit); <-done }
			}
			engineTraceDone = dumpRecovery
			r := benchTcpstatedSends(t, bin, dir, spec, n, seed, variants[v]...)
			if r == nil {
				continue
			}
			fmt.Printf("== tcpstated %s seed %d %q: %.3f MB/s, 100ms-sampled %s, %s; receiver in %d out %d segments\n", v, seed, spec, r.mbps, r.sampled, r.engine.sender(),
				r.kernelRcv["TcpInSegs"], r.kernelRcv["TcpOutSegs"])
			summarizeEngine(tr)
		}
		for _, cc := range ccs {
			var tr []kernelSample
			kernelTrace = func(k *net.TCPConn) func() {
				quit, done := make(chan struct{}), make(chan struct{})
				start := time.Now()
				go func() {
					defer close(done)
					for {
						select {
						case <-quit:
							return
						default:
						}
						if i, err := kernelTCPInfo(k); err == nil && (i.State == unix.BPF_TCP_ESTABLISHED || i.State == unix.BPF_TCP_FIN_WAIT1) {
							tr = append(tr, kernelSample{time.Since(start), i.Ca_state, i.Snd_cwnd, i.Snd_ssthresh, i.Unacked, i.Sacked, i.Lost, i.Retrans, i.Rtt, i.Delivered})
						}
						time.Sleep(time.Millisecond)
					}
				}()
				return func() { close(quit); <-done }
			}
			r := benchKernelToKernel(t, bin, dir, spec, n, seed, cc)
			if r == nil {
				continue
			}
			fmt.Printf("== kernel %s seed %d %q: %.3f MB/s, 100ms-sampled %s, %s; receiver in %d out %d segments\n", r.cc, seed, spec, r.mbps, r.sampled, kernelSender(r.kernelSnd),
				r.kernelRcv["TcpInSegs"], r.kernelRcv["TcpOutSegs"])
			summarizeKernel(tr)
		}
	}
}

// summarizeKernel prints the time-weighted mean cwnd and, per recovery
// episode (ca_state Recovery or Loss), the cwnd before it, ssthresh, the
// cwnd it ended with, and how fast cwnd grew per RTT before the next.
func summarizeKernel(tr []kernelSample) {
	if len(tr) < 2 {
		return
	}
	var area, rttArea float64
	for i := 1; i < len(tr); i++ {
		dt := (tr[i].at - tr[i-1].at).Seconds()
		area += float64(tr[i-1].cwnd) * dt
		rttArea += float64(tr[i-1].rtt) / 1000 * dt
	}
	total := (tr[len(tr)-1].at - tr[0].at).Seconds()
	fmt.Printf("   time-weighted mean cwnd %.2f, srtt %.1f ms over %.2f s, %d samples\n", area/total, rttArea/total, total, len(tr))
	in := false
	var before, exitCwnd uint32
	var exitAt time.Duration
	var prevOpen kernelSample
	for _, s := range tr {
		rec := s.caState >= 3 // TCP_CA_Recovery, TCP_CA_Loss
		if rec && !in {
			gap := s.at - exitAt
			rate := 0.0
			if exitAt > 0 && s.rtt > 0 {
				rate = float64(int(prevOpen.cwnd)-int(exitCwnd)) / (gap.Seconds() * 1e6 / float64(s.rtt))
			}
			before = prevOpen.cwnd
			fmt.Printf("   %7.3f enter ca=%d cwnd before %d (state %d, unacked %d sacked %d) ssthresh %d; since last exit %.0f ms grew %d→%d (%.2f/rtt)\n",
				s.at.Seconds(), s.caState, before, prevOpen.caState, prevOpen.unacked, prevOpen.sacked, s.ssthresh, gap.Seconds()*1000, exitCwnd, prevOpen.cwnd, rate)
		}
		if !rec && in {
			exitCwnd, exitAt = s.cwnd, s.at
			fmt.Printf("   %7.3f exit cwnd %d ssthresh %d\n", s.at.Seconds(), s.cwnd, s.ssthresh)
		}
		if !rec {
			prevOpen = s
		}
		in = rec
	}
}

// summarizeEngine prints the time-weighted mean cwnd and SRTT of samples.
func summarizeEngine(tr []kernelSample) {
	if len(tr) < 2 {
		return
	}
	var area, rttArea float64
	for i := 1; i < len(tr); i++ {
		dt := (tr[i].at - tr[i-1].at).Seconds()
		area += float64(tr[i-1].cwnd) * dt
		rttArea += float64(tr[i-1].rtt) / 1000 * dt
	}
	total := (tr[len(tr)-1].at - tr[0].at).Seconds()
	lo, hi := traceWindow()
	var last kernelSample
	for _, x := range tr {
		if x.at >= lo && x.at < hi && (x.cwnd != last.cwnd || x.ssthresh != last.ssthresh) {
			fmt.Printf("     sample %7.4f cwnd %d ssthresh %d srtt %d us\n", x.at.Seconds(), x.cwnd, x.ssthresh, x.rtt)
		}
		last = x
	}
	fmt.Printf("   time-weighted mean cwnd %.2f (floor segs), srtt %.1f ms over %.2f s, %d samples\n", area/total, rttArea/total, total, len(tr))
}

// dumpRecovery prints the sender's congestion decisions from its log.
func dumpRecovery(p *tunProc) {
	lc := pb.NewLogServiceClient(p.conn)
	var exitCwnd uint64
	var exitAt time.Duration
	var ring []string
	rtoCtx := os.Getenv("TCPSTATED_BENCH_TRACE_RTO") != ""
	for tok := ""; ; {
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		r, err := lc.ListRecords(ctx, &pb.ListRecordsRequest{Parent: "sessions/tun", PageSize: 1000, PageToken: tok, Explain: true},
			grpc.MaxCallRecvMsgSize(256<<20))
		cancel()
		if err != nil {
			fmt.Println("ListRecords:", err)
			return
		}
		for _, rec := range r.Records {
			at := rec.GetTime().AsDuration()
			if rtoCtx {
				if rec.GetInput() != nil && rec.GetSummary() != "" {
					ring = append(ring, fmt.Sprintf("     %7.4f IN %s", at.Seconds(), rec.GetSummary()))
				}
				for _, sg := range rec.GetOutput().GetSegments() {
					if sg.GetPayloadLength() > 0 {
						ring = append(ring, fmt.Sprintf("     %7.4f OUT seq %d len %d", at.Seconds(), sg.GetSeq(), sg.GetPayloadLength()))
					}
				}
			}
			for _, x := range rec.GetOutput().GetExplanations() {
				f := x.GetFields()
				if rtoCtx {
					switch x.GetCode() {
					case "RTT_SAMPLE_SACK", "WINDOW_UPDATED":
					default:
						ring = append(ring, fmt.Sprintf("     %7.4f %s %v", at.Seconds(), x.GetCode(), f))
						if len(ring) > 40 {
							ring = ring[1:]
						}
					}
					if x.GetCode() == "RETRANSMIT_TIMEOUT" {
						fmt.Println(strings.Join(ring, "\n"))
						fmt.Println("     ----")
						ring = nil
					}
				}
				if lo, hi := traceWindow(); at >= lo && at < hi {
					fmt.Printf("     %7.4f %s %v\n", at.Seconds(), x.GetCode(), f)
				}
				switch x.GetCode() {
				case "SACK_RECOVERY":
					fl := f["FLIGHT"] / 1448
					fmt.Printf("   %7.3f enter flight %d (ssthresh %d) pipe %d dupacks %d; since exit %.0f ms from %d\n", at.Seconds(), fl, f["SSTHRESH"]/1448, f["PIPE"]/1448, f["DUPACKS"],
						(at-exitAt).Seconds()*1000, exitCwnd)
				case "SACK_RECOVERY_DONE":
					exitCwnd, exitAt = f["CWND"]/1448, at
					fmt.Printf("   %7.3f exit cwnd %d\n", at.Seconds(), exitCwnd)
				case "TLP_LOSS_REPAIRED", "RETRANSMIT_TIMEOUT", "SPURIOUS_FAST_RETRANSMIT", "TLP_PROBE", "CUBIC_EPOCH":
					fmt.Printf("   %7.3f %s %v\n", at.Seconds(), x.GetCode(), f)
				}
			}
		}
		if tok = r.GetNextPageToken(); tok == "" {
			return
		}
	}
}

// traceWindow is TCPSTATED_BENCH_TRACE_WINDOW ("from,to" in seconds of
// session time): every explanation in it is printed.
func traceWindow() (time.Duration, time.Duration) {
	a, b, ok := strings.Cut(os.Getenv("TCPSTATED_BENCH_TRACE_WINDOW"), ",")
	if !ok {
		return 0, 0
	}
	x, _ := strconv.ParseFloat(a, 64)
	y, _ := strconv.ParseFloat(b, 64)
	return time.Duration(x * float64(time.Second)), time.Duration(y * float64(time.Second))
}
