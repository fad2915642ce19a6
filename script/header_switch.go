package script

import (
	"strings"

	"github.com/tcpstated/tcpstated/fsm"
)

// switchOptionPrefix: a header option --tcpstated_NAME=VALUE, where NAME
// is a behaviour switch of the engine (fsm.Switches) and not one of
// headerOptions, sets that switch, after the profile: so a script picks
// its loss recovery and congestion control in its header
// (--tcpstated_congestion_control=cubic, --tcpstated_ecn=1,
// --tcpstated_frto=1, --tcpstated_rack=0, --tcpstated_rexmit_min=200).
const switchOptionPrefix = "tcpstated_"

// headerOption finds the header option name: one of headerOptions, else a
// switch named by --tcpstated_NAME.
func headerOption(name string) (optSpec, bool) {
	if spec, ok := headerOptions[name]; ok {
		return spec, true
	}
	sw, ok := strings.CutPrefix(name, switchOptionPrefix)
	if !ok {
		return optSpec{}, false
	}
	var probe fsm.Config
	if _, ok := probe.Switch(sw); !ok {
		return optSpec{}, false
	}
	return optSpec{engine: true, apply: func(h *header, v string) error {
		return h.cfg.SetSwitch(sw, v)
	}}, true
}
