package machine

import (
	"sort"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tcpstated/tcpstated/fsm"
	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// endpointView converts the engine's snapshot of an endpoint into the API's
// Endpoint.
func (m *Machine) EndpointView(in *fsm.EndpointInfo) *pb.Endpoint {
	ep := &pb.Endpoint{
		Name:                m.EndpointName(in.ID),
		State:               StateEnum(in.State),
		StateName:           in.State.String(),
		LocalAddress:        in.Local.String(),
		BytesReadable:       uint32(in.Readable),
		BytesUnsent:         uint32(in.Unsent),
		BytesUnacknowledged: uint32(in.Unacked),
		FinReceived:         in.FinReceived,
		FinSent:             in.FinSent,
	}
	if in.Err != nil {
		ep.Error = in.Err.Error()
	}
	timers := append([]fsm.Timer(nil), in.Timers...)
	sort.SliceStable(timers, func(i, j int) bool { return timers[i].Deadline < timers[j].Deadline })
	for _, t := range timers {
		ep.Timers = append(ep.Timers, &pb.Timer{Kind: pb.TimerKind(t.Kind), Deadline: durationpb.New(t.Deadline)})
	}
	if in.Listener {
		ep.Kind = pb.EndpointKind_ENDPOINT_KIND_LISTENER
		ep.ListenerStats = &pb.ListenerStats{
			SynQueueLength:     uint32(in.SynQueue),
			SynQueueLimit:      uint32(in.SynQueueLimit),
			AcceptQueueLength:  uint32(in.AcceptQueue),
			AcceptQueueLimit:   uint32(in.AcceptQueueLimit),
			SynQueueDrops:      in.Stats.SynQueueDrops,
			AcceptQueueDrops:   in.Stats.AcceptQueueDrops,
			SynCookiesSent:     in.Stats.SynCookiesSent,
			SynCookiesAccepted: in.Stats.SynCookiesAccepted,
			SynCookiesRejected: in.Stats.SynCookiesRejected,
			Accepted:           in.Stats.Accepted,
		}
		return ep
	}
	ep.Kind = pb.EndpointKind_ENDPOINT_KIND_CONNECTION
	ep.RemoteAddress = in.Remote.String()
	switch {
	case in.Parent != 0:
		ep.Listener = m.EndpointName(in.Parent)
	case m.acceptedFrom[in.ID] != 0:
		ep.Listener = m.EndpointName(m.acceptedFrom[in.ID])
		ep.Accepted = true
	}
	ep.Tcb = &pb.Tcb{
		SndUna:      uint32(in.SndUna),
		SndNxt:      uint32(in.SndNxt),
		SndWnd:      in.SndWnd,
		SndWl1:      uint32(in.SndWl1),
		SndWl2:      uint32(in.SndWl2),
		Iss:         uint32(in.ISS),
		RcvNxt:      uint32(in.RcvNxt),
		RcvWnd:      in.RcvWnd,
		Irs:         uint32(in.IRS),
		SndWndScale: uint32(in.SndScale),
		RcvWndScale: uint32(in.RcvScale),
		Mss:         uint32(effSendMSS(in)),
		Cwnd:        in.Cwnd,
		Ssthresh:    in.Ssthresh,
		Srtt:        optDuration(in.SRTT),
		Rttvar:      optDuration(in.RTTVar),
		Rto:         optDuration(in.RTO),
	}
	if handshakeSettled(in) {
		ep.Negotiated = &pb.NegotiatedOptions{
			Mss:           uint32(in.SndMSS),
			WindowScaleOk: in.WindowScale,
			SndScale:      uint32(in.SndScale),
			RcvScale:      uint32(in.RcvScale),
			Timestamps:    in.Timestamps,
			SackPermitted: in.SACKPermitted,
		}
	}
	return ep
}

// effSendMSS is Tcb.mss, the largest payload the endpoint sends: the
// peer's MSS less the options every segment carries, the 12 bytes of
// timestamps when they are on (RFC 9293 §3.7.1 Eff.snd.MSS; RFC 6691), as
// the engine sends it.
func effSendMSS(in *fsm.EndpointInfo) uint16 {
	if in.Timestamps && in.SndMSS > 12 {
		return in.SndMSS - 12
	}
	return in.SndMSS
}

// handshakeSettled reports whether the SYN exchange has fixed the options:
// a SYN has been received (SYN-RECEIVED onwards, or CLOSED after that).
func handshakeSettled(in *fsm.EndpointInfo) bool {
	switch in.State {
	case fsm.Listen, fsm.SynSent:
		return false
	case fsm.Closed:
		return in.RcvNxt != 0 || in.IRS != 0
	}
	return true
}

func optDuration(d time.Duration) *durationpb.Duration {
	if d == 0 {
		return nil
	}
	return durationpb.New(d)
}
