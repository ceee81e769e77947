-- AUT-01: a VP camera recorded with no authorisation valid at the recording's start (its
-- authorisation_ref names no VP entry whose closed validity contains that instant), or a
-- flight has no authorisation reference or one that names no DRONE entry.
SELECT source, 'VP' AS device_class, camera_id AS device_id, recording_id AS subject_id,
       started_at AS occurred_at, answerable,
       CASE WHEN NOT camera_known THEN 'camera ' || coalesce(camera_id, '') || ' is not in the cameras table'
            WHEN vg_missing(authorisation_ref) THEN 'camera has no authorisation reference'
            WHEN NOT has_vp_entry THEN 'authorisation ' || authorisation_ref || ' is not a VP entry of the register'
            ELSE 'authorisation ' || authorisation_ref || ' not valid at the start (' || vg_iso(valid_from)
                 || ' to ' || vg_iso(valid_to) || ')' END AS detail
FROM vp_recordings(as_of, known_at, grace_hours, tz)
WHERE NOT has_vp_entry OR started_at < valid_from OR started_at > valid_to
UNION ALL
SELECT f.source, 'DRONE', f.drone_id, f.flight_id, f.takeoff_at, f.unit,
       CASE WHEN vg_missing(f.authorisation_ref) THEN 'no authorisation reference'
            ELSE 'authorisation ' || f.authorisation_ref || ' is not a DRONE entry of the register' END
FROM drone_known_flights(as_of, known_at) f
LEFT JOIN main.authorisations_at(known_at) a ON a.authorisation_ref = f.authorisation_ref AND a.device_class = 'DRONE'
WHERE a.authorisation_ref IS NULL
