// Package reportview turns a script run's report into the API's
// RunScriptResponse, the one report schema: RunScript returns it and
// `tcpstated script run --json` prints it, both in proto3 JSON
// (lowerCamelCase names, durations as strings, every field shown).
package reportview

import (
	"io"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
	"github.com/tcpstated/tcpstated/script"
)

// JSON is how reports are written: as the REST gateway writes them.
var JSON = protojson.MarshalOptions{EmitUnpopulated: true}

// Encode writes r as one line of proto3 JSON.
func Encode(w io.Writer, r *script.Report) error {
	b, err := JSON.Marshal(View(r))
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// View converts the runner's report to the API's RunScriptResponse.
func View(r *script.Report) *pb.RunScriptResponse {
	dur := func(sec float64) *durationpb.Duration {
		return durationpb.New(time.Duration(sec*1e6+0.5) * time.Microsecond)
	}
	v := &pb.RunScriptResponse{
		Passed:  r.Passed,
		Session: r.Session,
		Script:  r.Script,
		Compare: r.Compare,
		Failure: r.Failure,
		Skipped: uint32(r.Skipped),
		NotRun:  uint32(r.NotRun),
		EndTime: dur(r.EndTime),
		Lines:   make([]*pb.ScriptLine, 0, len(r.Lines)),
		Target:  r.Target,
	}
	for _, d := range r.Differences {
		v.Differences = append(v.Differences, &pb.ScriptDifference{Line: uint32(d.Line), Text: d.Text,
			Kernel: lineView(d.Kernel, dur), Engine: lineView(d.Engine, dur)})
	}
	for _, l := range r.Lines {
		v.Lines = append(v.Lines, lineView(l, dur))
	}
	return v
}

// lineView converts one line of a report.
func lineView(l script.LineResult, dur func(float64) *durationpb.Duration) *pb.ScriptLine {
	return &pb.ScriptLine{
		Line:        uint32(l.Line),
		Time:        dur(l.Time),
		Text:        l.Text,
		Kind:        l.Kind,
		Expected:    l.Expected,
		Actual:      l.Actual,
		Status:      l.Status,
		Reason:      l.Reason,
		Notes:       l.Notes,
		Transitions: l.Transitions,
		Engine:      l.Engine,
	}
}
