package fsm

import (
	"fmt"
	"strconv"
	"strings"
)

// Switches for loss recovery and congestion control (issue 11), beside
// the ones the linux profile introduced (sack, rack, tlp, hystart,
// congestion_control, profile_linux.go) and rexmit_min (the minimum RTO,
// profile.go). Each selects one algorithm of Config.Recovery per session:
// through SessionOptions.switches, a script's --tcpstated_NAME header
// option, or a sysctl line that maps to it (recoverySysctls).

func init() {
	switches = append(switches, recoverySwitches...)
}

var recoverySwitches = []switchSpec{
	negBoolSwitch("sack_recovery", "1: SACK-based loss recovery (RFC 6675: the scoreboard, IsLost, pipe, NextSeg) whenever SACK is negotiated. 0: NewReno (RFC 6582) even with SACK, whose blocks are then only parsed. RFC 6675 §1 makes it a conservative replacement for RFC 5681's fast recovery, which either value follows.",
		func(c *Config) *bool { return &c.Recovery.NoSACKRecovery }),
	negBoolSwitch("prr", "1: Proportional Rate Reduction (RFC 6937) decides how much is sent during SACK recovery, so cwnd falls smoothly to ssthresh. 0: cwnd drops to ssthresh at once and RFC 6675 §5 (C) sends while cwnd - pipe >= 1 SMSS. Linux and FreeBSD (net.inet.tcp.do_prr) use PRR.",
		func(c *Config) *bool { return &c.Recovery.NoPRR }),
	boolSwitch("prr_crb", "1: PRR's conservative reduction bound (RFC 6937 §3, strict packet conservation once pipe is below ssthresh). 0: the slow-start reduction bound (PRR-SSRB), which RFC 6937 §6 recommends.",
		func(c *Config) *bool { return &c.Recovery.PRRConservative }),
	negBoolSwitch("eifel", "1: a retransmission timeout or SACK fast retransmit the first ACK's timestamp shows to be spurious (the Eifel detection algorithm, RFC 3522: the original was delayed or reordered, not lost) has its congestion response undone (the Eifel response, RFC 4015). 0: every RTO and fast retransmit keeps its response. Needs timestamps.",
		func(c *Config) *bool { return &c.Recovery.NoEifel }),
	boolSwitch("ss_all_bytes", "1: slow start opens cwnd by every byte an ACK acknowledges, up to ssthresh, as Linux's tcp_slow_start (every segment acknowledged counts); RFC 3465 §2.2's byte counting with its limit L unbounded. 0: by at most one SMSS per ACK, RFC 5681 §3.1 (2)'s RECOMMENDED cwnd += min(N, SMSS). RFC 5681 §4.2 asks the receiver to acknowledge every second segment; against one that sends a stretch ACK per window (Linux behind a TUN device) 0 grows cwnd by about one SMSS per round trip in slow start, 1 doubles it. HyStart++ (RFC 9406 §4.2) keeps its own L.",
		func(c *Config) *bool { return &c.Recovery.SlowStartAllBytes }),
	boolSwitch("rto_keep_sack", "1: the SACK scoreboard is kept across a retransmission timeout unless the receiver reneged (SND.UNA itself SACKed), as Linux's tcp_timeout_mark_lost keeps SACKed segments, so going back N resends only the holes. 0: it is cleared (RFC 2018 §8: after a timeout the sender SHOULD turn off its SACKed bits, since the receiver may have reneged), and only the blocks of later ACKs (three or four each) are skipped.",
		func(c *Config) *bool { return &c.Recovery.RTOKeepSACK }),
	boolSwitch("frto", "1: F-RTO (RFC 5682): after an RTO, new data on the first ACK and the second ACK tells a spurious timeout (undone by the Eifel response, RFC 4015) from a genuine one; the SACK-enhanced variant (§3) with SACK, the basic one (§2.1) without. 0: off (RFC 5682 is optional, Experimental). Linux's net.ipv4.tcp_frto, 2 (on).",
		func(c *Config) *bool { return &c.Recovery.FRTO }),
	{Switch{"ecn", "Explicit Congestion Notification (RFC 3168). 1: ask for it on our SYN (ECE, CWR) and grant it to a peer that asks (ECE on the SYN,ACK); then new data goes out ECT(0) and an ECE halves cwnd once per window (§6.1.2). 2: grant it when asked, never ask (Linux's net.ipv4.tcp_ecn and FreeBSD's net.inet.tcp.ecn.enable default). 0: never (RFC 3168 makes ECN optional).", "0"},
		func(c *Config) string {
			switch {
			case !c.Recovery.ECN:
				return "0"
			case c.Recovery.ECNNoRequest:
				return "2"
			}
			return "1"
		},
		func(c *Config, v string) error {
			switch strings.ToLower(strings.TrimSpace(v)) {
			case "0", "off", "false", "no":
				c.Recovery.ECN, c.Recovery.ECNNoRequest = false, false
			case "1", "on", "true", "yes":
				c.Recovery.ECN, c.Recovery.ECNNoRequest = true, false
			case "2":
				c.Recovery.ECN, c.Recovery.ECNNoRequest = true, true
			default:
				return fmt.Errorf("expected 0, 1 or 2, found %q", v)
			}
			return nil
		}},
	intSwitch("ecn_maxretries", "How many retransmissions of an ECN-setup SYN or SYN,ACK still carry the ECN setup; later ones go without, and a SYN,ACK sent so no longer grants ECN (RFC 3168 §6.1.1.1: a host that receives no reply to an ECN-setup SYN MAY resend the SYN and any later ones with CWR and ECE cleared; a middlebox may drop ECN-setup packets). 0 falls back on the first retransmission, as Linux (tcp_ecn_clear_syn); FreeBSD's net.inet.tcp.ecn.maxretries, 1.", 0,
		func(c *Config) *int { return &c.Recovery.ECNMaxRetries }),
}

