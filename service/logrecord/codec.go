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
func Append(b []byte, rec *pb.LogRecord) ([]byte, error) { return (*Encoder)(nil).Append(b, rec) }

// AppendTrusted is Append for a record whose digest's transitions and
// events name endpoints and states with strings the caller knows are valid
// UTF-8: the service's own endpoint names and the engine's state and cause
// names. They are not checked again for every record; the result's
// strings still are. The bytes are Append's.
func AppendTrusted(b []byte, rec *pb.LogRecord) ([]byte, error) {
	return (*Encoder)(nil).AppendTrusted(b, rec)
}

// fastRecord reports whether rec is one appendRecordFast encodes: a
// segment input or an output digest whose strings are valid UTF-8 (which
// proto.Marshal refuses, and a re-run could not decode); those of its
// transitions and events are checked only with checkNames. Records are
// built by the service, never decoded from a client, so they carry no
// unknown fields to keep.
func fastRecord(rec *pb.LogRecord, checkNames bool) bool {
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
			if t == nil || checkNames && (!utf8.ValidString(t.Endpoint) || !utf8.ValidString(t.FromStateName) ||
				!utf8.ValidString(t.ToStateName) || !utf8.ValidString(t.Cause)) {
				return false
			}
		}
		for _, e := range d.Events {
			if e == nil || checkNames && !utf8.ValidString(e.Endpoint) {
				return false
			}
		}
		r := d.Result
		return r == nil || utf8.ValidString(r.EndpointId) && utf8.ValidString(r.ErrorMessage)
	}
	return false
}

// An Encoder is Append and AppendTrusted for a run of records: it keeps
// the encoding of the last record time and of the last digest event, and
// copies them while they stay the same (consecutive records mostly share
// the session clock, and every data segment in order has the digest event
// DATA_READABLE on its connection). The bytes are Append's; the zero
// Encoder is ready to use, and a nil one keeps nothing.
type Encoder struct {
	time struct {
		sec   int64
		nanos int32
		enc   []byte // the time field, tag included; nil: none kept
	}
	event struct {
		endpoint string
		kind     pb.EventKind
		enc      []byte // the events element, tag included
	}
}

// Append is the package's Append.
func (c *Encoder) Append(b []byte, rec *pb.LogRecord) ([]byte, error) {
	if fastRecord(rec, true) {
		return c.appendRecordFast(b, rec), nil
	}
	return proto.MarshalOptions{}.MarshalAppend(b, rec)
}

// AppendTrusted is the package's AppendTrusted.
func (c *Encoder) AppendTrusted(b []byte, rec *pb.LogRecord) ([]byte, error) {
	if fastRecord(rec, false) {
		return c.appendRecordFast(b, rec), nil
	}
	return proto.MarshalOptions{}.MarshalAppend(b, rec)
}

// recordTime appends the record's time field, from c's copy when the
// time is the last one; c may be nil.
func (c *Encoder) recordTime(b []byte, d *durationpb.Duration) []byte {
	if c == nil || d == nil {
		return appendDurationField(b, fRecordTime, d)
	}
	t := &c.time
	if t.enc != nil && t.sec == d.Seconds && t.nanos == d.Nanos {
		return append(b, t.enc...)
	}
	start := len(b)
	b = appendDurationField(b, fRecordTime, d)
	t.sec, t.nanos, t.enc = d.Seconds, d.Nanos, append(t.enc[:0], b[start:]...)
	return b
}

// digestEvent appends one element of a digest's events, from c's copy
// when it is the last one; c may be nil.
func (c *Encoder) digestEvent(b []byte, e *pb.Event) []byte {
	if c != nil {
		if ev := &c.event; ev.enc != nil && ev.kind == e.Kind && ev.endpoint == e.Endpoint {
			return append(b, ev.enc...)
		}
	}
	start := len(b)
	var m int
	b, m = beginMessage(b, fDigestEvents)
	b = appendStringField(b, fEventEndpoint, e.Endpoint)
	b = appendVarintField(b, fEventKind, uint64(int64(e.Kind)))
	b = endMessage(b, m)
	if c != nil {
		ev := &c.event
		ev.endpoint, ev.kind, ev.enc = e.Endpoint, e.Kind, append(ev.enc[:0], b[start:]...)
	}
	return b
}

