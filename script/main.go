package script

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/tcpstated/tcpstated/script/reports"
)

const usage = `usage: script run [flags] FILE...
       script suite [flags] [--floors=FILE] [--failures] DIR

run runs packetdrill scripts against a fresh tcpstated engine on a virtual
clock and reports, for every line, what was expected, what happened and
why a line failed. suite runs every *.pkt under DIR (such as the FreeBSD
TCP test suite) and prints one table of passes by folder and IP version.

` + RunFlagsUsage + `  --target=T      run: engine (the default: a fresh engine on a virtual clock
                  per script), linux (this machine's kernel, in a network
                  namespace of the run's own; needs root and TUN), both (the
                  engine under --profile and the kernel, with the lines where
                  they differ and the engine's explanation) or dut:HOST:PORT
                  (a device under test: the stack behind a DUT agent, on the
                  wall clock; see docs/GRADING.md)
  --timeout=D     run: interrupt a wall-clock run (linux, both, dut) after D,
                  such as 30s; a run interrupted by SIGINT, SIGTERM or the
                  timeout exits 2
  --format=F      run: text (the default), json, junit (JUnit XML) or
                  gradescope (Gradescope's results.json)
  --json          run: one JSON report per file, one per line
  --verbose       run: list passing lines too, with the engine's explanations

Exit status: 0 every script passed, 1 a script failed, 2 usage or syntax error.
`

// RunFlagsUsage documents the flags RunFlags registers.
const RunFlagsUsage = `  --compare=MODE  strict: every field packetdrill compares; semantic: the
                  SYN/ACK/FIN/RST flags, seq, ack and payload length only.
                  Default: the script's "// compare:" comment, else semantic.
  --profile=NAME  the engine's behaviour profile: rfc, freebsd or linux; it
                  also defines the profile's OS name (FreeBSD, Linux) for
                  #ifdef lines.
                  Default: the script's --tcpstated_profile option, else rfc.
  --end=RULE      packets the engine sends after the script's last line:
                  strict (the default) fails the script; packetdrill lists
                  them without judging, as packetdrill does. Default: the
                  script's --tcpstated_end option, else strict.
  --define NAME   define NAME for the script's #ifdef NAME lines (repeatable)
  --late-tolerance=DURATION
                  on the kernel target (linux, both), let a packet or a
                  blocking call's return come up to DURATION later than the
                  script's --tolerance_usecs allows (never earlier): the
                  lateness of a loaded host, not of the kernel's TCP. Keep
                  it under 40 ms, Linux's shortest delayed-ACK timeout.
                  Default 0, packetdrill's rule.
  --coalesce      present contiguous data segments emitted at the same
                  instant as the one GSO super-segment a > line longer than
                  the first of them expects (scripts recorded on a
                  GSO-capable packetdrill device). Default off.
`

// RunFlags are the command-line flags that choose how scripts run; the
// run and suite commands share them.
type RunFlags struct {
	compare, end, profile string
	defines               names
	late                  time.Duration
	coalesce              bool
}

// Register adds the flags to fs.
func (f *RunFlags) Register(fs *flag.FlagSet) {
	fs.StringVar(&f.compare, "compare", "", "strict or semantic (default: the script's own, else semantic)")
	fs.StringVar(&f.end, "end", "", "strict or packetdrill (default: the script's own, else strict)")
	fs.StringVar(&f.profile, "profile", "", "rfc, freebsd or linux (default: the script's own, else rfc)")
	fs.Var(&f.defines, "define", "define NAME for #ifdef NAME (repeatable)")
	fs.BoolVar(&f.coalesce, "coalesce", false, "show contiguous segments emitted at one instant as the GSO super-segment a longer > line expects")
	fs.DurationVar(&f.late, "late-tolerance", 0, "kernel target: lateness allowed beyond the script's tolerance (never earliness)")
}

// Options checks the flags and returns the run options they give.
func (f *RunFlags) Options() (Options, error) {
	mode, err := ParseCompareMode(f.compare)
	if err != nil || f.compare == "auto" {
		return Options{}, fmt.Errorf("--compare: want strict or semantic, got %q", f.compare)
	}
	end, err := ParseEndRule(f.end)
	if err != nil || f.end == "auto" {
		return Options{}, fmt.Errorf("--end: want strict or packetdrill, got %q", f.end)
	}
	if f.profile != "" {
		if _, err := profileOS(f.profile); err != nil {
			return Options{}, fmt.Errorf("--profile: %v", err)
		}
	}
	if f.late < 0 {
		return Options{}, fmt.Errorf("--late-tolerance: %v is negative", f.late)
	}
	return Options{Compare: mode, End: end, Profile: f.profile, Defines: f.defines, LateTolerance: f.late, Coalesce: f.coalesce}, nil
}

// Main implements "script run [flags] FILE...". It returns the exit
// status: 0 when every script passed, 1 when one failed, 2 for a usage
// error or a script that does not parse.
// EncodeReport, when set, writes each report of `script run --json`
// (cmd/tcpstated sets it to print the API's RunScriptResponse in proto3
// JSON, the one report schema); unset, reports are Report in encoding/json.
var EncodeReport func(w io.Writer, r *Report) error

