package fsm

// ICMP errors for a connection in SYN-RECEIVED (RFC 1122 §4.2.3.9,
// RFC 5927 §4.1, RFC 5461 §4).
//
// RFC 1122 §4.2.3.9 makes protocol and port unreachable hard errors: TCP
// SHOULD abort the connection. RFC 5461 §4 lets a synchronized connection
// treat them as soft (a forged or transient error must not kill an
// established connection, which ICMP_HARD_AS_SOFT does), but SYN-RECEIVED
// is not synchronized: the peer has not acknowledged our SYN. RFC 5927
// §4.1's check has already passed: the quoted SEG.SEQ is the ISS, the one
// octet in flight (SND.UNA = ISS, SND.NXT = ISS+1), so a blind attacker
// must guess 32 bits.
//
// What real stacks do, and what the engine does:
//   - Linux, tcp_req_err: a request socket (a half-open connection of a
//     listener) is dropped at once on a hard error whose sequence number is
//     the ISN, silently (no RST; POSIX does not want accept() to return
//     network errors) and counted as a listen drop. A full socket in
//     SYN-RECEIVED (simultaneous open, Fast Open) is aborted with the error.
//     The rfc and linux profiles do the same: ICMP_SYN_RECEIVED_DROP and
//     ICMP_SYN_RECEIVED_ABORT. Soft errors are recorded (ICMP_SOFT_ERROR).
//   - FreeBSD, syncache_unreach (reached from tcp_ctlinput for any error
//     that finds a syncache entry, hard or soft): a sequence number other
//     than the ISS is ignored; the first error only marks the entry, and it
//     is dropped on a later error once the SYN,ACK has been retransmitted
//     at least four times (3 + 1), so a short outage does not end the
//     handshake. Switch icmp_synrcvd_bsd (on in the freebsd profile):
//     ICMP_SYN_RECEIVED_KEPT, then ICMP_SYN_RECEIVED_DROP_BSD. The mark is
//     the connection's recorded soft error, so the TCB grows by nothing.
//
// Switch icmp_may_rst=0 still wins for hard errors on connections an
// application holds (ICMP_HARD_NO_RESET); a half-open connection of a
// listener has no such application and follows the rules above.

// icmpSynRcvdBSDRetries is FreeBSD's threshold: an entry is dropped only
// once sc_rxmits reaches 3 + 1.
const icmpSynRcvdBSDRetries = 4

// icmpSynReceived handles an in-flight ICMP error for c in SYN-RECEIVED.
// It reports whether it handled the message; false leaves it to the
// general rules (a soft error under the rfc profile is recorded there).
func (e *Engine) icmpSynReceived(c *conn, class icmpClass, cerr error, tf, cf, sf Field) bool {
	halfOpen := c.passive && c.parent != nil && !c.inAcceptQueue
	rf := Field{"RETRIES", uint64(c.retries)}
	if e.cfg.ICMPSynRcvdBSD && halfOpen {
		if c.softErr == 0 || c.retries < icmpSynRcvdBSDRetries {
			c.softErr = softErrorOf(cerr)
			e.explain(c.id, CodeICMPSynRcvdKept, ActionAccepted, tf, cf, sf, rf)
			return true
		}
		e.explain(c.id, CodeICMPSynRcvdBSDDrop, ActionAccepted, tf, cf, sf, rf)
		e.toClosed(c, CodeICMPSynRcvdBSDDrop, cerr)
		return true
	}
	if class == icmpSoft {
		return false
	}
	if halfOpen {
		e.explain(c.id, CodeICMPSynRcvdDrop, ActionAccepted, tf, cf, sf)
		e.toClosed(c, CodeICMPSynRcvdDrop, cerr)
		return true
	}
	if e.cfg.ICMPNoReset {
		return false // ICMP_HARD_NO_RESET
	}
	e.explain(c.id, CodeICMPSynRcvdAbort, ActionAccepted, tf, cf, sf)
	if cerr == ErrConnectionRefused {
		e.event(c, EventRefused)
	}
	e.toClosed(c, CodeICMPSynRcvdAbort, cerr)
	return true
}

func init() {
	switches = append(switches,
		boolSwitch("icmp_synrcvd_bsd", "1: an ICMP error (hard or soft) quoting the SYN,ACK of a half-open connection in SYN-RECEIVED only marks it the first time, and drops it (no RST) on a later one once the SYN,ACK has been retransmitted at least 4 times, as FreeBSD's syncache_unreach does. 0: a hard error (protocol or port unreachable; more under icmp_hard_bsd) drops it at once, as RFC 1122 §4.2.3.9 says TCP SHOULD abort on a hard error and the connection is not yet synchronized (RFC 5461 §4), and as Linux's tcp_req_err does; a soft error is recorded. RFC 5927 §4.1's check (the quoted sequence number is the ISS) applies either way.",
			func(c *Config) *bool { return &c.ICMPSynRcvdBSD }))
}
