package fsm

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tcpstated/tcpstated/internal/mddoc"
)

// Simulated-link goodput (issue 11): two engines on a virtual clock joined
// by a link with a 20 ms round trip, a 100 Mbit/s bottleneck and seeded
// random loss of data segments (ACKs are not lost), one bulk transfer per
// run. Goodput is what the receiving application read per second; beside
// it the Mathis et al. estimate MSS/(RTT·sqrt(2p/3)) for Reno in
// congestion avoidance. `make bench-loss-sim` writes the table to
// docs/PERFORMANCE.md and the picture to docs/loss-goodput.svg.

const (
	simRTT      = 20 * time.Millisecond
	simRate     = 100e6 / 8 // bytes per second at the bottleneck
	simDuration = 30 * time.Second
	simSeeds    = 3
)

var simLosses = []float64{0.001, 0.01, 0.05}

// simAlgo is a loss-recovery configuration to compare.
type simAlgo struct {
	name string
	set  func(*Config)
}

var simAlgos = []simAlgo{
	{"newreno", func(c *Config) { c.NoSACK, c.Recovery.CongestionControl = true, CCReno }},
	{"sack", func(c *Config) {
		c.Recovery = Recovery{CongestionControl: CCReno, NoPRR: true, NoRACK: true, NoTLP: true}
	}},
	{"sack+prr", func(c *Config) { c.Recovery = Recovery{CongestionControl: CCReno, NoRACK: true, NoTLP: true} }},
	{"sack+prr+rack-tlp, reno", func(c *Config) { c.Recovery.CongestionControl = CCReno }},
	{"cubic+sack+prr+rack-tlp (default)", func(c *Config) {}},
	{"default, min RTO 200 ms", func(c *Config) { c.MinRTO = 200 * time.Millisecond }},
	{"cubic+hystart, min RTO 200 ms", func(c *Config) { c.Recovery.HyStart, c.MinRTO = true, 200*time.Millisecond }},
}

type simPkt struct {
	at   time.Duration
	n    int
	to   int // 0 sender, 1 receiver
	data []byte
}

// simRun transfers for simDuration and returns the goodput in bytes/s and
// the number of each recovery explanation the sender gave.
func simRun(tb testing.TB, algo simAlgo, loss float64, seed uint64) (float64, map[Code]int) {
	return simRunFor(tb, algo, loss, seed, simDuration)
}

// simRunFor is simRun for a given duration.
func simRunFor(tb testing.TB, algo simAlgo, loss float64, seed uint64, simDuration time.Duration) (float64, map[Code]int) {
	g, ev, _ := simRunLink(tb, algo, simLink{loss: loss}, seed, simDuration)
	return g, ev
}

// simLink is the impairment of the data direction: random loss, and a
// share of segments held back simReorderDelay so later ones overtake them.
type simLink struct {
	loss, reorder float64
	// jump reorders as netem does: every data segment waits
	// simReorderDelay more on the way, except the reordered ones, which
	// go at once and so arrive ahead of those sent before them (RTT
	// samples of a reordered segment are short).
	jump bool
}

const simReorderDelay = 20 * time.Millisecond

// simStats is what the sender did: its largest cwnd, and the bytes of
// data it sent and resent.
type simStats struct {
	maxCwnd      uint32
	sent, resent int
	// srttSum and samples give the mean SRTT, sampled every 100 ms.
	srttSum time.Duration
	samples int
}

