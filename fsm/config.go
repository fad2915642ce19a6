package fsm

import "time"

// ISNMode selects how initial sequence numbers are chosen.
type ISNMode uint8

const (
	// ISNRandom follows RFC 6528: ISN = M + F(4-tuple, secret), M a 4 µs clock.
	ISNRandom ISNMode = iota
	// ISNFixed uses Config.FixedISN for every connection, so teaching material
	// can use small numbers. It is not safe on a real network (RFC 6528 §1).
	ISNFixed
)

// Config holds an engine's options. The zero value of a field means its
// documented default; see Defaults.
type Config struct {
	// Secret keys the ISN function, SYN cookies and timestamp offsets. Same
	// secret, same inputs: same outputs.
	Secret [16]byte

	// FastOpenClient and FastOpenServer turn on the two roles of TCP Fast
	// Open (RFC 7413; switches fastopen.client_enable and
	// fastopen.server_enable). Off by default: an application still asks
	// per connection (ConnectFastOpen) and per listener
	// (SetListenerFastOpen), as with TCP_FASTOPEN.
	FastOpenClient bool
	FastOpenServer bool

	ISNMode  ISNMode
	FixedISN uint32

	// MSL is the maximum segment lifetime; TIME-WAIT lasts 2·MSL
	// (RFC 9293 §3.4.2, §3.6.1). Default 30 s.
	MSL time.Duration

	// MSS is the largest payload this side accepts, sent in the MSS option
	// (RFC 9293 §3.7.1). Default 1460.
	MSS uint16
	// RecvBuffer bounds data received but not yet read: it is the receive
	// window. Default 65535 bytes.
	RecvBuffer int
	// SendBuffer bounds data written but not yet acknowledged. Default 256 KiB.
	SendBuffer int
	// WindowScale is the shift offered in the window scale option (RFC 7323
	// §2): -1 disables the option, 0..14 offers that shift. The default (0
	// in the struct, see NoWindowScale) offers the smallest shift that
	// covers RecvBuffer.
	WindowScale int
	// NoWindowScale, NoTimestamps and NoSACK turn off offering (and accepting)
	// these options. They are on by default, as in every modern stack.
	NoWindowScale bool
	NoTimestamps  bool
	NoSACK        bool

	// SynQueue limits half-open (SYN-RECEIVED) connections per listener;
	// AcceptQueue is the default accept backlog. Defaults 128 each.
	SynQueue    int
	AcceptQueue int
	// SynCookies answers SYNs with RFC 4987 cookies when the SYN queue is
	// full instead of dropping them.
	SynCookies bool

	// Nagle enables the Nagle algorithm (RFC 9293 §3.7.4). Default on.
	NoNagle bool
	// NoDelayedAck sends an ACK for every segment. Delayed ACKs (RFC 9293
	// §3.8.6.3) are on by default with DelayedAckTimeout.
	NoDelayedAck      bool
	DelayedAckTimeout time.Duration // default 200 ms (must be < 500 ms)

	// InitialWindow is the initial congestion window in segments (RFC 6928
	// allows 10). Default 10.
	InitialWindow int

	// RTO bounds (RFC 6298): initial 1 s, minimum 1 s, maximum 60 s.
	// MinRTO is the minimum RTO option: RFC 6298 §2.4 says an RTO under
	// 1 s SHOULD be rounded up to 1 s (the default); Linux uses 200 ms
	// (TCP_RTO_MIN), which a profile or a session may choose.
	InitialRTO, MinRTO, MaxRTO time.Duration
	// MaxRetries is how many times a data segment or FIN is retransmitted
	// before the connection is aborted (RFC 9293 §3.8.3, R2). Default 15.
	MaxRetries int
	// SynTimeout is R2 for a SYN: how long an active OPEN keeps
	// retransmitting its SYN before the open is given up. RFC 9293 §3.8.3
	// (RFC 1122 §4.2.3.5) says R2 for a SYN MUST allow retransmission for
	// at least 3 minutes, so that is the default; shorter values are the
	// caller's choice (Linux gives up after about 127 s, FreeBSD's
	// connection-establishment timer after 75 s).
	SynTimeout time.Duration
	// SynRetries, when set, also bounds the SYN retransmissions by count
	// (Linux's tcp_syn_retries); 0 leaves SynTimeout alone in charge.
	// SynAckRetries is how many times a listener's SYN,ACK is retransmitted
	// before the half-open connection is dropped. Default 5.
	SynRetries, SynAckRetries int

	// FinWait2Timeout bounds FIN-WAIT-2 after the application has closed
	// (not merely shut down) the connection: a peer that never sends its
	// FIN, or whose RST was lost, would otherwise hold it forever. Linux's
	// tcp_fin_timeout; RFC 9293 sets no limit. Default 60 s.
	FinWait2Timeout time.Duration

	// ChallengeAckLimit bounds the challenge ACKs (RFC 5961 §3.2, §4.2,
	// §5.2) one connection sends per second of the engine clock; beyond it
	// such segments are dropped without reply (RFC 5961 §7). Default 1000;
	// -1 means no limit.
	ChallengeAckLimit int

	// Keep-alive defaults for new endpoints (keepalive.go; RFC 9293 §3.8.4,
	// RFC 1122 §4.2.3.6), each changeable per endpoint with SetKeepAlive.
	// KeepAlive is off by default (MUST); KeepIdle defaults to 2 h (MUST be
	// no less), KeepInterval to 75 s and KeepCount to 9 (Linux's values).
	// KeepInit (FreeBSD's TCP_KEEPINIT) bounds connection establishment;
	// 0, the default, leaves it to SynTimeout and SynAckRetries.
	KeepAlive    bool
	KeepIdle     time.Duration
	KeepInterval time.Duration
	KeepCount    int
	KeepInit     time.Duration

	// Behaviour switches (profile.go): choices the RFCs leave open, each
	// documented there with the RFC text that allows it and settable by
	// name (SetSwitch). The zero value of each is the rfc profile's choice.
	// Profile names the profile last applied ("" is rfc).
	Profile           string
	InsecureRST       bool          // insecure_rst
	InsecureSYN       bool          // insecure_syn
	DropSynFin        bool          // drop_synfin
	OOBNoInline       bool          // oob_inline=0 (oob.go)
	TimeWaitBSD       bool          // tw_bsd
	ClosingFinAck     bool          // closing_fin_ack
	RstClosingReset   bool          // rst_closing_econnreset
	ListenSynAckDrop  bool          // listen_synack_drop
	WndUpdateBSD      bool          // wnd_update_bsd
	SynFinDataDropFin bool          // synfin_data_drop_fin
	AckEverySecond    bool          // ack_every_2nd
	SynRexmitSlop     time.Duration // rexmit_slop
	RcvBufMSSRound    bool          // rcvbuf_mss_round
	SACKDataOnly      bool          // sack_fin=0 (inverted: the switch's 1 is this false)
	TSRecentDup       bool          // ts_recent_dup
	QuickAck          int           // quickack (profile_linux.go)
	DelAckFin         bool          // delack_fin
	RstAck            bool          // rst_ack
	InfoLinux         bool          // info_linux
	SendWaitConnect   bool          // send_wait_connect
	ShutRdEOF         bool          // shutrd_eof: for socket layers; the engine does not read it
	RstErrnoLinux     bool          // rst_errno_linux
	NagleMinshall     bool          // nagle_minshall
	SimOpenDupAck     bool          // simopen_dup_ack (linux_codes.go)
	SynSentBadAckRtx  int           // synsent_badack_rexmit, ms (linux_codes.go)
	SynTextDiscard    bool          // syn_text_discard (linux_codes.go)
	SynLinearTimeouts int           // syn_linear_timeouts (linux_codes.go)
	InvalidRateLimit  int           // invalid_ratelimit, ms (linux_codes.go)
	ZWPBareAck        bool          // zwp_bare_ack (linux_codes.go)
	RcvBeyondWindow   bool          // rcv_beyond_window (linux_codes.go)
	SynRcvdSynReset   bool          // synrcvd_syn_reset (linux_codes.go)
	AcceptQLinux      bool          // acceptq_linux (linux_codes.go)
	SynQBacklog       bool          // synq_backlog (linux_codes.go)
	RcvMem            [3]int        // tcp_rmem: min, default, max (rcvwnd_linux.go)

	// RecvBufferLocked: the application chose RecvBuffer (SO_RCVBUF, see
	// SetRecvBufferOption); under tcp_rmem the window scale then follows it.
	RecvBufferLocked bool

	// HopLimit is the IPv4 TTL and IPv6 hop limit of every segment sent
	// (RFC 9293 §3.9.2: MUST be configurable, MUST-49). Default 64.
	HopLimit uint8

	// RetainClosed is how many CLOSED endpoints stay visible to Endpoint()
	// before the oldest is forgotten. Default 1024; -1 forgets at once.
	RetainClosed int
	// MaxEndpoints bounds live endpoints; 0 means unlimited.
	MaxEndpoints int

	// Recovery selects loss recovery and congestion control
	// (recovery_config.go).
	Recovery Recovery

	// ICMP behaviour switches (profile.go, icmp.go).
	ICMPNoReset bool // icmp_may_rst (inverted: the switch's 1 is this false)
	ICMPHardBSD bool // icmp_hard_bsd
	PMTUSynMSS  bool // pmtu_syn_mss
	// ICMPSynRcvdBSD is icmp_synrcvd_bsd (icmp_synrcvd.go).
	ICMPSynRcvdBSD bool
}

