-- A LAPI read's current version (migration 007) without sorting every read: a read delivered
-- once is that delivery; only the reads delivered more than once (corrections, and lines
-- delivered again) are ordered to find the one that wins. The rules read the current reads
-- twice (`lapi_known_reads`, `lapi_known_queries`), and each sorted all 1.36 M reads of a
-- 5 M-event warehouse: about 1.5 s apiece of a full evaluation.
--
-- `again` counts every delivery that may be one: a duplicate whose first row is not known
-- counts too, which only sends its read to the ordered part, where it is chosen as before.
-- A read whose only delivery is a duplicate cannot be: the duplicate needs its first row.
-- (`source` and `read_id` are NOT NULL in lapi_reads: plain equality finds them.)
CREATE OR REPLACE MACRO lapi_reads_at(known_at) AS TABLE
    WITH known AS (SELECT batch_id FROM main.known_batch_ids(known_at)),
    again AS (
        SELECT source, read_id FROM (
            SELECT source, read_id FROM main.lapi_reads WHERE batch_id IN (SELECT batch_id FROM known)
            UNION ALL
            SELECT source, ref FROM main.duplicates
            WHERE kind = 'read' AND NOT conflicting AND location <> first_location
              AND batch_id IN (SELECT batch_id FROM known))
        GROUP BY ALL HAVING count(*) > 1),
    deliveries AS (
        SELECT r.*, r.file AS delivered_in,
               TRY_CAST(regexp_extract(r.location, ':([0-9]+)$', 1) AS BIGINT) AS delivered_line
        FROM main.lapi_reads r
        SEMI JOIN again a ON a.source = r.source AND a.read_id = r.read_id
        WHERE r.batch_id IN (SELECT batch_id FROM known)
        UNION ALL BY NAME
        SELECT r.*, regexp_extract(d.location, '^(.*):[0-9]+$', 1) AS delivered_in,
               TRY_CAST(regexp_extract(d.location, ':([0-9]+)$', 1) AS BIGINT) AS delivered_line
        FROM main.duplicates d
        JOIN main.lapi_reads r ON r.source = d.source AND r.location = d.first_location AND r.read_id = d.ref
        WHERE d.kind = 'read' AND NOT d.conflicting AND d.location <> d.first_location
          AND d.batch_id IN (SELECT batch_id FROM known) AND r.batch_id IN (SELECT batch_id FROM known))
    SELECT r.* FROM main.lapi_reads r
    ANTI JOIN again a ON a.source = r.source AND a.read_id = r.read_id
    WHERE r.batch_id IN (SELECT batch_id FROM known)
    UNION ALL
    SELECT * FROM (
        SELECT * EXCLUDE (delivered_in, delivered_line) FROM deliveries
        QUALIFY row_number() OVER (PARTITION BY source, read_id
                                   ORDER BY delivered_in DESC, delivered_line DESC, batch_id DESC, ord DESC) = 1);
