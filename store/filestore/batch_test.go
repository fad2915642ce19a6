package filestore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/tcpstated/tcpstated/store"
)

// appendBatches appends recs to l in batches of the given sizes (cycled),
// checking the indexes each batch returns.
func appendBatches(t testing.TB, l store.Log, recs [][]byte, sizes []int) {
	t.Helper()
	for i, k := 0, 0; i < len(recs); k++ {
		n := min(sizes[k%len(sizes)], len(recs)-i)
		want := l.Len()
		first, last, err := l.AppendBatch(recs[i : i+n])
		if err != nil || first != want || last != want+uint64(n)-1 {
			t.Fatalf("AppendBatch of %d at %d: first %d last %d err %v", n, want, first, last, err)
		}
		i += n
	}
}

// frame frames payloads with BeginFrame and EndFrame, as a caller of
// AppendFramed does.
func frame(payloads [][]byte) []byte {
	var b []byte
	for _, p := range payloads {
		var start int
		b, start = beginFrame(b)
		b = endFrame(append(b, p...), start)
	}
	return b
}

// appendFramed is AppendBatch through AppendFramed.
func appendFramed(l store.Log, payloads [][]byte) (first, last uint64, err error) {
	return l.(*FileLog).AppendFramed(frame(payloads), len(payloads))
}

// appendFramedBatches is appendBatches through AppendFramed.
func appendFramedBatches(t testing.TB, l store.Log, recs [][]byte, sizes []int) {
	t.Helper()
	for i, k := 0, 0; i < len(recs); k++ {
		n := min(sizes[k%len(sizes)], len(recs)-i)
		want := l.Len()
		first, last, err := appendFramed(l, recs[i:i+n])
		if err != nil || first != want || last != want+uint64(n)-1 {
			t.Fatalf("AppendFramed of %d at %d: first %d last %d err %v", n, want, first, last, err)
		}
		i += n
	}
}

