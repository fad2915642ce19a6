package machine

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strconv"

	"google.golang.org/protobuf/proto"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// Rerun re-runs a session from its log records in a fresh Machine and
// compares every output the Machine produces with the logged one. Restoring
// a session on start, VerifySession and `tcpstated log verify` all use it.
type Rerun struct {
	Machine *Machine
	Start   *pb.SessionStart
	Records uint64 // records fed
	checked uint64 // output records compared
	Diff    *pb.Difference
	Diffs   int

	// The last input, until its output record arrives.
	Pending      *pb.OutputDigest
	PendingIndex uint64
	pendingInput *pb.Input

	// ErrorCode is the code the service answers err with (a gRPC code): a
	// re-run that refuses an input the log has records it in its result.
	ErrorCode func(err error) int32
}

// feed takes the next record of the log.
func (r *Rerun) Feed(index uint64, payload []byte) error {
	rec := &pb.LogRecord{}
	if err := proto.Unmarshal(payload, rec); err != nil {
		return fmt.Errorf("record %d does not decode: %w", index, err)
	}
	return r.feedRecord(index, rec)
}

func (r *Rerun) feedRecord(index uint64, rec *pb.LogRecord) error {
	r.Records++
	if rec.Index != index {
		r.differ(index, "index", strconv.FormatUint(index, 10), strconv.FormatUint(rec.Index, 10))
	}
	if index == 0 {
		st := rec.GetStart()
		if st == nil {
			return fmt.Errorf("record 0 is not a start record")
		}
		return r.Begin(st)
	}
	if r.Machine == nil {
		return fmt.Errorf("record %d comes before a start record", index)
	}
	switch body := rec.Body.(type) {
	case *pb.LogRecord_Start:
		r.differ(index, "start", "an input or output", "a second start record")
	case *pb.LogRecord_Input:
		if r.Pending != nil {
			r.differ(index, "record", fmt.Sprintf("the output of input %d", r.PendingIndex), "an input")
		}
		r.applyInput(index, body.Input)
	case *pb.LogRecord_Output:
		if r.Pending == nil {
			r.differ(index, "record", "an input", "an output without an input")
			return nil
		}
		r.checked++
		if body.Output.GetInputIndex() != r.PendingIndex {
			r.differ(index, "input_index", strconv.FormatUint(r.PendingIndex, 10), strconv.FormatUint(body.Output.GetInputIndex(), 10))
		} else if f, exp, act, ok := compareDigests(body.Output, r.Pending); !ok {
			r.differ(index, f, exp, act)
		}
		r.Pending, r.pendingInput = nil, nil
	default:
		return fmt.Errorf("record %d is empty or of an unknown kind", index)
	}
	return nil
}

// begin builds the Machine from the start record.
func (r *Rerun) Begin(st *pb.SessionStart) error {
	if r.Machine != nil {
		return fmt.Errorf("a second start record")
	}
	var secret [16]byte
	if len(st.SecretKey) != len(secret) {
		return fmt.Errorf("start record: the secret key is %d bytes, want %d", len(st.SecretKey), len(secret))
	}
	copy(secret[:], st.SecretKey)
	params, err := StartParams(st)
	if err != nil {
		return fmt.Errorf("start record: %w", err)
	}
	if st.Options == nil {
		return fmt.Errorf("start record: no options")
	}
	id, err := ParseSessionName("start.name", st.Name)
	if err != nil {
		return fmt.Errorf("start record: %w", err)
	}
	r.Start = st
	r.Machine = New(SessionName(id), EngineConfig(st.Options, secret, params))
	return nil
}

// applyInput runs one logged input and keeps its digest for comparison.
func (r *Rerun) applyInput(index uint64, in *pb.Input) {
	res, err := r.Machine.Apply(in)
	rd := r.Machine.Engine.Ready()
	if err != nil {
		// The original run accepted this input (refused ones are not
		// logged): say what the re-run answered instead.
		res = &pb.CallResult{ErrorCode: r.ErrorCode(err), ErrorMessage: err.Error()}
	}
	r.Machine.Observe(&rd)
	r.Pending = r.Machine.Digest(&rd, index, res)
	r.PendingIndex = index
	r.pendingInput = in
}

func (r *Rerun) differ(index uint64, field, expected, actual string) {
	r.Diffs++
	if r.Diff == nil {
		r.Diff = &pb.Difference{Index: index, Field: field, Expected: expected, Actual: actual}
	}
}

// compareDigests finds the first field where a re-run's outputs differ from
// the logged ones.
func compareDigests(exp, act *pb.OutputDigest) (field, expected, actual string, same bool) {
	if proto.Equal(exp, act) {
		return "", "", "", true
	}
	for i := 0; i < max(len(exp.Packets), len(act.Packets)); i++ {
		var e, a []byte
		if i < len(exp.Packets) {
			e = exp.Packets[i]
		}
		if i < len(act.Packets) {
			a = act.Packets[i]
		}
		if !bytes.Equal(e, a) {
			return fmt.Sprintf("packets[%d]", i), PacketText(e), PacketText(a), false
		}
	}
	for i := 0; i < max(len(exp.Transitions), len(act.Transitions)); i++ {
		e, a := at(exp.Transitions, i), at(act.Transitions, i)
		if !proto.Equal(e, a) {
			return fmt.Sprintf("transitions[%d]", i), transitionText(e), transitionText(a), false
		}
	}
	for i := 0; i < max(len(exp.Events), len(act.Events)); i++ {
		e, a := at(exp.Events, i), at(act.Events, i)
		if !proto.Equal(e, a) {
			return fmt.Sprintf("events[%d]", i), eventText(e), eventText(a), false
		}
	}
	return "result", resultText(exp.Result), resultText(act.Result), false
}

func at[T any](s []*T, i int) *T {
	if i < len(s) {
		return s[i]
	}
	return nil
}

func PacketText(b []byte) string {
	if b == nil {
		return "(none)"
	}
	v := SegmentView(b, pb.Direction_DIRECTION_OUTBOUND, 0, "")
	return v.Summary + " [" + hex.EncodeToString(b) + "]"
}

func transitionText(t *pb.Transition) string {
	if t == nil {
		return "(none)"
	}
	return fmt.Sprintf("%s %s -> %s (%s) at %v", t.Endpoint, t.FromStateName, t.ToStateName, t.Cause, t.Time.AsDuration())
}

func eventText(e *pb.Event) string {
	if e == nil {
		return "(none)"
	}
	return e.Endpoint + " " + e.Kind.String()
}

func resultText(r *pb.CallResult) string {
	if r == nil {
		return "(none)"
	}
	if r.ErrorMessage != "" {
		return fmt.Sprintf("error %d: %s", r.ErrorCode, r.ErrorMessage)
	}
	return fmt.Sprintf("count=%d data=%q eof=%t endpoint_id=%q", r.Count, r.Data, r.Eof, r.EndpointId)
}
