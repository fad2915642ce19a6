package service

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tcpstated/tcpstated/fsm"
	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// md5Env is a session with a listener on 10.0.0.1:179 and a connection
// 10.0.0.1:40000 > 10.0.0.3:179 (SYN-SENT), neither with a TCP-MD5 key.
func md5Env(t *testing.T) (*env, string) {
	t.Helper()
	e := newMemEnv(t, Config{})
	s := e.createSession("md5live", fixedISNOptions(1000)).Name
	must[*pb.CreateEndpointResponse](t)(e.endpoints.CreateEndpoint(ctx(t), &pb.CreateEndpointRequest{
		Parent: s, EndpointId: "bgp", Mode: &pb.CreateEndpointRequest_Listen{Listen: &pb.ListenConfig{LocalAddress: "10.0.0.1:179"}},
	}))
	must[*pb.CreateEndpointResponse](t)(e.endpoints.CreateEndpoint(ctx(t), &pb.CreateEndpointRequest{
		Parent: s, EndpointId: "out", Mode: &pb.CreateEndpointRequest_Connect{Connect: &pb.ConnectConfig{
			LocalAddress: "10.0.0.1:40000", RemoteAddress: "10.0.0.3:179"}},
	}))
	return e, s
}

// signedSyn is a SYN from 10.0.0.2:40000 to the listener, signed with key
// ("" for unsigned).
func signedSyn(t *testing.T, seq uint32, key string) []byte {
	syn := fsm.Segment{Seq: fsm.Seq(seq), Flags: fsm.FlagSYN}
	syn.Options.MSS = 1460
	return optPacket(t, "10.0.0.2:40000", "10.0.0.1:179", syn, key)
}

// TestSetMd5Key: setsockopt(TCP_MD5SIG) on live endpoints through the API
// (RFC 2385 §3.0). Setting a key on a listener makes an unsigned SYN from
// that peer be dropped (MD5_MISSING) and a signed one answered with a
// signed SYN,ACK; removing it makes unsigned SYNs acceptable again. On a
// connection the peer defaults to its remote address. Every call is an
// input of the log, the key never appears in a response or record, and
// the session re-runs identically after a restart.
func TestSetMd5Key(t *testing.T) {
	const key = "neighbour-key"
	for _, tc := range []struct {
		name     string
		calls    []*pb.SetMd5KeyRequest // applied in order on the listener "bgp" unless Name is set
		synKey   string                 // how the probe SYN is signed
		wantDrop string                 // explanation code of the drop; "" for a SYN,ACK
		wantSign bool                   // the SYN,ACK carries an MD5 option
	}{
		{name: "key set: unsigned SYN dropped", calls: []*pb.SetMd5KeyRequest{{PeerAddress: "10.0.0.2", Key: []byte(key)}},
			wantDrop: "MD5_MISSING"},
		{name: "key set: SYN with another key dropped", calls: []*pb.SetMd5KeyRequest{{PeerAddress: "10.0.0.2", Key: []byte(key)}},
			synKey: "other", wantDrop: "MD5_BAD"},
		{name: "key set: signed SYN answered signed", calls: []*pb.SetMd5KeyRequest{{PeerAddress: "10.0.0.2", Key: []byte(key)}},
			synKey: key, wantSign: true},
		{name: "key replaced: the new key counts", calls: []*pb.SetMd5KeyRequest{{PeerAddress: "10.0.0.2", Key: []byte("old")}, {PeerAddress: "10.0.0.2", Key: []byte(key)}},
			synKey: key, wantSign: true},
		{name: "key removed: unsigned SYN answered", calls: []*pb.SetMd5KeyRequest{{PeerAddress: "10.0.0.2", Key: []byte(key)}, {PeerAddress: "10.0.0.2", Remove: true}}},
		{name: "key for another peer: unsigned SYN answered", calls: []*pb.SetMd5KeyRequest{{PeerAddress: "10.0.0.9", Key: []byte(key)}}},
		{name: "80-byte key (TCP_MD5SIG_MAXKEYLEN)", calls: []*pb.SetMd5KeyRequest{{PeerAddress: "10.0.0.2", Key: bytes.Repeat([]byte("k"), 80)}},
			synKey: strings.Repeat("k", 80), wantSign: true},
		{name: "IPv4-mapped peer is the IPv4 peer", calls: []*pb.SetMd5KeyRequest{{PeerAddress: "::ffff:10.0.0.2", Key: []byte(key)}},
			wantDrop: "MD5_MISSING"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, s := md5Env(t)
			for i, c := range tc.calls {
				if c.Name == "" {
					c.Name = s + "/endpoints/bgp"
				}
				resp := must[*pb.SetMd5KeyResponse](t)(e.endpoints.SetMd5Key(ctx(t), c))
				if resp.KeySet == c.Remove || resp.GetEndpoint().GetName() != c.Name {
					t.Fatalf("call %d: response %v", i, resp)
				}
			}
			out := e.submitPacket(s, signedSyn(t, 7000, tc.synKey)).GetOutputs()
			if tc.wantDrop != "" {
				if len(out.GetSegments()) != 0 {
					t.Fatalf("want the SYN dropped, got %v", out.GetSegments())
				}
				var found bool
				for _, x := range out.GetExplanations() {
					found = found || (x.Code == tc.wantDrop && x.Action == pb.Explanation_ACTION_DROPPED)
				}
				if !found {
					t.Fatalf("no %s drop explained: %v", tc.wantDrop, out.GetExplanations())
				}
			} else {
				if len(out.GetSegments()) != 1 || !hasFlags(out.Segments[0], "SYN", "ACK") {
					t.Fatalf("want a SYN,ACK, got %v", out.GetSegments())
				}
				if signed := bytes.Contains(out.Segments[0].Raw, []byte{19, 18}); signed != tc.wantSign {
					t.Fatalf("SYN,ACK signed %v, want %v (options %q)", signed, tc.wantSign, out.Segments[0].GetOptions().GetText())
				}
			}
			recs := must[*pb.ListRecordsResponse](t)(e.logs.ListRecords(ctx(t), &pb.ListRecordsRequest{Parent: s}))
			logged := 0
			for _, r := range recs.Records {
				if mk := r.GetInput().GetMd5Key(); mk != nil {
					logged++
					if len(mk.Key) != 0 || mk.PeerAddress == "" {
						t.Fatalf("record %d shows the key or lacks the peer: %v", r.Index, mk)
					}
				}
				if strings.Contains(r.Summary, key) {
					t.Fatalf("record %d summary shows the key: %s", r.Index, r.Summary)
				}
			}
			if logged != len(tc.calls) {
				t.Fatalf("%d Md5KeyInput records, want %d", logged, len(tc.calls))
			}
			e.restart()
			if v := e.verify(s); !v.Identical {
				t.Fatalf("re-run after restart: %+v", v)
			}
		})
	}
}

