package service

import (
	"errors"
	"fmt"
	"io"
	"strconv"

	"context"

	"github.com/tcpstated/tcpstated/fsm"
	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"

	"github.com/tcpstated/tcpstated/service/machine"
)

// segmentServer implements SegmentService.
type segmentServer struct {
	pb.UnimplementedSegmentServiceServer
	s *Service
}

func (h *segmentServer) SubmitSegment(ctx context.Context, req *pb.SubmitSegmentRequest) (*pb.SubmitSegmentResponse, error) {
	ss, err := h.s.lookupName(ctx, "parent", req.GetParent())
	if err != nil {
		return nil, toStatus(err)
	}
	pkt, err := submittedPacket(req)
	if err != nil {
		return nil, toStatus(err)
	}
	return answer(ctx, ss, req.GetRequestId(), func() (*pb.SubmitSegmentResponse, error) {
		resp := &pb.SubmitSegmentResponse{Outputs: &pb.Outputs{}}
		_, err = ss.exec(withRequestID(segmentInput(pkt), req.GetRequestId()), resp.Outputs, func(*pb.CallResult) {
			resp.Segment = machine.SegmentView(pkt, pb.Direction_DIRECTION_INBOUND, ss.m.Now(), firstEndpoint(resp.Outputs))
		})
		if err != nil {
			return nil, toStatus(err)
		}
		return resp, nil
	}, func(lc *loggedCall) *pb.SubmitSegmentResponse {
		seg := machine.SegmentView(lc.in.GetSegment().GetIpPacket(), pb.Direction_DIRECTION_INBOUND, lc.time, firstEndpoint(lc.outputs))
		return &pb.SubmitSegmentResponse{Segment: seg, Outputs: lc.outputs}
	})
}

// flushEndLocked ends a batch: it writes the records the steps left
// pending (the engine has applied them, so they are written whatever
// happened after them).
func (s *session) flushEndLocked() error {
	s.batching = false
	s.m.EndBatch()
	if err := s.flushLocked(); err != nil {
		s.tally = stepTally{} // the batch failed: its steps are not counted
		return s.failLocked(err)
	}
	s.svc.metrics.observeSteps(&s.tally)
	return nil
}

func segmentInput(pkt []byte) *pb.Input {
	return &pb.Input{Kind: &pb.Input_Segment{Segment: &pb.SegmentInput{IpPacket: pkt}}}
}

// firstEndpoint is the endpoint the engine's first explanation names: the
// one an inbound segment was demultiplexed to.
func firstEndpoint(out *pb.Outputs) string {
	for _, x := range out.GetExplanations() {
		if x.Endpoint != "" {
			return x.Endpoint
		}
	}
	return ""
}

// ListSegments pages through the outbound queue without changing it.
func (h *segmentServer) ListSegments(ctx context.Context, req *pb.ListSegmentsRequest) (*pb.ListSegmentsResponse, error) {
	ss, err := h.s.lookupName(ctx, "parent", req.GetParent())
	if err != nil {
		return nil, toStatus(err)
	}
	if req.GetPageSize() < 0 {
		return nil, toStatus(invalidf("page_size: %d is negative", req.GetPageSize()))
	}
	from, err := decodeNumericPageToken(req.GetPageToken(), 64)
	if err != nil {
		return nil, toStatus(err)
	}
	ss.mu.Lock()
	if err := ss.usableLocked(); err != nil {
		ss.mu.Unlock()
		return nil, toStatus(err)
	}
	segs, next := ss.out.list(from, int(req.GetPageSize()))
	remaining := ss.out.first + uint64(ss.out.len()) - next
	ss.mu.Unlock()
	resp := &pb.ListSegmentsResponse{Segments: views(segs), Remaining: uint32(remaining)}
	if remaining > 0 {
		resp.NextPageToken = encodePageToken(strconv.FormatUint(next, 10))
	}
	return resp, nil
}

// DrainSegments takes segments off the outbound queue.
func (h *segmentServer) DrainSegments(ctx context.Context, req *pb.DrainSegmentsRequest) (*pb.DrainSegmentsResponse, error) {
	ss, err := h.s.lookupName(ctx, "parent", req.GetParent())
	if err != nil {
		return nil, toStatus(err)
	}
	if req.GetMaxSegments() < 0 {
		return nil, toStatus(invalidf("max_segments: %d is negative", req.GetMaxSegments()))
	}
	ss.mu.Lock()
	if err := ss.usableLocked(); err != nil {
		ss.mu.Unlock()
		return nil, toStatus(err)
	}
	segs := ss.out.take(int(req.GetMaxSegments()))
	remaining := ss.out.len()
	ss.mu.Unlock()
	return &pb.DrainSegmentsResponse{Segments: views(segs), Remaining: uint32(remaining)}, nil
}

func views(segs []outSeg) []*pb.Segment {
	v := make([]*pb.Segment, len(segs))
	for i := range segs {
		v[i] = segs[i].view()
	}
	return v
}

