package filestore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"runtime"
	"testing"

	"github.com/tcpstated/tcpstated/store"
)

// checkRecovered opens name in a store over dir and checks that recovery
// kept exactly want, truncated (or not) at wantAt with the given kind, left
// a file that re-reads cleanly, and that appending continues the chain.
func checkRecovered(t *testing.T, dir, name string, want [][]byte, truncated bool, wantAt int64, kind string) {
	t.Helper()
	path := dir + "/" + name + logSuffix
	before := int64(len(mustRead(t, path)))
	s := openTestStore(t, dir, Options{Fsync: store.FsyncNever})
	s.fdatasync = noSync // this checks the logic; the loops would spend their time in fsync
	l, rep, err := s.Open(name)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if rep.Records != len(want) || rep.Truncated != truncated {
		t.Fatalf("report %+v: want %d records, truncated %v", rep, len(want), truncated)
	}
	if truncated {
		if rep.TruncatedAt != wantAt || rep.DroppedBytes != before-wantAt || rep.Reason == "" {
			t.Fatalf("report %+v: want truncation at %d dropping %d", rep, wantAt, before-wantAt)
		}
		if got := damageKind(rep.Damage); got != kind {
			t.Fatalf("damage %v: kind %s, want %s", rep.Damage, got, kind)
		}
		if l.Size() != wantAt || int64(len(mustRead(t, path))) != wantAt {
			t.Fatalf("size after recovery %d / file %d, want %d", l.Size(), len(mustRead(t, path)), wantAt)
		}
	}
	equalPayloads(t, readAll(t, l), want)
	extra := []byte("after recovery")
	if i, err := l.Append(extra); err != nil || i != uint64(len(want)) {
		t.Fatalf("Append after recovery: %d %v", i, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, rep, err = s.Open(name)
	if err != nil || rep.Truncated || rep.Records != len(want)+1 {
		t.Fatalf("reopen: %+v %v", rep, err)
	}
	equalPayloads(t, readAll(t, l), append(append([][]byte{}, want...), extra))
	l.Close()
	s.Close()
}

func TestRoundTripVariedSizes(t *testing.T) {
	dir := t.TempDir()
	var want [][]byte
	for i, n := range variedSizes {
		want = append(want, payload(i, n))
	}
	s := openTestStore(t, dir, Options{})
	l, err := s.Create("round-trip")
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range want {
		idx, err := l.Append(p)
		if err != nil || idx != uint64(i) {
			t.Fatalf("Append %d: %d %v", i, idx, err)
		}
	}
	if l.Len() != uint64(len(want)) {
		t.Fatalf("Len %d", l.Len())
	}
	equalPayloads(t, readAll(t, l), want) // while open
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	checkRecovered(t, dir, "round-trip", want, false, 0, "none")
}

// TestReopenContinuesChain appends across several open/close cycles; each
// reopen must pick up the CRC chain where it stopped.
func TestReopenContinuesChain(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, Options{})
	l, err := s.Create("chain")
	if err != nil {
		t.Fatal(err)
	}
	var want [][]byte
	for cycle := 0; cycle < 4; cycle++ {
		for i := 0; i < 10; i++ {
			p := payload(len(want), (cycle*10+i)%23)
			if _, err := l.Append(p); err != nil {
				t.Fatal(err)
			}
			want = append(want, p)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		var rep store.RecoveryReport
		l, rep, err = s.Open("chain")
		if err != nil || rep.Truncated || rep.Records != len(want) {
			t.Fatalf("cycle %d: %+v %v", cycle, rep, err)
		}
	}
	equalPayloads(t, readAll(t, l), want)
	res, err := Scan(bytes.NewReader(mustRead(t, dir+"/chain.log")), l.Size(), nil)
	if err != nil || res.Damage != nil || res.Records != int64(len(want)) {
		t.Fatalf("Scan: %+v %v", res, err)
	}
	l.Close()
}

// TestTornTailEveryOffset cuts the last frame at every byte offset: recovery
// keeps every earlier record and truncates at the frame's start.
func TestTornTailEveryOffset(t *testing.T) {
	for _, lastSize := range []int{0, 1, 5, 12, 100, 700} {
		dir := t.TempDir()
		var recs [][]byte
		for i := 0; i < 5; i++ {
			recs = append(recs, payload(i, 10*i))
		}
		recs = append(recs, payload(99, lastSize))
		path, offs := writeLog(t, dir, "torn", recs)
		full := mustRead(t, path)
		start := offs[len(recs)-1]
		for cut := start + 1; cut < int64(len(full)); cut++ {
			mustWrite(t, path, full[:cut])
			checkRecovered(t, dir, "torn", recs[:len(recs)-1], true, start, "torn")
			if t.Failed() {
				t.Fatalf("last record %d bytes, cut at %d", lastSize, cut)
			}
		}
		// Cut exactly at the frame start: a clean file.
		mustWrite(t, path, full[:start])
		checkRecovered(t, dir, "torn", recs[:len(recs)-1], false, 0, "none")
	}
}

func TestZeroFilledTail(t *testing.T) {
	recs := [][]byte{payload(0, 10), payload(1, 0), payload(2, 600)}
	for _, tc := range []struct {
		name string
		mod  func(b []byte, offs []int64) []byte
		keep int
	}{
		{"1 zero byte", func(b []byte, _ []int64) []byte { return append(b, 0) }, 3},
		{"7 zero bytes", func(b []byte, _ []int64) []byte { return append(b, make([]byte, 7)...) }, 3},
		{"8 zero bytes", func(b []byte, _ []int64) []byte { return append(b, make([]byte, 8)...) }, 3},
		{"a zero page", func(b []byte, _ []int64) []byte { return append(b, make([]byte, 4096)...) }, 3},
		{"last frame zeroed in place", func(b []byte, o []int64) []byte {
			clear(b[o[2]:])
			return b
		}, 2},
		// The length word and the first sector made it, the rest of the
		// frame is zeros: a partly written frame, told apart from corruption
		// by its zero-filled sector.
		{"last frame's second sector zeroed", func(b []byte, o []int64) []byte {
			next := (o[2]/sectorSize + 1) * sectorSize
			clear(b[next:])
			return b
		}, 2},
		{"last frame's payload zeroed, zero page after", func(b []byte, o []int64) []byte {
			clear(b[o[2]+12:])
			return append(b, make([]byte, 4096)...)
		}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path, offs := writeLog(t, dir, "zero", recs)
			mustWrite(t, path, tc.mod(mustRead(t, path), offs))
			checkRecovered(t, dir, "zero", recs[:tc.keep], true, offs[tc.keep], "torn")
		})
	}
}

// TestCorruptMiddleRecord damages record 3 of 7 in different ways: recovery
// keeps records 0-2, truncates at record 3 and reports corruption.
func TestCorruptMiddleRecord(t *testing.T) {
	var recs [][]byte
	for i := 0; i < 7; i++ {
		recs = append(recs, payload(i, 40+i*90))
	}
	const bad = 3
	flip := func(off int64, bit uint) func([]byte, []int64) {
		return func(b []byte, o []int64) { b[o[bad]+off] ^= 1 << bit }
	}
	for _, tc := range []struct {
		name string
		mod  func(b []byte, offs []int64)
		kind string
	}{
		{"payload first bit", flip(12, 0), "corrupt"},
		{"payload last byte", func(b []byte, o []int64) { b[o[bad]+12+int64(len(recs[bad]))-1] ^= 0x80 }, "corrupt"},
		{"crc bit", flip(9, 3), "corrupt"},
		{"length bit 0 (padding no longer fits)", flip(0, 0), "corrupt"},
		{"length bit 3 (checksum)", flip(0, 3), "corrupt"},
		{"length bit 40 (absurd)", flip(5, 0), "corrupt"},
		{"pad field", flip(7, 1), "corrupt"},
		{"length bit 55", flip(6, 7), "corrupt"},
		{"non-zero padding", func(b []byte, o []int64) { b[o[bad+1]-1] = 1 }, "corrupt"},
		{"frame zeroed, data after", func(b []byte, o []int64) { clear(b[o[bad]:o[bad+1]]) }, "corrupt"},
		{"frame swapped with the next", func(b []byte, o []int64) {
			x := bytes.Clone(b[o[bad]:o[bad+1]])
			y := bytes.Clone(b[o[bad+1]:o[bad+2]])
			copy(b[o[bad]:], y)
			copy(b[o[bad]+int64(len(y)):], x)
		}, "corrupt"},
		{"length past the end of file", func(b []byte, o []int64) {
			binary.LittleEndian.PutUint64(b[o[bad]:], lengthWord(1<<20))
		}, "torn"}, // indistinguishable from a torn write; truncated the same way
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path, offs := writeLog(t, dir, "corrupt", recs)
			b := mustRead(t, path)
			tc.mod(b, offs)
			mustWrite(t, path, b)
			checkRecovered(t, dir, "corrupt", recs[:bad], true, offs[bad], tc.kind)
		})
	}
}