// simRunLink is simRunFor over link.
func simRunLink(tb testing.TB, algo simAlgo, link simLink, seed uint64, simDuration time.Duration) (float64, map[Code]int, simStats) {
	loss := link.loss
	cfg := Config{RecvBuffer: 4 << 20, SendBuffer: 4 << 20}
	algo.set(&cfg)
	cfg.Secret[0] = byte(seed)
	snd, rcv := New(cfg), New(cfg)
	l, err := rcv.Listen(benchSrv, 0)
	if err != nil {
		tb.Fatal(err)
	}
	cid, err := snd.Connect(benchCli, benchSrv)
	if err != nil {
		tb.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, math.Float64bits(loss)))
	var (
		q        []simPkt
		n        int
		busy     [2]time.Duration // when the bottleneck towards each side is free
		now      time.Duration
		sid      EndpointID
		read     int
		chunk    = make([]byte, 1<<20)
		buf      = make([]byte, 1<<20)
		counted  = map[Code]int{}
		stats    simStats
		highest  Seq
		started  bool
		sampleAt time.Duration
	)
	engines := [2]*Engine{snd, rcv}
	drain := func(from int) {
		r := engines[from].Ready()
		if from == 0 {
			for _, x := range r.Explanations {
				switch x.Code {
				case CodeFastRetransmit, CodeRetransmitTimeout, CodeSACKRecovery, CodeSpuriousFastRetransmit, CodeHyStartCSS, CodeHyStartExit, CodeCubicEpoch, CodeTLPProbe:
					counted[x.Code]++
				case CodeSACKNextSeg:
					if v, _ := x.Field("RULE"); v != 2 {
						counted[x.Code]++ // retransmissions only
					}

				}
			}
		}
		for _, p := range r.Packets {
			to := 1 - from
			if k := len(p.Segment.Payload); to == 1 && k > 0 {
				end := p.Segment.Seq.Add(Size(k))
				if started && end.LessEq(highest) {
					stats.resent += k
				} else {
					highest, started = end, true
				}
				stats.sent += k
			}
			if to == 1 && len(p.Segment.Payload) > 0 && rng.Float64() < loss {
				continue
			}
			start := max(now, busy[to])
			busy[to] = start + time.Duration(float64(len(p.Data))/simRate*float64(time.Second))
			at := busy[to] + simRTT/2
			if to == 1 && link.reorder > 0 && len(p.Segment.Payload) > 0 {
				if r := rng.Float64() < link.reorder; r != link.jump {
					at += simReorderDelay
				}
			}
			n++
			q = append(q, simPkt{at: at, n: n, to: to, data: bytes.Clone(p.Data)})
		}
		if in, ok := snd.Endpoint(cid); ok {
			stats.maxCwnd = max(stats.maxCwnd, in.Cwnd)
		}
	}
	app := func() {
		if sid == 0 {
			if id, err := rcv.Accept(l); err == nil {
				sid = id
			}
		}
		for {
			k, err := snd.Send(cid, chunk)
			if err != nil || k == 0 {
				break
			}
		}
		if sid != 0 {
			for {
				k, _ := rcv.Receive(sid, buf)
				if k == 0 {
					break
				}
				read += k
			}
		}
		drain(0)
		drain(1)
	}
	drain(0)
	for now < simDuration {
		next := simDuration
		if len(q) > 0 {
			sort.Slice(q, func(i, j int) bool { return q[i].at < q[j].at || (q[i].at == q[j].at && q[i].n < q[j].n) })
			next = min(next, q[0].at)
		}
		for _, e := range engines {
			if d, ok := e.NextDeadline(); ok {
				next = min(next, d)
			}
		}
		now = max(now, next)
		for _, e := range engines {
			e.AdvanceTo(now)
		}
		drain(0)
		drain(1)
		for len(q) > 0 && q[0].at <= now {
			p := q[0]
			q = q[1:]
			if err := engines[p.to].Deliver(p.data); err != nil {
				tb.Fatal(err)
			}
			drain(p.to)
		}
		app()
		for ; sampleAt <= now; sampleAt += 100 * time.Millisecond {
			if in, ok := snd.Endpoint(cid); ok {
				stats.srttSum += in.SRTT
				stats.samples++
			}
		}
	}
	return float64(read) / simDuration.Seconds(), counted, stats
}

// mathis is the Mathis et al. estimate MSS/(RTT·sqrt(2p/3)) in bytes/s.
func mathis(mss int, loss float64) float64 {
	return float64(mss) / (simRTT.Seconds() * math.Sqrt(2*loss/3))
}

type simCell struct {
	goodput float64 // bytes/s, mean over seeds
	events  map[Code]int
}

func simTable(tb testing.TB) map[string]map[float64]simCell {
	out := map[string]map[float64]simCell{}
	for _, a := range simAlgos {
		out[a.name] = map[float64]simCell{}
		for _, p := range simLosses {
			cell := simCell{events: map[Code]int{}}
			for s := uint64(1); s <= simSeeds; s++ {
				g, ev := simRun(tb, a, p, s)
				cell.goodput += g / simSeeds
				for k, v := range ev {
					cell.events[k] += v
				}
			}
			out[a.name][p] = cell
		}
	}
	return out
}

// BenchmarkSimulatedLink reports the goodput of one 30 s transfer per
// algorithm and loss rate (seed 1), beside the Mathis estimate.
func BenchmarkSimulatedLink(b *testing.B) {
	for _, p := range simLosses {
		for _, a := range simAlgos {
			b.Run(fmt.Sprintf("loss=%g%%/%s", p*100, a.name), func(b *testing.B) {
				var g float64
				for range b.N {
					g, _ = simRun(b, a, p, 1)
				}
				b.ReportMetric(g/1e6, "MB/s")
				b.ReportMetric(mathis(1448, p)/1e6, "mathis-MB/s")
			})
		}
	}
}

