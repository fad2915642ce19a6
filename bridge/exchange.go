// The packet path: device → netem → ExchangeSegments batches, and
// WatchSegments → netem-out → device.

package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// bridge moves packets between the device and the session: readLoop,
// exchangeLoop and watchLoop run at once, and stats counts what they did
// (the stats line).
type bridge struct {
	out      *lineWriter
	wire     *wire
	dev      Device
	seg      pb.SegmentServiceClient
	parent   string
	log      *slog.Logger
	wake     *notifier
	in       chan []byte // packets from the device, after netem
	netemIn  *netem
	netemOut *netem
	stats    struct {
		packetsIn, packetsOut, notTCP, exchanges, refused, writeErrors, watchRestarts atomic.Uint64
		netemIn, netemOut                                                             NetemCounts
	}
}

// readLoop reads packets from the device; TCP ones go on (through netem)
// to the session, others (IPv6 neighbour discovery, ICMP, ...) are counted
// and dropped.
func (b *bridge) readLoop(ctx context.Context) error {
	buf := make([]byte, 65536)
	for {
		n, err := b.dev.ReadPacket(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, os.ErrClosed) {
				return nil
			}
			return fmt.Errorf("reading the device: %w", err)
		}
		if !isTCP(buf[:n]) {
			b.stats.notTCP.Add(1)
			continue
		}
		b.stats.packetsIn.Add(1)
		p := make([]byte, n)
		copy(p, buf[:n])
		if ctx.Err() != nil {
			return nil
		}
		b.netemIn.send(p)
	}
}

// isTCP reports whether p is an unfragmented IPv4 packet or an IPv6 packet
// (without extension headers) carrying TCP.
func isTCP(p []byte) bool {
	if len(p) < 20 {
		return false
	}
	switch p[0] >> 4 {
	case 4:
		fragment := (uint16(p[6])<<8|uint16(p[7]))&0x3fff != 0 // MF or an offset
		return p[9] == 6 && !fragment
	case 6:
		return len(p) >= 40 && p[6] == 6
	}
	return false
}

// Batches stay well under the server's request limits, and under the
// 256 batches (one per packet) a watch may fall behind.
const (
	maxBatchPackets = 192
	maxBatchBytes   = 1 << 20
)

// exchangeLoop submits packets in batches on one ExchangeSegments stream:
// one request in flight; packets arriving meanwhile make the next batch.
// The responses' events wake the application; their segments reach the
// device through the watch, which the loop lets catch up first.
func (b *bridge) exchangeLoop(ctx context.Context) error {
	stream, err := b.seg.ExchangeSegments(ctx)
	if err != nil {
		return err
	}
	var seq uint64
	batch := make([][]byte, 0, maxBatchPackets)
	for {
		batch = batch[:0]
		select {
		case p := <-b.in:
			batch = append(batch, p)
		case <-ctx.Done():
			return nil
		}
		size := len(batch[0])
	fill:
		for len(batch) < maxBatchPackets && size < maxBatchBytes {
			select {
			case p := <-b.in:
				batch = append(batch, p)
				size += len(p)
			default:
				break fill
			}
		}
		for pkts := batch; len(pkts) > 0; {
			seq++
			err := stream.Send(&pb.ExchangeSegmentsRequest{Parent: b.parent, IpPackets: pkts, RawOnly: true, Sequence: seq})
			var resp *pb.ExchangeSegmentsResponse
			if err == nil || err == io.EOF {
				resp, err = stream.Recv() // after a failed Send, Recv has the reason
			}
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("ExchangeSegments: %w", err)
			}
			b.stats.exchanges.Add(1)
			b.out.transitions(resp.GetOutputs())
			b.wire.settle(ctx, resp.GetOutputs(), settleTimeout)
			if len(resp.GetOutputs().GetEvents()) > 0 || len(resp.GetOutputs().GetTransitions()) > 0 || resp.Processed > 0 {
				b.wake.notify()
			}
			if resp.Error == "" {
				break
			}
			// A packet the engine could not parse: skip it, submit the rest.
			b.stats.refused.Add(1)
			b.log.Warn("a packet from the device was refused", "err", resp.Error)
			pkts = pkts[min(int(resp.Processed)+1, len(pkts)):]
		}
	}
}

// watchLoop writes every segment the session emits to the device, in
// order. A watch dropped for falling behind is opened again (the server
// keeps the newest segments meanwhile in the outbound queue, which a new
// watch drains first).
func (b *bridge) watchLoop(ctx context.Context) error {
	for {
		stream, err := b.seg.WatchSegments(ctx, &pb.WatchSegmentsRequest{Parent: b.parent})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("WatchSegments: %w", err)
		}
		for {
			resp, err := stream.Recv()
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				if status.Code(err) == codes.ResourceExhausted {
					if b.stats.watchRestarts.Add(1) == 1 {
						b.log.Warn("the segment watch fell behind; watching again", "err", err)
					}
					b.wire.watchLost()
					break
				}
				if err == io.EOF {
					return errors.New("WatchSegments: the session was deleted")
				}
				return fmt.Errorf("WatchSegments: %w", err)
			}
			for _, s := range resp.Segments {
				b.wire.watched(s.Raw)
			}
		}
	}
}

func (b *bridge) write(p []byte) {
	b.stats.packetsOut.Add(1)
	if err := b.dev.WritePacket(p); err != nil {
		if b.stats.writeErrors.Add(1) == 1 {
			b.log.Warn("writing to the device", "err", err)
		}
	}
}
