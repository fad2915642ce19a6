package machine

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tcpstated/tcpstated/fsm"
	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// Params are the engine settings that are not session options but
// change what the engine does (MaxEndpoints bounds passive opens too). They
// are fixed when a session is created and kept in the start record
// (SessionStart.max_endpoints), so a re-run uses the same ones whatever the
// server's limits are now.
type Params struct {
	MaxEndpoints int
}

// EngineName is the start record's engine_version.
const EngineName = "tcpstated-fsm/1"

// StartParams reads the parameters of a start record. Logs written before
// SessionStart.max_endpoints existed packed it into engine_version as
// "tcpstated-fsm/1 max_endpoints=N"; that form is still read.
func StartParams(st *pb.SessionStart) (Params, error) {
	p, err := parseEngineParams(st.EngineVersion)
	if err != nil {
		return p, err
	}
	if st.MaxEndpoints != 0 {
		p.MaxEndpoints = int(st.MaxEndpoints)
	}
	return p, nil
}

// parseEngineParams reads engine_version: the engine name, then, in old
// logs, key=value parameters.
func parseEngineParams(v string) (Params, error) {
	var p Params
	fields := strings.Fields(v)
	if len(fields) == 0 || fields[0] != EngineName {
		return p, fmt.Errorf("engine version %q is not %q", v, EngineName)
	}
	for _, f := range fields[1:] {
		k, val, _ := strings.Cut(f, "=")
		n, err := strconv.Atoi(val)
		if err != nil {
			return p, fmt.Errorf("engine version %q: bad %s", v, k)
		}
		if k == "max_endpoints" {
			p.MaxEndpoints = n
		}
	}
	return p, nil
}

// EngineConfig turns session options into an engine configuration. Unset
// fields stay zero (the engine's defaults); for stored effective options
// every field is set.
func EngineConfig(o *pb.SessionOptions, secret [16]byte, p Params) fsm.Config {
	dur := func(d *durationpb.Duration) time.Duration {
		if d == nil {
			return 0
		}
		return d.AsDuration()
	}
	cfg := fsm.Config{
		Secret:            secret,
		FixedISN:          o.FixedIsn,
		MSL:               dur(o.Msl),
		MSS:               uint16(o.Mss),
		RecvBuffer:        int(o.ReceiveWindow),
		SendBuffer:        int(o.SendBuffer),
		SynQueue:          int(o.SynBacklog),
		AcceptQueue:       int(o.AcceptBacklog),
		SynCookies:        o.GetSynCookies(),
		DelayedAckTimeout: dur(o.DelayedAckTimeout),
		InitialWindow:     int(o.InitialWindowSegments),
		InitialRTO:        dur(o.InitialRto),
		MinRTO:            dur(o.MinRto),
		MaxRTO:            dur(o.MaxRto),
		MaxRetries:        int(o.MaxRetries),
		SynRetries:        int(o.MaxSynRetries),
		SynAckRetries:     int(o.MaxSynAckRetries),
		MaxEndpoints:      p.MaxEndpoints,
	}
	if o.IsnMode == pb.IsnMode_ISN_MODE_FIXED {
		cfg.ISNMode = fsm.ISNFixed
	}
	if o.WindowScale != nil {
		cfg.WindowScale = int(*o.WindowScale)
	}
	cfg.NoTimestamps = o.Timestamps != nil && !*o.Timestamps
	cfg.NoSACK = o.SackPermitted != nil && !*o.SackPermitted
	cfg.NoNagle = o.Nagle != nil && !*o.Nagle
	cfg.NoDelayedAck = o.DelayedAck != nil && !*o.DelayedAck
	return cfg
}
