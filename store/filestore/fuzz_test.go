package filestore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/tcpstated/tcpstated/store"
)

// FuzzReadLog feeds arbitrary bytes to the reader as a log file. Scan and
// Open must never panic, Open must agree with Scan about what is good, and
// a recovered file must re-read cleanly with the same record count and
// accept appends.
//
// go test -run '^$' -fuzz '^FuzzReadLog$' -fuzztime 30s ./store/filestore/
func FuzzReadLog(f *testing.F) {
	for _, c := range corpusCases() {
		f.Add(c.data)
	}
	// One store per fuzzing process; each input replaces its one log file.
	dir := f.TempDir()
	path := filepath.Join(dir, "f.log")
	s, err := Open(dir, Options{Fsync: store.FsyncNever})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	s.fdatasync = noSync // recovery logic, not the disk, is under test
	f.Fuzz(func(t *testing.T, data []byte) {
		res, herr := Scan(bytes.NewReader(data), int64(len(data)), nil)

		mustWrite(t, path, data)
		l, rep, err := s.Open("f")
		if herr != nil {
			if !errors.Is(err, ErrBadHeader) || !errors.Is(herr, ErrBadHeader) {
				t.Fatalf("Scan: %v; Open: %v", herr, err)
			}
			if !bytes.Equal(mustRead(t, path), data) {
				t.Fatal("Open modified a file with a bad header")
			}
			return
		}
		if err != nil {
			t.Fatalf("Open: %v (Scan: %+v)", err, res)
		}
		if int64(rep.Records) != res.Records || rep.Truncated != (res.Damage != nil) {
			t.Fatalf("Open %+v disagrees with Scan %+v", rep, res)
		}
		if rep.Truncated && (rep.TruncatedAt != res.End || rep.DroppedBytes != int64(len(data))-res.End) {
			t.Fatalf("Open %+v disagrees with Scan %+v", rep, res)
		}
		if got := int64(len(mustRead(t, path))); got != res.End || l.Size() != res.End {
			t.Fatalf("file is %d bytes after recovery, log says %d, want %d", got, l.Size(), res.End)
		}
		n := 0
		if err := l.Records(0, func(uint64, []byte) error { n++; return nil }); err != nil || n != rep.Records {
			t.Fatalf("re-read: %d records, %v; want %d", n, err, rep.Records)
		}
		if _, err := l.Append([]byte("more")); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l, rep2, err := s.Open("f")
		if err != nil || rep2.Truncated || rep2.Records != rep.Records+1 {
			t.Fatalf("reopen after recovery: %+v %v", rep2, err)
		}
		l.Close()
	})
}

var updateCorpus = flag.Bool("update-corpus", false, "rewrite testdata/fuzz/FuzzReadLog from corpusCases")

const corpusDir = "testdata/fuzz/FuzzReadLog"

// TestFuzzCorpus keeps the committed seed corpus equal to corpusCases.
// Regenerate with: go test ./store/filestore/ -run TestFuzzCorpus -update-corpus
func TestFuzzCorpus(t *testing.T) {
	for _, c := range corpusCases() {
		file := filepath.Join(corpusDir, c.name)
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", c.data)
		if *updateCorpus {
			if err := os.MkdirAll(corpusDir, 0o755); err != nil {
				t.Fatal(err)
			}
			mustWrite(t, file, []byte(body))
			continue
		}
		got, err := os.ReadFile(file)
		if err != nil || string(got) != body {
			t.Errorf("%s is missing or stale (%v): run go test ./store/filestore/ -run TestFuzzCorpus -update-corpus", file, err)
		}
	}
}

// TestCorpusClassification: each seed is damaged the way its name says.
func TestCorpusClassification(t *testing.T) {
	for _, c := range corpusCases() {
		res, err := Scan(bytes.NewReader(c.data), int64(len(c.data)), nil)
		if err == nil && res.Damage != nil {
			err = res.Damage
		}
		if got := damageKind(err); got != c.kind {
			t.Errorf("%s: %s (%v), want %s", c.name, got, err, c.kind)
		}
	}
}

type corpusCase struct {
	name string
	kind string // what Scan must find: none, torn, corrupt or header
	data []byte
}

// image builds a log file image with a fixed seed; it also returns each
// frame's start offset and the end.
func image(seed uint32, payloads ...[]byte) ([]byte, []int) {
	b := encodeHeader(seed)
	offs := []int{len(b)}
	crc := seed
	for _, p := range payloads {
		b, crc = appendFrame(b, crc, p)
		offs = append(offs, len(b))
	}
	return b, offs
}

func corpusCases() []corpusCase {
	var recs [][]byte
	for i, n := range []int{0, 1, 4, 5, 12, 13, 64, 100} {
		recs = append(recs, payload(i, n))
	}
	good, offs := image(0x5eed, recs...)
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	flip := func(off int, bit uint) []byte {
		return edit(func(b []byte) []byte { b[off] ^= 1 << bit; return b })
	}
	mid := offs[4]
	header, _ := image(1)
	big := make([]byte, 700)
	for i := range big {
		big[i] = byte(i)
	}
	withBig, bigOffs := image(2, []byte("a"), big)
	badVersion := bytes.Clone(header)
	binary.LittleEndian.PutUint32(badVersion[8:], 9)
	binary.LittleEndian.PutUint32(badVersion[28:], crcOf(badVersion[:28]))
	return []corpusCase{
		{"empty", "header", nil},
		{"header-only", "none", header},
		{"good", "none", good},
		{"one-empty-record", "none", first(image(3, nil))},
		{"torn-length", "torn", good[:len(good)-len(recs[7])-15]},
		{"torn-payload", "torn", good[:len(good)-10]},
		{"torn-padding", "torn", good[:len(good)-1]},
		{"zero-tail", "torn", append(bytes.Clone(good), make([]byte, 64)...)},
		{"zero-tail-short", "torn", append(bytes.Clone(good), 0, 0, 0)},
		{"garbage-tail", "torn", append(bytes.Clone(good), 1, 2, 3)},
		{"flip-payload", "corrupt", flip(mid+12, 2)},
		{"flip-crc", "corrupt", flip(mid+8, 0)},
		{"flip-length-low", "corrupt", flip(mid, 0)},
		// Now points past the end of the file: indistinguishable from a
		// short write, so reported as torn (and truncated all the same).
		{"flip-length-mid", "torn", flip(mid+1, 4)},
		{"flip-length-high", "corrupt", flip(mid+6, 1)},
		{"flip-pad-field", "corrupt", flip(mid+7, 2)},
		{"nonzero-padding", "corrupt", edit(func(b []byte) []byte { b[offs[5]-1] = 0xff; return b })},
		{"zeroed-middle", "corrupt", edit(func(b []byte) []byte { clear(b[mid:offs[5]]); return b })},
		{"absurd-length", "corrupt", edit(func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b[mid:], 1<<52)
			return b
		})},
		{"length-past-eof", "torn", edit(func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b[mid:], lengthWord(store.MaxRecordSize))
			return b
		})},
		{"partly-written-sector", "torn", func() []byte {
			b := bytes.Clone(withBig)
			clear(b[(bigOffs[1]/sectorSize+1)*sectorSize:])
			return b
		}()},
		{"header-truncated", "header", header[:20]},
		{"header-bad-magic", "header", append([]byte("TCPSLOG0"), good[8:]...)},
		{"header-bad-crc", "header", flip(29, 5)},
		{"header-bad-version", "header", badVersion},
		{"all-zero", "header", make([]byte, 256)},
	}
}

func first(b []byte, _ []int) []byte { return b }
