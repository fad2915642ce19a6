package issue4

import (
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// flagBits are TCP's control bits by the API's names.
var flagBits = map[string]uint64{"FIN": 0x01, "SYN": 0x02, "RST": 0x04, "PSH": 0x08, "ACK": 0x10, "URG": 0x20, "ECE": 0x40, "CWR": 0x80}

type apiSegment struct {
	Flags         []string
	Seq, Ack      uint32
	PayloadLength uint32
	Time          string
}

type apiRecord struct {
	Index   string
	Time    string
	Kind    string
	Segment *apiSegment
	Output  *struct{ Segments []apiSegment }
}

// segmentFields is the JSON of a structured segment from the peer.
func segmentFields(seq, ack uint32, flags, payload string) string {
	f := `"` + strings.Join(strings.Split(flags, ","), `","`) + `"`
	p := ""
	if payload != "" {
		p = fmt.Sprintf(`, "payloadText": %q`, payload)
	}
	return fmt.Sprintf(`{"fields": {"sourceAddress": "10.0.0.2:40000", "destinationAddress": "10.0.0.1:80",
		"seq": %d, "ack": %d, "flags": [%s], "window": 65535, "options": {"mss": 1460}%s}}`, seq, ack, f, p)
}

// TestPcapOfAHandshakeDataAndCloseReadByTshark exports, over the REST API,
// a session with a handshake, data both ways and a close, and checks with
// tshark that it reads every packet, that every TCP checksum is good, and
// that the flags, seq and ack it decodes are the ones in the engine's log,
// in the log's order, at the session-clock times.
func TestPcapOfAHandshakeDataAndCloseReadByTshark(t *testing.T) {
	tshark := need(t, "tshark")
	s := shared(t)
	const id = "pcap-e2e"
	var created struct{ Session struct{ CreateTime string } }
	s.json(t, "POST", "/v1/sessions?sessionId="+id, `{"options": {"isnMode": "ISN_MODE_FIXED", "fixedIsn": 1000}}`, &created)
	base := "/v1/sessions/" + id
	s.json(t, "POST", base+"/endpoints", `{"endpointId": "web", "listen": {"localAddress": "10.0.0.1:80"}}`, nil)
	peer := func(seq, ack uint32, flags, payload string) {
		s.json(t, "POST", base+"/segments", segmentFields(seq, ack, flags, payload), nil)
	}
	peer(100, 0, "SYN", "")
	peer(101, 1001, "PSH,ACK", "hello")
	var acc struct{ Endpoint struct{ Name string } }
	s.json(t, "POST", base+"/endpoints/web:accept", `{}`, &acc)
	conn := "/v1/" + acc.Endpoint.Name
	s.json(t, "POST", conn+":receive", `{}`, nil)
	s.json(t, "POST", conn+":send", `{"text": "world"}`, nil)
	peer(106, 1006, "ACK", "")
	s.json(t, "POST", conn+":close", `{}`, nil)
	peer(106, 1007, "ACK", "")
	peer(106, 1007, "FIN,ACK", "")
	s.json(t, "POST", base+":advanceClock", `{"by": "61s"}`, nil)
	var ep struct{ Endpoint struct{ StateName string } }
	s.json(t, "GET", conn, "", &ep)
	if ep.Endpoint.StateName != "CLOSED" {
		t.Fatalf("the connection is %s after the close and 2·MSL, want CLOSED", ep.Endpoint.StateName)
	}

	// The engine's log: every inbound and every emitted segment, in order.
	var recs struct{ Records []apiRecord }
	s.json(t, "GET", base+"/records?pageSize=1000", "", &recs)
	type pkt struct {
		flags, seq, ack, length uint64
		at                      time.Duration
	}
	var want []pkt
	add := func(seg apiSegment, at string) {
		var f uint64
		for _, n := range seg.Flags {
			f |= flagBits[n]
		}
		d, err := time.ParseDuration(at)
		if err != nil {
			t.Fatalf("time %q: %v", at, err)
		}
		want = append(want, pkt{f, uint64(seg.Seq), uint64(seg.Ack), uint64(seg.PayloadLength), d})
	}
	for _, r := range recs.Records {
		if r.Segment != nil {
			add(*r.Segment, r.Time)
		}
		if r.Output != nil {
			for _, seg := range r.Output.Segments {
				add(seg, seg.Time)
			}
		}
	}
	// SYN, SYN-ACK, ACK with "hello"; "world" (carrying the delayed ACK of
	// "hello") and its ACK; FIN, ACK, FIN, ACK.
	if len(want) != 9 {
		t.Fatalf("the log has %d segments, want 9", len(want))
	}

	// The export, as curl would fetch it.
	resp, err := http.Get(s.url(base + "/pcap"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/vnd.tcpdump.pcap" {
		t.Fatalf("GET pcap: %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	file := filepath.Join(artifacts(t), id+".pcap")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	f.Close()

	out, err := exec.Command(tshark, "-r", file, "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE", "-T", "fields", "-E", "separator=,",
		"-e", "frame.time_epoch", "-e", "tcp.flags", "-e", "tcp.seq_raw", "-e", "tcp.ack_raw", "-e", "tcp.len",
		"-e", "tcp.checksum.status", "-e", "ip.checksum.status").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(want) {
		t.Fatalf("tshark read %d packets, the log has %d:\n%s", len(lines), len(want), out)
	}
	start, err := time.Parse(time.RFC3339Nano, created.Session.CreateTime)
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range lines {
		v := strings.Split(line, ",")
		if len(v) != 7 {
			t.Fatalf("packet %d: tshark printed %q", i, line)
		}
		num := func(j int) uint64 {
			n, err := strconv.ParseUint(v[j], 0, 64)
			if err != nil {
				t.Fatalf("packet %d field %d: %q", i, j, v[j])
			}
			return n
		}
		// Status 1 is "Good" (tshark 4.0: 0 bad, 1 good, 2 unverified).
		if v[5] != "1" || v[6] != "1" {
			t.Errorf("packet %d: TCP checksum status %s, IP checksum status %s, want 1 (good)", i+1, v[5], v[6])
		}
		got := pkt{num(1), num(2), num(3), num(4), 0}
		w := want[i]
		w.at = 0
		if got != w {
			t.Errorf("packet %d: tshark decodes flags %#x seq %d ack %d len %d; the log has flags %#x seq %d ack %d len %d",
				i+1, got.flags, got.seq, got.ack, got.length, w.flags, w.seq, w.ack, w.length)
		}
		epoch, err := strconv.ParseFloat(v[0], 64)
		if err != nil {
			t.Fatalf("packet %d: time %q", i+1, v[0])
		}
		wantEpoch := float64(start.Add(want[i].at).UnixNano()) / 1e9
		if math.Abs(epoch-wantEpoch) > 1e-5 {
			t.Errorf("packet %d: time %f, want the session's creation time plus %v (%f)", i+1, epoch, want[i].at, wantEpoch)
		}
	}
}
