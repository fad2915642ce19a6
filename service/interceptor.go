package service

import (
	"context"
	"strings"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The service's interceptors wrap every call of its API; cmd/tcpstated and
// the tests install them with ServerOptions. They add to an error the
// resource the call named, which the one error table cannot know.

// streamWorkers is about the concurrent calls of a busy server (the
// benchmark's 64 callers); idle workers cost only their stacks.
const streamWorkers = 64

// ServerOptions are the gRPC server options the service's calls need:
// long-lived call workers, the request codec, and its interceptors,
// innermost in the chain.
func (s *Service) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		// Calls run on long-lived workers instead of a new goroutine
		// each: a fresh goroutine's stack grows (and is copied) on
		// every call, because the engine's deepest frames take several
		// KiB, which was 9-19 % of the server's CPU per unary call. More
		// concurrent calls than workers start goroutines as before.
		grpc.NumStreamWorkers(streamWorkers),
		// The proto codec, with ExchangeSegments' packets decoded
		// without a copy each (codec.go). Forcing it skips the lookup
		// by content-subtype, which only ever found proto: no other
		// codec is registered.
		grpc.ForceServerCodecV2(newCodec()),
		grpc.ChainUnaryInterceptor(s.unaryInterceptor),
		grpc.ChainStreamInterceptor(s.streamInterceptor),
	}
}

func (s *Service) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	if err != nil {
		err = withResource(err, requestResource(req))
		if id := RequestID(req); id != "" {
			err = withMetadata(err, "request_id", id)
		}
	}
	return resp, err
}

func (s *Service) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	w := &firstRecv{ServerStream: ss}
	err := handler(srv, w)
	if err != nil {
		err = withResource(err, requestResource(w.first.Load()))
	}
	return err
}

// firstRecv remembers the first request of a stream, which names its
// resource.
// ExchangeSegments receives on a goroutine that may outlive the handler,
// hence the atomic.
type firstRecv struct {
	grpc.ServerStream
	first atomic.Value
}

func (f *firstRecv) RecvMsg(m any) error {
	err := f.ServerStream.RecvMsg(m)
	if err == nil {
		f.first.CompareAndSwap(nil, m)
	}
	return err
}

// requestResource is the resource a request names: its name, or else its
// parent (AIP-131, AIP-132).
func requestResource(req any) string {
	m, ok := req.(proto.Message)
	if !ok {
		return ""
	}
	r := m.ProtoReflect()
	for _, f := range []protoreflect.Name{"name", "parent"} {
		fd := r.Descriptor().Fields().ByName(f)
		if fd != nil && fd.Kind() == protoreflect.StringKind && !fd.IsList() {
			if v := r.Get(fd).String(); strings.HasPrefix(v, "sessions/") {
				return v
			}
		}
	}
	return ""
}

// RequestSession is the session a request names, `sessions/{session}`,
// or "" (the access log shows it).
func RequestSession(req any) string {
	r := requestResource(req)
	if r == "" {
		return ""
	}
	rest := strings.TrimPrefix(r, "sessions/")
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		rest = rest[:i]
	}
	return "sessions/" + rest
}

// RequestID is a request's request_id field (AIP-155), or "".
func RequestID(req any) string {
	m, ok := req.(proto.Message)
	if !ok {
		return ""
	}
	r := m.ProtoReflect()
	fd := r.Descriptor().Fields().ByName("request_id")
	if fd == nil || fd.Kind() != protoreflect.StringKind || fd.IsList() {
		return ""
	}
	return r.Get(fd).String()
}
