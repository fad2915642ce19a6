package service

import (
	"context"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tcpstated/tcpstated/fsm"
	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
	"github.com/tcpstated/tcpstated/internal/reportview"
	"github.com/tcpstated/tcpstated/script"
	"github.com/tcpstated/tcpstated/script/linuxtarget"
)

// scriptServer implements ScriptService: a packetdrill script runs in a
// fresh VIRTUAL-clock session, driven by the script package's runner
// through scriptEngine, which turns every engine call of the runner into a
// logged input of the session. The session's log is therefore the
// script's exchange, and it can be inspected, exported and re-run like any
// other.
type scriptServer struct {
	pb.UnimplementedScriptServiceServer
	s *Service
}

// scriptSecretSeed makes the secret key of script sessions fixed, so that
// running the same script twice gives the same session, byte for byte.
const scriptSecretSeed = "tcpstated script"

func (h *scriptServer) RunScript(ctx context.Context, req *pb.RunScriptRequest) (*pb.RunScriptResponse, error) {
	mode, err := script.ParseCompareMode(req.GetCompare())
	if err != nil || strings.EqualFold(req.GetCompare(), "auto") {
		return nil, toStatus(invalidf("compare: %q is not SEMANTIC or STRICT", req.GetCompare()))
	}
	if strings.TrimSpace(req.GetScript()) == "" {
		return nil, toStatus(invalidf("script: empty"))
	}
	parsed, err := script.Parse(req.GetName(), []byte(req.GetScript()))
	if err != nil {
		return nil, toStatus(invalidf("script: %v", err))
	}
	switch tgt, err := script.ParseTarget(req.GetTarget()); {
	case err != nil:
		return nil, toStatus(invalidf("target: %v", err))
	case tgt != script.TargetEngine:
		return h.runKernel(ctx, tgt, req, mode)
	}
	// The engine the script asks for, as session options; a script option
	// the options cannot express shows in the report (the runner compares
	// the configuration the engine has with the one the script wants).
	want, _ := parsed.EngineConfig(fsm.Config{ISNMode: fsm.ISNFixed})
	// keep_session: true keeps the session with no expiry; unset gives it
	// the server's default; false deletes it when the run ends.
	ss, err := h.s.create(ctx, req.GetSessionId(), scriptOptions(want), pb.SessionKind_SESSION_KIND_SCRIPT, nil, req.KeepSession == nil, "")
	if err != nil {
		return nil, toStatus(err)
	}
	se := &scriptEngine{ctx: ctx, ss: ss}
	rep := script.RunScript(se, parsed, script.Options{Compare: mode, Name: req.GetName(), Session: ss.name})
	if se.fatal != nil {
		return nil, toStatus(se.fatal)
	}
	if err := ss.waitDurable(se.last); err != nil {
		return nil, toStatus(err)
	}
	view := reportView(rep)
	if req.KeepSession != nil && !req.GetKeepSession() {
		if _, err := h.s.deleteKey(sessionKey{ss.tenant, ss.id}); err != nil && !errors.Is(err, errGone) {
			return nil, toStatus(err)
		}
		return view, nil
	}
	ss.mu.Lock()
	ss.script = &pb.ScriptResult{Name: req.GetName(), Passed: view.Passed, Failure: view.Failure}
	ss.mu.Unlock()
	return view, nil
}

// runKernel runs a script against the server machine's kernel (target
// linux) or the kernel and a local engine (both). The run makes no
// session: the kernel's side is not a log.
func (h *scriptServer) runKernel(ctx context.Context, tgt string, req *pb.RunScriptRequest, mode script.CompareMode) (*pb.RunScriptResponse, error) {
	if why := linuxtarget.Available(); why != "" {
		return nil, toStatus(errorf(kindPrecondition, "target %s: the server cannot run the Linux kernel target: %s", tgt, why))
	}
	opts := script.Options{Compare: mode, Name: req.GetName(), Stop: ctx.Done()}
	run := script.RunLinux
	if tgt == script.TargetBoth {
		run = script.RunBoth
	}
	rep, err := run([]byte(req.GetScript()), opts)
	switch {
	case errors.Is(err, script.ErrInterrupted):
		return nil, status.FromContextError(ctx.Err()).Err()
	case errors.Is(err, script.ErrKernelUnavailable):
		return nil, toStatus(errorf(kindPrecondition, "target %s: %v", tgt, err))
	case err != nil:
		return nil, toStatus(invalidf("script: %v", err))
	}
	return reportView(rep), nil
}

