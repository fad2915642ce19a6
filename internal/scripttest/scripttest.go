// Package scripttest helps tests name a line of a project script by its
// text, so that a failure a test expects does not break when lines are
// added above it.
package scripttest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Line returns the 1-based number of the nth line of
// testdata/scripts/name (dir is the path to testdata/scripts from the
// test's package) that begins with text.
func Line(t testing.TB, dir, name, text string, nth int) int {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(src), "\n") {
		if strings.HasPrefix(l, text) {
			if nth--; nth == 0 {
				return i + 1
			}
		}
	}
	t.Fatalf("%s has no line %q", name, text)
	return 0
}
