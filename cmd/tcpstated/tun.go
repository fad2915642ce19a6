package main

// `tcpstated tun`: flags and wiring of package bridge (one REALTIME
// session attached to a TUN device).

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/tcpstated/tcpstated/bridge"
	"github.com/tcpstated/tcpstated/service"
	"github.com/tcpstated/tcpstated/store"
)

// tunConfig is what `tcpstated tun` is told by flags and environment: the
// device to open and the bridge to run on it.
type tunConfig struct {
	dev      string
	peer     netip.Addr
	logLevel string
	bridge   bridge.Config
}

const tunUsage = `Usage: tcpstated tun [flags]

Attaches one REALTIME session to a TUN device: every IP packet the kernel
writes to the device is submitted to the session (ExchangeSegments), every
segment the session emits is written to the device (WatchSegments). An
application in the same process, through the same API, listens (--listen)
or connects (--connect) and echoes, serves a file, sends a pattern, or sinks
what arrives. Needs CAP_NET_ADMIN for the device.

  # a device of its own (created and configured: kernel 10.9.0.1, tcpstated 10.9.0.2)
  sudo tcpstated tun --dev tcpst0 --listen 7 --echo
  nc 10.9.0.2 7

Output, one line per event, on stdout:
  session NAME | api ADDR | listening NAME LOCAL | connecting NAME LOCAL REMOTE
  accepted NAME LOCAL REMOTE
  state NAME FROM TO CAUSE TIME           (state changes of inbound segments and application calls)
  done NAME received=N received_sha256=HEX sent=N sent_sha256=HEX state=STATE recv_mbps=X recv_end_unix_ns=T
  error NAME received=N sent=N: REASON   (e.g. "connection reset", "connection refused")
  stats packets_in=N packets_out=N ... netem_dropped=N netem_in_lost=N netem_in_limit_dropped=N
        netem_out_lost=N netem_out_limit_dropped=N ...
                                          (netem_dropped is the sum: *_lost by the loss model,
                                          *_limit_dropped because the delay queue held --netem-limit)

The pattern of --send-bytes is byte i = i mod 251. recv_mbps is MB/s (10^6
bytes) from the first byte read to the last; recv_end_unix_ns is when the
last one was read.

Flags (each can also be set by the environment variable shown):
`

