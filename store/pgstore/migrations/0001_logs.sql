-- Version 1: the replay logs, their leases and the replicas' heartbeats.

-- One row per log. header is the 32-byte header a FileStore writes at the
-- start of the file; records, size and crc describe the end of the log
-- (record count, header + frame bytes, CRC-32C chain value after the last
-- frame) so an append can check its position in the same statement.
-- owner and epoch are the log's lease: the replica that may append, and
-- the fencing token every append must present.
CREATE TABLE logs (
	name    text PRIMARY KEY CHECK (name ~ '^[a-z0-9-]{1,63}$'),
	header  bytea NOT NULL CHECK (length(header) = 32),
	records bigint NOT NULL DEFAULT 0 CHECK (records >= 0),
	size    bigint NOT NULL,
	crc     bigint NOT NULL CHECK (crc BETWEEN 0 AND 4294967295),
	owner   text NOT NULL DEFAULT '',
	epoch   bigint NOT NULL DEFAULT 1,
	created timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX logs_owner ON logs (owner);

-- One row per record: its frame exactly as the file store writes it
-- (length word, chained CRC-32C, payload, padding).
CREATE TABLE records (
	log   text NOT NULL REFERENCES logs (name) ON DELETE CASCADE,
	idx   bigint NOT NULL CHECK (idx >= 0),
	frame bytea NOT NULL,
	PRIMARY KEY (log, idx)
);

-- One row per replica: a lease on a log is live while its owner's row has
-- not expired (by the database's clock, so replicas' clocks do not matter).
CREATE TABLE replicas (
	id      text PRIMARY KEY,
	addr    text NOT NULL,
	expires timestamptz NOT NULL,
	started timestamptz NOT NULL DEFAULT now()
);