func (c *Encoder) appendRecordFast(b []byte, rec *pb.LogRecord) []byte {
	if rec.Index != 0 {
		b = appendTag(b, fRecordIndex, protowire.VarintType)
		b = appendUvarint(b, rec.Index)
	}
	b = c.recordTime(b, rec.Time)
	switch body := rec.Body.(type) {
	case *pb.LogRecord_Input:
		var in int
		b, in = beginMessage(b, fRecordInput)
		var seg int
		b, seg = beginMessage(b, fInputSegment)
		b = appendBytesField(b, fSegmentIPPacket, body.Input.GetSegment().GetIpPacket())
		b = endMessage(b, seg)
		b = endMessage(b, in)
	case *pb.LogRecord_Output:
		var out int
		b, out = beginMessage(b, fRecordOutput)
		b = c.appendDigest(b, body.Output)
		b = endMessage(b, out)
	}
	return b
}

func (c *Encoder) appendDigest(b []byte, d *pb.OutputDigest) []byte {
	if d.InputIndex != 0 {
		b = appendTag(b, fDigestInputIndex, protowire.VarintType)
		b = appendUvarint(b, d.InputIndex)
	}
	for _, p := range d.Packets { // repeated: every element, empty or not
		b = appendTag(b, fDigestPackets, protowire.BytesType)
		b = appendLenBytes(b, p)
	}
	for _, t := range d.Transitions {
		var m int
		b, m = beginMessage(b, fDigestTransitions)
		b = appendStringField(b, fTransitionEndpoint, t.Endpoint)
		b = appendVarintField(b, fTransitionFrom, uint64(int64(t.FromState)))
		b = appendVarintField(b, fTransitionTo, uint64(int64(t.ToState)))
		b = appendStringField(b, fTransitionFromName, t.FromStateName)
		b = appendStringField(b, fTransitionToName, t.ToStateName)
		b = appendStringField(b, fTransitionCause, t.Cause)
		b = appendDurationField(b, fTransitionTime, t.Time)
		b = endMessage(b, m)
	}
	for _, e := range d.Events {
		b = c.digestEvent(b, e)
	}
	if r := d.Result; r != nil {
		var m int
		b, m = beginMessage(b, fDigestResult)
		b = appendVarintField(b, fResultCount, uint64(r.Count))
		b = appendBytesField(b, fResultData, r.Data)
		if r.Eof {
			b = appendVarintField(b, fResultEOF, 1)
		}
		b = appendStringField(b, fResultEndpointID, r.EndpointId)
		b = appendVarintField(b, fResultErrorCode, uint64(int64(r.ErrorCode)))
		b = appendStringField(b, fResultErrorMessage, r.ErrorMessage)
		b = endMessage(b, m)
	}
	return b
}

// Scalar fields of proto3 without presence are written only when not zero.

func appendVarintField(b []byte, n protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	return appendUvarint(appendTag(b, n, protowire.VarintType), v)
}

func appendBytesField(b []byte, n protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	return appendLenBytes(appendTag(b, n, protowire.BytesType), v)
}

func appendStringField(b []byte, n protowire.Number, v string) []byte {
	if v == "" {
		return b
	}
	return appendLenString(appendTag(b, n, protowire.BytesType), v)
}

// A google.protobuf.Duration field is written when set, even if zero.

func appendDurationField(b []byte, n protowire.Number, d *durationpb.Duration) []byte {
	if d == nil {
		return b
	}
	var m int
	b, m = beginMessage(b, n)
	b = appendVarintField(b, fDurationSeconds, uint64(d.Seconds))
	b = appendVarintField(b, fDurationNanos, uint64(int64(d.Nanos)))
	return endMessage(b, m)
}
