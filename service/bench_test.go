package service

import (
	"context"
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/tcpstated/tcpstated/fsm"
	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"

	"github.com/tcpstated/tcpstated/store"

	"github.com/tcpstated/tcpstated/store/filestore"
)

// closedPortPacket is a segment to a port nobody listens on: the engine
// answers each with a RST, so the benchmarks exercise the whole path
// (parse, engine, digest, two log records, response) without growing state.
func closedPortPacket(i int) []byte {
	s := &fsm.Segment{SrcPort: uint16(1024 + i%60000), DstPort: 9, Seq: fsm.Seq(i), Ack: 1, Flags: fsm.FlagACK, Window: 65535, Payload: []byte("0123456789abcdef")}
	return fsm.AppendPacket(nil, netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.1"), s)
}

func benchEnv(b *testing.B, fsync store.FsyncMode) *env {
	t := &testing.T{}
	e := &env{t: t, dir: b.TempDir(), cfg: Config{Fsync: fsync, Logger: quietLogger()}}
	e.cfg.DataDir = e.dir
	e.start()
	b.Cleanup(e.stop)
	return e
}

func BenchmarkSubmitSegment(b *testing.B) {
	for _, mode := range []store.FsyncMode{store.FsyncNever, store.FsyncAlways} {
		b.Run("fsync="+mode.String(), func(b *testing.B) {
			e := benchEnv(b, mode)
			const sessions = 8
			for i := range sessions {
				e.createSession(fmt.Sprintf("b%d", i), nil)
			}
			pkt := closedPortPacket(1)
			var n atomic.Int64
			b.SetParallelism(32)
			b.ResetTimer()
			b.RunParallel(func(p *testing.PB) {
				name := fmt.Sprintf("sessions/b%d", n.Add(1)%sessions)
				req := &pb.SubmitSegmentRequest{Parent: name, Segment: &pb.SubmitSegmentRequest_IpPacket{IpPacket: pkt}}
				for p.Next() {
					if _, err := e.segments.SubmitSegment(b.Context(), req); err != nil {
						b.Error(err)
						return
					}
				}
			})
			if fs, ok := e.svc.store.(*filestore.FileStore); ok {
				st := fs.Stats()
				b.ReportMetric(float64(st.Rounds)/b.Elapsed().Seconds(), "rounds/s")
				b.ReportMetric(float64(st.Syncfs), "syncfs")
				b.ReportMetric(float64(st.Fdatasyncs), "fdatasyncs")
			}
		})
	}
}

func BenchmarkExchange64(b *testing.B) {
	for _, rawOnly := range []bool{true, false} {
		b.Run(fmt.Sprintf("raw_only=%t", rawOnly), func(b *testing.B) {
			e := benchEnv(b, store.FsyncNever)
			e.createSession("x", nil)
			pkts := make([][]byte, 64)
			for i := range pkts {
				pkts[i] = closedPortPacket(i)
			}
			st, err := e.segments.ExchangeSegments(b.Context())
			if err != nil {
				b.Fatal(err)
			}
			req := &pb.ExchangeSegmentsRequest{Parent: "sessions/x", IpPackets: pkts, RawOnly: rawOnly}
			b.ResetTimer()
			for range b.N {
				if err := st.Send(req); err != nil {
					b.Fatal(err)
				}
				if _, err := st.Recv(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*64)/b.Elapsed().Seconds(), "segments/s")
		})
	}
}

// BenchmarkStep measures the service's own work per packet, without gRPC.
func BenchmarkStep(b *testing.B) {
	e := benchEnv(b, store.FsyncNever)
	e.createSession("s", nil)
	ss, _ := e.svc.lookup(context.Background(), "s")
	pkt := closedPortPacket(1)
	out := &pb.Outputs{}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		ss.mu.Lock()
		if _, err := ss.stepLocked(segmentInput(pkt), out, true); err != nil {
			b.Fatal(err)
		}
		ss.mu.Unlock()
		out.Reset()
	}
}
