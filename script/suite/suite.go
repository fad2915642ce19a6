// Package suite runs a directory of packetdrill scripts, such as the
// FreeBSD TCP test suite or a course's library, and tallies the results
// by folder and IP version, so that a run of a thousand scripts reads as
// one table and a floor can fail a CI run that got worse.
package suite

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/tcpstated/tcpstated/script"
)

// RunFunc runs one script and returns its report, or the syntax error
// that kept it from running.
type RunFunc func(path string, src []byte) (*script.Report, error)

// Result is the outcome of one script.
type Result struct {
	Path    string // relative to the suite's directory, with forward slashes
	Folder  string // the first path element ("state-event-engine"); "." for a top-level file
	IP      string // "ipv4" or "ipv6", from the file name or --ip_version (packetdrill's default is ipv4)
	Passed  bool
	Failure string // the report's first failure, or the syntax error
	Syntax  bool   // the script did not parse
}

// Run runs every *.pkt file under dir, in path order.
func Run(dir string, run RunFunc) ([]Result, error) {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".pkt") {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	out := make([]Result, 0, len(paths))
	for _, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		r := Result{Path: rel, Folder: ".", IP: ipVersion(rel, src)}
		if i := strings.IndexByte(rel, '/'); i >= 0 {
			r.Folder = rel[:i]
		}
		rep, err := run(p, src)
		switch {
		case err != nil:
			r.Failure, r.Syntax = err.Error(), true
		case rep.Error != "":
			r.Failure, r.Syntax = rep.Error, true
		default:
			r.Passed, r.Failure = rep.Passed, rep.Failure
		}
		out = append(out, r)
	}
	return out, nil
}

// ipVersion reads the IP version from the file name (FreeBSD's suite
// ends each name with -ipv4 or -ipv6), else from --ip_version.
func ipVersion(name string, src []byte) string {
	base := strings.TrimSuffix(filepath.Base(name), ".pkt")
	switch {
	case strings.HasSuffix(base, "ipv4"):
		return "ipv4"
	case strings.HasSuffix(base, "ipv6"):
		return "ipv6"
	}
	if strings.Contains(string(src), "--ip_version=ipv6") {
		return "ipv6"
	}
	return "ipv4"
}

// Count is passed of total.
type Count struct{ Passed, Total int }

func (c Count) String() string {
	if c.Total == 0 {
		return "–"
	}
	return fmt.Sprintf("%d/%d (%.0f %%)", c.Passed, c.Total, 100*float64(c.Passed)/float64(c.Total))
}

func (c *Count) add(passed bool) {
	c.Total++
	if passed {
		c.Passed++
	}
}

// Row is one folder's tally.
type Row struct {
	Folder     string
	IPv4, IPv6 Count
	All        Count
}

// Tally groups results by folder, in folder order, with a total row last.
func Tally(results []Result) []Row {
	byFolder := map[string]*Row{}
	var names []string
	total := &Row{Folder: "total"}
	for _, r := range results {
		row := byFolder[r.Folder]
		if row == nil {
			row = &Row{Folder: r.Folder}
			byFolder[r.Folder] = row
			names = append(names, r.Folder)
		}
		for _, x := range []*Row{row, total} {
			if r.IP == "ipv6" {
				x.IPv6.add(r.Passed)
			} else {
				x.IPv4.add(r.Passed)
			}
			x.All.add(r.Passed)
		}
	}
	sort.Strings(names)
	rows := make([]Row, 0, len(names)+1)
	for _, n := range names {
		rows = append(rows, *byFolder[n])
	}
	return append(rows, *total)
}

// WriteTable writes the tally as a Markdown table under a heading.
func WriteTable(w io.Writer, title string, rows []Row) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n| folder | IPv4 | IPv6 | all |\n|---|---|---|---|\n", title)
	for _, r := range rows {
		name := r.Folder
		if name == "total" {
			name = "**total**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", name, r.IPv4, r.IPv6, r.All)
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteFailures lists every script that did not pass, with its first
// failure, one per line.
func WriteFailures(w io.Writer, results []Result) error {
	var b strings.Builder
	for _, r := range results {
		if r.Passed {
			continue
		}
		kind := "FAIL"
		if r.Syntax {
			kind = "ERROR"
		}
		fmt.Fprintf(&b, "%s %s: %s\n", kind, r.Path, oneLine(r.Failure))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func oneLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

// Floor is the least number of scripts of a folder that must pass.
type Floor struct {
	Folder string // "total" for the whole suite
	Min    int
	Line   int // in the floors file
}

// ParseFloors reads "FOLDER MIN" lines; blank lines and # comments are
// skipped.
func ParseFloors(r io.Reader) ([]Floor, error) {
	var out []Floor
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 {
			return nil, fmt.Errorf("line %d: expected FOLDER MIN, found %q", n, strings.TrimSpace(line))
		}
		min, err := strconv.Atoi(f[1])
		if err != nil || min < 0 {
			return nil, fmt.Errorf("line %d: expected a count of scripts, found %q", n, f[1])
		}
		out = append(out, Floor{Folder: f[0], Min: min, Line: n})
	}
	return out, sc.Err()
}

// CheckFloors returns one message per floor the tally is below; a floor
// for a folder the run did not have is an error too, so a renamed folder
// cannot pass silently.
func CheckFloors(rows []Row, floors []Floor) []string {
	by := map[string]Row{}
	for _, r := range rows {
		by[r.Folder] = r
	}
	var msgs []string
	for _, f := range floors {
		r, ok := by[f.Folder]
		switch {
		case !ok:
			msgs = append(msgs, fmt.Sprintf("floor line %d: folder %q is not in this run", f.Line, f.Folder))
		case r.All.Passed < f.Min:
			msgs = append(msgs, fmt.Sprintf("floor line %d: %s passed %d of %d, below the floor of %d", f.Line, f.Folder, r.All.Passed, r.All.Total, f.Min))
		}
	}
	return msgs
}
