-- HORIZON (not a rule): for each scope of subjects (vigie/rules/incremental.py), the earliest
-- as-of at which one of its findings could change, so that a later run re-evaluates only the
-- scopes whose horizon has come. Every comparison of the rules with as_of must appear here:
--   - an instant x that a rule keeps only once x <= as_of: the horizon is x;
--   - a lawful-keeping instant L that a rule compares as as_of > L: the horizon is L + 1 µs.
-- Only instants after as_of count. Listing an instant too many costs a re-evaluation; missing
-- one would leave a finding stale: tests/test_incremental.py compares with full evaluations.
-- Versions of limits coming into force are not here: they make the next run a full one.
SELECT source, scope AS subject_id, min(t) AS occurred_at
FROM (
    SELECT source, recording_id AS scope,
           unnest([started_at, ended_at, deleted_at, hold_set_at, hold_released_at]) AS t
    FROM main.vms_recordings
    UNION ALL
    SELECT source, coalesce(recording_id, '~log:' || log_id), logged_at FROM main.vms_audit_log
    UNION ALL
    SELECT source, recording_id, lawful_until + INTERVAL 1 MICROSECOND FROM vp_recordings(as_of, known_at, grace_hours, tz)
    UNION ALL
    SELECT source, coalesce(evidence_id, '~none'), event_at FROM main.bodycam_events
    UNION ALL
    SELECT source, evidence_id, lawful_until + INTERVAL 1 MICROSECOND FROM bodycam_recordings(as_of, known_at, grace_hours, tz)
    UNION ALL
    SELECT source, flight_id, unnest([takeoff_at, landing_at,
           -- RET-01 and RET-04 on the flight's recordings
           landing_at + vg_hours(24 * vg_limit('drone_days', as_of)) + vg_hours(grace_hours) + INTERVAL 1 MICROSECOND,
           landing_at + vg_hours(vg_limit('drone_interior_hours', as_of)) + vg_hours(grace_hours) + INTERVAL 1 MICROSECOND])
    FROM main.drone_flights
    UNION ALL
    -- (a flight's lists unnested in the select list: see drone_consultations in subjects.sql)
    SELECT source, flight_id, CAST(r ->> 'deleted_at' AS TIMESTAMPTZ)
    FROM (SELECT source, flight_id, unnest(json_extract(recordings, '$[*]')) AS r FROM main.drone_flights)
    UNION ALL
    SELECT source, flight_id, CAST(c ->> 'at' AS TIMESTAMPTZ)
    FROM (SELECT source, flight_id, unnest(json_extract(consultations, '$[*]')) AS c FROM main.drone_flights)
    UNION ALL
    SELECT source, read_id, unnest([read_at, deleted_at]) FROM main.lapi_reads
    UNION ALL
    SELECT source, read_id, lawful_until + INTERVAL 1 MICROSECOND FROM lapi_known_reads(as_of, known_at, grace_hours, tz)
    UNION ALL
    SELECT source, coalesce(read_id, '~none'), query_at FROM main.lapi_queries)
WHERE t > as_of
GROUP BY source, scope
