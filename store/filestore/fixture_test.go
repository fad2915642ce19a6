package filestore_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/tcpstated/tcpstated/service"
	"github.com/tcpstated/tcpstated/store"
	"github.com/tcpstated/tcpstated/store/filestore"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// TestFixtureV1: a log written by the binary before the store interface
// existed (testdata/fixture-v1/README.md) is restored by today's code
// unchanged: the store opens it without recovery, hands back exactly the
// payload bytes framed in the file, the service re-runs it identically, the
// dump is the old binary's, and after all that the file is byte for byte
// what it was.
func TestFixtureV1(t *testing.T) {
	want, err := os.ReadFile("testdata/fixture-v1/fixture.log")
	if err != nil {
		t.Fatal(err)
	}
	wantDump, err := os.ReadFile("testdata/fixture-v1/dump.txt")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "fixture.log")
	if err := os.WriteFile(path, want, 0o640); err != nil {
		t.Fatal(err)
	}
	frames := framePayloads(t, want)
	unchanged := func(step string) {
		t.Helper()
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("after %s the file changed: %d bytes, want %d", step, len(got), len(want))
		}
	}

	// The store: open, read back, close.
	st, err := filestore.Open(dir, filestore.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	l, rep, err := st.Open("fixture")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Truncated || rep.Records != len(frames) || l.Len() != uint64(len(frames)) || l.Size() != int64(len(want)) {
		t.Fatalf("Open: report %+v, Len %d, Size %d; want %d records, %d bytes, no truncation", rep, l.Len(), l.Size(), len(frames), len(want))
	}
	var got [][]byte
	if err := l.Records(0, func(_ uint64, p []byte) error { got = append(got, bytes.Clone(p)); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(frames) {
		t.Fatalf("Records: %d records, want %d", len(got), len(frames))
	}
	for i := range frames {
		if !bytes.Equal(got[i], frames[i]) {
			t.Errorf("record %d: %x, want the framed bytes %x", i, got[i], frames[i])
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	unchanged("the store's open and close")

	// The offline tools.
	scan := func(fn func(uint64, []byte) error) (*store.DamageError, error) {
		res, err := filestore.ScanFile(path, fn)
		return res.Damage, err
	}
	res, err := service.VerifyLog(path, scan)
	if err != nil || !res.OK() || res.Unpaired || res.Records != uint64(len(frames)) || res.Session != "sessions/fixture" {
		t.Fatalf("VerifyLog = %+v, %v; want %d records re-run identically", res, err, len(frames))
	}
	var dump bytes.Buffer
	if err := service.DumpLog(&dump, scan); err != nil {
		t.Fatal(err)
	}
	if dump.String() != string(wantDump) {
		t.Errorf("DumpLog differs from the old binary's:\n%s\nwant:\n%s", dump.String(), wantDump)
	}

	// The service: restore by re-running, then close.
	st, err = filestore.Open(dir, filestore.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := service.New(st, service.Config{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if n := svc.SessionCount(); n != 1 {
		t.Errorf("restored %d sessions, want 1", n)
	}
	if r := svc.RestoreReports(); len(r) != 0 {
		t.Errorf("restore reports %+v, want none (identical re-run)", r)
	}
	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}
	unchanged("the service's restore and close")
}

// framePayloads cuts a log file image into its records' payloads by the
// layout in doc.go alone (32-byte header; frames of an 8-byte length word,
// whose top byte is the pad, a 4-byte CRC, the payload and the pad), so the
// check does not lean on the reader it checks.
func framePayloads(t *testing.T, b []byte) [][]byte {
	t.Helper()
	if len(b) < filestore.HeaderSize || string(b[:8]) != filestore.Magic {
		t.Fatalf("not a log file")
	}
	var out [][]byte
	for off := filestore.HeaderSize; off < len(b); {
		w := binary.LittleEndian.Uint64(b[off:])
		n, pad := int(w&(1<<56-1)), int(w>>56)
		end := off + 12 + n + pad
		if end > len(b) || end%8 != 0 {
			t.Fatalf("frame at %d: length %d pad %d does not fit the file", off, n, pad)
		}
		out = append(out, b[off+12:off+12+n])
		off = end
	}
	return out
}