func (h *segmentServer) WatchSegments(req *pb.WatchSegmentsRequest, stream pb.SegmentService_WatchSegmentsServer) error {
	ss, err := h.s.lookupName(stream.Context(), "parent", req.GetParent())
	if err != nil {
		return toStatus(err)
	}
	w := &watcher{ch: make(chan []outSeg, watcherBuffer), inbound: req.GetIncludeInbound()}
	ss.mu.Lock()
	if h.s.stopping.Load() {
		ss.mu.Unlock()
		return toStatus(errShuttingDown)
	}
	if err := ss.usableLocked(); err != nil {
		ss.mu.Unlock()
		return toStatus(err)
	}
	if len(ss.watchers) >= h.s.cfg.Limits.MaxWatchers {
		ss.mu.Unlock()
		return toStatus(exhaustedf("session %s has its limit of %d watchers", ss.name, h.s.cfg.Limits.MaxWatchers))
	}
	queued := ss.out.take(0)
	ss.watchers = append(ss.watchers, w)
	ss.mu.Unlock()
	defer ss.removeWatcher(w)

	send := func(segs []outSeg) error {
		return stream.Send(&pb.WatchSegmentsResponse{Segments: views(segs)})
	}
	if len(queued) > 0 {
		if err := send(queued); err != nil {
			return err
		}
	}
	ctx := stream.Context()
	for {
		select {
		case <-ctx.Done():
			return toStatus(ctx.Err())
		case segs, ok := <-w.ch:
			if !ok {
				return toStatus(w.err) // nil when the session was deleted or closed
			}
			if err := send(segs); err != nil {
				return err
			}
		}
	}
}

func (ss *session) removeWatcher(w *watcher) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for i, x := range ss.watchers {
		if x == w {
			ss.watchers = append(ss.watchers[:i], ss.watchers[i+1:]...)
			break
		}
	}
	w.end(nil)
}

// ExchangeSegments answers each request, in order, with everything its
// packets caused. A request's packets are applied under one hold of the
// session lock and the whole request waits once for durability.
func (h *segmentServer) ExchangeSegments(stream pb.SegmentService_ExchangeSegmentsServer) error {
	// Requests are read by a goroutine so that a server shutdown can end
	// the stream between two requests.
	ctx := stream.Context()
	reqs := make(chan *pb.ExchangeSegmentsRequest)
	errc := make(chan error, 1)
	go func() {
		for {
			req, err := stream.Recv()
			if err != nil {
				errc <- err
				return
			}
			select {
			case reqs <- req:
			case <-ctx.Done():
				return
			}
		}
	}()
	var ss *session
	for {
		var req *pb.ExchangeSegmentsRequest
		select {
		case req = <-reqs:
		case err := <-errc:
			if err == io.EOF {
				return nil
			}
			return err
		case <-h.s.stopCh:
			return toStatus(errShuttingDown)
		}
		var err error
		if ss == nil {
			if ss, err = h.s.lookupName(ctx, "parent", req.GetParent()); err != nil {
				return toStatus(err)
			}
		} else if p := req.GetParent(); p != "" && p != ss.name {
			return toStatus(invalidf("parent: %q differs from the stream's session %s", p, ss.name))
		}
		if n, max := len(req.GetIpPackets()), h.s.cfg.Limits.MaxPacketsPerMessage; n > max {
			return toStatus(exhaustedf("ip_packets: %d packets in one message, the limit is %d", n, max))
		}
		resp := &pb.ExchangeSegmentsResponse{Sequence: req.GetSequence(), Outputs: &pb.Outputs{}}
		processed, perr, err := ss.execPackets(req.GetIpPackets(), resp.Outputs, req.GetRawOnly())
		if err != nil {
			return toStatus(err)
		}
		resp.Processed = uint32(processed)
		if perr != nil {
			resp.Error = fmt.Sprintf("ip_packets[%d]: %v", processed, perr)
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

// execPackets delivers packets in order under one hold of the lock,
// writes all their records with one write before releasing it, and waits
// once until every record is durable: the reply goes out only after that.
// It stops at the first malformed packet (perr; nothing of it was applied
// or logged).
func (s *session) execPackets(pkts [][]byte, out *pb.Outputs, rawOnly bool) (processed int, perr, err error) {
	s.mu.Lock()
	if err := s.writableLocked(); err != nil {
		s.mu.Unlock()
		return 0, nil, err
	}
	s.batching = true
	if err := s.catchUpLocked(); err != nil {
		s.flushEndLocked()
		s.mu.Unlock()
		return 0, nil, err
	}
	s.m.StartBatch(len(pkts))
	in := segmentInput(nil) // one input message, refilled for each packet
	sin := in.GetSegment()
	for _, pkt := range pkts {
		sin.IpPacket = pkt
		if _, err = s.stepLocked(in, out, rawOnly); err != nil {
			var pe *fsm.ParseError
			if errors.As(err, &pe) {
				perr, err = err, nil
			}
			break
		}
		processed++
	}
	if ferr := s.flushEndLocked(); ferr != nil && err == nil {
		err = ferr
	}
	last := s.next
	s.rearmLocked()
	s.mu.Unlock()
	if err != nil {
		return processed, nil, err
	}
	return processed, perr, s.waitDurable(last)
}
