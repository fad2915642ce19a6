package service

import (
	"fmt"
	"io"

	"google.golang.org/protobuf/proto"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"

	"github.com/tcpstated/tcpstated/store"

	"github.com/tcpstated/tcpstated/service/machine"
)

// These functions read one log without a server and without changing it:
// `tcpstated log dump` and `tcpstated log verify`. Where the log comes from
// is the caller's business (filestore.ScanFile for a log file).

// Scan reads a log: it calls fn for every good record in order and returns
// the damage that ends the log early (nil when the whole log is good). An
// error means the log could not be read at all, or is fn's.
type Scan func(fn func(index uint64, payload []byte) error) (*store.DamageError, error)

// VerifyResult is what re-running a log file found.
type VerifyResult struct {
	Session string // the name in the start record
	Records uint64 // good records re-run
	// Identical: every output of the re-run equals the logged one.
	Identical       bool
	FirstDifference *pb.Difference
	Differences     int
	// Damage: the log has a torn or corrupt tail after Records records
	// (nil when the whole file is good). The server would truncate it.
	Damage *store.DamageError
	// Unpaired: the last input has no output record (a call was in flight).
	Unpaired bool
}

// OK reports whether the log re-ran identically and has no damage.
func (r VerifyResult) OK() bool { return r.Identical && r.Damage == nil }

// VerifyLog re-runs the log named name that scan reads in a fresh engine
// and compares every output with the logged one. An error means the log
// could not be read or re-run at all (no file, bad header, no start
// record).
func VerifyLog(name string, scan Scan) (VerifyResult, error) {
	rr := newRerun()
	damage, err := scan(rr.Feed)
	if err != nil {
		return VerifyResult{}, err
	}
	if rr.Start == nil {
		if damage != nil {
			return VerifyResult{Damage: damage}, fmt.Errorf("%s: no readable start record: %v", name, damage)
		}
		return VerifyResult{}, fmt.Errorf("%s: the log has no records", name)
	}
	return VerifyResult{
		Session:         rr.Start.Name,
		Records:         rr.Records,
		Identical:       rr.Diff == nil,
		FirstDifference: rr.Diff,
		Differences:     rr.Diffs,
		Damage:          damage,
		Unpaired:        rr.Pending != nil,
	}, nil
}

// DumpLog writes the records of the log scan reads to w, one line each:
// index, session clock, kind and a summary. Damage at the end of the log
// is reported in a final line and as the error.
func DumpLog(w io.Writer, scan Scan) error {
	damage, err := scan(func(i uint64, payload []byte) error {
		rec := &pb.LogRecord{}
		if err := proto.Unmarshal(payload, rec); err != nil {
			_, werr := fmt.Fprintf(w, "#%d undecodable record: %v\n", i, err)
			return werr
		}
		v := machine.RecordView(rec)
		_, err := fmt.Fprintf(w, "#%d %v %s\n", rec.Index, rec.Time.AsDuration(), v.Summary)
		return err
	})
	if err != nil {
		return err
	}
	if damage != nil {
		fmt.Fprintf(w, "damaged after %d records: %v\n", damage.Index, damage)
		return damage
	}
	return nil
}
