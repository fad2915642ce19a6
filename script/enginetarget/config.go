package enginetarget

import (
	"fmt"
	"reflect"

	"github.com/tcpstated/tcpstated/fsm"
)

// Sockopt applies to cfg a setsockopt call that comes before the engine's
// first connection: the engine's configuration is fixed for its lifetime,
// so SO_RCVBUF (the receive buffer, hence the window: taken as is, or
// doubled as Linux does under the tcp_rmem switch), SO_SNDBUF and TCP_NODELAY take effect only when
// the engine is built with them. It returns what the call set, or "" if
// it sets nothing.
func Sockopt(cfg *fsm.Config, opt string, v int64) string {
	switch opt {
	case "SO_RCVBUF":
		if v > 0 && v <= 1<<30 {
			if got := cfg.SetRecvBufferOption(int(v)); got != int(v) {
				return fmt.Sprintf("configures the engine: receive buffer %d bytes (doubled, as Linux: switch tcp_rmem), offering a window of %d", got, got/2)
			}
			return fmt.Sprintf("configures the engine: receive buffer (and window) %d bytes", v)
		}
	case "SO_SNDBUF":
		if v > 0 && v <= 1<<30 {
			cfg.SendBuffer = int(v)
			return fmt.Sprintf("configures the engine: send buffer %d bytes", v)
		}
	case "TCP_NODELAY":
		cfg.NoNagle = v != 0
		if v != 0 {
			return "configures the engine: Nagle's algorithm off"
		}
		return "configures the engine: Nagle's algorithm on"
	}
	return ""
}

// ConfigNote says, when e shows its configuration and it is not want, that
// the script's options may not have taken effect: e was built by someone
// else. ISNs do not count (the script's numbers are relative), nor does the
// secret.
func ConfigNote(e Engine, want fsm.Config) string {
	c, ok := e.(interface{ Config() fsm.Config })
	if !ok {
		return ""
	}
	got, w := c.Config(), want.Defaults()
	got.Secret, w.Secret = [16]byte{}, [16]byte{}
	got.ISNMode, w.ISNMode, got.FixedISN, w.FixedISN = 0, 0, 0, 0
	if reflect.DeepEqual(got, w) {
		return ""
	}
	return "the engine was configured by its creator and differs from what the script asks for; this option may not have taken effect"
}
