package script

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

const usage = `usage: script run [--compare=strict|semantic] [--end=strict|packetdrill] [--define NAME]... [--json] [--verbose] FILE...

Runs packetdrill scripts against a fresh tcpstated engine on a virtual
clock and reports, for every line, what was expected, what happened and
why a line failed.

  --compare=MODE  strict: every field packetdrill compares; semantic: the
                  SYN/ACK/FIN/RST flags, seq, ack and payload length only.
                  Default: the script's "// compare:" comment, else semantic.
  --end=RULE      packets the engine sends after the script's last line:
                  strict (the default) fails the script; packetdrill lists
                  them without judging, as packetdrill does. Default: the
                  script's --tcpstated_end option, else strict.
  --define NAME   define NAME for the script's #ifdef NAME lines (repeatable)
  --json          one JSON report per file, one per line
  --verbose       list passing lines too, with the engine's explanations

Exit status: 0 every script passed, 1 a script failed, 2 usage or syntax error.
`

// Main implements "script run [--compare=MODE] [--json] FILE...". It
// returns the exit status: 0 when every script passed, 1 when one failed,
// 2 for a usage error or a script that does not parse.
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
	compare := fs.String("compare", "", "strict or semantic (default: the script's own, else semantic)")
	asJSON := fs.Bool("json", false, "one JSON report per file")
	verbose := fs.Bool("verbose", false, "list every line")
	endRule := fs.String("end", "", "strict or packetdrill (default: the script's own, else strict)")
	var defines names
	fs.Var(&defines, "define", "define NAME for #ifdef NAME (repeatable)")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	mode, err := ParseCompareMode(*compare)
	if err != nil || *compare == "auto" {
		fmt.Fprintf(stderr, "script run: --compare: want strict or semantic, got %q\n", *compare)
		return 2
	}
	end, err := ParseEndRule(*endRule)
	if err != nil || *endRule == "auto" {
		fmt.Fprintf(stderr, "script run: --end: want strict or packetdrill, got %q\n", *endRule)
		return 2
	}
	files := fs.Args()
	if len(files) == 0 {
		fmt.Fprintf(stderr, "script run: no script files given\n%s", usage)
		return 2
	}
	status := 0
	enc := json.NewEncoder(stdout)
	for _, name := range files {
		rep, err := runFile(name, Options{Compare: mode, Name: name, Defines: defines, End: end})
		if err != nil {
			fmt.Fprintf(stderr, "script run: %v\n", err)
			status = 2
			if *asJSON {
				_ = enc.Encode(&Report{Script: name, Compare: mode.String(), Failure: err.Error(), Error: err.Error(), Lines: []LineResult{}})
			}
			continue
		}
		if !rep.Passed && status == 0 {
			status = 1
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
	return status
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

func runFile(name string, opts Options) (*Report, error) {
	src, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(string(src)) == "" {
		return nil, fmt.Errorf("%s: the script is empty", name)
	}
	return Run(src, opts)
}
