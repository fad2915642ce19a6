package main

// Grading a stack behind a DUT agent from a rubric: the student's stack
// runs packetdrill scripts as a server (it listens and accepts) and as a
// client (it connects), each script worth some points.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	dutv1 "github.com/tcpstated/tcpstated/gen/tcpstate/dut/v1"
	"github.com/tcpstated/tcpstated/script"
	"github.com/tcpstated/tcpstated/script/duttarget"
	"github.com/tcpstated/tcpstated/script/reports"
)

// Roles a rubric line grades.
const (
	RoleServer = "server" // the stack listens and accepts: the script calls listen()
	RoleClient = "client" // the stack opens: the script calls connect()
)

// Item is one line of a rubric.
//
// A rubric is a text file, one script a line, five columns separated by
// blanks (tabs or spaces):
//
//	# script                 points  role    compare   profile
//	handshake-passive.pkt    2       server  semantic  rfc
//
// script is a path relative to the rubric's directory; points a number
// above 0 (decimals allowed); role server or client; compare strict, semantic or
// auto (the script's own "// compare:" comment, else semantic); profile
// the reference engine's behaviour profile (rfc or freebsd), whose
// explanation a failure quotes, or auto (the script's own
// --tcpstated_profile, else rfc). Blank lines and lines starting with #
// are ignored.
type Item struct {
	Name    string  `json:"name"`   // the script's file name, what reports show
	Script  string  `json:"script"` // as written in the rubric
	Path    string  `json:"-"`      // the file
	Points  float64 `json:"points"`
	Role    string  `json:"role"`
	Compare string  `json:"compare"`
	Profile string  `json:"profile"`
	Line    int     `json:"-"` // in the rubric
}

// ParseRubric reads a rubric; paths are relative to dir.
func ParseRubric(r io.Reader, dir string) ([]Item, error) {
	var items []Item
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		f := strings.Fields(l)
		if len(f) != 5 {
			return nil, fmt.Errorf("rubric line %d: want 5 columns (script points role compare profile), got %d", n, len(f))
		}
		it := Item{Name: filepath.Base(f[0]), Script: f[0], Path: f[0], Role: f[2], Compare: f[3], Profile: f[4], Line: n}
		if !filepath.IsAbs(it.Path) {
			it.Path = filepath.Join(dir, it.Path)
		}
		p, err := strconv.ParseFloat(f[1], 64)
		if err != nil || p <= 0 {
			return nil, fmt.Errorf("rubric line %d: points: want a number above 0, got %q", n, f[1])
		}
		it.Points = p
		if it.Role != RoleServer && it.Role != RoleClient {
			return nil, fmt.Errorf("rubric line %d: role: want server or client, got %q", n, it.Role)
		}
		if _, err := it.options(); err != nil {
			return nil, fmt.Errorf("rubric line %d: %v", n, err)
		}
		items = append(items, it)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("the rubric lists no scripts")
	}
	return items, nil
}

// options are the run options the item asks for.
func (it *Item) options() (script.Options, error) {
	opts := script.Options{Name: it.Name}
	if it.Compare != "auto" {
		m, err := script.ParseCompareMode(it.Compare)
		if err != nil {
			return opts, fmt.Errorf("compare: want strict, semantic or auto, got %q", it.Compare)
		}
		opts.Compare = m
	}
	switch it.Profile {
	case "auto":
	case "rfc", "freebsd":
		opts.Profile = it.Profile
	default:
		return opts, fmt.Errorf("profile: want rfc, freebsd or auto, got %q", it.Profile)
	}
	return opts, nil
}

// checkRole says whether the script grades the role the rubric gives
// it: a server script calls listen(), a client script connect().
func checkRole(it *Item, src []byte) error {
	call := map[string]string{RoleServer: "listen(", RoleClient: "connect("}[it.Role]
	if !bytes.Contains(src, []byte(call)) {
		return fmt.Errorf("rubric line %d: %s grades the stack as a %s but never calls %s)", it.Line, it.Script, it.Role, call)
	}
	return nil
}

// Result is one graded script.
type Result struct {
	Item
	Passed  bool    `json:"passed"`
	Earned  float64 `json:"earned"`
	Failure string  `json:"failure,omitempty"` // the first failure, "line 16: ..."
	// The failing line: its text, what the script expected, what the
	// stack sent or returned.
	Line     int    `json:"line,omitempty"`
	Text     string `json:"text,omitempty"`
	Kind     string `json:"kind,omitempty"` // packet_out, packet_in, syscall: see script.LineResult
	Expected string `json:"expected,omitempty"`
	Actual   string `json:"actual,omitempty"`
	// Explanation is the reference engine's (under Profile): what it did,
	// and the RFC rule it applied, at the failing line or the last line
	// before it where it had something to say (for a packet the stack
	// should have sent, the inbound packet that asked for it).
	Explanation []string `json:"explanation,omitempty"`
	Attempts    int      `json:"attempts"`
	Seconds     float64  `json:"seconds"`
}

