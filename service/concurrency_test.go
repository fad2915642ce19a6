package service

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// TestConcurrentSessions drives many sessions at once (and several callers
// on each), with readers and a watcher alongside, then restarts and checks
// every session re-runs identically. Run with -race.
func TestConcurrentSessions(t *testing.T) {
	e := newEnv(t, Config{})
	const sessions, callers, rounds = 8, 4, 10
	for i := range sessions {
		s := e.createSession(fmt.Sprintf("c%d", i), fixedISNOptions(1000)).Name
		e.listen(s, server)
	}
	c := ctx(t)
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			e.sessions.ListSessions(c, &pb.ListSessionsRequest{})
			e.endpoints.ListEndpoints(c, &pb.ListEndpointsRequest{Parent: "sessions/c0"})
			e.logs.VerifySession(c, &pb.VerifySessionRequest{Name: "sessions/c1"})
			e.segments.ListSegments(c, &pb.ListSegmentsRequest{Parent: "sessions/c2"})
		}
	})
	w, err := e.segments.WatchSegments(c, &pb.WatchSegmentsRequest{Parent: "sessions/c3", IncludeInbound: true})
	if err != nil {
		t.Fatal(err)
	}
	readers.Go(func() {
		for {
			if _, err := w.Recv(); err != nil {
				return
			}
		}
	})

	var wg sync.WaitGroup
	for i := range sessions {
		s := fmt.Sprintf("sessions/c%d", i)
		for j := range callers {
			wg.Go(func() {
				for k := range rounds {
					src := fmt.Sprintf("10.0.%d.%d:%d", j, k, 1000+k)
					_, err := e.segments.SubmitSegment(c, &pb.SubmitSegmentRequest{Parent: s,
						Segment: &pb.SubmitSegmentRequest_Fields{Fields: seg(src, server, 100, 0, []string{"SYN"}, "")}})
					if err == nil {
						_, err = e.segments.SubmitSegment(c, &pb.SubmitSegmentRequest{Parent: s,
							Segment: &pb.SubmitSegmentRequest_Fields{Fields: seg(src, server, 101, 1001, []string{"ACK"}, "data")}})
					}
					if err == nil && k%3 == 0 {
						_, err = e.sessions.AdvanceClock(c, &pb.AdvanceClockRequest{Name: s, Target: &pb.AdvanceClockRequest_By{By: durationpb.New(10 * time.Millisecond)}})
					}
					if err != nil {
						t.Errorf("%s: %v", s, err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(stop)
	for i := range sessions {
		s := fmt.Sprintf("sessions/c%d", i)
		ls := must[*pb.ListEndpointsResponse](t)(e.endpoints.ListEndpoints(c, &pb.ListEndpointsRequest{Parent: s, PageSize: 1000}))
		if len(ls.Endpoints) != 1+callers*rounds {
			t.Errorf("%s has %d endpoints, want %d", s, len(ls.Endpoints), 1+callers*rounds)
		}
	}
	before := e.snapshot()
	e.restart()
	readers.Wait()
	after := e.snapshot()
	for name, b := range before {
		if !protoEqual(after[name], b) {
			t.Errorf("%s differs after restart", name)
		}
	}
	for i := range sessions {
		if v := e.verify(fmt.Sprintf("sessions/c%d", i)); !v.Identical {
			t.Errorf("c%d: %v", i, v)
		}
	}
}
