package service

import (
	"crypto/rand"
	"crypto/sha256"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"

	"github.com/tcpstated/tcpstated/service/machine"
)

// Session options: the request's SessionOptions are validated, completed
// with the server defaults (the "effective" options, reported back in
// Session.options and stored in the log's start record) and turned into an
// fsm.Config by engineConfig. A re-run builds its engine from the stored
// effective options with the same function, so it gets the same Config.

// Bounds on option values (beyond the buffer limits of Limits).
const (
	maxOptionDuration = 24 * time.Hour
	maxBacklog        = 65535
	maxInitialWindow  = 1000
	maxRetries        = 255
)

// effectiveOptions validates req (nil means all defaults) and returns the
// options in effect, with every default filled in, and the secret key.
func effectiveOptions(req *pb.SessionOptions, lim Limits) (*pb.SessionOptions, [16]byte, error) {
	var secret [16]byte
	o := proto.Clone(req).(*pb.SessionOptions)
	if req == nil {
		o = &pb.SessionOptions{}
	}
	if err := validateOptions(o, lim); err != nil {
		return nil, secret, err
	}
	if o.SecretSeed != nil {
		sum := sha256.Sum256([]byte(*o.SecretSeed))
		copy(secret[:], sum[:16])
	} else {
		rand.Read(secret[:])
	}
	o.SecretSeed = nil // the key is in the log's start record; never shown
	if o.ClockMode == pb.ClockMode_CLOCK_MODE_UNSPECIFIED {
		o.ClockMode = pb.ClockMode_CLOCK_MODE_VIRTUAL
	}
	if o.IsnMode == pb.IsnMode_ISN_MODE_UNSPECIFIED {
		o.IsnMode = pb.IsnMode_ISN_MODE_RANDOM
	}
	// Fill the rest from what the engine's defaults make of the request.
	cfg := machine.EngineConfig(o, secret, machine.Params{}).Defaults()
	if cfg.MinRTO > cfg.MaxRTO {
		return nil, secret, invalidf("session.options: min_rto %v is above max_rto %v", cfg.MinRTO, cfg.MaxRTO)
	}
	o.Msl = durationpb.New(cfg.MSL)
	o.ReceiveWindow = uint32(cfg.RecvBuffer)
	o.SendBuffer = uint32(cfg.SendBuffer)
	o.Mss = uint32(cfg.MSS)
	ws := int32(cfg.WindowScale)
	if cfg.NoWindowScale {
		ws = -1
	}
	o.WindowScale = proto.Int32(ws)
	o.Timestamps = proto.Bool(!cfg.NoTimestamps)
	o.SackPermitted = proto.Bool(!cfg.NoSACK)
	o.SynBacklog = uint32(cfg.SynQueue)
	o.AcceptBacklog = uint32(cfg.AcceptQueue)
	o.SynCookies = proto.Bool(cfg.SynCookies)
	o.Nagle = proto.Bool(!cfg.NoNagle)
	o.DelayedAck = proto.Bool(!cfg.NoDelayedAck)
	o.DelayedAckTimeout = durationpb.New(cfg.DelayedAckTimeout)
	o.InitialWindowSegments = uint32(cfg.InitialWindow)
	o.MinRto = durationpb.New(cfg.MinRTO)
	o.MaxRto = durationpb.New(cfg.MaxRTO)
	o.InitialRto = durationpb.New(cfg.InitialRTO)
	o.MaxRetries = uint32(cfg.MaxRetries)
	o.MaxSynRetries = uint32(cfg.SynRetries)
	o.MaxSynAckRetries = uint32(cfg.SynAckRetries)
	if o.Profile == "" {
		o.Profile = "rfc"
	}
	return o, secret, nil
}

func validateOptions(o *pb.SessionOptions, lim Limits) error {
	if _, ok := pb.ClockMode_name[int32(o.ClockMode)]; !ok {
		return invalidf("session.options.clock_mode: %d is not a clock mode", o.ClockMode)
	}
	if _, ok := pb.IsnMode_name[int32(o.IsnMode)]; !ok {
		return invalidf("session.options.isn_mode: %d is not an ISN mode", o.IsnMode)
	}
	if o.FixedIsn != 0 && o.IsnMode != pb.IsnMode_ISN_MODE_FIXED {
		return invalidf("session.options.fixed_isn: set, but isn_mode is not ISN_MODE_FIXED")
	}
	durs := []struct {
		name string
		d    *durationpb.Duration
		max  time.Duration
	}{
		{"msl", o.Msl, maxOptionDuration},
		{"delayed_ack_timeout", o.DelayedAckTimeout, 500*time.Millisecond - 1},
		{"min_rto", o.MinRto, maxOptionDuration},
		{"max_rto", o.MaxRto, maxOptionDuration},
		{"initial_rto", o.InitialRto, maxOptionDuration},
	}
	for _, d := range durs {
		if d.d == nil {
			continue
		}
		if err := d.d.CheckValid(); err != nil {
			return invalidf("session.options.%s: %v", d.name, err)
		}
		if v := d.d.AsDuration(); v <= 0 || v > d.max {
			return invalidf("session.options.%s: %v is not in (0, %v]", d.name, v, d.max)
		}
	}
	if o.MinRto != nil && o.MaxRto != nil && o.MinRto.AsDuration() > o.MaxRto.AsDuration() {
		return invalidf("session.options.min_rto: %v is above max_rto %v", o.MinRto.AsDuration(), o.MaxRto.AsDuration())
	}
	if o.ReceiveWindow > uint32(lim.MaxBufferBytes) {
		return exhaustedf("session.options.receive_window: %d bytes is above the server's limit of %d", o.ReceiveWindow, lim.MaxBufferBytes)
	}
	if o.SendBuffer > uint32(lim.MaxBufferBytes) {
		return exhaustedf("session.options.send_buffer: %d bytes is above the server's limit of %d", o.SendBuffer, lim.MaxBufferBytes)
	}
	if o.Mss > 65535 {
		return invalidf("session.options.mss: %d does not fit the 16-bit MSS option", o.Mss)
	}
	if o.WindowScale != nil && (*o.WindowScale < -1 || *o.WindowScale > 14) {
		return invalidf("session.options.window_scale: %d is not -1 (off) or a shift count 0 to 14", *o.WindowScale)
	}
	for _, f := range []struct {
		name string
		v    uint32
		max  uint32
	}{
		{"syn_backlog", o.SynBacklog, maxBacklog},
		{"accept_backlog", o.AcceptBacklog, maxBacklog},
		{"initial_window_segments", o.InitialWindowSegments, maxInitialWindow},
		{"max_retries", o.MaxRetries, maxRetries},
		{"max_syn_retries", o.MaxSynRetries, maxRetries},
		{"max_syn_ack_retries", o.MaxSynAckRetries, maxRetries},
	} {
		if f.v > f.max {
			return invalidf("session.options.%s: %d is above the maximum %d", f.name, f.v, f.max)
		}
	}
	if err := machine.CheckBehaviour(o); err != nil {
		return invalidf("%v", err)
	}
	if o.SecretSeed != nil && len(*o.SecretSeed) > 1024 {
		return invalidf("session.options.secret_seed: longer than 1024 bytes")
	}
	return nil
}
