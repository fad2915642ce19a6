package suite

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/tcpstated/tcpstated/fsm"
	"github.com/tcpstated/tcpstated/script"
)

const usage = `usage: script suite [flags] [--floors=FILE] [--failures] DIR

Runs every *.pkt file under DIR, each in a fresh engine on a virtual clock,
and prints a Markdown table of how many passed, by top-level folder and
IP version. With --floors, exits 1 if a folder passed fewer scripts than
its floor (a file of "FOLDER MIN" lines; "total" for the whole run).

` + script.RunFlagsUsage + `  --floors=FILE   fail (exit 1) when a folder is below its floor
  --failures      list every script that did not pass, with its first failure
  --title=TEXT    the table's heading (default: the directory and profile)
  --blame=PROFILE for each script that failed, run it again with each one
                  switch of PROFILE (such as freebsd) set in turn, and list
                  the switches under which it passes: the choice that
                  separates this profile's answer from PROFILE's

Exit status: 0 done (and every floor met), 1 a floor not met, 2 usage error.
`

// Main implements "script suite". Scripts that fail, or do not parse, are
// counted, not fatal: a suite written for another stack is expected to
// have some of each.
func Main(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("script suite", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	var rf script.RunFlags
	rf.Register(fs)
	floorsFile := fs.String("floors", "", "a file of FOLDER MIN lines")
	failures := fs.Bool("failures", false, "list the scripts that did not pass")
	title := fs.String("title", "", "the table's heading")
	blame := fs.String("blame", "", "a profile whose switches are tried one by one on each failing script")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	base, err := rf.Options()
	if err != nil {
		fmt.Fprintf(stderr, "script suite: %v\n", err)
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(stderr, "script suite: want one directory, got %d arguments\n%s", fs.NArg(), usage)
		return 2
	}
	dir := fs.Arg(0)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		fmt.Fprintf(stderr, "script suite: %s is not a directory\n", dir)
		return 2
	}
	var floors []Floor
	if *floorsFile != "" {
		f, err := os.Open(*floorsFile)
		if err != nil {
			fmt.Fprintf(stderr, "script suite: %v\n", err)
			return 2
		}
		floors, err = ParseFloors(f)
		f.Close()
		if err != nil {
			fmt.Fprintf(stderr, "script suite: %s: %v\n", *floorsFile, err)
			return 2
		}
	}
	var blameProfile fsm.Profile
	if *blame != "" {
		var ok bool
		if blameProfile, ok = fsm.ProfileByName(*blame); !ok {
			fmt.Fprintf(stderr, "script suite: --blame: unknown profile %q\n", *blame)
			return 2
		}
	}
	runOne := func(path string, src []byte) (*script.Report, error) {
		opts := base
		opts.Name = path
		return script.Run(src, opts)
	}
	results, err := Run(dir, runOne)
	if err != nil {
		fmt.Fprintf(stderr, "script suite: %v\n", err)
		return 2
	}
	if *title == "" {
		profile := base.Profile
		if profile == "" {
			profile = "rfc (or each script's own)"
		}
		compare := base.Compare.String()
		if base.Compare == script.CompareAuto {
			compare = "each script's own (else semantic)"
		}
		end := base.End.String()
		if base.End == script.EndAuto {
			end = "each script's own (else strict)"
		}
		*title = fmt.Sprintf("### %s\n\nprofile %s; compare %s; end-of-script rule %s", dir, profile, compare, end)
	}
	rows := Tally(results)
	if err := WriteTable(stdout, *title, rows); err != nil {
		fmt.Fprintf(stderr, "script suite: %v\n", err)
		return 2
	}
	if *failures {
		if err := WriteFailures(stdout, results); err != nil {
			fmt.Fprintf(stderr, "script suite: %v\n", err)
			return 2
		}
	}
	if *blame != "" {
		blamed := Blame(dir, results, blameProfile, func(path string, src []byte, sws [][2]string) (*script.Report, error) {
			opts := base
			opts.Name = path
			cfg := fsm.Config{ISNMode: fsm.ISNFixed}
			for _, sw := range sws {
				if err := cfg.SetSwitch(sw[0], sw[1]); err != nil {
					return nil, err
				}
			}
			opts.Config = &cfg
			return script.Run(src, opts)
		})
		if err := WriteBlame(stdout, blameProfile.Name, blamed); err != nil {
			fmt.Fprintf(stderr, "script suite: %v\n", err)
			return 2
		}
	}
	if msgs := CheckFloors(rows, floors); len(msgs) > 0 {
		for _, m := range msgs {
			fmt.Fprintf(stderr, "script suite: %s\n", m)
		}
		return 1
	}
	return 0
}
