package pcap

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tcpstated/tcpstated/fsm"
)

// captured is one packet an engine emitted, with its time on the engine
// clock.
type captured struct {
	time time.Duration
	seg  fsm.Segment // Payload aliases data
	src  netip.Addr
	data []byte
}

// link joins a client and a server engine with a fixed one-way delay and
// records every packet either emits. Both engines share one clock.
type link struct {
	t              *testing.T
	client, server *fsm.Engine
	delay          time.Duration
	now            time.Duration
	inflight       []flight
	packets        []captured
}

type flight struct {
	at   time.Duration
	to   *fsm.Engine
	data []byte
}

func (l *link) collect(from *fsm.Engine) {
	to := l.server
	if from == l.server {
		to = l.client
	}
	for _, p := range from.Ready().Packets {
		data := bytes.Clone(p.Data)
		_, _, tcp, err := fsm.ParsePacket(data)
		if err != nil {
			l.t.Fatalf("engine emitted a malformed packet: %v", err)
		}
		seg, err := fsm.ParseSegment(tcp)
		if err != nil {
			l.t.Fatalf("engine emitted a malformed segment: %v", err)
		}
		l.packets = append(l.packets, captured{time: p.Time, seg: seg, src: p.Src, data: data})
		l.inflight = append(l.inflight, flight{at: p.Time + l.delay, to: to, data: data})
	}
}

// run delivers packets and fires timers, in time order, until nothing is
// in flight and no timer falls due before until.
func (l *link) run(until time.Duration) {
	for {
		l.collect(l.client)
		l.collect(l.server)
		next, ok := time.Duration(0), false
		consider := func(t time.Duration) {
			if !ok || t < next {
				next, ok = t, true
			}
		}
		for _, f := range l.inflight {
			consider(f.at)
		}
		for _, e := range []*fsm.Engine{l.client, l.server} {
			if d, armed := e.NextDeadline(); armed {
				consider(d)
			}
		}
		if !ok || next > until {
			return
		}
		l.now = max(l.now, next)
		l.client.AdvanceTo(l.now)
		l.collect(l.client)
		l.server.AdvanceTo(l.now)
		l.collect(l.server)
		rest := l.inflight[:0]
		var due []flight
		for _, f := range l.inflight {
			if f.at <= l.now {
				due = append(due, f)
			} else {
				rest = append(rest, f)
			}
		}
		l.inflight = rest
		for _, f := range due {
			if err := f.to.Deliver(f.data); err != nil {
				l.t.Fatalf("deliver: %v", err)
			}
			l.collect(f.to)
		}
	}
}

