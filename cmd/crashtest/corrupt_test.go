package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// A damage is one way a log file gets hurt, at an offset chosen by rng.
type damage struct {
	name string
	// hurt returns the damaged file. frames are the end offsets of the
	// file's frames; the header is the first 32 bytes.
	hurt func(rng *rand.Rand, file []byte, frames []int) []byte
}

const headerLen = 32

// afterStart is a random offset in the frames after the start record, so
// that the session has something left to restore.
func afterStart(rng *rand.Rand, file []byte, frames []int) int {
	return frames[0] + rng.IntN(len(file)-frames[0])
}

var damages = []damage{
	{"clean", func(_ *rand.Rand, f []byte, _ []int) []byte { return f }},
	{"torn tail", func(rng *rand.Rand, f []byte, fr []int) []byte { return f[:afterStart(rng, f, fr)] }},
	{"flipped bit", func(rng *rand.Rand, f []byte, fr []int) []byte {
		f[afterStart(rng, f, fr)] ^= 1 << rng.IntN(8)
		return f
	}},
	{"zeroed block", func(rng *rand.Rand, f []byte, fr []int) []byte {
		// A 512-byte sector that never made it to disk.
		at := afterStart(rng, f, fr) &^ 511
		at = max(at, fr[0])
		clear(f[at:min(at+512, len(f))])
		return f
	}},
	{"garbage tail", func(rng *rand.Rand, f []byte, _ []int) []byte {
		g := make([]byte, 1+rng.IntN(200))
		for i := range g {
			g[i] = byte(rng.Uint32())
		}
		g[0] |= 1
		return append(f, g...)
	}},
	{"truncated header", func(rng *rand.Rand, f []byte, _ []int) []byte { return f[:1+rng.IntN(headerLen-1)] }},
	{"flipped bit in header", func(rng *rand.Rand, f []byte, _ []int) []byte {
		f[rng.IntN(headerLen)] ^= 1 << rng.IntN(8)
		return f
	}},
	{"flipped bit in start record", func(rng *rand.Rand, f []byte, fr []int) []byte {
		f[headerLen+12+rng.IntN(fr[0]-headerLen-12)] ^= 1 << rng.IntN(8)
		return f
	}},
}

// frameEnds parses a log file's frame layout (store/filestore/doc.go):
// after the 32-byte header, frames of an 8-byte length word (56-bit
// length, pad in the top byte), a 4-byte CRC, the payload and the pad.
func frameEnds(f []byte) []int {
	var ends []int
	for off := headerLen; off+8 <= len(f); {
		w := binary.LittleEndian.Uint64(f[off:])
		n, pad := int(w&(1<<56-1)), int(w>>56)
		off += 12 + n + pad
		if off > len(f) {
			break
		}
		ends = append(ends, off)
	}
	return ends
}

// The rule: a log damaged anywhere (a torn tail, a flipped bit, a zeroed
// sector, garbage after the end, a truncated or flipped header, a damaged
// start record) never stops the server or makes it panic. It keeps every
// good record before the first damaged byte, re-runs them identically,
// and reports the damage: Session.restore says truncated, how many bytes
// were dropped and why, and the server's log names the session. A log
// whose header or start record is unreadable keeps its session as broken
// (listed, restore.unreadable, DATA_LOSS on use, deletable), never
// silently dropped. After the repair, the session takes new inputs and a
// second restart finds it clean.
func TestDamagedLogsRestoreGoodRecords(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	rounds := 3
	if testing.Short() {
		rounds = 1
	}
	for round := range rounds {
		t.Run(fmt.Sprint("round ", round), func(t *testing.T) { damagedRound(t, rng) })
	}
}

