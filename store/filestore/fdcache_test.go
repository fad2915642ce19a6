package filestore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tcpstated/tcpstated/store"
)

// openLogFDs counts this process's fds open on .log files in dir.
func openLogFDs(t *testing.T, dir string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	n := 0
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil && filepath.Dir(target) == dir && strings.HasSuffix(target, logSuffix) {
			n++
		}
	}
	return n
}

// expectedFile is the file a log of seed holding payloads must be: the
// header and the frames, exactly as a store with no fd limit writes them.
func expectedFile(seed uint32, payloads [][]byte) []byte {
	b := encodeHeader(seed)
	crc := seed
	for _, p := range payloads {
		b, crc = appendFrame(b, crc, p)
	}
	return b
}

// With MaxOpenLogs 4, 50 logs appended to in turns hold at most 4 log fds
// at any time, reopen without rescanning, and end with the same bytes and
// records as a store without a limit given the same appends.
func TestMaxOpenLogsInTurns(t *testing.T) {
	const logs, turns, limit = 50, 6, 4
	for _, mode := range []store.FsyncMode{store.FsyncAlways, store.FsyncBatch, store.FsyncNever} {
		t.Run(mode.String(), func(t *testing.T) {
			dir, _ := filepath.EvalSymlinks(t.TempDir())
			s := openTestStore(t, dir, Options{Fsync: mode, MaxOpenLogs: limit})
			ref := newTestStore(t, Options{Fsync: mode, MaxOpenLogs: -1})
			ls := make([]store.Log, logs)
			rs := make([]store.Log, logs)
			want := make([][][]byte, logs)
			for i := range ls {
				var err error
				if ls[i], err = s.Create(fmt.Sprintf("s%02d", i)); err != nil {
					t.Fatal(err)
				}
				if rs[i], err = ref.Create(fmt.Sprintf("s%02d", i)); err != nil {
					t.Fatal(err)
				}
				if n := openLogFDs(t, dir); n > limit {
					t.Fatalf("after creating %d logs: %d log fds open, limit %d", i+1, n, limit)
				}
			}
			for turn := range turns {
				for i := range ls {
					p := payload(turn*logs+i, (turn*logs+i)%300)
					batch := [][]byte{p}
					if turn%2 == 1 {
						batch = append(batch, payload(i, 7))
					}
					if _, _, err := ls[i].AppendBatch(batch); err != nil {
						t.Fatalf("turn %d log %d: %v", turn, i, err)
					}
					if _, _, err := rs[i].AppendBatch(batch); err != nil {
						t.Fatal(err)
					}
					want[i] = append(want[i], batch...)
					if n := openLogFDs(t, dir); n > limit {
						t.Fatalf("turn %d log %d: %d log fds open, limit %d", turn, i, n, limit)
					}
				}
			}
			st := s.Stats()
			if st.Reopens == 0 || st.Evictions == 0 || st.OpenLogs > limit {
				t.Fatalf("stats %+v: want reopens and evictions, at most %d open", st, limit)
			}
			for i, l := range ls {
				if err := l.Sync(); err != nil {
					t.Fatal(err)
				}
				if err := rs[i].Sync(); err != nil {
					t.Fatal(err)
				}
				var got, gotRef [][]byte
				collect := func(dst *[][]byte) func(uint64, []byte) error {
					return func(_ uint64, p []byte) error {
						*dst = append(*dst, bytes.Clone(p))
						return nil
					}
				}
				if err := l.Records(0, collect(&got)); err != nil {
					t.Fatal(err)
				}
				if err := rs[i].Records(0, collect(&gotRef)); err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(got) != fmt.Sprint(want[i]) || fmt.Sprint(gotRef) != fmt.Sprint(want[i]) {
					t.Fatalf("log %d: records differ from the appends", i)
				}
				fl, rl := l.(*FileLog), rs[i].(*FileLog)
				b, err := os.ReadFile(s.path(fl.name))
				if err != nil {
					t.Fatal(err)
				}
				rb, err := os.ReadFile(ref.path(rl.name))
				if err != nil {
					t.Fatal(err)
				}
				// The seeds are random (and chain into every CRC): each
				// file must be exactly the bytes its seed and the appends
				// imply, which the unlimited store's file is too.
				if !bytes.Equal(b, expectedFile(fl.seed, want[i])) || !bytes.Equal(rb, expectedFile(rl.seed, want[i])) || len(b) != len(rb) {
					t.Fatalf("log %d: file bytes differ from an unlimited store's", i)
				}
				if n := openLogFDs(t, dir); n > limit {
					t.Fatalf("reading back log %d: %d log fds open", i, n)
				}
			}
			for _, l := range ls {
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
			}
			if n := s.Stats().OpenLogs; n != 0 {
				t.Fatalf("%d fds counted after closing every log", n)
			}
		})
	}
}

