package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// The README's walkthroughs are run from README.md itself: every curl and
// grpcurl command in the two sections, in order, against the real binary;
// each command's shown output must be true of the real response (every
// "key": value pair shown appears in it), and each step's outcome is
// checked below. If the README changes, these tests follow it or fail.

const (
	curlSection    = "## Using the service: a walkthrough with curl"
	grpcurlSection = "## Using the service: a walkthrough with grpcurl"
	// The addresses `make run` listens on, as the README writes them.
	readmeHTTP = "http://127.0.0.1:8080"
	readmeGRPC = "127.0.0.1:50051"
)

// A readmeStep is one command of a walkthrough.
type readmeStep struct {
	line   string   // as written
	args   []string // after shell quoting and $VAR expansion
	output string   // the output block shown after it, if any
}

// readmeSteps returns the commands of a README section: every line of its
// ```sh blocks (assignments NAME=value are applied, not returned), each
// with the plain ``` block that follows its block when it is the block's
// last command.
func readmeSteps(t *testing.T, section string) []readmeStep {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	i := strings.Index(text, "\n"+section+"\n")
	if i < 0 {
		t.Fatalf("README.md has no section %q", section)
	}
	text = text[i+len(section)+2:]
	if j := strings.Index(text, "\n## "); j >= 0 {
		text = text[:j]
	}
	vars := map[string]string{}
	var steps []readmeStep
	lines := strings.Split(text, "\n")
	for n := 0; n < len(lines); n++ {
		fence := strings.TrimSpace(lines[n])
		if !strings.HasPrefix(fence, "```") {
			continue
		}
		info := strings.TrimPrefix(fence, "```")
		var body []string
		for n++; n < len(lines) && strings.TrimSpace(lines[n]) != "```"; n++ {
			body = append(body, lines[n])
		}
		switch info {
		case "sh":
			for _, l := range body {
				l = strings.TrimSpace(l)
				if l == "" || strings.HasPrefix(l, "#") {
					continue
				}
				if m := regexp.MustCompile(`^([A-Z]+)=(\S+)$`).FindStringSubmatch(l); m != nil {
					vars[m[1]] = m[2]
					continue
				}
				args, err := shellWords(l, vars)
				if err != nil {
					t.Fatalf("README %s: %q: %v", section, l, err)
				}
				steps = append(steps, readmeStep{line: l, args: args})
			}
		case "":
			if len(steps) == 0 || steps[len(steps)-1].output != "" {
				t.Fatalf("README %s: an output block that follows no command:\n%s", section, strings.Join(body, "\n"))
			}
			steps[len(steps)-1].output = strings.Join(body, "\n")
		}
	}
	return steps
}

