-- PRO-02: the flight ran facial recognition (drones may not).
SELECT source, 'DRONE' AS device_class, drone_id AS device_id, flight_id AS subject_id,
       takeoff_at AS occurred_at, unit AS answerable, 'flight ran facial recognition' AS detail
FROM drone_known_flights(as_of, known_at)
WHERE facial_recognition
