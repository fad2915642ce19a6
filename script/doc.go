// Package script runs packetdrill scripts against the tcpstated engine on
// a virtual clock and reports, line by line, what was expected, what the
// engine did, and why a line failed.
//
// Read packetdrill's own documentation for the language; this package
// follows it, with the differences listed below. A script is a header of
// --name=value options, then timed lines:
//
//	--tolerance_usecs=10000
//	// compare: strict
//	0     socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
//	+0    bind(3, ..., ...) = 0
//	+0    listen(3, 1) = 0
//	0.100 < S 0:0(0) win 65535 <mss 1460,sackOK,nop,nop,nop,wscale 7>
//	+0    > S. 0:0(0) ack 1 <...>
//	0.200 < . 1:1(0) ack 1 win 257
//	+0    accept(3, ..., ...) = 4
//	+0    getsockopt(4, SOL_TCP, TCP_INFO, {tcpi_state=TCP_ESTABLISHED, ...}, [...]) = 0
//
// # Parsing
//
// Parse accepts // and /* */ comments; header options (unknown ones are
// kept and reported as ignored); times "0.100" (absolute), "+0.1"
// (relative to the previous line), "A~B" (a range), "*" (any time) and
// "A...B" (a system call that blocks from A until it returns at B; B is
// relative to A when either is written with "+"); inbound "<" and expected
// outbound ">" packets with flags (F S R P . U E W, or - for none),
// start:end(len), ack, win, urg and an option list (nop, eol, mss,
// wscale, sackOK, sack A:B..., TS val V ecr E, or <...> on > lines for
// "any options"); system calls "name(args) = result [ERRNO] [(note)]"
// whose arguments are numbers, symbols, A|B, "strings", [arrays],
// {struct literals with ...}, calls such as htons(8080), and "...".
// Backquoted shell commands and %{ python }% blocks parse into Skip events:
// the report lists them as skipped. A "// compare: strict" or
// "// compare: semantic" comment before the first event declares the
// script's comparison mode. Errors say line:column and what was expected.
//
// # Running
//
// What a script runs against is a target.Target (package script/target,
// which documents the contract: the target owns its clock, its
// descriptors, blocking and errno values; the runner owns the flows,
// addresses and judging). RunTarget runs on any target. The engine target
// (package script/enginetarget) is tcpstated's engine on a virtual clock
// with Linux's socket layer played over it, as described below: Run builds
// a fresh fsm.Engine from the script (EngineConfig) and runs it; RunOn and
// RunScript run on an engine the caller built, such as a service session
// that logs every call, through the Engine interface (exactly the methods
// of *fsm.Engine the engine target needs).
//
// Time: script time 0 is the target's clock when the run starts. Before a
// line runs, the engine clock is advanced to the line's time, timer by
// timer, so every emitted packet carries the time it was sent. Relative
// times count from the previous line's time; for a "*" or ranged > line,
// from when the matched packet was emitted.
//
// Outbound packets: everything the engine emits joins a queue. A > line
// takes the first packet of the queue, advancing the clock timer by timer
// until one is emitted or the line's window closes (its time plus or minus
// the tolerance, 4 ms by default as in packetdrill, or --tolerance_usecs).
// A packet emitted before the window, or one that differs from the line,
// fails the line; so an unexpected packet fails the next > line, or, if
// none follows, the end of the script (a report line numbered 0, "(end of
// script)"). A run stops at its first failure; later lines are listed as
// not run.
//
// Addresses: the engine is the local side, packetdrill's defaults
// 192.168.0.1 (2001:db8::1 for --ip_version=ipv6) and the runner plays
// the remote peer, 192.0.2.1 (bd00::1). bind() and listen() use
// --bind_port (8080); connect() dials --connect_port (8080) from the bound
// port or from 50000, 50001, ... . Packets belong to a flow: flow 1 is the
// first connect(), or else the remote port 40000 dialing the listening
// port. tcpstated extends the syntax with "< [flow N] ..." and
// "> [flow N] ..." for further connections (a listener's flow N comes from
// port 40000+N-1; further connect() calls take the next flow numbers).
// Without a [flow N], a packet belongs to flow 1.
//
// Sequence numbers are relative, as in packetdrill: inbound seq to the
// peer's ISN (0 unless Options.RemoteISN or --tcpstated_remote_isn say
// otherwise), inbound ack and SACK blocks to the engine's ISN, learned
// from the engine's SYN or SYN,ACK on that flow (and learned again if the
// engine sends a new SYN, for instance when a SYN reopens a connection from
// TIME-WAIT); expected outbound seq to the engine's ISN, ack and SACK
// blocks to the peer's. Scripts run by Run use fixed ISNs of 0 on both
// sides, so the absolute numbers in the engine's explanations equal the
// script's.
//
// Timestamps: an inbound "TS val V ecr E" sends V as written. E is 0 if
// written 0; if E is the val written on an earlier > line of the flow, the
// TSval the engine really sent on that packet; otherwise the most recent
// TSval the engine sent on the flow (if any). On > lines the TS val is not
// compared (packetdrill does not either without --tcp_ts_tick_usecs); the
// ecr is, in strict mode.
//
// Comparison: Strict judges every field packetdrill compares: all flags
// (PSH, URG, ECE and CWR included), seq, payload length, ack, the window
// field and urgent pointer when written, and the option list in order (none
// when no list is written, anything for <...>). Semantic judges the SYN,
// ACK, FIN and RST flags, seq, ack and payload length; the rest, and the
// values of SO_RCVBUF and SO_SNDBUF read with getsockopt, are reported as
// notes ("not judged: ...") but do not fail the line. Options.Compare
// chooses; CompareAuto takes the script's directive, else semantic.
//
// # System calls
//
// The engine target plays Linux's socket layer over the engine: file
// descriptors from 3 (lowest free first), blocking, and a connection's
// error reported once, as Linux clears sk_err. socket() allocates a
// descriptor only; bind() records the port; listen(fd, N) opens an engine listener whose
// accept queue holds N connections (N < 1 is taken as 1); accept() takes
// one (a new descriptor); connect() opens a connection and returns -1
// EINPROGRESS on a non-blocking socket (fcntl F_SETFL O_NONBLOCK); a
// repeated connect() says EALREADY, 0 once, then EISCONN.
// write/send and read/recv call Send and Receive with the length given;
// shutdown(SHUT_WR or SHUT_RDWR) is CLOSE (SHUT_RD does nothing, or under
// switch shutrd_eof, as Linux, makes reads of an empty queue end of file); close()
// is the engine's Close, or Abort when SO_LINGER {onoff=1, linger=0} was
// set. Errors map to Linux errnos: "connection reset" ECONNRESET,
// "connection refused" ECONNREFUSED, "connection aborted due to user
// timeout" ETIMEDOUT, "connection closing" EPIPE on write and end of file
// on read, a full send buffer or empty accept queue EAGAIN.
//
// A call that would block (accept with nothing to accept, read with
// nothing to read, a blocking connect, write with a full send buffer)
// completes at once if the engine can complete it at that time. Since the
// clock moves only with the script, a blocking call written with a single
// time that cannot complete fails ("would block"); written "A...B call"
// it starts at A, the lines between run, and it must return at B within
// the tolerance.
//
// getsockopt: SO_ERROR reads the connection's pending error (ECONNREFUSED,
// ECONNRESET, ETIMEDOUT, or 0); TCP_INFO compares tcpi_state (the RFC 9293
// states mapped to Linux's TCP_ESTABLISHED, TCP_SYN_SENT, TCP_SYN_RECV,
// TCP_FIN_WAIT1, TCP_FIN_WAIT2, TCP_TIME_WAIT, TCP_CLOSE, TCP_CLOSE_WAIT,
// TCP_LAST_ACK, TCP_LISTEN, TCP_CLOSING), tcpi_snd_mss, tcpi_rcv_mss
// (tcpi_advmss), tcpi_snd_wscale, tcpi_rcv_wscale and tcpi_rto; other
// fields are noted as not judged. SO_RCVBUF, SO_SNDBUF and TCP_NODELAY read
// the engine's configuration.
//
// Engine configuration is fixed for an engine's lifetime, so
// EngineConfig builds it before the run from --mss, the --tcpstated_*
// options below, and the setsockopt SO_RCVBUF (the receive buffer, hence
// the window: the value is taken as is, not doubled as Linux does),
// SO_SNDBUF and TCP_NODELAY calls that come before the first listen(),
// connect() or inbound packet. Later ones return 0 and are noted as not
// judged. SO_REUSEADDR, SO_REUSEPORT and SO_KEEPALIVE return 0 and have no
// effect.
//
// tcpstated's own header options (durations are Go durations, "200ms"):
//
//	--tcpstated_delayed_ack=false       acknowledge every segment at once (Linux's quick ACKs)
//	--tcpstated_delayed_ack_timeout=D   delayed-ACK timer (default 200ms)
//	--tcpstated_nagle=false             Nagle's algorithm off
//	--tcpstated_timestamps=false        do not offer or accept timestamps
//	--tcpstated_sack=false              do not offer or accept SACK
//	--tcpstated_window_scale=off|N      no window scaling, or offer shift N
//	--tcpstated_rcvbuf=N, _sndbuf=N     receive and send buffers
//	--tcpstated_syn_queue=N             SYN (half-open) queue limit per listener
//	--tcpstated_accept_queue=N          default accept backlog
//	--tcpstated_syn_cookies=true        answer SYNs with cookies when the SYN queue is full
//	--tcpstated_msl=D                   maximum segment lifetime; TIME-WAIT lasts 2*MSL (default 30s)
//	--tcpstated_rto=D, _min_rto=D, _max_rto=D  retransmission timeout bounds (1s, 1s, 60s)
//	--tcpstated_max_retries=N           data/FIN retransmissions before giving up (15)
//	--tcpstated_syn_retries=N, _synack_retries=N  SYN and SYN,ACK retransmissions (6, 5)
//	--tcpstated_initial_window=N        initial congestion window in segments (10)
//	--tcpstated_isn=random|N            the engine's ISNs (default fixed 0)
//	--tcpstated_remote_isn=N            the peer's ISN (default 0)
//	--tcpstated_remote_port=N           the remote port of flow 1 (default 40000)
//
// # Not supported
//
// Shell commands and python blocks (skipped and reported); UDP and ICMP
// packets (parse errors); system calls other than those above, such as
// poll, epoll, sendmsg, splice or sendfile (skipped and reported; the
// runner hands poll to the target, whose revents it judges, but the engine
// target skips it);
// setsockopt options other than those above (skipped); TCP options other
// than nop, eol, mss, wscale, sackOK, sack and TS on inbound packets (the
// line fails: they cannot be sent); ECN markings ([ect0], [ce], ...), which
// parse but are not sent or judged; the IP header (TTL, TOS, flow label)
// and payload contents, which are never compared; --tcp_ts_tick_usecs
// (TS val is never compared).
package script
