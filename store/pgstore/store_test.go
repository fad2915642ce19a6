package pgstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tcpstated/tcpstated/internal/pgtest"
	"github.com/tcpstated/tcpstated/store"
	"github.com/tcpstated/tcpstated/store/filestore"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// newStore opens a store on a fresh database of the shared server.
func newStore(t testing.TB, opts Options) (*Store, string) {
	t.Helper()
	srv := pgtest.Shared(t)
	url := srv.URL(srv.NewDB(t))
	return openStore(t, url, opts), url
}

func openStore(t testing.TB, url string, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func payload(i, n int) []byte {
	b := make([]byte, n)
	for j := range b {
		b[j] = byte(i + j)
	}
	return b
}

func records(t *testing.T, l store.Log) [][]byte {
	t.Helper()
	var out [][]byte
	if err := l.Records(0, func(i uint64, p []byte) error {
		if i != uint64(len(out)) {
			t.Fatalf("record %d after %d", i, len(out))
		}
		out = append(out, append([]byte(nil), p...))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestAppendReopen: records appended and committed come back from a new
// store (another process, as after a restart) byte for byte and in order,
// and the log continues where it ended.
func TestAppendReopen(t *testing.T) {
	s, url := newStore(t, Options{Replica: "a"})
	l, err := s.Create("s1")
	if err != nil {
		t.Fatal(err)
	}
	var want [][]byte
	for i := range 5 {
		p := payload(i, i*37)
		if idx, err := l.Append(p); err != nil || idx != uint64(i) {
			t.Fatalf("append %d: %d, %v", i, idx, err)
		}
		want = append(want, p)
	}
	ps := [][]byte{payload(9, 3), {}, payload(7, 100)}
	if first, last, err := l.AppendBatch(ps); err != nil || first != 5 || last != 7 {
		t.Fatalf("batch: %d..%d, %v", first, last, err)
	}
	if err := l.Durable(7); err != nil {
		t.Fatal(err)
	}
	want = append(want, ps...)
	if got := records(t, l); !equal(got, want) {
		t.Fatalf("records differ")
	}
	var tail [][]byte
	if err := l.Records(6, func(i uint64, p []byte) error {
		tail = append(tail, append([]byte(nil), p...))
		return nil
	}); err != nil || !equal(tail, want[6:]) {
		t.Fatalf("Records(6): %d records, %v", len(tail), err)
	}
	size := l.Size()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t, url, Options{Replica: "a"})
	l2, rep, err := s2.Open("s1")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Truncated || rep.Records != 8 || l2.Len() != 8 || l2.Size() != size {
		t.Fatalf("reopened: %+v len %d size %d (want %d)", rep, l2.Len(), l2.Size(), size)
	}
	if got := records(t, l2); !equal(got, want) {
		t.Fatalf("records differ after reopen")
	}
	if i, err := l2.Append(payload(1, 1)); err != nil || i != 8 {
		t.Fatalf("append after reopen: %d, %v", i, err)
	}
	names, err := s2.List()
	if err != nil || len(names) != 1 || names[0] != "s1" {
		t.Fatalf("list: %v, %v", names, err)
	}
}

func equal(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// TestSameBytesAsFileStore: the same records in a file store and in
// PostgreSQL give the same bytes: the file is the log's Image, so `log
// dump` and `log verify` read either.
func TestSameBytesAsFileStore(t *testing.T) {
	const seed = 0x5eed1234
	s, _ := newStore(t, Options{NewSeed: func() uint32 { return seed }})
	dir := t.TempDir()
	fs, err := filestore.Open(dir, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	pl, err := s.Create("same")
	if err != nil {
		t.Fatal(err)
	}
	fl, err := fs.Create("same")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		p := payload(i, i*i%300)
		for _, l := range []store.Log{pl, fl} {
			if _, err := l.Append(p); err != nil {
				t.Fatal(err)
			}
		}
	}
	fl.Close()
	file, err := os.ReadFile(filepath.Join(dir, "same.log"))
	if err != nil {
		t.Fatal(err)
	}
	// The file's seed is random: rewrite the database copy's header and
	// chain from it by appending the same payloads to a log seeded alike.
	fseed, err := filestore.HeaderSeed(file[:filestore.HeaderSize])
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := newStore(t, Options{NewSeed: func() uint32 { return fseed }})
	pl2, err := s2.Create("same")
	if err != nil {
		t.Fatal(err)
	}
	if err := replayInto(pl, pl2); err != nil {
		t.Fatal(err)
	}
	img, err := s2.Image(context.Background(), "same")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(img, file) {
		t.Fatalf("PostgreSQL image (%d bytes) differs from the file (%d bytes)", len(img), len(file))
	}
	if int64(len(file)) != pl2.Size() {
		t.Fatalf("Size %d, file %d", pl2.Size(), len(file))
	}
	res, err := filestore.Scan(bytes.NewReader(img), int64(len(img)), nil)
	if err != nil || res.Damage != nil || res.Records != 20 {
		t.Fatalf("scan of the image: %+v, %v", res, err)
	}
}

func replayInto(from, to store.Log) error {
	return from.Records(0, func(_ uint64, p []byte) error {
		_, err := to.Append(p)
		return err
	})
}

// TestGroupCommit: concurrent appends to many logs share transactions,
// and each log's records are committed in order.
func TestGroupCommit(t *testing.T) {
	s, _ := newStore(t, Options{})
	const logs, per = 16, 20
	var wg sync.WaitGroup
	errs := make(chan error, logs)
	ls := make([]store.Log, logs)
	for i := range logs {
		l, err := s.Create(fmt.Sprintf("g%d", i))
		if err != nil {
			t.Fatal(err)
		}
		ls[i] = l
		wg.Go(func() {
			for j := range per {
				if idx, err := l.Append(payload(j, 10)); err != nil || idx != uint64(j) {
					errs <- fmt.Errorf("log %d append %d: %d, %v", i, j, idx, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Records != logs*per || st.Rounds >= logs*per {
		t.Fatalf("stats %+v: want %d records in fewer transactions", st, logs*per)
	}
	t.Logf("%d appends in %d transactions", st.Records, st.Rounds)
	for i, l := range ls {
		if n := len(records(t, l)); n != per {
			t.Fatalf("log %d has %d records", i, n)
		}
	}
}

// TestLimits: the file store's limits and errors hold.
func TestLimits(t *testing.T) {
	s, _ := newStore(t, Options{MaxLogSize: filestore.HeaderSize + 3*filestore.FrameSize(100)})
	l, err := s.Create("lim")
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := l.Append(payload(0, 100)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Append(payload(0, 1)); !errors.Is(err, store.ErrLogFull) {
		t.Fatalf("past MaxLogSize: %v", err)
	}
	if _, _, err := l.AppendBatch(nil); !errors.Is(err, store.ErrEmptyBatch) {
		t.Fatalf("empty batch: %v", err)
	}
	if _, err := l.Append(make([]byte, store.MaxRecordSize+1)); !errors.Is(err, store.ErrTooLarge) {
		t.Fatalf("huge record: %v", err)
	}
	if l.Len() != 3 {
		t.Fatalf("refused appends wrote: len %d", l.Len())
	}
	for _, c := range []struct {
		name string
		err  error
	}{
		{"lim", store.ErrBusy}, // open here
		{"Bad_Name", store.ErrInvalidName},
	} {
		if _, err := s.Create(c.name); !errors.Is(err, c.err) {
			t.Errorf("Create(%q): %v, want %v", c.name, err, c.err)
		}
	}
	if _, _, err := s.Open("lim"); !errors.Is(err, store.ErrBusy) {
		t.Errorf("Open of an open log: %v", err)
	}
	if _, _, err := s.Open("nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Open of a missing log: %v", err)
	}
	if err := s.Remove("lim"); !errors.Is(err, store.ErrBusy) {
		t.Errorf("Remove of an open log: %v", err)
	}
	l.Close()
	if _, err := l.Append(nil); !errors.Is(err, store.ErrClosed) {
		t.Errorf("append after close: %v", err)
	}
	if _, err := s.Create("lim"); !errors.Is(err, store.ErrExists) {
		t.Errorf("Create of an existing log: %v", err)
	}
	if err := s.Remove("lim"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("lim"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second Remove: %v", err)
	}
}

// TestDamageReported: a record changed in the database behind the
// store's back is found when the log is opened, reported as corruption
// with its index and offset, and the log is cut back there, as the file
// store does; a missing record likewise.
func TestDamageReported(t *testing.T) {
	srv := pgtest.Shared(t)
	db := srv.NewDB(t)
	s := openStore(t, srv.URL(db), Options{Replica: "a"})
	for _, c := range []struct {
		name, sql string
		index     int
		reason    string
	}{
		{"flip", "UPDATE records SET frame = set_byte(frame, 20, get_byte(frame, 20) # 1) WHERE log = 'flip' AND idx = 3", 3, "checksum mismatch"},
		{"gap", "DELETE FROM records WHERE log = 'gap' AND idx = 2", 2, "record 2 is missing"},
		{"short", "DELETE FROM records WHERE log = 'short' AND idx = 4", 4, "says it has 5 records, 4 are stored"},
	} {
		t.Run(c.name, func(t *testing.T) {
			l, err := s.Create(c.name)
			if err != nil {
				t.Fatal(err)
			}
			var end int64
			for i := range 5 {
				if i == c.index {
					end = l.Size()
				}
				if _, err := l.Append(payload(i, 30)); err != nil {
					t.Fatal(err)
				}
			}
			l.Close()
			if out, err := srv.Psql(db, c.sql); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			l2, rep, err := s.Open(c.name)
			if err != nil {
				t.Fatal(err)
			}
			defer l2.Close()
			if !rep.Truncated || rep.Damage == nil || !errors.Is(rep.Damage, store.ErrCorrupt) ||
				rep.Damage.Index != uint64(c.index) || rep.TruncatedAt != end || !bytes.Contains([]byte(rep.Reason), []byte(c.reason)) {
				t.Fatalf("report %+v, want corruption at record %d offset %d: %s", rep, c.index, end, c.reason)
			}
			if l2.Len() != uint64(c.index) || l2.Size() != end || len(records(t, l2)) != c.index {
				t.Fatalf("after recovery: len %d size %d", l2.Len(), l2.Size())
			}
			if _, err := l2.Append(payload(0, 1)); err != nil {
				t.Fatalf("append after recovery: %v", err)
			}
		})
	}
}

// TestFencing: a replica that lost its lease (paused past it; another took
// the log over) can never append again: its next append is refused in the
// same statement that would write, and nothing of it reaches the log.
func TestFencing(t *testing.T) {
	srv := pgtest.Shared(t)
	url := srv.URL(srv.NewDB(t))
	opts := Options{LeaseTTL: 300 * time.Millisecond, Renew: 100 * time.Millisecond}
	a := openStore(t, url, withReplica(opts, "a", "10.0.0.1:1"))
	b := openStore(t, url, withReplica(opts, "b", "10.0.0.2:1"))
	la, err := a.Create("f")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := la.Append(payload(1, 10)); err != nil {
		t.Fatal(err)
	}
	// a is alive: b may not take the log.
	var owned *OwnedError
	if _, _, err := b.Open("f"); !errors.As(err, &owned) || owned.Owner != "a" || owned.Addr != "10.0.0.1:1" {
		t.Fatalf("open of a live replica's log: %v", err)
	}
	if o, addr, live, ok, err := b.Owner(context.Background(), "f"); err != nil || !ok || !live || o != "a" || addr != "10.0.0.1:1" {
		t.Fatalf("Owner: %q %q %v %v %v", o, addr, live, ok, err)
	}
	// a pauses: its heartbeat stops; after the TTL the log is an orphan.
	a.pauseHeartbeat()
	time.Sleep(opts.LeaseTTL + 100*time.Millisecond)
	if a.LeaseValid() {
		t.Fatal("a believes its lease is live after the TTL without renewal")
	}
	orph, err := b.Orphans(context.Background(), 10)
	if err != nil || len(orph) != 1 || orph[0] != "f" {
		t.Fatalf("orphans: %v, %v", orph, err)
	}
	lb, rep, err := b.Open("f")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 1 || lb.(*Log).Epoch() != 2 {
		t.Fatalf("takeover: %+v epoch %d", rep, lb.(*Log).Epoch())
	}
	// a resumes: after its first renewal it learns which logs it lost;
	// and its next append is fenced.
	lostc := make(chan []string, 1)
	a.OnLeaseLost(func(names []string) { lostc <- names })
	a.resumeHeartbeat()
	select {
	case names := <-lostc:
		if len(names) != 1 || names[0] != "f" {
			t.Fatalf("lost %v, want [f]", names)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a was not told it lost the log")
	}
	if _, err := la.Append(payload(2, 10)); !errors.Is(err, ErrFenced) || !errors.Is(err, store.ErrPoisoned) {
		t.Fatalf("append by the fenced replica: %v", err)
	}
	if _, err := la.Append(payload(3, 10)); !errors.Is(err, ErrFenced) {
		t.Fatalf("second append by the fenced replica: %v", err)
	}
	if a.Stats().Fenced != 1 {
		t.Fatalf("stats: %+v", a.Stats())
	}
	if _, err := lb.Append(payload(4, 10)); err != nil {
		t.Fatal(err)
	}
	if got := records(t, lb); len(got) != 2 || !bytes.Equal(got[1], payload(4, 10)) {
		t.Fatalf("log after fencing: %d records", len(got))
	}
}

func withReplica(o Options, id, addr string) Options {
	o.Replica, o.Addr = id, addr
	return o
}

// TestCloseReleasesLeases: a replica that stops gracefully (Store.Close)
// frees its leases at once, so another opens its logs without waiting for
// the lease to expire; a log merely closed stays leased (a session being
// deleted must not be taken over between its Close and its Remove).
func TestCloseReleasesLeases(t *testing.T) {
	srv := pgtest.Shared(t)
	url := srv.URL(srv.NewDB(t))
	a := openStore(t, url, Options{Replica: "a", LeaseTTL: time.Minute})
	b := openStore(t, url, Options{Replica: "b"})
	l, err := a.Create("r")
	if err != nil {
		t.Fatal(err)
	}
	l.Append(payload(0, 5))
	l.Close()
	var owned *OwnedError
	if _, _, err := b.Open("r"); !errors.As(err, &owned) {
		t.Fatalf("open of a closed log of a live replica: %v", err)
	}
	a.Close()
	lb, _, err := b.Open("r")
	if err != nil {
		t.Fatal(err)
	}
	if lb.Len() != 1 {
		t.Fatalf("len %d", lb.Len())
	}
}

// TestSchemaTooNew: a database migrated by a newer binary is refused at
// start, and a current one is left alone.
func TestSchemaTooNew(t *testing.T) {
	srv := pgtest.Shared(t)
	db := srv.NewDB(t)
	s := openStore(t, srv.URL(db), Options{})
	s.Close()
	if out, err := srv.Psql(db, "SELECT max(version) FROM schema_version"); err != nil || out != fmt.Sprint(SchemaVersion()) {
		t.Fatalf("schema_version: %q, %v", out, err)
	}
	if out, err := srv.Psql(db, fmt.Sprintf("INSERT INTO schema_version (version) VALUES (%d)", SchemaVersion()+1)); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if _, err := Open(context.Background(), srv.URL(db), Options{}); !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("open of a newer schema: %v", err)
	}
}

// TestDatabaseCrash: records whose Append returned survive pg_ctl -m
// immediate; appends during the outage fail (the log is poisoned, never
// silently retried) and the reopened log holds exactly what committed.
func TestDatabaseCrash(t *testing.T) {
	srv := pgtest.Start(t)
	url := srv.URL(srv.NewDB(t))
	s := openStore(t, url, Options{Replica: "a"})
	l, err := s.Create("c")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := l.Append(payload(i, 50)); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.Crash(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(payload(99, 50)); !errors.Is(err, store.ErrPoisoned) {
		t.Fatalf("append while the database is down: %v", err)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	l.Close()
	l2, rep, err := s.Open("c")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Truncated || l2.Len() != 10 {
		t.Fatalf("after the crash: %+v, len %d", rep, l2.Len())
	}
	if _, err := l2.Append(payload(10, 50)); err != nil {
		t.Fatal(err)
	}
}

// TestLeaseBackAfterDatabaseRestart: a replica whose lease lapsed while
// PostgreSQL was down renews it as soon as the database answers again (a
// failed renewal is retried every Renew/10, not a whole Renew later), and
// the pool, reset on the first failure, serves fresh connections at once.
func TestLeaseBackAfterDatabaseRestart(t *testing.T) {
	srv := pgtest.Start(t)
	url := srv.URL(srv.NewDB(t))
	s := openStore(t, url, Options{Replica: "a", LeaseTTL: 3 * time.Second, Renew: time.Second})
	if !s.LeaseValid() {
		t.Fatal("lease not valid after Open")
	}
	if err := srv.Crash(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.LeaseValid() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if s.LeaseValid() {
		t.Fatal("lease still valid 5 s after the database went down (TTL 3 s)")
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	for !s.LeaseValid() && time.Since(back) < 3*time.Second {
		time.Sleep(5 * time.Millisecond)
	}
	took := time.Since(back)
	if !s.LeaseValid() {
		t.Fatal("lease not renewed 3 s after the database came back")
	}
	// Renew/10 between attempts, plus a connection: well under Renew.
	if took > 600*time.Millisecond {
		t.Errorf("lease renewed %v after the database came back; want within ~Renew/10", took)
	}
	t.Logf("lease live again %v after the restart", took)
	l, err := s.Create("after")
	if err != nil {
		t.Fatalf("create right after the restart: %v", err)
	}
	if _, err := l.Append(payload(0, 10)); err != nil {
		t.Fatalf("append right after the restart: %v", err)
	}
}

// TestRemoveAfterTakeover: a replica that closed a log (its session being
// deleted) after another replica took the log over must not remove it,
// even when the new owner's heartbeat has expired meanwhile (a database
// outage lapses every lease): the new owner may be serving the session
// from memory, and the deletion would be acknowledged while the session
// lives on there. The new owner then removes it under its own epoch.
func TestRemoveAfterTakeover(t *testing.T) {
	for _, tc := range []struct {
		name         string
		ownerExpired bool // the new owner's heartbeat has expired when the old one removes
	}{
		{"new owner live", false},
		{"new owner's heartbeat expired", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := pgtest.Shared(t)
			db := srv.NewDB(t)
			url := srv.URL(db)
			a := openStore(t, url, Options{Replica: "a"})
			c := openStore(t, url, Options{Replica: "c"})
			expire := func(id string) {
				t.Helper()
				if out, err := srv.Psql(db, "UPDATE replicas SET expires = now() - interval '1 second' WHERE id = '"+id+"'"); err != nil {
					t.Fatalf("%v: %s", err, out)
				}
			}
			l, err := a.Create("w")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := l.Append(payload(1, 10)); err != nil {
				t.Fatal(err)
			}
			// a stalls (its lease lapses) just as its session is being
			// deleted: the log is closed, not yet removed.
			a.pauseHeartbeat()
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			expire("a")
			lc, _, err := c.Open("w")
			if err != nil {
				t.Fatalf("takeover: %v", err)
			}
			if tc.ownerExpired {
				c.pauseHeartbeat()
				defer c.resumeHeartbeat()
				expire("c")
			}
			if err := a.renew(context.Background()); err != nil {
				t.Fatal(err)
			}
			a.resumeHeartbeat()
			if err := a.Remove("w"); !errors.Is(err, store.ErrBusy) {
				t.Fatalf("Remove by the replica that lost the lease: %v, want ErrBusy", err)
			}
			if names, err := a.List(); err != nil || len(names) != 1 {
				t.Fatalf("List after the refused Remove: %v, %v", names, err)
			}
			if lc.Len() != 1 {
				t.Fatalf("new owner's log: %d records", lc.Len())
			}
			if err := lc.Close(); err != nil {
				t.Fatal(err)
			}
			if err := c.Remove("w"); err != nil {
				t.Fatalf("Remove by the new owner: %v", err)
			}
			if err := a.Remove("w"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("Remove after the owner removed it: %v", err)
			}
		})
	}
}

// TestLeaseLostOfClosedLog: a log closed here and not removed (a session
// whose log failed during a database outage and could not be reopened)
// is reported lost, like an open one, when another replica took it over
// while this replica's lease had lapsed, so the service drops the session
// instead of listing it for ever (the crash harness's "present although
// its deletion was acknowledged" after the new owner deleted it).
func TestLeaseLostOfClosedLog(t *testing.T) {
	srv := pgtest.Shared(t)
	db := srv.NewDB(t)
	url := srv.URL(db)
	ttl := time.Second
	a := openStore(t, url, Options{Replica: "a", LeaseTTL: ttl, Renew: ttl / 4})
	c := openStore(t, url, Options{Replica: "c"})
	lost := make(chan []string, 4)
	a.OnLeaseLost(func(names []string) { lost <- names })
	for _, n := range []string{"closed", "kept"} {
		l, err := a.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	a.pauseHeartbeat()
	time.Sleep(ttl + 100*time.Millisecond) // a's lease lapses, here and in the database
	if a.LeaseValid() {
		t.Fatal("lease still valid after the TTL without renewal")
	}
	lc, _, err := c.Open("closed")
	if err != nil {
		t.Fatalf("takeover: %v", err)
	}
	defer lc.Close()
	a.resumeHeartbeat()
	select {
	case names := <-lost:
		if len(names) != 1 || names[0] != "closed" {
			t.Fatalf("lost %v, want [closed]", names)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the closed log taken over was not reported lost")
	}
	if err := a.Remove("closed"); !errors.Is(err, store.ErrBusy) {
		t.Fatalf("Remove of the log taken over: %v, want ErrBusy", err)
	}
	if err := a.Remove("kept"); err != nil {
		t.Fatalf("Remove of a log still leased here: %v", err)
	}
}
