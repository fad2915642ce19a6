package fsm

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Behaviour profiles (DESIGN.md §7). Where the RFCs leave a choice open,
// the engine makes it through a named switch: a Config field listed in
// switches below with the RFC text that allows each value. A profile is a
// named set of switch values: "rfc" (the default: what the RFCs require
// and recommend), "freebsd" (FreeBSD 14's defaults) and "linux" (Linux
// 6.x's defaults, profile_linux.go). Every explanation the engine gives because a switch is off its
// rfc value names the switch. A profile never changes what the RFCs
// require, except where a real stack breaks a MUST, and then only as a
// named, documented switch (always_keepalive).
//
// Switch names follow FreeBSD's sysctl leaf names where FreeBSD has one,
// so a script's `sysctl -w net.inet.tcp.NAME=V` maps to SetSwitch(NAME, V)
// (see SysctlSwitch). Durations given as a bare integer are milliseconds,
// as in those sysctls; "1.5s" and the like also work.

// Switch describes one behaviour switch.
type Switch struct {
	Name string
	// Doc says what the switch does and which RFC text allows each value.
	Doc string
	// RFC is the switch's value under the rfc profile.
	RFC string
}

type switchSpec struct {
	Switch
	get func(*Config) string
	set func(*Config, string) error
}

func boolSwitch(name, doc string, field func(*Config) *bool) switchSpec {
	return switchSpec{Switch{name, doc, "0"},
		func(c *Config) string { return b2s(*field(c)) },
		func(c *Config, v string) error {
			b, err := parseSwitchBool(v)
			if err == nil {
				*field(c) = b
			}
			return err
		}}
}

func durSwitch(name, doc string, rfc time.Duration, field func(*Config) *time.Duration) switchSpec {
	return switchSpec{Switch{name, doc, fmtMS(rfc)},
		func(c *Config) string { return fmtMS(*field(c)) },
		func(c *Config, v string) error {
			d, err := parseSwitchDuration(v)
			if err == nil {
				*field(c) = d
			}
			return err
		}}
}

func intSwitch(name, doc string, rfc int, field func(*Config) *int) switchSpec {
	return switchSpec{Switch{name, doc, strconv.Itoa(rfc)},
		func(c *Config) string { return strconv.Itoa(*field(c)) },
		func(c *Config, v string) error {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 0 {
				return fmt.Errorf("expected a count, found %q", v)
			}
			*field(c) = n
			return nil
		}}
}

func b2s(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func fmtMS(d time.Duration) string {
	if d%time.Millisecond == 0 {
		return strconv.FormatInt(int64(d/time.Millisecond), 10)
	}
	return d.String()
}

func parseSwitchBool(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "true", "on", "yes":
		return true, nil
	case "0", "false", "off", "no":
		return false, nil
	}
	return false, fmt.Errorf("expected 0 or 1, found %q", v)
}

