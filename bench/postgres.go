package bench

import (
	"fmt"

	"github.com/tcpstated/tcpstated/internal/pgtest"
)

// The PostgreSQL store's figures: the same loads against a tcpstated on
// --store=postgres://… (each run on a fresh database of one PostgreSQL
// started for the benchmark), for synchronous commit (fsync=always) and
// asynchronous commit (fsync=never).

func pgName(load, fsync string) string { return "tcpstated " + load + " pg fsync=" + fsync }

// startPostgres starts the benchmark's PostgreSQL unless Postgres is
// "off" or its binaries are missing (then the figures are left out and the
// progress says why).
func (c *Config) startPostgres() (stop func(), err error) {
	stop = func() {}
	if c.Postgres == "off" {
		return stop, nil
	}
	if c.Postgres != "" && c.Postgres != "auto" {
		return stop, fmt.Errorf("--postgres: %q is neither auto nor off", c.Postgres)
	}
	if ok, why := pgtest.Available(); !ok {
		fmt.Fprintf(c.Progress, "PostgreSQL store not measured: %s\n", why)
		return stop, nil
	}
	pg, err := pgtest.New()
	if err != nil {
		return stop, fmt.Errorf("starting PostgreSQL: %w", err)
	}
	c.pg = pg
	return pg.Remove, nil
}

// pgModes are the fsync modes measured on PostgreSQL (none without it).
func (c *Config) pgModes() []string {
	if c.pg == nil {
		return nil
	}
	return []string{"never", "always"}
}

// newDatabase makes a fresh database and returns its URL.
func (c *Config) newDatabase() (string, error) {
	c.pgDB++
	name := fmt.Sprintf("bench%d", c.pgDB)
	if err := c.pg.CreateDB(name); err != nil {
		return "", err
	}
	return c.pg.URL(name), nil
}
