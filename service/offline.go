package service

import (
	"fmt"
	"io"
	"os"

	"google.golang.org/protobuf/proto"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
	"github.com/tcpstated/tcpstated/service/replaylog"
)

// These functions read one log file without a server and without changing
// it: `tcpstated log dump` and `tcpstated log verify`.

// VerifyResult is what re-running a log file found.
type VerifyResult struct {
	Session string // the name in the start record
	Records uint64 // good records re-run
	// Identical: every output of the re-run equals the logged one.
	Identical       bool
	FirstDifference *pb.Difference
	Differences     int
	// Damage: the file has a torn or corrupt tail after Records records
	// (nil when the whole file is good). The server would truncate it.
	Damage *replaylog.DamageError
	// Unpaired: the last input has no output record (a call was in flight).
	Unpaired bool
}

// OK reports whether the log re-ran identically and has no damage.
func (r VerifyResult) OK() bool { return r.Identical && r.Damage == nil }

// VerifyLog re-runs the log file at path in a fresh engine and compares
// every output with the logged one. An error means the file could not be
// read or re-run at all (no file, bad header, no start record).
func VerifyLog(path string) (VerifyResult, error) {
	rr := &rerun{}
	res, err := scanFile(path, rr.feed)
	if err != nil {
		return VerifyResult{}, err
	}
	if rr.start == nil {
		if res.Damage != nil {
			return VerifyResult{Damage: res.Damage}, fmt.Errorf("%s: no readable start record: %v", path, res.Damage)
		}
		return VerifyResult{}, fmt.Errorf("%s: the log has no records", path)
	}
	return VerifyResult{
		Session:         rr.start.Name,
		Records:         rr.records,
		Identical:       rr.diff == nil,
		FirstDifference: rr.diff,
		Differences:     rr.diffs,
		Damage:          res.Damage,
		Unpaired:        rr.pending != nil,
	}, nil
}

// DumpLog writes the records of the log file at path to w, one line each:
// index, session clock, kind and a summary. Damage at the end of the file
// is reported in a final line and as the error.
func DumpLog(w io.Writer, path string) error {
	res, err := scanFile(path, func(i uint64, payload []byte) error {
		rec := &pb.LogRecord{}
		if err := proto.Unmarshal(payload, rec); err != nil {
			_, werr := fmt.Fprintf(w, "#%d undecodable record: %v\n", i, err)
			return werr
		}
		v := recordView(rec)
		_, err := fmt.Fprintf(w, "#%d %v %s\n", rec.Index, rec.Time.AsDuration(), v.Summary)
		return err
	})
	if err != nil {
		return err
	}
	if res.Damage != nil {
		fmt.Fprintf(w, "damaged after %d records: %v\n", res.Records, res.Damage)
		return res.Damage
	}
	return nil
}

func scanFile(path string, fn func(uint64, []byte) error) (replaylog.ScanResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return replaylog.ScanResult{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return replaylog.ScanResult{}, err
	}
	return replaylog.Scan(f, fi.Size(), fn)
}
