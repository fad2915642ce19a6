package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tcpstated/tcpstated/bridge"
	"github.com/tcpstated/tcpstated/store"
)

func TestTunFlags(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		check   func(*tunConfig) bool
		wantErr string
	}{
		{"listen with defaults", []string{"--listen", "80"}, func(c *tunConfig) bool {
			b := c.bridge
			return b.Listen == 80 && b.Local.String() == "10.9.0.2" && b.CloseAfter == bridge.CloseEOF && b.Session == "tun" &&
				b.ReceiveWindow == 4<<20 && b.Fsync == store.FsyncNever && !b.NetemIn.Active() && c.dev == "tcpstated0" && c.peer.String() == "10.9.0.1"
		}, ""},
		{"a data directory is synced", []string{"--listen", "80", "--data-dir", "d"}, func(c *tunConfig) bool { return c.bridge.Fsync == store.FsyncAlways }, ""},
		{"serve closes after sending", []string{"--listen", "80", "--serve", "f"}, func(c *tunConfig) bool { return c.bridge.CloseAfter == bridge.CloseSent }, ""},
		{"connect", []string{"--connect", "10.9.0.1:5000", "--send-bytes", "10", "--sink", "--abort", "--close-after", "sent"}, func(c *tunConfig) bool {
			return c.bridge.Connect.String() == "10.9.0.1:5000" && c.bridge.SendBytes == 10 && c.bridge.Abort
		}, ""},
		{"netem", []string{"--listen", "1", "--netem", "loss 5% delay 20ms reorder 10%"}, func(c *tunConfig) bool {
			return c.bridge.NetemIn == bridge.NetemSpec{Loss: 0.05, Delay: 20 * time.Millisecond, Reorder: 0.1}
		}, ""},
		{"netem limit defaults to netem's", []string{"--listen", "1"}, func(c *tunConfig) bool { return c.bridge.NetemLimit == 1000 && c.bridge.NetemSeed == 1 }, ""},
		{"netem limit", []string{"--listen", "1", "--netem-limit", "20000", "--netem-out", "delay 20ms"}, func(c *tunConfig) bool {
			return c.bridge.NetemLimit == 20000 && c.bridge.NetemOut == bridge.NetemSpec{Delay: 20 * time.Millisecond}
		}, ""},
		{"profile and switches", []string{"--listen", "1", "--profile", "linux", "--switch", "congestion_control=cubic", "--switch", "rexmit_min=200"}, func(c *tunConfig) bool {
			return c.bridge.Profile == "linux" && len(c.bridge.Switches) == 2 && c.bridge.Switches["congestion_control"] == "cubic" && c.bridge.Switches["rexmit_min"] == "200"
		}, ""},
		{"switch without a value", []string{"--listen", "1", "--switch", "cubic"}, nil, "NAME=VALUE"},
		{"netem limit zero", []string{"--listen", "1", "--netem-limit", "0"}, nil, "--netem-limit"},
		{"neither listen nor connect", nil, nil, "one of --listen"},
		{"both listen and connect", []string{"--listen", "80", "--connect", "10.9.0.1:1"}, nil, "one of --listen"},
		{"connect without a port", []string{"--connect", "10.9.0.1"}, nil, "--connect"},
		{"connect across families", []string{"--connect", "[2001:db8::1]:80"}, nil, "address family"},
		{"echo and send-bytes", []string{"--listen", "80", "--echo", "--send-bytes", "5"}, nil, "--echo"},
		{"serve and send-bytes", []string{"--listen", "80", "--serve", "f", "--send-bytes", "5"}, nil, "give one"},
		{"bad close policy", []string{"--listen", "80", "--close-after", "later"}, nil, "--close-after"},
		{"abort never fires", []string{"--listen", "80", "--close-after", "never", "--abort"}, nil, "--abort"},
		{"bad fsync", []string{"--listen", "80", "--fsync", "sometimes"}, nil, "--fsync"},
		{"bad netem", []string{"--listen", "80", "--netem", "loss 5"}, nil, "--netem"},
		{"port out of range", []string{"--listen", "70000"}, nil, "ports"},
		{"stray argument", []string{"--listen", "80", "extra"}, nil, "unexpected"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseTunFlags(tc.args, io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !tc.check(c) {
				t.Fatalf("config %+v, err %v", c, err)
			}
		})
	}
	t.Setenv("TCPSTATED_TUN_SESSION", "from-env")
	if c, err := parseTunFlags([]string{"--listen", "80"}, io.Discard); err != nil || c.bridge.Session != "from-env" {
		t.Fatalf("environment fallback: %+v, %v", c, err)
	}
	var help bytes.Buffer
	if code := run([]string{"tun", "--help"}, io.Discard, &help); code != 0 || !strings.Contains(help.String(), "TCPSTATED_TUN_DEV") {
		t.Fatalf("--help: exit %d, %q", code, help.String())
	}
}
