-- LOG-01: a gap in a source's sequence numbers (VMS audit_log.log_id, body-camera seq), one
-- finding per gap. Every number received counts, whatever its time, quarantined rows
-- included when their number can be read; nothing before the first number is flagged. A
-- re-delivery of an event with other content (same id, a conflicting duplicate) is not a new
-- event: only the first delivery's number counts, whether it was loaded or quarantined.
-- occurred_at: the time of the last row before the gap, NULL when it has no readable one.
-- Class: the source's when it has only one (VP for a VMS), else empty; holder: the source's.
WITH quarantined AS (
    SELECT q.source, q.ref AS id, q.seq AS n, q.batch_id, coalesce(q.ord, 9223372036854775807) AS ord, CASE
        WHEN q.kind = 'audit_log' AND vg_utc_problem(json_extract_string(q.raw, '$.logged_at')) IS NULL
            THEN TRY_CAST(json_extract_string(q.raw, '$.logged_at') AS TIMESTAMPTZ)
        WHEN q.kind = 'event' AND vg_instant_problem(json_extract_string(q.raw, '$.at')) IS NULL
            THEN TRY_CAST(json_extract_string(q.raw, '$.at') AS TIMESTAMPTZ) END AS seen_at
    FROM main.quarantine q
    WHERE q.seq IS NOT NULL AND q.batch_id IN (SELECT batch_id FROM main.known_batch_ids(known_at))),
loaded AS (
    SELECT source, CAST(log_id AS VARCHAR) AS id, log_id AS n, batch_id, ord, logged_at AS seen_at
    FROM main.vms_audit_log_at(known_at)
    UNION ALL
    SELECT source, event_id, seq, batch_id, ord, event_at FROM main.bodycam_events_at(known_at)),
requeued AS (  -- the few loaded rows whose id was also quarantined: only they can come first
    SELECT l.* FROM loaded l SEMI JOIN quarantined q ON q.source = l.source AND q.id = l.id),
numbers AS (  -- first deliveries only: nothing of the same id was received before
    SELECT l.source, l.n, l.seen_at FROM loaded l
    WHERE NOT EXISTS (SELECT 1 FROM quarantined q WHERE q.source = l.source AND q.id = l.id
                      AND (q.batch_id < l.batch_id OR (q.batch_id = l.batch_id AND q.ord < l.ord)))
    UNION ALL
    SELECT q.source, q.n, q.seen_at FROM quarantined q
    WHERE q.id IS NULL OR (
        NOT EXISTS (SELECT 1 FROM requeued l WHERE l.source = q.source AND l.id = q.id
                    AND (l.batch_id < q.batch_id OR (l.batch_id = q.batch_id AND l.ord < q.ord)))
        AND NOT EXISTS (SELECT 1 FROM quarantined p WHERE p.source = q.source AND p.id = q.id
                        AND (p.batch_id < q.batch_id OR (p.batch_id = q.batch_id AND p.ord < q.ord))))),
received AS (
    SELECT source, n, min(seen_at) AS seen_at FROM numbers GROUP BY source, n),
gaps AS (
    SELECT source, n, seen_at, lead(n) OVER (PARTITION BY source ORDER BY n) AS next_n FROM received)
SELECT g.source,
       CASE WHEN coalesce(s.kind, k.kind) = 'vms_sql' THEN 'VP' ELSE '' END AS device_class, '' AS device_id,
       g.source || ':' || (g.n + 1) || '-' || (g.next_n - 1) AS subject_id, g.seen_at AS occurred_at,
       vg_source_holder(g.source) AS answerable,
       'sequence jumps from ' || g.n || ' to ' || g.next_n || ' (' || (g.next_n - g.n - 1) || ' missing)' AS detail
FROM gaps g
LEFT JOIN main.rule_sources s ON s.source = g.source
LEFT JOIN (SELECT source, any_value(kind) AS kind FROM main.batches GROUP BY source) k ON k.source = g.source
WHERE g.next_n > g.n + 1