// TestSimulatedLinkFigures writes docs/loss-goodput.svg and the table in
// docs/PERFORMANCE.md when TCPSTATED_WRITE_LOSS_DOCS is set (make
// bench-loss-sim); otherwise it runs one short cell to keep the harness
// working.
func TestSimulatedLinkFigures(t *testing.T) {
	if os.Getenv("TCPSTATED_WRITE_LOSS_DOCS") == "" {
		g, _ := simRun(t, simAlgos[len(simAlgos)-1], 0.01, 1)
		if g <= 0 {
			t.Fatal("no goodput over a 1% lossy link")
		}
		return
	}
	tab := simTable(t)
	var md strings.Builder
	fmt.Fprintf(&md, "RTT %v, bottleneck %.0f Mbit/s, %v per run, mean of %d seeds; loss applies to data segments only. MB/s of goodput (the receiving application's reads); in brackets the sender's fast retransmits or SACK recoveries / segments sent by NextSeg() / retransmission timeouts over all seeds.\n\n",
		simRTT, simRate*8/1e6, simDuration, simSeeds)
	md.WriteString("| loss | Mathis MSS/(RTT·√(2p/3)) |")
	for _, a := range simAlgos {
		fmt.Fprintf(&md, " %s |", a.name)
	}
	md.WriteString("\n|---|---|")
	for range simAlgos {
		md.WriteString("---|")
	}
	md.WriteString("\n")
	for _, p := range simLosses {
		fmt.Fprintf(&md, "| %g %% | %.2f |", p*100, mathis(1448, p)/1e6)
		for _, a := range simAlgos {
			c := tab[a.name][p]
			fmt.Fprintf(&md, " %.2f (%d / %d / %d) |", c.goodput/1e6, c.events[CodeFastRetransmit]+c.events[CodeSACKRecovery],
				c.events[CodeSACKNextSeg], c.events[CodeRetransmitTimeout])
		}
		md.WriteString("\n")
	}
	if err := mddoc.ReplaceSection(filepath.Join("..", "docs", "PERFORMANCE.md"), "loss-sim", md.String()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("..", "docs", "loss-goodput.svg"), []byte(simSVG(tab)), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Log(md.String())
}

// simSVG draws goodput against loss on log-log axes, one line per
// algorithm and a dashed one for the Mathis estimate.
func simSVG(tab map[string]map[float64]simCell) string {
	const w, h, l, r, top, bot = 760, 400, 70, 250, 30, 50
	lo, hi := math.Log10(0.05e6), math.Log10(20e6) // bytes/s on the y axis
	x := func(p float64) float64 {
		return l + (math.Log10(p)-math.Log10(simLosses[0]))/(math.Log10(simLosses[len(simLosses)-1])-math.Log10(simLosses[0]))*(w-l-r)
	}
	y := func(v float64) float64 {
		v = math.Min(math.Max(math.Log10(math.Max(v, 1)), lo), hi)
		return top + (hi-v)/(hi-lo)*(h-top-bot)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", w, h)
	fmt.Fprintf(&b, `<text x="%d" y="18" font-size="14">Goodput over a %v RTT link with random loss (fsm simulated link)</text>`+"\n", l, simRTT)
	for _, v := range []float64{0.1e6, 1e6, 10e6} {
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%g MB/s</text>`+"\n",
			l, w-r, y(v), y(v), l-6, y(v)+4, v/1e6)
	}
	for _, p := range simLosses {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#ddd"/><text x="%.1f" y="%d" text-anchor="middle">%g %%</text>`+"\n",
			x(p), x(p), top, h-bot, x(p), h-bot+16, p*100)
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">loss rate (data segments)</text>`+"\n", (l+w-r)/2, h-12)
	colors := []string{"#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"}
	line := func(name, color, dash string, val func(p float64) float64, row int) {
		var pts []string
		for _, p := range simLosses {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p), y(val(p))))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" stroke-dasharray="%s" points="%s"/>`+"\n", color, dash, strings.Join(pts, " "))
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="2" stroke-dasharray="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			w-r+10, w-r+30, top+20*row, top+20*row, color, dash, w-r+35, top+20*row+4, name)
	}
	line("Mathis", "#555", "5,4", func(p float64) float64 { return mathis(1448, p) }, 0)
	for i, a := range simAlgos {
		line(a.name, colors[i%len(colors)], "", func(p float64) float64 { return tab[a.name][p].goodput }, i+1)
	}
	b.WriteString("</svg>\n")
	return b.String()
}
