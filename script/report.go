package script

import (
	"fmt"
	"io"
	"strings"
)

// Line kinds in a report.
const (
	KindPacketIn  = "packet_in"  // a < line
	KindPacketOut = "packet_out" // a > line, or the end-of-script check for unexpected packets
	KindSyscall   = "syscall"
	KindOption    = "option" // a --name=value header option
	KindSkip      = "skip"   // a shell command or python block
)

// Line statuses in a report.
const (
	StatusPass = "PASS"
	StatusFail = "FAIL"
	StatusSkip = "SKIP" // not run: not supported, or after the first failure
)

// Report is the result of running a script.
type Report struct {
	Passed  bool         `json:"passed"`
	Session string       `json:"session"`         // the session the script ran in ("" when run locally)
	Script  string       `json:"script"`          // file name
	Compare string       `json:"compare"`         // "strict" or "semantic"
	Failure string       `json:"failure"`         // the first failure, "line N: reason"; "" when passed
	Lines   []LineResult `json:"lines"`           // one per option and event line, in order
	Skipped int          `json:"skipped"`         // lines not honoured: ignored options, shell, python, unsupported calls
	NotRun  int          `json:"not_run"`         // lines after the first failure
	EndTime float64      `json:"end_time"`        // the engine clock at the end, in script seconds
	Error   string       `json:"error,omitempty"` // a syntax error: the script did not run
	// Target is what the script ran against: "" (the engine), "linux"
	// or "both" (then Lines are the kernel's, Engine the engine's report).
	Target      string       `json:"target,omitempty"`
	Engine      *Report      `json:"engine,omitempty"`
	Differences []Difference `json:"differences,omitempty"` // target both: the lines where kernel and engine differ
}

// LineResult is what happened at one line.
type LineResult struct {
	Line        int      `json:"line"`                  // source line; 0 for the end-of-script check
	Time        float64  `json:"time"`                  // script seconds the line ran at (for > lines, when the packet was emitted)
	Text        string   `json:"text"`                  // the source text
	Kind        string   `json:"kind"`                  // packet_in, packet_out, syscall, option, skip
	Expected    string   `json:"expected,omitempty"`    // the packet or result the script expects
	Actual      string   `json:"actual,omitempty"`      // what the engine emitted or the call returned; for < lines, the segment sent (absolute numbers)
	Status      string   `json:"status"`                // PASS, FAIL or SKIP
	Reason      string   `json:"reason,omitempty"`      // why it failed or was skipped
	Notes       []string `json:"notes,omitempty"`       // differences not judged in this mode, and how the runner read the line
	Transitions []string `json:"transitions,omitempty"` // state changes the line caused (or timers fired before it)
	Engine      []string `json:"engine,omitempty"`      // the engine's explanations (fsm.Explanation.String) of what it did
}

// WriteText writes the report for people: a summary line, then each line
// with its status; failures get the expected, actual and reason.
func (r *Report) WriteText(w io.Writer, verbose bool) error {
	var b strings.Builder
	status := "PASS"
	if !r.Passed {
		status = "FAIL"
	}
	name := r.Script
	if name == "" {
		name = "(script)"
	}
	fmt.Fprintf(&b, "%s: %s (%s compare", name, status, r.Compare)
	if r.Target != "" {
		fmt.Fprintf(&b, ", target %s", r.Target)
	}
	if r.Session != "" {
		fmt.Fprintf(&b, ", session %s", r.Session)
	}
	fmt.Fprintf(&b, ", %d lines, %d skipped", len(r.Lines), r.Skipped)
	if r.NotRun > 0 {
		fmt.Fprintf(&b, ", %d not run", r.NotRun)
	}
	b.WriteString(")\n")
	if r.Error != "" {
		fmt.Fprintf(&b, "  error: %s\n", r.Error)
	}
	for _, l := range r.Lines {
		if !verbose && l.Status == StatusPass && len(l.Notes) == 0 {
			continue
		}
		if !verbose && l.Status == StatusSkip && strings.HasPrefix(l.Reason, "not run:") {
			continue
		}
		text := l.Text
		if i := strings.IndexByte(text, '\n'); i >= 0 {
			text = text[:i] + " ..."
		}
		fmt.Fprintf(&b, "  %4d %10.6f %-4s %s\n", l.Line, l.Time, l.Status, text)
		if l.Status == StatusFail {
			if l.Expected != "" {
				fmt.Fprintf(&b, "         expected: %s\n", l.Expected)
			}
			if l.Actual != "" {
				fmt.Fprintf(&b, "         actual:   %s\n", l.Actual)
			}
		}
		if l.Reason != "" && l.Status != StatusPass {
			fmt.Fprintf(&b, "         reason:   %s\n", l.Reason)
		}
		for _, n := range l.Notes {
			fmt.Fprintf(&b, "         note:     %s\n", n)
		}
		if verbose || l.Status == StatusFail {
			for _, t := range l.Transitions {
				fmt.Fprintf(&b, "         state:    %s\n", t)
			}
			for _, x := range l.Engine {
				fmt.Fprintf(&b, "         engine:   %s\n", x)
			}
		}
	}
	if r.NotRun > 0 && !verbose {
		fmt.Fprintf(&b, "  (%d lines after the failure were not run)\n", r.NotRun)
	}
	if r.Target == TargetBoth {
		r.writeDifferences(&b)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Text renders the report as WriteText does, without passing lines.
func (r *Report) Text() string {
	var b strings.Builder
	_ = r.WriteText(&b, false)
	return b.String()
}
