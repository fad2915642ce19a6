// Relay: two devices joined through the same user-space impairment as
// `tcpstated tun`, so a kernel can be measured against itself over it.

package bridge

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
)

// RelayConfig is the impairment of each direction of a Relay, with the
// meaning Config gives NetemIn, NetemOut, NetemSeed and NetemLimit: each
// direction draws from its own generators seeded with Seed, so a Relay and
// a bridge given the same seed drop the same packet numbers.
type RelayConfig struct {
	AToB, BToA NetemSpec
	Seed       uint64
	Limit      int
}

// RelayCounts is what each direction's impairment did, and the packets
// that were not TCP (dropped, as the bridge drops them).
type RelayCounts struct {
	AToB, BToA NetemCounts
	NotTCP     [2]uint64 // from a, from b; read after Relay returns
}

// Relay forwards every TCP packet read from a to b through cfg.AToB and
// every one read from b to a through cfg.BToA, until ctx ends or a device
// fails. It closes both devices and returns nil at the end of ctx.
func Relay(ctx context.Context, a, b Device, cfg RelayConfig, counts *RelayCounts) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	var firstErr error
	write := func(d Device, what string) func([]byte) {
		return func(p []byte) {
			if err := d.WritePacket(p); err != nil && ctx.Err() == nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("writing %s: %w", what, err)
				}
				mu.Unlock()
				cancel()
			}
		}
	}
	ab := newNetem(cfg.AToB, cfg.Limit, cfg.Seed, write(b, "b"), &counts.AToB, nil)
	ba := newNetem(cfg.BToA, cfg.Limit, cfg.Seed, write(a, "a"), &counts.BToA, nil)
	var wg sync.WaitGroup
	pump := func(from Device, to *netem, notTCP *uint64, what string) {
		buf := make([]byte, 65536)
		for {
			n, err := from.ReadPacket(buf)
			if err != nil {
				if ctx.Err() == nil && !errors.Is(err, os.ErrClosed) {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("reading %s: %w", what, err)
					}
					mu.Unlock()
					cancel()
				}
				return
			}
			if !isTCP(buf[:n]) {
				*notTCP++
				continue
			}
			to.send(append([]byte(nil), buf[:n]...))
		}
	}
	wg.Go(func() { pump(a, ab, &counts.NotTCP[0], "a") })
	wg.Go(func() { pump(b, ba, &counts.NotTCP[1], "b") })
	<-ctx.Done()
	a.Close()
	b.Close()
	ab.stop()
	ba.stop()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	return firstErr
}
