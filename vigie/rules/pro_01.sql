-- PRO-01: the flight recorded sound (drones may not).
SELECT source, 'DRONE' AS device_class, drone_id AS device_id, flight_id AS subject_id,
       takeoff_at AS occurred_at, unit AS answerable, 'flight recorded sound' AS detail
FROM drone_known_flights(as_of, known_at)
WHERE audio_recorded
