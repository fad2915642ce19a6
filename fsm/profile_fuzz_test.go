package fsm

import "testing"

// FuzzSetSwitch: any name and value: SetSwitch never panics, a refused
// value leaves the Config as it was, and an accepted one reads back in a
// form SetSwitch takes to the same Config.
func FuzzSetSwitch(f *testing.F) {
	for _, s := range switches {
		f.Add(s.Name, s.RFC)
	}
	for _, p := range profiles {
		for _, kv := range p.Settings {
			f.Add(kv[0], kv[1])
		}
	}
	for _, seed := range [][2]string{{"insecure_rst", "1"}, {"keepidle", "1.5s"}, {"rexmit_slop", "200"}, {"keepcnt", "-1"}, {"msl", "25h"}, {"nope", "1"}, {"tw_bsd", "yes"}} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, name, value string) {
		var c Config
		before := c
		if err := c.SetSwitch(name, value); err != nil {
			if c != before {
				t.Fatalf("refused SetSwitch(%q, %q) changed the config", name, value)
			}
			return
		}
		got, ok := c.Switch(name)
		if !ok {
			t.Fatalf("accepted switch %q does not read back", name)
		}
		again := before
		if err := again.SetSwitch(name, got); err != nil || again != c {
			t.Fatalf("SetSwitch(%q, %q) read back %q, which gives %+v, %v", name, value, got, again, err)
		}
	})
}
