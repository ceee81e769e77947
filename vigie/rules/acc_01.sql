-- ACC-01: a consultation without a justification code, or an export or share without a
-- procedure reference or a recipient. One finding per event, however many fields are
-- missing. Presence only: the value of a justification is not judged here.
SELECT source, 'VP' AS device_class, c.camera_id AS device_id, CAST(log_id AS VARCHAR) AS subject_id,
       logged_at AS occurred_at, vg_source_holder(source) AS answerable,
       'consultation without ' || array_to_string(missing, ', ') AS detail
FROM (SELECT *, list_filter([
          CASE WHEN vg_missing(justification) THEN 'justification' END,
          CASE WHEN action = 'EXPORT' AND vg_missing(procedure_ref) THEN 'procedure reference' END,
          CASE WHEN action = 'EXPORT' AND vg_missing(recipient) THEN 'recipient' END], lambda x: x IS NOT NULL) AS missing
      FROM vp_consultations(as_of, known_at)) c
WHERE len(missing) > 0
UNION ALL
SELECT c.source, coalesce(r.device_class, c.device_kind), c.device_serial, c.event_id, c.event_at,
       coalesce(r.answerable, vg_source_holder(c.source)), 'consultation without ' || array_to_string(missing, ', ')
FROM (SELECT *, list_filter([
          CASE WHEN vg_missing(justification) THEN 'justification' END,
          CASE WHEN action <> 'evidence.viewed' AND vg_missing(procedure_ref) THEN 'procedure reference' END,
          CASE WHEN action <> 'evidence.viewed' AND vg_missing(recipient) THEN 'recipient' END], lambda x: x IS NOT NULL) AS missing
      FROM bodycam_consultations(as_of, known_at)) c
LEFT JOIN bodycam_recordings(as_of, known_at, grace_hours, tz) r ON r.source = c.source AND r.evidence_id = c.evidence_id
WHERE len(missing) > 0
