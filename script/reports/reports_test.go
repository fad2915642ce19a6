package reports

import (
	"encoding/json"
	"encoding/xml"
	"strings"
	"testing"
)

var cases = []Case{
	{Name: "handshake-passive.pkt", Group: "server", Points: 2, Passed: true, Seconds: 0.3},
	{Name: "time-wait-reack.pkt", Group: "server", Points: 3, Failure: "line 23: flags: expected ., got R",
		Detail: "expected: . 2:2(0) ack 2\nsent:     R 2:2(0)"},
	{Name: "handshake-active.pkt", Group: "client", Skipped: "the agent could not be reset"},
}

func TestJUnit(t *testing.T) {
	var b strings.Builder
	if err := WriteJUnit(&b, "tcpstated", cases); err != nil {
		t.Fatal(err)
	}
	var doc junitSuites
	if err := xml.Unmarshal([]byte(b.String()), &doc); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if doc.Tests != 3 || doc.Failures != 1 || doc.Skipped != 1 || doc.Suites[0].Cases[1].Failure.Message != cases[1].Failure ||
		doc.Suites[0].Cases[0].Classname != "tcpstated.server" {
		t.Errorf("%+v\n%s", doc, b.String())
	}
}

func TestGradescope(t *testing.T) {
	var b strings.Builder
	if err := WriteGradescope(&b, cases); err != nil {
		t.Fatal(err)
	}
	var doc gradescope
	if err := json.Unmarshal([]byte(b.String()), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Score != 2 || len(doc.Tests) != 3 || doc.Tests[1].Status != "failed" || doc.Tests[1].MaxScore != 3 ||
		!strings.Contains(doc.Tests[1].Output, "sent:     R") || doc.Tests[0].Status != "passed" {
		t.Errorf("%s", b.String())
	}
}
