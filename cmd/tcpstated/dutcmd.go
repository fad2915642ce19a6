package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os/signal"
	"syscall"

	"github.com/tcpstated/tcpstated/dut"
)

const dutUsage = `usage: tcpstated dut serve [--listen=ADDR] [--stack=engine|linux] [--bug=NAME]

Serves tcpstated's engine, on the wall clock, as a device under test
(the tcpstate.dut.v1.DeviceUnderTestService), for
tcpstated script run --target=dut:HOST:PORT. It prints the address it
listens on, then serves until interrupted.

  --listen=ADDR  the gRPC address (default 127.0.0.1:0, a free port)
  --stack=S      engine (the default), or linux: this machine's kernel,
                 its sockets in a network namespace of their own per
                 script, with a TUN device for the packets (needs root)
  --bug=NAME     engine: break one rule on purpose, to see a script catch
                 it: wrong-ack, ignore-window, no-time-wait; or misbehave
                 as an agent: hang, garbage, close-stream, malformed
`

// dutCommand implements "tcpstated dut serve".
func dutCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "serve" {
		fmt.Fprint(stderr, dutUsage)
		return 2
	}
	fs := flag.NewFlagSet("dut serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, dutUsage) }
	listen := fs.String("listen", "127.0.0.1:0", "gRPC listen address")
	bugName := fs.String("bug", "none", "a rule to break")
	stackName := fs.String("stack", "engine", "engine or linux")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	bug, err := dut.ParseBug(*bugName)
	if err != nil {
		fmt.Fprintf(stderr, "tcpstated dut serve: --bug: %v\n", err)
		return 2
	}
	var stack dut.Stack
	name := bug.Stack()
	switch *stackName {
	case "engine":
		e := dut.NewEngine(bug)
		defer e.Close()
		stack = e
	case "linux":
		if bug != dut.BugNone {
			fmt.Fprintln(stderr, "tcpstated dut serve: --bug is for --stack=engine")
			return 2
		}
		if why := dut.KernelAvailable(); why != "" {
			fmt.Fprintf(stderr, "tcpstated dut serve: --stack=linux %s\n", why)
			return 1
		}
		k := dut.NewKernel()
		defer k.Close()
		stack, name = k, dut.KernelStack
	default:
		fmt.Fprintf(stderr, "tcpstated dut serve: --stack: want engine or linux, got %q\n", *stackName)
		return 2
	}
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "tcpstated dut serve: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "tcpstated dut: serving %s on %s\n", name, lis.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := dut.Serve(ctx, lis, stack); err != nil {
		fmt.Fprintf(stderr, "tcpstated dut serve: %v\n", err)
		return 1
	}
	return 0
}
