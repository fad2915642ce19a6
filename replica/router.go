package replica

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// Local is what the router needs from this replica's service.
type Local interface {
	// Route returns the log name of session id as the caller of ctx sees
	// it (sessions are namespaced by tenant), and whether this replica
	// serves it now.
	Route(ctx context.Context, id string) (log string, served bool)
	// Adopt takes the session of log over by replaying its log. It fails
	// if another live replica holds the lease.
	Adopt(log string) error
}

// Owners is what the router needs from the store: who holds a log's
// lease, and whether this replica's own lease is certainly live.
type Owners interface {
	Owner(ctx context.Context, log string) (owner, addr string, live, exists bool, err error)
	LeaseValid() bool
}

// Router routes calls on sessions to their owners.
type Router struct {
	local  Local
	owners Owners
	self   string // this replica's id in the lease table
	log    *slog.Logger
	dialMu sync.Mutex
	conns  map[string]*grpc.ClientConn
	dial   []grpc.DialOption
	m      *Metrics
}

// Metrics counts what the router did.
type Metrics struct {
	Forwards *prometheus.CounterVec // by method
	Failures *prometheus.CounterVec // calls neither forwarded nor taken over, by reason
}

// NewMetrics registers the router's metrics on reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Forwards: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tcpstated_replica_forwards_total",
			Help: "Calls forwarded to the replica that owns their session."}, []string{"method"}),
		Failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tcpstated_replica_route_failures_total",
			Help: "Calls that could be neither forwarded nor taken over."}, []string{"reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.Forwards, m.Failures)
	}
	return m
}

