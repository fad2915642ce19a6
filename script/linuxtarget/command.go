//go:build linux

package linuxtarget

import (
	"fmt"
	"strings"

	"github.com/tcpstated/tcpstated/internal/shellwords"
)

// Command runs a script's backquoted sysctl line inside the namespace:
// "sysctl [-q] [-w] net.ipv4.NAME=VALUE ...". Only net.ipv4 and net.ipv6
// names, which exist per network namespace, are run, through nsenter in
// the run's namespace: a name that is global to the host is not visible
// there, so the command fails rather than touching the host. Anything
// else is skipped.
func (t *Target) Command(cmd string) (skip string, err error) {
	var lines [][]string
	for _, line := range strings.FieldsFunc(cmd, func(r rune) bool { return r == '\n' || r == ';' }) {
		args, err := shellwords.Split(line)
		if err != nil {
			return fmt.Sprintf("skipped: %q: %v", line, err), nil
		}
		if len(args) == 0 {
			continue
		}
		if why := sysctlOnly(args); why != "" {
			return why, nil
		}
		lines = append(lines, args)
	}
	for _, args := range lines {
		run := []string{"-w"}
		for _, a := range args[1:] {
			if !strings.HasPrefix(a, "-") {
				run = append(run, a)
			}
		}
		if err := t.ns.exec("sysctl", run...); err != nil {
			return "", err
		}
	}
	return "", nil
}

// sysctlOnly says why a command is not a per-namespace sysctl write, or "".
func sysctlOnly(args []string) string {
	const why = "skipped: the kernel target runs only `sysctl -w net.ipv4.*` (and net.ipv6.*) commands, in its own namespace"
	if args[0] != "sysctl" && args[0] != "/sbin/sysctl" && args[0] != "/usr/sbin/sysctl" {
		return why
	}
	n := 0
	for _, a := range args[1:] {
		switch {
		case a == "-q" || a == "-w" || a == "-qw" || a == "-wq":
		case strings.HasPrefix(a, "-"):
			return why
		case !strings.Contains(a, "=") || !(strings.HasPrefix(a, "net.ipv4.") || strings.HasPrefix(a, "net.ipv6.")):
			return why
		default:
			n++
		}
	}
	if n == 0 {
		return why
	}
	return ""
}