// TestSplicedFromAnotherLog: a frame copied from another log (different
// seed) breaks the chain even though its own bytes are intact.
func TestSplicedFromAnotherLog(t *testing.T) {
	recs := [][]byte{payload(0, 8), payload(1, 8), payload(2, 8)}
	dirA, dirB := t.TempDir(), t.TempDir()
	pa, offs := writeLog(t, dirA, "a", recs)
	pb, _ := writeLog(t, dirB, "b", recs)
	a, b := mustRead(t, pa), mustRead(t, pb)
	copy(a[offs[0]:], b[offs[0]:offs[1]]) // same payload, other chain
	mustWrite(t, pa, a)
	checkRecovered(t, dirA, "a", nil, true, offs[0], "corrupt")
}

func TestBadHeader(t *testing.T) {
	good := encodeHeader(7)
	badVersion := bytes.Clone(good)
	binary.LittleEndian.PutUint32(badVersion[8:], 2)
	binary.LittleEndian.PutUint32(badVersion[28:], crcOf(badVersion[:28]))
	for _, tc := range []struct {
		name string
		file []byte
	}{
		{"empty file", nil},
		{"1 byte", good[:1]},
		{"magic only", good[:8]},
		{"31 bytes", good[:31]},
		{"31 bytes and a frame", append(bytes.Clone(good[:31]), make([]byte, 40)...)},
		{"bad magic", append([]byte("TCPSLOG2"), good[8:]...)},
		{"header crc", append(bytes.Clone(good[:28]), 0, 0, 0, 0)},
		{"unknown version", badVersion},
		{"all zeros", make([]byte, 4096)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := dir + "/h.log"
			mustWrite(t, path, tc.file)
			s := openTestStore(t, dir, Options{})
			_, _, err := s.Open("h")
			var d *store.DamageError
			if !errors.As(err, &d) || !errors.Is(err, ErrBadHeader) || !errors.Is(err, store.ErrCorrupt) || d.Offset != 0 {
				t.Fatalf("Open: %v, want a bad-header store.DamageError", err)
			}
			if !bytes.Equal(mustRead(t, path), tc.file) {
				t.Fatal("a file with a bad header was modified")
			}
			if _, _, err := s.Open("h"); !errors.Is(err, ErrBadHeader) {
				t.Fatalf("second Open: %v (the failed open must release the name)", err)
			}
			if err := s.Remove("h"); err != nil {
				t.Fatalf("Remove of a damaged log: %v", err)
			}
		})
	}
}

