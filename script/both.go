package script

import (
	"fmt"
	"strings"
)

// Difference is a line where the kernel and the engine did not agree:
// one passed and the other did not, or both failed differently.
type Difference struct {
	Line   int        `json:"line"` // source line; 0 for the end-of-script check
	Text   string     `json:"text"`
	Kernel LineResult `json:"kernel"` // what the kernel did at the line
	Engine LineResult `json:"engine"` // what the engine did, with its explanations and state changes
}

// RunBoth runs src against the engine (under opts.Profile) and the
// machine's kernel, and returns the kernel's report with the engine's
// beside it and the lines where they differ. It passes when both pass.
// Errors are RunLinux's.
func RunBoth(src []byte, opts Options) (*Report, error) {
	eng, err := Run(src, opts)
	if err != nil {
		return nil, err
	}
	kern, err := RunLinux(src, opts)
	if kern == nil {
		return nil, err
	}
	kern.Target, kern.Engine = TargetBoth, eng
	kern.Passed = kern.Passed && eng.Passed
	kern.Differences = Diff(kern, eng)
	if kern.Failure == "" && !eng.Passed {
		kern.Failure = "the engine: " + eng.Failure
	}
	return kern, err
}

// Diff pairs two reports of one script line by line and returns where
// they differ. A line one side did not run because an earlier line had
// failed is not a difference: the earlier line is.
func Diff(kernel, engine *Report) []Difference {
	byLine := map[int]LineResult{}
	for _, l := range engine.Lines {
		byLine[l.Line] = l
	}
	notRun := func(l LineResult) bool {
		return l.Status == StatusSkip && strings.HasPrefix(l.Reason, "not run:")
	}
	var out []Difference
	seen := map[int]bool{}
	for _, k := range kernel.Lines {
		seen[k.Line] = true
		e, ok := byLine[k.Line]
		if !ok {
			e = LineResult{Line: k.Line, Text: k.Text, Status: "ABSENT", Reason: "the engine's run has no such line"}
		}
		if differ(k, e) && !notRun(k) && !notRun(e) && !(kernel.Compare == CompareSemantic.String() && sameSemanticFailure(k, e)) {
			out = append(out, Difference{Line: k.Line, Text: k.Text, Kernel: k, Engine: e})
		}
	}
	for _, e := range engine.Lines {
		if !seen[e.Line] && e.Status == StatusFail {
			out = append(out, Difference{Line: e.Line, Text: e.Text, Engine: e,
				Kernel: LineResult{Line: e.Line, Text: e.Text, Status: "ABSENT", Reason: "the kernel's run has no such line"}})
		}
	}
	return out
}

func differ(k, e LineResult) bool {
	if k.Status != e.Status {
		return true
	}
	return k.Status == StatusFail && k.Reason != e.Reason
}

// writeDifferences writes a both-target report's differences for people.
func (r *Report) writeDifferences(b *strings.Builder) {
	eng := "PASS"
	if r.Engine != nil && !r.Engine.Passed {
		eng = "FAIL"
	}
	fmt.Fprintf(b, "  engine: %s; %d line(s) where the kernel and the engine differ\n", eng, len(r.Differences))
	side := func(who string, l LineResult) {
		what := l.Actual
		if what == "" {
			what = l.Reason
		}
		fmt.Fprintf(b, "         %-7s %s %s\n", who+":", l.Status, what)
		if l.Reason != "" && l.Reason != what {
			fmt.Fprintf(b, "                 reason: %s\n", l.Reason)
		}
	}
	for _, d := range r.Differences {
		text := d.Text
		if i := strings.IndexByte(text, '\n'); i >= 0 {
			text = text[:i] + " ..."
		}
		fmt.Fprintf(b, "  %4d DIFF %s\n", d.Line, text)
		side("kernel", d.Kernel)
		side("engine", d.Engine)
		for _, t := range d.Engine.Transitions {
			fmt.Fprintf(b, "                 state:  %s\n", t)
		}
		for _, x := range d.Engine.Engine {
			fmt.Fprintf(b, "                 engine: %s\n", x)
		}
	}
}
