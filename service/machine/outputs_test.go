package machine

import (
	"testing"

	"github.com/tcpstated/tcpstated/fsm"
	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// TestEventKindsMatchProto: outputs convert an fsm.EventKind to the
// proto enum by number, so every kind the engine has must be the proto
// value of the same name (an engine event the API has no name for
// would reach clients as a bare number).
func TestEventKindsMatchProto(t *testing.T) {
	for k := fsm.EventEstablished; ; k++ {
		name := k.String()
		if name == "UNKNOWN" {
			if int(k) < len(pb.EventKind_name) {
				t.Errorf("the proto has %s, the engine no kind %d", pb.EventKind(k), k)
			}
			return
		}
		if got := pb.EventKind(k).String(); got != "EVENT_KIND_"+name {
			t.Errorf("engine kind %d %s is %s in the proto", k, name, got)
		}
	}
}
