-- A manifest longer than 2 000 characters is kept in parts (vigie/integrity.py, db.text_parts),
-- and `manifests.manifest` holds '' for it. Whole, the manifest of a batch of thousands of
-- files (17 MB for the drone folder of a 20 M-event estate) sat in overflow blocks that DuckDB
-- wrote again at every checkpoint after a manifest was added: every run that loaded anything.
-- The table of manifests is made anew so that those blocks go.
CREATE TABLE manifest_parts (
    seq      BIGINT NOT NULL,
    batch_id BIGINT NOT NULL,
    part     INTEGER NOT NULL,  -- 0, 1, ...: the manifest is the parts' text in this order
    text     VARCHAR NOT NULL
);

INSERT INTO manifest_parts
SELECT seq, batch_id, i, substr(manifest, i * 2000 + 1, 2000)
FROM (SELECT seq, batch_id, manifest, unnest(range(0, (length(manifest) + 1999) // 2000)) AS i
      FROM manifests WHERE length(manifest) > 2000);

CREATE TABLE manifests_013 (
    seq           BIGINT NOT NULL,
    batch_id      BIGINT NOT NULL,
    source        VARCHAR NOT NULL,
    manifest      VARCHAR NOT NULL,     -- canonical JSON (sorted keys, no spaces): the bytes hashed; '' when in parts
    prev_hash     VARCHAR NOT NULL,
    manifest_hash VARCHAR NOT NULL,
    sealed_at     TIMESTAMPTZ NOT NULL,
    seal_ms       DOUBLE
);
INSERT INTO manifests_013
SELECT seq, batch_id, source, CASE WHEN length(manifest) > 2000 THEN '' ELSE manifest END,
       prev_hash, manifest_hash, sealed_at, seal_ms
FROM manifests ORDER BY seq;
DROP TABLE manifests;
ALTER TABLE manifests_013 RENAME TO manifests;