// Grade is what the rubric grader prints with --format=json.
type Grade struct {
	Stack   string   `json:"stack"` // what the agent says it is
	Score   float64  `json:"score"`
	Max     float64  `json:"max_score"`
	Results []Result `json:"results"`
}

// rubricGrader runs a rubric against an agent.
type rubricGrader struct {
	conn     grpc.ClientConnInterface
	attempts int // a failing script runs up to this many times (the wall clock on a loaded machine)
	dopts    duttarget.Options
}

// grade runs every item, in order; a script that fails does not stop the
// run.
func (g *rubricGrader) grade(items []Item) (*Grade, error) {
	out := &Grade{Results: []Result{}}
	for _, it := range items {
		src, err := os.ReadFile(it.Path)
		if err != nil {
			return nil, fmt.Errorf("rubric line %d: %v", it.Line, err)
		}
		if err := checkRole(&it, src); err != nil {
			return nil, err
		}
		opts, _ := it.options()
		res := Result{Item: it}
		var rep *script.Report
		for res.Attempts < max(g.attempts, 1) {
			res.Attempts++
			r, err := script.RunDUT(g.conn, src, opts, g.dopts)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", it.Script, err)
			}
			// Of failed attempts, the one that got furthest is reported:
			// a packet late by a loaded machine fails a script earlier
			// than the stack's own mistake does.
			if rep == nil || r.Passed || failLine(r) >= failLine(rep) {
				rep = r
			}
			if rep.Passed {
				break
			}
		}
		if out.Stack == "" {
			out.Stack = stackOf(g.conn)
		}
		res.Passed, res.Seconds = rep.Passed, rep.EndTime
		out.Max += it.Points
		if rep.Passed {
			res.Earned = it.Points
			out.Score += it.Points
		} else {
			res.Failure = rep.Failure
			explain(&res, rep, src, opts)
		}
		out.Results = append(out.Results, res)
	}
	return out, nil
}

// failLine is the number of a report's first failing line; 0 for none
// (the script did not start, or only the end-of-script check failed:
// that one is the furthest).
func failLine(rep *script.Report) int {
	for _, l := range rep.Lines {
		if l.Status == script.StatusFail {
			if l.Line == 0 {
				return math.MaxInt
			}
			return l.Line
		}
	}
	return 0
}

// explain fills in the failing line, and what the reference engine did
// there.
func explain(res *Result, rep *script.Report, src []byte, opts script.Options) {
	for _, l := range rep.Lines {
		if l.Status == script.StatusFail {
			res.Line, res.Text, res.Kind, res.Expected, res.Actual = l.Line, l.Text, l.Kind, l.Expected, l.Actual
			break
		}
	}
	if res.Line == 0 {
		return // the script did not start, or the end-of-script check
	}
	ref, err := script.Run(src, opts)
	if err != nil {
		return
	}
	prof := opts.Profile
	if prof == "" {
		prof = "the script's"
	}
	// What the reference said at the last line it explained up to the
	// failing one (for a packet the stack should have sent, the inbound
	// packet that asks for it), and, when the stack sent its packet
	// earlier than that line, at the last line it explained by then.
	last := func(keep func(*script.LineResult) bool) *script.LineResult {
		var best *script.LineResult
		for i := range ref.Lines {
			if l := &ref.Lines[i]; l.Line > 0 && l.Line <= res.Line && len(l.Engine) > 0 && keep(l) {
				best = l
			}
		}
		return best
	}
	add := func(l *script.LineResult, when string) {
		where := fmt.Sprintf("at line %d", l.Line)
		if l.Line != res.Line {
			where = fmt.Sprintf("at line %d (%s)", l.Line, l.Text)
		}
		res.Explanation = append(res.Explanation, fmt.Sprintf("%sthe reference engine (profile %s), %s:", when, prof, where))
		res.Explanation = append(res.Explanation, l.Engine...)
	}
	at := last(func(*script.LineResult) bool { return true })
	if m := sentAt.FindStringSubmatch(res.Actual); m != nil {
		t, _ := strconv.ParseFloat(m[1], 64)
		if early := last(func(l *script.LineResult) bool { return l.Time <= t }); early != nil && early != at {
			add(early, fmt.Sprintf("when the stack sent it (%s s), ", m[1]))
		}
	}
	if at != nil {
		add(at, "")
	}
}

// sentAt finds when the stack sent a packet in a report's actual text.
var sentAt = regexp.MustCompile(` at ([0-9]+\.[0-9]+)$`)

// stackOf asks the agent what it is (a Reset between scripts is
// harmless).
func stackOf(conn grpc.ClientConnInterface) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	r, err := dutv1.NewDeviceUnderTestServiceClient(conn).Reset(ctx, &dutv1.ResetRequest{})
	if err != nil {
		return ""
	}
	return r.GetStack()
}

// cases are the results as graded cases for JUnit and Gradescope.
func (g *Grade) cases() []reports.Case {
	var cs []reports.Case
	for _, r := range g.Results {
		c := reports.Case{Name: r.Name, Group: r.Role, Points: r.Points, Passed: r.Passed, Failure: r.Failure, Seconds: r.Seconds}
		c.Detail = r.detail()
		cs = append(cs, c)
	}
	return cs
}

