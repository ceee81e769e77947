-- RET-01: still present at as-of, or deleted, later than deadline + grace, and not protected
-- by a hold. VP, BWC, VEH and DRONE recordings; LAPI reads. occurred_at: when lawful keeping
-- ended (deadline + grace, or max(deadline, release) + grace for a released protecting hold).
SELECT source, 'VP' AS device_class, camera_id AS device_id, recording_id AS subject_id,
       lawful_until AS occurred_at, answerable,
       'deadline ' || vg_iso(deadline) || ': ' || vg_kept_detail(deleted, lawful_until) AS detail
FROM vp_recordings(as_of, known_at, grace_hours, tz)
WHERE vg_kept_too_long(deleted, lawful_until, as_of)
UNION ALL
SELECT source, device_class, device_id, evidence_id, lawful_until, answerable,
       'deadline ' || vg_iso(deadline) || ': ' || vg_kept_detail(deleted, lawful_until)
FROM bodycam_recordings(as_of, known_at, grace_hours, tz)
WHERE vg_kept_too_long(deleted, lawful_until, as_of)
UNION ALL
SELECT source, 'DRONE', drone_id, recording_id, lawful_until, unit,
       vg_limit('drone_days', as_of) || ' days after landing: ' || vg_kept_detail(deleted, lawful_until)
FROM (SELECT *, landing_at + vg_hours(24 * vg_limit('drone_days', as_of)) + vg_hours(grace_hours) AS lawful_until
      FROM drone_recordings(as_of, known_at))
WHERE vg_kept_too_long(deleted, lawful_until, as_of)
UNION ALL
SELECT source, 'LAPI', camera_id, read_id, lawful_until, vg_source_holder(source),
       CASE WHEN matched THEN 'matched read, ' || vg_limit('lapi_match_months', as_of) || ' month'
            ELSE 'read without match, ' || vg_limit('lapi_nomatch_days', as_of) || ' days' END
       || ': ' || vg_kept_detail(deleted, lawful_until)
FROM lapi_known_reads(as_of, known_at, grace_hours, tz)
WHERE vg_kept_too_long(deleted, lawful_until, as_of)
