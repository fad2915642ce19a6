package service

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"math"
	"sort"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"

	"github.com/tcpstated/tcpstated/service/machine"
)

// sessionServer implements SessionService. Handlers validate, call the
// session and convert errors with toStatus; nothing else.
type sessionServer struct {
	pb.UnimplementedSessionServiceServer
	s *Service
}

func (h *sessionServer) CreateSession(ctx context.Context, req *pb.CreateSessionRequest) (*pb.CreateSessionResponse, error) {
	kind := req.GetSession().GetKind()
	switch kind {
	case pb.SessionKind_SESSION_KIND_UNSPECIFIED:
		kind = pb.SessionKind_SESSION_KIND_INTERACTIVE
	case pb.SessionKind_SESSION_KIND_INTERACTIVE, pb.SessionKind_SESSION_KIND_TUN:
	case pb.SessionKind_SESSION_KIND_SCRIPT:
		return nil, toStatus(invalidf("session.kind: SESSION_KIND_SCRIPT sessions are made by RunScript"))
	default:
		return nil, toStatus(invalidf("session.kind: %d is not a kind", kind))
	}
	ss, err := h.s.create(ctx, req.GetSessionId(), req.GetSession().GetOptions(), kind, req.GetSession(), true, req.GetRequestId())
	if err != nil {
		return nil, toStatus(err)
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return &pb.CreateSessionResponse{Session: ss.viewLocked()}, nil
}

func (h *sessionServer) GetSession(ctx context.Context, req *pb.GetSessionRequest) (*pb.GetSessionResponse, error) {
	ss, err := h.s.lookupName(ctx, "name", req.GetName())
	if err != nil {
		return nil, toStatus(err)
	}
	v, note, err := ss.view()
	if err != nil {
		return nil, toStatus(err)
	}
	if note != "" {
		// Session has no field for it: the note travels as response
		// metadata (HTTP header Grpc-Metadata-Tcpstated-Restore).
		grpc.SetHeader(ctx, metadata.Pairs(restoreHeader, note))
	}
	return &pb.GetSessionResponse{Session: v}, nil
}

// restoreHeader carries what restoring the session found in its log.
const restoreHeader = "tcpstated-restore"

// view returns the Session of a usable session (a broken one gives its
// error) and the note of what restoring it found, if anything.
func (ss *session) view() (*pb.Session, string, error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if err := ss.usableLocked(); err != nil {
		return nil, "", err
	}
	return ss.viewLocked(), ss.restore.note(), nil
}

func (h *sessionServer) ListSessions(ctx context.Context, req *pb.ListSessionsRequest) (*pb.ListSessionsResponse, error) {
	size, err := h.s.cfg.Limits.pageSize(req.GetPageSize())
	if err != nil {
		return nil, toStatus(err)
	}
	after, err := decodePageToken(req.GetPageToken())
	if err != nil {
		return nil, toStatus(err)
	}
	ids := h.s.sortedIDsFor(ctx)
	i := sort.SearchStrings(ids, after)
	if i < len(ids) && ids[i] == after {
		i++
	}
	resp := &pb.ListSessionsResponse{}
	for ; i < len(ids) && len(resp.Sessions) < size; i++ {
		ss, err := h.s.lookup(ctx, ids[i])
		if err != nil {
			continue // deleted meanwhile
		}
		ss.mu.Lock()
		if ss.state != stateDeleted {
			resp.Sessions = append(resp.Sessions, ss.viewLocked())
		}
		ss.mu.Unlock()
	}
	if i < len(ids) && len(resp.Sessions) > 0 {
		resp.NextPageToken = encodePageToken(ids[i-1])
	}
	return resp, nil
}

func (h *sessionServer) DeleteSession(ctx context.Context, req *pb.DeleteSessionRequest) (*pb.DeleteSessionResponse, error) {
	id, err := machine.ParseSessionName("name", req.GetName())
	if err != nil {
		return nil, toStatus(err)
	}
	if err := h.s.delete(ctx, id); err != nil {
		return nil, toStatus(err)
	}
	return &pb.DeleteSessionResponse{}, nil
}

// maxClock bounds the session clock (about 100 years), far from overflow.
const maxClock = time.Duration(math.MaxInt64 / 3)

func (h *sessionServer) AdvanceClock(ctx context.Context, req *pb.AdvanceClockRequest) (*pb.AdvanceClockResponse, error) {
	ss, err := h.s.lookupName(ctx, "name", req.GetName())
	if err != nil {
		return nil, toStatus(err)
	}
	return answer(ctx, ss, req.GetRequestId(), func() (*pb.AdvanceClockResponse, error) {
		out := &pb.Outputs{}
		clock, err := ss.advance(req, out)
		if err != nil {
			return nil, toStatus(err)
		}
		return &pb.AdvanceClockResponse{Clock: durationpb.New(clock), Outputs: out}, nil
	}, func(lc *loggedCall) *pb.AdvanceClockResponse {
		return &pb.AdvanceClockResponse{Clock: lc.in.GetAdvanceClock().GetTo(), Outputs: lc.outputs}
	})
}

// advance moves a VIRTUAL session's clock as the request says.
func (ss *session) advance(req *pb.AdvanceClockRequest, out *pb.Outputs) (time.Duration, error) {
	if ss.realtime {
		return 0, reasonf(kindPrecondition, "CLOCK_NOT_VIRTUAL", "session %s has a REALTIME clock, which follows the wall clock; AdvanceClock applies to VIRTUAL sessions", ss.name)
	}
	var by, to *durationpb.Duration
	switch t := req.GetTarget().(type) {
	case *pb.AdvanceClockRequest_By:
		by = t.By
	case *pb.AdvanceClockRequest_To:
		to = t.To
	case *pb.AdvanceClockRequest_ToNextDeadline:
		if !t.ToNextDeadline {
			return 0, invalidf("to_next_deadline: must be true when given")
		}
	default:
		return 0, invalidf("target: one of by, to or to_next_deadline is required")
	}
	for _, d := range []struct {
		name string
		v    *durationpb.Duration
	}{{"by", by}, {"to", to}} {
		if d.v == nil {
			continue
		}
		if err := d.v.CheckValid(); err != nil {
			return 0, invalidf("%s: %v", d.name, err)
		}
		if v := d.v.AsDuration(); v < 0 || v > maxClock {
			return 0, invalidf("%s: %v is not in [0, %v]", d.name, v, maxClock)
		}
	}
	ss.mu.Lock()
	if err := ss.writableLocked(); err != nil {
		ss.mu.Unlock()
		return 0, err
	}
	now := ss.m.Now()
	var target time.Duration
	switch {
	case by != nil:
		target = now + by.AsDuration()
	case to != nil:
		target = to.AsDuration()
		if target < now {
			ss.mu.Unlock()
			return 0, invalidf("to: %v is before the session clock %v", target, now)
		}
	default:
		dl, ok := ss.m.Engine.NextDeadline()
		if !ok || dl < now {
			dl = now
		}
		target = dl
	}
	if target > maxClock {
		ss.mu.Unlock()
		return 0, invalidf("by: the clock would pass %v", maxClock)
	}
	_, err := ss.execLocked(withRequestID(advanceInput(target), req.GetRequestId()), out, false)
	clock := ss.m.Now()
	last := ss.next
	ss.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return clock, ss.waitDurable(last)
}

// note renders what restoring found, "" when the log was clean.
func (r *RestoreReport) note() string {
	if r == nil {
		return ""
	}
	var parts []string
	if r.Truncated {
		parts = append(parts, fmt.Sprintf("log truncated at byte %d (%d bytes dropped): %s", r.Recovery.TruncatedAt, r.Recovery.DroppedBytes, r.Recovery.Reason))
	}
	if r.Completed {
		parts = append(parts, "the last input had no output record; the re-run's was appended")
	}
	if d := r.Difference; d != nil {
		parts = append(parts, fmt.Sprintf("re-run differs from the log in %d outputs; first at record %d, %s: logged %s, re-run %s",
			r.Differences, d.Index, d.Field, d.Expected, d.Actual))
	}
	// Metadata values are printable ASCII.
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, strings.Join(parts, "; "))
}