// detail is the failing line in words.
func (r *Result) detail() string {
	if r.Passed || r.Line == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "line %d: %s\n", r.Line, r.Text)
	if r.Expected != "" {
		fmt.Fprintf(&b, "expected: %s\n", r.Expected)
	}
	switch {
	case r.Actual == "":
	case r.Kind == script.KindSyscall:
		fmt.Fprintf(&b, "returned: %s\n", r.Actual)
	case r.Kind == script.KindPacketIn:
		fmt.Fprintf(&b, "injected: %s\n", r.Actual)
	default:
		fmt.Fprintf(&b, "sent:     %s\n", r.Actual)
	}
	for _, x := range r.Explanation {
		fmt.Fprintf(&b, "  %s\n", x)
	}
	return b.String()
}

// writeText writes the grade for a person.
func (g *Grade) writeText(w io.Writer) error {
	var b strings.Builder
	if g.Stack != "" {
		fmt.Fprintf(&b, "stack: %s\n", g.Stack)
	}
	for _, role := range []string{RoleServer, RoleClient} {
		var got, possible float64
		n := 0
		for _, r := range g.Results {
			if r.Role != role {
				continue
			}
			if n == 0 {
				fmt.Fprintf(&b, "\nas a %s:\n", role)
			}
			n++
			got, possible = got+r.Earned, possible+r.Points
			verdict := "PASS"
			if !r.Passed {
				verdict = "FAIL"
			}
			fmt.Fprintf(&b, "  %s %-30s %g/%g\n", verdict, r.Name, r.Earned, r.Points)
			if !r.Passed {
				fmt.Fprintf(&b, "       %s\n", r.Failure)
				for _, l := range strings.Split(strings.TrimRight(r.detail(), "\n"), "\n") {
					if l != "" {
						fmt.Fprintf(&b, "       %s\n", l)
					}
				}
			}
		}
		if n > 0 {
			fmt.Fprintf(&b, "  %s: %g of %g points\n", role, got, possible)
		}
	}
	fmt.Fprintf(&b, "\ntotal: %g of %g points\n", g.Score, g.Max)
	_, err := io.WriteString(w, b.String())
	return err
}

// runRubric is "grader --rubric FILE --dut HOST:PORT".
func runRubric(path, addr, format string, attempts int, dopts duttarget.Options, agent []string, stdout, stderr io.Writer) int {
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintf(stderr, "grader: %v\n", err)
		return 2
	}
	items, err := ParseRubric(f, filepath.Dir(path))
	f.Close()
	if err != nil {
		fmt.Fprintf(stderr, "grader: %s: %v\n", path, err)
		return 2
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintf(stderr, "grader: --dut=%s: %v\n", addr, err)
		return 2
	}
	defer conn.Close()
	if len(agent) > 0 {
		stop, err := startAgent(conn, agent, addr, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "grader: %v\n", err)
		}
		defer stop()
	}
	g := &rubricGrader{conn: conn, attempts: attempts, dopts: dopts}
	grade, err := g.grade(items)
	if err != nil {
		fmt.Fprintf(stderr, "grader: %v\n", err)
		return 2
	}
	switch format {
	case "junit":
		err = reports.WriteJUnit(stdout, "grader", grade.cases())
	case "gradescope":
		err = reports.WriteGradescope(stdout, grade.cases())
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		err = enc.Encode(grade)
	default:
		err = grade.writeText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "grader: %v\n", err)
		return 2
	}
	if grade.Score < grade.Max {
		return 1
	}
	return 0
}

// agentWait is how long a started agent has to answer.
const agentWait = 30 * time.Second

// startAgent runs the agent's command with DUT_ADDRESS=addr and waits
// until it answers a Reset. An agent that exits or stays silent is
// reported (each script will then fail with the reason); stop ends it.
func startAgent(conn grpc.ClientConnInterface, argv []string, addr string, stderr io.Writer) (stop func(), err error) {
	out := &tail{max: 4096}
	ctx, kill := context.WithCancel(context.Background())
	wait, err := (&command{argv: argv}).start(ctx, []string{"DUT_ADDRESS=" + addr}, out)
	if err != nil {
		kill()
		return func() {}, fmt.Errorf("starting the agent: %v", err)
	}
	exited := make(chan int, 1)
	go func() { exited <- wait() }()
	stop = func() {
		kill()
		<-exited
	}
	client := dutv1.NewDeviceUnderTestServiceClient(conn)
	for deadline := time.Now().Add(agentWait); time.Now().Before(deadline); {
		rctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, rerr := client.Reset(rctx, &dutv1.ResetRequest{}, grpc.WaitForReady(true))
		cancel()
		if rerr == nil {
			return stop, nil
		}
		select {
		case code := <-exited:
			exited <- code
			return stop, fmt.Errorf("the agent %s exited with status %d before it answered; its output:\n%s", strings.Join(argv, " "), code, out.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	return stop, fmt.Errorf("the agent %s did not answer on %s within %s; its output:\n%s", strings.Join(argv, " "), addr, agentWait, out.String())
}
