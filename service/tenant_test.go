package service

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/tcpstated/tcpstated/fsm"
	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"

	"github.com/tcpstated/tcpstated/store"

	"github.com/tcpstated/tcpstated/service/tenant"
)

// Tokens of the tests' tenants.
const (
	tokenAlice = "alice-token-0123456789"
	tokenBob   = "bob-token-0123456789ab"
	tokenBob2  = "bob-second-token-98765"
)

// authEnv is an in-process server with the tenant.Authenticator's interceptors
// and RequireTenant, over bufconn.
type authEnv struct {
	t      *testing.T
	dir    string
	cfg    Config
	tokens string // token file
	auth   *tenant.Authenticator
	svc    *Service
	srv    *grpc.Server
	lis    *bufconn.Listener
}

func writeTokens(t *testing.T, path string, lines ...string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func newAuthEnv(t *testing.T, cfg Config) *authEnv {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	cfg.Fsync = store.FsyncNever
	cfg.RequireTenant = true
	e := &authEnv{t: t, dir: cfg.DataDir, cfg: cfg, tokens: filepath.Join(t.TempDir(), "tokens")}
	writeTokens(t, e.tokens, "# the tests' tenants", tokenAlice+" alice", tokenBob+" bob", tokenBob2+"   bob")
	auth, err := tenant.NewAuthenticator(e.tokens, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	e.auth = auth
	e.start()
	t.Cleanup(e.stop)
	return e
}

func (e *authEnv) start() {
	e.t.Helper()
	svc, err := Open(e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.svc = svc
	e.lis = bufconn.Listen(1 << 20)
	e.srv = grpc.NewServer(grpc.ChainUnaryInterceptor(e.auth.UnaryInterceptor()), grpc.ChainStreamInterceptor(e.auth.StreamInterceptor()))
	svc.Register(e.srv)
	healthpb.RegisterHealthServer(e.srv, health.NewServer())
	go e.srv.Serve(e.lis)
}

func (e *authEnv) stop() {
	if e.svc == nil {
		return
	}
	e.srv.Stop()
	e.svc.Close()
	e.svc = nil
}

// bearer sends a fixed authorization value with every call.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	if b == "" {
		return nil, nil
	}
	return map[string]string{"authorization": string(b)}, nil
}
func (bearer) RequireTransportSecurity() bool { return false }

// conn dials the server sending authorization (empty: no header).
func (e *authEnv) conn(authorization string) *grpc.ClientConn {
	e.t.Helper()
	lis := e.lis
	c, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(bearer(authorization)))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

// The rule: with --auth-tokens every call needs `authorization: Bearer
// TOKEN` with a token of the file; health checks stay open.
func TestAuthRequiresBearerToken(t *testing.T) {
	e := newAuthEnv(t, Config{})
	cases := []struct {
		name          string
		authorization string
		want          codes.Code
	}{
		{"no header", "", codes.Unauthenticated},
		{"not bearer", "Basic " + tokenAlice, codes.Unauthenticated},
		{"bearer without token", "Bearer", codes.Unauthenticated},
		{"unknown token", "Bearer not-a-token-at-all-xyz", codes.Unauthenticated},
		{"a prefix of a token", "Bearer " + tokenAlice[:len(tokenAlice)-1], codes.Unauthenticated},
		{"valid token", "Bearer " + tokenAlice, codes.OK},
		{"scheme is case-insensitive", "bearer " + tokenAlice, codes.OK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := e.conn(tc.authorization)
			_, err := pb.NewSessionServiceClient(c).ListSessions(ctx(t), &pb.ListSessionsRequest{})
			if status.Code(err) != tc.want {
				t.Fatalf("unary ListSessions: %v, want %v", err, tc.want)
			}
			st, err := pb.NewLogServiceClient(c).StreamRecords(ctx(t), &pb.StreamRecordsRequest{Parent: "sessions/none"})
			if err == nil {
				_, err = st.Recv()
			}
			want := tc.want
			if want == codes.OK {
				want = codes.NotFound // authenticated: the session does not exist
			}
			if status.Code(err) != want {
				t.Fatalf("stream StreamRecords: %v, want %v", err, want)
			}
			// Health stays open whatever the header.
			if _, err := healthpb.NewHealthClient(c).Check(ctx(t), &healthpb.HealthCheckRequest{}); err != nil {
				t.Fatalf("health: %v", err)
			}
		})
	}
}

