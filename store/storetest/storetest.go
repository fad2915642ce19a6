// Package storetest is the conformance suite of store.Store: every
// implementation's tests call Run, so each is held to the same contract
// (store/store.go). What only one store can show (torn tails of a file,
// fsync accounting) stays in that store's own tests.
package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/tcpstated/tcpstated/store"
)

// Opener opens the store under test at one place. Each call after the
// first comes once the previous store is closed and must find what that
// one held (a server restart).
type Opener func() (store.Store, error)

// NewPlace makes a fresh, empty place for a test and returns its Opener.
// maxLogSize is the per-log size limit the stores it opens enforce (0:
// none).
type NewPlace func(t *testing.T, maxLogSize int64) Opener

// Run runs every conformance test against the store newPlace opens.
func Run(t *testing.T, newPlace NewPlace) {
	tests := []struct {
		name string
		fn   func(*testing.T, Opener)
	}{
		{"AppendAndRead", testAppendAndRead},
		{"RecordsFrom", testRecordsFrom},
		{"Batch", testBatch},
		{"Durable", testDurable},
		{"Names", testNames},
		{"Reopen", testReopen},
		{"Remove", testRemove},
		{"Closed", testClosed},
		{"RecordsMayAppend", testRecordsMayAppend},
		{"Concurrent", testConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newPlace(t, 0)) })
	}
	t.Run("LogFull", func(t *testing.T) { testLogFull(t, newPlace(t, 4096)) })
}

func open(t *testing.T, o Opener) store.Store {
	t.Helper()
	s, err := o()
	if err != nil {
		t.Fatalf("opening the store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func create(t *testing.T, s store.Store, name string) store.Log {
	t.Helper()
	l, err := s.Create(name)
	if err != nil {
		t.Fatalf("Create(%q): %v", name, err)
	}
	return l
}

func payload(i, n int) []byte {
	b := make([]byte, n)
	for j := range b {
		b[j] = byte(i*31 + j)
	}
	return b
}

// readAll returns copies of the records from index from on.
func readAll(t *testing.T, l store.Log, from uint64) [][]byte {
	t.Helper()
	var out [][]byte
	next := from
	err := l.Records(from, func(i uint64, p []byte) error {
		if i != next {
			return fmt.Errorf("record %d came where %d was due", i, next)
		}
		next++
		out = append(out, bytes.Clone(p))
		return nil
	})
	if err != nil {
		t.Fatalf("Records(%d): %v", from, err)
	}
	return out
}

func same(t *testing.T, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("record %d: %d bytes %x…, want %d bytes %x…", i, len(got[i]), head(got[i]), len(want[i]), head(want[i]))
		}
	}
}

func head(b []byte) []byte { return b[:min(len(b), 8)] }

// Every payload comes back byte for byte, empty ones and the largest
// allowed included; one byte more is refused.
func testAppendAndRead(t *testing.T, o Opener) {
	s := open(t, o)
	l := create(t, s, "a")
	want := [][]byte{{}, []byte("x"), payload(2, 1000), payload(3, 7), {0, 0, 0, 0}, payload(5, store.MaxRecordSize)}
	for i, p := range want {
		idx, err := l.Append(p)
		if err != nil || idx != uint64(i) {
			t.Fatalf("Append #%d = %d, %v", i, idx, err)
		}
	}
	if _, err := l.Append(make([]byte, store.MaxRecordSize+1)); !errors.Is(err, store.ErrTooLarge) {
		t.Fatalf("Append of MaxRecordSize+1 bytes: %v, want ErrTooLarge", err)
	}
	if l.Len() != uint64(len(want)) || l.Name() != "a" {
		t.Fatalf("Len %d, Name %q", l.Len(), l.Name())
	}
	same(t, readAll(t, l, 0), want)
}

// Records from n skips the first n; from past the end reads nothing.
func testRecordsFrom(t *testing.T, o Opener) {
	s := open(t, o)
	l := create(t, s, "a")
	var want [][]byte
	for i := range 10 {
		want = append(want, payload(i, 10+i))
		if _, err := l.Append(want[i]); err != nil {
			t.Fatal(err)
		}
	}
	for _, from := range []uint64{0, 1, 9, 10, 11} {
		same(t, readAll(t, l, from), want[min(from, 10):])
	}
	stop := errors.New("stop")
	n := 0
	if err := l.Records(0, func(uint64, []byte) error { n++; return stop }); err != stop || n != 1 {
		t.Fatalf("an error from fn: Records returned %v after %d calls, want it back after 1", err, n)
	}
}

