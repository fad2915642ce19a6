// Package machine is a session's core without the server around it: the
// engine plus the names of its endpoints (Machine, the one place inputs
// reach the engine: Apply, Receive), what it emitted as log records and API
// views (Digest, AppendOutputs, SegmentView, RecordView), the engine
// settings a session's start record fixes (Params, EngineConfig), resource
// names, and Rerun, which replays a log in a fresh Machine and compares
// every output with the logged one. It does no I/O and knows no gRPC: a
// refusal is ErrInvalid, ErrNotFound or ErrExists for errors.Is.
package machine

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/tcpstated/tcpstated/fsm"
	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// Machine is one engine plus what the service keeps beside it to name its
// endpoints. A live session and a re-run from the log both drive a Machine
// through Apply, the only place where inputs reach the engine, so a re-run
// does exactly what the live session did.
type Machine struct {
	session string // sessions/{id}
	// validNames: session is valid UTF-8, so every endpoint name is.
	validNames bool
	Engine     *fsm.Engine
	aliases    map[string]fsm.EndpointID // client-chosen endpoint IDs
	aliasOf    map[fsm.EndpointID]string
	maxID      fsm.EndpointID // the highest ID the engine has assigned: IDs are never reused
	names      map[fsm.EndpointID]string
	// lastName is the last name EndpointName returned: the outputs of a
	// step mostly name one endpoint, several times.
	lastName struct {
		id   fsm.EndpointID
		name string
	}
	// lastEvent is the events of the last digest with one event (oneEvent).
	lastEvent []*pb.Event
	// acceptedFrom remembers the listener of each accepted connection (the
	// engine forgets it on accept).
	acceptedFrom map[fsm.EndpointID]fsm.EndpointID

	// A live session's step drains the engine into rd and digests it into
	// live: both are reused from step to step, so neither is allocated per
	// input (nothing keeps them past the step; see session.stepLocked).
	Ready fsm.Ready
	Live  pb.OutputDigest
	// batch hands out the small messages of a batch's outputs (batch.go).
	batch *batchRoom
}

func New(session string, cfg fsm.Config) *Machine {
	return &Machine{session: session, Engine: fsm.New(cfg), validNames: utf8.ValidString(session)}
}

// NamesValid reports whether every string a digest of this machine names
// endpoints and states with is valid UTF-8, so that its records need not
// check them (logrecord.AppendTrusted). An endpoint name is the session's
// name, "/endpoints/" and an alias of [a-z0-9-] (ValidEndpointAlias) or
// a decimal ID; state and cause names are the engine's, all ASCII
// (TestEngineNamesAreUTF8).
func (m *Machine) NamesValid() bool { return m.validNames }

// Clone copies a machine between inputs (after its outputs were drained),
// as a snapshot of a re-run: the copy goes on by itself (fsm.Engine.Clone).
func (m *Machine) Clone() *Machine {
	return &Machine{
		session:      m.session,
		validNames:   m.validNames,
		Engine:       m.Engine.Clone(),
		aliases:      maps.Clone(m.aliases),
		aliasOf:      maps.Clone(m.aliasOf),
		maxID:        m.maxID,
		acceptedFrom: maps.Clone(m.acceptedFrom),
	}
}

// endpointID returns the last segment of an endpoint's resource name.
func (m *Machine) endpointID(id fsm.EndpointID) string {
	if a, ok := m.aliasOf[id]; ok {
		return a
	}
	return strconv.FormatUint(uint64(id), 10)
}

// endpointName returns an endpoint's resource name; "" for ID 0 (no endpoint).
func (m *Machine) EndpointName(id fsm.EndpointID) string {
	if id == 0 {
		return ""
	}
	if id == m.lastName.id {
		return m.lastName.name
	}
	n, ok := m.names[id]
	if !ok {
		n = m.session + endpointsInfix + m.endpointID(id)
		if m.names == nil || len(m.names) >= 4096 {
			m.names = make(map[fsm.EndpointID]string)
		}
		m.names[id] = n
	}
	m.lastName.id, m.lastName.name = id, n
	return n
}

