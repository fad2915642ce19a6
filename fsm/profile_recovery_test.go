package fsm

import (
	"strings"
	"testing"
	"time"
)

// Each loss-recovery algorithm is selectable by its switch, which reads
// back as it was set; a bad value is refused with the switch's name and
// leaves the Config as it was.
func TestRecoverySwitches(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		check       func(c Config) bool
	}{
		{"congestion_control", "cubic", func(c Config) bool { return c.Recovery.CongestionControl == CCCubic }},
		{"congestion_control", "reno", func(c Config) bool { return c.Recovery.CongestionControl == CCReno }},
		{"sack_recovery", "0", func(c Config) bool { return c.Recovery.NoSACKRecovery }},
		{"rack", "0", func(c Config) bool { return c.Recovery.NoRACK }},
		{"tlp", "0", func(c Config) bool { return c.Recovery.NoTLP }},
		{"prr", "0", func(c Config) bool { return c.Recovery.NoPRR }},
		{"prr_crb", "1", func(c Config) bool { return c.Recovery.PRRConservative }},
		{"hystart", "1", func(c Config) bool { return c.Recovery.HyStart }},
		{"ss_all_bytes", "1", func(c Config) bool { return c.Recovery.SlowStartAllBytes }},
		{"rto_keep_sack", "1", func(c Config) bool { return c.Recovery.RTOKeepSACK }},
		{"eifel", "0", func(c Config) bool { return c.Recovery.NoEifel }},
		{"frto", "1", func(c Config) bool { return c.Recovery.FRTO }},
		{"ecn", "1", func(c Config) bool { return c.Recovery.ECN && !c.Recovery.ECNNoRequest }},
		{"ecn", "2", func(c Config) bool { return c.Recovery.ECN && c.Recovery.ECNNoRequest }},
		{"ecn", "0", func(c Config) bool { return !c.Recovery.ECN }},
		{"ecn_maxretries", "1", func(c Config) bool { return c.Recovery.ECNMaxRetries == 1 }},
		{"rexmit_min", "200", func(c Config) bool { return c.MinRTO == 200*time.Millisecond }},
	} {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			var c Config
			if err := c.SetSwitch(tc.name, tc.value); err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Errorf("Config.Recovery %+v", c.Recovery)
			}
			if v, _ := c.Switch(tc.name); v != tc.value {
				t.Errorf("reads back %q", v)
			}
		})
	}
	for _, tc := range []struct{ name, value, want string }{
		{"congestion_control", "bbr", "expected reno or cubic"},
		{"ecn", "3", "expected 0, 1 or 2"},
		{"frto", "maybe", "expected 0 or 1"},
		{"ecn_maxretries", "-1", "expected a count"},
		{"rexmit_min", "soon", "expected milliseconds"},
	} {
		var c Config
		err := c.SetSwitch(tc.name, tc.value)
		if err == nil || !strings.Contains(err.Error(), "switch "+tc.name+": "+tc.want) {
			t.Errorf("%s=%s: %v", tc.name, tc.value, err)
		}
		if c != (Config{}) {
			t.Errorf("%s=%s changed the Config", tc.name, tc.value)
		}
	}
}

// The loss-recovery sysctls of Linux and FreeBSD map to their switches,
// with the value translated where the units or encodings differ.
func TestRecoverySysctls(t *testing.T) {
	for _, tc := range []struct{ sysctl, value, sw, v string }{
		{"net.ipv4.tcp_congestion_control", "cubic", "congestion_control", "cubic"},
		{"net.ipv4.tcp_ecn", "2", "ecn", "2"},
		{"net.ipv4.tcp_ecn_fallback", "1", "ecn_maxretries", "0"},
		{"net.ipv4.tcp_frto", "2", "frto", "1"},
		{"net.ipv4.tcp_frto", "0", "frto", "0"},
		{"net.ipv4.tcp_recovery", "1", "rack", "1"},
		{"net.ipv4.tcp_recovery", "0", "rack", "0"},
		{"net.ipv4.tcp_recovery", "4", "rack", "0"},
		{"net.ipv4.tcp_early_retrans", "3", "tlp", "1"},
		{"net.ipv4.tcp_early_retrans", "2", "tlp", "0"},
		{"net.ipv4.tcp_sack", "0", "sack", "0"},
		{"net.ipv4.tcp_rto_min_us", "200000", "rexmit_min", "200000us"},
		{"net.inet.tcp.cc.algorithm", "newreno", "congestion_control", "reno"},
		{"net.inet.tcp.ecn.enable", "1", "ecn", "1"},
		{"net.inet.tcp.ecn.maxretries", "1", "ecn_maxretries", "1"},
		{"net.inet.tcp.sack.enable", "1", "sack", "1"},
		{"net.inet.tcp.do_prr", "0", "prr", "0"},
		{"net.inet.tcp.rexmit_min", "30", "rexmit_min", "30"},
		{"net.inet.tcp.hystartplusplus", "1", "hystart", "1"},
	} {
		sw, v, ok := SysctlSetting(tc.sysctl, tc.value)
		if !ok || sw != tc.sw || v != tc.v {
			t.Errorf("%s=%s: switch %q=%q (%v), want %s=%s", tc.sysctl, tc.value, sw, v, ok, tc.sw, tc.v)
			continue
		}
		var c Config
		if err := c.SetSwitch(sw, v); err != nil {
			t.Errorf("%s=%s: %v", tc.sysctl, tc.value, err)
		}
		if name, ok := SysctlSwitch(tc.sysctl); !ok || name != tc.sw {
			t.Errorf("SysctlSwitch(%s) = %q %v", tc.sysctl, name, ok)
		}
	}
	if _, _, ok := SysctlSetting("net.ipv4.tcp_no_such", "1"); ok {
		t.Error("an unknown sysctl maps")
	}
}
