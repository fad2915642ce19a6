package script

import "github.com/tcpstated/tcpstated/script/target"

// ioctl(fd, SIOCATMARK, [v]): whether the next octet read is at the urgent
// mark (BSD sockets; FreeBSD soo_ioctl, Linux tcp_ioctl). The request
// goes to the target in Call.Opt; the value written to [v] is compared
// like a getsockopt value.
func init() {
	callArgs["ioctl"] = (*runner).ioctlArgs
}

func (r *runner) ioctlArgs(sc *Syscall, c *target.Call) (outcome, bool) {
	if o, done := r.argFD(sc, c); done {
		return o, done
	}
	if len(sc.Args) < 3 {
		return errOut("EINVAL"), true
	}
	c.Opt = optName(sc.Args[1])
	if c.Opt != "SIOCATMARK" {
		return outcome{skip: "skipped: ioctl " + c.Opt + " is not supported by tcpstated"}, true
	}
	return outcome{}, false
}