// Concurrent appenders over more logs than the limit: every record lands
// and is durable, the CRC chains hold (Open recovers nothing), and the
// open fds stay near the limit. Run with -race.
func TestMaxOpenLogsConcurrent(t *testing.T) {
	const logs, writers, per, limit = 40, 8, 30, 4
	for _, mode := range []store.FsyncMode{store.FsyncAlways, store.FsyncBatch} {
		t.Run(mode.String(), func(t *testing.T) {
			dir, _ := filepath.EvalSymlinks(t.TempDir())
			s, err := Open(dir, Options{Fsync: mode, MaxOpenLogs: limit})
			if err != nil {
				t.Fatal(err)
			}
			ls := make([]store.Log, logs)
			for i := range ls {
				if ls[i], err = s.Create(fmt.Sprintf("c%02d", i)); err != nil {
					t.Fatal(err)
				}
			}
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					for k := range per {
						l := ls[(w*7+k*3)%logs]
						if _, err := l.Append(payload(w*per+k, 40)); err != nil {
							t.Error(err)
							return
						}
						if k%5 == 0 {
							if err := l.Records(0, func(uint64, []byte) error { return nil }); err != nil {
								t.Error(err)
								return
							}
						}
					}
				})
			}
			wg.Wait()
			// Only logs in use at the same instant can pass the limit (one
			// per writer, plus the syncer's), and only after a wait.
			if n := openLogFDs(t, dir); n > limit+writers+1 {
				t.Errorf("%d log fds open after the writers stopped, limit %d", n, limit)
			}
			total := uint64(0)
			for _, l := range ls {
				total += l.Len()
				if err := l.Sync(); err != nil {
					t.Fatal(err)
				}
			}
			if total != writers*per {
				t.Fatalf("%d records, want %d", total, writers*per)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s2 := openTestStore(t, dir, Options{MaxOpenLogs: limit})
			got := uint64(0)
			for i := range ls {
				l, rep, err := s2.Open(fmt.Sprintf("c%02d", i))
				if err != nil || rep.Truncated {
					t.Fatalf("reopen c%02d: %v %+v", i, err, rep)
				}
				got += l.Len()
			}
			if got != total {
				t.Fatalf("recovered %d records, want %d", got, total)
			}
		})
	}
}

// A log whose file cannot be reopened is poisoned, like any I/O error, and
// its neighbours carry on.
func TestMaxOpenLogsReopenFailurePoisons(t *testing.T) {
	s := newTestStore(t, Options{MaxOpenLogs: 1})
	a, _ := s.Create("a")
	if _, err := a.Append([]byte("one")); err != nil {
		t.Fatal(err)
	}
	b, _ := s.Create("b") // closes a's fd
	if a.(*FileLog).f != nil {
		t.Fatal("a's fd is still open past the limit")
	}
	if err := os.Rename(s.path("a"), s.path("a")+".moved"); err != nil {
		t.Fatal(err)
	}
	_, err := a.Append([]byte("two"))
	if !errors.Is(err, store.ErrPoisoned) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("append needing a reopen of a missing file: %v", err)
	}
	if _, err := a.Append([]byte("three")); !errors.Is(err, store.ErrPoisoned) {
		t.Fatalf("append after the poison: %v", err)
	}
	if err := a.Records(0, func(uint64, []byte) error { return nil }); !errors.Is(err, store.ErrPoisoned) {
		t.Fatalf("Records after the poison: %v", err)
	}
	if a.Len() != 1 {
		t.Fatalf("Len %d", a.Len())
	}
	if _, err := b.Append([]byte("fine")); err != nil {
		t.Fatalf("neighbour: %v", err)
	}
}

// A file that changed size behind the store's back is refused on reopen.
func TestMaxOpenLogsReopenChecksSize(t *testing.T) {
	s := newTestStore(t, Options{MaxOpenLogs: 1})
	a, _ := s.Create("a")
	a.Append([]byte("one"))
	s.Create("b")
	if err := os.Truncate(s.path("a"), HeaderSize); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Append([]byte("two")); !errors.Is(err, store.ErrPoisoned) {
		t.Fatalf("append to a truncated file: %v", err)
	}
}