// shellWords splits a command line as sh would for the subset the README
// uses: single quotes, double quotes, $VAR and "$VAR/..." expansion.
func shellWords(line string, vars map[string]string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	expand := func(s string, i int) (int, error) { // s[i] == '$'
		j := i + 1
		for j < len(s) && (s[j] >= 'A' && s[j] <= 'Z' || s[j] == '_') {
			j++
		}
		v, ok := vars[s[i+1:j]]
		if !ok {
			return 0, fmt.Errorf("unset variable %s", s[i:j])
		}
		cur.WriteString(v)
		return j, nil
	}
	for i := 0; i < len(line); {
		c := line[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
			i++
		case c == '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated '")
			}
			cur.WriteString(line[i+1 : i+1+j])
			i += j + 2
			inWord = true
		case c == '"':
			i++
			for i < len(line) && line[i] != '"' {
				if line[i] == '$' {
					var err error
					if i, err = expand(line, i); err != nil {
						return nil, err
					}
					continue
				}
				if line[i] == '\\' {
					return nil, fmt.Errorf("backslash in double quotes is not supported")
				}
				cur.WriteByte(line[i])
				i++
			}
			if i >= len(line) {
				return nil, fmt.Errorf("unterminated \"")
			}
			i++
			inWord = true
		case c == '$':
			var err error
			if i, err = expand(line, i); err != nil {
				return nil, err
			}
			inWord = true
		case strings.IndexByte("|;&<>`\\", c) >= 0:
			return nil, fmt.Errorf("shell syntax %q is not supported here", c)
		default:
			cur.WriteByte(c)
			i++
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// shownPair matches a "key": value pair with a scalar value in shown output.
var shownPair = regexp.MustCompile(`"([^"\\]+)"\s*:\s*("(?:[^"\\]|\\.)*"|-?[0-9]+(?:\.[0-9]+)?|true|false|null)`)

// checkShown checks that every "key": value pair of the output the README
// shows is in the real response. A string value ending in … is a prefix.
func checkShown(t *testing.T, step readmeStep, got any) {
	t.Helper()
	actual := map[string][]any{}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				switch e.(type) {
				case map[string]any, []any:
				default:
					actual[k] = append(actual[k], e)
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(got)
	for _, m := range shownPair.FindAllStringSubmatch(step.output, -1) {
		var want any
		if err := json.Unmarshal([]byte(m[2]), &want); err != nil {
			t.Errorf("README output of %q: %s does not parse: %v", step.line, m[0], err)
			continue
		}
		found := slices.ContainsFunc(actual[m[1]], func(a any) bool {
			if ws, ok := want.(string); ok {
				if p, cut := strings.CutSuffix(ws, "…"); cut {
					as, ok := a.(string)
					return ok && strings.HasPrefix(as, p)
				}
			}
			return a == want
		})
		if !found {
			t.Errorf("README shows %s after\n  %s\nbut the response has %q: %v", m[0], step.line, m[1], actual[m[1]])
		}
	}
}

// walkthroughChecks are the outcomes of the walkthrough's steps, the same
// over REST and gRPC (both are proto3 JSON, every field shown). session is
// the walkthrough's session name.
func walkthroughChecks(session string) []func(t *testing.T, r any) {
	ep := session + "/endpoints/"
	want := func(t *testing.T, r any, pairs ...string) {
		t.Helper()
		for i := 0; i < len(pairs); i += 2 {
			if got := jstr(r, pairs[i]); got != pairs[i+1] {
				t.Errorf("%s = %s, want %s", pairs[i], got, pairs[i+1])
			}
		}
	}
	return []func(t *testing.T, r any){
		func(t *testing.T, r any) { // create the session
			want(t, r, "session.name", session, "session.options.isnMode", "ISN_MODE_FIXED", "session.options.fixedIsn", "1000")
		},
		func(t *testing.T, r any) { // the listener
			want(t, r, "endpoint.name", ep+"1", "endpoint.stateName", "LISTEN", "endpoint.localAddress", "10.0.0.1:80")
		},
		func(t *testing.T, r any) { // SYN → SYN-ACK in the response
			want(t, r, "outputs.segments.0.flags", `["SYN","ACK"]`, "outputs.segments.0.seq", "1000", "outputs.segments.0.ack", "101",
				"outputs.segments.0.checksumValid", "true", "outputs.segments.1", "null",
				"outputs.transitions.0.endpoint", ep+"2", "outputs.transitions.0.toStateName", "SYN-RECEIVED")
		},
		func(t *testing.T, r any) { // list the queue (a GET: it stays)
			want(t, r, "segments.0.flags", `["SYN","ACK"]`, "segments.1", "null")
		},
		func(t *testing.T, r any) { // drain it: the same segment, taken
			want(t, r, "segments.0.flags", `["SYN","ACK"]`, "segments.1", "null")
		},
		func(t *testing.T, r any) { // ACK carrying data: ESTABLISHED, the ACK delayed
			want(t, r, "outputs.segments", "[]", "outputs.transitions.0.toStateName", "ESTABLISHED", "segment.payloadLength", "5")
		},
		func(t *testing.T, r any) { // read the endpoint
			want(t, r, "endpoint.stateName", "ESTABLISHED", "endpoint.bytesReadable", "5", "endpoint.tcb.rcvNxt", "106",
				"endpoint.timers.0.kind", "TIMER_KIND_DELAYED_ACK")
		},
		func(t *testing.T, r any) { // 200 ms later: the delayed ACK
			want(t, r, "clock", "0.200s", "outputs.segments.0.flags", `["ACK"]`, "outputs.segments.0.ack", "106")
		},
		func(t *testing.T, r any) { // accept
			want(t, r, "endpoint.name", ep+"2", "endpoint.accepted", "true")
		},
		func(t *testing.T, r any) { // receive
			want(t, r, "text", "hello", "data", "aGVsbG8=", "eof", "false")
		},
		func(t *testing.T, r any) { // close: FIN, FIN-WAIT-1
			want(t, r, "endpoint.stateName", "FIN-WAIT-1", "outputs.segments.0.flags", `["FIN","ACK"]`, "outputs.segments.0.seq", "1001")
		},
		func(t *testing.T, r any) { // the peer ACKs our FIN
			want(t, r, "outputs.transitions.0.toStateName", "FIN-WAIT-2", "outputs.segments", "[]")
		},
		func(t *testing.T, r any) { // the peer's FIN: ACK it, TIME-WAIT
			want(t, r, "outputs.segments.0.flags", `["ACK"]`, "outputs.segments.0.ack", "107", "outputs.transitions.0.toStateName", "TIME-WAIT")
		},
		func(t *testing.T, r any) { // past 2·MSL: CLOSED
			want(t, r, "clock", "60.200s", "outputs.transitions.0.fromStateName", "TIME-WAIT", "outputs.transitions.0.toStateName", "CLOSED")
		},
		func(t *testing.T, r any) { // the log re-runs identically
			want(t, r, "identical", "true", "recordsChecked", "21")
		},
	}
}

// TestREADMEWalkthroughREST runs the README's curl walkthrough over HTTP.
func TestREADMEWalkthroughREST(t *testing.T) {
	t.Parallel()
	steps := readmeSteps(t, curlSection)
	checks := walkthroughChecks("sessions/demo")
	if len(steps) != len(checks) {
		t.Fatalf("the README's curl walkthrough has %d commands, this test checks %d: update walkthroughChecks", len(steps), len(checks))
	}
	s := startServer(t, t.TempDir())
	for i, st := range steps {
		method, url, body, err := parseCurl(st.args)
		if err != nil {
			t.Fatalf("README: %q: %v", st.line, err)
		}
		path, ok := strings.CutPrefix(url, readmeHTTP)
		if !ok {
			t.Fatalf("README: %q: the URL is not on %s", st.line, readmeHTTP)
		}
		r := s.doJSON(method, path, body)
		t.Run(fmt.Sprintf("%02d", i+1), func(t *testing.T) {
			checkShown(t, st, r)
			checks[i](t, r)
		})
	}
	// After the walkthrough the connection is gone from the engine and
	// reads as CLOSED.
	r := s.doJSON("GET", "/v1/sessions/demo/endpoints/2", "")
	if got := jstr(r, "endpoint.stateName"); got != "CLOSED" {
		t.Errorf("the endpoint after TIME-WAIT: %s, want CLOSED", got)
	}
	s.stop()
}

// parseCurl reads the curl options the README uses: -s, -X METHOD, -d BODY, URL.
func parseCurl(args []string) (method, url, body string, err error) {
	if len(args) == 0 || args[0] != "curl" {
		return "", "", "", fmt.Errorf("not a curl command")
	}
	for i := 1; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-s":
		case a == "-X" && i+1 < len(args):
			i++
			method = args[i]
		case a == "-d" && i+1 < len(args):
			i++
			body = args[i]
		case strings.HasPrefix(a, "http://") && url == "":
			url = a
		default:
			return "", "", "", fmt.Errorf("unexpected argument %q", a)
		}
	}
	if method == "" {
		method = "GET"
		if body != "" {
			method = "POST"
		}
	}
	if url == "" {
		return "", "", "", fmt.Errorf("no URL")
	}
	return method, url, body, nil
}

// TestREADMEWalkthroughGRPC runs the README's grpcurl walkthrough with the
// generated Go client: each request is the README's JSON, read by
// protojson as grpcurl reads it.
func TestREADMEWalkthroughGRPC(t *testing.T) {
	t.Parallel()
	steps := readmeSteps(t, grpcurlSection)
	checks := walkthroughChecks("sessions/grpc-demo")
	s := startServer(t, t.TempDir())
	calls := grpcCalls(s)
	c := ctx(t)
	n := 0
	for i, st := range steps {
		method, body, err := parseGrpcurl(st.args)
		if err != nil {
			t.Fatalf("README: %q: %v", st.line, err)
		}
		if method == "list" {
			checkServiceList(t, s.conn, st.output)
			continue
		}
		call, ok := calls[method]
		if !ok {
			t.Fatalf("README: %q: this test does not know the method %s", st.line, method)
		}
		resp, err := call(c, []byte(body))
		if err != nil {
			t.Fatalf("README: %q: %v", st.line, err)
		}
		b, err := protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(resp)
		if err != nil {
			t.Fatal(err)
		}
		var r any
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		if n >= len(checks) {
			t.Fatalf("the README's grpcurl walkthrough has more calls than the %d this test checks: update walkthroughChecks", len(checks))
		}
		t.Run(fmt.Sprintf("%02d", i+1), func(t *testing.T) {
			checkShown(t, st, r)
			checks[n](t, r)
		})
		n++
	}
	if n != len(checks) {
		t.Fatalf("the README's grpcurl walkthrough has %d calls, this test checks %d", n, len(checks))
	}
	s.stop()
}

// parseGrpcurl reads the grpcurl options the README uses: -plaintext,
// -d BODY, the address, and a method or "list".
func parseGrpcurl(args []string) (method, body string, err error) {
	if len(args) == 0 || args[0] != "grpcurl" {
		return "", "", fmt.Errorf("not a grpcurl command")
	}
	addr := false
	for i := 1; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-plaintext":
		case a == "-d" && i+1 < len(args):
			i++
			body = args[i]
		case a == readmeGRPC && !addr:
			addr = true
		case method == "" && addr:
			method = a
		default:
			return "", "", fmt.Errorf("unexpected argument %q", a)
		}
	}
	if !addr || method == "" {
		return "", "", fmt.Errorf("want the address %s and a method", readmeGRPC)
	}
	return method, body, nil
}

