// Command tcpstated serves TCP engine sessions over gRPC and a REST gateway,
// and reads session logs offline.
//
//	tcpstated [serve] [flags]     run the server (the default)
//	tcpstated log dump FILE       print a session log, one record per line
//	tcpstated log verify FILE     re-run a session log and compare its outputs
//	tcpstated tun [flags]         attach a session to a TUN device (talk TCP with the kernel)
//	tcpstated script run FILE...  run packetdrill scripts against the engine (no server)
//	tcpstated script suite DIR    run a directory of scripts and tally them by folder
//	tcpstated dut serve           serve the engine as a device under test (script run --target=dut:...)
//
// Run `tcpstated serve --help` for the flags; each has an environment
// fallback (TCPSTATED_ and the flag name in capitals, - as _).
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/tcpstated/tcpstated/internal/reportview"
	"github.com/tcpstated/tcpstated/script"
	"github.com/tcpstated/tcpstated/script/suite"
)

// `script run --json` prints the API's report message (one schema).
func init() { script.EncodeReport = reportview.Encode }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `tcpstated: a TCP state machine as a network service.

Usage:
  tcpstated [serve] [flags]     run the server (the default; see tcpstated serve --help)
  tcpstated log dump FILE       print a session log (DATA_DIR/SESSION.log), one record per line
  tcpstated log verify FILE     re-run a session log in a fresh engine and compare every output;
                                exits 1 on a difference or a damaged log
  tcpstated tun [flags]         attach a REALTIME session to a TUN device, so the Linux kernel
                                talks TCP to the engine (see tcpstated tun --help)
  tcpstated script run [--compare=semantic|strict] [--json] [--verbose] FILE...
                                run packetdrill scripts, each in a fresh engine on a virtual
                                clock; exits 1 if one fails (see tcpstated script --help)
  tcpstated script suite [flags] DIR
                                run every script under DIR (the FreeBSD TCP test suite, a course's
                                library) and print a table of passes by folder and IP version
  tcpstated dut serve [--listen=ADDR] [--bug=NAME]
                                serve the engine on the wall clock as a device under test, for
                                tcpstated script run --target=dut:HOST:PORT
  tcpstated --version           the version, VCS revision and Go version of this build
  tcpstated help                this text
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return serve(nil, stderr)
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stderr)
	case "log":
		return logCommand(args[1:], stdout, stderr)
	case "tun":
		return tunCommand(args[1:], stdout, stderr)
	case "dut":
		return dutCommand(args[1:], stdout, stderr)
	case "script":
		if len(args) > 1 && args[1] == "suite" {
			return suite.Main(args[2:], stdout, stderr)
		}
		return script.Main(args[1:], stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, readBuildInfo())
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	if len(args[0]) > 0 && args[0][0] == '-' {
		return serve(args, stderr) // flags without the subcommand
	}
	fmt.Fprintf(stderr, "tcpstated: unknown command %q\n\n%s", args[0], usage)
	return 2
}
