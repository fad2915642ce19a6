package service

import (
	"unicode/utf8"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	protov2 "google.golang.org/protobuf/proto"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// codec is gRPC's proto codec with one fast path, for the bulk call's
// requests: an ExchangeSegmentsRequest's packets are decoded as views of
// one copy of the message, where proto.Unmarshal allocates and copies
// every element of a repeated bytes field (64 allocations per message of
// the benchmark's load, 9 % of the server's CPU). Everything else, and any
// request the fast decoder does not take whole, goes to the proto codec,
// which then gives the same message or the same error.
type codec struct{ base encoding.CodecV2 }

func newCodec() codec { return codec{base: encoding.GetCodecV2(proto.Name)} }

func (c codec) Name() string { return c.base.Name() }

func (c codec) Marshal(v any) (mem.BufferSlice, error) { return c.base.Marshal(v) }

func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(*pb.ExchangeSegmentsRequest)
	if !ok {
		return c.base.Unmarshal(data, v)
	}
	// Materialize copies the message into memory of its own, which the
	// packets may then alias for as long as anyone holds them (gRPC
	// frees data when this returns).
	b := data.Materialize()
	if decodeExchangeRequest(b, m) {
		return nil
	}
	return protov2.Unmarshal(b, m)
}

// Field numbers of ExchangeSegmentsRequest (segment_service.proto).
const (
	fieldParent    = 1
	fieldIPPackets = 2
	fieldRawOnly   = 3
	fieldSequence  = 4
)

// decodeExchangeRequest decodes b into m with ip_packets aliasing b, and
// reports whether it could: it refuses (false, m to be discarded) anything
// but the four fields with their own wire types, and a parent that is not
// UTF-8, which proto.Unmarshal rejects or keeps as unknown fields. A field
// given twice keeps its last value and packets are appended, as
// proto.Unmarshal does.
func decodeExchangeRequest(b []byte, m *pb.ExchangeSegmentsRequest) bool {
	m.Reset()
	var pkts [][]byte
	for len(b) > 0 {
		field := b
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		switch {
		case num == fieldParent && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 || !utf8.Valid(v) {
				return false
			}
			m.Parent, b = string(v), b[n:]
		case num == fieldIPPackets && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return false
			}
			if pkts == nil {
				pkts = make([][]byte, 0, countField(field, fieldIPPackets))
			}
			// A full slice expression: appending to one packet must not
			// write over the next.
			pkts, b = append(pkts, v[:len(v):len(v)]), b[n:]
		case num == fieldRawOnly && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return false
			}
			m.RawOnly, b = protowire.DecodeBool(v), b[n:]
		case num == fieldSequence && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return false
			}
			m.Sequence, b = v, b[n:]
		default:
			return false
		}
	}
	m.IpPackets = pkts
	return true
}

// countField counts the fields numbered num at the top level of b, up to
// the first field it cannot skip: the packets, to size their slice once.
func countField(b []byte, num protowire.Number) int {
	k := 0
	for len(b) > 0 {
		n, typ, tn := protowire.ConsumeTag(b)
		if tn < 0 {
			break
		}
		fn := protowire.ConsumeFieldValue(n, typ, b[tn:])
		if fn < 0 {
			break
		}
		if n == num {
			k++
		}
		b = b[tn+fn:]
	}
	return k
}
