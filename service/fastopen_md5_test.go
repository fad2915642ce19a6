package service

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tcpstated/tcpstated/fsm"
	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// optPacket encodes one inbound segment as an IP packet, signed under
// md5Key when it is not empty.
func optPacket(t *testing.T, src, dst string, s fsm.Segment, md5Key string) []byte {
	t.Helper()
	sa, da := netip.MustParseAddrPort(src), netip.MustParseAddrPort(dst)
	s.SrcPort, s.DstPort = sa.Port(), da.Port()
	if s.Window == 0 {
		s.Window = 65535
	}
	s.Options.HasMD5 = md5Key != ""
	p := fsm.AppendPacket(nil, sa.Addr(), da.Addr(), &s)
	if md5Key != "" && !fsm.SignMD5(p, []byte(md5Key)) {
		t.Fatalf("SignMD5 failed")
	}
	return p
}

func (e *env) submitPacket(session string, p []byte) *pb.SubmitSegmentResponse {
	e.t.Helper()
	resp, err := e.segments.SubmitSegment(ctx(e.t), &pb.SubmitSegmentRequest{Parent: session, Segment: &pb.SubmitSegmentRequest_IpPacket{IpPacket: p}})
	if err != nil {
		e.t.Fatalf("SubmitSegment: %v", err)
	}
	return resp
}

func (e *env) connectFastOpen(session, id, local, remote string, data string) *pb.CreateEndpointResponse {
	e.t.Helper()
	return must[*pb.CreateEndpointResponse](e.t)(e.endpoints.CreateEndpoint(ctx(e.t), &pb.CreateEndpointRequest{
		Parent: session, EndpointId: id, Mode: &pb.CreateEndpointRequest_Connect{Connect: &pb.ConnectConfig{
			LocalAddress: local, RemoteAddress: remote, FastOpen: true, FastOpenData: []byte(data)}},
	}))
}

func onlySyn(t *testing.T, out *pb.Outputs) *pb.Segment {
	t.Helper()
	if len(out.GetSegments()) != 1 || !hasFlags(out.Segments[0], "SYN") {
		t.Fatalf("want one SYN, got %v", out.GetSegments())
	}
	return out.Segments[0]
}

// TestCreateEndpointFastOpenConnect: a Fast Open connect through the API
// (RFC 7413 §4.1.3, §4.2.1). Without a cached cookie the SYN asks for one
// and carries no data; the server's SYN,ACK gives a cookie; the next Fast
// Open connect to that server sends the cookie and the data on its SYN.
// Without the client switch the SYN is a plain one. Each session re-runs
// identically after a restart.
func TestCreateEndpointFastOpenConnect(t *testing.T) {
	cookie := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	for _, tc := range []struct {
		name       string
		switches   map[string]string
		wantOption string // the first SYN's options text contains it
		wantNoFO   bool
	}{
		{name: "client enabled: cookie request, then cookie and data", switches: map[string]string{"fastopen.client_enable": "1"}, wantOption: "FO"},
		{name: "client switch off: a plain SYN", switches: map[string]string{"fastopen.client_enable": "0"}, wantNoFO: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newMemEnv(t, Config{})
			opts := fixedISNOptions(1000)
			opts.Switches = tc.switches
			s := e.createSession("tfo", opts).Name
			syn := onlySyn(t, e.connectFastOpen(s, "c1", "10.0.0.2:40000", "10.0.0.1:80", "hello").Outputs)
			text := syn.GetOptions().GetText()
			if len(syn.Payload) != 0 {
				t.Fatalf("first SYN carries %q; without a cookie the data waits", syn.Payload)
			}
			if tc.wantNoFO {
				if strings.Contains(text, "FO") {
					t.Fatalf("SYN options %q ask for Fast Open with the switch off", text)
				}
			} else if !strings.Contains(text, tc.wantOption) || strings.Contains(text, "FO ") {
				t.Fatalf("SYN options %q, want a cookie request (FO without a cookie)", text)
			}
			// The server answers with a cookie.
			synAck := fsm.Segment{Seq: 5000, Ack: fsm.Seq(syn.Seq + 1), Flags: fsm.FlagSYN | fsm.FlagACK}
			synAck.Options.MSS = 1460
			synAck.Options.FastOpen, synAck.Options.CookieLen = true, uint8(len(cookie))
			copy(synAck.Options.Cookie[:], cookie)
			resp := e.submitPacket(s, optPacket(t, "10.0.0.1:80", "10.0.0.2:40000", synAck, ""))
			var sent bool
			for _, seg := range resp.GetOutputs().GetSegments() {
				sent = sent || string(seg.Payload) == "hello"
			}
			if !sent {
				t.Fatalf("after the SYN,ACK the data was not sent: %v", resp.GetOutputs().GetSegments())
			}
			syn2 := onlySyn(t, e.connectFastOpen(s, "c2", "10.0.0.2:40001", "10.0.0.1:80", "hi").Outputs)
			text2 := syn2.GetOptions().GetText()
			if tc.wantNoFO {
				if strings.Contains(text2, "FO") || len(syn2.Payload) != 0 {
					t.Fatalf("switch off, second SYN %q with %q", text2, syn2.Payload)
				}
			} else if !strings.Contains(text2, "FO 0102030405060708") || string(syn2.Payload) != "hi" {
				t.Fatalf("second SYN options %q payload %q, want the cached cookie and \"hi\"", text2, syn2.Payload)
			}
			e.restart()
			if v := e.verify(s); !v.Identical || v.RecordsChecked < 6 {
				t.Fatalf("re-run after restart: %+v", v)
			}
		})
	}
}

