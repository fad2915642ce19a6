package service

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"

	"github.com/tcpstated/tcpstated/store"

	"github.com/tcpstated/tcpstated/store/filestore"
)

func logPath(e *env, id string) string { return filepath.Join(e.dir, id+".log") }

// TestDamagedLogs: a torn tail, a corrupt record and a bad header are each
// reported, never fatal; the server restores what it can.
func TestDamagedLogs(t *testing.T) {
	e := newEnv(t, Config{})
	_, torn := walkthroughOpen(t, e, "torn")
	walkthroughOpen(t, e, "corrupt")
	walkthroughOpen(t, e, "header")
	walkthroughOpen(t, e, "fine")
	full := e.recordCount("sessions/torn")
	e.stop()

	// Torn tail: the last frame loses its end.
	p := logPath(e, "torn")
	fi, _ := os.Stat(p)
	if err := os.Truncate(p, fi.Size()-5); err != nil {
		t.Fatal(err)
	}
	// Corrupt: a byte of a record after the start record flips.
	p = logPath(e, "corrupt")
	b, _ := os.ReadFile(p)
	b[len(b)-16] ^= 0xff // inside the last record, past the start record
	os.WriteFile(p, b, 0o640)
	// Bad header.
	p = logPath(e, "header")
	b, _ = os.ReadFile(p)
	copy(b, "NOTALOG!")
	os.WriteFile(p, b, 0o640)

	// The offline tools see the damage without changing the files.
	for _, id := range []string{"torn", "corrupt"} {
		res, err := VerifyLog(logPath(e, id), fileScan(logPath(e, id)))
		if err != nil || res.Damage == nil || res.OK() {
			t.Errorf("VerifyLog(%s) = %+v, %v; want damage reported", id, res, err)
		}
		var out bytes.Buffer
		if err := DumpLog(&out, fileScan(logPath(e, id))); err == nil || !strings.Contains(out.String(), "damaged after") {
			t.Errorf("DumpLog(%s): err %v, output %q", id, err, out.String())
		}
	}
	if _, err := VerifyLog(logPath(e, "header"), fileScan(logPath(e, "header"))); !errors.Is(err, filestore.ErrBadHeader) {
		t.Errorf("VerifyLog(header): %v, want ErrBadHeader", err)
	}

	e.start()
	reports := map[string]RestoreReport{}
	for _, r := range e.svc.RestoreReports() {
		reports[r.Session] = r
	}
	if r := reports["sessions/torn"]; !r.Truncated || !errors.Is(r.Recovery.Damage, store.ErrTornTail) || r.Err != nil {
		t.Errorf("torn: %+v", r)
	}
	if r := reports["sessions/corrupt"]; !r.Truncated || !errors.Is(r.Recovery.Damage, store.ErrCorrupt) || r.Err != nil {
		t.Errorf("corrupt: %+v", r)
	}
	if r := reports["sessions/header"]; r.Err == nil {
		t.Errorf("header: %+v", r)
	}
	if _, ok := reports["sessions/fine"]; ok {
		t.Errorf("an undamaged log was reported")
	}
	// Session.restore shows the same to clients.
	if r := e.getSession("sessions/torn").Restore; !r.GetTruncated() || r.GetDroppedBytes() <= 0 || r.GetDamage() == "" || !r.GetIdentical() || r.GetUnreadable() {
		t.Errorf("torn: Session.restore %v", r)
	}
	if r := e.getSession("sessions/fine").Restore; r.GetTruncated() || !r.GetIdentical() || r.GetRecords() == 0 {
		t.Errorf("fine: Session.restore %v", r)
	}
	ls := must[*pb.ListSessionsResponse](t)(e.sessions.ListSessions(ctx(t), &pb.ListSessionsRequest{}))
	for _, s := range ls.Sessions {
		if s.Name == "sessions/header" && (!s.Restore.GetUnreadable() || s.Restore.GetDamage() == "" || s.Restore.GetIdentical()) {
			t.Errorf("header: ListSessions shows restore %v", s.Restore)
		}
	}

	// The torn session lost its last record (an output, appended again
	// from the re-run) and otherwise works.
	if n := e.recordCount("sessions/torn"); n != full {
		t.Errorf("torn session has %d records, want %d (the lost output appended again)", n, full)
	}
	if ep := e.endpoint(torn); ep.StateName != "ESTABLISHED" {
		t.Errorf("torn session's connection: %v", ep)
	}
	for _, id := range []string{"torn", "corrupt", "fine"} {
		if v := e.verify("sessions/" + id); !v.Identical {
			t.Errorf("verify %s after recovery: %v", id, v)
		}
	}
	e.submit("sessions/corrupt", seg(client, server, 100, 0, []string{"SYN"}, ""))

	// The session with the bad header is kept, refuses calls with
	// DATA_LOSS, and can be deleted and created again.
	_, err := e.sessions.GetSession(ctx(t), &pb.GetSessionRequest{Name: "sessions/header"})
	wantCode(t, err, codes.DataLoss)
	_, err = e.sessions.CreateSession(ctx(t), &pb.CreateSessionRequest{SessionId: "header"})
	wantCode(t, err, codes.AlreadyExists)
	must[*pb.DeleteSessionResponse](t)(e.sessions.DeleteSession(ctx(t), &pb.DeleteSessionRequest{Name: "sessions/header"}))
	e.createSession("header", nil)
}

