package fsm_test

import (
	"math/rand/v2"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/tcpstated/tcpstated/fsm"
)

// floodSYNs is how many SYNs the flood test sends (TCPSTATED_FLOOD_SYNS
// overrides; -short sends 100 000).
func floodSYNs(t *testing.T) int {
	if v := os.Getenv("TCPSTATED_FLOOD_SYNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("TCPSTATED_FLOOD_SYNS=%q", v)
		}
		return n
	}
	if testing.Short() {
		return 100_000
	}
	return 1_000_000
}

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// The rule: a SYN flood from random addresses and ports at a listener
// with a backlog of 128 fills the SYN queue and no more: memory stays
// bounded by the queue, however many SYNs arrive; every SYN past the
// queue is counted (SynQueueDrops without SYN cookies, SynCookiesSent
// with them); without cookies a legitimate client's SYN is dropped like
// the rest, and with cookies it completes its handshake during the flood
// and is accepted. Reference: RFC 4987 §3.1 (SYN-RECEIVED state per SYN),
// §3.6 (SYN cookies).
func TestSYNFloodBoundedBySYNQueue(t *testing.T) {
	n := floodSYNs(t)
	for _, tc := range []struct {
		name    string
		cookies bool
		clock   bool
	}{
		{"no cookies", false, false},
		{"SYN cookies", true, false},
		// The clock moves 1 s every 1000 SYNs (1000 s over a million):
		// half-open connections time out after their SYN,ACK retries and
		// the queue churns.
		{"no cookies, clock moving", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) { floodListener(t, n, tc.cookies, tc.clock) })
	}
}

func floodListener(t *testing.T, n int, cookies, clock bool) {
	const backlog = 128
	const legit = 10 // legitimate clients, one every n/legit SYNs
	server := netip.MustParseAddrPort("192.0.2.1:80")
	e := fsm.New(fsm.Config{SynQueue: backlog, AcceptQueue: backlog, SynCookies: cookies, Secret: [16]byte{7}})
	l, err := e.Listen(server, backlog)
	if err != nil {
		t.Fatal(err)
	}
	e.Ready()
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 0, 128)
	syn := fsm.Segment{DstPort: server.Port(), Flags: fsm.FlagSYN, Window: 65535}
	syn.Options.MSS, syn.Options.HasMSS = 1460, true
	base := heapInUse()
	var atTenth uint64
	established, halfOpened := 0, 0
	start := time.Now()
	for i := range n {
		// A spoofed source: any address in 10.0.0.0/8, any port, any ISN.
		a := rng.Uint32()
		src := netip.AddrFrom4([4]byte{10, byte(a >> 16), byte(a >> 8), byte(a)})
		syn.SrcPort = uint16(1024 + rng.IntN(64511))
		syn.Seq = fsm.Seq(rng.Uint32())
		buf = fsm.AppendPacket(buf[:0], src, server.Addr(), &syn)
		if err := e.Deliver(buf); err != nil {
			t.Fatal(err)
		}
		halfOpened += synReceived(e.Ready()) // the SYN,ACKs go to spoofed addresses: nobody answers
		if clock && i%1000 == 999 {
			e.AdvanceTo(e.Now() + time.Second)
			halfOpened += synReceived(e.Ready())
		}
		if i == n/10 {
			atTenth = heapInUse()
		}
		if i%(n/legit) == n/legit/2 {
			if handshake(t, e, l, server, i) {
				established++
			}
		}
	}
	elapsed := time.Since(start)
	after := heapInUse()
	info, ok := e.Endpoint(l)
	if !ok {
		t.Fatal("the listener is gone")
	}
	st := info.Stats
	t.Logf("%d SYNs in %v (%.0f ns each): heap %d KiB before, %d KiB after %d SYNs, %d KiB after %d; stats %+v; %d of %d legitimate clients established",
		n, elapsed.Round(time.Millisecond), float64(elapsed.Nanoseconds())/float64(n), base>>10, atTenth>>10, n/10, after>>10, n, st, established, legit)

	// Memory: what the queue holds, not what the flood sent. 128 half-open
	// connections cost well under 4 MiB; the last 90% of the flood adds
	// nothing beyond noise.
	if grow := int64(after) - int64(base); grow > 4<<20 {
		t.Errorf("the heap grew by %d KiB over the flood", grow>>10)
	}
	// With the clock moving, closed connections are also kept, up to
	// Config.RetainClosed (1024): a second constant bound, reached later.
	if grow := int64(after) - int64(atTenth); grow > 512<<10 && !clock {
		t.Errorf("the heap grew by %d KiB between %d and %d SYNs: not bounded by the queue", grow>>10, n/10, n)
	}
	live := 0
	for _, ep := range e.Endpoints() { // closed ones are kept up to Config.RetainClosed
		if ep.State != fsm.Closed {
			live++
		}
	}
	if closed := len(e.Endpoints()) - live; closed > 1024 {
		t.Errorf("%d closed endpoints kept, more than Config.RetainClosed", closed)
	}
	if live > backlog+legit+1 {
		t.Errorf("%d endpoints live after the flood, want at most the queue, the listener and the accepted clients", live)
	}
	floodSYNs := uint64(n)
	switch {
	case clock:
		// Each SYN either took a place in the queue (freed when its
		// SYN,ACKs went unanswered) or was counted as a drop.
		if uint64(halfOpened)+st.SynQueueDrops != floodSYNs+legit || halfOpened <= backlog {
			t.Errorf("with the clock moving: %d half-open + %d drops, want %d SYNs, more than the queue's %d", halfOpened, st.SynQueueDrops, floodSYNs+legit, backlog)
		}
		t.Logf("with the clock moving: %d SYNs took a place in the queue over time, %d were dropped", halfOpened, st.SynQueueDrops)
	case cookies:
		// Every SYN past the queue got a cookie, none a drop; every
		// legitimate client came back with a valid one.
		if st.SynCookiesSent != floodSYNs-backlog+legit || st.SynQueueDrops != 0 || st.SynCookiesAccepted != legit || established != legit || st.Accepted != legit {
			t.Errorf("with cookies: stats %+v, %d established; want %d cookies sent, 0 drops, %d accepted", st, established, floodSYNs-backlog+legit, legit)
		}
	default:
		if st.SynQueueDrops != floodSYNs-backlog+legit || st.SynCookiesSent != 0 || established != 0 {
			t.Errorf("without cookies: stats %+v, %d established; want %d drops (the flood past the queue and every legitimate SYN)", st, established, floodSYNs-backlog+legit)
		}
	}
}

