package script

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/tcpstated/tcpstated/fsm"
)

// Defaults for addresses and ports, as in packetdrill (IPv4 and IPv6
// defaults from packetdrill's config.c) except for the remote port, which
// packetdrill picks at random and tcpstated fixes so that runs repeat.
var (
	DefaultLocalIPv4  = netip.MustParseAddr("192.168.0.1")
	DefaultRemoteIPv4 = netip.MustParseAddr("192.0.2.1")
	DefaultLocalIPv6  = netip.MustParseAddr("2001:db8::1")
	DefaultRemoteIPv6 = netip.MustParseAddr("bd00::1")
)

const (
	DefaultBindPort    = 8080  // --bind_port: the port bind() and listen() use
	DefaultConnectPort = 8080  // --connect_port: the remote port connect() dials
	DefaultRemotePort  = 40000 // the remote port of flow 1 (flow N uses 40000+N-1)
	DefaultLocalPort   = 50000 // the local port of the first unbound connect() (then 50001, ...)
	DefaultTolerance   = 4 * time.Millisecond
)

// header is what a script's --options resolve to.
type header struct {
	ipVersion          string // "ipv4", "ipv6", "ipv4-mapped-ipv6"
	tolerance          time.Duration
	late               time.Duration // Options.LateTolerance on a wall-clock target, added after the window only
	localIP, remoteIP  netip.Addr
	bindPort           uint16
	connectPort        uint16
	remotePort         uint16
	remoteISN          uint32
	remoteISNSet       bool
	cfg                fsm.Config // engine options from the header
	cfgSet             []string   // names of the options that changed cfg
	notes              []string   // per Options entry: "" applied, else why it was ignored
	localSet, remSet   bool
	bindSet, remPrtSet bool
	end                EndRule // --tcpstated_end
	profile            string  // --tcpstated_profile
	md5Secret          string  // --tcp_md5_secret (md5.go)
}

// defaultConfig is the engine configuration a script starts from: the
// engine's documented defaults, with fixed ISNs of 0 so that the absolute
// numbers in the engine's explanations equal the script's relative ones.
func defaultConfig() fsm.Config {
	return fsm.Config{ISNMode: fsm.ISNFixed, FixedISN: 0}
}

type optSpec struct {
	engine bool // changes the engine configuration
	apply  func(h *header, v string) error
}

func boolOpt(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "", "true", "1", "yes", "on":
		return true, nil
	case "false", "0", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("expected true or false, found %q", v)
}

func intOpt(v string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("expected an integer from %d to %d, found %q", lo, hi, v)
	}
	return n, nil
}

func durOpt(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 || d > 24*time.Hour {
		return 0, fmt.Errorf("expected a duration such as 200ms or 30s, found %q", v)
	}
	return d, nil
}