// TestCreateEndpointFastOpenListen: listen.fast_open makes the listener a
// Fast Open server (RFC 7413 §4.1.2): a cookie request gets a cookie in
// the SYN,ACK; a plain listener ignores the request.
func TestCreateEndpointFastOpenListen(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fastOpen bool
		wantFO   bool
	}{
		{"fast open listener gives a cookie", true, true},
		{"plain listener gives none", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newMemEnv(t, Config{})
			opts := fixedISNOptions(1000)
			opts.Switches = map[string]string{"fastopen.server_enable": "1"}
			s := e.createSession("tfo", opts).Name
			must[*pb.CreateEndpointResponse](t)(e.endpoints.CreateEndpoint(ctx(t), &pb.CreateEndpointRequest{
				Parent: s, Mode: &pb.CreateEndpointRequest_Listen{Listen: &pb.ListenConfig{LocalAddress: "10.0.0.1:80", FastOpen: tc.fastOpen}},
			}))
			syn := fsm.Segment{Seq: 7000, Flags: fsm.FlagSYN}
			syn.Options.MSS = 1460
			syn.Options.FastOpen = true
			resp := e.submitPacket(s, optPacket(t, "10.0.0.2:40000", "10.0.0.1:80", syn, ""))
			segs := resp.GetOutputs().GetSegments()
			if len(segs) != 1 || !hasFlags(segs[0], "SYN", "ACK") {
				t.Fatalf("want a SYN,ACK, got %v", segs)
			}
			if got := strings.Contains(segs[0].GetOptions().GetText(), "FO "); got != tc.wantFO {
				t.Fatalf("SYN,ACK options %q: cookie %v, want %v", segs[0].GetOptions().GetText(), got, tc.wantFO)
			}
			e.restart()
			if v := e.verify(s); !v.Identical {
				t.Fatalf("re-run after restart: %+v", v)
			}
		})
	}
}

