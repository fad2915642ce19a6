package fsm

import (
	"os"
	"strings"
	"testing"
)

// TestSwitchTableDocumented: docs/CONFORMANCE.md has a row for every
// behaviour switch with its rfc, freebsd and linux values.
func TestSwitchTableDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/CONFORMANCE.md")
	if err != nil {
		t.Fatal(err)
	}
	values := func(name string) map[string]string {
		p, _ := ProfileByName(name)
		val := map[string]string{}
		for _, kv := range p.Settings {
			val[kv[0]] = kv[1]
		}
		return val
	}
	fb, lx := values("freebsd"), values("linux")
	for _, s := range Switches() {
		f, ok := fb[s.Name]
		if !ok {
			f = s.RFC
		}
		l, ok := lx[s.Name]
		if !ok {
			l = s.RFC
		}
		if row := "| `" + s.Name + "` | " + s.RFC + " | " + f + " | " + l + " |"; !strings.Contains(string(doc), row) {
			t.Errorf("docs/CONFORMANCE.md lacks the row %q", row)
		}
	}
}
