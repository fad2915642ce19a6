package service

import (
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tcpstated/tcpstated/fsm"
	"github.com/tcpstated/tcpstated/gen/openapi"
	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// Seeds of the API fuzz targets: a valid request for each method and
// route, aimed at the fuzz target session (fuzz_api_test.go). They are
// added with f.Add and committed under testdata/fuzz/.

var updateAPICorpus = flag.Bool("update-api-corpus", false, "rewrite testdata/fuzz/FuzzHandlers, FuzzSubmitSegment and FuzzHandlersJSON from the seeds")

const (
	fzSession  = "sessions/" + fuzzTarget
	fzListener = fzSession + "/endpoints/l"
	fzConn     = fzSession + "/endpoints/2" // the established connection (engine ID 2)
)

const fzScript = `0     socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0    bind(3, ..., ...) = 0
+0    listen(3, 10) = 0
0.100 < S 0:0(0) win 65535 <mss 1460>
+0    > S. 0:0(0) ack 1 win 65535 <mss 1460>
0.200 < . 1:1(0) ack 1 win 65535
+0    accept(3, ..., ...) = 4
`

// methodNames are the unary methods in the order newAPIFuzz numbers them.
func methodNames() []string {
	var names []string
	for _, d := range []*grpc.ServiceDesc{&pb.SessionService_ServiceDesc, &pb.EndpointService_ServiceDesc,
		&pb.SegmentService_ServiceDesc, &pb.LogService_ServiceDesc, &pb.ScriptService_ServiceDesc} {
		for _, m := range d.Methods {
			names = append(names, d.ServiceName+"/"+m.MethodName)
		}
	}
	sort.Strings(names)
	return names
}

type handlerSeed struct {
	name   string
	method uint8
	body   []byte
}

func handlerSeeds() []handlerSeed {
	fields := func(src string, seq, ack uint32, flags []string, payload string) *pb.SubmitSegmentRequest {
		f := seg(src, "10.0.0.1:80", seq, ack, flags, payload)
		return &pb.SubmitSegmentRequest{Parent: fzSession, Segment: &pb.SubmitSegmentRequest_Fields{Fields: f}}
	}
	reqs := map[string][]proto.Message{
		"CreateSession": {&pb.CreateSessionRequest{SessionId: "fy", Session: &pb.Session{Options: fixedISNOptions(7)}},
			&pb.CreateSessionRequest{Session: &pb.Session{Options: &pb.SessionOptions{ClockMode: pb.ClockMode_CLOCK_MODE_REALTIME, SynCookies: proto.Bool(true)}}}},
		"GetSession":    {&pb.GetSessionRequest{Name: fzSession}},
		"ListSessions":  {&pb.ListSessionsRequest{PageSize: 2}},
		"DeleteSession": {&pb.DeleteSessionRequest{Name: "sessions/fy"}},
		"AdvanceClock": {&pb.AdvanceClockRequest{Name: fzSession, Target: &pb.AdvanceClockRequest_By{By: durationpb.New(time.Second)}},
			&pb.AdvanceClockRequest{Name: fzSession, Target: &pb.AdvanceClockRequest_ToNextDeadline{ToNextDeadline: true}}},
		"CreateEndpoint": {&pb.CreateEndpointRequest{Parent: fzSession, EndpointId: "m", Mode: &pb.CreateEndpointRequest_Listen{Listen: &pb.ListenConfig{LocalAddress: "10.0.0.1:81", Backlog: 4}}},
			&pb.CreateEndpointRequest{Parent: fzSession, Mode: &pb.CreateEndpointRequest_Connect{Connect: &pb.ConnectConfig{LocalAddress: "10.0.0.1:5000", RemoteAddress: "10.0.0.9:80"}}},
			&pb.CreateEndpointRequest{Parent: fzSession, Mode: &pb.CreateEndpointRequest_Connect{Connect: &pb.ConnectConfig{LocalAddress: "10.0.0.1:5001", RemoteAddress: "10.0.0.9:80", FastOpen: true, FastOpenData: []byte("hello"), Md5Key: []byte("k")}}},
			&pb.CreateEndpointRequest{Parent: fzSession, Mode: &pb.CreateEndpointRequest_Listen{Listen: &pb.ListenConfig{LocalAddress: "10.0.0.1:179", FastOpen: true, Md5Keys: []*pb.Md5PeerKey{{PeerAddress: "10.0.0.9", Key: []byte("k")}}}}}},
		"GetEndpoint":      {&pb.GetEndpointRequest{Name: fzConn}},
		"ListEndpoints":    {&pb.ListEndpointsRequest{Parent: fzSession, PageSize: 1}},
		"AcceptConnection": {&pb.AcceptConnectionRequest{Name: fzListener}},
		"SendData":         {&pb.SendDataRequest{Name: fzConn, Payload: &pb.SendDataRequest_Text{Text: "hello"}}},
		"ReceiveData":      {&pb.ReceiveDataRequest{Name: fzConn, MaxBytes: 3}},
		"ShutdownEndpoint": {&pb.ShutdownEndpointRequest{Name: fzConn}},
		"CloseEndpoint":    {&pb.CloseEndpointRequest{Name: fzConn}},
		"AbortEndpoint":    {&pb.AbortEndpointRequest{Name: fzConn}},
		"SubmitSegment": {fields("10.0.0.2:40000", 101, 1001, []string{"PSH", "ACK"}, "data"),
			fields("10.0.0.3:1234", 5, 0, []string{"SYN"}, ""),
			&pb.SubmitSegmentRequest{Parent: fzSession, Segment: &pb.SubmitSegmentRequest_IpPacket{IpPacket: rawPacket(40000, 101, 1001, fsm.FlagFIN|fsm.FlagACK, nil)}}},
		"ListSegments":  {&pb.ListSegmentsRequest{Parent: fzSession, PageSize: 1}},
		"DrainSegments": {&pb.DrainSegmentsRequest{Parent: fzSession, MaxSegments: 1}},
		"ListRecords":   {&pb.ListRecordsRequest{Parent: fzSession, PageSize: 3}},
		"VerifySession": {&pb.VerifySessionRequest{Name: fzSession}},
		"ExportPcap":    {&pb.ExportPcapRequest{Name: fzSession}},
		"DrawDiagram":   {&pb.DrawDiagramRequest{Name: fzSession, Relative: true, MaxSegments: 10}},
		"RunScript":     {&pb.RunScriptRequest{Script: fzScript, Compare: "SEMANTIC", Name: "handshake"}},
	}
	var seeds []handlerSeed
	for i, full := range methodNames() {
		short := full[strings.LastIndex(full, "/")+1:]
		for k, m := range reqs[short] {
			b, err := proto.Marshal(m)
			if err != nil {
				panic(err)
			}
			seeds = append(seeds, handlerSeed{fmt.Sprintf("%s-%d", short, k), uint8(i), b})
		}
	}
	return seeds
}

type submitSeed struct {
	name string
	body []byte
}

func submitSeedList() []submitSeed {
	raw := func(p []byte) *pb.SubmitSegmentRequest {
		return &pb.SubmitSegmentRequest{Segment: &pb.SubmitSegmentRequest_IpPacket{IpPacket: p}}
	}
	tcp := fsm.Segment{SrcPort: 40001, DstPort: 80, Seq: 9, Flags: fsm.FlagSYN, Window: 1024}
	tcp.Options.MSS, tcp.Options.HasMSS, tcp.Options.HasTimestamp, tcp.Options.TSVal = 536, true, true, 77
	tcpBytes := fsm.AppendSegment(nil, &tcp, netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.1"))
	f := seg("10.0.0.2:40000", "10.0.0.1:80", 101, 1001, []string{"ACK"}, "payload")
	f.Options = &pb.SegmentOptions{Mss: proto.Uint32(1000), WindowScale: proto.Uint32(7), SackPermitted: true, Timestamp: &pb.TimestampOption{Val: 5}}
	reqs := []struct {
		name string
		m    *pb.SubmitSegmentRequest
	}{
		{"syn", raw(rawPacket(40002, 1, 0, fsm.FlagSYN, nil))},
		{"data", raw(rawPacket(40000, 101, 1001, fsm.FlagACK|fsm.FlagPSH, []byte("abc")))},
		{"rst", raw(rawPacket(40000, 101, 0, fsm.FlagRST, nil))},
		{"fin", raw(rawPacket(40000, 101, 1001, fsm.FlagFIN|fsm.FlagACK, nil))},
		{"raw-tcp", &pb.SubmitSegmentRequest{Segment: &pb.SubmitSegmentRequest_Tcp{Tcp: &pb.RawTcpSegment{Segment: tcpBytes, SourceIp: "10.0.0.2", DestinationIp: "10.0.0.1"}}}},
		{"fields", &pb.SubmitSegmentRequest{Segment: &pb.SubmitSegmentRequest_Fields{Fields: f}}},
	}
	var out []submitSeed
	for _, r := range reqs {
		b, err := proto.Marshal(r.m)
		if err != nil {
			panic(err)
		}
		out = append(out, submitSeed{r.name, b})
	}
	return out
}

func submitSeeds() [][]byte {
	var out [][]byte
	for _, s := range submitSeedList() {
		out = append(out, s.body)
	}
	return out
}

type jsonSeed struct {
	name  string
	route uint8
	body  []byte
}

// jsonRoutes are the POST routes in the order newAPIFuzz numbers them.
func jsonRoutes() []string {
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openapi.JSON, &doc); err != nil {
		panic(err)
	}
	var routes []string
	for p, ops := range doc.Paths {
		for m := range ops {
			if m == "post" || m == "patch" || m == "put" {
				routes = append(routes, p+strings.ToUpper(m))
			}
		}
	}
	sort.Strings(routes)
	return routes
}

func jsonSeeds() []jsonSeed {
	script, _ := json.Marshal(fzScript)
	bodies := map[string][]string{
		"/v1/sessionsPOST": {`{"options":{"isnMode":"ISN_MODE_FIXED","fixedIsn":1000,"msl":"1s"}}`, `{}`},
		"/v1/sessions/{session}/endpointsPOST": {`{"endpointId":"m","listen":{"localAddress":"10.0.0.1:82","backlog":2}}`,
			`{"connect":{"localAddress":"10.0.0.1:5001","remoteAddress":"10.0.0.9:80"}}`},
		"/v1/sessions/{session}/segmentsPOST": {`{"fields":{"sourceAddress":"10.0.0.2:40000","destinationAddress":"10.0.0.1:80","seq":101,"ack":1001,"flags":["ACK","PSH"],"window":65535,"payloadText":"hi"}}`,
			`{"ipPacket":"` + base64.StdEncoding.EncodeToString(rawPacket(40003, 1, 0, fsm.FlagSYN, nil)) + `"}`},
		"/v1/sessions/{session}:advanceClockPOST":                  {`{"by":"1.5s"}`, `{"toNextDeadline":true}`},
		"/v1/sessions/{session}/endpoints/{endpoint}:acceptPOST":   {`{}`},
		"/v1/sessions/{session}/endpoints/{endpoint}:sendPOST":     {`{"text":"hello"}`, `{"data":"AAEC"}`},
		"/v1/sessions/{session}/endpoints/{endpoint}:receivePOST":  {`{"maxBytes":4}`},
		"/v1/sessions/{session}/endpoints/{endpoint}:shutdownPOST": {`{}`},
		"/v1/sessions/{session}/endpoints/{endpoint}:closePOST":    {`{}`},
		"/v1/sessions/{session}/endpoints/{endpoint}:abortPOST":    {`{}`},
		"/v1/sessions/{session}:verifyPOST":                        {`{}`},
		"/v1/scripts:runPOST":                                      {`{"script":` + string(script) + `,"compare":"SEMANTIC","name":"handshake"}`},
	}
	var seeds []jsonSeed
	for i, r := range jsonRoutes() {
		for k, b := range bodies[r] {
			name := strings.NewReplacer("/v1/", "", "{", "", "}", "", "/", "-", ":", "-").Replace(r)
			seeds = append(seeds, jsonSeed{fmt.Sprintf("%s-%d", strings.ToLower(name), k), uint8(i), []byte(b)})
		}
	}
	return seeds
}

// corpusFile is the go test fuzz v1 encoding of one input.
func corpusFile(vals ...any) []byte {
	var b strings.Builder
	b.WriteString("go test fuzz v1\n")
	for _, v := range vals {
		switch v := v.(type) {
		case uint8:
			fmt.Fprintf(&b, "byte(%q)\n", v)
		case []byte:
			fmt.Fprintf(&b, "[]byte(%q)\n", v)
		}
	}
	return []byte(b.String())
}

// TestAPIFuzzCorpus keeps the committed seed corpora: with
// -update-api-corpus it rewrites them from the seeds; otherwise it checks
// that each target has one.
func TestAPIFuzzCorpus(t *testing.T) {
	files := map[string]map[string][]byte{"FuzzHandlers": {}, "FuzzSubmitSegment": {}, "FuzzHandlersJSON": {}}
	for _, s := range handlerSeeds() {
		files["FuzzHandlers"][s.name] = corpusFile(s.method, s.body)
	}
	for _, s := range submitSeedList() {
		files["FuzzSubmitSegment"][s.name] = corpusFile(s.body)
	}
	for _, s := range jsonSeeds() {
		files["FuzzHandlersJSON"][s.name] = corpusFile(s.route, s.body)
	}
	for target, fs := range files {
		dir := filepath.Join("testdata", "fuzz", target)
		if *updateAPICorpus {
			os.RemoveAll(dir)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for name, b := range fs {
				if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			continue
		}
		entries, err := os.ReadDir(dir)
		if err != nil || len(entries) == 0 {
			t.Errorf("%s: no committed seed corpus (%v); run go test -run TestAPIFuzzCorpus ./service/ -update-api-corpus", dir, err)
		}
	}
}
