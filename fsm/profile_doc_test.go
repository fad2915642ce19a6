package fsm

import (
	"os"
	"strings"
	"testing"
)

// TestSwitchTableDocumented: docs/CONFORMANCE.md has a row for every
// behaviour switch with its rfc and freebsd values.
func TestSwitchTableDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/CONFORMANCE.md")
	if err != nil {
		t.Fatal(err)
	}
	fb, _ := ProfileByName("freebsd")
	val := map[string]string{}
	for _, kv := range fb.Settings {
		val[kv[0]] = kv[1]
	}
	for _, s := range Switches() {
		f, ok := val[s.Name]
		if !ok {
			f = s.RFC
		}
		if row := "| `" + s.Name + "` | " + s.RFC + " | " + f + " |"; !strings.Contains(string(doc), row) {
			t.Errorf("docs/CONFORMANCE.md lacks the row %q", row)
		}
	}
}
