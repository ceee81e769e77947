-- Tamper evidence (issue #14): one manifest per committed batch, chained by hash.
-- Written by vigie/integrity.py in the same transaction as the batch it seals. Plain tables
-- (no sequence, key or enum) so that the same SQL runs on DuckLake.

CREATE TABLE manifests (
    seq           BIGINT NOT NULL,      -- position in the chain: 1, 2, ... in commit order
    batch_id      BIGINT NOT NULL,
    source        VARCHAR NOT NULL,
    manifest      VARCHAR NOT NULL,     -- canonical JSON (sorted keys, no spaces): the bytes hashed
    prev_hash     VARCHAR NOT NULL,     -- manifest_hash of seq - 1 (64 zeros for the first)
    manifest_hash VARCHAR NOT NULL,     -- SHA-256 of `manifest`, which itself holds prev_hash
    sealed_at     TIMESTAMPTZ NOT NULL,
    seal_ms       DOUBLE                -- time spent computing it (make bench); not hashed
);

-- Landed files deleted by `integrity.keep_landed_days`: their hashes stay in the manifests,
-- and `vigie verify` reports them as purged rather than missing.
CREATE TABLE landed_purges (
    batch_id  BIGINT NOT NULL,
    name      VARCHAR NOT NULL,
    purged_at TIMESTAMPTZ NOT NULL
);