func parseSwitchDuration(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 && n <= int64(24*time.Hour/time.Millisecond) {
		return time.Duration(n) * time.Millisecond, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > 24*time.Hour {
		return 0, fmt.Errorf("expected milliseconds or a duration up to 24h, found %q", v)
	}
	return d, nil
}

// switches is the table of every switch, in documentation order.
var switches = []switchSpec{
	boolSwitch("insecure_rst", "1: a RST anywhere in the receive window resets the connection, RFC 793's rule. 0: only a RST with SEG.SEQ = RCV.NXT does; one elsewhere in the window gets a challenge ACK (RFC 5961 §3.2; RFC 9293 §3.10.7.4 second step says implementations SHOULD follow RFC 5961). FreeBSD's net.inet.tcp.insecure_rst, 0 by default.",
		func(c *Config) *bool { return &c.InsecureRST }),
	boolSwitch("insecure_syn", "1: a SYN in the window of a synchronized connection resets it (RFC 793's rule: an error, send a reset). 0: it gets a challenge ACK (RFC 5961 §4.2, recommended by RFC 9293 §3.10.7.4 fourth step). FreeBSD's net.inet.tcp.insecure_syn, 0 by default.",
		func(c *Config) *bool { return &c.InsecureSYN }),
	boolSwitch("drop_synfin", "1: every segment with both SYN and FIN set is dropped without reply. 0: a SYN,FIN is processed as RFC 9293 says (the FIN is queued like other control on a SYN, §3.10.7.2 third check, §3.10.7.3 fourth). FreeBSD's net.inet.tcp.drop_synfin, 0 by default.",
		func(c *Config) *bool { return &c.DropSynFin }),
	boolSwitch("tw_bsd", "1: TIME-WAIT follows BSD's tcp_twcheck: a RST is ignored (RFC 1337 §3, TIME-WAIT assassination), a segment without ACK is dropped silently (so a SYN at or below RCV.NXT gets no reply), a SYN above RCV.NXT reopens the connection (RFC 9293 §3.6.1 MAY-2), only an exact repeat of the peer's FIN restarts 2·MSL, and every segment but an exact duplicate ACK is answered with an ACK. 0: RFC 9293 §3.10.7.4 step by step, with RFC 6191's timestamp test for a reopening SYN.",
		func(c *Config) *bool { return &c.TimeWaitBSD }),
	boolSwitch("closing_fin_ack", "1: in CLOSING an ACK we owe for an acceptable segment is sent as a retransmission of our FIN (<SEQ=FIN><CTL=FIN,ACK>), as BSD's tcp_output does while the FIN is unacknowledged; challenge ACKs and answers to unacceptable segments stay bare (their ACK field is not processed, and two CLOSING peers trading FINs would never stop). 0: a bare <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> (RFC 9293 §3.10.7.4). Either tells the peer the same RCV.NXT.",
		func(c *Config) *bool { return &c.ClosingFinAck }),
	boolSwitch("rst_closing_econnreset", "1: a RST in CLOSING or LAST-ACK leaves the error \"connection reset\" (SO_ERROR ECONNRESET), as FreeBSD does. 0: RFC 9293 §3.10.7.4 second step: enter CLOSED, delete the TCB and return, with no error for the user (the close was already under way).",
		func(c *Config) *bool { return &c.RstClosingReset }),
	boolSwitch("listen_synack_drop", "1: a SYN,ACK arriving at a listener is dropped without reply, as FreeBSD does. 0: RFC 9293 §3.10.7.2 second check: any acknowledgment is bad in LISTEN, so <SEQ=SEG.ACK><CTL=RST> is sent.",
		func(c *Config) *bool { return &c.ListenSynAckDrop }),
	boolSwitch("wnd_update_bsd", "1: after the application reads, a window update is sent once the window can open by at least 2·MSS and by a quarter of the receive buffer (or by half of it), as FreeBSD's tcp_output does. 0: once the window can open by the receiver's silly-window threshold, min(RCV.BUFF/2, MSS) (RFC 9293 §3.8.6.2.2, MUST-39), and at least double, so that a reading application does not send an ACK per read. Either only sends what SWS avoidance allows.",
		func(c *Config) *bool { return &c.WndUpdateBSD }),
	boolSwitch("synfin_data_drop_fin", "1: in SYN-SENT, the FIN of a SYN,FIN that carries data is dropped and the data kept, as FreeBSD does (the peer repeats the FIN). 0: the FIN is queued with the text and processed once the connection is ESTABLISHED (RFC 9293 §3.10.7.3 fourth check).",
		func(c *Config) *bool { return &c.SynFinDataDropFin }),
	boolSwitch("ack_every_2nd", "1: with delayed ACKs, an ACK is sent for every second data segment whatever its size, as FreeBSD does. 0: for every second full-sized segment's worth of data, 2·MSS bytes (RFC 9293 §3.8.6.3: an ACK SHOULD be generated for at least every second full-sized segment; RFC 5681 §4.2).",
		func(c *Config) *bool { return &c.AckEverySecond }),
	boolSwitch("rcvbuf_mss_round", "1: the receive buffer is rounded up to a multiple of the MSS once it is known (65535 or 65536 becomes 65700 for an MSS of 1460), as FreeBSD's tcp_mss does, and the acceptance test uses all of it even when the 16-bit window field can only say 65535. RFC 9293 §3.10.7.4 judges acceptability against RCV.WND, which the receiver sets (§3.8.6: the window is the receiver's to choose; accepting more than was offered is allowed, shrinking is not). 0: RCV.WND is exactly what was advertised.",
		func(c *Config) *bool { return &c.RcvBufMSSRound }),
	boolSwitch("always_keepalive", "1: keep-alive is on for every connection, as FreeBSD's net.inet.tcp.always_keepalive (1 there) makes it. This breaks RFC 1122 §4.2.3.6 (keep-alive MUST default to off; RFC 9293 §3.8.4), so it is a switch, never the rfc default. 0: off unless the application turns it on (SO_KEEPALIVE, Engine.SetKeepAlive).",
		func(c *Config) *bool { return &c.KeepAlive }),
	{Switch{"icmp_may_rst", "1: an ICMP hard error (protocol or port unreachable; more under icmp_hard_bsd) whose quoted sequence number is in flight aborts a connection in SYN-SENT (RFC 1122 §4.2.3.9, RFC 9293 §3.9.2.2 SHLD-26: TCP SHOULD abort). 0: it is recorded as a soft error only. FreeBSD's net.inet.tcp.icmp_may_rst, 1 by default.", "1"},
		func(c *Config) string { return b2s(!c.ICMPNoReset) },
		func(c *Config, v string) error {
			b, err := parseSwitchBool(v)
			if err == nil {
				c.ICMPNoReset = !b
			}
			return err
		}},
	boolSwitch("icmp_hard_bsd", "1: administratively prohibited (ICMP codes 9, 10, 13; ICMPv6 code 1) and time exceeded in transit count as hard errors, as FreeBSD's tcp_ctlinput makes them (PRC_UNREACH_ADMIN_PROHIB, PRC_TIMXCEED_INTRANS). 0: they are soft errors, as RFC 1122 §4.2.3.9 lists time exceeded and leaves the prohibited codes (added by RFC 1812 §5.2.7.1) unclassified; RFC 5927 §4.1's sequence check applies either way.",
		func(c *Config) *bool { return &c.ICMPHardBSD }),
	boolSwitch("pmtu_syn_mss", "1: a Packet Too Big (ICMPv6) in SYN-SENT also lowers the MSS option of the retransmitted SYN to the path MTU less 60, as FreeBSD's host cache does (it ignores an IPv4 fragmentation needed in SYN-SENT). 0: the MSS option stays what the receive side can take (RFC 9293 §3.7.1); the path MTU caps only what we send.",
		func(c *Config) *bool { return &c.PMTUSynMSS }),
	negBoolSwitch("sack_fin", "1: a FIN held above RCV.NXT is inside the SACK blocks: the block of the text before it ends one past it, and a FIN that arrives alone is a block of one sequence number, as Linux reports it (the FIN occupies sequence space, RFC 9293 §3.4, and is held with the text). 0: the blocks cover text only, as FreeBSD's tcp_update_sack_list does (RFC 2018 §3 speaks of blocks of data). With 0, a sender whose scoreboard needs the FIN's sequence number sacked (Linux, which cannot split a last segment shorter than the MSS from its FIN) resends the last segment although it arrived.",
		func(c *Config) *bool { return &c.SACKDataOnly }),
	boolSwitch("ts_recent_dup", "1: a duplicate segment that starts at or before the last ACK sent and ends at or after it (Linux's rcv_wup) copies its TSval into TS.Recent, as Linux's tcp_sequence and tcp_replace_ts_recent let it; the ACK it gets echoes that TSval. 0: only an acceptable segment updates TS.Recent (RFC 7323 §4.3; §5.3 drops an unacceptable one, R2, before recording, R3). With 1, a retransmission that overtakes the segments before it on a reordering path makes them fail PAWS when they arrive (RFC 7323 §5), as they do at a Linux receiver.",
		func(c *Config) *bool { return &c.TSRecentDup }),
	durSwitch("rexmit_initial", "The RTO of the first SYN and of data before an RTT sample, in ms. RFC 6298 §2.1: 1 s (SHOULD). FreeBSD's net.inet.tcp.rexmit_initial, 1000.", time.Second,
		func(c *Config) *time.Duration { return &c.InitialRTO }),
	durSwitch("rexmit_slop", "Added to every backed-off SYN retransmission timeout, in ms: FreeBSD's net.inet.tcp.rexmit_slop (200) pads each RTO for timer granularity, so its SYNs follow at 1, 2.2, 4.2, ... s. RFC 6298 §5.5 doubles the RTO and allows any larger value (a conservative timer is always allowed, §5); 0 adds nothing.", 0,
		func(c *Config) *time.Duration { return &c.SynRexmitSlop }),
	durSwitch("rexmit_min", "The lowest RTO, in ms. RFC 6298 §2.4: whenever RTO is computed, if it is less than 1 second it SHOULD be rounded up to 1 second. FreeBSD's net.inet.tcp.rexmit_min, 30.", time.Second,
		func(c *Config) *time.Duration { return &c.MinRTO }),
	durSwitch("rexmit_max", "The highest RTO, in ms. RFC 6298 §2.5: a maximum value MAY be placed on RTO provided it is at least 60 seconds. FreeBSD caps at 64 s (TCPTV_REXMTMAX).", 60*time.Second,
		func(c *Config) *time.Duration { return &c.MaxRTO }),
	intSwitch("syn_retries", "The most SYN retransmissions before the open is given up; 0 leaves it to syn_timeout. RFC 9293 §3.8.3: R2 for a SYN MUST allow at least 3 minutes. FreeBSD allows 12 (TCP_MAXRXTSHIFT) and bounds the open with keepinit instead.", 0,
		func(c *Config) *int { return &c.SynRetries }),
	durSwitch("syn_timeout", "R2 for a SYN, in ms: how long an open keeps retransmitting its SYN (RFC 9293 §3.8.3, RFC 1122 §4.2.3.5: at least 3 minutes, MUST).", 3*time.Minute,
		func(c *Config) *time.Duration { return &c.SynTimeout }),
	durSwitch("keepinit", "The limit on connection establishment (SYN-SENT, SYN-RECEIVED), in ms; 0 none. FreeBSD's net.inet.tcp.keepinit (75000) and TCP_KEEPINIT: shorter than RFC 9293 §3.8.3's 3 minutes for a SYN, which the application may choose (\"the application can close the connection\").", 0,
		func(c *Config) *time.Duration { return &c.KeepInit }),
	durSwitch("keepidle", "Idle time before the first keep-alive probe, in ms. RFC 1122 §4.2.3.6: MUST default to no less than two hours.", 2*time.Hour,
		func(c *Config) *time.Duration { return &c.KeepIdle }),
	durSwitch("keepintvl", "Time between unanswered keep-alive probes, in ms (RFC 1122 §4.2.3.6 leaves it open). Linux and FreeBSD: 75 s.", 75*time.Second,
		func(c *Config) *time.Duration { return &c.KeepInterval }),
	intSwitch("keepcnt", "Unanswered keep-alive probes before the connection is aborted (RFC 1122 §4.2.3.6 leaves it open). Linux 9, FreeBSD 8.", 9,
		func(c *Config) *int { return &c.KeepCount }),
	durSwitch("delacktime", "The delayed-ACK timeout, in ms. RFC 9293 §3.8.6.3: MUST be less than 0.5 s. Linux about 40 ms at least, FreeBSD 40 ms (TCPTV_DELACK).", 200*time.Millisecond,
		func(c *Config) *time.Duration { return &c.DelayedAckTimeout }),
	durSwitch("msl", "The maximum segment lifetime, in ms; TIME-WAIT lasts 2·MSL (RFC 9293 §3.4.2 takes 2 minutes \"for engineering purposes\"; Linux and FreeBSD use 30 s).", 30*time.Second,
		func(c *Config) *time.Duration { return &c.MSL }),
}

func lookupSwitch(name string) *switchSpec {
	for i := range switches {
		if switches[i].Name == name {
			return &switches[i]
		}
	}
	return nil
}

// Switches lists every behaviour switch, in documentation order.
func Switches() []Switch {
	out := make([]Switch, len(switches))
	for i, s := range switches {
		out[i] = s.Switch
	}
	return out
}

// SetSwitch sets one behaviour switch by name ("insecure_rst", "1"). The
// error names what was wrong; c is unchanged then.
func (c *Config) SetSwitch(name, value string) error {
	s := lookupSwitch(name)
	if s == nil {
		return fmt.Errorf("unknown behaviour switch %q", name)
	}
	if err := s.set(c, value); err != nil {
		return fmt.Errorf("switch %s: %w", name, err)
	}
	return nil
}

// Switch returns a switch's current value, as SetSwitch takes it.
func (c *Config) Switch(name string) (string, bool) {
	s := lookupSwitch(name)
	if s == nil {
		return "", false
	}
	return s.get(c), true
}

// SysctlSwitch maps a FreeBSD sysctl name (net.inet.tcp.insecure_rst) to
// the switch it sets, if there is one.
// Linux's net.ipv4.tcp_* sysctls map too where the value needs no unit
// change (net.ipv4.tcp_syn_retries sets syn_retries).
func SysctlSwitch(sysctl string) (string, bool) {
	if m, ok := recoverySysctls[sysctl]; ok { // profile_recovery.go
		return m.name, true
	}
	if name, ok := linuxSysctls[sysctl]; ok {
		return name, true
	}
	name, ok := strings.CutPrefix(sysctl, "net.inet.tcp.")
	if !ok || lookupSwitch(name) == nil {
		return "", false
	}
	return name, true
}

// Profile is a named set of switch values.
type Profile struct {
	Name     string
	Doc      string
	Settings [][2]string // switch name, value; switches not named keep their rfc value
}

// Apply sets the profile's switches in c and records its name.
func (p Profile) Apply(c *Config) error {
	for _, kv := range p.Settings {
		if err := c.SetSwitch(kv[0], kv[1]); err != nil {
			return fmt.Errorf("profile %s: %w", p.Name, err)
		}
	}
	c.Profile = p.Name
	return nil
}

var profiles = []Profile{
	{Name: "rfc", Doc: "what the RFCs require and, where they leave a choice, what they recommend (the engine's defaults)"},
	{Name: "freebsd", Doc: "FreeBSD 14's default choices, as its TCP test suite expects them", Settings: [][2]string{
		{"tw_bsd", "1"},
		{"closing_fin_ack", "1"},
		{"rst_closing_econnreset", "1"},
		{"listen_synack_drop", "1"},
		{"synfin_data_drop_fin", "1"},
		{"wnd_update_bsd", "1"},
		{"ack_every_2nd", "1"},
		{"rcvbuf_mss_round", "1"},
		{"icmp_hard_bsd", "1"},
		{"pmtu_syn_mss", "1"},
		{"sack_fin", "0"},
		{"icmp_synrcvd_bsd", "1"},
		{"always_keepalive", "1"},
		{"rexmit_initial", "1000"},
		{"rexmit_slop", "200"},
		{"rexmit_min", "30"},
		{"rexmit_max", "64000"},
		{"syn_retries", "12"},
		{"keepinit", "75000"},
		{"keepidle", "7200000"},
		{"keepintvl", "75000"},
		{"keepcnt", "8"},
		{"delacktime", "40"},
		{"msl", "30000"},
		{"fastopen.client_enable", "1"},
		{"oob_inline", "0"},
		{"ecn", "2"},
		{"ecn_maxretries", "1"},
	}},
	{Name: "linux", Doc: "Linux 6.x's default choices, as the kernel makes them under script run --target=linux", Settings: [][2]string{
		{"ts_recent_dup", "1"},
		{"quickack", "16"},
		{"oob_inline", "0"},
		{"delacktime", "40"},
		{"rst_ack", "1"},
		{"rst_closing_econnreset", "1"},
		{"info_linux", "1"},
		{"send_wait_connect", "1"},
		{"shutrd_eof", "1"},
		{"tcp_rmem", "4096 131072 6291456"},
		{"nagle_minshall", "1"},
		{"simopen_dup_ack", "1"},
		{"synsent_badack_rexmit", "8"},
		{"syn_text_discard", "1"},
		{"syn_linear_timeouts", "4"},
		{"invalid_ratelimit", "500"},
		{"zwp_bare_ack", "1"},
		{"rcv_beyond_window", "1"},
		{"synrcvd_syn_reset", "1"},
		{"acceptq_linux", "1"},
		{"synq_backlog", "1"},
		{"syn_cookies", "1"},
		{"rst_errno_linux", "1"},
		{"rexmit_initial", "1000"},
		{"rexmit_min", "200"},
		{"rexmit_max", "120000"},
		{"syn_retries", "6"},
		{"synack_retries", "5"},
		{"challenge_ack_limit", "2147483647"},
		{"initcwnd", "10"},
		{"window_scaling", "1"},
		{"sack", "1"},
		{"timestamps", "1"},
		{"rack", "1"},
		{"tlp", "1"},
		{"hystart", "1"},
		{"ss_all_bytes", "1"},
		{"rto_keep_sack", "1"},
		{"congestion_control", "cubic"},
		{"frto", "1"},
		{"ecn", "2"},
		{"keepidle", "7200000"},
		{"keepintvl", "75000"},
		{"keepcnt", "9"},
		{"msl", "30000"},
	}},
}

// Profiles lists the profiles by name.
func Profiles() []Profile {
	out := append([]Profile(nil), profiles...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ProfileByName finds a profile ("rfc", "freebsd"). The empty name is rfc.
func ProfileByName(name string) (Profile, bool) {
	if name == "" {
		name = "rfc"
	}
	for _, p := range profiles {
		if p.Name == name {
			return p, true
		}
	}
	return Profile{}, false
}
