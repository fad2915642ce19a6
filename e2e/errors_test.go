package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
)

// TestRESTBadRequests: each bad request gets its exact HTTP status and
// gRPC code (in the body, as grpc-gateway renders a status) and a message
// naming what is wrong; and none of them changes anything: the sessions,
// their endpoints and their log lengths read the same after every one.
func TestRESTBadRequests(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir(), "--max-sessions", "3", "--max-endpoints", "3",
		"--max-message-bytes", "8192", "--max-buffer-bytes", "1048576")

	// demo: listener "web" on 10.0.0.1:80; connection 2 ESTABLISHED
	// with "hello" unread; connection 3 closed by us (FIN-WAIT-1). That
	// is the endpoint limit of 3. rt: a REALTIME session. empty: nothing.
	// That is the session limit of 3.
	s.doJSON("POST", "/v1/sessions?session_id=demo", `{"options":{"isnMode":"ISN_MODE_FIXED","fixedIsn":1000}}`)
	s.doJSON("POST", "/v1/sessions/demo/endpoints", `{"endpointId":"web","listen":{"localAddress":"10.0.0.1:80"}}`)
	s.establish("sessions/demo", peer, "hello")
	s.establish("sessions/demo", "10.0.0.3:40001", "bye")
	s.doJSON("POST", "/v1/sessions/demo/endpoints/web:accept", `{}`)
	s.doJSON("POST", "/v1/sessions/demo/endpoints/web:accept", `{}`)
	s.doJSON("POST", "/v1/sessions/demo/endpoints/3:receive", `{}`)
	s.doJSON("POST", "/v1/sessions/demo/endpoints/3:close", `{}`)
	s.doJSON("POST", "/v1/sessions?session_id=rt", `{"options":{"clockMode":"CLOCK_MODE_REALTIME"}}`)
	s.doJSON("POST", "/v1/sessions?session_id=empty", `{}`)

	state := func() string {
		var b strings.Builder
		for _, p := range []string{"/v1/sessions", "/v1/sessions/demo/endpoints", "/v1/sessions/rt/endpoints", "/v1/sessions/empty/endpoints"} {
			code, body := s.do("GET", p, "")
			if code != http.StatusOK {
				t.Fatalf("GET %s: %d %s", p, code, body)
			}
			b.Write(body)
		}
		return b.String()
	}
	before := state()
	if !strings.Contains(before, `"stateName":"FIN-WAIT-1"`) || strings.Count(before, `"kind":"ENDPOINT_KIND_`) != 3 {
		t.Fatalf("setup: %s", before)
	}

	const syn = `{"fields":{"sourceAddress":"10.0.0.9:1234","destinationAddress":"10.0.0.1:80","seq":1,"flags":["SYN"],"window":65535}}`
	bigText := `{"text":"` + strings.Repeat("x", 9000) + `"}`
	hugeText := `{"text":"` + strings.Repeat("x", 30000) + `"}`
	cases := []struct {
		name         string
		method, path string
		body         string
		status       int
		code         codes.Code
		msg          string // a part of the message
	}{
		// Unknown resources.
		{"unknown session", "GET", "/v1/sessions/nope", "", 404, codes.NotFound, "session sessions/nope not found"},
		{"unknown endpoint", "GET", "/v1/sessions/demo/endpoints/99", "", 404, codes.NotFound, "endpoint sessions/demo/endpoints/99 not found"},
		{"segment to an unknown session", "POST", "/v1/sessions/nope/segments", syn, 404, codes.NotFound, "sessions/nope not found"},
		{"close an unknown endpoint", "POST", "/v1/sessions/demo/endpoints/99:close", `{}`, 404, codes.NotFound, "endpoints/99 not found"},
		{"receive on an unknown alias", "POST", "/v1/sessions/demo/endpoints/nosuch:receive", `{}`, 404, codes.NotFound, "endpoints/nosuch not found"},
		{"delete an unknown session", "DELETE", "/v1/sessions/nope", "", 404, codes.NotFound, "not found"},
		{"advance an unknown session", "POST", "/v1/sessions/nope:advanceClock", `{"by":"1s"}`, 404, codes.NotFound, "not found"},
		{"records of an unknown session", "GET", "/v1/sessions/nope/records", "", 404, codes.NotFound, "not found"},
		{"verify an unknown session", "POST", "/v1/sessions/nope:verify", `{}`, 404, codes.NotFound, "not found"},
		{"no such path", "GET", "/v1/nothing-here", "", 404, codes.NotFound, "Not Found"},

		// Malformed requests.
		{"malformed JSON", "POST", "/v1/sessions/demo/segments", `{"fields":`, 400, codes.InvalidArgument, "unexpected EOF"},
		{"unknown JSON field", "POST", "/v1/sessions/demo/segments", `{"fieldz":{}}`, 400, codes.InvalidArgument, "fieldz"},
		{"no segment form", "POST", "/v1/sessions/demo/segments", `{}`, 400, codes.InvalidArgument, "segment: one of ip_packet, tcp or fields is required"},
		{"address without a port", "POST", "/v1/sessions/demo/endpoints", `{"listen":{"localAddress":"10.0.0.1"}}`, 400, codes.InvalidArgument, "listen.local_address"},
		{"address out of range", "POST", "/v1/sessions/demo/endpoints", `{"listen":{"localAddress":"999.0.0.1:80"}}`, 400, codes.InvalidArgument, "listen.local_address"},
		{"endpoint with no mode", "POST", "/v1/sessions/demo/endpoints", `{}`, 400, codes.InvalidArgument, "mode"},
		{"bad source address", "POST", "/v1/sessions/demo/segments", `{"fields":{"sourceAddress":"nonsense","destinationAddress":"10.0.0.1:80","flags":["SYN"]}}`, 400, codes.InvalidArgument, "fields.source_address"},
		{"mixed address families", "POST", "/v1/sessions/demo/segments", `{"fields":{"sourceAddress":"10.0.0.2:1","destinationAddress":"[::1]:80","flags":["SYN"]}}`, 400, codes.InvalidArgument, "fields.destination_address"},
		{"unknown flag", "POST", "/v1/sessions/demo/segments", `{"fields":{"sourceAddress":"10.0.0.2:1","destinationAddress":"10.0.0.1:80","flags":["SYNN"]}}`, 400, codes.InvalidArgument, "fields.flags[0]"},
		{"window beyond 16 bits", "POST", "/v1/sessions/demo/segments", `{"fields":{"sourceAddress":"10.0.0.2:1","destinationAddress":"10.0.0.1:80","flags":["SYN"],"window":70000}}`, 400, codes.InvalidArgument, "fields.window"},
		{"bytes that are not an IP packet", "POST", "/v1/sessions/demo/segments", `{"ipPacket":"AAAA"}`, 400, codes.InvalidArgument, "ip_packet: ip version"},
		{"bytes that are not a TCP segment", "POST", "/v1/sessions/demo/segments", `{"tcp":{"segment":"AAAA","sourceIp":"10.0.0.2","destinationIp":"10.0.0.1"}}`, 400, codes.InvalidArgument, "tcp.segment: tcp"},
		{"bytes that are not base64", "POST", "/v1/sessions/demo/segments", `{"ipPacket":"%%%"}`, 400, codes.InvalidArgument, "ipPacket"},
		{"clock target missing", "POST", "/v1/sessions/demo:advanceClock", `{}`, 400, codes.InvalidArgument, "target"},
		{"clock moved backwards", "POST", "/v1/sessions/demo:advanceClock", `{"by":"-1s"}`, 400, codes.InvalidArgument, "by"},
		{"duration that does not parse", "POST", "/v1/sessions/demo:advanceClock", `{"by":"soon"}`, 400, codes.InvalidArgument, "soon"},
		{"bad session ID", "POST", "/v1/sessions?session_id=Bad_ID", `{}`, 400, codes.InvalidArgument, "session_id"},
		{"option out of range", "POST", "/v1/sessions?session_id=other", `{"options":{"mss":70000}}`, 400, codes.InvalidArgument, "session.options.mss"},
		{"negative page size", "GET", "/v1/sessions?pageSize=-1", "", 400, codes.InvalidArgument, "page_size"},
		{"page token not issued", "GET", "/v1/sessions?pageToken=zzz", "", 400, codes.InvalidArgument, "page_token"},
		{"send with nothing", "POST", "/v1/sessions/demo/endpoints/2:send", `{}`, 400, codes.InvalidArgument, "payload: one of data or text is required"},
		{"MD5 key over 80 bytes", "POST", "/v1/sessions/demo/endpoints/web:setMd5Key", `{"peerAddress":"10.0.0.2","key":"a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tr"}`, 400, codes.InvalidArgument, "key: 81 bytes, more than 80 (TCP_MD5SIG_MAXKEYLEN)"},
		{"MD5 peer with a port", "POST", "/v1/sessions/demo/endpoints/web:setMd5Key", `{"peerAddress":"10.0.0.2:179","key":"c2VjcmV0"}`, 400, codes.InvalidArgument, `peer_address: "10.0.0.2:179" is not an IP address`},
		{"MD5 key on an unknown endpoint", "POST", "/v1/sessions/demo/endpoints/99:setMd5Key", `{"peerAddress":"10.0.0.2","key":"c2VjcmV0"}`, 404, codes.NotFound, "endpoints/99 not found"},

		// Calls the connection's state does not allow: the RFC's words.
		{"send on a listener", "POST", "/v1/sessions/demo/endpoints/web:send", `{"text":"x"}`, 400, codes.FailedPrecondition, "endpoint is a listener, not a connection"},
		{"receive on a listener", "POST", "/v1/sessions/demo/endpoints/web:receive", `{}`, 400, codes.FailedPrecondition, "endpoint is a listener, not a connection"},
		{"accept on a connection", "POST", "/v1/sessions/demo/endpoints/2:accept", `{}`, 400, codes.FailedPrecondition, "endpoint is not a listener"},
		{"accept with nothing queued", "POST", "/v1/sessions/demo/endpoints/web:accept", `{}`, 400, codes.FailedPrecondition, "no connection waiting to be accepted"},
		{"send after close", "POST", "/v1/sessions/demo/endpoints/3:send", `{"text":"more"}`, 400, codes.FailedPrecondition, "connection closing"},
		{"advance a REALTIME clock", "POST", "/v1/sessions/rt:advanceClock", `{"by":"1s"}`, 400, codes.FailedPrecondition, "REALTIME"},

		// Names taken.
		{"session ID taken", "POST", "/v1/sessions?session_id=demo", `{}`, 409, codes.AlreadyExists, "sessions/demo already exists"},
		{"endpoint ID taken", "POST", "/v1/sessions/demo/endpoints", `{"endpointId":"web","listen":{"localAddress":"10.0.0.1:81"}}`, 409, codes.AlreadyExists, "already exists"},

		// Limits.
		{"session limit", "POST", "/v1/sessions?session_id=fourth", `{}`, 429, codes.ResourceExhausted, "limit of 3 sessions"},
		{"endpoint limit", "POST", "/v1/sessions/demo/endpoints", `{"listen":{"localAddress":"10.0.0.1:81"}}`, 429, codes.ResourceExhausted, "too many endpoints"},
		{"buffer limit", "POST", "/v1/sessions?session_id=other", `{"options":{"receiveWindow":2000000}}`, 429, codes.ResourceExhausted, "receive_window"},
		{"message size limit", "POST", "/v1/sessions/demo/endpoints/2:send", bigText, 429, codes.ResourceExhausted, "8192"},
		{"HTTP body limit", "POST", "/v1/sessions/demo/endpoints/2:send", hugeText, 429, codes.ResourceExhausted, "request body: 30011 bytes is above the limit of 20480"},

		// Methods the API does not have.
		{"PUT a session", "PUT", "/v1/sessions/demo", `{}`, 501, codes.Unimplemented, "Method Not Allowed"},
	}
	// What a program branches on: ErrorInfo's reason and, for a bad
	// argument, the field BadRequest names (AIP-193), in the status's
	// details as grpc-gateway renders them.
	details := map[string]struct{ reason, field, resource string }{
		"unknown session":          {"SESSION_NOT_FOUND", "", "sessions/nope"},
		"unknown endpoint":         {"ENDPOINT_NOT_FOUND", "", "sessions/demo/endpoints/99"},
		"no segment form":          {"INVALID_ARGUMENT", "segment", "sessions/demo"},
		"unknown flag":             {"INVALID_ARGUMENT", "fields.flags[0]", "sessions/demo"},
		"option out of range":      {"INVALID_ARGUMENT", "session.options.mss", ""},
		"send after close":         {"CONNECTION_CLOSING", "", "sessions/demo/endpoints/3"},
		"advance a REALTIME clock": {"CLOCK_NOT_VIRTUAL", "", "sessions/rt"},
		"session ID taken":         {"SESSION_ALREADY_EXISTS", "", ""},
		"session limit":            {"LIMIT_EXCEEDED", "", ""},
	}
	if len(cases) < 30 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := s.do(tc.method, tc.path, tc.body)
			var st struct {
				Code    codes.Code `json:"code"`
				Message string     `json:"message"`
				Details []struct {
					Type            string            `json:"@type"`
					Reason          string            `json:"reason"`
					Domain          string            `json:"domain"`
					Metadata        map[string]string `json:"metadata"`
					FieldViolations []struct {
						Field       string `json:"field"`
						Description string `json:"description"`
					} `json:"fieldViolations"`
				} `json:"details"`
			}
			if err := json.Unmarshal(body, &st); err != nil {
				t.Fatalf("%s %s: HTTP %d, body %q is not a status: %v", tc.method, tc.path, status, body, err)
			}
			if status != tc.status || st.Code != tc.code || !strings.Contains(st.Message, tc.msg) {
				t.Errorf("%s %s %.80s:\n got HTTP %d %v %q\nwant HTTP %d %v containing %q", tc.method, tc.path, tc.body, status, st.Code, st.Message, tc.status, tc.code, tc.msg)
			}
			if want, ok := details[tc.name]; ok {
				var reason, domain, resource, field string
				violations := 0
				for _, d := range st.Details {
					switch d.Type {
					case "type.googleapis.com/google.rpc.ErrorInfo":
						reason, domain, resource = d.Reason, d.Domain, d.Metadata["resource"]
					case "type.googleapis.com/google.rpc.BadRequest":
						violations = len(d.FieldViolations)
						if violations > 0 {
							field = d.FieldViolations[0].Field
						}
					}
				}
				if reason != want.reason || domain != "tcpstated.dev" || resource != want.resource || field != want.field || (want.field != "") != (violations == 1) {
					t.Errorf("%s %s: details %s\nwant reason %s, resource %q, field %q", tc.method, tc.path, body, want.reason, want.resource, want.field)
				}
			}
			if after := state(); after != before {
				t.Errorf("the rejected request changed the server:\n before %s\n after  %s", before, after)
			}
		})
	}
}
