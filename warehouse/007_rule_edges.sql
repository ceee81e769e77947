-- The rules at their edges (issue #11): what the clarified contract asks of the warehouse.

-- Where a quarantined row stood in its batch (the staging `ord`, as for canonical rows), so
-- LOG-01 can tell an event's first delivery from a re-delivery with other content.
ALTER TABLE quarantine ADD COLUMN ord BIGINT;

-- Contract checks between two fields of a row (sources.md): instants in order, coordinates
-- in range. Both are NULL-safe: a missing or unreadable value has its own reason.
CREATE OR REPLACE MACRO vg_before(a, b) AS coalesce(TRY_CAST(a AS TIMESTAMPTZ) < TRY_CAST(b AS TIMESTAMPTZ), false);
CREATE OR REPLACE MACRO vg_out_of_range(x, bound) AS
    coalesce(abs(TRY_CAST(x AS DOUBLE)) > bound OR isnan(TRY_CAST(x AS DOUBLE)), false);

-- A LAPI read delivered again with other content is a correction: the file that comes later
-- in name order wins, even when it delivers again the content of an earlier file (a correction
-- undone). Such a line is a duplicate of the row first received with that content (it is
-- never loaded twice), so the read's current version is chosen among every delivery: the rows
-- loaded and the duplicates, each at its own file and line.
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
          AND d.batch_id IN (SELECT batch_id FROM known) AND r.batch_id IN (SELECT batch_id FROM known))
    SELECT * EXCLUDE (delivered_in, delivered_line) FROM deliveries
    QUALIFY row_number() OVER (PARTITION BY source, read_id
                               ORDER BY delivered_in DESC, delivered_line DESC, batch_id DESC, ord DESC) = 1;