func damagedRound(t *testing.T, rng *rand.Rand) {
	dir := t.TempDir()
	args := []string{"--data-dir", dir, "--fsync", "always"}
	srv, err := startServer(serverBin, args, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.kill) // also on t.Fatal paths; a no-op once stopped
	conn := dial(t, srv)
	h := &harness{res: Result{InFlightErrors: map[codes.Code]int{}}}
	h.conn = conn
	c := clients{s: pb.NewSessionServiceClient(conn), e: pb.NewEndpointServiceClient(conn), g: pb.NewSegmentServiceClient(conn)}
	lc := pb.NewLogServiceClient(conn)
	ctx := context.Background()
	orig := map[string][]*pb.Record{}
	for i, d := range damages {
		id := fmt.Sprintf("d%d", i)
		opts := &pb.SessionOptions{IsnMode: pb.IsnMode_ISN_MODE_FIXED, FixedIsn: 1000, Msl: durationpb.New(time.Second)}
		if _, err := c.s.CreateSession(ctx, &pb.CreateSessionRequest{SessionId: id, Session: &pb.Session{Options: opts}}); err != nil {
			t.Fatal(err)
		}
		ss := &sessState{id: id}
		for range 3 + rng.IntN(4) {
			if err := h.connection(ctx, c, ss, rng); err != nil {
				t.Fatal(err)
			}
		}
		if len(h.res.Failures) > 0 || len(h.res.InFlightErrors) > 0 {
			t.Fatalf("driving %s (%s): %v %v", id, d.name, h.res.Failures, h.res.InFlightErrors)
		}
		orig[id] = records(t, lc, id)
	}
	if err := srv.stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	conn.Close()

	type expect struct {
		kept      int  // records kept
		truncated bool // the file did not end on a frame boundary
		broken    bool // the header or the start record is damaged
		firstDiff int
	}
	want := map[string]expect{}
	for i, d := range damages {
		id := fmt.Sprintf("d%d", i)
		path := filepath.Join(dir, id+".log")
		old, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		frames := frameEnds(old)
		if len(frames) != len(orig[id]) {
			t.Fatalf("%s: %d frames in the file, %d records listed", id, len(frames), len(orig[id]))
		}
		hurt := d.hurt(rng, bytes.Clone(old), frames)
		if err := os.WriteFile(path, hurt, 0o600); err != nil {
			t.Fatal(err)
		}
		first := min(len(old), len(hurt)) // first byte that differs
		for j := range first {
			if old[j] != hurt[j] {
				first = j
				break
			}
		}
		e := expect{firstDiff: first}
		for _, end := range frames {
			if end <= first {
				e.kept++
			}
		}
		boundary := headerLen
		if e.kept > 0 {
			boundary = frames[e.kept-1]
		}
		e.truncated = len(hurt) != boundary
		e.broken = first < frames[0] && !bytes.Equal(old, hurt)
		want[id] = e
		t.Logf("%s: %-27s first damaged byte %5d of %5d (file now %5d bytes): expect %d of %d records kept, truncated %v, broken %v",
			id, d.name, first, len(old), len(hurt), e.kept, len(frames), e.truncated, e.broken)
	}

	srv, err = startServer(serverBin, args, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.kill) // also on t.Fatal paths; a no-op once stopped
	defer srv.stop(30 * time.Second)
	conn = dial(t, srv)
	defer conn.Close()
	sc, lc := pb.NewSessionServiceClient(conn), pb.NewLogServiceClient(conn)
	listed := map[string]*pb.Session{}
	lr, err := sc.ListSessions(ctx, &pb.ListSessionsRequest{PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range lr.Sessions {
		listed[strings.TrimPrefix(s.Name, "sessions/")] = s
	}
	logs := srv.logs.String()
	for i, d := range damages {
		id := fmt.Sprintf("d%d", i)
		e := want[id]
		s := listed[id]
		if s == nil {
			t.Errorf("%s (%s): not listed after restart", id, d.name)
			continue
		}
		st := s.GetRestore()
		if e.broken {
			if st == nil || !st.Unreadable || st.Damage == "" {
				t.Errorf("%s (%s): restore %v, want unreadable with the damage", id, d.name, st)
			}
			if _, err := sc.GetSession(ctx, &pb.GetSessionRequest{Name: "sessions/" + id}); status.Code(err) != codes.DataLoss {
				t.Errorf("%s (%s): GetSession %v, want DATA_LOSS", id, d.name, err)
			}
			if !strings.Contains(logs, "session=sessions/"+id) {
				t.Errorf("%s (%s): the server's log does not name the session", id, d.name)
			}
			if _, err := sc.DeleteSession(ctx, &pb.DeleteSessionRequest{Name: "sessions/" + id}); err != nil {
				t.Errorf("%s (%s): deleting a broken session: %v", id, d.name, err)
			}
			continue
		}
		if e.truncated {
			if st == nil || !st.Truncated || st.Damage == "" || st.DroppedBytes <= 0 || !st.Identical {
				t.Errorf("%s (%s): restore %v, want truncated, identical, with the damage and the bytes dropped", id, d.name, st)
			}
			if !strings.Contains(logs, "session=sessions/"+id) {
				t.Errorf("%s (%s): the server's log does not name the session", id, d.name)
			}
		} else if st != nil && (st.Truncated || !st.Identical) {
			t.Errorf("%s (%s): restore %v, want clean", id, d.name, st)
		}
		got := records(t, lc, id)
		if len(got) < e.kept {
			t.Errorf("%s (%s): %d records after restart, want the %d good ones", id, d.name, len(got), e.kept)
			continue
		}
		for j := range e.kept {
			if !proto.Equal(got[j], orig[id][j]) {
				t.Errorf("%s (%s): record %d differs after restart:\n got %v\nwant %v", id, d.name, j, got[j], orig[id][j])
				break
			}
		}
		// At most one record more: the re-run's output of a final input.
		if extra := got[e.kept:]; len(extra) > 1 || len(extra) == 1 && extra[0].Kind != pb.RecordKind_RECORD_KIND_OUTPUT {
			t.Errorf("%s (%s): %d records after the %d good ones", id, d.name, len(extra), e.kept)
		}
		v, err := lc.VerifySession(ctx, &pb.VerifySessionRequest{Name: "sessions/" + id})
		if err != nil || !v.Identical {
			t.Errorf("%s (%s): VerifySession %v %v", id, d.name, v, err)
		}
		// The repaired log takes new inputs.
		if _, err := sc.AdvanceClock(ctx, &pb.AdvanceClockRequest{Name: "sessions/" + id, Target: &pb.AdvanceClockRequest_By{By: durationpb.New(time.Second)}}); err != nil {
			t.Errorf("%s (%s): AdvanceClock after repair: %v", id, d.name, err)
		}
	}
	if srv.panicked() {
		t.Fatalf("the server panicked:\n%s", logs)
	}

	// A second restart finds every log clean.
	if err := srv.stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	srv, err = startServer(serverBin, args, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.kill) // also on t.Fatal paths; a no-op once stopped
	conn2 := dial(t, srv)
	defer conn2.Close()
	lr, err = pb.NewSessionServiceClient(conn2).ListSessions(ctx, &pb.ListSessionsRequest{PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range lr.Sessions {
		if st := s.GetRestore(); st != nil && (st.Truncated || !st.Identical || st.Unreadable) {
			t.Errorf("second restart: %s: %v", s.Name, st)
		}
	}
}

func dial(t *testing.T, srv *server) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(srv.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// records lists a session's whole log.
func records(t *testing.T, lc pb.LogServiceClient, id string) []*pb.Record {
	t.Helper()
	var all []*pb.Record
	tok := ""
	for {
		r, err := lc.ListRecords(context.Background(), &pb.ListRecordsRequest{Parent: "sessions/" + id, PageSize: 1000, PageToken: tok})
		if err != nil {
			t.Fatalf("ListRecords %s: %v", id, err)
		}
		all = append(all, r.Records...)
		if tok = r.NextPageToken; tok == "" {
			return all
		}
	}
}
