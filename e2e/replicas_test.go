package e2e

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tcpstated/tcpstated/fsm"
	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
	"github.com/tcpstated/tcpstated/internal/pgtest"
)

// replicaFlags run a server as a replica on the database at url with a
// short lease, so the test need not wait long for takeovers.
func replicaFlags(url string) []string {
	return []string{"--store", url, "--lease-ttl", "1s", "--lease-renew", "250ms", "--takeover-interval", "200ms"}
}

// metric reads one counter or gauge from a server's /metrics.
func (s *server) metric(name string) float64 {
	s.t.Helper()
	_, b := s.do("GET", "/metrics", "")
	m := regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(name)+`(?:\{[^}]*\})? (\S+)$`).FindAllStringSubmatch(string(b), -1)
	var sum float64
	for _, x := range m {
		v, _ := strconv.ParseFloat(x[1], 64)
		sum += v
	}
	return sum
}

// eventually retries call, each try with a deadline of a second (a call
// forwarded to a paused replica waits), until it succeeds or 15 s pass.
func eventually(t *testing.T, what string, call func(context.Context) error) time.Duration {
	t.Helper()
	start := time.Now()
	var err error
	for time.Since(start) < 15*time.Second {
		c, cancel := context.WithTimeout(context.Background(), time.Second)
		err = call(c)
		cancel()
		if err == nil {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: still failing after 15 s: %v", what, err)
	return 0
}

// TestReplicasForwardAndTakeOver: two replicas on one PostgreSQL. A call
// to the replica that does not own a session is forwarded to the owner;
// when the owner is SIGKILLed, the other takes the session over by
// replaying its log and the connection carries on where it was, its log
// verifying as identical; the metrics count the forward and the takeover.
func TestReplicasForwardAndTakeOver(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.URL(pg.NewDB(t))
	a := startServer(t, t.TempDir(), replicaFlags(url)...)
	b := startServer(t, t.TempDir(), replicaFlags(url)...)

	s := a.createSession("moving", fixedISN())
	a.listen(s, "l", listenAddr)
	// On b, which does not own it: forwarded to a.
	r := b.submit(s, fields(peer, listenAddr, 100, 0, "", "SYN"))
	if len(r.Outputs.GetSegments()) != 1 || !strings.Contains(strings.Join(r.Outputs.Segments[0].GetFlags(), ","), "SYN") {
		t.Fatalf("forwarded SYN: %v", r.Outputs)
	}
	if got := b.metric("tcpstated_replica_forwards_total"); got < 1 {
		t.Fatalf("b forwarded %v calls", got)
	}
	if got := a.metric("tcpstated_sessions"); got != 1 {
		t.Fatalf("a owns %v sessions", got)
	}
	// Streams are relayed too: a bidirectional ExchangeSegments (a SYN on
	// a closed port gets its RST back) and a server-streaming
	// StreamRecords, both through b.
	ex, err := b.segments.ExchangeSegments(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	syn := fsm.Segment{SrcPort: 41000, DstPort: 9, Seq: 7, Flags: fsm.FlagSYN, Window: 1000}
	for i := range 2 {
		if err := ex.Send(&pb.ExchangeSegmentsRequest{Parent: s, IpPackets: [][]byte{fsm.AppendPacket(nil, netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.1"), &syn)}}); err != nil {
			t.Fatal(err)
		}
		r, err := ex.Recv()
		if err != nil || r.Processed != 1 || len(r.Outputs.GetSegments()) != 1 || !slices.Contains(r.Outputs.Segments[0].Flags, "RST") {
			t.Fatalf("forwarded exchange %d: %v, %v", i, r, err)
		}
		syn.SrcPort++
	}
	ex.CloseSend()
	if _, err := ex.Recv(); err != io.EOF {
		t.Fatalf("forwarded exchange after CloseSend: %v", err)
	}
	rs, err := b.logsvc.StreamRecords(ctx(t), &pb.StreamRecordsRequest{Parent: s})
	if err != nil {
		t.Fatal(err)
	}
	var streamed int
	for {
		r, err := rs.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("forwarded StreamRecords: %v", err)
		}
		streamed += len(r.Records)
	}
	if streamed < 5 {
		t.Fatalf("forwarded StreamRecords gave %d records", streamed)
	}

	a.kill()
	took := eventually(t, "the session on b after a was killed", func(c context.Context) error {
		_, err := b.sessions.GetSession(c, &pb.GetSessionRequest{Name: s})
		return err
	})
	t.Logf("session served again by b %v after a was killed", took.Round(time.Millisecond))
	b.submit(s, fields(peer, listenAddr, 101, 1001, "after the takeover", "ACK"))
	eps, err := b.endpoints.ListEndpoints(ctx(t), &pb.ListEndpointsRequest{Parent: s})
	if err != nil {
		t.Fatal(err)
	}
	var established bool
	for _, ep := range eps.Endpoints {
		established = established || ep.State == pb.State_STATE_ESTABLISHED
	}
	if !established {
		t.Fatalf("after the takeover no connection is ESTABLISHED: %v", eps.Endpoints)
	}
	v, err := b.logsvc.VerifySession(ctx(t), &pb.VerifySessionRequest{Name: s})
	if err != nil || !v.Identical {
		t.Fatalf("verify after the takeover: %v, %v", v, err)
	}
	if got := b.metric("tcpstated_replica_takeovers_total"); got != 1 {
		t.Fatalf("b took %v sessions over", got)
	}
}

// TestPausedReplicaIsFenced: a replica stopped (SIGSTOP) past its lease
// loses its session to another; when it resumes it serves nothing from
// memory (its lease lapsed; an append would be fenced by the database),
// hands the session over and from then on forwards calls to the new
// owner; nothing it refused is in the log.
func TestPausedReplicaIsFenced(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.URL(pg.NewDB(t))
	a := startServer(t, t.TempDir(), replicaFlags(url)...)
	b := startServer(t, t.TempDir(), replicaFlags(url)...)
	s := a.createSession("paused", fixedISN())
	a.listen(s, "l", listenAddr)
	a.establish(s, peer, "before")

	a.Signal(syscall.SIGSTOP)
	eventually(t, "b taking the session over", func(c context.Context) error {
		_, err := b.sessions.GetSession(c, &pb.GetSessionRequest{Name: s})
		return err
	})
	b.submit(s, fields(peer, listenAddr, 107, 1001, "on b", "ACK"))
	a.Signal(syscall.SIGCONT)

	// a held the session when it was stopped. Its first write after
	// resuming is refused (its lease lapsed, or the database fences the
	// append), or, if a has already learnt that b took the session,
	// forwarded to b and applied there.
	seq := uint32(111)
	_, err := a.segments.SubmitSegment(ctx(t), &pb.SubmitSegmentRequest{Parent: s, Segment: fields(peer, listenAddr, seq, 1001, "maybe", "ACK")})
	staleApplied := err == nil
	if err != nil && status.Code(err) != codes.Unavailable {
		t.Fatalf("write on the paused replica: %v", err)
	}
	if staleApplied {
		seq += 5
	}
	eventually(t, "a forwarding to b", func(c context.Context) error {
		_, err := a.segments.SubmitSegment(c, &pb.SubmitSegmentRequest{Parent: s, Segment: fields(peer, listenAddr, seq, 1001, "via a", "ACK")})
		return err
	})
	if got := a.metric("tcpstated_replica_fenced_appends_total") + a.metric("tcpstated_replica_handovers_total"); got < 1 {
		t.Fatalf("a counted %v fenced appends and handovers", got)
	}
	recs, err := b.logsvc.ListRecords(ctx(t), &pb.ListRecordsRequest{Parent: s, PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	for _, r := range recs.Records {
		text.WriteString(r.String())
	}
	if strings.Contains(text.String(), "maybe") != staleApplied || !strings.Contains(text.String(), "via a") {
		t.Fatalf("the log holds a refused write, or lacks an acknowledged one (first write acknowledged: %v)", staleApplied)
	}
	v, err := b.logsvc.VerifySession(ctx(t), &pb.VerifySessionRequest{Name: s})
	if err != nil || !v.Identical {
		t.Fatalf("verify: %v, %v", v, err)
	}
}

// TestLogToolsOnPostgres: `tcpstated log dump` and `log verify` read a log
// in PostgreSQL (--store or TCPSTATED_STORE) as they read a file, and a
// record changed in the database is reported as damage, never hidden.
func TestLogToolsOnPostgres(t *testing.T) {
	pg := pgtest.Start(t)
	db := pg.NewDB(t)
	url := pg.URL(db)
	a := startServer(t, t.TempDir(), replicaFlags(url)...)
	s := a.createSession("tools", fixedISN())
	a.listen(s, "l", listenAddr)
	a.establish(s, peer, "hello")
	a.stop()

	run := func(env string, args ...string) (string, int) {
		cmd := exec.Command(serverBin, args...)
		cmd.Env = append(os.Environ(), "TCPSTATED_STORE="+env)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	if out, code := run("", "log", "verify", "--store="+url, "tools"); code != 0 || !strings.Contains(out, "outputs: identical") {
		t.Fatalf("log verify --store: exit %d\n%s", code, out)
	}
	out, code := run(url, "log", "dump", "tools")
	if code != 0 || !strings.Contains(out, "101:106(5)") {
		t.Fatalf("log dump with TCPSTATED_STORE: exit %d\n%s", code, out)
	}
	if o, err := pg.Psql(db, "UPDATE records SET frame = set_byte(frame, 14, get_byte(frame, 14) # 1) WHERE log = 'tools' AND idx = 2"); err != nil {
		t.Fatalf("%v: %s", err, o)
	}
	if out, code := run(url, "log", "verify", "tools"); code != 1 || !strings.Contains(out, "damaged") || !strings.Contains(out, "checksum mismatch") {
		t.Fatalf("log verify of a damaged log: exit %d\n%s", code, out)
	}
}

// TestPostgresNeverModeKeepsUp: with --fsync=never appends do not wait for
// their commit, so streams as fast as they can go must still be held back
// (a bounded commit queue per log): other calls are served meanwhile and a
// SIGTERM stops the server promptly, every queued record committed.
func TestPostgresNeverModeKeepsUp(t *testing.T) {
	pg := pgtest.Start(t)
	a := startServer(t, t.TempDir(), "--store", pg.URL(pg.NewDB(t)), "--fsync", "never")
	for k := range 4 {
		s := a.createSession(fmt.Sprintf("fast-%d", k), fixedISN())
		ex, err := a.segments.ExchangeSegments(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for i := 0; ; i++ {
				var pk [][]byte
				for j := range 64 {
					syn := fsm.Segment{SrcPort: uint16(1000 + (i*64+j)%60000), DstPort: 9, Seq: 7, Flags: fsm.FlagSYN, Window: 1000}
					pk = append(pk, fsm.AppendPacket(nil, netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.1"), &syn))
				}
				if ex.Send(&pb.ExchangeSegmentsRequest{Parent: s, IpPackets: pk}) != nil {
					return
				}
				if _, err := ex.Recv(); err != nil {
					return
				}
			}
		}()
	}
	time.Sleep(2 * time.Second)
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := a.sessions.CreateSession(c, &pb.CreateSessionRequest{SessionId: "meanwhile"}); err != nil {
		t.Fatalf("a call while streams run: %v", err)
	}
	start := time.Now()
	a.stop()
	t.Logf("stopped %v after SIGTERM", time.Since(start).Round(time.Millisecond))
}
