package service

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/tcpstated/tcpstated/fsm"
	"github.com/tcpstated/tcpstated/gen/openapi"
	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"

	"github.com/tcpstated/tcpstated/store/memstore"
)

// Fuzzing the API: arbitrary protobuf and JSON bodies into the handlers of
// an in-process service. The invariants: no panic; every error is a
// status the error table chose (never UNKNOWN, INTERNAL or DATA_LOSS, which
// would mean a bug or a damaged log); every response encodes as protobuf
// and as JSON (the gateway's rendering; invalid UTF-8 in a string would
// fail here); no REST answer is a 500; and the sessions the fuzzer drives
// keep re-running identically (VerifySession).
//
//	go test -run '^$' -fuzz '^FuzzHandlers$' -fuzztime 30s ./service/
//
// Seed corpora are in testdata/fuzz/Fuzz*/ (regenerate with
// go test -run TestAPIFuzzCorpus ./service/ -update-api-corpus).

// fuzzTarget is the session every fuzz input may reach: a listener "l" on
// 10.0.0.1:80 and an established connection from 10.0.0.2:40000.
const fuzzTarget = "fz"

// apiFuzz is a service shared by the inputs of one fuzzing process.
type apiFuzz struct {
	t       testing.TB
	svc     *Service
	methods []fuzzMethod // unary methods of every registered service
	gw      http.Handler // the REST gateway, in process
	routes  []fuzzRoute  // POST routes of the OpenAPI document
	conn    string       // the established connection's name
	execs   int
}

type fuzzMethod struct {
	name    string
	impl    any
	handler grpc.MethodHandler
}

type fuzzRoute struct{ method, path string }

// capture is a grpc.ServiceRegistrar that keeps what is registered.
type capture []struct {
	desc *grpc.ServiceDesc
	impl any
}

func (c *capture) RegisterService(d *grpc.ServiceDesc, impl any) {
	*c = append(*c, struct {
		desc *grpc.ServiceDesc
		impl any
	}{d, impl})
}

func newAPIFuzz(f *testing.F) *apiFuzz {
	svc, err := New(memstore.New(memstore.Options{}), Config{
		Logger: quietLogger(),
		Limits: Limits{MaxSessions: 16, MaxEndpoints: 32, MaxLogBytes: 1 << 20, MaxMessageBytes: 1 << 20, MaxPageSize: 100},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { svc.Close() })
	a := &apiFuzz{t: f, svc: svc}
	var c capture
	svc.Register(&c)
	for _, s := range c {
		for _, m := range s.desc.Methods {
			a.methods = append(a.methods, fuzzMethod{name: s.desc.ServiceName + "/" + m.MethodName, impl: s.impl, handler: m.Handler})
		}
	}
	sort.Slice(a.methods, func(i, j int) bool { return a.methods[i].name < a.methods[j].name })

	mux := runtime.NewServeMux(runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
		MarshalOptions: protojson.MarshalOptions{EmitUnpopulated: true},
	}))
	ctx := context.Background()
	for _, s := range c {
		var err error
		switch impl := s.impl.(type) {
		case pb.SessionServiceServer:
			err = pb.RegisterSessionServiceHandlerServer(ctx, mux, impl)
		case pb.EndpointServiceServer:
			err = pb.RegisterEndpointServiceHandlerServer(ctx, mux, impl)
		case pb.SegmentServiceServer:
			err = pb.RegisterSegmentServiceHandlerServer(ctx, mux, impl)
		case pb.LogServiceServer:
			err = pb.RegisterLogServiceHandlerServer(ctx, mux, impl)
		case pb.ScriptServiceServer:
			err = pb.RegisterScriptServiceHandlerServer(ctx, mux, impl)
		}
		if err != nil {
			f.Fatal(err)
		}
	}
	a.gw = mux
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openapi.JSON, &doc); err != nil {
		f.Fatal(err)
	}
	for p, ops := range doc.Paths {
		for m := range ops {
			if m == "post" || m == "patch" || m == "put" {
				ep := "2" // the connection, except for accept
				if strings.HasSuffix(p, ":accept") {
					ep = "l"
				}
				p := strings.NewReplacer("{session}", fuzzTarget, "{endpoint}", ep).Replace(p)
				a.routes = append(a.routes, fuzzRoute{strings.ToUpper(m), p})
			}
		}
	}
	sort.Slice(a.routes, func(i, j int) bool { return a.routes[i].path+a.routes[i].method < a.routes[j].path+a.routes[j].method })
	a.reset()
	return a
}

