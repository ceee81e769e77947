-- AUT-02: a flight started before or ended after its authorisation's (closed) validity, or
-- has a purpose the authorisation does not list. One finding per flight, listing the reasons.
-- The landing clause applies once the landing is at or before as-of.
SELECT source, 'DRONE' AS device_class, drone_id AS device_id, flight_id AS subject_id,
       takeoff_at AS occurred_at, unit AS answerable, array_to_string(reasons, '; ') AS detail
FROM (
    SELECT f.*, list_filter([
        CASE WHEN f.takeoff_at < a.valid_from THEN 'takeoff before ' || vg_iso(a.valid_from) END,
        -- only once the landing has happened: a flight still airborne at as-of is judged on its takeoff
        CASE WHEN f.landing_at <= as_of AND f.landing_at > a.valid_to THEN 'landing after ' || vg_iso(a.valid_to) END,
        CASE WHEN NOT vg_missing(f.purpose) AND NOT list_contains(coalesce(a.purposes, []), f.purpose)
             THEN 'purpose ' || f.purpose || ' not listed by ' || a.authorisation_ref END], lambda x: x IS NOT NULL) AS reasons
    FROM drone_known_flights(as_of, known_at) f
    JOIN main.authorisations_at(known_at) a ON a.authorisation_ref = f.authorisation_ref AND a.device_class = 'DRONE')
WHERE len(reasons) > 0