// The rule: SIGHUP (Reload) makes new tokens work and removed ones stop;
// a file that does not parse changes nothing.
func TestAuthReload(t *testing.T) {
	e := newAuthEnv(t, Config{})
	list := func(tok string) codes.Code {
		_, err := pb.NewSessionServiceClient(e.conn("Bearer "+tok)).ListSessions(ctx(t), &pb.ListSessionsRequest{})
		return status.Code(err)
	}
	const tokenCarol = "carol-token-abcdef0123"
	if got := list(tokenCarol); got != codes.Unauthenticated {
		t.Fatalf("carol before reload: %v", got)
	}
	writeTokens(t, e.tokens, tokenAlice+" alice", tokenCarol+" carol")
	if err := e.auth.Reload(); err != nil {
		t.Fatal(err)
	}
	if a, b, c := list(tokenAlice), list(tokenBob), list(tokenCarol); a != codes.OK || b != codes.Unauthenticated || c != codes.OK {
		t.Fatalf("after reload: alice %v, bob %v (removed), carol %v", a, b, c)
	}
	writeTokens(t, e.tokens, "too-short alice")
	if err := e.auth.Reload(); err == nil {
		t.Fatal("a bad file reloaded without error")
	}
	if a, c := list(tokenAlice), list(tokenCarol); a != codes.OK || c != codes.OK {
		t.Fatalf("a bad file changed the tokens: alice %v, carol %v", a, c)
	}
}

// callAll calls every method of the tcpstate.v1 services the server has
// registered with a request whose name (or parent) is target and whose
// other fields are zero, and returns each method's status. Methods are
// found from the server, so an RPC added later is covered without
// changing this test; one whose request has no name or parent field must
// be listed in noSessionField.
func callAll(t *testing.T, srv *grpc.Server, conn *grpc.ClientConn, target string) map[string]*status.Status {
	t.Helper()
	got := map[string]*status.Status{}
	for svcName, info := range srv.GetServiceInfo() {
		if !strings.HasPrefix(svcName, "tcpstate.v1.") {
			continue
		}
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(svcName))
		if err != nil {
			t.Fatal(err)
		}
		sd := d.(protoreflect.ServiceDescriptor)
		for _, mi := range info.Methods {
			md := sd.Methods().ByName(protoreflect.Name(mi.Name))
			full := "/" + svcName + "/" + mi.Name
			mt, err := protoregistry.GlobalTypes.FindMessageByName(md.Input().FullName())
			if err != nil {
				t.Fatal(err)
			}
			req := mt.New()
			field := md.Input().Fields().ByName("name")
			if field == nil {
				field = md.Input().Fields().ByName("parent")
			}
			if field == nil || field.Kind() != protoreflect.StringKind {
				if !noSessionField[mi.Name] {
					t.Fatalf("%s: the request has no name or parent field; say how it names a session", full)
				}
				continue
			}
			v := target
			if endpointMethods[mi.Name] {
				v = target + "/endpoints/l"
			}
			req.Set(field, protoreflect.ValueOfString(v))
			out, err := protoregistry.GlobalTypes.FindMessageByName(md.Output().FullName())
			if err != nil {
				t.Fatal(err)
			}
			got[full] = invoke(conn, full, mi.IsClientStream, mi.IsServerStream, req.Interface(), out)
		}
	}
	return got
}

// Methods whose request names an endpoint, not a session.
var endpointMethods = map[string]bool{
	"GetEndpoint": true, "AcceptConnection": true, "SendData": true, "ReceiveData": true,
	"ShutdownEndpoint": true, "CloseEndpoint": true, "AbortEndpoint": true,
}