// converse runs a handshake, data both ways and a close between two
// engines and returns every packet they emitted.
func converse(t *testing.T, clientAddr, serverAddr netip.AddrPort) []captured {
	t.Helper()
	l := &link{
		t:      t,
		client: fsm.New(fsm.Config{ISNMode: fsm.ISNFixed, FixedISN: 100}),
		server: fsm.New(fsm.Config{ISNMode: fsm.ISNFixed, FixedISN: 4294967000}), // wraps during the exchange
		delay:  7 * time.Millisecond,
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	lis, err := l.server.Listen(serverAddr, 0)
	must(err)
	c, err := l.client.Connect(clientAddr, serverAddr)
	must(err)
	l.run(time.Second)
	s, err := l.server.Accept(lis)
	must(err)

	_, err = l.client.Send(c, []byte("GET / HTTP/1.0\r\n\r\n"))
	must(err)
	l.run(l.now + time.Second)
	_, err = l.server.Send(s, bytes.Repeat([]byte("x"), 3000)) // more than one MSS
	must(err)
	l.run(l.now + time.Second)
	buf := make([]byte, 8192)
	if n, _ := l.server.Receive(s, buf); n != 18 {
		t.Fatalf("server read %d bytes, want 18", n)
	}
	if n, _ := l.client.Receive(c, buf); n != 3000 {
		t.Fatalf("client read %d bytes, want 3000", n)
	}
	must(l.client.Close(c))
	l.run(l.now + time.Second)
	must(l.server.Close(s))
	l.run(l.now + 5*time.Minute) // through TIME-WAIT
	for _, e := range []*fsm.Engine{l.client, l.server} {
		for _, in := range e.Endpoints() {
			if !in.Listener && in.State != fsm.Closed {
				t.Fatalf("endpoint %s ended in %s", in.Local, in.State)
			}
		}
	}
	return l.packets
}

// TestTshark writes the packets of a real conversation to a pcap file and
// checks that tshark decodes every one with a good checksum and the
// flags, seq and ack the engines emitted.
func TestTshark(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark is not on PATH; install it (Debian: apt-get install -y --no-install-recommends tshark) to run this end-to-end test")
	}
	for _, tc := range []struct {
		name           string
		client, server netip.AddrPort
	}{
		{"IPv4", netip.MustParseAddrPort("10.0.0.2:40000"), netip.MustParseAddrPort("10.0.0.1:80")},
		{"IPv6", netip.MustParseAddrPort("[2001:db8::2]:40000"), netip.MustParseAddrPort("[2001:db8::1]:80")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pkts := converse(t, tc.client, tc.server)
			var flags fsm.Flags
			for _, p := range pkts {
				flags |= p.seg.Flags
			}
			if want := fsm.FlagSYN | fsm.FlagACK | fsm.FlagPSH | fsm.FlagFIN; !flags.Has(want) || len(pkts) < 10 {
				t.Fatalf("conversation too short: %d packets, flags %s", len(pkts), flags)
			}

			base := time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC)
			var buf bytes.Buffer
			w, err := NewWriter(&buf)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range pkts {
				if err := w.WritePacket(base.Add(p.time), p.data); err != nil {
					t.Fatal(err)
				}
			}
			file := filepath.Join(t.TempDir(), "session.pcap")
			if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}

			fields := []string{"tcp.flags", "tcp.seq_raw", "tcp.ack_raw", "tcp.checksum.status", "ip.src", "ipv6.src", "tcp.len", "frame.time_epoch"}
			args := []string{"-n", "-r", file, "-o", "tcp.check_checksum:TRUE", "-o", "tcp.relative_sequence_numbers:FALSE", "-T", "fields"}
			for _, f := range fields {
				args = append(args, "-e", f)
			}
			cmd := exec.Command(tshark, args...)
			cmd.Env = append(os.Environ(), "HOME="+t.TempDir()) // no user profile
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("tshark %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
			}
			lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
			if len(lines) != len(pkts) {
				t.Fatalf("tshark read %d packets, want %d:\n%s\n%s", len(lines), len(pkts), out, stderr.String())
			}
			for i, line := range lines {
				p := pkts[i]
				f := strings.Split(line, "\t")
				if len(f) != len(fields) {
					t.Fatalf("packet %d: tshark printed %d fields, want %d: %q", i+1, len(f), len(fields), line)
				}
				src := f[4]
				if p.src.Is6() {
					src = f[5]
				}
				ns := p.time + time.Duration(base.Nanosecond())
				wantEpoch := fmt.Sprintf("%d.%09d", base.Unix()+int64(ns/time.Second), ns%time.Second)
				// tcp.flags is the 12-bit field in hex ("0x0012" in tshark
				// 4.0, "0x012" in older versions): compare the number.
				gotFlags := f[0]
				if v, err := strconv.ParseUint(strings.TrimPrefix(f[0], "0x"), 16, 16); err == nil {
					gotFlags = fsm.Flags(v).String()
					if v > 0xff {
						gotFlags = f[0] // NS or reserved bits: never sent
					}
				}
				want := []struct{ field, got, want string }{
					{"tcp.flags", gotFlags, p.seg.Flags.String()},
					{"tcp.seq_raw", f[1], strconv.FormatUint(uint64(p.seg.Seq), 10)},
					{"tcp.ack_raw", f[2], strconv.FormatUint(uint64(p.seg.Ack), 10)},
					// Wireshark's checksum status enum: 0 Bad, 1 Good, 2 Unverified.
					{"tcp.checksum.status", f[3], "1"},
					{"ip.src/ipv6.src", src, p.src.String()},
					{"tcp.len", f[6], strconv.Itoa(len(p.seg.Payload))},
					{"frame.time_epoch", f[7], wantEpoch},
				}
				for _, c := range want {
					if c.got != c.want {
						t.Errorf("packet %d (%s): %s = %q, want %q", i+1, p.seg, c.field, c.got, c.want)
					}
				}
			}
			if t.Failed() {
				t.Logf("tshark output:\n%s", out)
			}
		})
	}
}
