package filestore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tcpstated/tcpstated/store"
)

func TestValidName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"0", true},
		{"-", true},
		{"session-1", true},
		{strings.Repeat("a", 64), false},
		{strings.Repeat("9", 63), true},
		{"", false},
		{"A", false},
		{"a_b", false},
		{"a.b", false},
		{"../x", false},
		{"a/b", false},
		{"a b", false},
		{"é", false},
		{"a\x00", false},
	} {
		if got := store.ValidName(tc.name); got != tc.ok {
			t.Errorf("store.ValidName(%q) = %v, want %v", tc.name, got, tc.ok)
		}
	}
	s := newTestStore(t, Options{})
	for _, bad := range []string{"", "A", "../etc", "x.log", "a/b"} {
		if _, err := s.Create(bad); !errors.Is(err, store.ErrInvalidName) {
			t.Errorf("Create(%q): %v", bad, err)
		}
		if _, _, err := s.Open(bad); !errors.Is(err, store.ErrInvalidName) {
			t.Errorf("Open(%q): %v", bad, err)
		}
		if err := s.Remove(bad); !errors.Is(err, store.ErrInvalidName) {
			t.Errorf("Remove(%q): %v", bad, err)
		}
	}
}

func TestCreateOpenErrors(t *testing.T) {
	s := newTestStore(t, Options{})
	l, err := s.Create("s1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create("s1"); !errors.Is(err, store.ErrBusy) {
		t.Errorf("Create of an open log: %v", err)
	}
	if _, _, err := s.Open("s1"); !errors.Is(err, store.ErrBusy) {
		t.Errorf("Open of an open log: %v", err)
	}
	if err := s.Remove("s1"); !errors.Is(err, store.ErrBusy) {
		t.Errorf("Remove of an open log: %v", err)
	}
	l.Close()
	if _, err := s.Create("s1"); !errors.Is(err, store.ErrExists) || !errors.Is(err, os.ErrExist) {
		t.Errorf("Create of an existing log: %v", err)
	}
	if _, _, err := s.Open("nope"); !errors.Is(err, store.ErrNotFound) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open of a missing log: %v", err)
	}
	if err := l.Close(); !errors.Is(err, store.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
	if _, err := l.Append(nil); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Append after Close: %v", err)
	}
	if err := l.Records(0, func(uint64, []byte) error { return nil }); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Records after Close: %v", err)
	}
}

func TestListAndRemove(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, Options{})
	for _, n := range []string{"b", "a-b", "a", "c9"} {
		l, err := s.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Append([]byte(n)); err != nil {
			t.Fatal(err)
		}
		l.Close()
	}
	// Not logs: wrong suffix, bad name, a directory.
	mustWrite(t, filepath.Join(dir, "notes.txt"), nil)
	mustWrite(t, filepath.Join(dir, "UPPER.log"), nil)
	os.Mkdir(filepath.Join(dir, "d.log"), 0o755)
	names, err := s.List()
	if err != nil || !reflect.DeepEqual(names, []string{"a", "a-b", "b", "c9"}) {
		t.Fatalf("List: %v %v", names, err)
	}
	if err := s.Remove("a-b"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("a-b"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second Remove: %v", err)
	}
	if _, _, err := s.Open("a-b"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Open after Remove: %v", err)
	}
	names, _ = s.List()
	if !reflect.DeepEqual(names, []string{"a", "b", "c9"}) {
		t.Fatalf("List after Remove: %v", names)
	}
	// The name can be used again, for a new, empty log.
	l, err := s.Create("a-b")
	if err != nil || l.Len() != 0 {
		t.Fatalf("re-Create: %v", err)
	}
	l.Close()
}

func TestDirectoryLockAndTempCleanup(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "data") // created on first use
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second store on the same directory: %v", err)
	}
	s.Close()
	// A crash during Create leaves NAME.log.tmp: the next store removes it
	// and the name is free.
	mustWrite(t, filepath.Join(dir, "x.log.tmp"), []byte("half"))
	s = openTestStore(t, dir, Options{})
	if _, err := os.Stat(filepath.Join(dir, "x.log.tmp")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temp file left: %v", err)
	}
	if names, _ := s.List(); len(names) != 0 {
		t.Fatalf("List: %v", names)
	}
	l, err := s.Create("x")
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
}

