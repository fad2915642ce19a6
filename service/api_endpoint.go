package service

import (
	"context"
	"net/netip"
	"strconv"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"

	"github.com/tcpstated/tcpstated/service/machine"
)

// endpointServer implements EndpointService.
type endpointServer struct {
	pb.UnimplementedEndpointServiceServer
	s *Service
}

func (h *endpointServer) CreateEndpoint(ctx context.Context, req *pb.CreateEndpointRequest) (*pb.CreateEndpointResponse, error) {
	ss, err := h.s.lookupName(ctx, "parent", req.GetParent())
	if err != nil {
		return nil, toStatus(err)
	}
	in, err := createInput(req)
	if err != nil {
		return nil, toStatus(err)
	}
	in.RequestId = req.GetRequestId()
	return answer(ctx, ss, req.GetRequestId(), func() (*pb.CreateEndpointResponse, error) {
		resp := &pb.CreateEndpointResponse{Outputs: &pb.Outputs{}}
		_, err = ss.exec(in, resp.Outputs, func(*pb.CallResult) {
			resp.Endpoint = ss.endpointLocked(createdID(in))
		})
		if err != nil {
			return nil, toStatus(err)
		}
		return resp, nil
	}, func(lc *loggedCall) *pb.CreateEndpointResponse {
		return &pb.CreateEndpointResponse{Endpoint: ss.endpointLocked(createdID(lc.in)), Outputs: lc.outputs}
	})
}

const (
	// maxMD5Key is the longest TCP-MD5 key (RFC 2385 keys, as Linux's
	// TCP_MD5SIG_MAXKEYLEN and fsm.Engine.SetMD5Key take them).
	maxMD5Key = 80
	// maxFastOpenData is the most data a Fast Open connect takes (what
	// does not fit the SYN waits for the handshake, as queued data).
	maxFastOpenData = 65535
)

// createdID is the endpoint a listen or connect input creates.
func createdID(in *pb.Input) string {
	if c := in.GetConnect(); c != nil {
		return c.EndpointId
	}
	return in.GetListen().GetEndpointId()
}