// TestAbsurdLengthNoAllocation: a length word beyond store.MaxRecordSize is
// corruption, and one within it but past the end of the file is refused
// before any buffer of that size is allocated.
func TestAbsurdLengthNoAllocation(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int
		kind error
	}{
		{"beyond the maximum", store.MaxRecordSize + 1, store.ErrCorrupt},
		{"2^55", 1 << 55, store.ErrCorrupt},
		{"maximum, past EOF", store.MaxRecordSize, store.ErrTornTail},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := encodeHeader(1)
			var w [8]byte
			binary.LittleEndian.PutUint64(w[:], uint64(tc.n)|uint64(padFor(tc.n&7))<<56)
			img = append(img, w[:]...)
			img = append(img, make([]byte, 100)...)
			img[HeaderSize+20] = 1 // not a zero tail
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			res, err := Scan(bytes.NewReader(img), int64(len(img)), nil)
			runtime.ReadMemStats(&after)
			if err != nil || res.Damage == nil || !errors.Is(res.Damage, tc.kind) || res.End != HeaderSize {
				t.Fatalf("Scan: %+v %v", res, err)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
				t.Fatalf("scan allocated %d bytes", grew)
			}
		})
	}
}

func crcOf(b []byte) uint32 {
	var s uint32
	return chainCRC(s, b, nil)
}

// TestScanDoesNotModify: Scan on a damaged image reports without touching.
func TestScanReportsDamage(t *testing.T) {
	dir := t.TempDir()
	recs := [][]byte{payload(0, 3), payload(1, 4), payload(2, 5)}
	path, offs := writeLog(t, dir, "scan", recs)
	b := mustRead(t, path)
	b = b[:len(b)-2]
	var seen int
	res, err := Scan(bytes.NewReader(b), int64(len(b)), func(i uint64, p []byte) error {
		if !bytes.Equal(p, recs[i]) {
			t.Errorf("record %d differs", i)
		}
		seen++
		return nil
	})
	if err != nil || seen != 2 || res.Records != 2 || res.End != offs[2] || !errors.Is(res.Damage, store.ErrTornTail) {
		t.Fatalf("Scan: %+v %v, seen %d", res, err, seen)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
}
