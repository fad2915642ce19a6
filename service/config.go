package service

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
	"github.com/tcpstated/tcpstated/store"
)

// Config configures a Service. The zero value works: everything has a
// safe default (Open also needs DataDir).
type Config struct {
	// DataDir, Fsync and FsyncBatchInterval configure the file store Open
	// opens; New, given its store, ignores them. DataDir holds one replay
	// log per session (created if missing); Fsync is when log records reach
	// stable storage (default FsyncAlways: a call returns only once what it
	// changed is durable); FsyncBatchInterval is the FsyncBatch period
	// (default 10 ms).
	DataDir            string
	Fsync              store.FsyncMode
	FsyncBatchInterval time.Duration
	// Limits bound what clients can make the server hold.
	Limits Limits
	// Logger receives the service's logs; nil means slog.Default().
	Logger *slog.Logger
	// Metrics, when set, receives the service's Prometheus collectors.
	Metrics prometheus.Registerer
	// RequireTenant: every call must carry a tenant (tenant.NewContext;
	// the Authenticator's interceptors set it) and sees only the sessions
	// that tenant created (tenant.go).
	RequireTenant bool
	// RealtimeResolution is the smallest clock step a REALTIME session logs
	// before an input when no timer is due (default 1 ms). Timers that are
	// due are always fired first.
	RealtimeResolution time.Duration
	// SessionTTL is the ttl of a session created without an expiration
	// (expiry.go); 0 means such sessions never expire.
	SessionTTL time.Duration
	// PanicHook, when set, is called before the engine applies each input
	// of a session, where a panic is recovered (panic.go): tests inject
	// panics with it.
	PanicHook func(session string, in *pb.Input)
	// ExpiryInterval is how often expired sessions are removed (default 1 s).
	ExpiryInterval time.Duration
}

// Limits bound the resources clients can make the server hold. Reaching one
// gives RESOURCE_EXHAUSTED and changes nothing. Zero fields take the
// defaults below.
type Limits struct {
	// MaxSessions bounds the sessions of the server (default 10000).
	MaxSessions int
	// MaxSessionsPerTenant bounds the sessions one tenant may hold when
	// Config.RequireTenant is set (default 1000).
	MaxSessionsPerTenant int
	// MaxEndpoints bounds the live endpoints of one session, listeners and
	// connections (fsm.Config.MaxEndpoints; default 1024). It is fixed in a
	// session's log when the session is created.
	MaxEndpoints int
	// MaxBufferBytes caps SessionOptions.send_buffer and receive_window, the
	// bytes one connection may buffer each way (default 4 MiB).
	MaxBufferBytes int
	// MaxOutboundQueue is the length of a session's outbound queue; when it
	// is full the oldest segment is discarded and counted (default 1024).
	MaxOutboundQueue int
	// MaxMessageBytes is the largest request the binary accepts
	// (grpc.MaxRecvMsgSize; default 4 MiB). The service also refuses a
	// single SendData larger than this.
	MaxMessageBytes int
	// MaxLogBytes bounds one session's log file; once it is passed every
	// call that would change the session is refused (default 256 MiB).
	MaxLogBytes int64
	// MaxPageSize caps page_size of List calls (default 1000); DefaultPageSize
	// is used when page_size is 0 (default 100).
	MaxPageSize     int
	DefaultPageSize int
	// MaxWatchers bounds concurrent WatchSegments and following
	// StreamRecords streams per session (default 16).
	MaxWatchers int
	// MaxPacketsPerMessage bounds the packets of one ExchangeSegments
	// request (default 4096).
	MaxPacketsPerMessage int
}

// Default limits.
const (
	DefaultMaxSessions          = 10000
	DefaultMaxSessionsPerTenant = 1000
	DefaultMaxEndpoints         = 1024
	DefaultMaxBufferBytes       = 4 << 20
	DefaultMaxOutboundQueue     = 1024
	DefaultMaxMessageBytes      = 4 << 20
	DefaultMaxLogBytes          = 256 << 20
	DefaultMaxPageSize          = 1000
	DefaultPageSize             = 100
	DefaultMaxWatchers          = 16
	DefaultMaxPacketsPerMessage = 4096
)

// WithDefaults returns l with every zero (or negative) field set to its default.
func (l Limits) WithDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxSessions, DefaultMaxSessions)
	def(&l.MaxSessionsPerTenant, DefaultMaxSessionsPerTenant)
	def(&l.MaxEndpoints, DefaultMaxEndpoints)
	def(&l.MaxBufferBytes, DefaultMaxBufferBytes)
	def(&l.MaxOutboundQueue, DefaultMaxOutboundQueue)
	def(&l.MaxMessageBytes, DefaultMaxMessageBytes)
	def(&l.MaxPageSize, DefaultMaxPageSize)
	def(&l.DefaultPageSize, DefaultPageSize)
	def(&l.MaxWatchers, DefaultMaxWatchers)
	def(&l.MaxPacketsPerMessage, DefaultMaxPacketsPerMessage)
	if l.MaxLogBytes <= 0 {
		l.MaxLogBytes = DefaultMaxLogBytes
	}
	if l.DefaultPageSize > l.MaxPageSize {
		l.DefaultPageSize = l.MaxPageSize
	}
	return l
}

func (c Config) withDefaults() Config {
	c.Limits = c.Limits.WithDefaults()
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.ExpiryInterval <= 0 {
		c.ExpiryInterval = time.Second
	}
	if c.RealtimeResolution <= 0 {
		c.RealtimeResolution = time.Millisecond
	}
	return c
}
