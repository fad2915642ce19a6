package filestore

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/tcpstated/tcpstated/store"
)

func TestMain(m *testing.M) {
	flag.Parse()
	if !testing.Verbose() { // recovery and poisoning tests log warnings on purpose
		slog.SetDefault(slog.New(slog.DiscardHandler))
	}
	os.Exit(m.Run())
}

// newTestStore opens a store in a fresh directory and closes it at the end.
func newTestStore(t testing.TB, opts Options) *FileStore {
	t.Helper()
	return openTestStore(t, t.TempDir(), opts)
}

func openTestStore(t testing.TB, dir string, opts Options) *FileStore {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// payload returns a deterministic payload of n bytes for record i.
func payload(i, n int) []byte {
	p := make([]byte, n)
	for j := range p {
		p[j] = byte(i*31 + j*7 + 1)
	}
	return p
}

// variedSizes covers the padding cases, a sector boundary and a large record.
var variedSizes = []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 15, 16, 17, 63, 64, 65, 100, 511, 512, 513, 4095, 4096, 4097, 65536, 1 << 20}

// writeLog creates log name in a new store at dir with the given payloads,
// closes everything, and returns the file path and the offset at which each
// frame starts (plus the file size as the last element).
func writeLog(t testing.TB, dir, name string, payloads [][]byte) (string, []int64) {
	t.Helper()
	s, err := Open(dir, Options{Fsync: store.FsyncNever})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l, err := s.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	offs := []int64{l.Size()}
	for i, p := range payloads {
		idx, err := l.Append(p)
		if err != nil || idx != uint64(i) {
			t.Fatalf("Append %d: idx %d err %v", i, idx, err)
		}
		offs = append(offs, l.Size())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, name+logSuffix), offs
}

// readAll returns every record of an open log.
func readAll(t testing.TB, l store.Log) [][]byte {
	t.Helper()
	var out [][]byte
	err := l.Records(0, func(i uint64, p []byte) error {
		if i != uint64(len(out)) {
			return fmt.Errorf("index %d, want %d", i, len(out))
		}
		out = append(out, bytes.Clone(p))
		return nil
	})
	if err != nil {
		t.Fatalf("Records: %v", err)
	}
	return out
}

func equalPayloads(t testing.TB, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("record %d: got %d bytes %x..., want %d bytes", i, len(got[i]), head(got[i]), len(want[i]))
		}
	}
}

func head(b []byte) []byte { return b[:min(len(b), 16)] }

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustWrite(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
}

func damageKind(err error) string {
	switch {
	case err == nil:
		return "none"
	case errors.Is(err, ErrBadHeader):
		return "header"
	case errors.Is(err, store.ErrTornTail):
		return "torn"
	case errors.Is(err, store.ErrCorrupt):
		return "corrupt"
	}
	return "other: " + err.Error()
}

func noSync(*os.File) error { return nil }