func parseTunFlags(args []string, stderr io.Writer) (*tunConfig, error) {
	t := &tunConfig{}
	c := &t.bridge
	fs := flag.NewFlagSet("tcpstated tun", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var local, peer, connect, netemIn, netemOut, fsync, closeAfter string
	var listen, localPort uint
	var sink bool
	fs.StringVar(&t.dev, "dev", "tcpstated0", "TUN device name; opened if it exists, else created and configured (kernel side --peer, point-to-point to --local, up)")
	fs.StringVar(&c.Server, "server", "", "use the running server at this gRPC address (host:port or unix:PATH) instead of one in this process")
	fs.StringVar(&c.DataDir, "data-dir", "", "in-process server: directory of the session log (default: a temporary directory, removed at exit)")
	fs.StringVar(&fsync, "fsync", "", "in-process server: always, batch or never (see tcpstated serve --help); default never with the temporary directory, always with --data-dir")
	fs.StringVar(&c.GRPCListen, "grpc-listen", "", "in-process server: also serve the API here (host:port or unix:PATH), to watch the session with other clients")
	fs.StringVar(&c.Session, "session", "tun", "session ID; created if absent with the REALTIME clock, window scaling and the buffers below")
	fs.StringVar(&local, "local", "10.9.0.2", "tcpstated's IP address (the source of what it sends)")
	fs.StringVar(&peer, "peer", "10.9.0.1", "the kernel's address on the device (used only to configure a device this command creates)")
	fs.UintVar(&listen, "listen", 0, "listen on this port of --local")
	fs.StringVar(&connect, "connect", "", "connect to ADDR:PORT (e.g. 10.9.0.1:5000)")
	fs.UintVar(&localPort, "local-port", 0, "with --connect: the local port (default: random in 32768-60999)")
	fs.BoolVar(&c.Echo, "echo", false, "application: send back what arrives")
	fs.StringVar(&c.ServeFile, "serve", "", "application: send this file, then close (--close-after sent)")
	fs.BoolVar(&sink, "sink", false, "application: read and count what arrives (the default when nothing else is asked)")
	fs.Int64Var(&c.SendBytes, "send-bytes", 0, "application: send this many bytes of the pattern i mod 251 (combines with --sink)")
	fs.StringVar(&closeAfter, "close-after", "", "when to close: sent (shutdown once everything is sent, close at end of file; the active close), eof (close once the peer's FIN is read and everything is sent; the passive close) or never; default eof, sent for --serve")
	fs.BoolVar(&c.Abort, "abort", false, "abort (RST) instead of closing when --close-after fires, once everything sent is acknowledged")
	fs.IntVar(&c.Connections, "connections", 0, "with --listen: exit after this many connections ended (0: run until SIGINT/SIGTERM)")
	fs.BoolVar(&c.Hold, "hold", false, "keep running after the application is done (TIME-WAIT is served, the API inspectable) until SIGINT/SIGTERM")
	fs.IntVar(&c.ReceiveWindow, "receive-window", service.DefaultMaxBufferBytes, "receive buffer (window) of a session this command creates, in bytes")
	fs.IntVar(&c.SendBuffer, "send-buffer", service.DefaultMaxBufferBytes, "send buffer of a session this command creates, in bytes")
	fs.StringVar(&c.Profile, "profile", "", "behaviour profile of a session this command creates: rfc (the default), freebsd or linux (docs/CONFORMANCE.md)")
	fs.Func("switch", "behaviour switch NAME=VALUE of a session this command creates, set after the profile (repeatable; e.g. congestion_control=cubic, rexmit_min=200; docs/CONFORMANCE.md lists them)", func(v string) error {
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "" {
			return fmt.Errorf("%q is not NAME=VALUE", v)
		}
		if c.Switches == nil {
			c.Switches = map[string]string{}
		}
		c.Switches[k] = val
		return nil
	})
	fs.StringVar(&netemIn, "netem", "", `impair packets from the device, as a netem qdisc on it would: "loss 5% delay 20ms reorder 10%"`)
	fs.StringVar(&netemOut, "netem-out", "", "impair packets to the device the same way")
	fs.Uint64Var(&c.NetemSeed, "netem-seed", 1, "seed of the impairments' random choices: each direction has its own generators seeded with it, so --netem and --netem-out drop the same packet numbers (the k-th packet each way), with or without reordering")
	fs.IntVar(&c.NetemLimit, "netem-limit", bridge.DefaultNetemLimit, "packets each direction's delay queue holds (netem's limit; its default is 1000): past it packets are dropped, counted apart from the loss model's drops (netem_in_limit_dropped, netem_out_limit_dropped) and warned about")
	fs.BoolVar(&c.FastOpen, "fast-open", false, "TCP Fast Open (RFC 7413): the session this command creates gets the switches fastopen.server_enable=1 and fastopen.client_enable=1; --listen gives cookies and takes data on SYNs (TCP_FASTOPEN), --connect asks for a cookie or sends the cached one")
	fs.StringVar(&t.logLevel, "log-level", "info", "log level on stderr: debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), tunUsage)
		fs.VisitAll(func(f *flag.Flag) {
			fmt.Fprintf(fs.Output(), "  --%s (%s, default %q)\n    \t%s\n", f.Name, envName("tun-"+f.Name), f.DefValue, f.Usage)
		})
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if err := envFallback(fs, "tun-"); err != nil {
		return nil, err
	}
	var err error
	if c.Local, err = netip.ParseAddr(local); err != nil {
		return nil, fmt.Errorf("--local: %v", err)
	}
	if t.peer, err = netip.ParseAddr(peer); err != nil {
		return nil, fmt.Errorf("--peer: %v", err)
	}
	if listen > 65535 || localPort > 65535 {
		return nil, errors.New("--listen and --local-port are ports, 1 to 65535")
	}
	c.Listen, c.LocalPort = uint16(listen), uint16(localPort)
	if connect != "" {
		if c.Connect, err = netip.ParseAddrPort(connect); err != nil {
			return nil, fmt.Errorf("--connect: %v", err)
		}
		if c.Connect.Port() == 0 || c.Connect.Addr().Is4() != c.Local.Is4() {
			return nil, fmt.Errorf("--connect: %s needs a port and the address family of --local %s", connect, c.Local)
		}
	}
	switch {
	case (c.Listen == 0) == (connect == ""):
		return nil, errors.New("give one of --listen PORT or --connect ADDR:PORT")
	case c.Echo && (c.ServeFile != "" || c.SendBytes != 0):
		return nil, errors.New("--echo sends what arrives: it does not combine with --serve or --send-bytes")
	case c.ServeFile != "" && c.SendBytes != 0:
		return nil, errors.New("--serve and --send-bytes both say what to send: give one")
	case c.SendBytes < 0:
		return nil, errors.New("--send-bytes: negative")
	case c.Connections < 0:
		return nil, errors.New("--connections: negative")
	}
	if closeAfter == "" {
		closeAfter = "eof"
		if c.ServeFile != "" {
			closeAfter = "sent"
		}
	}
	switch c.CloseAfter = bridge.ClosePolicy(closeAfter); c.CloseAfter {
	case bridge.CloseSent, bridge.CloseEOF, bridge.CloseNever:
	default:
		return nil, fmt.Errorf("--close-after: %q is not sent, eof or never", closeAfter)
	}
	if c.Abort && c.CloseAfter == bridge.CloseNever {
		return nil, errors.New("--abort acts when --close-after fires: not with never")
	}
	if fsync == "" {
		fsync = "never" // the log goes with the temporary directory
		if c.DataDir != "" {
			fsync = "always"
		}
	}
	if c.Fsync, err = store.ParseFsyncMode(fsync); err != nil {
		return nil, fmt.Errorf("--fsync: %v", err)
	}
	if c.NetemIn, err = bridge.ParseNetem(netemIn); err != nil {
		return nil, fmt.Errorf("--netem: %v", err)
	}
	if c.NetemOut, err = bridge.ParseNetem(netemOut); err != nil {
		return nil, fmt.Errorf("--netem-out: %v", err)
	}
	if c.NetemLimit <= 0 {
		return nil, errors.New("--netem-limit must be positive")
	}
	if c.ReceiveWindow <= 0 || c.SendBuffer <= 0 {
		return nil, errors.New("--receive-window and --send-buffer must be positive")
	}
	return t, nil
}

// envFallback sets every flag not given on the command line from its
// environment variable (envName(prefix+name)).
func envFallback(fs *flag.FlagSet, prefix string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		if v, ok := os.LookupEnv(envName(prefix + f.Name)); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s=%q: %v", envName(prefix+f.Name), v, e)
			}
		}
	})
	return err
}

// tunCommand exits 2 on bad flags, 1 when the device cannot be opened or
// the bridge fails, 0 on a clean end (SIGINT/SIGTERM, or --connections
// done).
func tunCommand(args []string, stdout, stderr io.Writer) int {
	c, err := parseTunFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "tcpstated tun: %v\n", err)
		return 2
	}
	logger, err := newLogger("text", c.logLevel, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "tcpstated tun: %v\n", err)
		return 2
	}
	dev, err := bridge.OpenTUN(c.dev, c.peer, c.bridge.Local, logger)
	if err != nil {
		fmt.Fprintf(stderr, "tcpstated tun: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := bridge.Run(ctx, c.bridge, dev, stdout, logger); err != nil {
		logger.Error("tun", "err", err)
		return 1
	}
	return 0
}