// TestCreateEndpointMD5: TCP-MD5 keys through the API (RFC 2385 §2.0). A
// listener with a key for the peer drops an unsigned or wrongly signed SYN
// without a reply and explains it; a signed one is answered with a signed
// SYN,ACK. A connect with md5_key sends a signed SYN. The keys never show
// in the log's records, and the session re-runs identically.
func TestCreateEndpointMD5(t *testing.T) {
	const key = "bgp-secret"
	for _, tc := range []struct {
		name     string
		signWith string
		wantCode string // the drop's explanation code; "" for answered
	}{
		{"unsigned SYN is dropped", "", "MD5_MISSING"},
		{"SYN signed with another key is dropped", "other-key", "MD5_BAD"},
		{"signed SYN is answered", key, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newMemEnv(t, Config{})
			s := e.createSession("md5", fixedISNOptions(1000)).Name
			must[*pb.CreateEndpointResponse](t)(e.endpoints.CreateEndpoint(ctx(t), &pb.CreateEndpointRequest{
				Parent: s, Mode: &pb.CreateEndpointRequest_Listen{Listen: &pb.ListenConfig{LocalAddress: "10.0.0.1:179",
					Md5Keys: []*pb.Md5PeerKey{{PeerAddress: "10.0.0.2", Key: []byte(key)}}}},
			}))
			syn := fsm.Segment{Seq: 7000, Flags: fsm.FlagSYN}
			syn.Options.MSS = 1460
			p := optPacket(t, "10.0.0.2:40000", "10.0.0.1:179", syn, tc.signWith)
			out := e.submitPacket(s, p).GetOutputs()
			if tc.wantCode != "" {
				if len(out.GetSegments()) != 0 {
					t.Fatalf("dropped SYN was answered: %v", out.GetSegments())
				}
				var found bool
				for _, x := range out.GetExplanations() {
					found = found || (x.Code == tc.wantCode && x.Action == pb.Explanation_ACTION_DROPPED && strings.Contains(x.Section, "RFC 2385"))
				}
				if !found {
					t.Fatalf("no %s drop explained: %v", tc.wantCode, out.GetExplanations())
				}
			} else {
				if len(out.GetSegments()) != 1 || !hasFlags(out.Segments[0], "SYN", "ACK") {
					t.Fatalf("want a SYN,ACK, got %v", out.GetSegments())
				}
				if !strings.Contains(strings.ToLower(out.Segments[0].GetOptions().GetText()), "md5") {
					t.Fatalf("SYN,ACK not signed: options %q", out.Segments[0].GetOptions().GetText())
				}
			}
			// An active open to a keyed peer signs its SYN.
			c := must[*pb.CreateEndpointResponse](t)(e.endpoints.CreateEndpoint(ctx(t), &pb.CreateEndpointRequest{
				Parent: s, Mode: &pb.CreateEndpointRequest_Connect{Connect: &pb.ConnectConfig{
					LocalAddress: "10.0.0.1:40000", RemoteAddress: "10.0.0.3:179", Md5Key: []byte("peer3-key")}},
			}))
			if raw := onlySyn(t, c.Outputs).Raw; !bytes.Contains(raw, []byte{19, 18}) {
				t.Fatalf("connect's SYN has no MD5 option")
			}
			recs := must[*pb.ListRecordsResponse](t)(e.logs.ListRecords(ctx(t), &pb.ListRecordsRequest{Parent: s}))
			for _, r := range recs.Records {
				in := r.GetInput()
				if len(in.GetConnect().GetMd5Key()) != 0 {
					t.Fatalf("record %d shows the connect's key", r.Index)
				}
				for _, k := range in.GetListen().GetMd5Keys() {
					if len(k.Key) != 0 {
						t.Fatalf("record %d shows the listener's key for %s", r.Index, k.PeerAddress)
					}
				}
				if strings.Contains(r.Summary, key) || strings.Contains(r.Summary, "peer3-key") {
					t.Fatalf("record %d summary shows a key: %s", r.Index, r.Summary)
				}
			}
			e.restart()
			if v := e.verify(s); !v.Identical {
				t.Fatalf("re-run after restart: %+v", v)
			}
		})
	}
}