// TestSetMd5KeyConnection: on a connection, an empty peer_address is the
// remote address (filled into the logged input); the connection's next
// segment, its retransmitted SYN, is signed (a live key applies at once).
func TestSetMd5KeyConnection(t *testing.T) {
	e, s := md5Env(t)
	must[*pb.SetMd5KeyResponse](t)(e.endpoints.SetMd5Key(ctx(t), &pb.SetMd5KeyRequest{Name: s + "/endpoints/out", Key: []byte("k3")}))
	recs := must[*pb.ListRecordsResponse](t)(e.logs.ListRecords(ctx(t), &pb.ListRecordsRequest{Parent: s}))
	var peer string
	for _, r := range recs.Records {
		if mk := r.GetInput().GetMd5Key(); mk != nil {
			peer = mk.PeerAddress
		}
	}
	if peer != "10.0.0.3" {
		t.Fatalf("logged peer %q, want the remote address 10.0.0.3", peer)
	}
	adv := must[*pb.AdvanceClockResponse](t)(e.sessions.AdvanceClock(ctx(t), &pb.AdvanceClockRequest{Name: s, Target: &pb.AdvanceClockRequest_By{By: durationpb.New(1500 * time.Millisecond)}}))
	var syn *pb.Segment
	for _, sg := range adv.GetOutputs().GetSegments() {
		if hasFlags(sg, "SYN") {
			syn = sg
		}
	}
	if syn == nil || !bytes.Contains(syn.Raw, []byte{19, 18}) {
		t.Fatalf("the retransmitted SYN is not signed: %v", adv.GetOutputs().GetSegments())
	}
	e.restart()
	if v := e.verify(s); !v.Identical {
		t.Fatalf("re-run after restart: %+v", v)
	}
}

