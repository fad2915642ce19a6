package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/tcpstated/tcpstated/service"
	"github.com/tcpstated/tcpstated/store"
	"github.com/tcpstated/tcpstated/store/filestore"
	"github.com/tcpstated/tcpstated/store/pgstore"
)

// logCommand runs `tcpstated log dump FILE` and `tcpstated log verify
// FILE`, or with --store=postgres://… (or TCPSTATED_STORE) the same on the
// log named LOG in that database: its bytes are the file's (header and
// frames), so both are read by the same scanner. Neither changes anything;
// both work while servers run.
func logCommand(args []string, stdout, stderr io.Writer) int {
	const usage = "usage: tcpstated log {dump|verify} FILE\n       tcpstated log {dump|verify} --store=postgres://… LOG\n"
	url := os.Getenv("TCPSTATED_STORE")
	if len(args) == 3 {
		v, ok := strings.CutPrefix(args[1], "--store=")
		if !ok {
			fmt.Fprint(stderr, usage)
			return 2
		}
		url, args = v, []string{args[0], args[2]}
	}
	if len(args) != 2 || (args[0] != "dump" && args[0] != "verify") {
		fmt.Fprint(stderr, usage)
		return 2
	}
	path := args[1]
	scan := func(fn func(uint64, []byte) error) (*store.DamageError, error) {
		res, err := filestore.ScanFile(path, fn)
		return res.Damage, err
	}
	if isPostgres(url) {
		scan = func(fn func(uint64, []byte) error) (*store.DamageError, error) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			img, err := pgstore.ReadImage(ctx, url, path)
			if err != nil {
				return nil, err
			}
			res, err := filestore.Scan(bytes.NewReader(img), int64(len(img)), fn)
			return res.Damage, err
		}
	} else if url != "" && url != "file" {
		fmt.Fprintf(stderr, "tcpstated: --store: %q is neither 'file' nor a postgres:// URL\n", redactURL(url))
		return 2
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
