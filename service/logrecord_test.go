package service

import (
	"bytes"
	"os"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
	"github.com/tcpstated/tcpstated/store/filestore"
)

// TestSessionRecordsAreProtoMarshal: every record a session wrote through
// the walkthrough (segments, application calls, clock advances) is on disk
// exactly as proto.Marshal encodes the message it decodes to.
func TestSessionRecordsAreProtoMarshal(t *testing.T) {
	e := newEnv(t, Config{})
	walkthroughOpen(t, e, "codec")
	e.stop()
	f, err := os.Open(logPath(e, "codec"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	n := 0
	if _, err := filestore.Scan(f, fi.Size(), func(i uint64, payload []byte) error {
		rec := &pb.LogRecord{}
		if err := proto.Unmarshal(payload, rec); err != nil {
			return err
		}
		want, err := proto.MarshalOptions{Deterministic: true}.Marshal(rec)
		if err != nil {
			return err
		}
		if !bytes.Equal(payload, want) {
			t.Errorf("record %d (%T):\n on disk %x\n proto   %x", i, rec.Body, payload, want)
		}
		n++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n < 5 {
		t.Fatalf("only %d records", n)
	}
}