// sysctlMap is a sysctl that sets a switch, with the change of value it
// needs (nil: none).
type sysctlMap struct {
	name  string
	value func(string) (string, bool)
}

// recoverySysctls maps the loss-recovery sysctls of Linux and FreeBSD to
// switches where the meaning carries over.
var recoverySysctls = map[string]sysctlMap{
	"net.ipv4.tcp_ecn":             {"ecn", nil},
	"net.ipv4.tcp_ecn_fallback":    {"ecn_maxretries", linuxECNFallback},
	"net.ipv4.tcp_frto":            {"frto", nonZero},
	"net.ipv4.tcp_recovery":        {"rack", linuxRecovery},
	"net.ipv4.tcp_early_retrans":   {"tlp", linuxEarlyRetrans},
	"net.ipv4.tcp_rto_min_us":      {"rexmit_min", microseconds},
	"net.inet.tcp.ecn.enable":      {"ecn", nil},
	"net.inet.tcp.ecn.maxretries":  {"ecn_maxretries", nil},
	"net.inet.tcp.cc.algorithm":    {"congestion_control", freebsdCC},
	"net.inet.tcp.sack.enable":     {"sack", nil},
	"net.inet.tcp.do_prr":          {"prr", nil},
	"net.inet.tcp.hystartplusplus": {"hystart", nil},
}

func sysctlInt(v string) (int, bool) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	return n, err == nil
}

// nonZero: any non-zero mode turns the switch on (tcp_frto's 1 and 2).
func nonZero(v string) (string, bool) {
	n, ok := sysctlInt(v)
	return b2s(n != 0), ok
}

// linuxRecovery: net.ipv4.tcp_recovery is a bit mask whose 0x1 is RACK
// loss detection (its other bits tune the reordering window, not modelled).
func linuxRecovery(v string) (string, bool) {
	n, ok := sysctlInt(v)
	return b2s(n&1 != 0), ok
}

// linuxEarlyRetrans: net.ipv4.tcp_early_retrans 3 and 4 enable the tail
// loss probe, 0 to 2 do not.
func linuxEarlyRetrans(v string) (string, bool) {
	n, ok := sysctlInt(v)
	return b2s(n >= 3), ok
}

// linuxECNFallback: net.ipv4.tcp_ecn_fallback 1 (the default) clears ECN
// setup from the first retransmitted SYN; 0 never does, which
// ecn_maxretries approximates with the most SYN retransmissions allowed.
func linuxECNFallback(v string) (string, bool) {
	n, ok := sysctlInt(v)
	if n == 0 {
		return "255", ok
	}
	return "0", ok
}

// microseconds: net.ipv4.tcp_rto_min_us is in µs, the switch in ms.
func microseconds(v string) (string, bool) {
	n, ok := sysctlInt(v)
	return strconv.Itoa(n) + "us", ok && n >= 0
}

// freebsdCC: FreeBSD names Reno "newreno".
func freebsdCC(v string) (string, bool) {
	if v = strings.TrimSpace(v); v == "newreno" {
		return CCReno, true
	}
	return v, true
}

// SysctlSetting maps a sysctl line's name and value to the switch and the
// switch value it sets: SysctlSwitch's names, plus the loss-recovery
// sysctls whose values need translating (net.ipv4.tcp_recovery=1 sets
// rack=1). ok is false when no switch maps the sysctl; a value that cannot
// be translated is passed on as it is, so SetSwitch names it.
func SysctlSetting(sysctl, value string) (sw, v string, ok bool) {
	if m, ok := recoverySysctls[sysctl]; ok {
		if m.value == nil {
			return m.name, value, true
		}
		if t, good := m.value(value); good {
			return m.name, t, true
		}
		return m.name, value, true
	}
	sw, ok = SysctlSwitch(sysctl)
	return sw, value, ok
}
