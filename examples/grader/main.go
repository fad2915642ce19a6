// Command grader grades a student's TCP implementation against tcpstated,
// in one of two ways.
//
//	grader --rubric FILE --dut HOST:PORT [--format text|json|junit|gradescope] [--attempts N] [-- AGENT [ARG...]]
//
// grades a stack behind a DUT agent (tcpstate.dut.v1.DeviceUnderTestService:
// a student's agent such as examples/dut-node, or tcpstated dut serve) in
// both roles, as a server and as a client, with the packetdrill scripts a
// rubric lists (script, points, role, compare mode, profile: see Item in
// rubric.go and the sample rubric.tsv). For every script it reports pass
// or fail, the first failing line, what the script expected and what the
// stack sent, the reference engine's explanation of what the RFC requires
// there, and the points; --format=junit writes JUnit XML (GitHub
// Classroom, CI) and --format=gradescope Gradescope's results.json. A
// failing script runs again up to --attempts times in all (the wall clock
// on a loaded machine; the attempt that got furthest is reported), and
// --tolerance raises the least tolerance of a script's times. With an
// AGENT command, the grader starts it (with DUT_ADDRESS=HOST:PORT in its
// environment), waits for it to answer, and stops it at the end. Exit status: 0 full points, 1 points lost, 2 the
// grading could not be done. docs/GRADING.md walks through it.
//
//	grader [--grpc HOST:PORT] [--message TEXT] [--timeout 30s] -- COMMAND [ARG...]
//
// grades a client that drives tcpstated's API. The grader creates a session with a listener at 10.0.0.1:80 and runs the
// student's COMMAND as the client. The student's program speaks TCP with
// that listener through the tcpstated API: it submits the segments it
// builds (SegmentService.SubmitSegment) and reads the ones tcpstated sends
// from the session's outbound queue (DrainSegments or WatchSegments). Its
// environment says where:
//
//	TCPSTATED_GRPC     the gRPC address
//	TCPSTATED_SESSION  the session, sessions/{id}
//	TCPSTATED_SERVER   tcpstated's listener, 10.0.0.1:80
//	TCPSTATED_CLIENT   the address the student's side uses, 10.0.0.2:40000
//	TCPSTATED_MESSAGE  the bytes to send
//
// The assignment: open a connection (the three-way handshake), send the
// message, then close: send a FIN and acknowledge tcpstated's FIN.
// Meanwhile the grader is the application on tcpstated's side: it accepts
// the connection, reads what arrives, and closes when the peer has closed.
//
// When the command exits, the grader reads the session's log with the
// engine's explanations (ListRecords with explain) and prints a JSON
// verdict: the states the connection went through, a pass or fail with a
// reason for the handshake, the data and the close, and every segment of
// the student's that the engine dropped, answered or held instead of
// taking, with the RFC rule it applied. Exit status: 0 passed, 1 failed,
// 2 the grading itself could not be done. The session stays, for a look at
// its diagram (/v1/sessions/{id}/diagram.svg or the web view at /ui/).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
	"github.com/tcpstated/tcpstated/script/duttarget"
)