// A batch takes consecutive indexes; a refused batch writes nothing.
func testBatch(t *testing.T, o Opener) {
	s := open(t, o)
	l := create(t, s, "a")
	if _, err := l.Append([]byte("first")); err != nil {
		t.Fatal(err)
	}
	batch := [][]byte{payload(1, 3), {}, payload(2, 300)}
	first, last, err := l.AppendBatch(batch)
	if err != nil || first != 1 || last != 3 {
		t.Fatalf("AppendBatch = %d, %d, %v; want 1, 3", first, last, err)
	}
	if err := l.Durable(last); err != nil {
		t.Fatalf("Durable(%d): %v", last, err)
	}
	if _, _, err := l.AppendBatch(nil); !errors.Is(err, store.ErrEmptyBatch) {
		t.Fatalf("empty batch: %v, want ErrEmptyBatch", err)
	}
	if _, _, err := l.AppendBatch([][]byte{[]byte("ok"), make([]byte, store.MaxRecordSize+1)}); !errors.Is(err, store.ErrTooLarge) {
		t.Fatalf("batch with an oversized record: %v, want ErrTooLarge", err)
	}
	same(t, readAll(t, l, 0), append([][]byte{[]byte("first")}, batch...))
}

func testDurable(t *testing.T, o Opener) {
	s := open(t, o)
	l := create(t, s, "a")
	if err := l.Durable(0); !errors.Is(err, store.ErrNotAppended) {
		t.Fatalf("Durable(0) of an empty log: %v, want ErrNotAppended", err)
	}
	if err := l.Sync(); err != nil {
		t.Fatalf("Sync of an empty log: %v", err)
	}
	i, err := l.Append([]byte("r"))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Durable(i); err != nil {
		t.Fatalf("Durable(%d): %v", i, err)
	}
	if err := l.Durable(i + 1); !errors.Is(err, store.ErrNotAppended) {
		t.Fatalf("Durable past the end: %v, want ErrNotAppended", err)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
}

func testNames(t *testing.T, o Opener) {
	s := open(t, o)
	for _, bad := range []string{"", "A", "a_b", "a.log", "../x", string(make([]byte, 64))} {
		if _, err := s.Create(bad); !errors.Is(err, store.ErrInvalidName) {
			t.Errorf("Create(%q): %v, want ErrInvalidName", bad, err)
		}
	}
	for _, n := range []string{"c", "a-1", "b", "0"} {
		create(t, s, n)
	}
	if _, err := s.Create("b"); !errors.Is(err, store.ErrExists) && !errors.Is(err, store.ErrBusy) {
		t.Errorf("Create of an open log: %v, want ErrExists or ErrBusy", err)
	}
	if _, _, err := s.Open("b"); !errors.Is(err, store.ErrBusy) {
		t.Errorf("Open of an open log: %v, want ErrBusy", err)
	}
	if _, _, err := s.Open("none"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Open of a missing log: %v, want ErrNotFound", err)
	}
	names, err := s.List()
	if err != nil || fmt.Sprint(names) != "[0 a-1 b c]" {
		t.Fatalf("List = %v, %v; want [0 a-1 b c]", names, err)
	}
}

// What one store held, the next finds: records, indexes, no damage; and
// appends continue the log.
func testReopen(t *testing.T, o Opener) {
	s := open(t, o)
	l := create(t, s, "a")
	want := [][]byte{[]byte("one"), payload(1, 100)}
	for _, p := range want {
		if _, err := l.Append(p); err != nil {
			t.Fatal(err)
		}
	}
	create(t, s, "empty")
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := l.Append([]byte("late")); err == nil {
		t.Fatal("Append to a log of a closed store succeeded")
	}

	s = open(t, o)
	if _, err := s.Create("a"); !errors.Is(err, store.ErrExists) {
		t.Fatalf("Create of an existing log: %v, want ErrExists", err)
	}
	l, rep, err := s.Open("a")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Truncated || rep.Records != len(want) || l.Len() != uint64(len(want)) {
		t.Fatalf("Open: report %+v, Len %d; want %d records, no truncation", rep, l.Len(), len(want))
	}
	same(t, readAll(t, l, 0), want)
	if i, err := l.Append([]byte("three")); err != nil || i != 2 {
		t.Fatalf("Append after reopen = %d, %v; want index 2", i, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	e, rep, err := s.Open("empty")
	if err != nil || e.Len() != 0 || rep.Records != 0 {
		t.Fatalf("Open(empty) = Len %d, %+v, %v", e.Len(), rep, err)
	}
	e.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, o)
	l, _, err = s.Open("a")
	if err != nil {
		t.Fatal(err)
	}
	same(t, readAll(t, l, 0), append(want, []byte("three")))
}

func testRemove(t *testing.T, o Opener) {
	s := open(t, o)
	l := create(t, s, "a")
	if _, err := l.Append([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("a"); !errors.Is(err, store.ErrBusy) {
		t.Fatalf("Remove of an open log: %v, want ErrBusy", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("a"); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if err := s.Remove("a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second Remove: %v, want ErrNotFound", err)
	}
	if names, _ := s.List(); len(names) != 0 {
		t.Fatalf("List after Remove = %v", names)
	}
	s.Close()
	s = open(t, o)
	if _, _, err := s.Open("a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Open of a removed log after reopen: %v, want ErrNotFound", err)
	}
	l = create(t, s, "a") // the name is free again
	if l.Len() != 0 {
		t.Fatalf("re-created log has %d records", l.Len())
	}
}

func testClosed(t *testing.T, o Opener) {
	s := open(t, o)
	l := create(t, s, "a")
	if _, err := l.Append([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := l.Append([]byte("y")); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Append after Close: %v, want ErrClosed", err)
	}
	if err := l.Records(0, func(uint64, []byte) error { return nil }); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Records after Close: %v, want ErrClosed", err)
	}
	if err := l.Close(); !errors.Is(err, store.ErrClosed) {
		t.Errorf("second Close: %v, want ErrClosed", err)
	}
	l, _, err := s.Open("a") // closing a log frees it
	if err != nil || l.Len() != 1 {
		t.Fatalf("Open after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("store Close: %v", err)
	}
	if _, err := s.Create("b"); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Create after store Close: %v, want ErrClosed", err)
	}
	if err := s.Close(); !errors.Is(err, store.ErrClosed) {
		t.Errorf("second store Close: %v, want ErrClosed", err)
	}
}

// fn may append while Records runs; Records reads only what was there.
func testRecordsMayAppend(t *testing.T, o Opener) {
	s := open(t, o)
	l := create(t, s, "a")
	for i := range 3 {
		if _, err := l.Append(payload(i, 5)); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	err := l.Records(0, func(uint64, []byte) error {
		n++
		_, err := l.Append([]byte("more"))
		return err
	})
	if err != nil || n != 3 || l.Len() != 6 {
		t.Fatalf("Records appending: %v after %d calls, Len %d; want 3 calls, 6 records", err, n, l.Len())
	}
}

// Concurrent appenders on one log and on several: every record is there
// once, in a consistent order, and Durable covers it.
func testConcurrent(t *testing.T, o Opener) {
	s := open(t, o)
	const writers, each = 8, 25
	logs := []store.Log{create(t, s, "shared"), create(t, s, "other")}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			l := logs[w%2]
			for i := range each {
				p := []byte(fmt.Sprintf("w%d-%d", w, i))
				var idx uint64
				var err error
				if i%3 == 0 {
					_, idx, err = l.AppendBatch([][]byte{p, append(p, '+')})
				} else {
					idx, err = l.Append(p)
				}
				if err == nil {
					err = l.Durable(idx)
				}
				if err != nil {
					errs <- err
					return
				}
				l.Records(idx, func(uint64, []byte) error { return nil }) // readers alongside writers
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	total := 0
	for _, l := range logs {
		recs := readAll(t, l, 0)
		total += len(recs)
		for _, r := range recs {
			if seen[string(r)] {
				t.Fatalf("record %q twice", r)
			}
			seen[string(r)] = true
		}
		if l.Len() != uint64(len(recs)) {
			t.Fatalf("Len %d, read %d", l.Len(), len(recs))
		}
	}
	if want := writers * (each + (each+2)/3); total != want {
		t.Fatalf("%d records, want %d", total, want)
	}
}

// Past the size limit an append is refused whole and the log is intact.
func testLogFull(t *testing.T, o Opener) {
	s := open(t, o)
	l := create(t, s, "a")
	var want [][]byte
	for i := 0; ; i++ {
		p := payload(i, 200)
		before := l.Size()
		_, err := l.Append(p)
		if errors.Is(err, store.ErrLogFull) {
			if l.Size() != before || l.Len() != uint64(len(want)) {
				t.Fatalf("a refused append changed the log: size %d→%d, Len %d", before, l.Size(), l.Len())
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if l.Size() <= before {
			t.Fatalf("Size did not grow: %d→%d", before, l.Size())
		}
		want = append(want, p)
		if i > 100 {
			t.Fatalf("no ErrLogFull after %d records of 200 bytes (Size %d, limit 4096)", i, l.Size())
		}
	}
	if _, _, err := l.AppendBatch([][]byte{[]byte("a"), payload(9, 4096)}); !errors.Is(err, store.ErrLogFull) {
		t.Fatalf("a batch past the limit: %v, want ErrLogFull", err)
	}
	if l.Size() > 4096 {
		t.Fatalf("Size %d over the limit 4096", l.Size())
	}
	same(t, readAll(t, l, 0), want)
}