// Methods whose request does not name a session by name or parent.
var noSessionField = map[string]bool{"CreateSession": true, "ListSessions": true, "RunScript": true}

func invoke(conn *grpc.ClientConn, method string, clientStream, serverStream bool, req proto.Message, out protoreflect.MessageType) *status.Status {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !clientStream && !serverStream {
		return status.Convert(conn.Invoke(c, method, req, out.New().Interface()))
	}
	st, err := conn.NewStream(c, &grpc.StreamDesc{ClientStreams: clientStream, ServerStreams: serverStream}, method)
	if err != nil {
		return status.Convert(err)
	}
	if err := st.SendMsg(req); err != nil && err != io.EOF {
		return status.Convert(err)
	}
	if err := st.CloseSend(); err != nil {
		return status.Convert(err)
	}
	for {
		if err := st.RecvMsg(out.New().Interface()); err != nil {
			if err == io.EOF {
				return status.New(codes.OK, "")
			}
			return status.Convert(err)
		}
	}
}

// The rule: a session belongs to the tenant that created it; to every
// other tenant each call naming it answers exactly as if it did not exist
// (same code, same message), changes nothing, and ListSessions omits it.
// Ownership is in the log, so it survives a restart.
func TestTenantIsolation(t *testing.T) {
	e := newAuthEnv(t, Config{})
	alice, bob := e.conn("Bearer "+tokenAlice), e.conn("Bearer "+tokenBob)
	as, bs := pb.NewSessionServiceClient(alice), pb.NewSessionServiceClient(bob)
	ae := pb.NewEndpointServiceClient(alice)
	if _, err := as.CreateSession(ctx(t), &pb.CreateSessionRequest{SessionId: "a1", Session: &pb.Session{Options: fixedISNOptions(1000)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ae.CreateEndpoint(ctx(t), &pb.CreateEndpointRequest{Parent: "sessions/a1", EndpointId: "l",
		Mode: &pb.CreateEndpointRequest_Listen{Listen: &pb.ListenConfig{LocalAddress: server}}}); err != nil {
		t.Fatal(err)
	}
	records := func() uint64 {
		t.Helper()
		r, err := as.GetSession(ctx(t), &pb.GetSessionRequest{Name: "sessions/a1"})
		if err != nil {
			t.Fatalf("alice's GetSession: %v", err)
		}
		return r.Session.RecordCount
	}
	before := records()

	check := func(t *testing.T) {
		got := callAll(t, e.srv, bob, "sessions/a1")
		want := callAll(t, e.srv, bob, "sessions/zz-none")
		if len(got) < 15 {
			t.Fatalf("only %d methods called", len(got))
		}
		for m, g := range got {
			w := want[m]
			if g.Code() != w.Code() || strings.ReplaceAll(g.Message(), "a1", "zz-none") != w.Message() {
				t.Errorf("%s: another tenant's session gives %v %q; a missing one gives %v %q", m, g.Code(), g.Message(), w.Code(), w.Message())
			}
			if g.Code() == codes.OK {
				t.Errorf("%s: succeeded on another tenant's session", m)
			}
		}
		// Alice's own calls do reach her session.
		if _, err := pb.NewSessionServiceClient(alice).GetSession(ctx(t), &pb.GetSessionRequest{Name: "sessions/a1"}); err != nil {
			t.Errorf("alice's GetSession: %v", err)
		}
	}
	check(t)
	if after := records(); after != before {
		t.Fatalf("bob's calls changed alice's session: %d records, was %d", after, before)
	}

	// Lists show only the caller's sessions, page by page.
	for _, id := range []string{"a2", "a3"} {
		if _, err := as.CreateSession(ctx(t), &pb.CreateSessionRequest{SessionId: id}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"b1", "b2"} {
		if _, err := bs.CreateSession(ctx(t), &pb.CreateSessionRequest{SessionId: id}); err != nil {
			t.Fatal(err)
		}
	}
	listAll := func(c pb.SessionServiceClient) string {
		var names []string
		tok := ""
		for range 10 {
			r, err := c.ListSessions(ctx(t), &pb.ListSessionsRequest{PageSize: 1, PageToken: tok})
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range r.Sessions {
				names = append(names, s.Name)
			}
			if tok = r.NextPageToken; tok == "" {
				break
			}
		}
		return strings.Join(names, " ")
	}
	bob2 := pb.NewSessionServiceClient(e.conn("Bearer " + tokenBob2))
	if a, b, b2 := listAll(as), listAll(bs), listAll(bob2); a != "sessions/a1 sessions/a2 sessions/a3" || b != "sessions/b1 sessions/b2" || b2 != b {
		t.Fatalf("alice lists %q, bob %q, bob's second token %q", a, b, b2)
	}

	e.stop()
	e.start()
	alice, bob = e.conn("Bearer "+tokenAlice), e.conn("Bearer "+tokenBob)
	as, bs = pb.NewSessionServiceClient(alice), pb.NewSessionServiceClient(bob)
	t.Run("after restart", check)
	if a, b := listAll(as), listAll(bs); a != "sessions/a1 sessions/a2 sessions/a3" || b != "sessions/b1 sessions/b2" {
		t.Fatalf("after restart alice lists %q, bob %q", a, b)
	}
}

// The rule: a tenant holds at most MaxSessionsPerTenant sessions
// (RESOURCE_EXHAUSTED past it, nothing created), independently of other
// tenants, and the server at most MaxSessions in all.
func TestSessionLimitsPerTenantAndInAll(t *testing.T) {
	e := newAuthEnv(t, Config{Limits: Limits{MaxSessionsPerTenant: 3, MaxSessions: 5}})
	as := pb.NewSessionServiceClient(e.conn("Bearer " + tokenAlice))
	bs := pb.NewSessionServiceClient(e.conn("Bearer " + tokenBob))
	create := func(c pb.SessionServiceClient, id string) codes.Code {
		_, err := c.CreateSession(ctx(t), &pb.CreateSessionRequest{SessionId: id})
		return status.Code(err)
	}
	for _, step := range []struct {
		c    pb.SessionServiceClient
		id   string
		want codes.Code
	}{
		{as, "a1", codes.OK}, {as, "a2", codes.OK}, {as, "a3", codes.OK},
		{as, "a4", codes.ResourceExhausted}, // alice's limit
		{bs, "b1", codes.OK}, {bs, "b2", codes.OK},
		{bs, "b3", codes.ResourceExhausted}, // the server's limit (5)
	} {
		if got := create(step.c, step.id); got != step.want {
			t.Fatalf("create %s: %v, want %v", step.id, got, step.want)
		}
	}
	if n := e.svc.SessionCount(); n != 5 {
		t.Fatalf("%d sessions, want 5", n)
	}
	if _, err := as.DeleteSession(ctx(t), &pb.DeleteSessionRequest{Name: "sessions/a1"}); err != nil {
		t.Fatal(err)
	}
	if got := create(as, "a4"); got != codes.OK {
		t.Fatalf("alice after a delete: %v", got)
	}
	if a, b := e.svc.TenantSessions("alice"), e.svc.TenantSessions("bob"); a != 3 || b != 2 {
		t.Fatalf("counts: alice %d, bob %d", a, b)
	}
	e.stop()
	e.start()
	if a, b := e.svc.TenantSessions("alice"), e.svc.TenantSessions("bob"); a != 3 || b != 2 {
		t.Fatalf("counts after restart: alice %d, bob %d", a, b)
	}
}

// tenantClients are one tenant's clients of every service.
type tenantClients struct {
	sessions  pb.SessionServiceClient
	endpoints pb.EndpointServiceClient
	segments  pb.SegmentServiceClient
	logs      pb.LogServiceClient
}

func (e *authEnv) clients(token string) tenantClients {
	c := e.conn("Bearer " + token)
	return tenantClients{pb.NewSessionServiceClient(c), pb.NewEndpointServiceClient(c), pb.NewSegmentServiceClient(c), pb.NewLogServiceClient(c)}
}

// logFiles returns the names of the log files in dir.
func logFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range m {
		names = append(names, filepath.Base(f))
	}
	return names
}

// The rule: every tenant has its own namespace of session IDs. Two tenants
// creating the same ID both succeed (no ALREADY_EXISTS telling one that
// the other holds it), and get two sessions: each tenant's Get, List,
// records, verify, endpoints and segments reach only its own, before and
// after a restart; deleting one leaves the other. Within one tenant an ID
// is still taken once.
func TestTenantsHaveTheirOwnSessionIDs(t *testing.T) {
	e := newAuthEnv(t, Config{})
	tenants := []struct {
		name, token string
		isn         uint32 // tells the two sessions apart in their segments
		endpoint    string
	}{
		{"alice", tokenAlice, 1000, "la"},
		{"bob", tokenBob, 5000, "lb"},
	}
	for _, tn := range tenants {
		c := e.clients(tn.token)
		// Before the fix, bob's create was ALREADY_EXISTS: alice holds "demo".
		if _, err := c.sessions.CreateSession(ctx(t), &pb.CreateSessionRequest{SessionId: "demo", Session: &pb.Session{Options: fixedISNOptions(tn.isn)}}); err != nil {
			t.Fatalf("%s creates sessions/demo: %v", tn.name, err)
		}
		if _, err := c.sessions.CreateSession(ctx(t), &pb.CreateSessionRequest{SessionId: "demo"}); status.Code(err) != codes.AlreadyExists {
			t.Fatalf("%s creates sessions/demo twice: %v, want AlreadyExists", tn.name, err)
		}
		if _, err := c.endpoints.CreateEndpoint(ctx(t), &pb.CreateEndpointRequest{Parent: "sessions/demo", EndpointId: tn.endpoint,
			Mode: &pb.CreateEndpointRequest_Listen{Listen: &pb.ListenConfig{LocalAddress: server}}}); err != nil {
			t.Fatalf("%s creates a listener: %v", tn.name, err)
		}
	}
	// Alice's session gets a SYN (and answers with her ISN); bob's does not.
	ac := e.clients(tokenAlice)
	r, err := ac.segments.SubmitSegment(ctx(t), &pb.SubmitSegmentRequest{Parent: "sessions/demo", Segment: &pb.SubmitSegmentRequest_IpPacket{IpPacket: rawPacket(40000, 100, 0, fsm.FlagSYN, nil)}})
	if err != nil || len(r.Outputs.Segments) != 1 || r.Outputs.Segments[0].Seq != 1000 {
		t.Fatalf("alice's SYN: %v %v, want a SYN-ACK with seq 1000", r, err)
	}
	records := map[string]uint64{"alice": 5, "bob": 3} // start, listen in/out, SYN in/out

	check := func(t *testing.T) {
		for _, tn := range tenants {
			c := e.clients(tn.token)
			g, err := c.sessions.GetSession(ctx(t), &pb.GetSessionRequest{Name: "sessions/demo"})
			if err != nil {
				t.Fatalf("%s: GetSession: %v", tn.name, err)
			}
			if g.Session.Options.FixedIsn != tn.isn || g.Session.RecordCount != records[tn.name] {
				t.Errorf("%s: GetSession shows ISN %d and %d records, want %d and %d", tn.name, g.Session.Options.FixedIsn, g.Session.RecordCount, tn.isn, records[tn.name])
			}
			l, err := c.sessions.ListSessions(ctx(t), &pb.ListSessionsRequest{})
			if err != nil || len(l.Sessions) != 1 || l.Sessions[0].Name != "sessions/demo" || l.Sessions[0].Options.FixedIsn != tn.isn {
				t.Errorf("%s: ListSessions: %v %v, want only its sessions/demo", tn.name, l, err)
			}
			rec, err := c.logs.ListRecords(ctx(t), &pb.ListRecordsRequest{Parent: "sessions/demo", PageSize: 100})
			if err != nil || uint64(len(rec.Records)) != records[tn.name] {
				t.Errorf("%s: ListRecords: %d records (%v), want %d", tn.name, len(rec.GetRecords()), err, records[tn.name])
			}
			v, err := c.logs.VerifySession(ctx(t), &pb.VerifySessionRequest{Name: "sessions/demo"})
			if err != nil || !v.Identical || v.RecordsChecked != records[tn.name] {
				t.Errorf("%s: VerifySession: %v %v", tn.name, v, err)
			}
			eps, err := c.endpoints.ListEndpoints(ctx(t), &pb.ListEndpointsRequest{Parent: "sessions/demo"})
			var names []string
			for _, ep := range eps.GetEndpoints() {
				names = append(names, ep.Name)
			}
			if err != nil || len(names) == 0 || names[0] != "sessions/demo/endpoints/"+tn.endpoint {
				t.Errorf("%s: ListEndpoints: %v %v, want its listener %s first", tn.name, names, err, tn.endpoint)
			}
			other := "lb"
			if tn.endpoint == "lb" {
				other = "la"
			}
			if _, err := c.endpoints.GetEndpoint(ctx(t), &pb.GetEndpointRequest{Name: "sessions/demo/endpoints/" + other}); status.Code(err) != codes.NotFound {
				t.Errorf("%s: GetEndpoint of the other tenant's listener: %v, want NotFound", tn.name, err)
			}
		}
		if n := len(logFiles(t, e.dir)); n != 2 {
			t.Errorf("%d log files, want 2: %v", n, logFiles(t, e.dir))
		}
	}
	check(t)
	e.stop()
	e.start()
	t.Run("after restart", check)
	if reps := e.svc.RestoreReports(); len(reps) != 0 {
		t.Fatalf("restore reports: %+v", reps)
	}

	// Bob's segment reaches bob's session: a SYN-ACK with his ISN.
	bc := e.clients(tokenBob)
	r, err = bc.segments.SubmitSegment(ctx(t), &pb.SubmitSegmentRequest{Parent: "sessions/demo", Segment: &pb.SubmitSegmentRequest_IpPacket{IpPacket: rawPacket(40000, 100, 0, fsm.FlagSYN, nil)}})
	if err != nil || len(r.Outputs.Segments) != 1 || r.Outputs.Segments[0].Seq != 5000 {
		t.Fatalf("bob's SYN: %v %v, want a SYN-ACK with seq 5000", r, err)
	}
	records["bob"] += 2

	// Alice deletes hers; bob's stays, log file included.
	ac = e.clients(tokenAlice)
	if _, err := ac.sessions.DeleteSession(ctx(t), &pb.DeleteSessionRequest{Name: "sessions/demo"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ac.sessions.GetSession(ctx(t), &pb.GetSessionRequest{Name: "sessions/demo"}); status.Code(err) != codes.NotFound {
		t.Fatalf("alice's deleted session: %v", err)
	}
	g, err := bc.sessions.GetSession(ctx(t), &pb.GetSessionRequest{Name: "sessions/demo"})
	if err != nil || g.Session.RecordCount != records["bob"] {
		t.Fatalf("bob's session after alice's delete: %v %v", g, err)
	}
	if files := logFiles(t, e.dir); len(files) != 1 || files[0] != logName("bob", "demo")+".log" {
		t.Fatalf("log files after alice's delete: %v", files)
	}
	if a, b := e.svc.TenantSessions("alice"), e.svc.TenantSessions("bob"); a != 0 || b != 1 || e.svc.SessionCount() != 1 {
		t.Fatalf("counts: alice %d, bob %d, all %d", a, b, e.svc.SessionCount())
	}
	e.stop()
	e.start()
	if _, err := e.clients(tokenAlice).sessions.GetSession(ctx(t), &pb.GetSessionRequest{Name: "sessions/demo"}); status.Code(err) != codes.NotFound {
		t.Fatalf("alice's deleted session after a restart: %v", err)
	}
	if _, err := e.clients(tokenBob).sessions.GetSession(ctx(t), &pb.GetSessionRequest{Name: "sessions/demo"}); err != nil {
		t.Fatalf("bob's session after a restart: %v", err)
	}
}

// The rule: a tenant's session IDs are at most 51 characters (its log is
// named "t", ten hex digits of the tenant's hash, "-" and the ID, in 63);
// a longer one is INVALID_ARGUMENT naming the limit, and nothing is
// created. Server-chosen IDs are unique per tenant. Without tenants, IDs
// of 63 characters still work and logs keep the plain ID as their name.
func TestTenantSessionIDLength(t *testing.T) {
	e := newAuthEnv(t, Config{})
	as := e.clients(tokenAlice).sessions
	for _, tc := range []struct {
		n    int
		want codes.Code
	}{{maxTenantSessionIDLen, codes.OK}, {maxTenantSessionIDLen + 1, codes.InvalidArgument}, {63, codes.InvalidArgument}} {
		_, err := as.CreateSession(ctx(t), &pb.CreateSessionRequest{SessionId: strings.Repeat("a", tc.n)})
		if status.Code(err) != tc.want {
			t.Fatalf("a %d-character ID: %v, want %v", tc.n, err, tc.want)
		}
		if tc.want == codes.InvalidArgument && !strings.Contains(status.Convert(err).Message(), "at most 51") {
			t.Fatalf("a %d-character ID: %q does not name the limit", tc.n, status.Convert(err).Message())
		}
	}
	if n := e.svc.SessionCount(); n != 1 {
		t.Fatalf("%d sessions, want 1", n)
	}
	if got, want := logName("alice", "x"), "t2bd806c97f-x"; got != want {
		t.Fatalf("logName(alice, x) = %q, want %q (the names of existing logs depend on it)", got, want)
	}
	// Server-chosen IDs.
	seen := map[string]bool{}
	for _, tok := range []string{tokenAlice, tokenBob} {
		r, err := e.clients(tok).sessions.CreateSession(ctx(t), &pb.CreateSessionRequest{})
		if err != nil || seen[r.Session.Name] {
			t.Fatalf("server-chosen ID: %v %v", r, err)
		}
		seen[r.Session.Name] = true
	}

	plain := newEnv(t, Config{Fsync: store.FsyncNever})
	id := strings.Repeat("b", 63)
	plain.createSession(id, nil)
	if files := logFiles(t, plain.dir); len(files) != 1 || files[0] != id+".log" {
		t.Fatalf("without tenants the log files are %v, want %s.log", files, id)
	}
}

// The rule: on restore a session's owner and ID come from its start
// record, and the log's file name must agree: logName(tenant, id), or, for
// a tenant's session, the plain ID (logs written before tenants had
// namespaces). A log whose name agrees with neither is damage: kept as a
// broken session with no owner (no tenant sees it) and reported, never
// given to the tenant its record names.
func TestTenantRestoreChecksLogNames(t *testing.T) {
	e := newAuthEnv(t, Config{})
	as := e.clients(tokenAlice).sessions
	for _, id := range []string{"legacy", "moved"} {
		if _, err := as.CreateSession(ctx(t), &pb.CreateSessionRequest{SessionId: id}); err != nil {
			t.Fatal(err)
		}
	}
	e.stop()
	rename := func(from, to string) {
		if err := os.Rename(filepath.Join(e.dir, from+".log"), filepath.Join(e.dir, to+".log")); err != nil {
			t.Fatal(err)
		}
	}
	rename(logName("alice", "legacy"), "legacy")        // as written before per-tenant names
	rename(logName("alice", "moved"), "somewhere-else") // agrees with nothing
	e.start()
	as = e.clients(tokenAlice).sessions
	if _, err := as.GetSession(ctx(t), &pb.GetSessionRequest{Name: "sessions/legacy"}); err != nil {
		t.Fatalf("alice's session in a log named after the plain ID: %v", err)
	}
	if _, err := e.clients(tokenBob).sessions.GetSession(ctx(t), &pb.GetSessionRequest{Name: "sessions/legacy"}); status.Code(err) != codes.NotFound {
		t.Fatalf("bob sees alice's legacy session: %v", err)
	}
	for _, name := range []string{"sessions/moved", "sessions/somewhere-else"} {
		if _, err := as.GetSession(ctx(t), &pb.GetSessionRequest{Name: name}); status.Code(err) != codes.NotFound {
			t.Fatalf("alice's %s, whose log was renamed: %v, want NotFound", name, err)
		}
	}
	reps := e.svc.RestoreReports()
	if len(reps) != 1 || reps[0].Log != "somewhere-else" || reps[0].Tenant != "" || reps[0].Err == nil ||
		!strings.Contains(reps[0].Err.Error(), `says it belongs to sessions/moved of tenant "alice"`) {
		t.Fatalf("restore reports: %+v", reps)
	}
	if n := e.svc.SessionCount(); n != 2 {
		t.Fatalf("%d sessions, want 2 (one broken)", n)
	}
	// Alice can create "moved" again; the broken log is not in her way.
	if _, err := as.CreateSession(ctx(t), &pb.CreateSessionRequest{SessionId: "moved"}); err != nil {
		t.Fatal(err)
	}
	// She cannot create "legacy" again: it is hers, whatever its log's name.
	if _, err := as.CreateSession(ctx(t), &pb.CreateSessionRequest{SessionId: "legacy"}); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("alice creates her legacy session's ID: %v", err)
	}
	if _, err := as.DeleteSession(ctx(t), &pb.DeleteSessionRequest{Name: "sessions/legacy"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "legacy.log")); !os.IsNotExist(err) {
		t.Fatalf("the legacy log after delete: %v", err)
	}
}

// The rule: sessions with no owner (created without --auth-tokens) are
// visible to no tenant, and a tenant may create the same ID; sessions with
// an owner are not visible without tenants (two tenants may hold one ID).
func TestTenantsAndOwnerlessSessions(t *testing.T) {
	dir := t.TempDir()
	plain := newEnv(t, Config{DataDir: dir, Fsync: store.FsyncNever})
	plain.createSession("demo", nil)
	plain.stop()

	e := newAuthEnv(t, Config{DataDir: dir})
	as := e.clients(tokenAlice).sessions
	if l, err := as.ListSessions(ctx(t), &pb.ListSessionsRequest{}); err != nil || len(l.Sessions) != 0 {
		t.Fatalf("alice lists %v %v, want nothing", l, err)
	}
	if _, err := as.GetSession(ctx(t), &pb.GetSessionRequest{Name: "sessions/demo"}); status.Code(err) != codes.NotFound {
		t.Fatalf("alice reads the ownerless session: %v", err)
	}
	if _, err := as.CreateSession(ctx(t), &pb.CreateSessionRequest{SessionId: "demo"}); err != nil {
		t.Fatalf("alice creates the ownerless session's ID: %v", err)
	}
	e.stop()

	plain = newEnv(t, Config{DataDir: dir, Fsync: store.FsyncNever})
	l := must[*pb.ListSessionsResponse](t)(plain.sessions.ListSessions(ctx(t), &pb.ListSessionsRequest{}))
	if len(l.Sessions) != 1 || l.Sessions[0].Name != "sessions/demo" || plain.svc.SessionCount() != 2 {
		t.Fatalf("without tenants: lists %v of %d sessions, want the ownerless sessions/demo of 2", l.Sessions, plain.svc.SessionCount())
	}
	must[*pb.DeleteSessionResponse](t)(plain.sessions.DeleteSession(ctx(t), &pb.DeleteSessionRequest{Name: "sessions/demo"}))
	if files := logFiles(t, dir); len(files) != 1 || files[0] != logName("alice", "demo")+".log" {
		t.Fatalf("log files: %v, want only alice's", files)
	}
}
