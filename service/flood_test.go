package service

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/tcpstated/tcpstated/fsm"
	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// The rule, through the service (the engine-level test in fsm sends a
// million): a SYN flood from random addresses at a listener with a
// backlog of 128, sent in bulk over ExchangeSegments, leaves the server's
// memory bounded by the SYN queue and the outbound queue; the listener's
// counters (Endpoint.listener_stats) say what happened to every SYN; with
// SYN cookies a legitimate client completes its handshake during the flood.
// Every SYN is still logged: the log is bounded by MaxLogBytes.
func TestSYNFloodThroughTheService(t *testing.T) {
	const syns, batch, backlog = 20000, 1000, 128
	for _, cookies := range []bool{false, true} {
		t.Run(map[bool]string{false: "no cookies", true: "SYN cookies"}[cookies], func(t *testing.T) {
			e := newMemEnv(t, Config{})
			opts := fixedISNOptions(1000)
			opts.SynBacklog, opts.SynCookies = backlog, proto.Bool(cookies)
			s := e.createSession("flood", opts).Name
			l := e.listen(s, "10.0.0.1:80")
			st := must[pb.SegmentService_ExchangeSegmentsClient](t)(e.segments.ExchangeSegments(ctx(t)))
			rng := rand.New(rand.NewPCG(3, 4))
			dst := netip.MustParseAddr("10.0.0.1")
			var half int64
			base := liveHeap()
			for b := range syns / batch {
				req := &pb.ExchangeSegmentsRequest{Parent: s, RawOnly: true}
				for range batch {
					a := rng.Uint32()
					seg := fsm.Segment{SrcPort: uint16(1024 + rng.IntN(60000)), DstPort: 80, Seq: fsm.Seq(rng.Uint32()), Flags: fsm.FlagSYN, Window: 65535}
					req.IpPackets = append(req.IpPackets, fsm.AppendPacket(nil, netip.AddrFrom4([4]byte{172, 16 | byte(a>>20)&15, byte(a >> 8), byte(a)}), dst, &seg))
				}
				if err := st.Send(req); err != nil {
					t.Fatal(err)
				}
				resp, err := st.Recv()
				if err != nil || resp.Processed != batch || resp.Error != "" {
					t.Fatalf("batch %d: %v %v", b, resp, err)
				}
				if b == syns/batch/2 {
					half = liveHeap()
				}
			}
			st.CloseSend()

			// A legitimate client during the flood.
			r := e.submit(s, seg("10.9.9.9:5555", "10.0.0.1:80", 7000, 0, []string{"SYN"}, ""))
			established := false
			if len(r.Outputs.Segments) == 1 {
				cookie := r.Outputs.Segments[0].Seq
				r = e.submit(s, seg("10.9.9.9:5555", "10.0.0.1:80", 7001, cookie+1, []string{"ACK"}, ""))
				for _, tr := range r.Outputs.Transitions {
					established = established || tr.ToStateName == "ESTABLISHED"
				}
			}
			after := liveHeap()
			lv := e.endpoint(l.Name)
			ls := lv.ListenerStats
			sv := must[*pb.GetSessionResponse](t)(e.sessions.GetSession(ctx(t), &pb.GetSessionRequest{Name: s})).Session
			t.Logf("%d SYNs: heap %+d KiB at half, %+d KiB at the end; listener %v; outbound queue %d, dropped %d; log %d records",
				syns, (half-base)>>10, (after-base)>>10, ls, sv.OutboundQueueLength, sv.OutboundDropped, sv.RecordCount)
			if grow := after - half; grow > 2<<20 {
				t.Errorf("the heap grew by %d KiB over the second half of the flood", grow>>10)
			}
			if sv.OutboundQueueLength > uint32(DefaultMaxOutboundQueue) {
				t.Errorf("outbound queue %d", sv.OutboundQueueLength)
			}
			if cookies {
				if ls.SynCookiesSent != syns-backlog+1 || ls.SynQueueDrops != 0 || ls.SynCookiesAccepted != 1 || !established {
					t.Errorf("listener stats %v, established %v; want %d cookies sent and the legitimate client accepted", ls, established, syns-backlog+1)
				}
			} else if ls.SynQueueDrops != syns-backlog+1 || ls.SynCookiesSent != 0 || established {
				t.Errorf("listener stats %v, established %v; want %d drops, the legitimate SYN among them", ls, established, syns-backlog+1)
			}
			if v := e.verify(s); !v.Identical {
				t.Errorf("re-run after the flood: %v", v)
			}
		})
	}
}
