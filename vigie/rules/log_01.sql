-- LOG-01: a gap in a source's sequence numbers (VMS audit_log.log_id, body-camera seq), one
-- finding per gap. Every number received counts, whatever its time, quarantined rows
-- included when their number can be read; nothing before the first number is flagged. A
-- re-delivery of an event with other content (same id, a conflicting duplicate) is not a new
-- event: only the first delivery's number counts, whether it was loaded or quarantined
-- (log_received, subjects.sql).
-- occurred_at: the time of the last row before the gap, NULL when it has no readable one.
-- Class: the source's when it has only one (VP for a VMS), else empty; holder: the source's.
WITH gaps AS (
    SELECT source, n, seen_at, lead(n) OVER (PARTITION BY source ORDER BY n) AS next_n
    FROM log_received(known_at))
SELECT g.source,
       CASE WHEN coalesce(s.kind, k.kind) = 'vms_sql' THEN 'VP' ELSE '' END AS device_class, '' AS device_id,
       g.source || ':' || (g.n + 1) || '-' || (g.next_n - 1) AS subject_id, g.seen_at AS occurred_at,
       vg_source_holder(g.source) AS answerable,
       'sequence jumps from ' || g.n || ' to ' || g.next_n || ' (' || (g.next_n - g.n - 1) || ' missing)' AS detail
FROM gaps g
LEFT JOIN main.rule_sources s ON s.source = g.source
LEFT JOIN (SELECT source, any_value(kind) AS kind FROM main.batches GROUP BY source) k ON k.source = g.source
WHERE g.next_n > g.n + 1