// scriptOptions expresses an engine configuration as session options.
func scriptOptions(c fsm.Config) *pb.SessionOptions {
	d := func(v time.Duration) *durationpb.Duration {
		if v == 0 {
			return nil
		}
		return durationpb.New(v)
	}
	o := &pb.SessionOptions{
		ClockMode:             pb.ClockMode_CLOCK_MODE_VIRTUAL,
		IsnMode:               pb.IsnMode_ISN_MODE_RANDOM,
		Msl:                   d(c.MSL),
		ReceiveWindow:         uint32(c.RecvBuffer),
		ReceiveBufferSet:      c.RecvBufferLocked,
		SendBuffer:            uint32(c.SendBuffer),
		Mss:                   uint32(c.MSS),
		Timestamps:            proto.Bool(!c.NoTimestamps),
		SackPermitted:         proto.Bool(!c.NoSACK),
		SynBacklog:            uint32(c.SynQueue),
		AcceptBacklog:         uint32(c.AcceptQueue),
		SynCookies:            proto.Bool(c.SynCookies),
		Nagle:                 proto.Bool(!c.NoNagle),
		DelayedAck:            proto.Bool(!c.NoDelayedAck),
		DelayedAckTimeout:     d(c.DelayedAckTimeout),
		InitialWindowSegments: uint32(c.InitialWindow),
		SecretSeed:            proto.String(scriptSecretSeed),
		MinRto:                d(c.MinRTO),
		MaxRto:                d(c.MaxRTO),
		InitialRto:            d(c.InitialRTO),
		MaxRetries:            uint32(c.MaxRetries),
		MaxSynRetries:         uint32(c.SynRetries),
		MaxSynAckRetries:      uint32(c.SynAckRetries),
	}
	if c.ISNMode == fsm.ISNFixed {
		o.IsnMode, o.FixedIsn = pb.IsnMode_ISN_MODE_FIXED, c.FixedISN
	}
	// The profile, and the switches the script set beyond it (sysctl lines).
	o.Profile = c.Profile
	var base fsm.Config
	if p, ok := fsm.ProfileByName(c.Profile); ok {
		_ = p.Apply(&base)
	}
	for _, sw := range fsm.Switches() {
		v, _ := c.Switch(sw.Name)
		if b, _ := base.Switch(sw.Name); v == b {
			continue
		}
		if o.Switches == nil {
			o.Switches = map[string]string{}
		}
		o.Switches[sw.Name] = v
	}
	switch {
	case c.NoWindowScale || c.WindowScale < 0:
		o.WindowScale = proto.Int32(-1)
	case c.WindowScale > 0:
		o.WindowScale = proto.Int32(int32(c.WindowScale))
	}
	return o
}

// reportView converts the runner's report to the API's (the CLI's
// `script run --json` prints the same message: internal/reportview).
func reportView(r *script.Report) *pb.RunScriptResponse { return reportview.View(r) }

// scriptEngine is a session seen as a script.Engine: every call that
// changes the engine becomes an input, applied and logged by the session
// exactly as the same call over the API would be (endpoints are named by
// the engine's IDs), and the outputs the session drained are kept for
// the runner's next Ready. Reads (Endpoint, NextDeadline, Now) go to the
// engine under the session's lock. Records are written as the script
// runs; RunScript waits once, at the end, until they are durable.
type scriptEngine struct {
	ctx   context.Context // the call's: a cancelled call stops the run
	ss    *session
	ready fsm.Ready // copies of the outputs since the last Ready
	last  uint64    // the log's length after the last call
	fatal error     // the session failed (its log): the run's result is void
}

var _ script.Engine = (*scriptEngine)(nil)

// exec applies one input through the session.
func (e *scriptEngine) exec(in *pb.Input) (*pb.CallResult, error) {
	s := e.ss
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.fatal != nil {
		return nil, e.fatal
	}
	if err := e.ctx.Err(); err != nil {
		e.fatal = err
		return nil, err
	}
	s.tap = e.keep
	res, err := s.execLocked(in, nil, false)
	s.tap = nil
	e.last = s.next
	var ae *apiError
	if err != nil && (s.state != stateOpen || errors.As(err, &ae) && ae.kind != kindInvalid && ae.kind != kindNotFound && ae.kind != kindExists) {
		// Not the engine refusing the call (fsm's errors, or a bad
		// endpoint or address), but the session failing: its log is full
		// or could not be written. The run stops here.
		e.fatal = err
	}
	return res, err
}

