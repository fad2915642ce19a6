package pcapng

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// synPacket is an IPv4 TCP SYN 10.0.0.2:40000 > 10.0.0.1:80.
var synPacket = []byte{
	0x45, 0x00, 0x00, 0x28, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0x26, 0xce, 10, 0, 0, 2, 10, 0, 0, 1,
	0x9c, 0x40, 0x00, 0x50, 0, 0, 0, 100, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0xfe, 0xeb, 0, 0,
}

func write(t *testing.T, comments ...string) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := NewWriter(&b, "tcpstated test")
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	for i, c := range comments {
		if err := w.WritePacket(base.Add(time.Duration(i)*time.Millisecond), synPacket, Direction(1+i%2), c); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

// TestBlocks walks the blocks: every length is a multiple of 4 and
// repeated at the block's end; the types are SHB, IDB, then EPBs.
func TestBlocks(t *testing.T) {
	f := write(t, "LISTEN_SYN_ACCEPTED (RFC 9293 §3.10.7.2): odd length", "", "x")
	var types []uint32
	for len(f) > 0 {
		if len(f) < 12 {
			t.Fatalf("%d bytes left, less than a block", len(f))
		}
		typ, n := binary.LittleEndian.Uint32(f), binary.LittleEndian.Uint32(f[4:])
		if n%4 != 0 || int(n) > len(f) || binary.LittleEndian.Uint32(f[n-4:]) != n {
			t.Fatalf("block %#x: length %d", typ, n)
		}
		types = append(types, typ)
		f = f[n:]
	}
	want := []uint32{blockSHB, blockIDB, blockEPB, blockEPB, blockEPB}
	if len(types) != len(want) {
		t.Fatalf("blocks %#x, want %#x", types, want)
	}
	for i := range want {
		if types[i] != want[i] {
			t.Fatalf("blocks %#x, want %#x", types, want)
		}
	}
}

// TestTshark: tshark reads the file, its timestamps to the nanosecond and
// the packet comments.
func TestTshark(t *testing.T) {
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Skip("tshark is not installed (Debian: apt-get install tshark)")
	}
	file := filepath.Join(t.TempDir(), "c.pcapng")
	if err := os.WriteFile(file, write(t, "LISTEN_SYN_ACCEPTED (RFC 9293 §3.10.7.2): chose ISS=1000", "second"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("tshark", "-r", file, "-T", "fields", "-e", "frame.time_epoch", "-e", "tcp.flags.syn", "-e", "frame.comment")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "1767323045.123456789\t1\tLISTEN_SYN_ACCEPTED (RFC 9293 §3.10.7.2): chose ISS=1000") ||
		!strings.HasSuffix(lines[1], "\tsecond") {
		t.Fatalf("tshark read:\n%s", out)
	}
}
