package bridge

import (
	"context"
	"slices"
	"testing"
	"time"
)

// tcpPacket is a bare IPv4 header saying TCP, numbered i in its ID field.
func tcpPacket(i int) []byte {
	p := make([]byte, 20)
	p[0], p[4], p[5], p[9] = 0x45, byte(i>>8), byte(i), 6
	return p
}

// TestRelayImpairsEachDirection: a Relay applies each direction's spec,
// drops the packet numbers the loss model's seeded stream says (the same a
// bridge with that seed drops), counts them, and drops what is not TCP.
func TestRelayImpairsEachDirection(t *testing.T) {
	const total, seed, loss = 1000, 5, 0.05
	draws := newNetemRNGs(seed).loss
	var wantLost []int
	for i := range total {
		if draws.Float64() < loss {
			wantLost = append(wantLost, i)
		}
	}
	hostA, relayA := pipePair()
	relayB, hostB := pipePair()
	var counts RelayCounts
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Relay(ctx, relayA, relayB, RelayConfig{AToB: NetemSpec{Loss: loss}, Seed: seed}, &counts)
	}()
	hostA.WritePacket([]byte{0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17}) // UDP: not relayed
	var gotB, gotA []int
	for i := range total {
		hostA.WritePacket(tcpPacket(i))
		hostB.WritePacket(tcpPacket(i))
		// Read what came through so far (the pipes hold 4096 packets).
		for _, r := range []struct {
			dev *pipeDev
			got *[]int
		}{{hostB, &gotB}, {hostA, &gotA}} {
			for len(r.dev.in) > 0 {
				p := <-r.dev.in
				*r.got = append(*r.got, int(p[4])<<8|int(p[5]))
			}
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for (len(gotB) < total-len(wantLost) || len(gotA) < total) && time.Now().Before(deadline) {
		select {
		case p := <-hostB.in:
			gotB = append(gotB, int(p[4])<<8|int(p[5]))
		case p := <-hostA.in:
			gotA = append(gotA, int(p[4])<<8|int(p[5]))
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Relay: %v", err)
	}
	var lost []int
	for i := range total {
		if !slices.Contains(gotB, i) {
			lost = append(lost, i)
		}
	}
	if !slices.Equal(lost, wantLost) {
		t.Errorf("a→b lost %v, want the seeded stream's %v", lost, wantLost)
	}
	if int(counts.AToB.Lost.Load()) != len(wantLost) || int(counts.AToB.Passed.Load()) != total-len(wantLost) {
		t.Errorf("a→b counts lost %d passed %d, want %d and %d", counts.AToB.Lost.Load(), counts.AToB.Passed.Load(), len(wantLost), total-len(wantLost))
	}
	if len(gotA) != total || counts.BToA.Lost.Load() != 0 {
		t.Errorf("b→a (unimpaired) delivered %d of %d, lost %d", len(gotA), total, counts.BToA.Lost.Load())
	}
	if counts.NotTCP != [2]uint64{1, 0} {
		t.Errorf("not TCP: %v, want [1 0]", counts.NotTCP)
	}
}
