package machine

import (
	"fmt"
	"maps"
	"slices"
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
	// Switches pins every behaviour switch (SessionStart.switch_values),
	// applied after the options; nil in logs made before it.
	Switches map[string]string
}

// PinSwitches returns every behaviour switch's value in cfg, for
// Params.Switches: a profile may change between releases, a session's
// behaviour may not.
func PinSwitches(cfg fsm.Config) map[string]string {
	all := fsm.Switches()
	out := make(map[string]string, len(all))
	for _, sw := range all {
		out[sw.Name], _ = cfg.Switch(sw.Name)
	}
	return out
}

// EngineName is the start record's engine_version.
const EngineName = "tcpstated-fsm/1"

// startParams reads the parameters of a start record. Logs written before
// SessionStart.max_endpoints existed packed it into engine_version as
// "tcpstated-fsm/1 max_endpoints=N"; that form is still read.
func startParams(st *pb.SessionStart) (Params, error) {
	p, err := parseEngineParams(st.EngineVersion)
	if err != nil {
		return p, err
	}
	if st.MaxEndpoints != 0 {
		p.MaxEndpoints = int(st.MaxEndpoints)
	}
	if len(st.SwitchValues) > 0 {
		var cfg fsm.Config
		for _, name := range slices.Sorted(maps.Keys(st.SwitchValues)) {
			if err := cfg.SetSwitch(name, st.SwitchValues[name]); err != nil {
				return p, fmt.Errorf("switch_values: %v (the log pins a switch this engine does not take)", err)
			}
		}
		p.Switches = st.SwitchValues
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

// EngineConfig turns session options into an engine configuration: the
// behaviour profile and switches first, then every option that is set
// (an option overrides what the profile chose). Unset fields stay zero
// (the engine's defaults); for stored effective options every field is
// set. The profile and switches were checked when the session was created
// (CheckBehaviour). The pinned switches of p come last.
func EngineConfig(o *pb.SessionOptions, secret [16]byte, p Params) fsm.Config {
	dur := func(d *durationpb.Duration) time.Duration {
		if d == nil {
			return 0
		}
		return d.AsDuration()
	}
	var cfg fsm.Config
	_ = applyBehaviour(&cfg, o)
	cfg.Secret = secret
	cfg.FixedISN = o.FixedIsn
	cfg.MaxEndpoints = p.MaxEndpoints
	setNonZero(&cfg.MSL, dur(o.Msl))
	setNonZero(&cfg.MSS, uint16(o.Mss))
	setNonZero(&cfg.RecvBuffer, int(o.ReceiveWindow))
	cfg.RecvBufferLocked = o.ReceiveBufferSet && o.ReceiveWindow > 0
	setNonZero(&cfg.SendBuffer, int(o.SendBuffer))
	setNonZero(&cfg.SynQueue, int(o.SynBacklog))
	setNonZero(&cfg.AcceptQueue, int(o.AcceptBacklog))
	setNonZero(&cfg.DelayedAckTimeout, dur(o.DelayedAckTimeout))
	setNonZero(&cfg.InitialWindow, int(o.InitialWindowSegments))
	setNonZero(&cfg.InitialRTO, dur(o.InitialRto))
	setNonZero(&cfg.MinRTO, dur(o.MinRto))
	setNonZero(&cfg.MaxRTO, dur(o.MaxRto))
	setNonZero(&cfg.MaxRetries, int(o.MaxRetries))
	setNonZero(&cfg.SynRetries, int(o.MaxSynRetries))
	setNonZero(&cfg.SynAckRetries, int(o.MaxSynAckRetries))
	if o.IsnMode == pb.IsnMode_ISN_MODE_FIXED {
		cfg.ISNMode = fsm.ISNFixed
	}
	if o.WindowScale != nil {
		cfg.WindowScale = int(*o.WindowScale)
	}
	if o.SynCookies != nil {
		cfg.SynCookies = *o.SynCookies
	}
	if o.Timestamps != nil {
		cfg.NoTimestamps = !*o.Timestamps
	}
	if o.SackPermitted != nil {
		cfg.NoSACK = !*o.SackPermitted
	}
	if o.Nagle != nil {
		cfg.NoNagle = !*o.Nagle
	}
	if o.DelayedAck != nil {
		cfg.NoDelayedAck = !*o.DelayedAck
	}
	for _, name := range slices.Sorted(maps.Keys(p.Switches)) {
		_ = cfg.SetSwitch(name, p.Switches[name]) // checked by startParams
	}
	return cfg
}

func setNonZero[T comparable](dst *T, v T) {
	var zero T
	if v != zero {
		*dst = v
	}
}

// CheckBehaviour reports whether the options' profile and switches exist
// and take their values; the error names the field that is wrong.
func CheckBehaviour(o *pb.SessionOptions) error {
	var cfg fsm.Config
	return applyBehaviour(&cfg, o)
}

// applyBehaviour applies the profile, then the switches in name order.
func applyBehaviour(cfg *fsm.Config, o *pb.SessionOptions) error {
	if o.Profile != "" {
		prof, ok := fsm.ProfileByName(o.Profile)
		if !ok {
			names := make([]string, 0, 3)
			for _, p := range fsm.Profiles() {
				names = append(names, p.Name)
			}
			return fmt.Errorf("session.options.profile: %q is not one of %s", o.Profile, strings.Join(names, ", "))
		}
		if prof.Name != "rfc" { // rfc sets no switch; Config.Profile "" is rfc
			if err := prof.Apply(cfg); err != nil {
				return fmt.Errorf("session.options.profile: %v", err)
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(o.Switches)) {
		if err := cfg.SetSwitch(name, o.Switches[name]); err != nil {
			return fmt.Errorf("session.options.switches.%s: %v", name, err)
		}
	}
	return nil
}