// TestCreateEndpointFastOpenMD5InvalidArguments: bad Fast Open and MD5
// fields are INVALID_ARGUMENT naming the field, and change nothing.
func TestCreateEndpointFastOpenMD5InvalidArguments(t *testing.T) {
	e := newMemEnv(t, Config{})
	s := e.createSession("bad", fixedISNOptions(1000)).Name
	long := bytes.Repeat([]byte("k"), 81)
	connect := func(c *pb.ConnectConfig) *pb.CreateEndpointRequest {
		c.LocalAddress, c.RemoteAddress = "10.0.0.2:40000", "10.0.0.1:80"
		return &pb.CreateEndpointRequest{Parent: s, Mode: &pb.CreateEndpointRequest_Connect{Connect: c}}
	}
	listen := func(keys ...*pb.Md5PeerKey) *pb.CreateEndpointRequest {
		return &pb.CreateEndpointRequest{Parent: s, Mode: &pb.CreateEndpointRequest_Listen{Listen: &pb.ListenConfig{LocalAddress: "10.0.0.1:80", Md5Keys: keys}}}
	}
	for _, tc := range []struct {
		name  string
		req   *pb.CreateEndpointRequest
		field string
	}{
		{"data without fast_open", connect(&pb.ConnectConfig{FastOpenData: []byte("x")}), "connect.fast_open_data"},
		{"too much fast open data", connect(&pb.ConnectConfig{FastOpen: true, FastOpenData: make([]byte, 65536)}), "connect.fast_open_data"},
		{"connect key too long", connect(&pb.ConnectConfig{Md5Key: long}), "connect.md5_key"},
		{"listen key peer with a port", listen(&pb.Md5PeerKey{PeerAddress: "10.0.0.2:179", Key: []byte("k")}), "listen.md5_keys[0].peer_address"},
		{"listen key empty", listen(&pb.Md5PeerKey{PeerAddress: "10.0.0.2", Key: []byte("k")}, &pb.Md5PeerKey{PeerAddress: "10.0.0.3"}), "listen.md5_keys[1].key"},
		{"listen key too long", listen(&pb.Md5PeerKey{PeerAddress: "10.0.0.2", Key: long}), "listen.md5_keys[0].key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.endpoints.CreateEndpoint(ctx(t), tc.req)
			wantCode(t, err, codes.InvalidArgument)
			msg := status.Convert(err).Message()
			if !strings.Contains(msg, tc.field) {
				t.Fatalf("message %q does not name %s", msg, tc.field)
			}
			if bytes.Contains([]byte(msg), long[:10]) {
				t.Fatalf("message %q shows the key", msg)
			}
		})
	}
	if n := len(must[*pb.ListRecordsResponse](t)(e.logs.ListRecords(ctx(t), &pb.ListRecordsRequest{Parent: s})).Records); n != 1 {
		t.Fatalf("refused calls were logged: %d records, want the start record only", n)
	}
}

// TestCreateEndpointMD5RefusedConnectKeepsOldKey: a connect the engine
// refuses (its 4-tuple is taken) changes nothing, not even the peer's
// TCP-MD5 key it carried: the next connection signs with the old key, and
// the re-run (which never sees the refused call) matches.
func TestCreateEndpointMD5RefusedConnectKeepsOldKey(t *testing.T) {
	e := newMemEnv(t, Config{})
	s := e.createSession("md5", fixedISNOptions(1000)).Name
	connect := func(port, key string) (*pb.CreateEndpointResponse, error) {
		return e.endpoints.CreateEndpoint(ctx(t), &pb.CreateEndpointRequest{Parent: s, Mode: &pb.CreateEndpointRequest_Connect{Connect: &pb.ConnectConfig{
			LocalAddress: "10.0.0.1:" + port, RemoteAddress: "10.0.0.3:179", Md5Key: []byte(key)}}})
	}
	must[*pb.CreateEndpointResponse](t)(connect("40000", "old-key"))
	if _, err := connect("40000", "new-key"); err == nil {
		t.Fatalf("a second connect on the same 4-tuple was accepted")
	}
	resp := must[*pb.CreateEndpointResponse](t)(connect("40001", ""))
	raw := onlySyn(t, resp.Outputs).Raw
	signed := bytes.Clone(raw)
	if !fsm.SignMD5(signed, []byte("old-key")) || !bytes.Equal(signed, raw) {
		t.Fatalf("the SYN after the refused connect is not signed with the old key")
	}
	e.restart()
	if v := e.verify(s); !v.Identical {
		t.Fatalf("re-run after restart: %+v", v)
	}
}
