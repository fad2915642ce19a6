package service

import (
	"sort"
	"sync"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
	"github.com/tcpstated/tcpstated/service/machine"
)

// Time travel: an endpoint as it was after record N of its session's log
// (GetEndpointRequest.at_record). The log holds every input and the engine
// is deterministic, so re-running the inputs up to N rebuilds the state
// exactly, as restoring a session does. Re-running from the start for every
// question would cost a long session's whole log each time; instead the
// re-run keeps a snapshot (a clone of the machine) every so many records
// as it goes, and a question re-runs only from the nearest snapshot at or
// before N. A log only grows, so snapshots stay valid for the session's
// life.

// snapshotEvery is the first spacing of snapshots, in records (a
// variable so that tests can take many).
var snapshotEvery uint64 = 1024

const (
	// maxSnapshots bounds a session's snapshots: past it, every other one
	// is dropped and the spacing doubles, so memory stays bounded and a
	// question re-runs at most about 2·len/maxSnapshots records.
	maxSnapshots = 128
)

// snapshot is a machine after the records before next were applied.
type snapshot struct {
	next uint64
	m    *machine.Machine
}

// timeTravel holds a session's snapshots.
type timeTravel struct {
	mu    sync.Mutex
	every uint64
	snaps []snapshot // by next, ascending
}

// add keeps a copy of m, which has applied the records before next.
func (tt *timeTravel) add(next uint64, m *machine.Machine) {
	if n := len(tt.snaps); n > 0 && tt.snaps[n-1].next >= next {
		return
	}
	tt.snaps = append(tt.snaps, snapshot{next: next, m: m.Clone()})
	if len(tt.snaps) > maxSnapshots {
		kept := tt.snaps[:0]
		for i, s := range tt.snaps {
			if i%2 == 1 {
				kept = append(kept, s)
			}
		}
		clear(tt.snaps[len(kept):])
		tt.snaps = kept
		tt.every *= 2
	}
}

// machineAt returns a machine in the state after log record n, for the
// caller to read (it is nobody else's). n must be a record of the log.
func (ss *session) machineAt(n uint64) (*machine.Machine, error) {
	tt := &ss.travel
	tt.mu.Lock()
	defer tt.mu.Unlock()
	if tt.every == 0 {
		tt.every = snapshotEvery
	}
	var (
		rr   = newRerun()
		from uint64
	)
	// The last snapshot that has applied no record past n.
	if i := sort.Search(len(tt.snaps), func(i int) bool { return tt.snaps[i].next > n+1 }); i > 0 {
		s := tt.snaps[i-1]
		rr.Machine, from = s.m.Clone(), s.next
	}
	err := ss.records(from, func(rec *pb.LogRecord) error {
		in, err := startOrInput(rr, ss.name, rec)
		if err != nil {
			return err
		}
		if in != nil {
			// As restoring does: the live run accepted this input (refused
			// inputs are not logged), and whatever the re-run says is what
			// the state became.
			_, _ = rr.Machine.Apply(in)
			rd := rr.Machine.Engine.Ready()
			rr.Machine.Observe(&rd)
		}
		if next := rec.Index + 1; next%tt.every == 0 {
			tt.add(next, rr.Machine)
		}
		if rec.Index >= n {
			return errStop
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if rr.Machine == nil {
		return nil, errorf(kindDataLoss, "re-running %s: the log has no start record", ss.name)
	}
	return rr.Machine, nil
}

// endpointAt is endpoint eid as it was after log record n.
func (ss *session) endpointAt(name, eid string, n uint64) (*pb.Endpoint, error) {
	ss.mu.Lock()
	records := ss.next
	ss.mu.Unlock()
	if n >= records {
		return nil, invalidf("at_record: %d is past the last record of %s (%d)", n, ss.name, records-1)
	}
	m, err := ss.machineAt(n)
	if err != nil {
		return nil, err
	}
	id, err := m.Resolve(eid)
	if err != nil {
		return nil, errorf(kindNotFound, "endpoint %s did not exist yet after record %d", name, n)
	}
	info, ok := m.Engine.Endpoint(id)
	if !ok {
		return nil, errorf(kindNotFound, "endpoint %s was closed and no longer kept after record %d", name, n)
	}
	return m.EndpointView(&info), nil
}

// startOrInput is the first step of a walk that re-runs a log its own way:
// it builds the machine from the start record, and returns an input
// record's input (nil for any other record).
func startOrInput(rr *machine.Rerun, name string, rec *pb.LogRecord) (*pb.Input, error) {
	switch body := rec.Body.(type) {
	case *pb.LogRecord_Start:
		if err := rr.Begin(body.Start); err != nil {
			return nil, errorf(kindDataLoss, "re-running %s: %v", name, err)
		}
	case *pb.LogRecord_Input:
		if rr.Machine == nil {
			return nil, errorf(kindDataLoss, "re-running %s: record %d comes before the start record", name, rec.Index)
		}
		return body.Input, nil
	}
	return nil, nil
}
