package script

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/tcpstated/tcpstated/fsm"
)

// libraryDir is testdata/scripts at the top of the repository.
func libraryDir(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("runtime.Caller failed")
	}
	return filepath.Join(filepath.Dir(file), "..", "testdata", "scripts")
}

type libScript struct {
	name     string
	src      []byte
	knownBug string // from a "// known-bug: ..." header comment
}

func loadLibrary(t *testing.T) []libScript {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(libraryDir(t), "*.pkt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 40 {
		t.Fatalf("the library has %d scripts; it must have at least 40", len(files))
	}
	var out []libScript
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		ls := libScript{name: filepath.Base(f), src: src}
		for _, line := range strings.Split(string(src), "\n") {
			if bug, ok := strings.CutPrefix(line, "// known-bug:"); ok {
				ls.knownBug = strings.TrimSpace(bug)
			}
		}
		out = append(out, ls)
	}
	return out
}

// checkHeader enforces the library's conventions: a header comment saying
// what the script tests and the RFC section, and a compare directive.
func checkHeader(t *testing.T, ls libScript, s *Script) {
	t.Helper()
	head := string(ls.src)
	if len(s.Events) > 0 {
		head = strings.Join(strings.SplitN(head, "\n", s.Events[0].Pos.Line)[:s.Events[0].Pos.Line-1], "\n")
	}
	if !strings.HasPrefix(head, "// ") {
		t.Errorf("%s: must start with a comment saying what it tests", ls.name)
	}
	if !strings.Contains(head, "RFC ") {
		t.Errorf("%s: the header comment must cite the RFC section it tests", ls.name)
	}
	if s.Compare == CompareAuto {
		t.Errorf("%s: must declare // compare: strict or // compare: semantic", ls.name)
	}
}

// TestLibrary runs every script of testdata/scripts in the mode it
// declares. A script marked "// known-bug:" documents an engine bug: it
// must fail (and the test says so); when the engine is fixed it passes, and
// this test asks for the marker to be removed.
func TestLibrary(t *testing.T) {
	for _, ls := range loadLibrary(t) {
		t.Run(strings.TrimSuffix(ls.name, ".pkt"), func(t *testing.T) {
			s, err := Parse(ls.name, ls.src)
			if err != nil {
				t.Fatal(err)
			}
			checkHeader(t, ls, s)
			rep, err := Run(ls.src, Options{Name: ls.name})
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case ls.knownBug != "" && rep.Passed:
				t.Errorf("%s passes now: the engine bug (%s) seems fixed; remove the known-bug marker", ls.name, ls.knownBug)
			case ls.knownBug != "":
				t.Logf("known engine bug, the script fails as expected: %s\n%s", ls.knownBug, rep.Text())
			case !rep.Passed:
				t.Errorf("script failed:\n%s", verboseText(rep))
			}
		})
	}
}

func verboseText(r *Report) string {
	var b strings.Builder
	_ = r.WriteText(&b, true)
	return b.String()
}

// TestLibraryRandomISN runs the library again on engines with RFC 6528
// random ISNs and a remote ISN just below 2^32, through RunOn: every
// sequence number in the scripts is relative, so the results must be the
// same. This checks the runner's relative numbering (and the engine's
// modular arithmetic).
func TestLibraryRandomISN(t *testing.T) {
	for _, ls := range loadLibrary(t) {
		t.Run(strings.TrimSuffix(ls.name, ".pkt"), func(t *testing.T) {
			s, err := Parse(ls.name, ls.src)
			if err != nil {
				t.Fatal(err)
			}
			base := fsm.Config{ISNMode: fsm.ISNRandom, Secret: [16]byte{7, 1, 2, 3}}
			cfg, _ := s.EngineConfig(base)
			rep, err := RunOn(fsm.New(cfg), ls.src, Options{Name: ls.name, RemoteISN: 1<<32 - 300})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Passed == (ls.knownBug != "") {
				t.Errorf("passed=%v with random ISNs (known bug %q):\n%s", rep.Passed, ls.knownBug, verboseText(rep))
			}
		})
	}
}