// resolve maps the last segment of an endpoint name to the engine's ID:
// NOT_FOUND for an ID the session never had. An endpoint the engine has
// since forgotten resolves; the engine then answers "connection does not
// exist".
func (m *Machine) Resolve(eid string) (fsm.EndpointID, error) {
	if id, ok := m.aliases[eid]; ok {
		return id, nil
	}
	if id, ok := parseEngineID(eid); ok && id <= m.maxID {
		return id, nil
	}
	return 0, notFoundf("endpoint %s%s%s not found", m.session, endpointsInfix, eid)
}

// observe notes the endpoints a batch of outputs created.
func (m *Machine) Observe(rd *fsm.Ready) {
	for i := range rd.Transitions {
		if id := rd.Transitions[i].Endpoint; id > m.maxID {
			m.maxID = id
		}
	}
}

func (m *Machine) addAlias(alias string, id fsm.EndpointID) {
	if m.aliases == nil {
		m.aliases = make(map[string]fsm.EndpointID)
		m.aliasOf = make(map[fsm.EndpointID]string)
	}
	m.aliases[alias] = id
	m.aliasOf[id] = alias
	delete(m.names, id)
	if m.lastName.id == id {
		m.lastName.id = 0
	}
}

// errReplay marks an input a re-run could not apply the way the log says.
var errReplay = errors.New("re-run")