// createInput validates a CreateEndpoint request and builds its input.
func createInput(req *pb.CreateEndpointRequest) (*pb.Input, error) {
	eid := req.GetEndpointId()
	if eid != "" && !machine.ValidEndpointAlias(eid) {
		return nil, invalidf("endpoint_id: %q is not 1 to 63 characters of a-z, 0-9 and - starting with a letter", eid)
	}
	switch mode := req.GetMode().(type) {
	case *pb.CreateEndpointRequest_Listen:
		l := mode.Listen
		local, err := machine.ParseAddrPort("listen.local_address", l.GetLocalAddress())
		if err != nil {
			return nil, err
		}
		if local.Port() == 0 {
			return nil, invalidf("listen.local_address: %q has port 0", l.GetLocalAddress())
		}
		if l.GetBacklog() > maxBacklog {
			return nil, invalidf("listen.backlog: %d is above the maximum %d", l.GetBacklog(), maxBacklog)
		}
		keys := make([]*pb.Md5PeerKey, 0, len(l.GetMd5Keys()))
		for i, k := range l.GetMd5Keys() {
			peer, err := netip.ParseAddr(k.GetPeerAddress())
			if err != nil {
				return nil, invalidf("listen.md5_keys[%d].peer_address: %q is not an IP address (no port)", i, k.GetPeerAddress())
			}
			if n := len(k.GetKey()); n == 0 || n > maxMD5Key {
				// The message gives the length, never the key.
				return nil, invalidf("listen.md5_keys[%d].key: %d bytes, want 1 to %d", i, n, maxMD5Key)
			}
			keys = append(keys, &pb.Md5PeerKey{PeerAddress: peer.Unmap().String(), Key: k.GetKey()})
		}
		if len(keys) == 0 {
			keys = nil
		}
		return &pb.Input{Kind: &pb.Input_Listen{Listen: &pb.ListenInput{
			EndpointId: eid, LocalAddress: local.String(), Backlog: l.GetBacklog(),
			FastOpen: l.GetFastOpen(), Md5Keys: keys,
		}}}, nil
	case *pb.CreateEndpointRequest_Connect:
		c := mode.Connect
		local, err := machine.ParseAddrPort("connect.local_address", c.GetLocalAddress())
		if err != nil {
			return nil, err
		}
		remote, err := machine.ParseAddrPort("connect.remote_address", c.GetRemoteAddress())
		if err != nil {
			return nil, err
		}
		switch {
		case local.Port() == 0 || local.Addr().IsUnspecified():
			return nil, invalidf("connect.local_address: %q needs a specific address and a port", c.GetLocalAddress())
		case remote.Port() == 0 || remote.Addr().IsUnspecified():
			return nil, invalidf("connect.remote_address: %q needs a specific address and a port", c.GetRemoteAddress())
		case local.Addr().Is4() != remote.Addr().Is4():
			return nil, invalidf("connect.remote_address: %q is not of the same address family as the local address %q", c.GetRemoteAddress(), c.GetLocalAddress())
		}
		switch {
		case len(c.GetFastOpenData()) > 0 && !c.GetFastOpen():
			return nil, invalidf("connect.fast_open_data: %d bytes without fast_open", len(c.GetFastOpenData()))
		case len(c.GetFastOpenData()) > maxFastOpenData:
			return nil, invalidf("connect.fast_open_data: %d bytes, more than %d", len(c.GetFastOpenData()), maxFastOpenData)
		case len(c.GetMd5Key()) > maxMD5Key:
			return nil, invalidf("connect.md5_key: %d bytes, more than %d", len(c.GetMd5Key()), maxMD5Key)
		}
		return &pb.Input{Kind: &pb.Input_Connect{Connect: &pb.ConnectInput{
			EndpointId: eid, LocalAddress: local.String(), RemoteAddress: remote.String(),
			FastOpen: c.GetFastOpen(), FastOpenData: c.GetFastOpenData(), Md5Key: c.GetMd5Key(),
		}}}, nil
	}
	return nil, invalidf("mode: one of listen or connect is required")
}

// endpointLocked returns the view of an endpoint by its ID, nil if the
// engine no longer has it.
func (ss *session) endpointLocked(eid string) *pb.Endpoint {
	id, err := ss.m.Resolve(eid)
	if err != nil {
		return nil
	}
	info, ok := ss.m.Engine.Endpoint(id)
	if !ok {
		return nil
	}
	return ss.m.EndpointView(&info)
}