// logWithHeaderOf creates log name in s holding only the file header of
// the file at from, so its CRC chain starts from the same seed.
func logWithHeaderOf(t *testing.T, s *FileStore, name, from string) store.Log {
	t.Helper()
	l, err := s.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	mustWrite(t, s.path(name), mustRead(t, from)[:HeaderSize])
	l, _, err = s.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestBatchSameBytesAsSingleAppends: records appended in batches of any
// split give the same file, byte for byte, as the same records appended
// one at a time (same frames, same CRC chain, same indexes), and read back
// identically.
func TestBatchSameBytesAsSingleAppends(t *testing.T) {
	var recs [][]byte
	for i, n := range variedSizes {
		recs = append(recs, payload(i, n))
	}
	for i := range 40 {
		recs = append(recs, payload(100+i, i*13%97))
	}
	dir := t.TempDir()
	single, _ := writeLog(t, dir, "single", recs)
	want := mustRead(t, single)
	for _, framed := range []bool{false, true} {
		for _, sizes := range [][]int{{1}, {2}, {3, 1, 7}, {len(recs)}, {64}, {5, 100}} {
			t.Run(fmt.Sprint(sizes, " framed ", framed), func(t *testing.T) {
				s := openTestStore(t, t.TempDir(), Options{Fsync: store.FsyncNever})
				l := logWithHeaderOf(t, s, "batch", single)
				if framed {
					appendFramedBatches(t, l, recs, sizes)
				} else {
					appendBatches(t, l, recs, sizes)
				}
				if l.Len() != uint64(len(recs)) || l.Size() != int64(len(want)) {
					t.Fatalf("Len %d Size %d, want %d and %d", l.Len(), l.Size(), len(recs), len(want))
				}
				equalPayloads(t, readAll(t, l), recs)
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				if got := mustRead(t, s.path("batch")); !bytes.Equal(got, want) {
					t.Fatalf("batched file (%d bytes) differs from the single-append file (%d bytes)", len(got), len(want))
				}
				s.Close()
				checkRecovered(t, s.Dir(), "batch", recs, false, 0, "none")
			})
		}
	}
}

// TestBatchIsOneWrite: a batch costs one write(2), counted in Stats.
func TestBatchIsOneWrite(t *testing.T) {
	s := newTestStore(t, Options{Fsync: store.FsyncNever})
	l, _ := s.Create("w")
	l.(*FileLog).AppendAsync([]byte("a"))
	l.AppendBatch([][]byte{[]byte("b"), {}, []byte("c")})
	big := make([][]byte, 100) // a batch larger than the kept buffer
	for i := range big {
		big[i] = payload(i, 1000)
	}
	l.AppendBatch(big)
	if st := s.Stats(); st.Appends != 104 || st.Writes != 3 {
		t.Fatalf("stats %+v: want 104 appends in 3 writes", st)
	}
	l.Close()
}

// TestTornBatchEveryOffset: the last batch is cut at every byte offset (a
// crash during its write(2)); recovery keeps every record before the batch
// and every complete frame of it before the cut, and truncates there.
func TestTornBatchEveryOffset(t *testing.T) {
	before := [][]byte{payload(1, 10), payload(2, 0), payload(3, 33)}
	batch := [][]byte{payload(4, 5), payload(5, 0), payload(6, 100), payload(7, 12), payload(8, 700)}
	dir := t.TempDir()
	{
		s := openTestStore(t, dir, Options{Fsync: store.FsyncNever})
		l, _ := s.Create("torn")
		appendBatches(t, l, before, []int{1})
		appendBatches(t, l, batch, []int{len(batch)})
		l.Close()
		s.Close()
	}
	path := filepath.Join(dir, "torn"+logSuffix)
	full := mustRead(t, path)
	ends := []int64{HeaderSize} // ends[k]: file size with k records
	for _, p := range append(append([][]byte{}, before...), batch...) {
		ends = append(ends, ends[len(ends)-1]+frameSize(len(p)))
	}
	if ends[len(ends)-1] != int64(len(full)) {
		t.Fatalf("file %d bytes, frames add up to %d", len(full), ends[len(ends)-1])
	}
	all := append(append([][]byte{}, before...), batch...)
	for cut := ends[len(before)]; cut < int64(len(full)); cut++ {
		k := 0 // complete frames before cut
		for k+1 < len(ends) && ends[k+1] <= cut {
			k++
		}
		mustWrite(t, path, full[:cut])
		if cut == ends[k] {
			checkRecovered(t, dir, "torn", all[:k], false, 0, "none")
		} else {
			checkRecovered(t, dir, "torn", all[:k], true, ends[k], "torn")
		}
		if t.Failed() {
			t.Fatalf("cut at %d", cut)
		}
	}
}

// TestBatchConcurrent: goroutines append batches and single records to one
// log in store.FsyncAlways mode and wait with Durable(last). Each batch occupies
// consecutive indexes in its order, the returned indexes hold the
// records, and everything acknowledged is there after reopening.
func TestBatchConcurrent(t *testing.T) {
	const goroutines, perG = 8, 30
	dir := t.TempDir()
	s := openTestStore(t, dir, Options{})
	l, _ := s.Create("c")
	tag := func(g, j, k int) []byte {
		b := make([]byte, 12+(g+j+k)%20)
		binary.LittleEndian.PutUint32(b, uint32(g))
		binary.LittleEndian.PutUint32(b[4:], uint32(j))
		binary.LittleEndian.PutUint32(b[8:], uint32(k))
		return b
	}
	type placed struct {
		first uint64
		recs  [][]byte
	}
	got := make([][]placed, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for j := range perG {
				n := 1 + (g*7+j)%9
				recs := make([][]byte, n)
				for k := range recs {
					recs[k] = tag(g, j, k)
				}
				var first, last uint64
				var err error
				if n == 1 && j%2 == 0 {
					first, err = l.(*FileLog).AppendAsync(recs[0])
					last = first
				} else {
					first, last, err = l.AppendBatch(recs)
				}
				if err == nil && last-first != uint64(n-1) {
					err = fmt.Errorf("first %d last %d for %d records", first, last, n)
				}
				if err == nil {
					err = l.Durable(last)
				}
				if err != nil {
					t.Error(err)
					return
				}
				got[g] = append(got[g], placed{first, recs})
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	l.Close()
	l, rep, err := s.Open("c")
	if err != nil || rep.Truncated {
		t.Fatalf("reopen: %+v %v", rep, err)
	}
	recs := readAll(t, l)
	total := 0
	for g := range got {
		for _, p := range got[g] {
			for k, r := range p.recs {
				if i := p.first + uint64(k); i >= uint64(len(recs)) || !bytes.Equal(recs[i], r) {
					t.Fatalf("goroutine %d: record %d of a batch at %d is missing or wrong", g, k, p.first)
				}
			}
			total += len(p.recs)
		}
	}
	if total != len(recs) {
		t.Fatalf("%d records in the log, %d appended", len(recs), total)
	}
	l.Close()
}

// TestBatchRefusedWritesNothing: a batch that would pass MaxLogSize, one
// holding an oversized record, and an empty one are refused whole, do not
// poison the log, and leave the file as it was.
func TestBatchRefusedWritesNothing(t *testing.T) {
	limit := HeaderSize + 4*frameSize(100)
	s := newTestStore(t, Options{MaxLogSize: limit})
	l, _ := s.Create("lim")
	hundred := func(n int) [][]byte {
		b := make([][]byte, n)
		for i := range b {
			b[i] = payload(i, 100)
		}
		return b
	}
	appendBatches(t, l, hundred(2), []int{2})
	path := s.path("lim")
	for _, c := range []struct {
		name  string
		batch [][]byte
		want  error
	}{
		{"past the limit by one frame", hundred(3), store.ErrLogFull},
		{"past the limit by one byte", append(hundred(2), nil), store.ErrLogFull},
		{"an oversized record in the middle", [][]byte{{1}, make([]byte, store.MaxRecordSize+1), {2}}, store.ErrTooLarge},
		{"empty", nil, store.ErrEmptyBatch},
	} {
		for _, how := range []struct {
			name   string
			append func(store.Log, [][]byte) (uint64, uint64, error)
		}{{"AppendBatch", store.Log.AppendBatch}, {"AppendFramed", appendFramed}} {
			if _, _, err := how.append(l, c.batch); !errors.Is(err, c.want) {
				t.Fatalf("%s: %s: %v, want %v", how.name, c.name, err, c.want)
			}
			if l.Len() != 2 || l.Size() != HeaderSize+2*frameSize(100) || int64(len(mustRead(t, path))) != l.Size() {
				t.Fatalf("%s: %s: Len %d Size %d after a refused batch", how.name, c.name, l.Len(), l.Size())
			}
		}
	}
	// Exactly up to the limit is allowed.
	appendBatches(t, l, hundred(2), []int{2})
	if l.Size() != limit {
		t.Fatalf("Size %d, want %d", l.Size(), limit)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	l.Close()
}

// TestBatchPoisonOnWriteError: a failed batch write poisons the log like
// a failed single append; nothing is counted as appended.
func TestBatchPoisonOnWriteError(t *testing.T) {
	s := newTestStore(t, Options{})
	l, _ := s.Create("w")
	if _, _, err := l.AppendBatch([][]byte{[]byte("ok"), []byte("ok2")}); err != nil {
		t.Fatal(err)
	}
	l.(*FileLog).f.Close() // the next write fails
	_, _, err := l.AppendBatch([][]byte{[]byte("lost"), []byte("lost too")})
	if !errors.Is(err, store.ErrPoisoned) || !errors.Is(err, os.ErrClosed) {
		t.Fatalf("AppendBatch on a failing file: %v", err)
	}
	if l.Len() != 2 {
		t.Fatalf("Len %d after a failed write", l.Len())
	}
	checkPoisoned(t, l, os.ErrClosed)
}

// TestAppendFramedRefusesMalformed: AppendFramed takes only whole frames
// as EndFrame leaves them, as many as it is told, and writes nothing
// otherwise.
func TestAppendFramedRefusesMalformed(t *testing.T) {
	s := newTestStore(t, Options{})
	l, _ := s.Create("f")
	good := frame([][]byte{payload(1, 10), payload(2, 0), payload(3, 33)})
	edit := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for _, c := range []struct {
		name   string
		frames []byte
		n      int
	}{
		{"fewer frames than said", good, 4},
		{"more frames than said", good, 2},
		{"cut inside a frame", good[:len(good)-3], 3},
		{"cut inside a length word", good[:frameSize(10)+5], 2},
		{"pad byte wrong", edit(func(b []byte) []byte { b[7]++; return b }), 3},
		{"padding not zero", edit(func(b []byte) []byte { b[frameSize(10)-1] = 1; return b }), 3},
		{"length past the buffer", edit(func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b, lengthWord(1000))
			return b
		}), 3},
	} {
		if _, _, err := l.(*FileLog).AppendFramed(c.frames, c.n); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
		if l.Len() != 0 || l.Size() != HeaderSize {
			t.Fatalf("%s: Len %d Size %d after a refused batch", c.name, l.Len(), l.Size())
		}
	}
	if _, _, err := l.(*FileLog).AppendFramed(good, 3); err != nil {
		t.Fatal(err)
	}
	equalPayloads(t, readAll(t, l), [][]byte{payload(1, 10), payload(2, 0), payload(3, 33)})
	l.Close()
}