// handshake runs one legitimate client (its own engine) against the
// server engine during the flood: connect, exchange packets until both
// sides are quiet, accept. It reports whether the connection was accepted
// in ESTABLISHED.
func handshake(t *testing.T, server *fsm.Engine, l fsm.EndpointID, addr netip.AddrPort, i int) bool {
	t.Helper()
	local := netip.AddrPortFrom(netip.MustParseAddr("198.51.100.7"), uint16(40000+i%20000+i/20000))
	c := fsm.New(fsm.Config{Secret: [16]byte{9}})
	if _, err := c.Connect(local, addr); err != nil {
		t.Fatal(err)
	}
	toServer := copyPackets(c.Ready().Packets)
	for round := 0; round < 10 && len(toServer) > 0; round++ {
		var toClient [][]byte
		for _, p := range toServer {
			if err := server.Deliver(p); err != nil {
				t.Fatal(err)
			}
			for _, q := range server.Ready().Packets {
				if q.Dst == local.Addr() {
					toClient = append(toClient, append([]byte(nil), q.Data...))
				}
			}
		}
		toServer = nil
		for _, p := range toClient {
			if err := c.Deliver(p); err != nil {
				t.Fatal(err)
			}
			toServer = append(toServer, copyPackets(c.Ready().Packets)...)
		}
	}
	id, err := server.Accept(l)
	server.Ready()
	if err != nil {
		return false
	}
	info, _ := server.Endpoint(id)
	return info.State == fsm.Established && info.Remote == local
}

// synReceived counts the connections a batch put in SYN-RECEIVED.
func synReceived(r fsm.Ready) int {
	k := 0
	for _, tr := range r.Transitions {
		if tr.To == fsm.SynReceived {
			k++
		}
	}
	return k
}

func copyPackets(ps []fsm.Packet) [][]byte {
	out := make([][]byte, len(ps))
	for i := range ps {
		out[i] = append([]byte(nil), ps[i].Data...)
	}
	return out
}
