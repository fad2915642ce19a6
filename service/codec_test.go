package service

import (
	"bytes"
	"testing"
	"unsafe"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// exchangeSeeds are request bodies the fast decoder takes and bodies it
// leaves to proto.Unmarshal: the fuzz target's seeds and the table's.
func exchangeSeeds() map[string]struct {
	body []byte
	fast bool
} {
	marshal := func(m *pb.ExchangeSegmentsRequest) []byte {
		b, err := proto.Marshal(m)
		if err != nil {
			panic(err)
		}
		return b
	}
	full := marshal(&pb.ExchangeSegmentsRequest{Parent: "sessions/x", IpPackets: [][]byte{[]byte("E\x00abc"), {}, []byte("second")}, RawOnly: true, Sequence: 300})
	var pkts [][]byte
	for i := range 64 {
		p := make([]byte, 104) // an IPv4 header, a TCP header with timestamps, 64 bytes
		p[0], p[3], p[103] = 0x45, 104, byte(i)
		pkts = append(pkts, p)
	}
	many := marshal(&pb.ExchangeSegmentsRequest{Parent: "sessions/x", IpPackets: pkts, Sequence: 1})
	tag := func(b []byte, num protowire.Number, typ protowire.Type) []byte {
		return protowire.AppendTag(b, num, typ)
	}
	str := func(b []byte, num protowire.Number, s string) []byte {
		return protowire.AppendString(tag(b, num, protowire.BytesType), s)
	}
	return map[string]struct {
		body []byte
		fast bool
	}{
		"empty":                   {nil, true},
		"all fields":              {full, true},
		"64 packets":              {many, true},
		"fields out of order":     {str(protowire.AppendVarint(tag(str(nil, fieldIPPackets, "p1"), fieldSequence, protowire.VarintType), 7), fieldParent, "sessions/y"), true},
		"parent twice, last kept": {str(str(nil, fieldParent, "sessions/a"), fieldParent, "sessions/b"), true},
		"packets apart":           {str(str(str(nil, fieldIPPackets, "one"), fieldParent, "sessions/z"), fieldIPPackets, "two"), true},
		"raw_only 2 is true":      {protowire.AppendVarint(tag(nil, fieldRawOnly, protowire.VarintType), 2), true},
		"unknown field":           {str(full, 9, "later version"), false},
		"packet as varint":        {protowire.AppendVarint(tag(nil, fieldIPPackets, protowire.VarintType), 1), false},
		"parent not UTF-8":        {str(nil, fieldParent, "\xff\xfe"), false},
		"truncated packet":        {str(nil, fieldIPPackets, "abcdef")[:5], false},
		"bad tag":                 {[]byte{0x80}, false},
		"field number 0":          {[]byte{0x02, 0x00}, false},
	}
}

func TestDecodeExchangeRequest(t *testing.T) {
	for name, c := range exchangeSeeds() {
		t.Run(name, func(t *testing.T) {
			body := bytes.Clone(c.body)
			var got pb.ExchangeSegmentsRequest
			got.Sequence = 99 // a reused message: nothing of it may survive
			fast := decodeExchangeRequest(body, &got)
			if fast != c.fast {
				t.Fatalf("fast path taken = %v, want %v", fast, c.fast)
			}
			if !fast {
				return
			}
			sameAsProto(t, body, &got)
			if cap(got.IpPackets) != len(got.IpPackets) {
				t.Errorf("%d packets in a slice of capacity %d: it was not sized once", len(got.IpPackets), cap(got.IpPackets))
			}
			for i, p := range got.IpPackets {
				if len(p) > 0 && !within(body, p) {
					t.Errorf("ip_packets[%d] is a copy, not a view of the message", i)
				}
				if cap(p) != len(p) {
					t.Errorf("ip_packets[%d]: capacity %d past its length %d lets an append overwrite the next field", i, cap(p), len(p))
				}
			}
		})
	}
}

// within reports whether p lies inside b's memory.
func within(b, p []byte) bool {
	lo, hi := uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(unsafe.Pointer(unsafe.SliceData(b)))+uintptr(len(b))
	q := uintptr(unsafe.Pointer(unsafe.SliceData(p)))
	return lo <= q && q+uintptr(len(p)) <= hi
}

// TestCodecUnmarshal: through the codec gRPC calls, the fast path and the
// fallback give what proto.Unmarshal gives, and other messages are left
// to the proto codec. The buffer gRPC hands over is freed on return, so
// the decoded packets must not alias it.
func TestCodecUnmarshal(t *testing.T) {
	c := newCodec()
	for name, s := range exchangeSeeds() {
		t.Run(name, func(t *testing.T) {
			buf := mem.Copy(s.body, mem.DefaultBufferPool())
			var got pb.ExchangeSegmentsRequest
			err := c.Unmarshal(mem.BufferSlice{buf}, &got)
			var want pb.ExchangeSegmentsRequest
			werr := proto.Unmarshal(s.body, &want)
			if (err == nil) != (werr == nil) {
				t.Fatalf("Unmarshal error %v, proto.Unmarshal's %v", err, werr)
			}
			if err == nil && !proto.Equal(&got, &want) {
				t.Fatalf("decoded %v, proto.Unmarshal gives %v", &got, &want)
			}
			for i, p := range got.IpPackets {
				if len(p) > 0 && within(buf.ReadOnlyData(), p) {
					t.Errorf("ip_packets[%d] aliases gRPC's buffer, which is freed on return", i)
				}
			}
		})
	}
	sub := &pb.SubmitSegmentRequest{Parent: "sessions/x", Segment: &pb.SubmitSegmentRequest_IpPacket{IpPacket: []byte("E")}}
	b, _ := proto.Marshal(sub)
	var got pb.SubmitSegmentRequest
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &got); err != nil || !proto.Equal(&got, sub) {
		t.Fatalf("SubmitSegmentRequest: %v, %v", &got, err)
	}
	if c.Name() != "proto" {
		t.Fatalf("codec name %q: clients' content-type is application/grpc+proto", c.Name())
	}
}

// FuzzExchangeRequestDecode: wherever the fast decoder takes a body,
// proto.Unmarshal takes it too and gives the same message.
func FuzzExchangeRequestDecode(f *testing.F) {
	for _, s := range exchangeSeeds() {
		f.Add(s.body)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var got pb.ExchangeSegmentsRequest
		if !decodeExchangeRequest(body, &got) {
			return
		}
		sameAsProto(t, body, &got)
	})
}

// sameAsProto fails t unless proto.Unmarshal takes body and gives got.
func sameAsProto(t *testing.T, body []byte, got *pb.ExchangeSegmentsRequest) {
	t.Helper()
	var want pb.ExchangeSegmentsRequest
	if err := proto.Unmarshal(body, &want); err != nil {
		t.Fatalf("the fast path took a body proto.Unmarshal refuses: %v", err)
	}
	if !proto.Equal(got, &want) {
		t.Fatalf("decoded %v, proto.Unmarshal gives %v", got, &want)
	}
}