// The addresses of the assignment.
const (
	serverAddr = "10.0.0.1:80"
	clientAddr = "10.0.0.2:40000"
	serverISN  = 5000
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("grader", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("grpc", envOr("TCPSTATED_GRPC", "127.0.0.1:50051"), "tcpstated's gRPC address")
	msg := fs.String("message", "hello, tcpstated", "the message the student's program must send")
	timeout := fs.Duration("timeout", 30*time.Second, "how long the student's program may run")
	rubric := fs.String("rubric", "", "grade the stack behind --dut with the scripts of this rubric file")
	dutAddr := fs.String("dut", "", "with --rubric: the DUT agent's HOST:PORT")
	format := fs.String("format", "text", "with --rubric: text, json, junit or gradescope")
	attempts := fs.Int("attempts", 2, "with --rubric: how many times a failing script runs in all")
	callTimeout := fs.Duration("call-timeout", 2*time.Second, "with --rubric: how long the agent may take to answer a call that cannot block")
	tolerance := fs.Duration("tolerance", 20*time.Millisecond, "with --rubric: the least tolerance a script's times are judged with")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: grader --rubric FILE --dut HOST:PORT [--format text|json|junit|gradescope] [--attempts N] [-- AGENT [ARG...]]")
		fmt.Fprintln(stderr, "       grader [--grpc HOST:PORT] [--message TEXT] [--timeout D] -- COMMAND [ARG...]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *rubric != "" {
		switch {
		case *dutAddr == "":
			fmt.Fprintln(stderr, "grader: --rubric needs --dut HOST:PORT, the DUT agent's address")
			return 2
		case !slices.Contains([]string{"text", "json", "junit", "gradescope"}, *format):
			fmt.Fprintf(stderr, "grader: --format: want text, json, junit or gradescope, got %q\n", *format)
			return 2
		}
		return runRubric(*rubric, *dutAddr, *format, *attempts,
			duttarget.Options{CallTimeout: *callTimeout, MinTolerance: *tolerance}, fs.Args(), stdout, stderr)
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintf(stderr, "grader: %v\n", err)
		return 2
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout+30*time.Second)
	defer cancel()
	g := &grader{conn: conn, addr: *addr, message: *msg, timeout: *timeout, stderr: stderr}
	v, err := g.grade(ctx, &command{argv: fs.Args()})
	if err != nil {
		fmt.Fprintf(stderr, "grader: %v\n", err)
		return 2
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(stderr, "grader: %v\n", err)
		return 2
	}
	if !v.Passed {
		return 1
	}
	return 0
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// Verdict is what the grader prints.
type Verdict struct {
	Passed  bool   `json:"passed"`
	Session string `json:"session"`
	Student struct {
		Command  []string `json:"command"`
		ExitCode int      `json:"exit_code"`
		Output   string   `json:"output,omitempty"` // the end of its stdout and stderr
	} `json:"student"`
	// States of tcpstated's connection, in order, from the log.
	States   []string `json:"states"`
	Received string   `json:"received"`
	Checks   []Check  `json:"checks"`
	// Segments of the student's the engine did not simply take.
	Rejected []Rejection `json:"rejected_segments"`
}

// Check is one graded property.
type Check struct {
	Name   string `json:"name"`
	Passed bool   `json:"passed"`
	Reason string `json:"reason"`
}

// Rejection is a student's segment the engine dropped, answered (with an
// ACK or a RST, taking nothing from it) or held, and why.
type Rejection struct {
	Time    string   `json:"time"`
	Segment string   `json:"segment"`
	Flags   []string `json:"flags"`
	Length  uint32   `json:"payload_length"`
	State   string   `json:"state"` // the connection's state when it arrived
	Action  string   `json:"action"`
	Code    string   `json:"code"`
	Section string   `json:"section"`
	Text    string   `json:"explanation"`
}

// student is the program being graded.
type student interface {
	// start runs it; cancelling ctx kills it.
	start(ctx context.Context, env []string, out io.Writer) (wait func() int, err error)
	describe() []string
}

// command runs the student's program as a process.
type command struct{ argv []string }

func (c *command) describe() []string { return c.argv }

func (c *command) start(ctx context.Context, env []string, out io.Writer) (func() int, error) {
	cmd := exec.CommandContext(ctx, c.argv[0], c.argv[1:]...)
	cmd.WaitDelay = time.Second
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return func() int {
		err := cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			return -1
		}
		return 0
	}, nil
}

type grader struct {
	conn    *grpc.ClientConn
	addr    string
	message string
	timeout time.Duration
	stderr  io.Writer

	sessions  pb.SessionServiceClient
	endpoints pb.EndpointServiceClient
	logs      pb.LogServiceClient

	session, listener, connection string
	received                      []byte
	closed                        bool
}

// grade sets up the session, runs the student's program while playing the
// server application, and judges the session's log.
func (g *grader) grade(ctx context.Context, st student) (*Verdict, error) {
	g.sessions = pb.NewSessionServiceClient(g.conn)
	g.endpoints = pb.NewEndpointServiceClient(g.conn)
	g.logs = pb.NewLogServiceClient(g.conn)
	s, err := g.sessions.CreateSession(ctx, &pb.CreateSessionRequest{Session: &pb.Session{Options: &pb.SessionOptions{
		ClockMode: pb.ClockMode_CLOCK_MODE_VIRTUAL,
		IsnMode:   pb.IsnMode_ISN_MODE_FIXED,
		FixedIsn:  serverISN,
		// Every ACK at once: on a virtual clock a delayed ACK waits for
		// a clock advance that nobody makes.
		DelayedAck: proto.Bool(false),
	}}})
	if err != nil {
		return nil, fmt.Errorf("creating the session: %w", err)
	}
	g.session = s.Session.Name
	l, err := g.endpoints.CreateEndpoint(ctx, &pb.CreateEndpointRequest{Parent: g.session, EndpointId: "server",
		Mode: &pb.CreateEndpointRequest_Listen{Listen: &pb.ListenConfig{LocalAddress: serverAddr}}})
	if err != nil {
		return nil, fmt.Errorf("creating the listener: %w", err)
	}
	g.listener = l.Endpoint.Name

	out := &tail{max: 4096}
	runCtx, kill := context.WithCancel(ctx)
	defer kill()
	wait, err := st.start(runCtx, []string{
		"TCPSTATED_GRPC=" + g.addr,
		"TCPSTATED_SESSION=" + g.session,
		"TCPSTATED_SERVER=" + serverAddr,
		"TCPSTATED_CLIENT=" + clientAddr,
		"TCPSTATED_MESSAGE=" + g.message,
	}, out)
	if err != nil {
		return nil, fmt.Errorf("starting the student's program: %w", err)
	}
	done := make(chan int, 1)
	go func() { done <- wait() }()
	exit := -1
	deadline := time.After(g.timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
loop:
	for {
		select {
		case exit = <-done:
			break loop
		case <-deadline:
			out.Write([]byte("\n[grader: the program ran past the time limit and was stopped]"))
			kill()
			exit = <-done
			break loop
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
			if err := g.serve(ctx); err != nil {
				return nil, err
			}
		}
	}
	if err := g.serve(ctx); err != nil { // what arrived last
		return nil, err
	}
	v := &Verdict{Session: g.session, Received: string(g.received)}
	v.Student.Command, v.Student.ExitCode, v.Student.Output = st.describe(), exit, out.String()
	if err := g.judge(ctx, v); err != nil {
		return nil, err
	}
	return v, nil
}

// serve is the server application: accept, read, and close once the peer
// has closed.
func (g *grader) serve(ctx context.Context) error {
	if g.connection == "" {
		l, err := g.endpoints.GetEndpoint(ctx, &pb.GetEndpointRequest{Name: g.listener})
		if err != nil {
			return fmt.Errorf("reading the listener: %w", err)
		}
		if l.Endpoint.GetListenerStats().GetAcceptQueueLength() == 0 {
			return nil
		}
		a, err := g.endpoints.AcceptConnection(ctx, &pb.AcceptConnectionRequest{Name: g.listener})
		if err != nil {
			return fmt.Errorf("accepting: %w", err)
		}
		g.connection = a.Endpoint.Name
	}
	if g.closed {
		return nil
	}
	r, err := g.endpoints.ReceiveData(ctx, &pb.ReceiveDataRequest{Name: g.connection})
	if err != nil {
		return nil // reset or gone: the log will tell
	}
	g.received = append(g.received, r.Data...)
	if r.Eof {
		if _, err := g.endpoints.CloseEndpoint(ctx, &pb.CloseEndpointRequest{Name: g.connection}); err == nil {
			g.closed = true
		}
	}
	return nil
}

// judge reads the log with explanations and fills in the verdict.
func (g *grader) judge(ctx context.Context, v *Verdict) error {
	var records []*pb.Record
	tok := ""
	for range 10000 {
		r, err := g.logs.ListRecords(ctx, &pb.ListRecordsRequest{Parent: g.session, PageSize: 1000, PageToken: tok, Explain: true})
		if err != nil {
			return fmt.Errorf("reading the log: %w", err)
		}
		records = append(records, r.Records...)
		if tok = r.NextPageToken; tok == "" {
			break
		}
	}
	state := "LISTEN"
	var inbound *pb.Segment
	rejected := 0 // segments (one may have several explanations)
	for _, r := range records {
		switch r.Kind {
		case pb.RecordKind_RECORD_KIND_INPUT:
			inbound = r.Segment // nil for an application call or a clock advance
		case pb.RecordKind_RECORD_KIND_OUTPUT:
			if inbound != nil {
				n := len(v.Rejected)
				for _, x := range r.GetOutput().GetExplanations() {
					if !taken(x) {
						v.Rejected = append(v.Rejected, Rejection{
							Time: inbound.GetTime().AsDuration().String(), Segment: inbound.Summary, State: state,
							Flags: inbound.Flags, Length: inbound.PayloadLength,
							Action: strings.TrimPrefix(x.Action.String(), "ACTION_"), Code: x.Code, Section: x.Section, Text: x.Text,
						})
					}
				}
				if len(v.Rejected) > n {
					rejected++
				}
			}
			for _, t := range r.GetOutput().GetTransitions() {
				if t.Endpoint != g.listener {
					v.States = append(v.States, t.ToStateName)
					state = t.ToStateName
				}
			}
			inbound = nil
		}
	}
	reached := func(s string) bool {
		for _, x := range v.States {
			if x == s {
				return true
			}
		}
		return false
	}
	why := func(pred func(Rejection) bool) string {
		for _, r := range v.Rejected {
			if pred(r) {
				return fmt.Sprintf("; the engine, in %s, on %s: %s (%s): %s", r.State, r.Segment, r.Code, r.Section, r.Text)
			}
		}
		return ""
	}
	final := "LISTEN"
	if n := len(v.States); n > 0 {
		final = v.States[n-1]
	}

	hs := Check{Name: "handshake", Passed: reached("ESTABLISHED")}
	switch {
	case hs.Passed:
		hs.Reason = "the connection reached ESTABLISHED"
	case len(v.States) == 0:
		hs.Reason = "no connection was made: no acceptable SYN reached " + serverAddr + why(func(Rejection) bool { return true })
	default:
		hs.Reason = "the connection never reached ESTABLISHED (it went " + strings.Join(v.States, " -> ") + ")" +
			why(func(r Rejection) bool { return r.State == "SYN-RECEIVED" })
	}
	data := Check{Name: "data", Passed: string(g.received) == g.message}
	if data.Passed {
		data.Reason = fmt.Sprintf("the %d bytes of the message arrived in order", len(g.message))
	} else {
		data.Reason = fmt.Sprintf("received %q, want %q", g.received, g.message) +
			why(func(r Rejection) bool { return r.Length > 0 })
	}
	cl := Check{Name: "close", Passed: reached("CLOSE-WAIT") && reached("LAST-ACK") && final == "CLOSED"}
	switch {
	case cl.Passed:
		cl.Reason = "the peer's FIN arrived (CLOSE-WAIT), and the ACK of tcpstated's FIN closed the connection (LAST-ACK -> CLOSED)"
	case !reached("CLOSE-WAIT"):
		cl.Reason = "the peer's FIN never arrived in order (no CLOSE-WAIT)" + why(func(r Rejection) bool { return slices.Contains(r.Flags, "FIN") })
	case final == "LAST-ACK":
		cl.Reason = "tcpstated's FIN was never acknowledged: the connection stayed in LAST-ACK" + why(func(r Rejection) bool { return r.State == "LAST-ACK" })
	default:
		cl.Reason = "the connection ended in " + final + ", not CLOSED after LAST-ACK" + why(func(Rejection) bool { return true })
	}
	clean := Check{Name: "every segment taken", Passed: len(v.Rejected) == 0}
	if clean.Passed {
		clean.Reason = "the engine took every segment the peer sent"
	} else {
		clean.Reason = fmt.Sprintf("the engine dropped, answered or held %d of the peer's segments (see rejected_segments)", rejected)
	}
	v.Checks = []Check{hs, data, cl, clean}
	v.Passed = hs.Passed && data.Passed && cl.Passed && clean.Passed
	if v.States == nil {
		v.States = []string{}
	}
	if v.Rejected == nil {
		v.Rejected = []Rejection{}
	}
	return nil
}

// taken reports whether an explanation says the engine used the segment:
// accepted it, or answered it as the handshake goes (a SYN-ACK for a SYN).
// Notes (INFO) say nothing either way.
func taken(x *pb.Explanation) bool {
	switch x.Action {
	case pb.Explanation_ACTION_ACCEPTED, pb.Explanation_ACTION_INFO:
		return true
	case pb.Explanation_ACTION_ANSWERED:
		switch x.Code {
		case "LISTEN_SYN_ACCEPTED", "SYN_COOKIE_SENT", "SYN_SENT_SYN_ACK_ESTABLISHED", "SYN_SENT_SIMULTANEOUS_OPEN":
			return true
		}
	}
	return false
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
