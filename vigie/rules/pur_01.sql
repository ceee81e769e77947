-- PUR-01: a purpose code not in the allowed list of the device class (open codes: unknown or
-- wrongly cased values are findings, never quarantined). Drone flights, LAPI queries.
-- Before the class's first purpose list came into force, nothing is found (no law, no finding).
SELECT source, 'DRONE' AS device_class, drone_id AS device_id, flight_id AS subject_id,
       takeoff_at AS occurred_at, unit AS answerable,
       'purpose ' || vg_q(purpose) || ' not allowed for DRONE' AS detail
FROM drone_known_flights(as_of, known_at)
WHERE NOT vg_missing(purpose) AND vg_purposes_in_force('DRONE', as_of) AND NOT vg_allowed_purpose('DRONE', purpose, as_of)
UNION ALL
SELECT source, 'LAPI', camera_id, event_id, query_at, vg_source_holder(source),
       'purpose ' || vg_q(purpose) || ' not allowed for LAPI'
FROM lapi_known_queries(as_of, known_at)
WHERE NOT vg_missing(purpose) AND vg_purposes_in_force('LAPI', as_of) AND NOT vg_allowed_purpose('LAPI', purpose, as_of)
