// The output lines, written whole from many goroutines.

package bridge

import (
	"fmt"
	"io"
	"sync"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// transitions prints the state changes in out: "state NAME FROM TO CAUSE
// TIME" (TIME on the session clock: lines from different goroutines may
// come out of order).
// Those of inbound segments and application calls are seen; those of
// timers alone (the end of TIME-WAIT, a retransmission give-up) are not.
func (l *lineWriter) transitions(out *pb.Outputs) {
	for _, t := range out.GetTransitions() {
		l.printf("state %s %s %s %s %v", t.Endpoint, t.FromStateName, t.ToStateName, t.Cause, t.Time.AsDuration())
	}
}

// lineWriter writes whole lines from many goroutines.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format+"\n", args...)
}