func TestStoreCloseClosesLogs(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{Fsync: store.FsyncBatch, BatchInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	l, _ := s.Create("open")
	for i := 0; i < 10; i++ {
		if _, err := l.Append(payload(i, i)); err != nil {
			t.Fatal(err)
		}
	}
	before := s.Stats().Fdatasyncs + s.Stats().Syncfs
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s.Stats().Fdatasyncs+s.Stats().Syncfs == before {
		t.Fatal("Close did not sync the open log")
	}
	if _, err := l.Append(nil); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Append after store Close: %v", err)
	}
	if _, err := s.Create("y"); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Create after Close: %v", err)
	}
	if err := s.Close(); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	s2 := openTestStore(t, dir, Options{})
	l2, rep, err := s2.Open("open")
	if err != nil || rep.Records != 10 || rep.Truncated {
		t.Fatalf("reopen: %+v %v", rep, err)
	}
	l2.Close()
}

func TestLimits(t *testing.T) {
	s := newTestStore(t, Options{MaxLogSize: HeaderSize + 3*frameSize(100)})
	l, _ := s.Create("lim")
	if _, err := l.Append(make([]byte, store.MaxRecordSize+1)); !errors.Is(err, store.ErrTooLarge) {
		t.Fatalf("oversized record: %v", err)
	}
	for i := 0; i < 3; i++ {
		if _, err := l.Append(make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Append(make([]byte, 1)); !errors.Is(err, store.ErrLogFull) {
		t.Fatalf("past MaxLogSize: %v", err)
	}
	// Neither error poisons the log or writes anything.
	if l.Len() != 3 || l.Size() != HeaderSize+3*frameSize(100) {
		t.Fatalf("Len %d Size %d", l.Len(), l.Size())
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	l.Close()
}

func TestMaxRecordRoundTrip(t *testing.T) {
	dir := t.TempDir()
	big := payload(5, store.MaxRecordSize)
	_, _ = writeLog(t, dir, "big", [][]byte{big, {}})
	checkRecovered(t, dir, "big", [][]byte{big, {}}, false, 0, "none")
}

// TestGroupCommitConcurrent: 100 goroutines × 50 appends over 20 logs in
// store.FsyncAlways mode. Every Append that returned must be found after reopen,
// each goroutine's records in its order, and rounds must be shared.
func TestGroupCommitConcurrent(t *testing.T) {
	const goroutines, perG, nlogs = 100, 50, 20
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	logs := make([]store.Log, nlogs)
	for i := range logs {
		if logs[i], err = s.Create(fmt.Sprintf("session-%02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Go(func() {
			l := logs[g%nlogs]
			for i := 0; i < perG; i++ {
				var p [16]byte
				binary.LittleEndian.PutUint64(p[:], uint64(g))
				binary.LittleEndian.PutUint64(p[8:], uint64(i))
				idx, err := l.Append(p[:g%17])
				if err != nil {
					t.Errorf("Append: %v", err)
					return
				}
				// Durable's guarantee, observed: nothing at or below idx is
				// still waiting.
				if l.(*FileLog).durable.Load() <= idx {
					t.Errorf("Append returned before record %d was durable", idx)
				}
				l.Records(0, func(uint64, []byte) error { return nil }) // readers alongside writers
			}
		})
	}
	wg.Wait()
	st := s.Stats()
	t.Logf("%d appends, %d rounds (%.1f logs per round), %d fdatasync, %d syncfs: %.3f syncs per append",
		st.Appends, st.Rounds, float64(st.RoundLogs)/float64(st.Rounds), st.Fdatasyncs, st.Syncfs,
		float64(st.Fdatasyncs+st.Syncfs)/float64(st.Appends))
	if st.Appends != goroutines*perG {
		t.Fatalf("Appends %d", st.Appends)
	}
	if st.Rounds >= st.Appends {
		t.Fatalf("no group commit: %d rounds for %d appends", st.Rounds, st.Appends)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTestStore(t, dir, Options{})
	next := make(map[uint64]uint64)
	for i := 0; i < nlogs; i++ {
		l, rep, err := s.Open(fmt.Sprintf("session-%02d", i))
		if err != nil || rep.Truncated || rep.Records != goroutines/nlogs*perG {
			t.Fatalf("log %d: %+v %v", i, rep, err)
		}
		err = l.Records(0, func(_ uint64, p []byte) error {
			var b [16]byte
			copy(b[:], p)
			g, n := binary.LittleEndian.Uint64(b[:]), binary.LittleEndian.Uint64(b[8:])
			if len(p) >= 16 && (g%nlogs != uint64(i) || n != next[g]) {
				return fmt.Errorf("log %d: record from goroutine %d #%d, want #%d", i, g, n, next[g])
			}
			next[g]++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
	}
}

// TestAppendAsyncDurable: the pipelined use, write under the caller's lock,
// wait outside it.
func TestAppendAsyncDurable(t *testing.T) {
	s := newTestStore(t, Options{})
	l, _ := s.Create("pipe")
	var last uint64
	for i := 0; i < 5; i++ {
		idx, err := l.(*FileLog).AppendAsync(payload(i, 20))
		if err != nil || idx != uint64(i) {
			t.Fatalf("AppendAsync: %d %v", idx, err)
		}
		last = idx
	}
	before := s.Stats()
	if err := l.Durable(last); err != nil {
		t.Fatal(err)
	}
	after := s.Stats()
	if got := after.Fdatasyncs + after.Syncfs - before.Fdatasyncs - before.Syncfs; got != 1 {
		t.Fatalf("5 records made durable with %d syncs, want 1", got)
	}
	for i := uint64(0); i <= last; i++ {
		if err := l.Durable(i); err != nil { // already durable: no sync
			t.Fatal(err)
		}
	}
	if s.Stats().Fdatasyncs != after.Fdatasyncs {
		t.Fatal("Durable of a durable record synced again")
	}
	if err := l.Durable(last + 1); !errors.Is(err, store.ErrNotAppended) {
		t.Fatalf("Durable past the end: %v", err)
	}
}

func TestFsyncModes(t *testing.T) {
	t.Run("never", func(t *testing.T) {
		s := newTestStore(t, Options{Fsync: store.FsyncNever})
		l, _ := s.Create("n")
		for i := 0; i < 100; i++ {
			if _, err := l.Append(payload(i, 64)); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Durable(99); err != nil {
			t.Fatal(err)
		}
		if st := s.Stats(); st.Fdatasyncs+st.Syncfs != 0 {
			t.Fatalf("store.FsyncNever synced: %+v", st)
		}
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
		if st := s.Stats(); st.Fdatasyncs != 1 || l.(*FileLog).durable.Load() != 100 {
			t.Fatalf("Sync: %+v durable %d", st, l.(*FileLog).durable.Load())
		}
	})
	t.Run("batch", func(t *testing.T) {
		s := newTestStore(t, Options{Fsync: store.FsyncBatch, BatchInterval: 5 * time.Millisecond})
		l, _ := s.Create("b")
		for i := 0; i < 100; i++ {
			if _, err := l.Append(payload(i, 64)); err != nil {
				t.Fatal(err)
			}
		}
		deadline := time.Now().Add(5 * time.Second)
		for l.(*FileLog).durable.Load() < 100 {
			if time.Now().After(deadline) {
				t.Fatal("batch mode never synced")
			}
			time.Sleep(time.Millisecond)
		}
		if st := s.Stats(); st.Rounds == 0 || st.Rounds > 50 {
			t.Fatalf("rounds %d", st.Rounds)
		}
	})
	t.Run("parse", func(t *testing.T) {
		for _, m := range []store.FsyncMode{store.FsyncAlways, store.FsyncBatch, store.FsyncNever} {
			if got, err := store.ParseFsyncMode(m.String()); err != nil || got != m {
				t.Errorf("round trip of %v: %v %v", m, got, err)
			}
		}
		if _, err := store.ParseFsyncMode("sometimes"); err == nil {
			t.Error("store.ParseFsyncMode accepted nonsense")
		}
		if _, err := Open(t.TempDir(), Options{Fsync: 7}); err == nil {
			t.Error("Open accepted fsync mode 7")
		}
	})
}

// ----- poisoning -----

func checkPoisoned(t *testing.T, l store.Log, cause error) {
	t.Helper()
	_, err1 := l.Append([]byte("x"))
	_, err2 := l.(*FileLog).AppendAsync([]byte("x"))
	err3 := l.Durable(0)
	err4 := l.Sync()
	err5 := l.Records(0, func(uint64, []byte) error { return nil })
	_, _, err6 := l.AppendBatch([][]byte{[]byte("x"), []byte("y")})
	for i, err := range []error{err1, err2, err3, err4, err5, err6} {
		if !errors.Is(err, store.ErrPoisoned) || (cause != nil && !errors.Is(err, cause)) {
			t.Errorf("call %d on a poisoned log: %v", i+1, err)
		}
		if err != err1 {
			t.Errorf("call %d returned %v, not the same poison %v", i+1, err, err1)
		}
	}
	if err := l.Close(); !errors.Is(err, store.ErrPoisoned) {
		t.Errorf("Close of a poisoned log: %v", err)
	}
}

func TestPoisonOnWriteError(t *testing.T) {
	s := newTestStore(t, Options{})
	l, _ := s.Create("w")
	if _, err := l.Append([]byte("ok")); err != nil {
		t.Fatal(err)
	}
	l.(*FileLog).f.Close() // the next write fails
	_, err := l.Append([]byte("lost"))
	if !errors.Is(err, store.ErrPoisoned) || !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Append on a failing file: %v", err)
	}
	if l.Len() != 1 {
		t.Fatalf("Len %d after a failed write", l.Len())
	}
	checkPoisoned(t, l, os.ErrClosed)
}

func TestPoisonOnSyncError(t *testing.T) {
	for _, tc := range []struct {
		name     string
		syncfs   bool
		syncfsOK bool
		poisoned bool
	}{
		{"fdatasync fails", false, false, true},
		{"syncfs fails, fdatasync fails", true, false, true},
		// syncfs reports an error of some other file on the file system:
		// the per-file fallback finds ours clean.
		{"syncfs fails, fdatasync fine", true, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestStore(t, Options{SyncfsThreshold: 1})
			var fails atomic.Bool
			s.fdatasync = func(f *os.File) error {
				if fails.Load() && !tc.syncfsOK {
					return syscall.EIO
				}
				return fdatasync(f)
			}
			s.syncfs = nil
			if tc.syncfs {
				s.syncfs = func(*os.File) error {
					if fails.Load() {
						return syscall.EIO
					}
					return nil
				}
			}
			l, _ := s.Create("sync")
			if _, err := l.Append([]byte("durable")); err != nil {
				t.Fatal(err)
			}
			fails.Store(true)
			// Many waiters in the failing round: all must see the error.
			var wg sync.WaitGroup
			errs := make([]error, 8)
			for i := range errs {
				wg.Go(func() { _, errs[i] = l.Append([]byte("maybe")) })
			}
			wg.Wait()
			for i, err := range errs {
				if tc.poisoned != errors.Is(err, store.ErrPoisoned) {
					t.Fatalf("waiter %d: %v", i, err)
				}
				if tc.poisoned && !errors.Is(err, syscall.EIO) {
					t.Fatalf("waiter %d: cause lost: %v", i, err)
				}
			}
			fails.Store(false) // a later success must not clear the poison
			if tc.poisoned {
				checkPoisoned(t, l, syscall.EIO)
			} else if _, err := l.Append([]byte("fine")); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A poisoned log does not affect other logs in the same rounds.
func TestPoisonIsPerLog(t *testing.T) {
	s := newTestStore(t, Options{SyncfsThreshold: -1})
	bad, _ := s.Create("bad")
	good, _ := s.Create("good")
	badFile := bad.(*FileLog).f
	s.fdatasync = func(f *os.File) error {
		if f == badFile {
			return syscall.EIO
		}
		return fdatasync(f)
	}
	var wg sync.WaitGroup
	var badErrs, goodErrs atomic.Int32
	for i := 0; i < 20; i++ {
		wg.Go(func() {
			if _, err := bad.Append([]byte("b")); err != nil {
				badErrs.Add(1)
			}
		})
		wg.Go(func() {
			if _, err := good.Append([]byte("g")); err != nil {
				goodErrs.Add(1)
			}
		})
	}
	wg.Wait()
	if badErrs.Load() != 20 || goodErrs.Load() != 0 {
		t.Fatalf("bad log errors %d/20, good log errors %d/0", badErrs.Load(), goodErrs.Load())
	}
}

// TestCloseWhileAppending: closing a log, or the whole store, under
// concurrent appenders never loses an acknowledged record, and every other
// Append fails with store.ErrClosed.
func TestCloseWhileAppending(t *testing.T) {
	for _, closeStore := range []bool{false, true} {
		for _, mode := range []store.FsyncMode{store.FsyncAlways, store.FsyncBatch} {
			t.Run(fmt.Sprintf("store=%v/%v", closeStore, mode), func(t *testing.T) {
				dir := t.TempDir()
				s, err := Open(dir, Options{Fsync: mode, BatchInterval: time.Millisecond})
				if err != nil {
					t.Fatal(err)
				}
				l, _ := s.Create("c")
				var acked sync.Map
				var wg sync.WaitGroup
				for g := 0; g < 8; g++ {
					wg.Go(func() {
						for i := 0; ; i++ {
							p := []byte(fmt.Sprintf("%d/%d", g, i))
							if _, err := l.Append(p); err != nil {
								if !errors.Is(err, store.ErrClosed) {
									t.Errorf("Append: %v", err)
								}
								return
							}
							acked.Store(string(p), true)
						}
					})
				}
				time.Sleep(20 * time.Millisecond)
				if closeStore {
					err = s.Close()
				} else {
					err = l.Close()
					s.Close()
				}
				if err != nil {
					t.Fatal(err)
				}
				wg.Wait()
				s = openTestStore(t, dir, Options{})
				l2, rep, err := s.Open("c")
				if err != nil || rep.Truncated {
					t.Fatalf("reopen: %+v %v", rep, err)
				}
				found := map[string]bool{}
				l2.Records(0, func(_ uint64, p []byte) error { found[string(p)] = true; return nil })
				n := 0
				acked.Range(func(k, _ any) bool {
					n++
					if !found[k.(string)] {
						t.Errorf("acknowledged record %s lost", k)
					}
					return true
				})
				if n == 0 {
					t.Fatal("no append succeeded")
				}
			})
		}
	}
}

func TestChooseSyncfs(t *testing.T) {
	us := time.Microsecond
	newC := func(usable bool) *committer {
		s := &FileStore{opts: Options{SyncfsThreshold: DefaultSyncfsThreshold}}
		if usable {
			s.syncfs = func(*os.File) error { return nil }
		}
		return &committer{s: s}
	}
	for _, tc := range []struct {
		name            string
		usable          bool
		syncfs, perFile time.Duration
		n               int
		want            bool
	}{
		{"unusable", false, 0, 0, 100, false},
		{"one log", true, 0, 0, 1, false},
		{"nothing measured yet", true, 0, 0, 2, true},
		{"cheaper than n fdatasyncs", true, 300 * us, 190 * us, 2, true},
		{"dearer than n fdatasyncs", true, 30000 * us, 190 * us, 2, false},
		{"dear, but n large", true, 30000 * us, 190 * us, 200, true},
	} {
		c := newC(tc.usable)
		c.syncfsCost, c.fileCost = tc.syncfs, tc.perFile
		if got := c.chooseSyncfs(tc.n); got != tc.want {
			t.Errorf("%s: chooseSyncfs(%d) = %v", tc.name, tc.n, got)
		}
	}
	// A slow syncfs is still tried every syncfsProbe rounds.
	c := newC(true)
	c.syncfsCost, c.fileCost = time.Second, 100*us
	tries := 0
	for i := 0; i < 10*syncfsProbe; i++ {
		if c.chooseSyncfs(4) {
			tries++
		}
	}
	if tries != 10 {
		t.Errorf("%d probes in %d rounds, want 10", tries, 10*syncfsProbe)
	}
	if got := ewma(0, 8*us); got != 8*us {
		t.Errorf("ewma first sample: %v", got)
	}
	if got := ewma(8*us, 16*us); got != 10*us {
		t.Errorf("ewma(8µs, 16µs) = %v", got)
	}
}
