package script

import (
	"strings"
	"testing"
	"time"

	"github.com/tcpstated/tcpstated/fsm"
)

// A script picks its loss recovery and congestion control in its header
// (--tcpstated_NAME for any behaviour switch, after the profile) or with
// the sysctl lines of Linux and FreeBSD that map to those switches.
func TestRecoveryHeaderOptionsAndSysctls(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		check     func(fsm.Config) bool
	}{
		{"header over the linux profile", "--tcpstated_profile=linux\n--tcpstated_congestion_control=reno\n--tcpstated_ecn=1\n--tcpstated_frto=0\n--tcpstated_rack=0\n--tcpstated_rexmit_min=300\n",
			func(c fsm.Config) bool {
				r := c.Recovery
				return r.CongestionControl == fsm.CCReno && r.ECN && !r.ECNNoRequest && !r.FRTO && r.NoRACK && !r.NoTLP && r.HyStart && c.MinRTO == 300*time.Millisecond
			}},
		{"every algorithm", "--tcpstated_sack_recovery=0\n--tcpstated_prr=0\n--tcpstated_prr_crb=1\n--tcpstated_tlp=0\n--tcpstated_hystart=1\n--tcpstated_eifel=0\n--tcpstated_ecn_maxretries=2\n--tcpstated_min_rto=200ms\n",
			func(c fsm.Config) bool {
				r := c.Recovery
				return r.NoSACKRecovery && r.NoPRR && r.PRRConservative && r.NoTLP && r.HyStart && r.NoEifel && r.ECNMaxRetries == 2 && c.MinRTO == 200*time.Millisecond
			}},
		{"linux sysctls", "0 `sysctl -w net.ipv4.tcp_congestion_control=cubic`\n+0 `sysctl -w net.ipv4.tcp_ecn=1`\n+0 `sysctl -w net.ipv4.tcp_frto=2`\n+0 `sysctl -w net.ipv4.tcp_recovery=0`\n+0 `sysctl -w net.ipv4.tcp_early_retrans=2`\n+0 `sysctl -w net.ipv4.tcp_sack=1`\n+0 `sysctl -w net.ipv4.tcp_rto_min_us=50000`\n",
			func(c fsm.Config) bool {
				r := c.Recovery
				return r.CongestionControl == fsm.CCCubic && r.ECN && r.FRTO && r.NoRACK && r.NoTLP && !c.NoSACK && c.MinRTO == 50*time.Millisecond
			}},
		{"freebsd sysctls", "0 `sysctl -w net.inet.tcp.cc.algorithm=newreno`\n+0 `sysctl -w net.inet.tcp.ecn.enable=2`\n+0 `sysctl -w net.inet.tcp.ecn.maxretries=3`\n+0 `sysctl -w net.inet.tcp.do_prr=0`\n+0 `sysctl -w net.inet.tcp.rexmit_min=30`\n",
			func(c fsm.Config) bool {
				r := c.Recovery
				return r.CongestionControl == fsm.CCReno && r.ECN && r.ECNNoRequest && r.ECNMaxRetries == 3 && r.NoPRR && c.MinRTO == 30*time.Millisecond
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse("r.pkt", []byte(tc.src+"+0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n"))
			if err != nil {
				t.Fatal(err)
			}
			cfg, applied, err := s.ProfileConfig(defaultConfig(), "")
			if err != nil || !tc.check(cfg) {
				t.Fatalf("Recovery %+v MinRTO %v (%v; %v)", cfg.Recovery, cfg.MinRTO, err, applied)
			}
			for i, note := range applied {
				if !strings.HasPrefix(note, "configures the engine: switch ") {
					t.Errorf("line %d: %s", i, note)
				}
			}
		})
	}
	// A bad value is a parse error at the option, naming it and the switch.
	for _, src := range []string{"--tcpstated_congestion_control=bbr\n", "--tcpstated_ecn=3\n", "--tcpstated_frto=sometimes\n"} {
		_, err := Parse("bad.pkt", []byte(src+"0 close(3) = 0\n"))
		name, _, _ := strings.Cut(strings.TrimPrefix(src, "--tcpstated_"), "=")
		if err == nil || !strings.Contains(err.Error(), "--tcpstated_"+name+": switch "+name+": expected") {
			t.Errorf("%q: %v", src, err)
		}
	}
	// A sysctl with a value the switch refuses is skipped, saying why.
	s, err := Parse("s.pkt", []byte("0 `sysctl -w net.ipv4.tcp_congestion_control=bbr`\n+0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, applied, _ := s.ProfileConfig(defaultConfig(), ""); !strings.Contains(applied[0], "skipped: net.ipv4.tcp_congestion_control=bbr: switch congestion_control: expected reno or cubic") {
		t.Errorf("bbr: %q", applied[0])
	}
}
