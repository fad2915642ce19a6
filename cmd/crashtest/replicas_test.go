package main

import (
	"context"
	"os"
	"testing"

	"github.com/tcpstated/tcpstated/internal/pgtest"
)

// TestReplicasLoseNothingAcknowledged: three replicas on one real
// PostgreSQL under clients spread over all of them; a random replica is
// SIGKILLed and restarted, one is SIGSTOPped past its lease and resumed
// (its writes must be fenced), and PostgreSQL itself is crashed and
// restarted (CRASHTEST_REPLICA_N events, default 6; `make crashtest` runs
// 20). Nothing acknowledged is lost, nothing is applied twice, every
// session re-runs identically.
func TestReplicasLoseNothingAcknowledged(t *testing.T) {
	if ok, why := pgtest.Available(); !ok {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL is required under CI=true: %s", why)
		}
		t.Skipf("skipping: PostgreSQL is not available: %s", why)
	}
	n := envInt(t, "CRASHTEST_REPLICA_N", 6)
	if testing.Short() {
		n = min(n, 3)
	}
	seed := envSeed(t)
	res, err := RunReplicas(context.Background(), ReplicaConfig{
		Config:   Config{Binary: serverBin, N: n, Seed: seed, Workers: 6, Out: testWriter{t}},
		Replicas: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range res.Failures {
		t.Error(f)
	}
	if res.Lost != 0 || res.Duplicated != 0 || res.Checked == 0 || res.Verified == 0 || res.Kills == 0 {
		t.Fatalf("%s", res.summary())
	}
	if n >= 3 && (res.Pauses == 0 || res.DBRestarts == 0) {
		t.Fatalf("the run had no pause or no database restart: %s", res.summary())
	}
}