// headerOptions are the options tcpstated honours. Unknown ones are kept
// and reported as ignored.
var headerOptions = map[string]optSpec{
	"ip_version": {apply: func(h *header, v string) error {
		switch v {
		case "ipv4", "ipv6", "ipv4-mapped-ipv6":
			h.ipVersion = v
			return nil
		}
		return fmt.Errorf("expected ipv4, ipv6 or ipv4-mapped-ipv6, found %q", v)
	}},
	"tolerance_usecs": {apply: func(h *header, v string) error {
		n, err := intOpt(v, 0, 60_000_000)
		h.tolerance = time.Duration(n) * time.Microsecond
		return err
	}},
	"local_ip": {apply: func(h *header, v string) (err error) {
		h.localIP, err = netip.ParseAddr(v)
		h.localSet = true
		return err
	}},
	"remote_ip": {apply: func(h *header, v string) (err error) {
		h.remoteIP, err = netip.ParseAddr(v)
		h.remSet = true
		return err
	}},
	"bind_port": {apply: func(h *header, v string) error {
		n, err := intOpt(v, 1, 65535)
		h.bindPort, h.bindSet = uint16(n), true
		return err
	}},
	"connect_port": {apply: func(h *header, v string) error {
		n, err := intOpt(v, 1, 65535)
		h.connectPort = uint16(n)
		return err
	}},
	"mss": {engine: true, apply: func(h *header, v string) error {
		n, err := intOpt(v, 64, 65535)
		h.cfg.MSS = uint16(n)
		return err
	}},
	// tcpstated extensions.
	"tcpstated_profile": {apply: func(h *header, v string) (err error) {
		_, err = profileOS(v)
		h.profile = v
		return err
	}},
	"tcpstated_end": {apply: func(h *header, v string) (err error) {
		h.end, err = ParseEndRule(v)
		return err
	}},
	"tcpstated_remote_port": {apply: func(h *header, v string) error {
		n, err := intOpt(v, 1, 65000)
		h.remotePort, h.remPrtSet = uint16(n), true
		return err
	}},
	"tcpstated_remote_isn": {apply: func(h *header, v string) error {
		n, err := strconv.ParseUint(v, 0, 32)
		if err != nil {
			return fmt.Errorf("expected a 32-bit number, found %q", v)
		}
		h.remoteISN, h.remoteISNSet = uint32(n), true
		return nil
	}},
	"tcpstated_isn": {engine: true, apply: func(h *header, v string) error {
		if v == "random" {
			h.cfg.ISNMode = fsm.ISNRandom
			return nil
		}
		n, err := strconv.ParseUint(v, 0, 32)
		if err != nil {
			return fmt.Errorf("expected random or a 32-bit number, found %q", v)
		}
		h.cfg.ISNMode, h.cfg.FixedISN = fsm.ISNFixed, uint32(n)
		return nil
	}},
	"tcpstated_delayed_ack": {engine: true, apply: func(h *header, v string) error {
		b, err := boolOpt(v)
		h.cfg.NoDelayedAck = !b
		return err
	}},
	"tcpstated_delayed_ack_timeout": {engine: true, apply: func(h *header, v string) (err error) {
		h.cfg.DelayedAckTimeout, err = durOpt(v)
		return err
	}},
	"tcpstated_nagle": {engine: true, apply: func(h *header, v string) error {
		b, err := boolOpt(v)
		h.cfg.NoNagle = !b
		return err
	}},
	"tcpstated_timestamps": {engine: true, apply: func(h *header, v string) error {
		b, err := boolOpt(v)
		h.cfg.NoTimestamps = !b
		return err
	}},
	"tcpstated_sack": {engine: true, apply: func(h *header, v string) error {
		b, err := boolOpt(v)
		h.cfg.NoSACK = !b
		return err
	}},
	"tcpstated_window_scale": {engine: true, apply: func(h *header, v string) error {
		if b, err := boolOpt(v); err == nil && !b {
			h.cfg.WindowScale, h.cfg.NoWindowScale = -1, true
			return nil
		}
		n, err := intOpt(v, 0, 14)
		if err != nil {
			return fmt.Errorf("expected off or a shift from 0 to 14, found %q", v)
		}
		h.cfg.WindowScale = n
		return nil
	}},
	"tcpstated_rcvbuf": {engine: true, apply: func(h *header, v string) (err error) {
		h.cfg.RecvBuffer, err = intOpt(v, 1, 1<<30)
		return err
	}},
	"tcpstated_sndbuf": {engine: true, apply: func(h *header, v string) (err error) {
		h.cfg.SendBuffer, err = intOpt(v, 1, 1<<30)
		return err
	}},
	"tcpstated_syn_queue": {engine: true, apply: func(h *header, v string) (err error) {
		h.cfg.SynQueue, err = intOpt(v, 1, 1<<20)
		return err
	}},
	"tcpstated_accept_queue": {engine: true, apply: func(h *header, v string) (err error) {
		h.cfg.AcceptQueue, err = intOpt(v, 1, 1<<20)
		return err
	}},
	"tcpstated_syn_cookies": {engine: true, apply: func(h *header, v string) (err error) {
		h.cfg.SynCookies, err = boolOpt(v)
		return err
	}},
	"tcpstated_msl": {engine: true, apply: func(h *header, v string) (err error) {
		h.cfg.MSL, err = durOpt(v)
		return err
	}},
	"tcpstated_rto": {engine: true, apply: func(h *header, v string) (err error) {
		h.cfg.InitialRTO, err = durOpt(v)
		return err
	}},
	"tcpstated_min_rto": {engine: true, apply: func(h *header, v string) (err error) {
		h.cfg.MinRTO, err = durOpt(v)
		return err
	}},
	"tcpstated_max_rto": {engine: true, apply: func(h *header, v string) (err error) {
		h.cfg.MaxRTO, err = durOpt(v)
		return err
	}},
	"tcpstated_max_retries": {engine: true, apply: func(h *header, v string) (err error) {
		h.cfg.MaxRetries, err = intOpt(v, 1, 100)
		return err
	}},
	"tcpstated_syn_retries": {engine: true, apply: func(h *header, v string) (err error) {
		h.cfg.SynRetries, err = intOpt(v, 1, 100)
		return err
	}},
	"tcpstated_synack_retries": {engine: true, apply: func(h *header, v string) (err error) {
		h.cfg.SynAckRetries, err = intOpt(v, 1, 100)
		return err
	}},
	"tcpstated_initial_window": {engine: true, apply: func(h *header, v string) (err error) {
		h.cfg.InitialWindow, err = intOpt(v, 1, 1000)
		return err
	}},
}

