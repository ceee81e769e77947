-- ACC-05: stored drone footage consulted with a justification other than the one allowed
-- (reporting to the judicial authority, SIGNAL_JUD). Codes are exact: 'signal_jud' is a finding.
SELECT source, 'DRONE' AS device_class, drone_id AS device_id, event_id AS subject_id,
       consulted_at AS occurred_at, unit AS answerable,
       'drone footage consulted with justification ' || coalesce(vg_q(justification), 'none') AS detail
FROM drone_consultations(as_of, known_at)
WHERE vg_value('drone_consultation_justification', as_of) IS NOT NULL  -- none before its first version
  AND justification IS DISTINCT FROM vg_value('drone_consultation_justification', as_of)