// rewriteLog rewrites a session's log (the server stopped), passing every
// record through edit.
func rewriteLog(t *testing.T, dir, id string, edit func(*pb.LogRecord)) {
	t.Helper()
	var recs [][]byte
	f, err := os.Open(filepath.Join(dir, id+".log"))
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	if _, err := filestore.Scan(f, fi.Size(), func(_ uint64, p []byte) error {
		rec := &pb.LogRecord{}
		if err := proto.Unmarshal(p, rec); err != nil {
			return err
		}
		edit(rec)
		b, err := proto.Marshal(rec)
		recs = append(recs, b)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	st, err := filestore.Open(dir, filestore.Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Remove(id); err != nil {
		t.Fatal(err)
	}
	lg, err := st.Create(id)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if _, err := lg.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	lg.Close()
}

// TestDifferenceReported: a log whose outputs the engine does not
// reproduce is restored from the re-run, and the difference is reported
// on start, by VerifySession and by VerifyLog.
func TestDifferenceReported(t *testing.T) {
	e := newEnv(t, Config{})
	walkthroughOpen(t, e, "d")
	e.stop()
	rewriteLog(t, e.dir, "d", func(r *pb.LogRecord) {
		if out := r.GetOutput(); out != nil && r.Index == 4 {
			out.Transitions[0].ToStateName = "SYN-SENT"
		}
	})
	res, err := VerifyLog(logPath(e, "d"), fileScan(logPath(e, "d")))
	if err != nil || res.Identical || res.FirstDifference.GetIndex() != 4 || res.FirstDifference.GetField() != "transitions[0]" {
		t.Fatalf("VerifyLog: %+v, %v", res, err)
	}
	e.start()
	rep := e.svc.RestoreReports()
	if len(rep) != 1 || rep[0].Difference.GetIndex() != 4 {
		t.Fatalf("restore reports: %+v", rep)
	}
	var md metadata.MD
	must[*pb.GetSessionResponse](t)(e.sessions.GetSession(ctx(t), &pb.GetSessionRequest{Name: "sessions/d"}, grpc.Header(&md)))
	if note := md.Get(restoreHeader); len(note) != 1 || !strings.Contains(note[0], "record 4") {
		t.Fatalf("restore note: %q", note)
	}
	if r := e.getSession("sessions/d").Restore; r.GetIdentical() || r.GetFirstDifference().GetIndex() != 4 || r.GetRecords() == 0 || r.GetTruncated() {
		t.Fatalf("Session.restore after a differing re-run: %v", r)
	}
	v := e.verify("sessions/d")
	if v.Identical || v.FirstDifference.GetIndex() != 4 || !strings.Contains(v.FirstDifference.Expected, "SYN-SENT") || !strings.Contains(v.FirstDifference.Actual, "SYN-RECEIVED") {
		t.Fatalf("verify: %v", v)
	}
	if ep := e.endpoint("sessions/d/endpoints/2"); ep.StateName != "ESTABLISHED" {
		t.Fatalf("state after a differing re-run: %v", ep)
	}
}

// TestLogFailureReload: when a log write fails the call fails with
// UNAVAILABLE, and the next call reloads the session from its log.
func TestLogFailureReload(t *testing.T) {
	e := newEnv(t, Config{})
	s, conn := walkthroughOpen(t, e, "fail")
	ss, _ := e.svc.lookup(context.Background(), "fail")
	ss.mu.Lock()
	ss.log.Close() // the next write fails as a broken disk would make it
	ss.mu.Unlock()
	_, err := e.segments.SubmitSegment(ctx(t), &pb.SubmitSegmentRequest{Parent: s,
		Segment: &pb.SubmitSegmentRequest_Fields{Fields: seg(client, server, 106, 1001, []string{"FIN", "ACK"}, "")}})
	wantCode(t, err, codes.Unavailable)
	// The engine had taken the FIN; the log had not. The reload follows the log.
	if ep := e.endpoint(conn); ep.StateName != "ESTABLISHED" {
		t.Fatalf("after reload: %v", ep)
	}
	r := e.submit(s, seg(client, server, 106, 1001, []string{"FIN", "ACK"}, ""))
	if len(r.Outputs.Transitions) == 0 || r.Outputs.Transitions[0].ToStateName != "CLOSE-WAIT" {
		t.Fatalf("FIN after reload: %v", r.Outputs.Transitions)
	}
	if v := e.verify(s); !v.Identical {
		t.Fatalf("verify: %v", v)
	}
}

// TestFailedSessionLogRemoved: a failed session whose log is gone when it
// reloads (another replica took the log over and deleted the session
// there) leaves the registry: it is neither listed nor served any more,
// instead of staying listed and UNAVAILABLE for good.
func TestFailedSessionLogRemoved(t *testing.T) {
	e := newEnv(t, Config{})
	s, _ := walkthroughOpen(t, e, "gone")
	ss, _ := e.svc.lookup(context.Background(), "gone")
	ss.mu.Lock()
	ss.log.Close() // the next write fails
	ss.mu.Unlock()
	_, err := e.segments.SubmitSegment(ctx(t), &pb.SubmitSegmentRequest{Parent: s,
		Segment: &pb.SubmitSegmentRequest_Fields{Fields: seg(client, server, 106, 1001, []string{"FIN", "ACK"}, "")}})
	wantCode(t, err, codes.Unavailable)
	if err := e.svc.store.Remove(ss.file); err != nil {
		t.Fatal(err)
	}
	_, err = e.segments.SubmitSegment(ctx(t), &pb.SubmitSegmentRequest{Parent: s,
		Segment: &pb.SubmitSegmentRequest_Fields{Fields: seg(client, server, 106, 1001, []string{"FIN", "ACK"}, "")}})
	wantCode(t, err, codes.Unavailable)
	l := must[*pb.ListSessionsResponse](t)(e.sessions.ListSessions(ctx(t), &pb.ListSessionsRequest{}))
	if len(l.Sessions) != 0 {
		t.Fatalf("listed after its log was removed: %v", l.Sessions)
	}
	_, err = e.sessions.GetSession(ctx(t), &pb.GetSessionRequest{Name: s})
	wantCode(t, err, codes.NotFound)
}
