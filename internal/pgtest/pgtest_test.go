package pgtest

import (
	"testing"
)

// TestCrashKeepsCommitted: a row committed before pg_ctl -m immediate is
// there after the restart (WAL recovery), and the URL of a fresh database
// works.
func TestCrashKeepsCommitted(t *testing.T) {
	s := Start(t)
	db := s.NewDB(t)
	if out, err := s.Psql(db, "CREATE TABLE k (v int); INSERT INTO k VALUES (42)"); err != nil {
		t.Fatalf("psql: %v\n%s", err, out)
	}
	if err := s.Crash(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Psql(db, "SELECT 1"); err == nil {
		t.Fatal("psql worked against a stopped server")
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	out, err := s.Psql(db, "SELECT v FROM k")
	if err != nil || out != "42" {
		t.Fatalf("after crash and restart: %q, %v", out, err)
	}
}
