package machine

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// RecordView turns a stored LogRecord into the API's Record.
func RecordView(rec *pb.LogRecord) *pb.Record {
	r := &pb.Record{Index: rec.Index, Time: rec.Time}
	switch b := rec.Body.(type) {
	case *pb.LogRecord_Start:
		st := b.Start
		r.Kind = pb.RecordKind_RECORD_KIND_START
		r.Body = &pb.Record_Start{Start: &pb.RecordStart{
			Options:       st.Options,
			CreateTime:    st.CreateTime,
			FormatVersion: st.FormatVersion,
			EngineVersion: st.EngineVersion,
		}}
		r.Summary = fmt.Sprintf("start: %s, %s clock, %s", st.Name,
			strings.TrimPrefix(st.GetOptions().GetClockMode().String(), "CLOCK_MODE_"),
			strings.TrimPrefix(st.GetOptions().GetIsnMode().String(), "ISN_MODE_")+" ISNs")
	case *pb.LogRecord_Input:
		r.Kind = pb.RecordKind_RECORD_KIND_INPUT
		r.Body = &pb.Record_Input{Input: withoutSecrets(b.Input)}
		if seg := b.Input.GetSegment(); seg != nil {
			r.Segment = SegmentView(seg.IpPacket, pb.Direction_DIRECTION_INBOUND, rec.Time.AsDuration(), "")
		}
		r.Summary = "input: " + inputSummary(b.Input, r.Segment)
	case *pb.LogRecord_Output:
		d := b.Output
		r.Kind = pb.RecordKind_RECORD_KIND_OUTPUT
		out := &pb.Outputs{Transitions: d.Transitions, Events: d.Events}
		for _, p := range d.Packets {
			out.Segments = append(out.Segments, SegmentView(p, pb.Direction_DIRECTION_OUTBOUND, rec.Time.AsDuration(), ""))
		}
		r.Body = &pb.Record_Output{Output: out}
		r.Result = d.Result
		r.Summary = outputSummary(d, out)
	default:
		r.Summary = "unknown record"
	}
	return r
}

func inputSummary(in *pb.Input, seg *pb.Segment) string {
	switch k := in.Kind.(type) {
	case *pb.Input_Segment:
		return "segment " + seg.GetSummary()
	case *pb.Input_AdvanceClock:
		return "advance clock to " + k.AdvanceClock.GetTo().AsDuration().String()
	case *pb.Input_Listen:
		s := fmt.Sprintf("listen on %s backlog %d as endpoint %s", k.Listen.LocalAddress, k.Listen.Backlog, k.Listen.EndpointId)
		if k.Listen.FastOpen {
			s += ", fast open"
		}
		for _, mk := range k.Listen.Md5Keys {
			s += ", MD5 key for " + mk.PeerAddress
		}
		return s
	case *pb.Input_Connect:
		c := k.Connect
		s := fmt.Sprintf("connect %s > %s as endpoint %s", c.LocalAddress, c.RemoteAddress, c.EndpointId)
		if c.FastOpen {
			s += fmt.Sprintf(", fast open with %d bytes", len(c.FastOpenData))
		}
		if len(c.Md5Key) > 0 {
			s += ", MD5 key for " + c.RemoteAddress
		}
		return s
	case *pb.Input_Accept:
		return "accept on endpoint " + k.Accept.EndpointId
	case *pb.Input_Send:
		return fmt.Sprintf("send %d bytes on endpoint %s", len(k.Send.Data), k.Send.EndpointId)
	case *pb.Input_Receive:
		if k.Receive.MaxBytes == 0 {
			return "receive all readable bytes on endpoint " + k.Receive.EndpointId
		}
		return fmt.Sprintf("receive up to %d bytes on endpoint %s", k.Receive.MaxBytes, k.Receive.EndpointId)
	case *pb.Input_Shutdown:
		return "shutdown endpoint " + k.Shutdown.EndpointId
	case *pb.Input_Close:
		return "close endpoint " + k.Close.EndpointId
	case *pb.Input_Abort:
		return "abort endpoint " + k.Abort.EndpointId
	case *pb.Input_Md5Key:
		if len(k.Md5Key.Key) == 0 {
			return fmt.Sprintf("remove the MD5 key for %s on endpoint %s", k.Md5Key.PeerAddress, k.Md5Key.EndpointId)
		}
		return fmt.Sprintf("set the MD5 key for %s on endpoint %s", k.Md5Key.PeerAddress, k.Md5Key.EndpointId)
	}
	return "unknown input"
}

func outputSummary(d *pb.OutputDigest, out *pb.Outputs) string {
	var b strings.Builder
	fmt.Fprintf(&b, "output of #%d:", d.InputIndex)
	n := 0
	item := func(s string) {
		if n > 0 {
			b.WriteByte(';')
		}
		b.WriteByte(' ')
		b.WriteString(s)
		n++
	}
	for _, s := range out.Segments {
		item("emit " + s.Summary)
	}
	for _, t := range d.Transitions {
		item(fmt.Sprintf("%s %s -> %s (%s)", t.Endpoint, t.FromStateName, t.ToStateName, t.Cause))
	}
	for _, e := range d.Events {
		item("event " + strings.TrimPrefix(e.Kind.String(), "EVENT_KIND_") + " on " + e.Endpoint)
	}
	if r := d.Result; r != nil {
		switch {
		case r.ErrorMessage != "":
			item("error " + r.ErrorMessage)
		case r.EndpointId != "":
			item("accepted endpoint " + r.EndpointId)
		case len(r.Data) > 0 || r.Eof:
			item(fmt.Sprintf("received %d bytes, eof %t", len(r.Data), r.Eof))
		case r.Count > 0:
			item(fmt.Sprintf("%d bytes accepted", r.Count))
		}
	}
	if n == 0 {
		b.WriteString(" nothing")
	}
	return b.String()
}

// withoutSecrets is the input as the API shows it: TCP-MD5 keys left out
// (the log keeps them, for re-runs, as it keeps the session's secret key).
func withoutSecrets(in *pb.Input) *pb.Input {
	switch k := in.Kind.(type) {
	case *pb.Input_Connect:
		if len(k.Connect.Md5Key) > 0 {
			c := proto.Clone(k.Connect).(*pb.ConnectInput)
			c.Md5Key = nil
			out := proto.Clone(in).(*pb.Input)
			out.Kind = &pb.Input_Connect{Connect: c}
			return out
		}
	case *pb.Input_Md5Key:
		if len(k.Md5Key.Key) > 0 {
			mk := proto.Clone(k.Md5Key).(*pb.Md5KeyInput)
			mk.Key = nil
			out := proto.Clone(in).(*pb.Input)
			out.Kind = &pb.Input_Md5Key{Md5Key: mk}
			return out
		}
	case *pb.Input_Listen:
		if len(k.Listen.Md5Keys) > 0 {
			l := proto.Clone(k.Listen).(*pb.ListenInput)
			for _, mk := range l.Md5Keys {
				mk.Key = nil
			}
			out := proto.Clone(in).(*pb.Input)
			out.Kind = &pb.Input_Listen{Listen: l}
			return out
		}
	}
	return in
}
