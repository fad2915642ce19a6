package machine

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tcpstated/tcpstated/fsm"
	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// TestEngineConfigRecoverySwitches: the start record's options rebuild
// the same loss-recovery Config: the profile, then the switches, then
// the options that are set (min_rto over rexmit_min).
func TestEngineConfigRecoverySwitches(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts *pb.SessionOptions
		want fsm.Recovery
		rto  time.Duration
	}{
		{"rfc", &pb.SessionOptions{}, fsm.Recovery{}, 0},
		{"linux", &pb.SessionOptions{Profile: "linux"},
			fsm.Recovery{CongestionControl: fsm.CCCubic, HyStart: true, SlowStartAllBytes: true, RTOKeepSACK: true, FRTO: true, ECN: true, ECNNoRequest: true}, 200 * time.Millisecond},
		{"freebsd", &pb.SessionOptions{Profile: "freebsd"},
			fsm.Recovery{ECN: true, ECNNoRequest: true, ECNMaxRetries: 1}, 30 * time.Millisecond},
		{"switches", &pb.SessionOptions{Switches: map[string]string{"congestion_control": "cubic", "sack_recovery": "0", "prr": "0", "prr_crb": "1",
			"rack": "0", "tlp": "0", "hystart": "1", "ss_all_bytes": "1", "eifel": "0", "frto": "1", "ecn": "1", "ecn_maxretries": "2", "rexmit_min": "200"}},
			fsm.Recovery{CongestionControl: fsm.CCCubic, NoSACKRecovery: true, NoPRR: true, PRRConservative: true, NoRACK: true, NoTLP: true,
				HyStart: true, SlowStartAllBytes: true, NoEifel: true, FRTO: true, ECN: true, ECNMaxRetries: 2}, 200 * time.Millisecond},
		{"min_rto over the switch", &pb.SessionOptions{Switches: map[string]string{"rexmit_min": "200"}, MinRto: durationpb.New(50 * time.Millisecond)},
			fsm.Recovery{}, 50 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := CheckBehaviour(tc.opts); err != nil {
				t.Fatal(err)
			}
			cfg := EngineConfig(tc.opts, [16]byte{}, Params{})
			if cfg.Recovery != tc.want {
				t.Errorf("Recovery %+v, want %+v", cfg.Recovery, tc.want)
			}
			if cfg.MinRTO != tc.rto {
				t.Errorf("MinRTO %v, want %v", cfg.MinRTO, tc.rto)
			}
		})
	}
	err := CheckBehaviour(&pb.SessionOptions{Switches: map[string]string{"congestion_control": "vegas"}})
	if err == nil || !strings.HasPrefix(err.Error(), "session.options.switches.congestion_control: ") {
		t.Errorf("congestion_control=vegas: %v", err)
	}
}

// TestPinnedSwitches: the switches pinned in a start record rebuild the
// Config they were read from, under every profile and with options set
// over the profile (once the engine's defaults are filled in: a pin names
// the default an unset field stands for); a pinned value wins over what the profile chooses now
// (as after a release changed the profile); a pin this engine does not
// take fails the start record by name.
func TestPinnedSwitches(t *testing.T) {
	for _, p := range fsm.Profiles() {
		for _, o := range []*pb.SessionOptions{
			{Profile: p.Name},
			{Profile: p.Name, MinRto: durationpb.New(50 * time.Millisecond), Switches: map[string]string{"congestion_control": "cubic"}},
		} {
			want := EngineConfig(o, [16]byte{1}, Params{MaxEndpoints: 9})
			st := &pb.SessionStart{EngineVersion: EngineName, MaxEndpoints: 9, SwitchValues: PinSwitches(want)}
			params, err := startParams(st)
			if err != nil {
				t.Fatal(err)
			}
			if got := EngineConfig(o, [16]byte{1}, params); !reflect.DeepEqual(got.Defaults(), want.Defaults()) {
				t.Errorf("%s %v: pinned\n%+v\nwant\n%+v", p.Name, o, got, want)
			}
		}
	}

	o := &pb.SessionOptions{Profile: "linux"}
	pins := PinSwitches(EngineConfig(o, [16]byte{}, Params{}))
	pins["rexmit_min"] = "1000" // what an older linux profile chose
	params, err := startParams(&pb.SessionStart{EngineVersion: EngineName, SwitchValues: pins})
	if err != nil {
		t.Fatal(err)
	}
	if got := EngineConfig(o, [16]byte{}, params).MinRTO; got != time.Second {
		t.Errorf("pinned rexmit_min 1000: MinRTO %v", got)
	}

	_, err = startParams(&pb.SessionStart{EngineVersion: EngineName, SwitchValues: map[string]string{"tw_recycle": "1"}})
	if err == nil || !strings.Contains(err.Error(), `switch_values: unknown behaviour switch "tw_recycle"`) {
		t.Errorf("unknown pin: %v", err)
	}
}