// ignoredReasons explain some well-known packetdrill options tcpstated
// does not use; any other unknown option is ignored with a generic reason.
var ignoredReasons = map[string]string{
	"tcp_ts_tick_usecs": "TS val is never compared, so the tick is not needed",
	"mtu":               "there is no device: the MSS comes from --mss",
	"speed":             "there is no device",
	"gateway_ip":        "there is no routing",
	"netmask_ip":        "there is no routing",
	"init_scripts":      "shell scripts are not run",
	"non_fatal":         "every failure is reported",
	"verbose":           "the report always lists every line",
	"dry_run":           "scripts always run",
}

// resolveHeader applies the --options to a header. A bad value is a parse
// error at the option.
func (s *Script) resolveHeader() error {
	h := &header{ipVersion: "ipv4", tolerance: DefaultTolerance, bindPort: DefaultBindPort,
		connectPort: DefaultConnectPort, remotePort: DefaultRemotePort, cfg: defaultConfig()}
	seenEngine := map[string]bool{}
	for _, o := range s.Options {
		spec, ok := headerOption(o.Name)
		if !ok {
			why := ignoredReasons[o.Name]
			if why == "" {
				why = "tcpstated has no use for this option"
			}
			h.notes = append(h.notes, "ignored: --"+o.Name+": "+why)
			continue
		}
		if err := spec.apply(h, o.Value); err != nil {
			return &ParseError{Name: s.Name, Pos: Pos{o.Pos.Line, o.Pos.Col + 3 + len(o.Name)}, Msg: "--" + o.Name + ": " + err.Error()}
		}
		if spec.engine && !seenEngine[o.Name] {
			seenEngine[o.Name] = true
			h.cfgSet = append(h.cfgSet, o.Name)
		}
		h.notes = append(h.notes, "")
	}
	v6 := h.ipVersion == "ipv6"
	if !h.localSet {
		h.localIP = DefaultLocalIPv4
		if v6 {
			h.localIP = DefaultLocalIPv6
		}
	}
	if !h.remSet {
		h.remoteIP = DefaultRemoteIPv4
		if v6 {
			h.remoteIP = DefaultRemoteIPv6
		}
	}
	// ipv4-mapped-ipv6: the socket is AF_INET6 but the packets are IPv4.
	h.localIP, h.remoteIP = h.localIP.Unmap(), h.remoteIP.Unmap()
	if h.localIP.Is4() != h.remoteIP.Is4() {
		return &ParseError{Name: s.Name, Pos: Pos{1, 1}, Msg: fmt.Sprintf(
			"local address %s and remote address %s are not of the same family", h.localIP, h.remoteIP)}
	}
	if v6 && h.localIP.Is4() {
		return &ParseError{Name: s.Name, Pos: Pos{1, 1}, Msg: "--ip_version=ipv6 needs IPv6 --local_ip and --remote_ip"}
	}
	if !v6 && !h.localIP.Is4() {
		return &ParseError{Name: s.Name, Pos: Pos{1, 1}, Msg: "--ip_version=" + h.ipVersion + " needs IPv4 --local_ip and --remote_ip"}
	}
	s.hdr = h
	return nil
}
