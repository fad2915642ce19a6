package fsm

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// Linux's receive window (the tcp_rmem switch, issue 12). Linux sizes the
// window from its socket buffer, which counts the kernel's per-packet
// overhead as well as data, so it offers only part of it: half before any
// data has arrived (tcp_win_from_space with the default ratio). Under
// tcp_rmem the engine reads RecvBuffer as that socket buffer (sk_rcvbuf,
// what getsockopt(SO_RCVBUF) shows) and offers half of it, rounds the
// SYN's window down to a multiple of the MSS, and picks the window scale
// from the largest buffer the socket could grow to, as
// tcp_select_initial_window does. RFC 7323 §2.2 and RFC 9293 §3.8.6 leave
// both the window and the shift to the receiver.
//
// Not modelled: the window's growth as data arrives (tcp_grow_window and
// receive-buffer auto-tuning, which follow the kernel's per-packet memory,
// skb truesize), so after the first full-sized segments the kernel's
// window grows past the engine's; and tcp_rmem's minimum (memory pressure).

// rcvMemLinux reports whether the tcp_rmem model is on.
func (c *Config) rcvMemLinux() bool { return c.RcvMem[1] > 0 }

// sockMinRcvbuf is Linux's SOCK_MIN_RCVBUF on 64-bit machines: the least
// buffer SO_RCVBUF sets (2048 plus the size of an sk_buff).
const sockMinRcvbuf = 2304

// SetRecvBufferOption applies setsockopt(SO_RCVBUF, v) to c as the
// socket's owner would see it: the buffer becomes v, or under tcp_rmem
// twice v (at least sockMinRcvbuf), the doubling Linux's sock_setsockopt
// makes to leave room for its overhead, and the buffer is then the
// application's choice (the window clamp and scale follow it, as Linux's
// SOCK_RCVBUF_LOCK). It returns the buffer in effect.
func (c *Config) SetRecvBufferOption(v int) int {
	if c.rcvMemLinux() {
		v = max(2*v, sockMinRcvbuf)
		c.RecvBufferLocked = true
	}
	c.RecvBuffer = v
	return v
}

// rcvSpace is the most the receive window may ever offer: RecvBuffer, or
// under tcp_rmem half of it.
func (e *Engine) rcvSpace() int {
	if e.cfg.rcvMemLinux() {
		return e.cfg.RecvBuffer / 2
	}
	return e.cfg.RecvBuffer
}

// synWindow is the window our SYN or SYN,ACK offers (never scaled, RFC
// 7323 §2.2): RecvBuffer up to 65535, or under tcp_rmem rcvSpace rounded
// down to a multiple of mss, the MSS we offer less the timestamp option
// when a passive open will carry it (tcp_openreq_init_rwin; an active
// open's SYN does not subtract it).
func (e *Engine) synWindow(mss uint16, ts bool) int {
	if !e.cfg.rcvMemLinux() {
		return min(e.cfg.RecvBuffer, 65535)
	}
	space, m := e.rcvSpace(), int(mss)
	if ts {
		m -= 12
	}
	if m > 0 && space > m {
		space -= space % m
	}
	return min(space, 65535)
}

// explainSynWindow says, under tcp_rmem, how the SYN's window and shift
// were chosen.
func (e *Engine) explainSynWindow(c *conn, w int, ts bool) {
	if !e.cfg.rcvMemLinux() {
		return
	}
	mss := int(c.rcvMSS)
	if ts {
		mss -= 12
	}
	e.explain(c.id, CodeSynWindowLinux, ActionInfo, Field{"SO_RCVBUF", uint64(e.cfg.RecvBuffer)},
		Field{"MSS", uint64(mss)}, Field{"WND", uint64(w)}, Field{"WSCALE", uint64(max(e.cfg.WindowScale, 0))},
		Field{"TCP_RMEM.MAX", uint64(e.cfg.RcvMem[2])}, Field{"LOCKED", b2u(e.cfg.RecvBufferLocked)})
}

// linuxWindowScale is the shift tcp_select_initial_window offers for the
// buffer in c: the bits of the largest window the socket could offer
// (its tcp_rmem maximum; when the application set SO_RCVBUF, what that
// buffer offers) beyond the 16 of the field, at most 14.
func linuxWindowScale(c *Config) int {
	space := c.RecvBuffer / 2
	if !c.RecvBufferLocked {
		space = max(space, c.RcvMem[2])
	}
	if space <= 0 {
		return 0
	}
	return min(max(bits.Len(uint(space))-1-15, 0), 14)
}

var rcvMemSwitch = switchSpec{Switch{"tcp_rmem", "Linux's net.ipv4.tcp_rmem, \"min default max\" in bytes; \"0 0 0\" off. When set, the receive window follows Linux (tcp_select_initial_window, __tcp_select_window): the receive buffer (default: default; setsockopt(SO_RCVBUF, v) makes it 2v, and getsockopt shows 2v) offers half of itself, the SYN's and SYN,ACK's window is that half rounded down to a multiple of the MSS (less 12 bytes for timestamps on a SYN,ACK), at most 65535, and the window scale is the bits of max beyond 16 (of the SO_RCVBUF window when one was set): 7 for Linux's default 6291456. The growth of Linux's window as data arrives (tcp_grow_window, auto-tuning) is not modelled. Off: the window is the receive buffer and the shift the smallest that covers it. RFC 9293 §3.8.6 and RFC 7323 §2.2 leave the window and the shift to the receiver.", "0 0 0"},
	func(c *Config) string { return fmt.Sprintf("%d %d %d", c.RcvMem[0], c.RcvMem[1], c.RcvMem[2]) },
	func(c *Config, v string) error {
		f := strings.Fields(v)
		if len(f) == 1 && f[0] == "0" {
			c.RcvMem = [3]int{}
			return nil
		}
		bad := fmt.Errorf("expected three byte counts \"min default max\" with min <= default <= max (or 0 for off), found %q", v)
		if len(f) != 3 {
			return bad
		}
		var m [3]int
		for i := range f {
			n, err := strconv.Atoi(f[i])
			if err != nil || n < 0 || n > 1<<30 {
				return bad
			}
			m[i] = n
		}
		if m[1] > 0 && (m[0] > m[1] || m[1] > m[2]) {
			return bad
		}
		c.RcvMem = m
		return nil
	}}

func init() { switches = append(switches, rcvMemSwitch) }
