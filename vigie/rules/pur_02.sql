-- PUR-02: the purpose code is missing. Drone flights, LAPI queries.
SELECT source, 'DRONE' AS device_class, drone_id AS device_id, flight_id AS subject_id,
       takeoff_at AS occurred_at, unit AS answerable, 'flight without purpose code' AS detail
FROM drone_known_flights(as_of, known_at)
WHERE vg_missing(purpose)
UNION ALL
SELECT source, 'LAPI', camera_id, event_id, query_at, vg_source_holder(source), 'query without purpose code'
FROM lapi_known_queries(as_of, known_at)
WHERE vg_missing(purpose)
