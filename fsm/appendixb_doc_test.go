package fsm

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestAppendixBTableHonest keeps the table "RFC 9293 Appendix B: every
// requirement" in docs/CONFORMANCE.md honest: it has one row for each
// requirement of RFC 9293 Appendix B (MUST-1 to MUST-69, SHLD-1 to
// SHLD-31, MAY-1 to MAY-18, REC-1), every MUST row names at least one
// test, and every test a row names exists: a func TestX in fsm/ (or in
// script/ for script.TestX), a case of TestAppendixB for TestAppendixB/ID,
// or a file for testdata/scripts/NAME.pkt. Every case of TestAppendixB is
// named in some row.
func TestAppendixBTableHonest(t *testing.T) {
	doc, err := os.ReadFile("../docs/CONFORMANCE.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := appendixBRows(t, string(doc))

	want := map[string]bool{"REC-1": true}
	for kind, n := range map[string]int{"MUST": 69, "SHLD": 31, "MAY": 18} {
		for i := 1; i <= n; i++ {
			want[fmt.Sprintf("%s-%d", kind, i)] = true
		}
	}
	seen := map[string]bool{}
	for _, r := range rows {
		switch {
		case !want[r.id]:
			t.Errorf("row %s: not a requirement of RFC 9293 Appendix B", r.id)
		case seen[r.id]:
			t.Errorf("row %s: listed twice", r.id)
		}
		seen[r.id] = true
	}
	for id := range want {
		if !seen[id] {
			t.Errorf("no row for %s", id)
		}
	}

	funcs := map[string]map[string]bool{"fsm": testFuncs(t, "."), "script": testFuncs(t, "../script")}
	cases := map[string]bool{}
	for _, c := range appendixBCases {
		cases[c.id] = true
	}
	named := map[string]bool{}
	for _, r := range rows {
		if strings.HasPrefix(r.id, "MUST-") && len(r.tests) == 0 {
			t.Errorf("row %s: a MUST without a test", r.id)
		}
		for _, name := range r.tests {
			if err := checkTestName(name, funcs, cases); err != nil {
				t.Errorf("row %s: %v", r.id, err)
			}
			if c, ok := strings.CutPrefix(name, "TestAppendixB/"); ok {
				named[c] = true
			}
		}
	}
	for c := range cases {
		if !named[c] {
			t.Errorf("TestAppendixB/%s is in no row of the table", c)
		}
	}
}

type appendixBRow struct {
	id    string
	tests []string
}

var (
	appendixBRowRE = regexp.MustCompile(`^\| ((?:MUST|SHLD|MAY|REC)-\d+) \|`)
	backquotedRE   = regexp.MustCompile("`([^`]+)`")
	testFuncRE     = regexp.MustCompile(`(?m)^func (Test\w+)\(t \*testing\.T\)`)
)

// appendixBRows parses the section's table: the first column is the
// requirement, the last the tests, each in backquotes.
func appendixBRows(t *testing.T, doc string) []appendixBRow {
	t.Helper()
	_, sec, ok := strings.Cut(doc, "\n## RFC 9293 Appendix B: every requirement\n")
	if !ok {
		t.Fatal(`docs/CONFORMANCE.md has no section "RFC 9293 Appendix B: every requirement"`)
	}
	if i := strings.Index(sec, "\n## "); i >= 0 {
		sec = sec[:i]
	}
	var rows []appendixBRow
	for _, line := range strings.Split(sec, "\n") {
		m := appendixBRowRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		cols := strings.Split(strings.Trim(line, "| "), " | ")
		if len(cols) != 5 {
			t.Errorf("row %s: %d columns, want 5 (requirement, section, text, what tcpstated does, tests)", m[1], len(cols))
			continue
		}
		r := appendixBRow{id: m[1]}
		for _, b := range backquotedRE.FindAllStringSubmatch(cols[4], -1) {
			r.tests = append(r.tests, b[1])
		}
		rows = append(rows, r)
	}
	return rows
}

// testFuncs returns the names of the test functions in dir's _test.go files.
func testFuncs(t *testing.T, dir string) map[string]bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files in %s: %v", dir, err)
	}
	names := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range testFuncRE.FindAllSubmatch(b, -1) {
			names[string(m[1])] = true
		}
	}
	return names
}

func checkTestName(name string, funcs map[string]map[string]bool, cases map[string]bool) error {
	if strings.HasPrefix(name, "testdata/scripts/") {
		if !strings.HasSuffix(name, ".pkt") {
			return fmt.Errorf("%s: a script is a .pkt file", name)
		}
		if _, err := os.Stat(filepath.Join("..", name)); err != nil {
			return fmt.Errorf("%s: %v", name, err)
		}
		return nil
	}
	pkg := "fsm"
	if rest, ok := strings.CutPrefix(name, "script."); ok {
		pkg, name = "script", rest
	}
	fn, sub, _ := strings.Cut(name, "/")
	if !strings.HasPrefix(fn, "Test") {
		return fmt.Errorf("%s: neither a test function nor a testdata/scripts file", name)
	}
	if !funcs[pkg][fn] {
		return fmt.Errorf("%s: no func %s in %s", name, fn, pkg)
	}
	if fn == "TestAppendixB" && !cases[sub] {
		return fmt.Errorf("%s: TestAppendixB has no case %q", name, sub)
	}
	return nil
}