// Defaults returns c with every zero field replaced by its default.
func (c Config) Defaults() Config {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.MSL, 30*time.Second)
	if c.MSS == 0 {
		c.MSS = 1460
	}
	if c.rcvMemLinux() {
		defInt(&c.RecvBuffer, c.RcvMem[1])
	}
	defInt(&c.RecvBuffer, 65535)
	defInt(&c.SendBuffer, 256<<10)
	defInt(&c.SynQueue, 128)
	defInt(&c.AcceptQueue, 128)
	def(&c.DelayedAckTimeout, 200*time.Millisecond)
	def(&c.FinWait2Timeout, 60*time.Second)
	if c.DelayedAckTimeout >= 500*time.Millisecond {
		c.DelayedAckTimeout = 499 * time.Millisecond // RFC 9293 §3.8.6.3 MUST-40
	}
	defInt(&c.InitialWindow, 10)
	def(&c.InitialRTO, time.Second)
	def(&c.MinRTO, time.Second)
	def(&c.MaxRTO, 60*time.Second)
	defInt(&c.MaxRetries, 15)
	def(&c.SynTimeout, 3*time.Minute)
	def(&c.KeepIdle, 2*time.Hour)
	def(&c.KeepInterval, 75*time.Second)
	defInt(&c.KeepCount, 9)
	c.KeepInit = max(c.KeepInit, 0)
	defInt(&c.SynAckRetries, 5)
	if c.ChallengeAckLimit == 0 {
		c.ChallengeAckLimit = 1000
	}
	if c.HopLimit == 0 {
		c.HopLimit = ipHopLimit
	}
	c.Recovery.CongestionControl = c.Recovery.congestionControl()
	if c.RetainClosed == 0 {
		c.RetainClosed = 1024
	}
	if c.WindowScale < 0 {
		c.NoWindowScale = true
	}
	if !c.NoWindowScale && c.WindowScale == 0 && c.rcvMemLinux() {
		c.WindowScale = linuxWindowScale(&c)
	} else if !c.NoWindowScale && c.WindowScale == 0 {
		for c.RecvBuffer>>c.WindowScale > 65535 && c.WindowScale < 14 {
			c.WindowScale++
		}
	}
	if c.WindowScale > 14 {
		c.WindowScale = 14
	}
	return c
}
