-- No key constraints in the warehouse: a DuckLake catalog, where the storage moves when loads
-- spread over several workers, has none (nor sequences, enums or INSERT OR REPLACE). Batch ids
-- are unique because one writer at a time takes the next (vigie/db.py, next_batch_id).
-- Migration 001 declared batches.batch_id a primary key before this one was written, and
-- db.migrate schema_migrations.version: both are made anew without it, rows in their order.
CREATE TABLE batches_016 (
    batch_id      BIGINT NOT NULL,
    source        VARCHAR NOT NULL,
    kind          VARCHAR NOT NULL,
    started_at    TIMESTAMPTZ NOT NULL,
    committed_at  TIMESTAMPTZ,
    status        VARCHAR NOT NULL,
    sha256        VARCHAR,
    raw_bytes     BIGINT,
    files         INTEGER,
    received      BIGINT,
    loaded        BIGINT,
    duplicates    BIGINT,
    quarantined   BIGINT,
    cursor_before JSON,
    cursor_after  JSON,
    error         VARCHAR,
    abandoned_at  TIMESTAMPTZ
);
INSERT INTO batches_016 SELECT * FROM batches;
DROP TABLE batches;
ALTER TABLE batches_016 RENAME TO batches;

CREATE TABLE schema_migrations_016 (
    version    INTEGER NOT NULL,
    name       VARCHAR NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL
);
INSERT INTO schema_migrations_016 SELECT version, name, applied_at FROM schema_migrations;
DROP TABLE schema_migrations;
ALTER TABLE schema_migrations_016 RENAME TO schema_migrations;
