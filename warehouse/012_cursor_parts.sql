-- Each source's cursor in parts of at most 2 000 characters (vigie/cursors.py). Kept whole in
-- source_cursors, a drop folder's cursor (every file ever landed: 14 MB at 20 M events) sat in
-- overflow blocks that DuckDB wrote again at every checkpoint after any cursor moved, deleted
-- versions included. source_cursors keeps which batch moved each cursor; it is made anew,
-- without the versions deleted and without its primary key (DuckLake has none); its `cursor`
-- column stays, NULL.
CREATE TABLE source_cursor_parts (
    source VARCHAR NOT NULL,
    part   INTEGER NOT NULL,  -- 0, 1, ...: the cursor is the parts' text in this order
    text   VARCHAR NOT NULL
);

INSERT INTO source_cursor_parts
SELECT source, i, substr(t, i * 2000 + 1, 2000)
FROM (SELECT source, t, unnest(range(0, (length(t) + 1999) // 2000)) AS i
      FROM (SELECT source, CAST(cursor AS VARCHAR) AS t FROM source_cursors WHERE cursor IS NOT NULL));

CREATE TABLE source_cursors_012 (
    source   VARCHAR NOT NULL,
    cursor   JSON,             -- NULL: the cursor is in source_cursor_parts
    batch_id BIGINT NOT NULL
);
INSERT INTO source_cursors_012 SELECT source, NULL, batch_id FROM source_cursors;
DROP TABLE source_cursors;
ALTER TABLE source_cursors_012 RENAME TO source_cursors;
