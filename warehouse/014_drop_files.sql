-- A drop folder's files as its source last saw them: one row per file a batch landed, found
-- unchanged but touched, or refused after reading (vigie/cursors.py). They were the cursor's
-- "files" map: JSON of every file ever landed (14 MB for the drones of a 20 M-event estate),
-- parsed, compared, encoded and hashed again by every run. A file's state is its row of the
-- highest batch_id; `batch_id` chains each batch's rows into its manifest (vigie/integrity.py).
-- A cursor from before this migration keeps its map until its source's next batch moves it here.
CREATE TABLE drop_files (
    source   VARCHAR NOT NULL,
    batch_id BIGINT NOT NULL,
    name     VARCHAR NOT NULL,  -- in the folder, '/'-separated, as `vigie.sources.drops.Entry`
    size     BIGINT NOT NULL,
    mtime_ns BIGINT NOT NULL,
    sha256   VARCHAR NOT NULL
);
