-- The ledger: every batch received, what it landed, where each row went.
-- received = loaded + duplicates + quarantined holds for every loaded batch.


CREATE TABLE batches (
    batch_id      BIGINT NOT NULL,      -- in the order batches are opened; a source's batches commit in that order
    source        VARCHAR NOT NULL,
    kind          VARCHAR NOT NULL,
    started_at    TIMESTAMPTZ NOT NULL,
    committed_at  TIMESTAMPTZ,          -- set when the batch and its cursor commit; NULL until then
    status        VARCHAR NOT NULL,     -- landed | loaded | failed
    sha256        VARCHAR,              -- SHA-256 over the landed files' hashes, in name order
    raw_bytes     BIGINT,
    files         INTEGER,
    received      BIGINT,
    loaded        BIGINT,
    duplicates    BIGINT,
    quarantined   BIGINT,
    cursor_before JSON,
    cursor_after  JSON,
    error         VARCHAR
);

-- One row per file a batch landed: the raw content, kept for replay.
CREATE TABLE landed_files (
    batch_id    BIGINT NOT NULL,
    source      VARCHAR NOT NULL,
    name        VARCHAR NOT NULL,       -- path in the source folder, or the stream's page file
    landed_path VARCHAR NOT NULL,
    sha256      VARCHAR NOT NULL,
    bytes       BIGINT NOT NULL
);

-- Where each source resumes; written in the same transaction as the batch it covers.
CREATE TABLE source_cursors (
    source   VARCHAR NOT NULL,
    cursor   JSON,
    batch_id BIGINT NOT NULL
);

CREATE TABLE quarantine (
    source   VARCHAR NOT NULL,
    batch_id BIGINT NOT NULL,
    kind     VARCHAR NOT NULL,          -- event, recording, audit_log, flight, track, read, query, file...
    ref      VARCHAR,                   -- the row's id when one can be read
    location VARCHAR NOT NULL,          -- table:<pk>, seq:<n> or <file>:<line>
    seq      BIGINT,                    -- sequence number when readable (it still occupies it)
    reason   VARCHAR NOT NULL,
    raw      VARCHAR                    -- the row as received
);

CREATE TABLE duplicates (
    source         VARCHAR NOT NULL,
    batch_id       BIGINT NOT NULL,
    kind           VARCHAR NOT NULL,
    ref            VARCHAR,
    location       VARCHAR NOT NULL,
    first_location VARCHAR,             -- where the row kept was received
    conflicting    BOOLEAN NOT NULL     -- same key, different content: may be tampering
);
