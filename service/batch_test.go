package service

import (
	"bytes"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/tcpstated/tcpstated/fsm"
	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"

	"github.com/tcpstated/tcpstated/store"

	"github.com/tcpstated/tcpstated/store/filestore"
)

// logPayloads reads every record payload of the log file of session id
// (the service must be stopped).
func logPayloads(t *testing.T, dir, id string) [][]byte {
	t.Helper()
	st, err := filestore.Open(dir, filestore.Options{Fsync: store.FsyncNever, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	l, rep, err := st.Open(logName("", id))
	if err != nil || rep.Truncated {
		t.Fatalf("open %s: %+v %v", id, rep, err)
	}
	defer l.Close()
	return records(t, l)
}

// records reads every record payload of l.
func records(t *testing.T, l store.Log) [][]byte {
	t.Helper()
	var out [][]byte
	if err := l.Records(0, func(_ uint64, p []byte) error {
		out = append(out, bytes.Clone(p))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func storeStats(t *testing.T, e *env) filestore.Stats {
	t.Helper()
	fs, ok := e.svc.store.(*filestore.FileStore)
	if !ok {
		t.Skipf("the store is a %T, not a FileStore", e.svc.store)
	}
	return fs.Stats()
}

// TestExchangeMessageLogsAsUnaryCalls: a stream message writes all its
// records with one write, and the log holds the records the same packets
// sent as one SubmitSegment each give, byte for byte, up to a malformed
// packet, which stops the message and is not logged. Each unary call
// writes its input and output records with one write.
func TestExchangeMessageLogsAsUnaryCalls(t *testing.T) {
	pkts := [][]byte{packet(100, 0, fsm.FlagSYN, ""), packet(101, 1001, fsm.FlagACK, "")}
	for i := range 20 {
		pkts = append(pkts, packet(101+uint32(i)*10, 1001, fsm.FlagACK, "0123456789"))
	}
	malformed := len(pkts)
	pkts = append(pkts, []byte{0x45}, packet(301, 1001, fsm.FlagACK, "never"))

	// run sends pkts to a session "x" of a fresh server and returns its
	// log's records and its step counters (segments in, segments out,
	// inputs by kind).
	run := func(t *testing.T, streamed bool) ([][]byte, []float64) {
		e := newEnv(t, Config{Fsync: store.FsyncNever})
		o := fixedISNOptions(1000)
		o.SecretSeed = proto.String("batch test")
		s := e.createSession("x", o).Name
		e.listen(s, server)
		if streamed {
			before := storeStats(t, e)
			st := must[pb.SegmentService_ExchangeSegmentsClient](t)(e.segments.ExchangeSegments(ctx(t)))
			if err := st.Send(&pb.ExchangeSegmentsRequest{Parent: s, IpPackets: pkts, RawOnly: true}); err != nil {
				t.Fatal(err)
			}
			r := must[*pb.ExchangeSegmentsResponse](t)(st.Recv())
			if int(r.Processed) != malformed || r.Error == "" {
				t.Fatalf("processed %d, error %q: want %d and an error", r.Processed, r.Error, malformed)
			}
			st.CloseSend()
			after := storeStats(t, e)
			if w, a := after.Writes-before.Writes, after.Appends-before.Appends; w != 1 || a != uint64(2*malformed) {
				t.Fatalf("the message took %d writes for %d records; want 1 for %d", w, a, 2*malformed)
			}
		} else {
			for i, p := range pkts[:malformed] {
				before := storeStats(t, e)
				if _, err := e.segments.SubmitSegment(ctx(t), &pb.SubmitSegmentRequest{Parent: s, Segment: &pb.SubmitSegmentRequest_IpPacket{IpPacket: p}}); err != nil {
					t.Fatal(err)
				}
				after := storeStats(t, e)
				if w, a := after.Writes-before.Writes, after.Appends-before.Appends; w != 1 || a != 2 {
					t.Fatalf("packet %d: the call took %d writes for %d records; want 1 for 2", i, w, a)
				}
			}
		}
		m := e.svc.metrics
		counts := []float64{counterValue(t, m.segmentsIn), counterValue(t, m.segmentsOut)}
		for _, c := range m.byKind {
			counts = append(counts, counterValue(t, c))
		}
		e.stop()
		return logPayloads(t, e.dir, "x"), counts
	}
	got, gotCounts := run(t, true)
	want, wantCounts := run(t, false)
	if !slices.Equal(gotCounts, wantCounts) || gotCounts[0] != float64(malformed) {
		t.Errorf("counters streamed %v, by unary calls %v; want %d segments in", gotCounts, wantCounts, malformed)
	}
	if len(got) != len(want) || len(got) < 2*malformed {
		t.Fatalf("%d records streamed, %d by unary calls, want at least %d", len(got), len(want), 2*malformed)
	}
	// Record 0 (the start record) holds the creation time.
	for i := 1; i < len(got); i++ {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("record %d differs:\nstreamed %x\nunary    %x", i, got[i], want[i])
		}
	}
}

// TestExchangeWithWatcherLogsFirst: with a watcher open the outputs of a
// message's packets reach it, and the records are all there when the
// reply comes.
func TestExchangeWithWatcherLogsFirst(t *testing.T) {
	e := newEnv(t, Config{Fsync: store.FsyncNever})
	s := e.createSession("w", fixedISNOptions(1000)).Name
	e.listen(s, server)
	w := must[pb.SegmentService_WatchSegmentsClient](t)(e.segments.WatchSegments(ctx(t), &pb.WatchSegmentsRequest{Parent: s}))
	n := e.recordCount(s)
	st := must[pb.SegmentService_ExchangeSegmentsClient](t)(e.segments.ExchangeSegments(ctx(t)))
	pkts := [][]byte{packet(100, 0, fsm.FlagSYN, ""), packet(101, 1001, fsm.FlagACK, ""), packet(101, 1001, fsm.FlagACK, "hello")}
	if err := st.Send(&pb.ExchangeSegmentsRequest{Parent: s, IpPackets: pkts}); err != nil {
		t.Fatal(err)
	}
	r := must[*pb.ExchangeSegmentsResponse](t)(st.Recv())
	if r.Processed != 3 {
		t.Fatalf("processed %d", r.Processed)
	}
	if got := e.recordCount(s); got != n+6 {
		t.Fatalf("records %d after the reply, want %d", got, n+6)
	}
	if got := must[*pb.WatchSegmentsResponse](t)(w.Recv()); len(got.Segments) != 1 || !hasFlags(got.Segments[0], "SYN", "ACK") {
		t.Fatalf("watch: %v", got)
	}
}

// counterValue reads a counter.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestUnframedLogSameRecords: a log that does not take records framed
// where they are encoded (store.FramedLog; here the in-memory store) gets
// the payloads the file store's framed batches hold, byte for byte.
func TestUnframedLogSameRecords(t *testing.T) {
	pkts := [][]byte{packet(100, 0, fsm.FlagSYN, ""), packet(101, 1001, fsm.FlagACK, "")}
	for i := range 20 {
		pkts = append(pkts, packet(101+uint32(i)*10, 1001, fsm.FlagACK, "0123456789"))
	}
	run := func(e *env) {
		o := fixedISNOptions(1000)
		o.SecretSeed = proto.String("batch test")
		s := e.createSession("x", o).Name
		e.listen(s, server)
		st := must[pb.SegmentService_ExchangeSegmentsClient](t)(e.segments.ExchangeSegments(ctx(t)))
		for _, m := range [][][]byte{pkts[:2], pkts[2:]} {
			if err := st.Send(&pb.ExchangeSegmentsRequest{Parent: s, IpPackets: m, RawOnly: true}); err != nil {
				t.Fatal(err)
			}
			if r := must[*pb.ExchangeSegmentsResponse](t)(st.Recv()); int(r.Processed) != len(m) || r.Error != "" {
				t.Fatalf("processed %d of %d: %s", r.Processed, len(m), r.Error)
			}
		}
		st.CloseSend()
		e.stop()
	}
	file := newEnv(t, Config{Fsync: store.FsyncNever})
	run(file)
	want := logPayloads(t, file.dir, "x")

	mem := newMemEnv(t, Config{})
	run(mem)
	l, _, err := mem.mem.Reopen().Open(logName("", "x"))
	if err != nil {
		t.Fatal(err)
	}
	if _, framed := l.(store.FramedLog); framed {
		t.Fatal("the in-memory log takes framed records: this test no longer covers the other path")
	}
	got := records(t, l)
	if len(got) != len(want) || len(got) < 2*len(pkts) {
		t.Fatalf("%d records in memory, %d in the file, want at least %d", len(got), len(want), 2*len(pkts))
	}
	for i := 1; i < len(got); i++ { // record 0 holds the creation time
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("record %d differs:\nin memory %x\nin file   %x", i, got[i], want[i])
		}
	}
}
