package main

import (
	"encoding/json"
	"fmt"

	"github.com/tcpstated/tcpstated/gen/openapi"
)

// openAPIDocument is the generated OpenAPI document (gen/openapi) as the
// server serves it at /openapi.json: titled for the service with the API
// and server versions, and with the routes the gateway does not generate
// (the capture files, the diagram, /healthz, /metrics).
func openAPIDocument(serverVersion string) ([]byte, error) {
	var doc map[string]any
	if err := json.Unmarshal(openapi.JSON, &doc); err != nil {
		return nil, fmt.Errorf("the embedded OpenAPI document: %v", err)
	}
	doc["info"] = map[string]any{
		"title":       "tcpstated API",
		"version":     "v1 (tcpstated " + serverVersion + ")",
		"description": "A TCP state machine (RFC 9293) as a network service: sessions, endpoints, segments, replay logs and packetdrill scripts. gRPC package tcpstate.v1; this is its REST gateway.",
	}
	paths, _ := doc["paths"].(map[string]any)
	if paths == nil {
		paths = map[string]any{}
		doc["paths"] = paths
	}
	session := map[string]any{"name": "session", "in": "path", "required": true, "type": "string", "description": "The session ID (the last segment of sessions/{session})."}
	file := func(summary, op, mime string, params ...map[string]any) map[string]any {
		return map[string]any{"get": map[string]any{
			"summary":     summary,
			"operationId": op,
			"tags":        []string{"LogService"},
			"produces":    []string{mime},
			"parameters":  append([]map[string]any{session}, params...),
			"responses": map[string]any{
				"200":     map[string]any{"description": "The file.", "schema": map[string]any{"type": "file"}},
				"default": map[string]any{"description": "An error.", "schema": map[string]any{"$ref": "#/definitions/rpcStatus"}},
			},
		}}
	}
	query := func(name, typ, desc string) map[string]any {
		return map[string]any{"name": name, "in": "query", "required": false, "type": typ, "description": desc}
	}
	paths["/v1/sessions/{session}/pcap"] = file("The session's segments as a pcap file (LogService.ExportPcap, CAPTURE_FORMAT_PCAP).", "LogService_ExportPcapFile", contentTypePcap)
	paths["/v1/sessions/{session}/pcapng"] = file("The session's segments as a pcapng file, each with the engine's explanation as its packet comment (LogService.ExportPcap, CAPTURE_FORMAT_PCAPNG).", "LogService_ExportPcapngFile", contentTypePcapng)
	paths["/v1/sessions/{session}/diagram.svg"] = file("The session as a ladder diagram in SVG (LogService.DrawDiagram).", "LogService_DrawDiagramFile", contentTypeSVG,
		query("max_segments", "integer", "Most segments to draw (default 500, at most 5000)."),
		query("relative", "boolean", "Sequence numbers relative to each side's ISN."),
		query("tcp_options", "boolean", "Show TCP options."))
	plain := func(summary, op, mime string) map[string]any {
		return map[string]any{"get": map[string]any{
			"summary": summary, "operationId": op, "tags": []string{"Server"}, "produces": []string{mime},
			"responses": map[string]any{"200": map[string]any{"description": "OK."}},
		}}
	}
	paths["/healthz"] = plain("ok while the server serves (grpc.health.v1 SERVING); 503 otherwise.", "Server_Healthz", "text/plain")
	paths["/metrics"] = plain("Prometheus metrics.", "Server_Metrics", "text/plain")
	return json.MarshalIndent(doc, "", "  ")
}