type reportEnc struct {
	w   io.Writer
	enc *json.Encoder
}

func reportEncoder(w io.Writer) *reportEnc { return &reportEnc{w, json.NewEncoder(w)} }

func (e *reportEnc) Encode(r *Report) error {
	if EncodeReport != nil {
		return EncodeReport(e.w, r)
	}
	return e.enc.Encode(r)
}

func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] != "run" {
		fmt.Fprintf(stderr, "script: unknown command %q\n%s", args[0], usage)
		return 2
	}
	fs := flag.NewFlagSet("script run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	var rf RunFlags
	rf.Register(fs)
	asJSON := fs.Bool("json", false, "one JSON report per file")
	verbose := fs.Bool("verbose", false, "list every line")
	targetFlag := fs.String("target", "engine", "engine, linux, both or dut:HOST:PORT")
	timeout := fs.Duration("timeout", 0, "interrupt a wall-clock run after this long (0: never)")
	format := fs.String("format", "text", "text, json, junit or gradescope")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	base, err := rf.Options()
	if err != nil {
		fmt.Fprintf(stderr, "script run: %v\n", err)
		return 2
	}
	switch *format {
	case "text":
	case "json":
		*asJSON = true
	case "junit", "gradescope":
	default:
		fmt.Fprintf(stderr, "script run: --format: want text, json, junit or gradescope, got %q\n", *format)
		return 2
	}
	var cases []reports.Case
	ts, err := parseTarget(*targetFlag)
	if err != nil {
		fmt.Fprintf(stderr, "script run: %v\n", err)
		return 2
	}
	runOne, release, err := ts.runner(*timeout)
	if err != nil {
		fmt.Fprintf(stderr, "script run: %v\n", err)
		return 2
	}
	defer release()
	files := fs.Args()
	if len(files) == 0 {
		fmt.Fprintf(stderr, "script run: no script files given\n%s", usage)
		return 2
	}
	status := 0
	enc := reportEncoder(stdout)
	for _, name := range files {
		opts := base
		opts.Name = name
		rep, err := runFile(name, opts, runOne)
		if rep != nil && errors.Is(err, ErrInterrupted) {
			fmt.Fprintf(stderr, "script run: %s: %v\n", name, err)
			status = 2
			if *asJSON {
				_ = enc.Encode(rep)
			} else if *format == "text" {
				_ = rep.WriteText(stdout, *verbose)
			} else {
				cases = append(cases, caseOf(rep))
			}
			break
		}
		if err != nil {
			fmt.Fprintf(stderr, "script run: %v\n", err)
			status = 2
			if *asJSON {
				_ = enc.Encode(&Report{Script: name, Compare: opts.Compare.String(), Failure: err.Error(), Error: err.Error(), Lines: []LineResult{}})
			}
			continue
		}
		if !rep.Passed && status == 0 {
			status = 1
		}
		if *format == "junit" || *format == "gradescope" {
			cases = append(cases, caseOf(rep))
			continue
		}
		if *asJSON {
			if err := enc.Encode(rep); err != nil {
				fmt.Fprintf(stderr, "script run: %v\n", err)
				return 2
			}
			continue
		}
		if err := rep.WriteText(stdout, *verbose); err != nil {
			fmt.Fprintf(stderr, "script run: %v\n", err)
			return 2
		}
	}
	var werr error
	switch *format {
	case "junit":
		werr = reports.WriteJUnit(stdout, "tcpstated", cases)
	case "gradescope":
		werr = reports.WriteGradescope(stdout, cases)
	}
	if werr != nil {
		fmt.Fprintf(stderr, "script run: %v\n", werr)
		return 2
	}
	return status
}

// caseOf is a report as a graded case: the failing line with what was
// expected, what the stack did and what the engine said.
func caseOf(rep *Report) reports.Case {
	c := reports.Case{Name: rep.Script, Passed: rep.Passed, Failure: rep.Failure, Seconds: rep.EndTime}
	for _, l := range rep.Lines {
		if l.Status != StatusFail {
			continue
		}
		var b strings.Builder
		fmt.Fprintf(&b, "line %d: %s\n", l.Line, l.Text)
		if l.Expected != "" {
			fmt.Fprintf(&b, "expected: %s\n", l.Expected)
		}
		if l.Actual != "" {
			fmt.Fprintf(&b, "actual:   %s\n", l.Actual)
		}
		fmt.Fprintf(&b, "reason:   %s\n", l.Reason)
		for _, x := range l.Engine {
			fmt.Fprintf(&b, "engine:   %s\n", x)
		}
		c.Detail = b.String()
		break
	}
	return c
}

// names is a repeatable string flag.
type names []string

func (n *names) String() string { return strings.Join(*n, ",") }

func (n *names) Set(v string) error {
	if v == "" || strings.ContainsAny(v, " \t") {
		return fmt.Errorf("want a name without blanks, got %q", v)
	}
	*n = append(*n, v)
	return nil
}

func runFile(name string, opts Options, run func([]byte, Options) (*Report, error)) (*Report, error) {
	src, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(string(src)) == "" {
		return nil, fmt.Errorf("%s: the script is empty", name)
	}
	return run(src, opts)
}
