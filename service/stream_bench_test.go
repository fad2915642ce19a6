package service

import (
	"net/netip"
	"testing"

	"github.com/tcpstated/tcpstated/fsm"
	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"

	"github.com/tcpstated/tcpstated/store"
)

// connPackets are the packets of `make bench`'s stream load for one
// connection from port: SYN, ACK, n data segments of 64 bytes, RST, to a
// session with fixed ISN 1000 listening on 10.0.0.1:80.
func connPackets(port uint16, n int) [][]byte {
	src, dst := netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.1")
	payload := make([]byte, 64)
	seq := fsm.Seq(100)
	segs := []fsm.Segment{{Seq: seq, Flags: fsm.FlagSYN}}
	seq++
	segs = append(segs, fsm.Segment{Seq: seq, Ack: 1001, Flags: fsm.FlagACK})
	for range n {
		segs = append(segs, fsm.Segment{Seq: seq, Ack: 1001, Flags: fsm.FlagACK | fsm.FlagPSH, Payload: payload})
		seq += 64
	}
	segs = append(segs, fsm.Segment{Seq: seq, Flags: fsm.FlagRST})
	pkts := make([][]byte, len(segs))
	for i := range segs {
		s := &segs[i]
		s.SrcPort, s.DstPort, s.Window = port, 80, 65535
		pkts[i] = fsm.AppendPacket(nil, src, dst, s)
	}
	return pkts
}

// BenchmarkExchangeConn is the stream load of `make bench` in process:
// messages of 64 packets of connections that each carry 500 data
// segments, one message in flight, fsync=never.
func BenchmarkExchangeConn(b *testing.B) {
	e := benchEnv(b, store.FsyncNever)
	e.createSession("x", fixedISNOptions(1000))
	e.listen("sessions/x", "10.0.0.1:80")
	var pkts [][]byte
	for port := uint16(1024); len(pkts) < 64*1024; port++ {
		pkts = append(pkts, connPackets(port, 500)...)
	}
	st, err := e.segments.ExchangeSegments(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	req := &pb.ExchangeSegmentsRequest{Parent: "sessions/x", RawOnly: true}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		off := (i * 64) % (len(pkts) - 64)
		req.IpPackets = pkts[off : off+64]
		req.Sequence = uint64(i)
		if err := st.Send(req); err != nil {
			b.Fatal(err)
		}
		r, err := st.Recv()
		if err != nil {
			b.Fatal(err)
		}
		if r.Processed != 64 || r.Error != "" {
			b.Fatalf("processed %d, %q", r.Processed, r.Error)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*64), "ns/segment")
}

// BenchmarkExecPackets is the service's own work for the messages of
// BenchmarkExchangeConn, without gRPC: the engine, the digests, the two
// log records per segment and their one write per message, the response.
func BenchmarkExecPackets(b *testing.B) {
	e := &env{t: &testing.T{}, dir: b.TempDir(), cfg: Config{Fsync: store.FsyncNever, Logger: quietLogger(),
		Limits: Limits{MaxLogBytes: 1 << 40}}} // b.N messages of 64 segments
	e.cfg.DataDir = e.dir
	e.start()
	b.Cleanup(e.stop)
	e.createSession("x", fixedISNOptions(1000))
	e.listen("sessions/x", "10.0.0.1:80")
	ss, err := e.svc.lookup(b.Context(), "x")
	if err != nil {
		b.Fatal(err)
	}
	var pkts [][]byte
	for port := uint16(1024); len(pkts) < 64*1024; port++ {
		pkts = append(pkts, connPackets(port, 500)...)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		off := (i * 64) % (len(pkts) - 64)
		out := &pb.Outputs{}
		if n, perr, err := ss.execPackets(pkts[off:off+64], out, true); n != 64 || perr != nil || err != nil {
			b.Fatalf("processed %d: %v, %v", n, perr, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*64), "ns/segment")
}