// TestSetMd5KeyErrors: bad requests are INVALID_ARGUMENT with a message
// naming the field (never the key), unknown endpoints NOT_FOUND; none is
// logged or changes the key table.
func TestSetMd5KeyErrors(t *testing.T) {
	e, s := md5Env(t)
	lis, conn := s+"/endpoints/bgp", s+"/endpoints/out"
	secret := bytes.Repeat([]byte("s"), 81)
	for _, tc := range []struct {
		name    string
		req     *pb.SetMd5KeyRequest
		code    codes.Code
		message string // a substring of the status message
	}{
		{"key over 80 bytes", &pb.SetMd5KeyRequest{Name: lis, PeerAddress: "10.0.0.2", Key: secret}, codes.InvalidArgument, "key: 81 bytes, more than 80 (TCP_MD5SIG_MAXKEYLEN)"},
		{"empty key without remove", &pb.SetMd5KeyRequest{Name: lis, PeerAddress: "10.0.0.2"}, codes.InvalidArgument, "key: empty"},
		{"key with remove", &pb.SetMd5KeyRequest{Name: lis, PeerAddress: "10.0.0.2", Key: []byte("k"), Remove: true}, codes.InvalidArgument, "given with remove"},
		{"peer with a port", &pb.SetMd5KeyRequest{Name: lis, PeerAddress: "10.0.0.2:179", Key: []byte("k")}, codes.InvalidArgument, `peer_address: "10.0.0.2:179" is not an IP address`},
		{"peer not an address", &pb.SetMd5KeyRequest{Name: lis, PeerAddress: "router-2", Key: []byte("k")}, codes.InvalidArgument, `peer_address: "router-2" is not an IP address`},
		{"peer unspecified", &pb.SetMd5KeyRequest{Name: lis, PeerAddress: "0.0.0.0", Key: []byte("k")}, codes.InvalidArgument, "unspecified address"},
		{"listener without a peer", &pb.SetMd5KeyRequest{Name: lis, Key: []byte("k")}, codes.InvalidArgument, "peer_address: required on a listener"},
		{"listener, other family", &pb.SetMd5KeyRequest{Name: lis, PeerAddress: "2001:db8::2", Key: []byte("k")}, codes.InvalidArgument, "not of the listener's address family"},
		{"connection, other peer", &pb.SetMd5KeyRequest{Name: conn, PeerAddress: "10.0.0.4", Key: []byte("k")}, codes.InvalidArgument, "not the connection's remote address 10.0.0.3"},
		{"unknown endpoint", &pb.SetMd5KeyRequest{Name: s + "/endpoints/nope", PeerAddress: "10.0.0.2", Key: []byte("k")}, codes.NotFound, "not found"},
		{"unknown session", &pb.SetMd5KeyRequest{Name: "sessions/nope/endpoints/bgp", PeerAddress: "10.0.0.2", Key: []byte("k")}, codes.NotFound, "not found"},
		{"bad name", &pb.SetMd5KeyRequest{Name: "bgp", PeerAddress: "10.0.0.2", Key: []byte("k")}, codes.InvalidArgument, "name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.recordCount(s)
			_, err := e.endpoints.SetMd5Key(ctx(t), tc.req)
			st, _ := status.FromError(err)
			if st.Code() != tc.code || !strings.Contains(st.Message(), tc.message) {
				t.Fatalf("got %v %q, want %v containing %q", st.Code(), st.Message(), tc.code, tc.message)
			}
			if bytes.Contains([]byte(st.Message()), secret[:20]) {
				t.Fatalf("the message quotes the key: %q", st.Message())
			}
			if after := e.recordCount(s); after != before {
				t.Fatalf("a refused call was logged: %d records, then %d", before, after)
			}
		})
	}
	// Nothing changed: an unsigned SYN from 10.0.0.2 is still answered.
	out := e.submitPacket(s, signedSyn(t, 7000, "")).GetOutputs()
	if len(out.GetSegments()) != 1 || !hasFlags(out.Segments[0], "SYN", "ACK") {
		t.Fatalf("after refused calls the listener's peer has a key: %v", out.GetSegments())
	}
}

// TestSetMd5KeyRequestID: a retried SetMd5Key with the same request_id is
// answered from the log and not applied again (AIP-155), across a restart.
func TestSetMd5KeyRequestID(t *testing.T) {
	e, s := md5Env(t)
	req := &pb.SetMd5KeyRequest{Name: s + "/endpoints/bgp", PeerAddress: "10.0.0.2", Key: []byte("k1"), RequestId: "set-key-1"}
	first := must[*pb.SetMd5KeyResponse](t)(e.endpoints.SetMd5Key(ctx(t), req))
	n := e.recordCount(s)
	// The key is removed by another call; a retry of the first must not
	// put it back.
	must[*pb.SetMd5KeyResponse](t)(e.endpoints.SetMd5Key(ctx(t), &pb.SetMd5KeyRequest{Name: req.Name, PeerAddress: "10.0.0.2", Remove: true}))
	n2 := e.recordCount(s)
	for _, restart := range []bool{false, true} {
		if restart {
			e.restart()
		}
		again := must[*pb.SetMd5KeyResponse](t)(e.endpoints.SetMd5Key(ctx(t), req))
		if again.KeySet != first.KeySet || again.GetEndpoint().GetName() != first.GetEndpoint().GetName() {
			t.Fatalf("retry (restart %v) answered %v, first %v", restart, again, first)
		}
		if got := e.recordCount(s); got != n2 {
			t.Fatalf("retry (restart %v) was logged: %d records, want %d (first call left %d)", restart, got, n2, n)
		}
	}
	out := e.submitPacket(s, signedSyn(t, 7000, "")).GetOutputs()
	if len(out.GetSegments()) != 1 || !hasFlags(out.Segments[0], "SYN", "ACK") {
		t.Fatalf("the retry applied the key again: the unsigned SYN got %v", out.GetSegments())
	}
	if v := e.verify(s); !v.Identical {
		t.Fatalf("re-run: %+v", v)
	}
}
