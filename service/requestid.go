package service

import (
	"context"
	"time"

	"google.golang.org/protobuf/proto"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
	"github.com/tcpstated/tcpstated/service/machine"
)

// Request IDs (AIP-155) make retries of mutating calls safe. A call that
// carries a request_id logs it with its input (Input.request_id); a repeat
// of an ID the session holds is answered without running again: from
// memory with the first response while this process has it, or else (after
// a restart, or once it has been evicted) rebuilt from the logged input and
// outputs. Nothing is appended either way.

// maxRequestIDLen bounds a request ID.
const maxRequestIDLen = 128

// keptResponses is how many first responses a session keeps in memory;
// older repeats are answered from the log.
const keptResponses = 1024

// reqEntry is one request ID a session has seen.
type reqEntry struct {
	done  chan struct{} // closed when the first call has finished
	resp  proto.Message // the first response; nil once evicted or when read from the log
	index uint64        // the input record's index, when logged
	inLog bool          // the ID was read back from the log
}

// checkRequestID validates a request_id field (empty: none given).
func checkRequestID(id string) error {
	if id == "" {
		return nil
	}
	if len(id) > maxRequestIDLen {
		return invalidf("request_id: %d characters is above the limit of %d", len(id), maxRequestIDLen)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x21 || c > 0x7e {
			return invalidf("request_id: %q has a character that is not printable ASCII", id)
		}
	}
	return nil
}

// withRequestID sets in's request ID and returns in.
func withRequestID(in *pb.Input, id string) *pb.Input {
	in.RequestId = id
	return in
}

// loadRequestIDsLocked reads the request IDs of the session's log once
// (a session restored or reloaded from its log).
func (s *session) loadRequestIDsLocked() error {
	if s.reqs != nil {
		return nil
	}
	ids := map[string]*reqEntry{}
	err := s.log.Records(0, func(i uint64, payload []byte) error {
		rec := &pb.LogRecord{}
		if err := proto.Unmarshal(payload, rec); err != nil {
			return errorf(kindDataLoss, "record %d of %s does not decode: %v", i, s.name, err)
		}
		if id := rec.GetInput().GetRequestId(); id != "" {
			e := &reqEntry{done: make(chan struct{}), index: rec.Index, inLog: true}
			close(e.done)
			ids[id] = e
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.reqs = ids
	return nil
}

// loggedCall is a call read back from the log: its input, the time it was
// applied and what it produced.
type loggedCall struct {
	in      *pb.Input
	time    time.Duration
	outputs *pb.Outputs
	result  *pb.CallResult
}

func (s *session) loggedCall(index uint64) (*loggedCall, error) {
	lc := &loggedCall{outputs: &pb.Outputs{}}
	err := s.records(index, func(rec *pb.LogRecord) error {
		switch {
		case rec.Index == index:
			lc.in, lc.time = rec.GetInput(), rec.GetTime().AsDuration()
		case rec.Index == index+1:
			if d := rec.GetOutput(); d != nil {
				v := machine.RecordView(rec)
				lc.outputs = v.GetOutput()
				lc.result = d.Result
			}
			return errStop
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if lc.in == nil {
		return nil, errorf(kindDataLoss, "session %s: the input record %d of a logged request_id is missing", s.name, index)
	}
	return lc, nil
}

// answer runs call, a mutating call with request ID id, at most once per
// ID and session. A repeat waits for the first call and returns its
// response, or fromLog's rebuilding of it from the log. A first call that
// failed leaves no trace: its repeat runs again.
func answer[T proto.Message](ctx context.Context, ss *session, id string, call func() (T, error), fromLog func(*loggedCall) T) (T, error) {
	var zero T
	if err := checkRequestID(id); err != nil {
		return zero, toStatus(err)
	}
	if id == "" {
		return call()
	}
	for {
		ss.mu.Lock()
		if err := ss.usableLocked(); err != nil {
			ss.mu.Unlock()
			return zero, toStatus(err)
		}
		if err := ss.loadRequestIDsLocked(); err != nil {
			ss.mu.Unlock()
			return zero, toStatus(err)
		}
		e := ss.reqs[id]
		if e == nil {
			e = &reqEntry{done: make(chan struct{})}
			ss.reqs[id] = e
			ss.reqInflight++
			ss.mu.Unlock()
			resp, err := call()
			ss.mu.Lock()
			ss.reqInflight--
			if err != nil {
				delete(ss.reqs, id)
			} else {
				e.resp = resp
				ss.reqKept++
			}
			close(e.done)
			// Past keptResponses, the responses are dropped and the IDs read
			// back from the log on the next call that has one.
			if ss.reqKept > keptResponses && ss.reqInflight == 0 {
				ss.reqs, ss.reqKept = nil, 0
			}
			ss.mu.Unlock()
			return resp, err
		}
		ss.mu.Unlock()
		select {
		case <-e.done:
		case <-ctx.Done():
			return zero, toStatus(ctx.Err())
		}
		ss.mu.Lock()
		resp, again := e.resp, ss.reqs[id] != e
		ss.svc.metrics.repeats.Inc()
		ss.mu.Unlock()
		if again {
			continue // the first call failed: this one runs
		}
		if resp != nil {
			return proto.Clone(resp).(T), nil
		}
		lc, err := ss.loggedCall(e.index)
		if err != nil {
			return zero, toStatus(err)
		}
		ss.mu.Lock()
		r := fromLog(lc)
		ss.mu.Unlock()
		return r, nil
	}
}

// sessionByRequest is the caller's session that a CreateSession with
// request ID id made, if it still exists.
func (s *Service) sessionByRequest(owner, id string) *session {
	var found *session
	s.sessions.Range(func(k, v any) bool {
		ss := v.(*session)
		if k.(sessionKey).tenant == owner && ss.createReq == id {
			found = ss
			return false
		}
		return true
	})
	return found
}