// New returns a router for the replica self. dial are the options for
// connections to other replicas (default: plaintext).
func New(local Local, owners Owners, self string, m *Metrics, lg *slog.Logger, dial ...grpc.DialOption) *Router {
	if m == nil {
		m = NewMetrics(nil)
	}
	if lg == nil {
		lg = slog.Default()
	}
	if len(dial) == 0 {
		dial = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	return &Router{local: local, owners: owners, self: self, log: lg.With("component", "replica"), conns: map[string]*grpc.ClientConn{}, dial: dial, m: m}
}

// TakeOverOrphans looks every interval for logs whose owner's lease has
// expired (orphans lists some) and takes them over, so the sessions of a
// replica that died are served again without waiting for a call, and
// their REALTIME timers run on. Replicas race for an orphan; the
// database's lease update lets exactly one win. It returns when ctx ends.
func (r *Router) TakeOverOrphans(ctx context.Context, every time.Duration, orphans func(context.Context, int) ([]string, error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !r.owners.LeaseValid() {
			// This replica's own lease has lapsed (a database outage, a
			// pause): it takes nothing over until it has renewed, or it
			// would hold sessions under a lease others consider dead.
			continue
		}
		names, err := orphans(ctx, orphanBatch)
		if err != nil {
			if ctx.Err() == nil {
				r.log.Warn("looking for orphaned sessions", "err", err)
			}
			continue
		}
		for _, n := range names {
			if ctx.Err() != nil {
				return
			}
			if err := r.local.Adopt(n); err != nil {
				r.log.Debug("orphaned session not taken over", "log", n, "err", err)
			}
		}
	}
}

// orphanBatch bounds the takeovers of one pass, so that a replica that
// finds thousands spreads them (and others take their share).
const orphanBatch = 64

// forwardedKey marks a call one replica forwarded to another.
const forwardedKey = "tcpstated-forwarded-by"

// Close closes the connections to other replicas.
func (r *Router) Close() {
	r.dialMu.Lock()
	defer r.dialMu.Unlock()
	for a, c := range r.conns {
		c.Close()
		delete(r.conns, a)
	}
}

// sessionOf returns the session ID a request names in its name or parent
// field ("sessions/{id}" or "sessions/{id}/…").
func sessionOf(m proto.Message) (string, bool) {
	msg := m.ProtoReflect()
	for _, f := range []protoreflect.Name{"name", "parent"} {
		fd := msg.Descriptor().Fields().ByName(f)
		if fd == nil || fd.Kind() != protoreflect.StringKind || fd.IsList() {
			continue
		}
		rest, ok := strings.CutPrefix(msg.Get(fd).String(), "sessions/")
		if !ok {
			return "", false
		}
		id, _, _ := strings.Cut(rest, "/")
		return id, id != ""
	}
	return "", false
}

// decision is where a call goes.
type decision struct {
	forward string // the owner's address; "" to serve here
}

// route decides where the call on session id goes, taking the session
// over when nobody live holds it.
func (r *Router) route(ctx context.Context, id string) (decision, error) {
	lg, served := r.local.Route(ctx, id)
	if served && lg != "" && !r.owners.LeaseValid() {
		// Paused or cut off past the lease: another replica may own the
		// session by now; serve nothing from memory until renewed.
		r.m.Failures.WithLabelValues("lease_lapsed").Inc()
		return decision{}, status.Errorf(codes.Unavailable, "session sessions/%s: this replica's lease has lapsed; retry", id)
	}
	if served {
		return decision{}, nil
	}
	owner, addr, live, exists, err := r.owners.Owner(ctx, lg)
	if err != nil {
		r.m.Failures.WithLabelValues("lease_lookup").Inc()
		return decision{}, status.Errorf(codes.Unavailable, "session sessions/%s: looking up its owner: %v", id, err)
	}
	if !exists {
		return decision{}, nil // the service answers NOT_FOUND
	}
	if live && owner != r.self {
		if md, _ := metadata.FromIncomingContext(ctx); len(md.Get(forwardedKey)) > 0 {
			r.m.Failures.WithLabelValues("moved").Inc()
			return decision{}, status.Errorf(codes.Unavailable, "session sessions/%s moved to replica %s while the call was forwarded; retry", id, owner)
		}
		if addr == "" {
			r.m.Failures.WithLabelValues("no_address").Inc()
			return decision{}, status.Errorf(codes.Unavailable, "session sessions/%s is owned by replica %s, which has no address to forward to", id, owner)
		}
		return decision{forward: addr}, nil
	}
	if !r.owners.LeaseValid() {
		r.m.Failures.WithLabelValues("lease_lapsed").Inc()
		return decision{}, status.Errorf(codes.Unavailable, "session sessions/%s: this replica's lease has lapsed, it cannot take the session over; retry", id)
	}
	if err := r.local.Adopt(lg); err != nil {
		if _, served := r.local.Route(ctx, id); served {
			return decision{}, nil // taken over meanwhile by another call or the background
		}
		r.m.Failures.WithLabelValues("takeover").Inc()
		return decision{}, status.Errorf(codes.Unavailable, "session sessions/%s: taking it over failed: %v", id, err)
	}
	r.log.Info("took a session over", "session", "sessions/"+id, "from", owner)
	return decision{}, nil
}

func (r *Router) conn(addr string) (*grpc.ClientConn, error) {
	r.dialMu.Lock()
	defer r.dialMu.Unlock()
	if c, ok := r.conns[addr]; ok {
		return c, nil
	}
	c, err := grpc.NewClient(addr, r.dial...)
	if err != nil {
		return nil, err
	}
	r.conns[addr] = c
	return c, nil
}

// outgoing passes the caller's metadata on, marked as forwarded.
func (r *Router) outgoing(ctx context.Context) context.Context {
	md, _ := metadata.FromIncomingContext(ctx)
	md = md.Copy()
	for _, k := range []string{":authority", "content-type", "user-agent", "grpc-timeout"} {
		delete(md, k)
	}
	md.Set(forwardedKey, r.self)
	return metadata.NewOutgoingContext(ctx, md)
}

// newMessage makes an empty message of the method's output (out) or
// input type.
func newMessage(fullMethod string, out bool) (proto.Message, error) {
	name := protoreflect.FullName(strings.ReplaceAll(strings.TrimPrefix(fullMethod, "/"), "/", "."))
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(name)
	if err != nil {
		return nil, err
	}
	md, ok := d.(protoreflect.MethodDescriptor)
	if !ok {
		return nil, fmt.Errorf("%s is not a method", name)
	}
	t := md.Input()
	if out {
		t = md.Output()
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByName(t.FullName())
	if err != nil {
		return nil, err
	}
	return mt.New().Interface(), nil
}

// Unary is the unary server interceptor. It must run after the one that
// authenticates (the session's log name depends on the caller's tenant).
func (r *Router) Unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	m, ok := req.(proto.Message)
	if !ok {
		return handler(ctx, req)
	}
	id, ok := sessionOf(m)
	if !ok {
		return handler(ctx, req)
	}
	d, err := r.route(ctx, id)
	if err != nil {
		return nil, err
	}
	if d.forward == "" {
		return handler(ctx, req)
	}
	resp, err := newMessage(info.FullMethod, true)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "forwarding %s: %v", info.FullMethod, err)
	}
	c, err := r.conn(d.forward)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "forwarding to %s: %v", d.forward, err)
	}
	r.m.Forwards.WithLabelValues(info.FullMethod).Inc()
	var header, trailer metadata.MD
	err = c.Invoke(r.outgoing(ctx), info.FullMethod, req, resp, grpc.Header(&header), grpc.Trailer(&trailer))
	grpc.SetHeader(ctx, header)
	grpc.SetTrailer(ctx, trailer)
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// Stream is the stream server interceptor: the first message from the
// client names the session.
func (r *Router) Stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	first, err := newMessage(info.FullMethod, false)
	if err != nil {
		return handler(srv, ss)
	}
	if err := ss.RecvMsg(first); err != nil {
		return err
	}
	id, ok := sessionOf(first)
	d := decision{}
	if ok {
		if d, err = r.route(ss.Context(), id); err != nil {
			return err
		}
	}
	if d.forward == "" {
		return handler(srv, &replayStream{ServerStream: ss, first: first})
	}
	return r.forwardStream(ss, info, first, d.forward)
}