// keep copies one batch of outputs: Ready's memory is the engine's.
func (e *scriptEngine) keep(rd *fsm.Ready) {
	for _, p := range rd.Packets {
		p.Data = append([]byte(nil), p.Data...)
		if _, _, tcp, err := fsm.ParsePacket(p.Data); err == nil {
			p.Segment, _ = fsm.ParseSegment(tcp)
		}
		e.ready.Packets = append(e.ready.Packets, p)
	}
	e.ready.Transitions = append(e.ready.Transitions, rd.Transitions...)
	e.ready.Events = append(e.ready.Events, rd.Events...)
	e.ready.Explanations = append(e.ready.Explanations, rd.Explanations...)
}

func engineID(s string) fsm.EndpointID {
	n, _ := strconv.ParseUint(s, 10, 64)
	return fsm.EndpointID(n)
}

func eid(id fsm.EndpointID) string { return strconv.FormatUint(uint64(id), 10) }

func (e *scriptEngine) Listen(local netip.AddrPort, backlog int) (fsm.EndpointID, error) {
	l := &pb.ListenInput{LocalAddress: local.String(), Backlog: uint32(max(backlog, 0))}
	if _, err := e.exec(&pb.Input{Kind: &pb.Input_Listen{Listen: l}}); err != nil {
		return 0, err
	}
	return engineID(l.EndpointId), nil
}

func (e *scriptEngine) Connect(local, remote netip.AddrPort) (fsm.EndpointID, error) {
	c := &pb.ConnectInput{LocalAddress: local.String(), RemoteAddress: remote.String()}
	if _, err := e.exec(&pb.Input{Kind: &pb.Input_Connect{Connect: c}}); err != nil {
		return 0, err
	}
	return engineID(c.EndpointId), nil
}

func (e *scriptEngine) Accept(id fsm.EndpointID) (fsm.EndpointID, error) {
	res, err := e.exec(&pb.Input{Kind: &pb.Input_Accept{Accept: &pb.AcceptInput{EndpointId: eid(id)}}})
	if err != nil {
		return 0, err
	}
	return engineID(res.GetEndpointId()), nil
}

func (e *scriptEngine) Send(id fsm.EndpointID, data []byte) (int, error) {
	res, err := e.exec(&pb.Input{Kind: &pb.Input_Send{Send: &pb.SendInput{EndpointId: eid(id), Data: append([]byte(nil), data...)}}})
	if err != nil {
		return 0, err
	}
	return int(res.GetCount()), nil
}

// Receive reads into buf. The session reports the end of the peer's
// stream as a result (eof); the engine, and so the runner, as
// ErrConnectionClosing.
func (e *scriptEngine) Receive(id fsm.EndpointID, buf []byte) (int, error) {
	if len(buf) == 0 {
		return 0, nil
	}
	res, err := e.exec(&pb.Input{Kind: &pb.Input_Receive{Receive: &pb.ReceiveInput{EndpointId: eid(id), MaxBytes: uint32(min(len(buf), 1<<31-1))}}})
	if err != nil {
		return 0, err
	}
	n := copy(buf, res.GetData())
	if n == 0 && res.GetEof() {
		return 0, fsm.ErrConnectionClosing
	}
	return n, nil
}

func (e *scriptEngine) Shutdown(id fsm.EndpointID) error {
	_, err := e.exec(&pb.Input{Kind: &pb.Input_Shutdown{Shutdown: &pb.ShutdownInput{EndpointId: eid(id)}}})
	return err
}

func (e *scriptEngine) Close(id fsm.EndpointID) error {
	_, err := e.exec(&pb.Input{Kind: &pb.Input_Close{Close: &pb.CloseInput{EndpointId: eid(id)}}})
	return err
}

func (e *scriptEngine) Abort(id fsm.EndpointID) error {
	_, err := e.exec(&pb.Input{Kind: &pb.Input_Abort{Abort: &pb.AbortInput{EndpointId: eid(id)}}})
	return err
}

// KeepAlive reads an endpoint's keep-alive settings.
func (e *scriptEngine) KeepAlive(id fsm.EndpointID) (fsm.KeepAlive, error) {
	e.ss.mu.Lock()
	defer e.ss.mu.Unlock()
	return e.ss.m.Engine.KeepAlive(id)
}

// SetKeepAlive changes them, as a logged input.
func (e *scriptEngine) SetKeepAlive(id fsm.EndpointID, ka fsm.KeepAlive) error {
	_, err := e.exec(&pb.Input{Kind: &pb.Input_KeepAlive{KeepAlive: &pb.KeepAliveInput{EndpointId: eid(id), Enabled: ka.Enabled,
		Idle: durationpb.New(ka.Idle), Interval: durationpb.New(ka.Interval), Count: uint32(max(ka.Count, 0)), Init: durationpb.New(ka.Init)}}})
	return err
}

