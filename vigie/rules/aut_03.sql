-- AUT-03: a track point lies strictly farther than the tolerance outside the authorised
-- perimeter. Every valid point of the flight's track, whatever its time; only flights with a
-- DRONE authorisation that has a perimeter. Inside: even-odd ray casting on (lon, lat), holes
-- excluded, a point on an edge is inside. Distance: haversine (R = 6 371 008.8 m) to the
-- nearest point of the nearest edge, found in a plane centred on the track point
-- (x = dlon * cos(lat), y = dlat). occurred_at: the first point beyond tolerance; the line
-- named is the farthest point's, the first of equally far ones (a drone hovering in place).
WITH flights AS (
    SELECT f.source, f.flight_id, f.drone_id, f.unit, a.perimeter
    FROM drone_known_flights(as_of, known_at) f
    JOIN main.authorisations_at(known_at) a ON a.authorisation_ref = f.authorisation_ref AND a.device_class = 'DRONE'
    WHERE a.perimeter IS NOT NULL),
rings AS (
    SELECT source, flight_id, CAST(ring AS DOUBLE[][]) AS pts
    FROM flights, unnest(CAST(perimeter -> '$.coordinates' AS JSON[])) AS u(ring)),
edges AS (  -- vertex i to i+1, wrapping: a closed ring's extra edge has length 0 and changes nothing
    SELECT source, flight_id, pts[i][1] AS lon1, pts[i][2] AS lat1,
           pts[i % len(pts) + 1][1] AS lon2, pts[i % len(pts) + 1][2] AS lat2
    FROM (SELECT *, unnest(range(1, len(pts) + 1)) AS i FROM rings)),
points AS (
    SELECT p.source, p.flight_id, p.t, p.lat, p.lon, p.location,
           CAST(regexp_extract(p.location, ':([0-9]+)$', 1) AS BIGINT) AS line
    FROM main.drone_track_points_at(known_at) p
    WHERE (p.source, p.flight_id) IN (SELECT (source, flight_id) FROM flights)),
plane AS (
    SELECT p.*, e.lon1, e.lat1, e.lon2, e.lat2, cos(radians(p.lat)) AS k,
           (e.lon1 - p.lon) * cos(radians(p.lat)) AS ax, e.lat1 - p.lat AS ay,
           (e.lon2 - e.lon1) * cos(radians(p.lat)) AS dx, e.lat2 - e.lat1 AS dy
    FROM points p JOIN edges e ON e.source = p.source AND e.flight_id = p.flight_id),
nearest AS (
    SELECT *, CASE WHEN dx * dx + dy * dy = 0 THEN 0
                   ELSE greatest(0, least(1, -(ax * dx + ay * dy) / (dx * dx + dy * dy))) END AS s
    FROM plane),
per_edge AS (
    SELECT source, flight_id, t, line, location, lat, lon,
           (ax + s * dx) * (ax + s * dx) + (ay + s * dy) * (ay + s * dy) AS plane_d2,
           2 * 6371008.8 * asin(sqrt(
               pow(sin(radians(ay + s * dy) / 2), 2)
               + cos(radians(lat)) * cos(radians(lat + ay + s * dy))
                 * pow(sin(radians((ax + s * dx) / k) / 2), 2))) AS distance_m,
           ((lat1 > lat) <> (lat2 > lat)) AND lon < (lon2 - lon1) * (lat - lat1) / (lat2 - lat1) + lon1 AS crosses
    FROM nearest),
per_point AS (
    SELECT source, flight_id, t, line, location,
           (sum(CAST(crosses AS INTEGER)) % 2 = 1) OR min(plane_d2) < 1e-20 AS inside,
           min(distance_m) AS distance_m
    FROM per_edge GROUP BY ALL),
beyond AS (
    SELECT *, tolerance_m AS tolerance FROM per_point WHERE NOT inside AND distance_m > tolerance_m)
SELECT b.source, 'DRONE' AS device_class, f.drone_id AS device_id, b.flight_id AS subject_id,
       min(b.t) AS occurred_at, any_value(f.unit) AS answerable,
       count(*) || ' track point(s) beyond ' || CAST(any_value(b.tolerance) AS VARCHAR) || ' m, farthest '
       || CAST(round(max(b.distance_m)) AS BIGINT) || ' m (line ' || arg_max(b.line, (b.distance_m, -b.line)) || ')' AS detail
FROM beyond b JOIN flights f ON f.source = b.source AND f.flight_id = b.flight_id
GROUP BY b.source, b.flight_id, f.drone_id
