package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/tcpstated/tcpstated/replica"
	"github.com/tcpstated/tcpstated/service"
	"github.com/tcpstated/tcpstated/store"
	"github.com/tcpstated/tcpstated/store/filestore"
	"github.com/tcpstated/tcpstated/store/pgstore"
)

// isPostgres reports whether a --store value names a PostgreSQL database.
func isPostgres(v string) bool {
	return strings.HasPrefix(v, "postgres://") || strings.HasPrefix(v, "postgresql://")
}

func checkStoreFlag(v string) error {
	if v == "" || v == "file" || isPostgres(v) {
		return nil
	}
	return fmt.Errorf("--store: %q is neither 'file' nor a postgres:// URL", redactURL(v))
}

// redactURL hides a password in a URL for logs and errors.
func redactURL(v string) string {
	scheme, rest, ok := strings.Cut(v, "://")
	if !ok {
		return v
	}
	auth, host, ok := strings.Cut(rest, "@")
	if !ok {
		return v
	}
	if user, _, hasPw := strings.Cut(auth, ":"); hasPw {
		return scheme + "://" + user + ":***@" + host
	}
	return v
}

// storeWiring is the store a server runs on and, with PostgreSQL, the
// replica router in front of the service.
type storeWiring struct {
	st     store.Store
	pg     *pgstore.Store // nil with the file store
	router *replica.Router
	desc   string // for the "listening" log line
}

// openStore opens the store --store names. grpcAddr is the bound gRPC
// address (the default address other replicas forward to).
func openStore(ctx context.Context, c *serveConfig, fsync store.FsyncMode, grpcAddr string, logger *slog.Logger) (*storeWiring, error) {
	if !isPostgres(c.store) {
		st, err := filestore.Open(c.dataDir, filestore.Options{Fsync: fsync, MaxOpenLogs: c.maxOpenLogs, Logger: logger})
		if err != nil {
			return nil, fmt.Errorf("opening the data directory: %w", err)
		}
		return &storeWiring{st: st, desc: "file " + c.dataDir}, nil
	}
	addr := c.advertise
	if addr == "" {
		addr = advertiseAddr(grpcAddr)
	}
	id := c.replicaID
	if id == "" {
		id = addr
	}
	pg, err := pgstore.Open(ctx, c.store, pgstore.Options{
		Fsync:      fsync,
		Replica:    id,
		Addr:       addr,
		LeaseTTL:   c.leaseTTL,
		Renew:      c.leaseRenew,
		MaxLogSize: c.maxLogBytes,
		Logger:     logger,
	})
	if err != nil {
		return nil, fmt.Errorf("opening the PostgreSQL store %s: %w", redactURL(c.store), err)
	}
	return &storeWiring{st: pg, pg: pg, desc: "postgres " + redactURL(c.store) + " as replica " + id}, nil
}

// advertiseAddr turns a bound address into one other machines can dial:
// a wildcard host becomes this machine's name.
func advertiseAddr(bound string) string {
	host, port, err := net.SplitHostPort(bound)
	if err != nil {
		return bound
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if h, err := os.Hostname(); err == nil {
			return net.JoinHostPort(h, port)
		}
	}
	return bound
}

// attach puts the replica router in front of svc (PostgreSQL only) and
// registers the store's metrics; the options go after the authentication
// interceptors (a session's log name depends on the caller's tenant).
func (w *storeWiring) attach(svc *service.Service, reg prometheus.Registerer, dial []grpc.DialOption, logger *slog.Logger) []grpc.ServerOption {
	if w.pg == nil {
		return nil
	}
	w.router = replica.New(svc, w.pg, w.pg.Replica(), replica.NewMetrics(reg), logger, dial...)
	w.pg.OnLeaseLost(svc.HandOver)
	pg := w.pg
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tcpstated_replica_fenced_appends_total",
			Help: "Appends the database refused because another replica had taken the session's lease (fencing)."},
			func() float64 { return float64(pg.Stats().Fenced) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tcpstated_pg_commits_total",
			Help: "Group-commit transactions of the PostgreSQL store."},
			func() float64 { return float64(pg.Stats().Rounds) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tcpstated_pg_records_total",
			Help: "Records committed to the PostgreSQL store."},
			func() float64 { return float64(pg.Stats().Records) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tcpstated_replica_lease_valid",
			Help: "1 while this replica's lease is certainly live (renewed less than --lease-ttl ago)."},
			func() float64 {
				if pg.LeaseValid() {
					return 1
				}
				return 0
			}),
	)
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(w.router.Unary), grpc.ChainStreamInterceptor(w.router.Stream)}
}

// takeOver runs the background takeover of orphaned sessions until ctx
// ends (PostgreSQL only, every --takeover-interval).
func (w *storeWiring) takeOver(ctx context.Context, c *serveConfig) {
	if w.pg == nil || c.takeoverEvery == 0 {
		return
	}
	go w.router.TakeOverOrphans(ctx, c.takeoverEvery, w.pg.Orphans)
}

// logAttrs say where the logs are, for the "listening" line.
func (w *storeWiring) logAttrs(c *serveConfig) []any {
	if w.pg == nil {
		return []any{"data_dir", c.dataDir}
	}
	return []any{"store", w.desc}
}

func (w *storeWiring) close() {
	if w.router != nil {
		w.router.Close()
	}
}
