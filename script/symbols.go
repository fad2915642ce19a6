package script

import "github.com/tcpstated/tcpstated/script/target"

// symbols are the Linux values of the constants scripts use.
var symbols = target.Symbols

// linuxStateName returns the TCP_* name of a Linux state number.
func linuxStateName(n int64) string {
	for _, name := range target.TCPStates {
		if symbols[name] == n {
			return name
		}
	}
	return ""
}
