// Package logrecord encodes the records of a session's replay log fast: the
// two every change writes (a segment input and an output digest) by hand
// with protowire, byte for byte as proto.Marshal encodes them, and every
// other record with proto.Marshal. The record bytes are the same whichever
// store keeps them.
package logrecord

import (
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// The two records every change writes, a segment input and an output
// digest, are encoded here by hand with protowire, byte for byte as
// proto.Marshal encodes them (codec_test.go checks it on every kind
// of value). proto.Marshal takes about 600 ns for each of these small
// records, because oneof members and well-known types take its slow paths;
// this takes a tenth of that, and the two records are most of the service's
// own cost per segment on the bulk path. Every other record goes through
// proto.Marshal. Field numbers are those of api/proto/tcpstate/v1/record.proto
// and outputs.proto.

// Field numbers.
const (
	fRecordIndex  = 1 // LogRecord.index
	fRecordTime   = 2 // LogRecord.time
	fRecordInput  = 4 // LogRecord.input
	fRecordOutput = 5 // LogRecord.output

	fInputSegment    = 1 // Input.segment
	fSegmentIPPacket = 1 // SegmentInput.ip_packet

	fDigestInputIndex  = 1 // OutputDigest.input_index
	fDigestPackets     = 2
	fDigestTransitions = 3
	fDigestEvents      = 4
	fDigestResult      = 5

	fTransitionEndpoint = 1
	fTransitionFrom     = 2
	fTransitionTo       = 3
	fTransitionFromName = 4
	fTransitionToName   = 5
	fTransitionCause    = 6
	fTransitionTime     = 7

	fEventEndpoint = 1
	fEventKind     = 2

	fResultCount        = 1
	fResultData         = 2
	fResultEOF          = 3
	fResultEndpointID   = 4
	fResultErrorCode    = 5
	fResultErrorMessage = 6

	fDurationSeconds = 1
	fDurationNanos   = 2
)

// Append appends the encoding of rec to b.
func Append(b []byte, rec *pb.LogRecord) ([]byte, error) {
	if fastRecord(rec) {
		return appendRecordFast(b, rec), nil
	}
	return proto.MarshalOptions{}.MarshalAppend(b, rec)
}

// fastRecord reports whether rec is one appendRecordFast encodes: a
// segment input or an output digest whose strings are valid UTF-8 (which
// proto.Marshal refuses, and a re-run could not decode). Records are built
// by the service, never decoded from a client, so they carry no unknown
// fields to keep.
func fastRecord(rec *pb.LogRecord) bool {
	switch body := rec.Body.(type) {
	case *pb.LogRecord_Input:
		seg, ok := body.Input.GetKind().(*pb.Input_Segment)
		return ok && seg.Segment != nil && body.Input.RequestId == ""
	case *pb.LogRecord_Output:
		d := body.Output
		if d == nil {
			return false
		}
		for _, t := range d.Transitions {
			if t == nil || !utf8.ValidString(t.Endpoint) || !utf8.ValidString(t.FromStateName) ||
				!utf8.ValidString(t.ToStateName) || !utf8.ValidString(t.Cause) {
				return false
			}
		}
		for _, e := range d.Events {
			if e == nil || !utf8.ValidString(e.Endpoint) {
				return false
			}
		}
		r := d.Result
		return r == nil || utf8.ValidString(r.EndpointId) && utf8.ValidString(r.ErrorMessage)
	}
	return false
}

func appendRecordFast(b []byte, rec *pb.LogRecord) []byte {
	if rec.Index != 0 {
		b = protowire.AppendTag(b, fRecordIndex, protowire.VarintType)
		b = protowire.AppendVarint(b, rec.Index)
	}
	b = appendDurationField(b, fRecordTime, rec.Time)
	switch body := rec.Body.(type) {
	case *pb.LogRecord_Input:
		pkt := body.Input.GetSegment().GetIpPacket()
		segSize := bytesFieldSize(fSegmentIPPacket, pkt)
		inSize := protowire.SizeTag(fInputSegment) + protowire.SizeBytes(segSize)
		b = protowire.AppendTag(b, fRecordInput, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(inSize))
		b = protowire.AppendTag(b, fInputSegment, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(segSize))
		b = appendBytesField(b, fSegmentIPPacket, pkt)
	case *pb.LogRecord_Output:
		d := body.Output
		b = protowire.AppendTag(b, fRecordOutput, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(digestSize(d)))
		b = appendDigest(b, d)
	}
	return b
}

func digestSize(d *pb.OutputDigest) int {
	n := 0
	if d.InputIndex != 0 {
		n += protowire.SizeTag(fDigestInputIndex) + protowire.SizeVarint(d.InputIndex)
	}
	for _, p := range d.Packets {
		n += protowire.SizeTag(fDigestPackets) + protowire.SizeBytes(len(p))
	}
	for _, t := range d.Transitions {
		n += protowire.SizeTag(fDigestTransitions) + protowire.SizeBytes(transitionSize(t))
	}
	for _, e := range d.Events {
		n += protowire.SizeTag(fDigestEvents) + protowire.SizeBytes(eventSize(e))
	}
	if d.Result != nil {
		n += protowire.SizeTag(fDigestResult) + protowire.SizeBytes(resultSize(d.Result))
	}
	return n
}

func appendDigest(b []byte, d *pb.OutputDigest) []byte {
	if d.InputIndex != 0 {
		b = protowire.AppendTag(b, fDigestInputIndex, protowire.VarintType)
		b = protowire.AppendVarint(b, d.InputIndex)
	}
	for _, p := range d.Packets { // repeated: every element, empty or not
		b = protowire.AppendTag(b, fDigestPackets, protowire.BytesType)
		b = protowire.AppendBytes(b, p)
	}
	for _, t := range d.Transitions {
		b = protowire.AppendTag(b, fDigestTransitions, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(transitionSize(t)))
		b = appendStringField(b, fTransitionEndpoint, t.Endpoint)
		b = appendVarintField(b, fTransitionFrom, uint64(int64(t.FromState)))
		b = appendVarintField(b, fTransitionTo, uint64(int64(t.ToState)))
		b = appendStringField(b, fTransitionFromName, t.FromStateName)
		b = appendStringField(b, fTransitionToName, t.ToStateName)
		b = appendStringField(b, fTransitionCause, t.Cause)
		b = appendDurationField(b, fTransitionTime, t.Time)
	}
	for _, e := range d.Events {
		b = protowire.AppendTag(b, fDigestEvents, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(eventSize(e)))
		b = appendStringField(b, fEventEndpoint, e.Endpoint)
		b = appendVarintField(b, fEventKind, uint64(int64(e.Kind)))
	}
	if r := d.Result; r != nil {
		b = protowire.AppendTag(b, fDigestResult, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(resultSize(r)))
		b = appendVarintField(b, fResultCount, uint64(r.Count))
		b = appendBytesField(b, fResultData, r.Data)
		if r.Eof {
			b = appendVarintField(b, fResultEOF, 1)
		}
		b = appendStringField(b, fResultEndpointID, r.EndpointId)
		b = appendVarintField(b, fResultErrorCode, uint64(int64(r.ErrorCode)))
		b = appendStringField(b, fResultErrorMessage, r.ErrorMessage)
	}
	return b
}

func transitionSize(t *pb.Transition) int {
	return stringFieldSize(fTransitionEndpoint, t.Endpoint) +
		varintFieldSize(fTransitionFrom, uint64(int64(t.FromState))) +
		varintFieldSize(fTransitionTo, uint64(int64(t.ToState))) +
		stringFieldSize(fTransitionFromName, t.FromStateName) +
		stringFieldSize(fTransitionToName, t.ToStateName) +
		stringFieldSize(fTransitionCause, t.Cause) +
		durationFieldSize(fTransitionTime, t.Time)
}

func eventSize(e *pb.Event) int {
	return stringFieldSize(fEventEndpoint, e.Endpoint) + varintFieldSize(fEventKind, uint64(int64(e.Kind)))
}

func resultSize(r *pb.CallResult) int {
	n := varintFieldSize(fResultCount, uint64(r.Count)) + bytesFieldSize(fResultData, r.Data)
	if r.Eof {
		n += varintFieldSize(fResultEOF, 1)
	}
	return n + stringFieldSize(fResultEndpointID, r.EndpointId) +
		varintFieldSize(fResultErrorCode, uint64(int64(r.ErrorCode))) +
		stringFieldSize(fResultErrorMessage, r.ErrorMessage)
}

// Scalar fields of proto3 without presence are written only when not zero.

func varintFieldSize(n protowire.Number, v uint64) int {
	if v == 0 {
		return 0
	}
	return protowire.SizeTag(n) + protowire.SizeVarint(v)
}

func appendVarintField(b []byte, n protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	return protowire.AppendVarint(protowire.AppendTag(b, n, protowire.VarintType), v)
}

func bytesFieldSize(n protowire.Number, v []byte) int {
	if len(v) == 0 {
		return 0
	}
	return protowire.SizeTag(n) + protowire.SizeBytes(len(v))
}

func appendBytesField(b []byte, n protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	return protowire.AppendBytes(protowire.AppendTag(b, n, protowire.BytesType), v)
}

func stringFieldSize(n protowire.Number, v string) int {
	if v == "" {
		return 0
	}
	return protowire.SizeTag(n) + protowire.SizeBytes(len(v))
}

func appendStringField(b []byte, n protowire.Number, v string) []byte {
	if v == "" {
		return b
	}
	return protowire.AppendString(protowire.AppendTag(b, n, protowire.BytesType), v)
}

// A google.protobuf.Duration field is written when set, even if zero.

func durationSize(d *durationpb.Duration) int {
	return varintFieldSize(fDurationSeconds, uint64(d.Seconds)) + varintFieldSize(fDurationNanos, uint64(int64(d.Nanos)))
}

func durationFieldSize(n protowire.Number, d *durationpb.Duration) int {
	if d == nil {
		return 0
	}
	return protowire.SizeTag(n) + protowire.SizeBytes(durationSize(d))
}

func appendDurationField(b []byte, n protowire.Number, d *durationpb.Duration) []byte {
	if d == nil {
		return b
	}
	b = protowire.AppendTag(b, n, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(durationSize(d)))
	b = appendVarintField(b, fDurationSeconds, uint64(d.Seconds))
	return appendVarintField(b, fDurationNanos, uint64(int64(d.Nanos)))
}
