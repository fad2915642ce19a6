package suite

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/tcpstated/tcpstated/fsm"
	"github.com/tcpstated/tcpstated/script"
)

// SwitchRunFunc runs one script with the behaviour switches set.
type SwitchRunFunc func(path string, src []byte, sws [][2]string) (*script.Report, error)

// Blamed is a failing script and the switches of a profile under which,
// set alone, it passes; or, where no single one does, the smallest set
// found that does (Together). Neither means the profile's switches do not
// explain the failure (a feature the engine lacks, or the profile's own
// failure).
type Blamed struct {
	Result
	Switches []string // "name=value", each enough alone
	Together []string // "name=value", needed together
}

// Blame runs each failing, parsed script of results again once per switch
// of p, and keeps the switches under which it passes. Where none does
// alone, it starts from all of p's switches and drops each one the script
// still passes without, which leaves a set that is needed together.
func Blame(dir string, results []Result, p fsm.Profile, run SwitchRunFunc) []Blamed {
	var out []Blamed
	for _, r := range results {
		if r.Passed || r.Syntax {
			continue
		}
		b := Blamed{Result: r}
		path := filepath.Join(dir, filepath.FromSlash(r.Path))
		src, err := os.ReadFile(path)
		if err == nil {
			passes := func(sws [][2]string) bool {
				rep, err := run(path, src, sws)
				return err == nil && rep.Passed
			}
			for _, sw := range p.Settings {
				if passes([][2]string{sw}) {
					b.Switches = append(b.Switches, sw[0]+"="+sw[1])
				}
			}
			if len(b.Switches) == 0 && passes(p.Settings) {
				set := append([][2]string(nil), p.Settings...)
				for i := 0; i < len(set); {
					without := append(append([][2]string(nil), set[:i]...), set[i+1:]...)
					if passes(without) {
						set = without
						continue
					}
					i++
				}
				for _, sw := range set {
					b.Together = append(b.Together, sw[0]+"="+sw[1])
				}
			}
		}
		out = append(out, b)
	}
	return out
}

// WriteBlame prints a Markdown table: each failing script and the
// switches of the profile that make it pass, counted by switch first.
func WriteBlame(w io.Writer, profile string, bs []Blamed) error {
	counts := map[string]int{}
	var order []string
	none := 0
	for _, b := range bs {
		keys := b.Switches
		if len(b.Together) > 0 {
			keys = []string{strings.Join(b.Together, " + ")}
		}
		if len(keys) == 0 {
			none++
		}
		for _, s := range keys {
			if counts[s] == 0 {
				order = append(order, s)
			}
			counts[s]++
		}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "\nFailing scripts that one switch of profile %s makes pass (or a few together):\n\n| switch | scripts |\n|---|---|\n", profile)
	for _, s := range order {
		fmt.Fprintf(&sb, "| `%s` | %d |\n", s, counts[s])
	}
	fmt.Fprintf(&sb, "| (none of its switches) | %d |\n\n| script | switches |\n|---|---|\n", none)
	for _, b := range bs {
		sw := "(none: " + strings.ReplaceAll(oneLine(b.Failure), "|", `\|`) + ")"
		switch {
		case len(b.Switches) > 0:
			sw = "`" + strings.Join(b.Switches, "`, `") + "`"
		case len(b.Together) > 0:
			sw = "together: `" + strings.Join(b.Together, "` + `") + "`"
		}
		fmt.Fprintf(&sb, "| %s | %s |\n", b.Path, sw)
	}
	_, err := io.WriteString(w, sb.String())
	return err
}
