// Package pgstore keeps tcpstated's replay logs in PostgreSQL (through
// pgx), so several replicas can share one database and take each other's
// sessions over. It implements the same store interface as the embedded
// file store and keeps the same bytes: a log's row holds the 32-byte
// header the file store writes at the start of its file, and each record
// row holds one frame exactly as the file store writes it (length word,
// CRC-32C chained from the header's seed, payload, padding). Header and
// frames in index order are the file (Store.Image), so `tcpstated log
// dump` and `log verify` read either store and a test compares the two
// byte for byte.
//
// # Schema
//
// Created and upgraded by the numbered migrations in migrations/ (see
// migrate.go): logs (one row per log: header, record count, size, CRC
// chain value, lease owner and epoch), records (log, idx, frame) and
// replicas (each replica's heartbeat and address). A database newer than
// the binary is refused at start (ErrSchemaTooNew).
//
// # Durability and group commit
//
// An append is durable when its transaction has committed. Appends of all
// sessions queue for one writer that sends one statement per round for all
// the round's logs, an implicit transaction (one round trip, one commit),
// as the file store shares an fsync among sessions. FsyncAlways maps to
// synchronous_commit=on; FsyncBatch and FsyncNever to synchronous_commit=off
// (the commit returns before the WAL reaches the disk; a database crash can
// lose the last few hundred milliseconds of commits, never tear a record).
// A failed commit is never retried: its outcome may be unknown (the
// connection can drop after COMMIT was sent), so the logs in it are
// poisoned and the service reopens them, reading what the database holds.
//
// # Leases and fencing
//
// Each log is owned by one replica at a time: logs.owner names it and
// logs.epoch is the fencing token. The lease lives as long as the owner's
// row in replicas has not expired by the database's clock (Options.LeaseTTL,
// renewed every Options.Renew), so one statement renews every lease of a
// replica. Open is a takeover: it raises the epoch if this replica holds
// the lease, nobody does, or the holder's heartbeat has expired, and
// otherwise fails with an *OwnedError naming the holder and its address
// (where the service forwards calls). Every append checks the epoch and
// its position (the record count) in the same UPDATE that advances the
// log's end, and inserts its frames only if that UPDATE matched: a replica
// that lost its lease — paused past it, or cut off — can never append
// again once another took the log over (ErrFenced). The UPDATE's row lock
// orders appends against takeovers: a takeover waits for appends in flight
// to commit and then reads them; an append after it finds the new epoch.
// Log.Close keeps the lease (a session being deleted must not be taken
// over between its Close and its Remove), and Remove is fenced as appends
// are: it deletes the log only under the epoch this replica closed it with,
// so a replica that lost the lease never deletes a log another took over.
// Store.Close ends the replica's heartbeat, so a graceful stop hands all
// its sessions over at once.
//
// # Damage
//
// Open verifies every frame and the chain; a frame that fails its CRC, a
// missing index, or an end that disagrees with the records is reported in
// the RecoveryReport as ErrCorrupt with its index and offset, and the log is
// cut back to the last good record, as the file store truncates a damaged
// file. Nothing is hidden: the service reports it like file damage.
package pgstore
