package suite

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A small suite of the project's own: one folder that passes, one with a
// failure and a script that does not parse, and an #ifdef that only the
// freebsd profile takes.
var files = map[string]string{
	"a/close-ipv4.pkt":  "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 close(3) = 0\n",
	"a/close-ipv6.pkt":  "--ip_version=ipv6\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 close(3) = 0\n",
	"b/wrong-ipv4.pkt":  "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 close(3) = -1 EBADF\n",
	"b/broken-ipv4.pkt": "0 socket(\n",
	"b/os.pkt":          "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n#ifdef FreeBSD\n+0 close(3) = 0\n#else\n+0 close(3) = -1 EBADF\n#endif\n",
	"b/notes.txt":       "not a script",
}

func writeSuite(t *testing.T) string {
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestSuiteTableAndFloors(t *testing.T) {
	dir := writeSuite(t)
	floors := filepath.Join(t.TempDir(), "floors")
	os.WriteFile(floors, []byte("# folder min\na 2\nb 1 # the ifdef one\ntotal 3\n"), 0o644)
	for _, tc := range []struct {
		profile string
		status  int
		rowB    string
		stderr  string
	}{
		{"freebsd", 0, "| b | 1/3 (33 %) | – | 1/3 (33 %) |", ""},
		{"rfc", 1, "| b | 0/3 (0 %) | – | 0/3 (0 %) |", "floor line 3: b passed 0 of 3, below the floor of 1"},
	} {
		var out, errb bytes.Buffer
		st := Main([]string{"--profile=" + tc.profile, "--floors=" + floors, "--failures", dir}, &out, &errb)
		if st != tc.status {
			t.Errorf("%s: exit %d, want %d; stderr %s", tc.profile, st, tc.status, errb.String())
		}
		o := out.String()
		for _, want := range []string{
			"| a | 1/1 (100 %) | 1/1 (100 %) | 2/2 (100 %) |",
			tc.rowB,
			"ERROR b/broken-ipv4.pkt: ",
			"FAIL b/wrong-ipv4.pkt: line 2: close returned 0",
		} {
			if !strings.Contains(o, want) {
				t.Errorf("%s: output lacks %q:\n%s", tc.profile, want, o)
			}
		}
		if tc.stderr != "" && !strings.Contains(errb.String(), tc.stderr) {
			t.Errorf("%s: stderr %q lacks %q", tc.profile, errb.String(), tc.stderr)
		}
	}
}

func TestSuiteUsageErrors(t *testing.T) {
	dir := writeSuite(t)
	for _, args := range [][]string{
		{},
		{dir, dir},
		{filepath.Join(dir, "missing")},
		{"--profile=solaris", dir},
		{"--floors=" + filepath.Join(dir, "b/notes.txt"), dir},
	} {
		var out, errb bytes.Buffer
		if st := Main(args, &out, &errb); st != 2 {
			t.Errorf("%q: exit %d, want 2 (%s)", args, st, errb.String())
		}
	}
}

func TestParseFloors(t *testing.T) {
	if _, err := ParseFloors(strings.NewReader("a\n")); err == nil || err.Error() != `line 1: expected FOLDER MIN, found "a"` {
		t.Errorf("got %v", err)
	}
	if _, err := ParseFloors(strings.NewReader("\n a -1\n")); err == nil || err.Error() != `line 2: expected a count of scripts, found "-1"` {
		t.Errorf("got %v", err)
	}
	fl, err := ParseFloors(strings.NewReader("a 3\ntotal 10 # all\n"))
	if err != nil || len(fl) != 2 || fl[1] != (Floor{Folder: "total", Min: 10, Line: 2}) {
		t.Errorf("got %+v %v", fl, err)
	}
	rows := []Row{{Folder: "a", All: Count{3, 4}}, {Folder: "total", All: Count{3, 4}}}
	msgs := CheckFloors(rows, append(fl, Floor{Folder: "gone", Min: 1, Line: 3}))
	if len(msgs) != 2 || !strings.Contains(msgs[0], "total passed 3 of 4, below the floor of 10") || !strings.Contains(msgs[1], `folder "gone" is not in this run`) {
		t.Errorf("got %q", msgs)
	}
}

// TestBlame: under rfc a SYN,ACK to a listener is answered with a RST;
// the script below expects FreeBSD's silence, so it fails under rfc and
// --blame=freebsd names the one switch that makes it pass. A script that
// fails whatever the switches is listed with its failure.
func TestBlame(t *testing.T) {
	dir := t.TempDir()
	scripts := map[string]string{
		"synack-listener-ipv4.pkt": "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 bind(3, ..., ...) = 0\n+0 listen(3, 1) = 0\n" +
			"+0.1 < S. 0:0(0) ack 1 win 65535\n+0.1 close(3) = 0\n",
		"wrong-ipv4.pkt": "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 close(3) = -1 EBADF\n",
	}
	for name, body := range scripts {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var out, errb bytes.Buffer
	if st := Main([]string{"--profile=rfc", "--blame=freebsd", dir}, &out, &errb); st != 0 {
		t.Fatalf("exit %d: %s", st, errb.String())
	}
	for _, want := range []string{
		"| `listen_synack_drop=1` | 1 |",
		"| (none of its switches) | 1 |",
		"| synack-listener-ipv4.pkt | `listen_synack_drop=1` |",
		"| wrong-ipv4.pkt | (none: line 2: close returned 0",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if st := Main([]string{"--blame=solaris", dir}, &out, &errb); st != 2 {
		t.Errorf("--blame=solaris: exit %d, want 2", st)
	}
}
