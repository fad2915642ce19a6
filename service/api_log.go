package service

import (
	"context"
	"errors"
	"strconv"

	"google.golang.org/protobuf/proto"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"

	"github.com/tcpstated/tcpstated/store"

	"github.com/tcpstated/tcpstated/service/machine"
)

// logServer implements LogService.
type logServer struct {
	pb.UnimplementedLogServiceServer
	s *Service
}

// errStop ends a walk over a log early.
var errStop = errors.New("stop")

// readLog returns a usable session's log (records are read without the
// session lock: the log is safe for concurrent use).
func (ss *session) readLog() (store.Log, error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if err := ss.usableLocked(); err != nil {
		return nil, err
	}
	return ss.log, nil
}

// records calls fn for each decoded record from index from on, until fn
// returns errStop.
func (ss *session) records(from uint64, fn func(*pb.LogRecord) error) error {
	lg, err := ss.readLog()
	if err != nil {
		return err
	}
	err = lg.Records(from, func(i uint64, payload []byte) error {
		rec := &pb.LogRecord{}
		if err := proto.Unmarshal(payload, rec); err != nil {
			return errorf(kindDataLoss, "record %d of %s does not decode: %v", i, ss.name, err)
		}
		return fn(rec)
	})
	if errors.Is(err, errStop) {
		return nil
	}
	if errors.Is(err, store.ErrClosed) {
		ss.mu.Lock()
		defer ss.mu.Unlock()
		if e := ss.usableLocked(); e != nil {
			return e
		}
	}
	return err
}

func (h *logServer) ListRecords(ctx context.Context, req *pb.ListRecordsRequest) (*pb.ListRecordsResponse, error) {
	ss, size, from, err := h.s.pagedList(ctx, req.GetParent(), req.GetPageSize(), req.GetPageToken(), 64)
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &pb.ListRecordsResponse{}
	err = ss.records(from, func(rec *pb.LogRecord) error {
		if len(resp.Records) == size {
			resp.NextPageToken = encodePageToken(strconv.FormatUint(rec.Index, 10))
			return errStop
		}
		resp.Records = append(resp.Records, machine.RecordView(rec))
		return nil
	})
	if err != nil {
		return nil, toStatus(err)
	}
	if req.GetExplain() {
		if err := ss.explainRecords(resp.Records); err != nil { // api_export.go
			return nil, toStatus(err)
		}
	}
	return resp, nil
}

// streamBatch is the most records per StreamRecords message.
const streamBatch = 100

func (h *logServer) StreamRecords(req *pb.StreamRecordsRequest, stream pb.LogService_StreamRecordsServer) error {
	ss, err := h.s.lookupName(stream.Context(), "parent", req.GetParent())
	if err != nil {
		return toStatus(err)
	}
	if req.GetFollow() {
		if h.s.stopping.Load() {
			return toStatus(errShuttingDown)
		}
		ss.mu.Lock()
		n := ss.followers
		if n < h.s.cfg.Limits.MaxWatchers {
			ss.followers++
		}
		ss.mu.Unlock()
		if n >= h.s.cfg.Limits.MaxWatchers {
			return toStatus(exhaustedf("session %s has its limit of %d following streams", ss.name, h.s.cfg.Limits.MaxWatchers))
		}
		defer func() {
			ss.mu.Lock()
			ss.followers--
			ss.mu.Unlock()
		}()
	}
	ctx := stream.Context()
	next := req.GetStartIndex()
	for {
		// Take the notification channel before reading, so an append
		// between the read and the wait is not missed.
		ss.mu.Lock()
		changed := ss.recordsChangedLocked()
		ss.mu.Unlock()
		batch := &pb.StreamRecordsResponse{}
		err := ss.records(next, func(rec *pb.LogRecord) error {
			batch.Records = append(batch.Records, machine.RecordView(rec))
			next = rec.Index + 1
			if len(batch.Records) == streamBatch {
				if err := stream.Send(batch); err != nil {
					return err
				}
				batch = &pb.StreamRecordsResponse{}
			}
			return ctx.Err()
		})
		if err == nil && len(batch.Records) > 0 {
			err = stream.Send(batch)
		}
		if err != nil {
			var ae *apiError
			if errors.As(err, &ae) && ae.kind == kindNotFound && req.GetFollow() && next > req.GetStartIndex() {
				return nil // the session was deleted while we followed it
			}
			return toStatus(err)
		}
		if !req.GetFollow() {
			return nil
		}
		select {
		case <-ctx.Done():
			return toStatus(ctx.Err())
		case <-changed:
		}
		if h.s.stopping.Load() {
			return toStatus(errShuttingDown)
		}
	}
}

func (h *logServer) VerifySession(ctx context.Context, req *pb.VerifySessionRequest) (*pb.VerifySessionResponse, error) {
	ss, err := h.s.lookupName(ctx, "name", req.GetName())
	if err != nil {
		return nil, toStatus(err)
	}
	lg, err := ss.readLog()
	if err != nil {
		return nil, toStatus(err)
	}
	rr := newRerun()
	if err := lg.Records(0, rr.Feed); err != nil {
		if errors.Is(err, store.ErrClosed) {
			if _, e := ss.readLog(); e != nil {
				return nil, toStatus(e)
			}
		}
		return nil, toStatus(errorf(kindDataLoss, "re-running %s: %v", ss.name, err))
	}
	// A final input without its output is a call still in flight.
	return &pb.VerifySessionResponse{
		Identical:       rr.Diff == nil,
		RecordsChecked:  rr.Records,
		FirstDifference: rr.Diff,
	}, nil
}
