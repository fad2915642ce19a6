package logrecord

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// wantEncoding is what proto.Marshal makes of rec.
func wantEncoding(t *testing.T, rec *pb.LogRecord) []byte {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func checkEncoding(t *testing.T, name string, rec *pb.LogRecord) {
	t.Helper()
	got, err := Append([]byte("prefix"), rec)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if want := wantEncoding(t, rec); !bytes.Equal(got[len("prefix"):], want) || string(got[:len("prefix")]) != "prefix" {
		t.Errorf("%s: Append\n got  %x\n want %x (proto.Marshal)", name, got, want)
	}
	if trusted, err := AppendTrusted([]byte("prefix"), rec); err != nil || !bytes.Equal(trusted, got) {
		t.Errorf("%s: AppendTrusted\n got  %x, %v\n want %x (Append)", name, trusted, err, got)
	}
	// One Encoder for every record a test encodes, so that its copies of
	// the last time and event are used and replaced all along.
	for _, f := range []func([]byte, *pb.LogRecord) ([]byte, error){testEncoder.Append, testEncoder.AppendTrusted} {
		if enc, err := f([]byte("prefix"), rec); err != nil || !bytes.Equal(enc, got) {
			t.Errorf("%s: Encoder\n got  %x, %v\n want %x (Append)", name, enc, err, got)
		}
	}
}

var testEncoder Encoder

func segRecord(index uint64, t *durationpb.Duration, pkt []byte) *pb.LogRecord {
	return &pb.LogRecord{Index: index, Time: t, Body: &pb.LogRecord_Input{Input: &pb.Input{Kind: &pb.Input_Segment{Segment: &pb.SegmentInput{IpPacket: pkt}}}}}
}

func outRecord(index uint64, t *durationpb.Duration, d *pb.OutputDigest) *pb.LogRecord {
	return &pb.LogRecord{Index: index, Time: t, Body: &pb.LogRecord_Output{Output: d}}
}

// TestRecordEncodingIsProtoMarshal: the hand encoding of segment inputs and
// output digests is byte for byte proto.Marshal's, for zero, small, large
// and negative values of every field; every other record is proto.Marshal's
// own.
func TestRecordEncodingIsProtoMarshal(t *testing.T) {
	big := durationpb.New(math.MaxInt64)
	neg := &durationpb.Duration{Seconds: -5, Nanos: -7}
	long := bytes.Repeat([]byte{0xab}, 300) // a two-byte length
	cases := []struct {
		name string
		rec  *pb.LogRecord
	}{
		{"segment input", segRecord(7, durationpb.New(1500e6), packet(1))},
		{"segment input at index 0 and time 0", segRecord(0, durationpb.New(0), packet(2))},
		{"segment input without a time", segRecord(3, nil, packet(3))},
		{"empty segment input", segRecord(3, durationpb.New(1), nil)},
		{"long packet, huge clock", segRecord(1<<40, big, long)},
		{"packet with a three-byte length", segRecord(9, durationpb.New(1), bytes.Repeat([]byte{0xcd}, 20000))},
		{"negative duration", segRecord(1, neg, []byte{1})},
		{"segment input message unset", &pb.LogRecord{Index: 1, Body: &pb.LogRecord_Input{Input: &pb.Input{Kind: &pb.Input_Segment{}}}}},
		{"empty digest", outRecord(8, durationpb.New(0), &pb.OutputDigest{})},
		{"digest with packets", outRecord(8, durationpb.New(2), &pb.OutputDigest{InputIndex: 7, Packets: [][]byte{packet(4), {}, long}})},
		{"digest with everything", outRecord(200, durationpb.New(61e9+5), &pb.OutputDigest{
			InputIndex: 199,
			Packets:    [][]byte{packet(5)},
			Transitions: []*pb.Transition{
				{Endpoint: "sessions/a/endpoints/2", FromState: pb.State_STATE_LISTEN, ToState: pb.State_STATE_SYN_RECEIVED, FromStateName: "LISTEN", ToStateName: "SYN-RECEIVED", Cause: "LISTEN_SYN_ACCEPTED", Time: durationpb.New(0)},
				{},
				{Endpoint: "é", Time: big},
			},
			Events: []*pb.Event{{Endpoint: "sessions/a/endpoints/1", Kind: pb.EventKind_EVENT_KIND_ACCEPT_READY}, {}, {Kind: pb.EventKind(-3)}},
			Result: &pb.CallResult{Count: 1 << 31, Data: long, Eof: true, EndpointId: "web", ErrorCode: -1, ErrorMessage: "connection closing"},
		})},
		{"digest with a three-byte result", outRecord(3, durationpb.New(1), &pb.OutputDigest{InputIndex: 2,
			Result: &pb.CallResult{Count: 70000, Data: bytes.Repeat([]byte{0xcd}, 70000)}})},
		{"digest with an empty result", outRecord(2, nil, &pb.OutputDigest{InputIndex: 1, Result: &pb.CallResult{}})},
		{"digest unset", &pb.LogRecord{Index: 2, Body: &pb.LogRecord_Output{}}},
		{"start record (proto.Marshal)", &pb.LogRecord{Body: &pb.LogRecord_Start{Start: &pb.SessionStart{Name: "sessions/x", MaxEndpoints: 3}}}},
		{"other input (proto.Marshal)", &pb.LogRecord{Index: 5, Time: durationpb.New(1), Body: &pb.LogRecord_Input{Input: &pb.Input{Kind: &pb.Input_AdvanceClock{AdvanceClock: &pb.AdvanceClockInput{To: durationpb.New(3e9)}}}}}},
		{"digest with one event", outRecord(1, nil, &pb.OutputDigest{Events: []*pb.Event{{Endpoint: "ok"}}})},
	}
	for _, tc := range cases {
		checkEncoding(t, tc.name, tc.rec)
	}
	// proto.Marshal refuses invalid UTF-8 in a string; so does Append.
	bad := outRecord(1, nil, &pb.OutputDigest{Events: []*pb.Event{{Endpoint: "\xff"}}})
	if _, err := Append(nil, bad); err == nil {
		t.Errorf("Append accepted invalid UTF-8")
	}
	// AppendTrusted still checks the result's strings, which are not names.
	badResult := outRecord(1, nil, &pb.OutputDigest{Result: &pb.CallResult{ErrorMessage: "\xff"}})
	if _, err := AppendTrusted(nil, badResult); err == nil {
		t.Errorf("AppendTrusted accepted invalid UTF-8 in a result")
	}

	// Random digests and inputs.
	r := rand.New(rand.NewPCG(1, 2))
	longText := strings.Repeat("é", 150)
	str := func() string {
		return []string{"", "x", "sessions/s-abc/endpoints/12", "FIN-WAIT-2", longText}[r.IntN(5)]
	}
	// Times repeat, as a batch's do, or change in one field only.
	last := &durationpb.Duration{Seconds: 3, Nanos: 5}
	dur := func() *durationpb.Duration {
		switch r.IntN(6) {
		case 0:
			return nil
		case 1, 2:
			return &durationpb.Duration{Seconds: last.Seconds, Nanos: last.Nanos}
		case 3:
			return &durationpb.Duration{Seconds: last.Seconds + 1, Nanos: last.Nanos}
		case 4:
			return &durationpb.Duration{Seconds: last.Seconds, Nanos: r.Int32N(1e9)}
		}
		last = &durationpb.Duration{Seconds: r.Int64N(1 << r.IntN(62)), Nanos: r.Int32N(1e9)}
		return last
	}
	for i := range 2000 {
		if r.IntN(2) == 0 {
			checkEncoding(t, "random input", segRecord(r.Uint64()>>r.IntN(64), dur(), long[:r.IntN(len(long))]))
			continue
		}
		d := &pb.OutputDigest{InputIndex: r.Uint64() >> r.IntN(64)}
		for range r.IntN(3) {
			d.Packets = append(d.Packets, long[:r.IntN(len(long))])
		}
		for range r.IntN(3) {
			d.Transitions = append(d.Transitions, &pb.Transition{Endpoint: str(), FromState: pb.State(r.IntN(12)), ToState: pb.State(r.IntN(12)),
				FromStateName: str(), ToStateName: str(), Cause: str(), Time: dur()})
		}
		for range r.IntN(3) {
			d.Events = append(d.Events, &pb.Event{Endpoint: str(), Kind: pb.EventKind(r.IntN(8))})
		}
		if r.IntN(2) == 0 {
			d.Result = &pb.CallResult{Count: r.Uint32() >> r.IntN(32), Data: long[:r.IntN(3)*100], Eof: r.IntN(2) == 0,
				EndpointId: str(), ErrorCode: r.Int32N(20) - 5, ErrorMessage: str()}
		}
		checkEncoding(t, "random digest", outRecord(uint64(i), dur(), d))
	}
}

func BenchmarkAppendRecord(b *testing.B) {
	in := segRecord(7, durationpb.New(1500e6), packet(1))
	out := outRecord(8, durationpb.New(1500e6), &pb.OutputDigest{InputIndex: 7, Packets: [][]byte{packet(2)},
		Events: []*pb.Event{{Endpoint: "sessions/a/endpoints/2", Kind: pb.EventKind_EVENT_KIND_DATA_READABLE}}})
	for _, rec := range []struct {
		name string
		rec  *pb.LogRecord
	}{{"input", in}, {"output", out}} {
		var buf []byte
		b.Run(rec.name+"/Append", func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				buf, _ = Append(buf[:0], rec.rec)
			}
		})
		b.Run(rec.name+"/Encoder", func(b *testing.B) {
			b.ReportAllocs()
			var c Encoder
			for range b.N {
				buf, _ = c.Append(buf[:0], rec.rec)
			}
		})
		b.Run(rec.name+"/proto.Marshal", func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				buf, _ = proto.MarshalOptions{}.MarshalAppend(buf[:0], rec.rec)
			}
		})
	}
}

// packet stands for an IP packet: the codec copies the bytes and never
// looks inside.
func packet(i int) []byte { return bytes.Repeat([]byte{byte(i), 0x45}, 20) }
