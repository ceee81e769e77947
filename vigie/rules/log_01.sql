-- LOG-01: a gap in a source's sequence numbers (VMS audit_log.log_id, body-camera seq), one
-- finding per gap. Every number received counts, whatever its time, quarantined rows
-- included when their number can be read; nothing before the first number is flagged.
-- occurred_at: the time of the last row before the gap, when it has a readable one.
WITH numbers AS (
    SELECT source, log_id AS n, logged_at AS seen_at FROM main.vms_audit_log_at(known_at)
    UNION ALL
    SELECT source, seq, event_at FROM main.bodycam_events_at(known_at)
    UNION ALL
    SELECT q.source, q.seq, CASE
        WHEN q.kind = 'audit_log' AND vg_utc_problem(json_extract_string(q.raw, '$.logged_at')) IS NULL
            THEN TRY_CAST(json_extract_string(q.raw, '$.logged_at') AS TIMESTAMPTZ)
        WHEN q.kind = 'event' AND vg_instant_problem(json_extract_string(q.raw, '$.at')) IS NULL
            THEN TRY_CAST(json_extract_string(q.raw, '$.at') AS TIMESTAMPTZ) END
    FROM main.quarantine q
    WHERE q.seq IS NOT NULL AND q.batch_id IN (SELECT batch_id FROM main.known_batch_ids(known_at))),
received AS (
    SELECT source, n, min(seen_at) AS seen_at FROM numbers GROUP BY source, n),
gaps AS (
    SELECT source, n, seen_at, lead(n) OVER (PARTITION BY source ORDER BY n) AS next_n FROM received)
SELECT g.source, CASE WHEN k.kind = 'vms_sql' THEN 'VP' ELSE '' END AS device_class, '' AS device_id,
       g.source || ':' || (g.n + 1) || '-' || (g.next_n - 1) AS subject_id, g.seen_at AS occurred_at,
       vg_source_holder(g.source) AS answerable,
       'sequence jumps from ' || g.n || ' to ' || g.next_n || ' (' || (g.next_n - g.n - 1) || ' missing)' AS detail
FROM gaps g
LEFT JOIN (SELECT DISTINCT source, kind FROM main.batches) k ON k.source = g.source
WHERE g.next_n > g.n + 1
