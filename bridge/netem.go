// netem in user space: loss, delay and reordering of packets.

package bridge

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

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
		if err != nil || !strings.HasSuffix(v, "%") || !(p >= 0 && p <= 100) { // NaN fails too
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

// DefaultNetemLimit is netem's default limit: the delay queue holds this
// many packets and drops what comes past it ("delay 20ms" is therefore not
// loss-free for a sender faster than limit packets per delay).
const DefaultNetemLimit = 1000

// NetemCounts is what one direction's impairment did: packets the loss
// model dropped, packets dropped because the delay queue held limit of
// them already, and packets passed on.
type NetemCounts struct {
	Lost, LimitDropped, Passed atomic.Uint64
}

// netem applies a NetemSpec to a stream of packets and hands the survivors
// to out, in the order the impairment gives them.
type netem struct {
	spec   NetemSpec
	out    func([]byte)
	rngs   netemRNGs
	mu     sync.Mutex // rngs
	q      chan delayed
	counts *NetemCounts
	warn   func(limit int) // called once, at the first drop by the limit
	warned atomic.Bool
	quit   chan struct{}
	once   sync.Once
}

type delayed struct {
	p   []byte
	due time.Time
}

// netemRNGs are one direction's random choices: the loss draws and the
// reorder draws are separate streams, each drawn once per packet, so the
// k-th packet's fate depends only on the seed and k: the same seed gives
// the same loss sequence in both directions, with or without reordering.
type netemRNGs struct{ loss, reorder *rand.Rand }

// newNetemRNGs seeds one direction's streams; every direction (and every
// Relay) given the same seed draws the same sequences.
func newNetemRNGs(seed uint64) netemRNGs {
	return netemRNGs{
		loss:    rand.New(rand.NewPCG(seed, 0x6c6f7373)),       // "loss"
		reorder: rand.New(rand.NewPCG(seed, 0x72656f72646572)), // "reorder"
	}
}

// newNetem starts an impairment; limit is the delay queue's length
// (DefaultNetemLimit when 0 or less).
func newNetem(spec NetemSpec, limit int, seed uint64, out func([]byte), counts *NetemCounts, warn func(int)) *netem {
	if limit <= 0 {
		limit = DefaultNetemLimit
	}
	n := &netem{spec: spec, out: out, rngs: newNetemRNGs(seed), counts: counts, warn: warn, quit: make(chan struct{})}
	if spec.Delay > 0 {
		n.q = make(chan delayed, limit)
		go n.release()
	}
	return n
}

func (n *netem) send(p []byte) {
	if !n.spec.Active() {
		n.counts.Passed.Add(1)
		n.out(p)
		return
	}
	n.mu.Lock()
	lose := n.spec.Loss > 0 && n.rngs.loss.Float64() < n.spec.Loss
	now := n.spec.Delay == 0 || (n.spec.Reorder > 0 && n.rngs.reorder.Float64() < n.spec.Reorder)
	n.mu.Unlock()
	switch {
	case lose:
		n.counts.Lost.Add(1)
	case now:
		n.counts.Passed.Add(1)
		n.out(p)
	default:
		select {
		case n.q <- delayed{p, time.Now().Add(n.spec.Delay)}:
			n.counts.Passed.Add(1)
		default:
			n.counts.LimitDropped.Add(1) // over the limit, as netem drops
			if n.warn != nil && !n.warned.Swap(true) {
				n.warn(cap(n.q))
			}
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
