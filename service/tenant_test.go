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

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
	"github.com/tcpstated/tcpstated/service/replaylog"
)

// Tokens of the tests' tenants.
const (
	tokenAlice = "alice-token-0123456789"
	tokenBob   = "bob-token-0123456789ab"
	tokenBob2  = "bob-second-token-98765"
)

// authEnv is an in-process server with the Authenticator's interceptors
// and RequireTenant, over bufconn.
type authEnv struct {
	t      *testing.T
	dir    string
	cfg    Config
	tokens string // token file
	auth   *Authenticator
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
	cfg.Fsync = replaylog.FsyncNever
	cfg.RequireTenant = true
	e := &authEnv{t: t, dir: cfg.DataDir, cfg: cfg, tokens: filepath.Join(t.TempDir(), "tokens")}
	writeTokens(t, e.tokens, "# the tests' tenants", tokenAlice+" alice", tokenBob+" bob", tokenBob2+"   bob")
	auth, err := NewAuthenticator(e.tokens, quietLogger())
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

func TestParseTokens(t *testing.T) {
	cases := []struct {
		name, file string
		want       map[string]string
		wantErr    string
	}{
		{"pairs, comments, blank lines", "# c\n\n" + tokenAlice + " alice\n  " + tokenBob + "\tbob  \n", map[string]string{tokenAlice: "alice", tokenBob: "bob"}, ""},
		{"two tokens, one tenant", tokenBob + " bob\n" + tokenBob2 + " bob\n", map[string]string{tokenBob: "bob", tokenBob2: "bob"}, ""},
		{"short token", "abc alice\n", nil, "line 1: a token"},
		{"three fields", tokenAlice + " alice extra\n", nil, "line 1: want TOKEN TENANT"},
		{"bad tenant", tokenAlice + " al/ice\n", nil, "tenant"},
		{"duplicate token", tokenAlice + " a\n" + tokenAlice + " b\n", nil, "line 2: the token appears twice"},
		{"empty", "# nothing\n", nil, "no tokens"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseTokens(strings.NewReader(tc.file))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || len(got) != len(tc.want) {
				t.Fatalf("got %v, %v", got, err)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
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
	// The one exception: the ID space is shared.
	if _, err := bs.CreateSession(ctx(t), &pb.CreateSessionRequest{SessionId: "a1"}); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("bob creating alice's ID: %v", err)
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