// reset makes the fuzz target fresh: a session with a listener and an
// established connection, and no other session. The old target must
// re-run identically first.
func (a *apiFuzz) reset() {
	ctx := context.Background()
	if ss, err := a.svc.lookup(ctx, fuzzTarget); err == nil {
		a.verify()
		a.svc.delete(ctx, ss.id)
	}
	for _, id := range a.svc.sortedIDs() {
		a.svc.delete(ctx, id)
	}
	sh := &sessionServer{s: a.svc}
	if _, err := sh.CreateSession(ctx, &pb.CreateSessionRequest{SessionId: fuzzTarget, Session: &pb.Session{Options: fixedISNOptions(1000)}}); err != nil {
		a.t.Fatal(err)
	}
	eh := &endpointServer{s: a.svc}
	if _, err := eh.CreateEndpoint(ctx, &pb.CreateEndpointRequest{Parent: "sessions/" + fuzzTarget, EndpointId: "l",
		Mode: &pb.CreateEndpointRequest_Listen{Listen: &pb.ListenConfig{LocalAddress: "10.0.0.1:80"}}}); err != nil {
		a.t.Fatal(err)
	}
	gh := &segmentServer{s: a.svc}
	r, err := gh.SubmitSegment(ctx, &pb.SubmitSegmentRequest{Parent: "sessions/" + fuzzTarget, Segment: &pb.SubmitSegmentRequest_IpPacket{IpPacket: rawPacket(40000, 100, 0, fsm.FlagSYN, nil)}})
	if err != nil {
		a.t.Fatal(err)
	}
	a.conn = r.Outputs.Transitions[0].Endpoint
	if _, err := gh.SubmitSegment(ctx, &pb.SubmitSegmentRequest{Parent: "sessions/" + fuzzTarget, Segment: &pb.SubmitSegmentRequest_IpPacket{IpPacket: rawPacket(40000, 101, 1001, fsm.FlagACK, nil)}}); err != nil {
		a.t.Fatal(err)
	}
}

// verify checks that every session re-runs identically.
func (a *apiFuzz) verify() {
	lh := &logServer{s: a.svc}
	for _, id := range a.svc.sortedIDs() {
		v, err := lh.VerifySession(context.Background(), &pb.VerifySessionRequest{Name: "sessions/" + id})
		if status.Code(err) == codes.DataLoss || err == nil && !v.Identical {
			a.t.Fatalf("session %s does not re-run identically after fuzzed calls: %v %v", id, v, err)
		}
	}
}

// after runs after every input: the checks that need state, and a reset
// when the state has grown.
func (a *apiFuzz) after(t *testing.T) {
	a.t = t
	a.execs++
	ss, err := a.svc.lookup(context.Background(), fuzzTarget)
	grown := err != nil || a.svc.SessionCount() > 8
	if err == nil {
		ss.mu.Lock()
		grown = grown || ss.state != stateOpen || ss.log.Size() > 64<<10
		ss.mu.Unlock()
	}
	if a.execs%16 == 0 {
		a.verify()
	}
	if grown {
		a.reset()
	}
}

// checkResult applies the invariants to one handler result.
func checkResult(t *testing.T, what string, resp any, err error) {
	t.Helper()
	if err != nil {
		st, ok := status.FromError(err)
		if !ok {
			t.Fatalf("%s: a non-status error %T: %v", what, err, err)
		}
		switch st.Code() {
		case codes.Unknown, codes.Internal, codes.DataLoss:
			t.Fatalf("%s: %v", what, err)
		}
		return
	}
	m, ok := resp.(proto.Message)
	if !ok {
		t.Fatalf("%s: response %T is not a message", what, resp)
	}
	if _, err := proto.Marshal(m); err != nil {
		t.Fatalf("%s: the response does not encode: %v", what, err)
	}
	if _, err := protojson.Marshal(m); err != nil {
		t.Fatalf("%s: the response does not encode as JSON: %v", what, err)
	}
}

// FuzzHandlers sends an arbitrary protobuf body to one of the unary
// methods of every service the Service registers (method picks it, modulo
// their number).
func FuzzHandlers(f *testing.F) {
	for _, s := range handlerSeeds() {
		f.Add(s.method, s.body)
	}
	a := newAPIFuzz(f)
	f.Fuzz(func(t *testing.T, method uint8, body []byte) {
		m := a.methods[int(method)%len(a.methods)]
		decoded := true
		dec := func(v any) error {
			if err := proto.Unmarshal(body, v.(proto.Message)); err != nil {
				decoded = false
				return err
			}
			return nil
		}
		resp, err := m.handler(m.impl, context.Background(), dec, nil)
		if decoded {
			checkResult(t, m.name, resp, err)
		}
		a.after(t)
	})
}

// FuzzSubmitSegment sends an arbitrary SubmitSegmentRequest body (raw IP
// packet, raw TCP segment or structured fields) to the fuzz target, which
// has a listener and an established connection.
func FuzzSubmitSegment(f *testing.F) {
	for _, b := range submitSeeds() {
		f.Add(b)
	}
	a := newAPIFuzz(f)
	h := &segmentServer{s: a.svc}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := &pb.SubmitSegmentRequest{}
		if err := proto.Unmarshal(body, req); err != nil {
			return
		}
		req.Parent = "sessions/" + fuzzTarget
		resp, err := h.SubmitSegment(context.Background(), req)
		checkResult(t, "SubmitSegment", resp, err)
		if err == nil && resp.Segment == nil {
			t.Fatal("SubmitSegment: no view of the submitted segment")
		}
		a.after(t)
	})
}

// FuzzHandlersJSON sends an arbitrary JSON body to one of the REST routes
// that take a body (route picks it, modulo their number), through the
// grpc-gateway mux as the binary builds it (in process). The session and
// endpoint in the path are the fuzz target's (its connection; its listener
// for :accept).
func FuzzHandlersJSON(f *testing.F) {
	for _, s := range jsonSeeds() {
		f.Add(s.route, s.body)
	}
	a := newAPIFuzz(f)
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		r := a.routes[int(route)%len(a.routes)]
		req := httptest.NewRequest(r.method, r.path, strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		a.gw.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", r.method, r.path, body, rec.Code, rec.Body)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %s: the answer is not JSON: %q", r.method, r.path, rec.Body)
		}
		a.after(t)
	})
}
