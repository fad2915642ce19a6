package script

import (
	"reflect"
	"testing"

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
