-- A LAPI read's current version (007_rule_edges.sql), chosen the same way, faster: almost every
-- read was delivered once, and sorting every delivery to rank them took most of the time. Only
-- the reads delivered several times are ranked; the others are their one delivery. At 5 M
-- events (1.3 M reads) 1.1-1.7 s -> 0.7 s, and the rules read it twice.
CREATE OR REPLACE MACRO lapi_reads_at(known_at) AS TABLE
    WITH known AS (SELECT batch_id FROM main.known_batch_ids(known_at)),
    deliveries AS (
        SELECT r.*, r.file AS delivered_in,
               TRY_CAST(regexp_extract(r.location, ':([0-9]+)$', 1) AS BIGINT) AS delivered_line
        FROM main.lapi_reads r WHERE r.batch_id IN (SELECT batch_id FROM known)
        UNION ALL BY NAME
        SELECT r.*, regexp_extract(d.location, '^(.*):[0-9]+$', 1) AS delivered_in,
               TRY_CAST(regexp_extract(d.location, ':([0-9]+)$', 1) AS BIGINT) AS delivered_line
        FROM main.duplicates d
        JOIN main.lapi_reads r ON r.source = d.source AND r.location = d.first_location AND r.read_id = d.ref
        WHERE d.kind = 'read' AND NOT d.conflicting AND d.location <> d.first_location
          AND d.batch_id IN (SELECT batch_id FROM known) AND r.batch_id IN (SELECT batch_id FROM known)),
    several AS (SELECT source, read_id FROM deliveries GROUP BY ALL HAVING count(*) > 1)
    SELECT * EXCLUDE (delivered_in, delivered_line) FROM deliveries d
    ANTI JOIN several s ON s.source = d.source AND s.read_id IS NOT DISTINCT FROM d.read_id
    UNION ALL
    SELECT * EXCLUDE (delivered_in, delivered_line) FROM (
        SELECT d.* FROM deliveries d
        SEMI JOIN several s ON s.source = d.source AND s.read_id IS NOT DISTINCT FROM d.read_id)
    QUALIFY row_number() OVER (PARTITION BY source, read_id
                               ORDER BY delivered_in DESC, delivered_line DESC, batch_id DESC, ord DESC) = 1;