// apply feeds one input to the engine and returns what the call returned
// to the application. A rejected input changes nothing and returns the
// error. For a listen or connect without a client-chosen ID, apply writes
// the ID the engine assigned into the input (as the log keeps it); with a
// decimal ID already there (a re-run), it checks the engine assigned that
// one. The caller drains the engine's Ready afterwards.
func (m *Machine) Apply(in *pb.Input) (*pb.CallResult, error) {
	e := m.Engine
	switch k := in.Kind.(type) {
	case *pb.Input_Segment:
		return nil, e.Deliver(k.Segment.GetIpPacket())
	case *pb.Input_AdvanceClock:
		e.AdvanceTo(k.AdvanceClock.GetTo().AsDuration())
		return nil, nil
	case *pb.Input_Listen:
		l := k.Listen
		local, err := ParseAddrPort("listen.local_address", l.LocalAddress)
		if err != nil {
			return nil, err
		}
		if err := m.checkNewID(l.EndpointId); err != nil {
			return nil, err
		}
		keys, err := parseMD5Keys(l.Md5Keys)
		if err != nil {
			return nil, err
		}
		id, err := e.Listen(local, int(l.Backlog))
		if err != nil {
			return nil, err
		}
		if l.FastOpen {
			if err := e.SetListenerFastOpen(id, true); err != nil {
				return nil, err
			}
		}
		for _, k := range keys {
			if err := e.SetMD5Key(k.peer, k.key); err != nil {
				return nil, err
			}
		}
		return nil, m.created(&l.EndpointId, id)
	case *pb.Input_Connect:
		c := k.Connect
		local, err := ParseAddrPort("connect.local_address", c.LocalAddress)
		if err != nil {
			return nil, err
		}
		remote, err := ParseAddrPort("connect.remote_address", c.RemoteAddress)
		if err != nil {
			return nil, err
		}
		if err := m.checkNewID(c.EndpointId); err != nil {
			return nil, err
		}
		if len(c.Md5Key) > maxMD5Key {
			return nil, invalidf("connect.md5_key: %d bytes, more than %d", len(c.Md5Key), maxMD5Key)
		}
		if len(c.FastOpenData) > 0 && !c.FastOpen {
			return nil, invalidf("connect.fast_open_data: needs fast_open")
		}
		var undo func()
		if len(c.Md5Key) > 0 {
			// The SYN is signed, so the key goes in first; a refused open
			// puts the old one back (a refused input changes nothing).
			old := e.MD5Key(remote.Addr())
			if err := e.SetMD5Key(remote.Addr(), c.Md5Key); err != nil {
				return nil, err
			}
			undo = func() { _ = e.SetMD5Key(remote.Addr(), old) }
		}
		var (
			id  fsm.EndpointID
			res *pb.CallResult
		)
		if c.FastOpen {
			var n int
			id, n, err = e.ConnectFastOpen(local, remote, c.FastOpenData)
			res = &pb.CallResult{Count: uint32(n)}
		} else {
			id, err = e.Connect(local, remote)
		}
		if err != nil {
			if undo != nil {
				undo()
			}
			return nil, err
		}
		return res, m.created(&c.EndpointId, id)
	case *pb.Input_Accept:
		id, err := m.Resolve(k.Accept.GetEndpointId())
		if err != nil {
			return nil, err
		}
		c, err := e.Accept(id)
		if err != nil {
			return nil, err
		}
		if m.acceptedFrom == nil {
			m.acceptedFrom = make(map[fsm.EndpointID]fsm.EndpointID)
		}
		m.acceptedFrom[c] = id
		return &pb.CallResult{EndpointId: m.endpointID(c)}, nil
	case *pb.Input_Send:
		id, err := m.Resolve(k.Send.GetEndpointId())
		if err != nil {
			return nil, err
		}
		n, err := e.Send(id, k.Send.GetData())
		if err != nil {
			return nil, err
		}
		return &pb.CallResult{Count: uint32(n)}, nil
	case *pb.Input_Receive:
		id, err := m.Resolve(k.Receive.GetEndpointId())
		if err != nil {
			return nil, err
		}
		return m.receive(id, int(k.Receive.GetMaxBytes()))
	case *pb.Input_Shutdown:
		id, err := m.Resolve(k.Shutdown.GetEndpointId())
		if err != nil {
			return nil, err
		}
		return nil, e.Shutdown(id)
	case *pb.Input_Close:
		id, err := m.Resolve(k.Close.GetEndpointId())
		if err != nil {
			return nil, err
		}
		return nil, e.Close(id)
	case *pb.Input_Abort:
		id, err := m.Resolve(k.Abort.GetEndpointId())
		if err != nil {
			return nil, err
		}
		return nil, e.Abort(id)
	case *pb.Input_KeepAlive:
		ka := k.KeepAlive
		id, err := m.Resolve(ka.GetEndpointId())
		if err != nil {
			return nil, err
		}
		if ka.GetCount() > 1<<15 {
			return nil, invalidf("keep_alive.count: %d is more than %d probes", ka.GetCount(), 1<<15)
		}
		return nil, e.SetKeepAlive(id, fsm.KeepAlive{Enabled: ka.GetEnabled(), Idle: ka.GetIdle().AsDuration(),
			Interval: ka.GetInterval().AsDuration(), Count: int(ka.GetCount()), Init: ka.GetInit().AsDuration()})
	case *pb.Input_Urgent:
		return m.urgent(k.Urgent)
	case *pb.Input_Md5Key:
		return m.md5Key(k.Md5Key) // md5.go
	}
	return nil, invalidf("input: empty or of an unknown kind")
}

// urgent applies an UrgentInput: exactly one of its operations.
func (m *Machine) urgent(u *pb.UrgentInput) (*pb.CallResult, error) {
	id, err := m.Resolve(u.GetEndpointId())
	if err != nil {
		return nil, err
	}
	ops := 0
	for _, set := range []bool{u.GetReceive(), len(u.GetSendData()) > 0, u.OobInline != nil} {
		if set {
			ops++
		}
	}
	if ops != 1 {
		return nil, invalidf("urgent: want exactly one of receive, send_data and oob_inline, got %d", ops)
	}
	e := m.Engine
	switch {
	case u.GetReceive():
		b, err := e.ReceiveUrgent(id, u.GetPeek())
		if err != nil {
			return nil, err
		}
		return &pb.CallResult{Data: []byte{b}}, nil
	case len(u.GetSendData()) > 0:
		n, err := e.SendUrgent(id, u.GetSendData())
		if err != nil {
			return nil, err
		}
		return &pb.CallResult{Count: uint32(n)}, nil
	}
	o, err := e.SockOpts(id)
	if err != nil {
		return nil, err
	}
	o.OOBInline = u.GetOobInline()
	return nil, e.SetSockOpts(id, o)
}

