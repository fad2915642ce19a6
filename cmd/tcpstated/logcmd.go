package main

import (
	"fmt"
	"io"

	"github.com/tcpstated/tcpstated/service"
	"github.com/tcpstated/tcpstated/store"
	"github.com/tcpstated/tcpstated/store/filestore"
)

// logCommand runs `tcpstated log dump FILE` and `tcpstated log verify FILE`.
// Neither changes the file; both work while a server runs.
func logCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) != 2 || (args[0] != "dump" && args[0] != "verify") {
		fmt.Fprint(stderr, "usage: tcpstated log dump FILE | tcpstated log verify FILE\n")
		return 2
	}
	path := args[1]
	scan := func(fn func(uint64, []byte) error) (*store.DamageError, error) {
		res, err := filestore.ScanFile(path, fn)
		return res.Damage, err
	}
	if args[0] == "dump" {
		if err := service.DumpLog(stdout, scan); err != nil {
			fmt.Fprintf(stderr, "tcpstated: %v\n", err)
			return 1
		}
		return 0
	}
	res, err := service.VerifyLog(path, scan)
	if err != nil {
		fmt.Fprintf(stderr, "tcpstated: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: %s, %d records re-run\n", path, res.Session, res.Records)
	if res.Identical {
		fmt.Fprintln(stdout, "outputs: identical")
	} else {
		d := res.FirstDifference
		fmt.Fprintf(stdout, "outputs: %d differences; the first at record %d, %s:\n  logged: %s\n  re-run: %s\n",
			res.Differences, d.Index, d.Field, d.Expected, d.Actual)
	}
	if res.Unpaired {
		fmt.Fprintln(stdout, "the last input has no output record (a call was in flight)")
	}
	if res.Damage != nil {
		fmt.Fprintf(stdout, "damaged: %v\n", res.Damage)
	}
	if !res.OK() {
		return 1
	}
	return 0
}