// replayStream hands the handler the message the interceptor read.
type replayStream struct {
	grpc.ServerStream
	first proto.Message
}

func (s *replayStream) RecvMsg(m any) error {
	if s.first != nil {
		f := s.first
		s.first = nil
		proto.Merge(m.(proto.Message), f)
		return nil
	}
	return s.ServerStream.RecvMsg(m)
}

func (r *Router) forwardStream(ss grpc.ServerStream, info *grpc.StreamServerInfo, first proto.Message, addr string) error {
	c, err := r.conn(addr)
	if err != nil {
		return status.Errorf(codes.Unavailable, "forwarding to %s: %v", addr, err)
	}
	r.m.Forwards.WithLabelValues(info.FullMethod).Inc()
	ctx, cancel := context.WithCancel(ss.Context())
	defer cancel()
	desc := &grpc.StreamDesc{StreamName: info.FullMethod, ServerStreams: info.IsServerStream, ClientStreams: info.IsClientStream}
	cs, err := c.NewStream(r.outgoing(ctx), desc, info.FullMethod)
	if err != nil {
		return err
	}
	if err := cs.SendMsg(first); err != nil && err != io.EOF {
		return err
	}
	if !info.IsClientStream {
		cs.CloseSend()
	} else {
		go func() {
			for {
				m, err := newMessage(info.FullMethod, false)
				if err != nil {
					cs.CloseSend()
					return
				}
				if err := ss.RecvMsg(m); err != nil {
					cs.CloseSend() // client done (io.EOF) or gone (ctx cancels cs)
					return
				}
				if err := cs.SendMsg(m); err != nil {
					return // the owner ended the stream: RecvMsg below reports why
				}
			}
		}()
	}
	if h, err := cs.Header(); err == nil {
		ss.SetHeader(h)
	}
	for {
		m, err := newMessage(info.FullMethod, true)
		if err != nil {
			return status.Errorf(codes.Internal, "forwarding %s: %v", info.FullMethod, err)
		}
		if err := cs.RecvMsg(m); err != nil {
			ss.SetTrailer(cs.Trailer())
			if err == io.EOF {
				return nil
			}
			return err
		}
		if err := ss.SendMsg(m); err != nil {
			return err
		}
	}
}
