package target

import "net/netip"

// Call is one socket call of a script, its arguments read by the runner.
// Numbers are Linux's (see Symbols), as packetdrill scripts are written
// against the Linux socket API. Which fields a call uses:
//
//	socket      Type (SOCK_STREAM, maybe | SOCK_NONBLOCK)
//	bind        FD, Local (the address to bind)
//	listen      FD, Local (the address to listen on if not bound), Backlog (as written; 0 if unreadable)
//	accept      FD
//	connect     FD, Remote; Local has the local IP and port 0: the target takes the bound port or one of its own
//	write, send, sendto  FD, Len, Flags
//	read, recv, recvfrom FD, Len, Flags
//	shutdown    FD, How (SHUT_RD, SHUT_WR, SHUT_RDWR)
//	close       FD
//	fcntl       FD, Cmd (F_GETFL, F_SETFL, ...), Arg
//	setsockopt  FD, Level, Opt, Value (or Linger for SO_LINGER)
//	getsockopt  FD, Level, Opt; the result carries the value
//	poll        Poll, Timeout (milliseconds)
type Call struct {
	Name  string // packetdrill's name of the call: "accept4", "recv", ...
	Index int    // the call's event index in its script, for targets that prepared for it
	FD    int

	Type          int64
	Local, Remote netip.AddrPort
	Backlog       int64

	Len   int   // bytes to write or read, at most 1 MiB
	Flags int64 // send/recv flags
	// FlagsText is the flags argument as written, when the call has one
	// that is not 0 (or cannot be read): a target that ignores flags says
	// so with it.
	FlagsText string

	How      int64
	Cmd, Arg int64

	Level  int64
	Opt    string // the option's name: "SO_RCVBUF", "TCP_INFO"
	Value  int64  // setsockopt's integer value
	Linger *Linger

	Poll    []PollFD
	Timeout int64
}

// Linger is a struct linger.
type Linger struct{ OnOff, Linger int64 }

// PollFD is one entry of poll's array; Revents is the target's answer.
type PollFD struct {
	FD              int
	Events, Revents int64
}

// Result is what a call returned.
type Result struct {
	Ret   int64  // the return value: a descriptor, a byte count, 0, or -1
	Errno string // with Ret -1: packetdrill's name of errno ("EAGAIN"); "" otherwise
	// Blocked: the call would block and is in progress (see Pending).
	Blocked bool
	// Skip, if set, says why the target cannot honour the call; the
	// runner reports the line as skipped with this reason.
	Skip string
	// Error, if set, says the target could not run the call at all (a
	// device under test that did not answer, or answered with a gRPC
	// error): the line fails with it, whatever the script expects.
	Error string
	// Detail is the target's note on what it did, shown with the result:
	// "endpoint 3", "not judged: ...".
	Detail string
	// Local is, for a listen or connect that opened an endpoint, the
	// local address it uses (its packets come from it).
	Local netip.AddrPort

	Value *Value   // getsockopt of an integer option; nil if the target cannot show it
	Info  *TCPInfo // getsockopt TCP_INFO
	Poll  []PollFD // poll: the entries with Revents set
}

// Value is the value of an integer socket option.
type Value struct {
	Int  int64
	Text string // how to show it: "104 (ECONNRESET)"; "" means the number
}

// TCPInfo is the part of struct tcp_info a target can show.
type TCPInfo struct {
	State     string // Linux's name of tcpi_state: "TCP_ESTABLISHED"
	StateText string // the target's own name of the state, if it has one: "RFC 9293 ESTABLISHED"
	Endpoint  uint64 // the endpoint, as Transition names it; 0 if none
	// Fields are the other fields the target can show, by their names in
	// struct tcp_info ("tcpi_snd_mss", "tcpi_rto" in microseconds).
	Fields map[string]int64
}

// Err is the result of a call that failed with errno.
func Err(errno string) Result { return Result{Ret: -1, Errno: errno} }
