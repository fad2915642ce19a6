// Package filestore is the embedded store (store.Store) of the replay logs:
// one append-only file per session, records checksummed and framed like
// etcd's WAL, made durable with group commit, and recovered after a crash.
// It knows nothing about what the records mean. The service never names it:
// cmd/tcpstated opens it and hands the service a store.Store.
//
// # Files
//
// A FileStore keeps one file NAME.log per log in its data directory, where
// NAME matches [a-z0-9-]{1,63} (a session id). The directory is flock'ed by
// one store at a time. A log is created as NAME.log.tmp holding only the
// file header, fsync'ed, renamed to NAME.log, and the directory is fsync'ed,
// so a log either exists complete or not at all; leftover .tmp files are
// removed when a store opens. Remove unlinks and fsyncs the directory.
//
// # Format
//
// All integers are little-endian. The file starts with a 32-byte header:
//
//	0        8          12         16                    28         32
//	+--------+----------+----------+---------------------+----------+
//	|TCPSLOG1| version=1|   seed   |  reserved (zeros)   | CRC-32C  |
//	+--------+----------+----------+---------------------+----------+
//	                                         CRC-32C of bytes 0..27 ^
//
// and is followed by frames, each starting at a multiple of 8 bytes:
//
//	0                               8          12            12+n     12+n+pad
//	+-------------------------------+----------+-------------+--------+
//	| pad (top byte) | n (56 bits)  |   crc    |   payload   | zeros  |
//	+-------------------------------+----------+-------------+--------+
//
//	n     payload length, 0 ≤ n ≤ store.MaxRecordSize (16 MiB)
//	pad   0..7 zero bytes so that the frame length 12+n+pad is a multiple of 8
//	crc   CRC-32C (Castagnoli) over the 8 length bytes and the payload,
//	      continuing from the previous frame's crc; the first frame continues
//	      from the header's seed (random per file, so a frame copied from
//	      another log never fits)
//
// Alignment means a length word never straddles a sector, so it is written
// whole or not at all. An empty record has pad = 4, so no valid length word
// is zero and a zero-filled region can never be mistaken for records. Each
// frame is written with a single write(2); AppendBatch writes the frames of
// several records with a single write(2), byte for byte what one append per
// record would have written. Record i (from 0) is the i-th frame.
//
// # Recovery
//
// Open reads frames from the start and stops at the first that is not
// good; everything before it is kept, the file is truncated there and
// fsync'ed, and the store.RecoveryReport (and a warning log line) says how many
// records were kept, the offset, the bytes dropped and why. The damage is
// classified, as in etcd's decoder:
//
//   - store.ErrTornTail: the file ends inside a frame (also a length word that
//     points past the end: a damaged length cannot be told from a short
//     write); or the rest of the file from a frame boundary is zeros; or the
//     last frame fails its CRC, only zeros follow it, and one of its
//     512-byte-aligned pieces is all zeros (a partly written frame). A crash
//     leaves these; in store.FsyncAlways mode they only hold records whose Append
//     had not returned.
//   - store.ErrCorrupt: a complete frame fails its CRC, its length exceeds
//     store.MaxRecordSize or disagrees with its pad byte, its padding is not
//     zero, or a zero length word is followed by non-zero data.
//   - ErrBadHeader (wraps store.ErrCorrupt): the header is short or invalid. Open
//     then returns a *store.DamageError and leaves the file untouched.
//
// A length is checked against store.MaxRecordSize and against the bytes left in
// the file before anything is allocated. No file content makes the reader
// panic (FuzzReadLog). Scan applies the same rules to a file image without
// changing it, for offline dump and verify tools.
//
// # Durability
//
// Options.Fsync selects the contract:
//
//   - store.FsyncAlways (default): Append returns only when the record is on
//     stable storage. AppendAsync writes and returns the index; Durable(i)
//     waits until record i is durable. So a caller can append under its own
//     lock and wait after releasing it, and consecutive requests on one
//     session pipeline. AppendBatch is AppendAsync for several records
//     with one write(2); Durable(last) waits for all of them. When
//     Durable(i) returns nil every record ≤ i of that log is durable:
//     records are written in index order, and a sync covers everything
//     written before it started.
//   - store.FsyncBatch: Append returns after the write; the store syncs dirty logs
//     every BatchInterval (10 ms). A machine crash loses at most that much.
//   - store.FsyncNever: only Sync (and Close, except in this mode) syncs.
//
// Sync forces durability of everything appended so far in any mode.
//
// Group commit: one syncer goroutine per store. Waiters join the next
// round; the syncer takes the round, notes how many records each of its
// logs has written, makes them durable, and wakes all the round's waiters.
// Appends arriving meanwhile form the next round, so concurrent appenders
// on one log or across many sessions share syncs. A round with one dirty
// log uses fdatasync(2). With two or more (SyncfsThreshold) it uses one
// syncfs(2) of the data directory's file system on Linux ≥ 5.8 (earlier
// kernels do not report write-back errors from syncfs), as long as the
// running average cost of a syncfs stays below that of one fdatasync per
// log; syncfs also writes back unrelated files on the same file system,
// so a busy neighbour makes it slow, and the store then falls back to
// parallel fdatasyncs (probing syncfs again every 64 rounds). On the
// development machine (ext4, virtio disk) an fdatasync costs about 190 µs,
// 64 of them 5.4 ms in parallel, and a syncfs 200-300 µs for up to 16
// dirty logs and 580 µs for 64; with 64 appenders on 64 logs a round
// serves about 32 appends with one syncfs (about 12 µs per durable
// append). See BenchmarkSyncRound and BenchmarkAppendAlwaysParallel.
//
// Open files: a store keeps at most MaxOpenLogs (default 1024, the
// --max-open-logs flag) log files open, so the number of sessions is not
// bound by the open-file limit. Past it the least recently used idle log
// (CLOCK, fdcache.go) has its fd closed, after an fdatasync if it has
// records not yet durable (so no group-commit round or later Sync loses
// its data or a write-back error with the fd), and reopened O_APPEND on
// its next append, sync or read. Its CRC chain value, size and record
// count stay in memory: nothing is rescanned, and the reopened file must
// have the size the log expects. A failed reopen poisons the log.
//
// Page cache: a log is read back only by a restore, a dump or a re-run,
// so every 4 MiB it starts the write-back of the window just written and
// drops the window before it from the page cache (sync_file_range(2)
// without waiting, POSIX_FADV_DONTNEED), keeping at most two windows
// cached. Neither hint waits or consumes a write-back error a later
// fdatasync must report; an I/O error starting the write-back poisons the
// log, and a file system that refuses a hint is not given it again. On a
// virtual machine this about halves the CPU cost of a log's write(2): fresh
// pages are dear there (docs/PERFORMANCE.md).
//
// Failures are never retried: after a failed write or sync the kernel may
// have dropped the dirty pages, so a retry could report success for lost
// data. The log is poisoned instead: that call and every later one return
// an error wrapping store.ErrPoisoned and the cause. A failed syncfs is followed
// by an fdatasync of each log in the round, which attributes the error to
// the logs it touched. The service should treat a poisoned session as
// failed and reopen it (recovery then trims any partial frame).
package filestore
