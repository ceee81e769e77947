-- ACC-03: a recording consulted after deadline + grace while not protected by a hold (the
-- same protected-until instant as RET-01). Only known recordings: a consultation of an unknown
-- or quarantined recording is never ACC-03.
SELECT c.source, 'VP' AS device_class, coalesce(c.camera_id, r.camera_id) AS device_id,
       CAST(c.log_id AS VARCHAR) AS subject_id, c.logged_at AS occurred_at, r.answerable,
       r.recording_id || ' consulted after ' || vg_iso(r.lawful_until) || ' without hold' AS detail
FROM vp_consultations(as_of, known_at) c
JOIN vp_recordings(as_of, known_at, grace_hours, tz) r ON r.source = c.source AND r.recording_id = c.recording_id
WHERE c.logged_at > r.lawful_until
UNION ALL
SELECT c.source, r.device_class, c.device_serial, c.event_id, c.event_at, r.answerable,
       r.evidence_id || ' consulted after ' || vg_iso(r.lawful_until) || ' without hold'
FROM bodycam_consultations(as_of, known_at) c
JOIN bodycam_recordings(as_of, known_at, grace_hours, tz) r ON r.source = c.source AND r.evidence_id = c.evidence_id
WHERE c.event_at > r.lawful_until
