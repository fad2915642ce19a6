package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// TestSIGKILLLosesNoAcknowledgedInput: 16 clients (half gRPC, half REST)
// write data segments concurrently over 48 sessions with the default
// fsync=always; the server is killed with SIGKILL mid-flight. After a
// restart every input a client saw acknowledged is in its session's log,
// every session re-runs identically, and each connection holds exactly the
// bytes its log says it received.
func TestSIGKILLLosesNoAcknowledgedInput(t *testing.T) {
	t.Parallel()
	const (
		writers     = 16
		perWriter   = 3    // sessions per writer
		maxPerCall  = 3000 // bound on each writer's calls (well inside the 64 KiB window)
		minAcked    = 30   // per writer before the kill
		killTimeout = 20 * time.Second
	)
	dir := t.TempDir()
	s := startServer(t, dir)
	sessionName := func(w, j int) string { return fmt.Sprintf("sessions/w%02d-%d", w, j) }
	var setup sync.WaitGroup
	for w := range writers {
		setup.Go(func() {
			for j := range perWriter {
				name := s.createSession(strings.TrimPrefix(sessionName(w, j), "sessions/"), fixedISN())
				s.listen(name, "", listenAddr)
				s.establish(name, peer, "")
			}
		})
	}
	setup.Wait()
	if t.Failed() {
		return
	}

	// acked[w][j] lists the payloads writer w saw acknowledged on session j.
	acked := make([][perWriter][]string, writers)
	var ackedTotal, minWriter atomic.Int64
	enough := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	runCtx, stopWriters := context.WithCancel(context.Background())
	defer stopWriters()
	for w := range writers {
		wg.Go(func() {
			submit := restSubmitter(s.base)
			if w%2 == 0 {
				conn, err := grpc.NewClient(s.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
				if err != nil {
					t.Error(err)
					return
				}
				defer conn.Close()
				submit = grpcSubmitter(pb.NewSegmentServiceClient(conn))
			}
			var seq [perWriter]uint32
			for j := range seq {
				seq[j] = 101
			}
			for k := 0; k < maxPerCall && runCtx.Err() == nil; k++ {
				j := k % perWriter
				payload := fmt.Sprintf("w%02d-s%d-%06d", w, j, k)
				if err := submit(runCtx, sessionName(w, j), seq[j], payload); err != nil {
					return // the server is gone: this one was not acknowledged
				}
				acked[w][j] = append(acked[w][j], payload)
				seq[j] += uint32(len(payload))
				ackedTotal.Add(1)
				if k+1 == minAcked && minWriter.Add(1) == writers {
					once.Do(func() { close(enough) })
				}
			}
		})
	}
	select {
	case <-enough:
		time.Sleep(200 * time.Millisecond) // kill in full flight
	case <-time.After(killTimeout):
		t.Logf("not every writer reached %d acknowledged calls in %v; killing anyway", minAcked, killTimeout)
	}
	s.kill()
	stopWriters()
	wg.Wait()
	t.Logf("%d inputs acknowledged before SIGKILL", ackedTotal.Load())
	if ackedTotal.Load() == 0 {
		t.Fatal("nothing was acknowledged before the kill")
	}

	s = startServer(t, dir)
	for w := range writers {
		for j := range perWriter {
			name := sessionName(w, j)
			logged := loggedPayloads(t, s, name)
			in := map[string]bool{}
			total := 0
			for _, p := range logged {
				in[p] = true
				total += len(p)
			}
			for _, p := range acked[w][j] {
				if !in[p] {
					t.Errorf("%s: the acknowledged input %q is not in the log after SIGKILL", name, p)
				}
			}
			v, err := s.logsvc.VerifySession(ctx(t), &pb.VerifySessionRequest{Name: name})
			if err != nil || !v.Identical {
				t.Errorf("VerifySession %s: %v, %v", name, v, err)
			}
			g, err := s.sessions.GetSession(ctx(t), &pb.GetSessionRequest{Name: name})
			if err != nil {
				t.Fatal(err)
			}
			if r := g.Session.Restore; r == nil || !r.Identical || r.Unreadable {
				t.Errorf("%s: Session.restore %v", name, r)
			} else if r.Truncated {
				t.Logf("%s: a torn tail was cut: %v", name, r)
			}
			ge, err := s.endpoints.GetEndpoint(ctx(t), &pb.GetEndpointRequest{Name: name + "/endpoints/2"})
			ep := ge.GetEndpoint()
			if err != nil || ep.StateName != "ESTABLISHED" || int(ep.BytesReadable) != total {
				t.Errorf("%s: after the restart the connection is %v (%v); its log holds %d bytes", name, ep, err, total)
			}
		}
	}
	s.stop()
}

// submitter sends one data segment of the peer to a session's connection.
type submitter func(ctx context.Context, session string, seq uint32, payload string) error

func grpcSubmitter(c pb.SegmentServiceClient) submitter {
	return func(ctx context.Context, session string, seq uint32, payload string) error {
		_, err := c.SubmitSegment(ctx, &pb.SubmitSegmentRequest{Parent: session, Segment: fields(peer, listenAddr, seq, 1001, payload, "ACK")})
		return err
	}
}

func restSubmitter(base string) submitter {
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{}}
	return func(ctx context.Context, session string, seq uint32, payload string) error {
		body := fmt.Sprintf(`{"fields":{"sourceAddress":%q,"destinationAddress":%q,"seq":%d,"ack":1001,"flags":["ACK"],"window":65535,"payloadText":%q}}`,
			peer, listenAddr, seq, payload)
		req, err := http.NewRequestWithContext(ctx, "POST", base+"/v1/"+session+"/segments", strings.NewReader(body))
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
		}
		var r map[string]any
		return json.Unmarshal(b, &r) // a whole response, or not acknowledged
	}
}

// loggedPayloads returns the payloads of the segment inputs in a session's
// log, read page by page with ListRecords.
func loggedPayloads(t *testing.T, s *server, session string) []string {
	t.Helper()
	var out []string
	tok := ""
	for range 1000 {
		r, err := s.logsvc.ListRecords(ctx(t), &pb.ListRecordsRequest{Parent: session, PageSize: 1000, PageToken: tok})
		if err != nil {
			t.Fatalf("ListRecords %s: %v", session, err)
		}
		for _, rec := range r.Records {
			if rec.Kind == pb.RecordKind_RECORD_KIND_INPUT && len(rec.GetSegment().GetPayload()) > 0 {
				out = append(out, string(rec.Segment.Payload))
			}
		}
		if tok = r.NextPageToken; tok == "" {
			return out
		}
	}
	t.Fatalf("ListRecords %s: more than 1000 pages", session)
	return nil
}
