-- RET-04: drone footage flagged as showing a home's interior, still present at as-of or
-- deleted more than 48 h + grace after landing. (RET-01's 7 days apply to it as well.)
SELECT source, 'DRONE' AS device_class, drone_id AS device_id, recording_id AS subject_id,
       lawful_until AS occurred_at, unit AS answerable,
       'home interior, ' || vg_limit('drone_interior_hours', as_of) || ' h after landing: '
       || vg_kept_detail(deleted, lawful_until) AS detail
FROM (SELECT *, landing_at + vg_hours(vg_limit('drone_interior_hours', as_of)) + vg_hours(grace_hours) AS lawful_until
      FROM drone_recordings(as_of, known_at) WHERE interior)
WHERE vg_kept_too_long(deleted, lawful_until, as_of)
