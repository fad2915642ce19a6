package script

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tcpstated/tcpstated/fsm"
	"github.com/tcpstated/tcpstated/script/enginetarget"
	"github.com/tcpstated/tcpstated/script/target"
)

// plainTarget hides every capability beyond target.Target, as a kernel
// target has none: the runner must judge the same lines without them.
type plainTarget struct{ target.Target }

// TestRunTargetWithoutExplainer runs the same script on the engine target
// as is and with its explanations hidden: the verdicts are the same, and
// without the capability the report has no transitions or explanations.
func TestRunTargetWithoutExplainer(t *testing.T) {
	src := handshake + "0.300 < P. 1:101(100) ack 1 win 65535\n0.500 > . 1:1(0) ack 101\n+0 read(4, ..., 1000) = 100\n" +
		"+0 close(4) = 0\n+0 > F. 1:1(0) ack 101\n"
	for _, bad := range []bool{false, true} {
		text := src
		if bad {
			text += "+0 > . 1:1(0) ack 102\n" // never sent: fails at the end
		}
		s, err := Parse("x.pkt", []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		cfg, _ := s.EngineConfig(defaultConfig())
		full := RunTarget(enginetarget.New(fsm.New(cfg), enginetarget.Options{}), s, Options{Name: "x.pkt"})
		s, _ = Parse("x.pkt", []byte(text))
		plain := RunTarget(plainTarget{enginetarget.New(fsm.New(cfg), enginetarget.Options{})}, s, Options{Name: "x.pkt"})
		if full.Passed == bad || plain.Passed != full.Passed || plain.EndTime != full.EndTime || len(plain.Lines) != len(full.Lines) {
			t.Fatalf("bad=%v: full passed=%v, plain passed=%v\n%s\n%s", bad, full.Passed, plain.Passed, verboseText(full), verboseText(plain))
		}
		for i, l := range plain.Lines {
			f := full.Lines[i]
			if len(l.Transitions) != 0 || len(l.Engine) != 0 {
				t.Errorf("line %d: the plain target showed %v %v", l.Line, l.Transitions, l.Engine)
			}
			f.Transitions, f.Engine = nil, nil
			if bad && f.Status == StatusFail {
				continue // the reason quotes the engine's explanation
			}
			if !reflect.DeepEqual(l, f) {
				t.Errorf("line %d differs:\n plain %+v\n full  %+v", l.Line, l, f)
			}
		}
	}
}

// TestRunTargetIsRun: RunTarget on the engine target gives Run's report.
func TestRunTargetIsRun(t *testing.T) {
	src := []byte("--tcpstated_delayed_ack=false\n" + handshake + "0.300 < P. 1:101(100) ack 1 win 65535\n+0 > . 1:1(0) ack 101\n")
	want, err := Run(src, Options{Name: "y.pkt"})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := Parse("y.pkt", src)
	cfg, _ := s.EngineConfig(defaultConfig())
	got := RunTarget(enginetarget.New(fsm.New(cfg), enginetarget.Options{}), s, Options{Name: "y.pkt"})
	if !reflect.DeepEqual(got, want) {
		t.Errorf("RunTarget:\n%s\nRun:\n%s", verboseText(got), verboseText(want))
	}
}

// commandTarget runs sysctl lines as a kernel target would (here it only
// records them), refuses other commands, and fails "sysctl -w bad".
type commandTarget struct {
	*enginetarget.Target
	ran []string
}

func (c *commandTarget) Command(cmd string) (string, error) {
	switch {
	case cmd == "sysctl -w bad":
		return "", errors.New("exit status 255")
	case strings.HasPrefix(cmd, "sysctl "):
		c.ran = append(c.ran, cmd)
		return "", nil
	}
	return "skipped: only sysctl commands run here", nil
}

// TestCommander: a target that runs shell commands gets the script's
// backquoted lines; one it refuses is skipped, one that fails fails.
func TestCommander(t *testing.T) {
	s, err := Parse("c.pkt", []byte("`sysctl -w net.ipv4.tcp_sack=0`\n`ip link`\n+0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n`sysctl -w bad`\n"))
	if err != nil {
		t.Fatal(err)
	}
	ct := &commandTarget{Target: enginetarget.New(fsm.New(defaultConfig()), enginetarget.Options{})}
	rep := RunTarget(ct, s, Options{})
	if len(ct.ran) != 1 || ct.ran[0] != "sysctl -w net.ipv4.tcp_sack=0" {
		t.Errorf("ran %q", ct.ran)
	}
	got := []string{rep.Lines[0].Status, rep.Lines[1].Status, rep.Lines[2].Status, rep.Lines[3].Status}
	if !reflect.DeepEqual(got, []string{StatusPass, StatusSkip, StatusPass, StatusFail}) || rep.Skipped != 1 {
		t.Errorf("statuses %v, skipped %d\n%s", got, rep.Skipped, verboseText(rep))
	}
	wantContains(t, "failure", rep.Failure, "line 4: the command failed: exit status 255")
}

// TestSetup: the addresses a target is set up with come from the header.
func TestSetup(t *testing.T) {
	s, err := Parse("", []byte("--ip_version=ipv6 --tolerance_usecs=25000\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Setup()
	want := target.Setup{Local: DefaultLocalIPv6, Remote: DefaultRemoteIPv6, Tolerance: 25 * time.Millisecond,
		Options: map[string]string{"ip_version": "ipv6", "tolerance_usecs": "25000"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Setup() = %+v, %v; want %+v", got, err, want)
	}
}
