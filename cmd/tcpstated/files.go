package main

import (
	"context"
	"net/http"
	"strconv"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// Session exports that are files rather than JSON: the REST forms of
// LogService.ExportPcap and DrawDiagram. They call the gRPC service over
// loopback, as the gateway does, so authentication, metrics and errors
// are the same as for every other call; the gateway's own header rules
// (AnnotateContext) make the call's metadata, and its error handler writes
// failures as the usual JSON status with the matching HTTP code.

const (
	contentTypePcap   = "application/vnd.tcpdump.pcap"
	contentTypePcapng = "application/x-pcapng"
	contentTypeSVG    = "image/svg+xml"
)

// registerFileRoutes adds GET /v1/sessions/{session}/pcap,
// GET /v1/sessions/{session}/pcapng and
// GET /v1/sessions/{session}/diagram.svg to mux. The diagram takes the
// query parameters max_segments (a number), relative and tcp_options
// (true or false).
func registerFileRoutes(mux *http.ServeMux, gw *runtime.ServeMux, conn grpc.ClientConnInterface) {
	logs := pb.NewLogServiceClient(conn)
	fail := func(ctx context.Context, w http.ResponseWriter, r *http.Request, err error) {
		_, out := runtime.MarshalerForRequest(gw, r)
		runtime.HTTPError(ctx, gw, out, w, r, err)
	}
	capture := func(ext, contentType string, format pb.CaptureFormat) {
		pattern := "/v1/sessions/{session}/" + ext
		mux.HandleFunc("GET "+pattern, func(w http.ResponseWriter, r *http.Request) {
			name := "sessions/" + r.PathValue("session")
			ctx, err := runtime.AnnotateContext(r.Context(), gw, r, "/tcpstate.v1.LogService/ExportPcap",
				runtime.WithHTTPPathPattern(pattern))
			if err != nil {
				fail(r.Context(), w, r, err)
				return
			}
			resp, err := logs.ExportPcap(ctx, &pb.ExportPcapRequest{Name: name, Format: format})
			if err != nil {
				fail(ctx, w, r, err)
				return
			}
			w.Header().Set("Content-Type", contentType)
			w.Header().Set("Content-Disposition", `attachment; filename="`+r.PathValue("session")+"."+ext+`"`)
			w.Header().Set("Content-Length", strconv.Itoa(len(resp.Pcap)))
			w.Header().Set("X-Packet-Count", strconv.FormatUint(uint64(resp.PacketCount), 10))
			w.Write(resp.Pcap)
		})
	}
	capture("pcap", contentTypePcap, pb.CaptureFormat_CAPTURE_FORMAT_PCAP)
	capture("pcapng", contentTypePcapng, pb.CaptureFormat_CAPTURE_FORMAT_PCAPNG)
	mux.HandleFunc("GET /v1/sessions/{session}/diagram.svg", func(w http.ResponseWriter, r *http.Request) {
		req := &pb.DrawDiagramRequest{Name: "sessions/" + r.PathValue("session")}
		ctx, err := runtime.AnnotateContext(r.Context(), gw, r, "/tcpstate.v1.LogService/DrawDiagram",
			runtime.WithHTTPPathPattern("/v1/sessions/{session}/diagram.svg"))
		if err != nil {
			fail(r.Context(), w, r, err)
			return
		}
		q := r.URL.Query()
		if v := q.Get("max_segments"); v != "" {
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				fail(ctx, w, r, status.Errorf(codes.InvalidArgument, "max_segments: %q is not a number", v))
				return
			}
			req.MaxSegments = uint32(n)
		}
		for _, b := range []struct {
			name string
			to   *bool
		}{{"relative", &req.Relative}, {"tcp_options", &req.TcpOptions}} {
			if v := q.Get(b.name); v != "" {
				x, err := strconv.ParseBool(v)
				if err != nil {
					fail(ctx, w, r, status.Errorf(codes.InvalidArgument, "%s: %q is not true or false", b.name, v))
					return
				}
				*b.to = x
			}
		}
		resp, err := logs.DrawDiagram(ctx, req)
		if err != nil {
			fail(ctx, w, r, err)
			return
		}
		w.Header().Set("Content-Type", contentTypeSVG)
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Length", strconv.Itoa(len(resp.Svg)))
		w.Header().Set("X-Segments-Drawn", strconv.FormatUint(uint64(resp.SegmentsDrawn), 10))
		w.Header().Set("X-Segments-Total", strconv.FormatUint(uint64(resp.SegmentsTotal), 10))
		w.Write(resp.Svg)
	})
}
