-- RET-02: a hold was set without a procedure reference. One finding per recording, dated at
-- the first such hold. VP (the recording's hold slot), BWC and VEH (hold events).
SELECT source, 'VP' AS device_class, camera_id AS device_id, recording_id AS subject_id,
       hold_set AS occurred_at, answerable, 'hold set without a procedure reference' AS detail
FROM vp_recordings(as_of, known_at, grace_hours, tz)
WHERE hold_set IS NOT NULL AND vg_missing(hold_ref)
UNION ALL
SELECT h.source, coalesce(r.device_class, h.device_kind), coalesce(r.device_id, h.device_serial), h.evidence_id,
       h.event_at, coalesce(r.answerable, vg_source_holder(h.source)), 'hold set without a procedure reference'
FROM bodycam_known_events(as_of, known_at) h
LEFT JOIN bodycam_recordings(as_of, known_at, grace_hours, tz) r ON r.source = h.source AND r.evidence_id = h.evidence_id
WHERE h.action = 'evidence.hold_set' AND vg_missing(h.procedure_ref)
QUALIFY row_number() OVER (PARTITION BY h.source, h.evidence_id ORDER BY h.event_at, h.seq) = 1