func (h *endpointServer) GetEndpoint(ctx context.Context, req *pb.GetEndpointRequest) (*pb.GetEndpointResponse, error) {
	ss, eid, err := h.s.lookupEndpoint(ctx, req.GetName())
	if err != nil {
		return nil, toStatus(err)
	}
	if req.AtRecord != nil {
		ep, err := ss.endpointAt(req.GetName(), eid, req.GetAtRecord())
		if err != nil {
			return nil, toStatus(err)
		}
		return &pb.GetEndpointResponse{Endpoint: ep}, nil
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if err := ss.usableLocked(); err != nil {
		return nil, toStatus(err)
	}
	if _, err := ss.m.Resolve(eid); err != nil {
		return nil, toStatus(err)
	}
	ep := ss.endpointLocked(eid)
	if ep == nil {
		return nil, toStatus(reasonf(kindNotFound, "ENDPOINT_NOT_FOUND", "endpoint %s was closed and is no longer kept", req.GetName()))
	}
	return &pb.GetEndpointResponse{Endpoint: ep}, nil
}

// lookupEndpoint finds the session of an endpoint name and returns the
// endpoint's ID (resolved by the caller under the session lock).
func (s *Service) lookupEndpoint(ctx context.Context, name string) (*session, string, error) {
	sid, eid, err := machine.ParseEndpointName("name", name)
	if err != nil {
		return nil, "", err
	}
	ss, err := s.lookup(ctx, sid)
	return ss, eid, err
}

func (h *endpointServer) ListEndpoints(ctx context.Context, req *pb.ListEndpointsRequest) (*pb.ListEndpointsResponse, error) {
	ss, size, after, err := h.s.pagedList(ctx, req.GetParent(), req.GetPageSize(), req.GetPageToken(), 32)
	if err != nil {
		return nil, toStatus(err)
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if err := ss.usableLocked(); err != nil {
		return nil, toStatus(err)
	}
	resp := &pb.ListEndpointsResponse{}
	infos := ss.m.Engine.Endpoints() // in ID (creation) order
	for i := range infos {
		if uint64(infos[i].ID) <= after {
			continue
		}
		if len(resp.Endpoints) == size {
			resp.NextPageToken = encodePageToken(strconv.FormatUint(uint64(infos[i-1].ID), 10))
			break
		}
		resp.Endpoints = append(resp.Endpoints, ss.m.EndpointView(&infos[i]))
	}
	return resp, nil
}

// endpointCall runs an application call on the endpoint called name, once
// per request ID id, and builds its response from the call's result, the
// endpoint afterwards and the outputs.
func endpointCall[T proto.Message](ctx context.Context, h *endpointServer, name, id string, in func(eid string) *pb.Input,
	build func(res *pb.CallResult, ep *pb.Endpoint, out *pb.Outputs) T) (T, error) {
	ss, eid, err := h.s.lookupEndpoint(ctx, name)
	if err != nil {
		var zero T
		return zero, toStatus(err)
	}
	// The endpoint a call's response shows: the new connection of an accept.
	shown := func(res *pb.CallResult) string {
		if id := res.GetEndpointId(); id != "" {
			return id
		}
		return eid
	}
	return answer(ctx, ss, id, func() (T, error) {
		out := &pb.Outputs{}
		var ep *pb.Endpoint
		res, err := ss.exec(withRequestID(in(eid), id), out, func(res *pb.CallResult) {
			ep = ss.endpointLocked(shown(res))
		})
		if err != nil {
			var zero T
			return zero, toStatus(err)
		}
		return build(res, ep, out), nil
	}, func(lc *loggedCall) T {
		return build(lc.result, ss.endpointLocked(shown(lc.result)), lc.outputs)
	})
}

func (h *endpointServer) AcceptConnection(ctx context.Context, req *pb.AcceptConnectionRequest) (*pb.AcceptConnectionResponse, error) {
	return endpointCall(ctx, h, req.GetName(), req.GetRequestId(), func(eid string) *pb.Input {
		return &pb.Input{Kind: &pb.Input_Accept{Accept: &pb.AcceptInput{EndpointId: eid}}}
	}, func(res *pb.CallResult, ep *pb.Endpoint, out *pb.Outputs) *pb.AcceptConnectionResponse {
		return &pb.AcceptConnectionResponse{Endpoint: ep, Outputs: out}
	})
}

func (h *endpointServer) SendData(ctx context.Context, req *pb.SendDataRequest) (*pb.SendDataResponse, error) {
	data := req.GetData()
	if req.Payload == nil {
		return nil, toStatus(invalidf("payload: one of data or text is required"))
	}
	if _, ok := req.Payload.(*pb.SendDataRequest_Text); ok {
		data = []byte(req.GetText())
	}
	if max := h.s.cfg.Limits.MaxMessageBytes; len(data) > max {
		return nil, toStatus(exhaustedf("data: %d bytes is above the limit of %d per call", len(data), max))
	}
	return endpointCall(ctx, h, req.GetName(), req.GetRequestId(), func(eid string) *pb.Input {
		return &pb.Input{Kind: &pb.Input_Send{Send: &pb.SendInput{EndpointId: eid, Data: data}}}
	}, func(res *pb.CallResult, ep *pb.Endpoint, out *pb.Outputs) *pb.SendDataResponse {
		return &pb.SendDataResponse{BytesAccepted: res.GetCount(), Outputs: out}
	})
}

func (h *endpointServer) ReceiveData(ctx context.Context, req *pb.ReceiveDataRequest) (*pb.ReceiveDataResponse, error) {
	return endpointCall(ctx, h, req.GetName(), req.GetRequestId(), func(eid string) *pb.Input {
		return &pb.Input{Kind: &pb.Input_Receive{Receive: &pb.ReceiveInput{EndpointId: eid, MaxBytes: req.GetMaxBytes()}}}
	}, func(res *pb.CallResult, ep *pb.Endpoint, out *pb.Outputs) *pb.ReceiveDataResponse {
		resp := &pb.ReceiveDataResponse{Data: res.GetData(), Eof: res.GetEof(), Outputs: out}
		if utf8.Valid(resp.Data) {
			resp.Text = string(resp.Data)
		}
		return resp
	})
}

func (h *endpointServer) ShutdownEndpoint(ctx context.Context, req *pb.ShutdownEndpointRequest) (*pb.ShutdownEndpointResponse, error) {
	return endpointCall(ctx, h, req.GetName(), req.GetRequestId(), func(eid string) *pb.Input {
		return &pb.Input{Kind: &pb.Input_Shutdown{Shutdown: &pb.ShutdownInput{EndpointId: eid}}}
	}, func(res *pb.CallResult, ep *pb.Endpoint, out *pb.Outputs) *pb.ShutdownEndpointResponse {
		return &pb.ShutdownEndpointResponse{Endpoint: ep, Outputs: out}
	})
}

func (h *endpointServer) CloseEndpoint(ctx context.Context, req *pb.CloseEndpointRequest) (*pb.CloseEndpointResponse, error) {
	return endpointCall(ctx, h, req.GetName(), req.GetRequestId(), func(eid string) *pb.Input {
		return &pb.Input{Kind: &pb.Input_Close{Close: &pb.CloseInput{EndpointId: eid}}}
	}, func(res *pb.CallResult, ep *pb.Endpoint, out *pb.Outputs) *pb.CloseEndpointResponse {
		return &pb.CloseEndpointResponse{Endpoint: ep, Outputs: out}
	})
}

func (h *endpointServer) AbortEndpoint(ctx context.Context, req *pb.AbortEndpointRequest) (*pb.AbortEndpointResponse, error) {
	return endpointCall(ctx, h, req.GetName(), req.GetRequestId(), func(eid string) *pb.Input {
		return &pb.Input{Kind: &pb.Input_Abort{Abort: &pb.AbortInput{EndpointId: eid}}}
	}, func(res *pb.CallResult, ep *pb.Endpoint, out *pb.Outputs) *pb.AbortEndpointResponse {
		return &pb.AbortEndpointResponse{Endpoint: ep, Outputs: out}
	})
}

// SetMd5Key is setsockopt(TCP_MD5SIG) on a live endpoint (RFC 2385 §3.0):
// the request is checked here, the endpoint-dependent rules (peer of a
// connection, family of a listener) by the machine, before anything
// changes. The response never carries the key.
func (h *endpointServer) SetMd5Key(ctx context.Context, req *pb.SetMd5KeyRequest) (*pb.SetMd5KeyResponse, error) {
	if err := machine.CheckMD5Key(req.GetKey(), req.GetRemove()); err != nil {
		return nil, toStatus(err)
	}
	if _, err := machine.ParseMD5Peer(req.GetPeerAddress()); err != nil {
		return nil, toStatus(err)
	}
	return endpointCall(ctx, h, req.GetName(), req.GetRequestId(), func(eid string) *pb.Input {
		return &pb.Input{Kind: &pb.Input_Md5Key{Md5Key: &pb.Md5KeyInput{EndpointId: eid, PeerAddress: req.GetPeerAddress(), Key: req.GetKey()}}}
	}, func(res *pb.CallResult, ep *pb.Endpoint, out *pb.Outputs) *pb.SetMd5KeyResponse {
		return &pb.SetMd5KeyResponse{Endpoint: ep, KeySet: !req.GetRemove()}
	})
}
