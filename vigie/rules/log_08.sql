-- LOG-08: a consultation that does not say who did it. Consultations only: a login or a
-- deletion without a user is not a finding.
SELECT source, 'VP' AS device_class, camera_id AS device_id, CAST(log_id AS VARCHAR) AS subject_id,
       logged_at AS occurred_at, vg_source_holder(source) AS answerable, 'consultation does not say who' AS detail
FROM vp_consultations(as_of, known_at)
WHERE vg_missing(user_login)
UNION ALL
SELECT c.source, coalesce(r.device_class, c.device_kind), c.device_serial, c.event_id, c.event_at,
       coalesce(r.answerable, vg_source_holder(c.source)), 'consultation does not say who'
FROM bodycam_consultations(as_of, known_at) c
LEFT JOIN bodycam_recordings(as_of, known_at, grace_hours, tz) r ON r.source = c.source AND r.evidence_id = c.evidence_id
WHERE vg_missing(c.actor_badge)
UNION ALL
SELECT source, 'DRONE', drone_id, event_id, consulted_at, unit, 'consultation does not say who'
FROM drone_consultations(as_of, known_at)
WHERE vg_missing(consulted_by)
UNION ALL
SELECT source, 'LAPI', camera_id, event_id, query_at, vg_source_holder(source), 'query does not say who'
FROM lapi_known_queries(as_of, known_at)
WHERE vg_missing(user)