func (e *scriptEngine) Deliver(pkt []byte) error {
	_, err := e.exec(&pb.Input{Kind: &pb.Input_Segment{Segment: &pb.SegmentInput{IpPacket: append([]byte(nil), pkt...)}}})
	return err
}

func (e *scriptEngine) AdvanceTo(t time.Duration) {
	e.exec(advanceInput(t))
}

func (e *scriptEngine) Ready() fsm.Ready {
	rd := e.ready
	e.ready = fsm.Ready{}
	return rd
}

func (e *scriptEngine) NextDeadline() (time.Duration, bool) {
	e.ss.mu.Lock()
	defer e.ss.mu.Unlock()
	return e.ss.m.Engine.NextDeadline()
}

// ReceiveUrgent is recv(MSG_OOB), as a logged input (a peek too: the
// runner cannot tell the service apart from the engine).
func (e *scriptEngine) ReceiveUrgent(id fsm.EndpointID, peek bool) (byte, error) {
	res, err := e.exec(&pb.Input{Kind: &pb.Input_Urgent{Urgent: &pb.UrgentInput{EndpointId: eid(id), Receive: true, Peek: peek}}})
	if err != nil {
		return 0, err
	}
	if len(res.GetData()) != 1 {
		return 0, fsm.ErrNoUrgent
	}
	return res.GetData()[0], nil
}

// SendUrgent is send(MSG_OOB), as a logged input.
func (e *scriptEngine) SendUrgent(id fsm.EndpointID, data []byte) (int, error) {
	if len(data) == 0 {
		return 0, nil
	}
	res, err := e.exec(&pb.Input{Kind: &pb.Input_Urgent{Urgent: &pb.UrgentInput{EndpointId: eid(id), SendData: append([]byte(nil), data...)}}})
	if err != nil {
		return 0, err
	}
	return int(res.GetCount()), nil
}

// AtMark is ioctl(SIOCATMARK); it changes nothing, so it is not logged.
func (e *scriptEngine) AtMark(id fsm.EndpointID) (bool, error) {
	e.ss.mu.Lock()
	defer e.ss.mu.Unlock()
	return e.ss.m.Engine.AtMark(id)
}

// SockOpts reads an endpoint's socket options.
func (e *scriptEngine) SockOpts(id fsm.EndpointID) (fsm.SockOpts, error) {
	e.ss.mu.Lock()
	defer e.ss.mu.Unlock()
	return e.ss.m.Engine.SockOpts(id)
}

// SetSockOpts changes SO_OOBINLINE, as a logged input; the other socket
// options of a script session are fixed when its engine is configured.
func (e *scriptEngine) SetSockOpts(id fsm.EndpointID, o fsm.SockOpts) error {
	cur, err := e.SockOpts(id)
	if err != nil {
		return err
	}
	if o.OOBInline == cur.OOBInline {
		return nil
	}
	cur.OOBInline = o.OOBInline
	if cur != o {
		return errors.New("socket options other than SO_OOBINLINE cannot be changed in a service script session")
	}
	_, err = e.exec(&pb.Input{Kind: &pb.Input_Urgent{Urgent: &pb.UrgentInput{EndpointId: eid(id), OobInline: proto.Bool(o.OOBInline)}}})
	return err
}

// Peek reads without consuming (recv with MSG_PEEK). It changes nothing,
// so it is not logged.
func (e *scriptEngine) Peek(id fsm.EndpointID, buf []byte) (int, error) {
	e.ss.mu.Lock()
	defer e.ss.mu.Unlock()
	return e.ss.m.Engine.Peek(id, buf)
}

func (e *scriptEngine) Endpoint(id fsm.EndpointID) (fsm.EndpointInfo, bool) {
	e.ss.mu.Lock()
	defer e.ss.mu.Unlock()
	return e.ss.m.Engine.Endpoint(id)
}

func (e *scriptEngine) Now() time.Duration {
	e.ss.mu.Lock()
	defer e.ss.mu.Unlock()
	return e.ss.m.Now()
}

// Config is the session engine's configuration, for the runner's checks
// of what the script asked for. The endpoint limit is the server's, not
// the script's business, so it shows as the engine's default.
func (e *scriptEngine) Config() fsm.Config {
	e.ss.mu.Lock()
	cfg := e.ss.m.Engine.Config()
	e.ss.mu.Unlock()
	cfg.MaxEndpoints = fsm.Config{}.Defaults().MaxEndpoints
	return cfg
}