// receive reads up to max bytes (0: all readable). Reaching the end of the
// peer's stream is a result (eof), not an error.
func (m *Machine) receive(id fsm.EndpointID, max int) (*pb.CallResult, error) {
	n := m.Engine.Readable(id)
	if max > 0 && max < n {
		n = max
	}
	var buf []byte
	if n > 0 {
		buf = make([]byte, n)
	}
	got, err := m.Engine.Receive(id, buf)
	if errors.Is(err, fsm.ErrConnectionClosing) {
		if info, ok := m.Engine.Endpoint(id); ok && info.FinReceived && info.Readable == 0 {
			return &pb.CallResult{Eof: true}, nil
		}
	}
	if err != nil {
		return nil, err
	}
	res := &pb.CallResult{Data: buf[:got]}
	if info, ok := m.Engine.Endpoint(id); ok && info.FinReceived && info.Readable == 0 {
		res.Eof = true
	}
	return res, nil
}

// checkNewID checks the endpoint ID a listen or connect input names: a
// client's alias must be free. (A decimal one, in a re-run, is checked
// against the ID the engine assigns by created.)
func (m *Machine) checkNewID(eid string) error {
	if ValidEndpointAlias(eid) {
		if _, taken := m.aliases[eid]; taken {
			return errorf(ErrExists, "endpoint %s%s%s already exists", m.session, endpointsInfix, eid)
		}
	}
	return nil
}

// created records the ID of an endpoint a listen or connect created.
func (m *Machine) created(eid *string, id fsm.EndpointID) error {
	if id > m.maxID {
		m.maxID = id
	}
	switch {
	case *eid == "":
		*eid = strconv.FormatUint(uint64(id), 10)
	case ValidEndpointAlias(*eid):
		m.addAlias(*eid, id)
	case *eid != strconv.FormatUint(uint64(id), 10):
		return fmt.Errorf("%w: the log names the new endpoint %q, but the engine assigned %d", errReplay, *eid, id)
	}
	return nil
}

func ParseAddrPort(field, s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return ap, invalidf("%s: %q is not an address and port like 10.0.0.1:80 or [2001:db8::1]:80", field, s)
	}
	return ap, nil
}

// now is the engine clock.
func (m *Machine) Now() time.Duration { return m.Engine.Now() }

// maxMD5Key is the longest TCP-MD5 key (Linux's TCP_MD5SIG_MAXKEYLEN, as
// fsm.Engine.SetMD5Key takes).
const maxMD5Key = 80

type md5PeerKey struct {
	peer netip.Addr
	key  []byte
}

// parseMD5Keys checks a listen input's TCP-MD5 keys. Error messages name
// the field, never the key.
func parseMD5Keys(keys []*pb.Md5PeerKey) ([]md5PeerKey, error) {
	out := make([]md5PeerKey, 0, len(keys))
	for i, k := range keys {
		a, err := netip.ParseAddr(k.GetPeerAddress())
		if err != nil {
			return nil, invalidf("listen.md5_keys[%d].peer_address: %q is not an IP address", i, k.GetPeerAddress())
		}
		if n := len(k.GetKey()); n == 0 || n > maxMD5Key {
			return nil, invalidf("listen.md5_keys[%d].key: %d bytes, want 1 to %d", i, n, maxMD5Key)
		}
		out = append(out, md5PeerKey{peer: a.Unmap(), key: k.GetKey()})
	}
	return out, nil
}