type grpcCall func(ctx context.Context, body []byte) (proto.Message, error)

// unary adapts a generated client method to a call taking JSON.
func unary[Req any, PReq interface {
	*Req
	proto.Message
}, Resp proto.Message](f func(context.Context, PReq, ...grpc.CallOption) (Resp, error)) grpcCall {
	return func(ctx context.Context, body []byte) (proto.Message, error) {
		req := PReq(new(Req))
		if err := protojson.Unmarshal(body, req); err != nil {
			return nil, fmt.Errorf("request JSON: %v", err)
		}
		return f(ctx, req)
	}
}

// grpcCalls maps the README's method names to the generated client.
func grpcCalls(s *server) map[string]grpcCall {
	return map[string]grpcCall{
		"tcpstate.v1.SessionService/CreateSession":     unary(s.sessions.CreateSession),
		"tcpstate.v1.SessionService/GetSession":        unary(s.sessions.GetSession),
		"tcpstate.v1.SessionService/AdvanceClock":      unary(s.sessions.AdvanceClock),
		"tcpstate.v1.SessionService/DeleteSession":     unary(s.sessions.DeleteSession),
		"tcpstate.v1.EndpointService/CreateEndpoint":   unary(s.endpoints.CreateEndpoint),
		"tcpstate.v1.EndpointService/GetEndpoint":      unary(s.endpoints.GetEndpoint),
		"tcpstate.v1.EndpointService/AcceptConnection": unary(s.endpoints.AcceptConnection),
		"tcpstate.v1.EndpointService/ReceiveData":      unary(s.endpoints.ReceiveData),
		"tcpstate.v1.EndpointService/SendData":         unary(s.endpoints.SendData),
		"tcpstate.v1.EndpointService/CloseEndpoint":    unary(s.endpoints.CloseEndpoint),
		"tcpstate.v1.EndpointService/ShutdownEndpoint": unary(s.endpoints.ShutdownEndpoint),
		"tcpstate.v1.EndpointService/AbortEndpoint":    unary(s.endpoints.AbortEndpoint),
		"tcpstate.v1.SegmentService/SubmitSegment":     unary(s.segments.SubmitSegment),
		"tcpstate.v1.SegmentService/ListSegments":      unary(s.segments.ListSegments),
		"tcpstate.v1.SegmentService/DrainSegments":     unary(s.segments.DrainSegments),
		"tcpstate.v1.LogService/VerifySession":         unary(s.logsvc.VerifySession),
		"tcpstate.v1.LogService/ListRecords":           unary(s.logsvc.ListRecords),
	}
}

// checkServiceList checks `grpcurl list` output against server reflection.
func checkServiceList(t *testing.T, conn *grpc.ClientConn, shown string) {
	t.Helper()
	got := listServices(t, conn)
	want := strings.Fields(shown)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("README shows the services %v, reflection lists %v", want, got)
	}
}

func listServices(t *testing.T, conn *grpc.ClientConn) []string {
	t.Helper()
	rs, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := rs.Recv()
	if err != nil {
		t.Fatal(err)
	}
	rs.CloseSend()
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.Name)
	}
	slices.Sort(names)
	return names
}
