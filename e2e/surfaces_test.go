package e2e

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// TestStandardSurfaces: /openapi.json, /healthz, /metrics, grpc.health.v1
// and server reflection answer on the real binary.
func TestStandardSurfaces(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir())
	s.doJSON("POST", "/v1/sessions?session_id=m", `{}`)

	code, body := s.do("GET", "/openapi.json", "")
	var doc struct {
		Swagger string                    `json:"swagger"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(body, &doc); code != http.StatusOK || err != nil || doc.Swagger != "2.0" {
		t.Fatalf("/openapi.json: HTTP %d, %v, swagger %q", code, err, doc.Swagger)
	}
	for path, method := range map[string]string{
		"/v1/sessions":                                      "post",
		"/v1/sessions/{session}":                            "get",
		"/v1/sessions/{session}/segments":                   "post",
		"/v1/sessions/{session}:advanceClock":               "post",
		"/v1/sessions/{session}/endpoints/{endpoint}:close": "post",
		"/v1/sessions/{session}/records":                    "get",
	} {
		if _, ok := doc.Paths[path][method]; !ok {
			t.Errorf("/openapi.json has no %s %s (paths: %v)", method, path, keys(doc.Paths))
		}
	}

	if code, body = s.do("GET", "/healthz", ""); code != http.StatusOK || string(body) != "ok\n" {
		t.Errorf("/healthz: HTTP %d %q", code, body)
	}

	code, body = s.do("GET", "/metrics", "")
	for _, want := range []string{
		"tcpstated_sessions 1",
		`tcpstated_grpc_calls_total{code="OK",method="/tcpstate.v1.SessionService/CreateSession"} 1`,
		"go_goroutines ",
		"process_resident_memory_bytes ",
	} {
		if code != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("/metrics: HTTP %d, no %q", code, want)
		}
	}

	hc := healthpb.NewHealthClient(s.conn)
	for _, svc := range []string{"", "tcpstate.v1.SessionService", "tcpstate.v1.EndpointService", "tcpstate.v1.SegmentService", "tcpstate.v1.LogService"} {
		r, err := hc.Check(ctx(t), &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || r.Status != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("grpc.health.v1 Check(%q): %v, %v", svc, r, err)
		}
	}
	if services := listServices(t, s.conn); !slices.Contains(services, "tcpstate.v1.SegmentService") || !slices.Contains(services, "grpc.health.v1.Health") {
		t.Errorf("reflection lists %v", services)
	}
	s.stop()
}

func keys[V any](m map[string]V) []string {
	var k []string
	for x := range m {
		k = append(k, x)
	}
	slices.Sort(k)
	return k
}
