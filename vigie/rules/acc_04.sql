-- ACC-04: a known LAPI read without a match consulted without a procedure reference. A query
-- on a matched or unknown read is not ACC-04; its purpose plays no part (PUR-01/PUR-02).
SELECT source, 'LAPI' AS device_class, camera_id AS device_id, event_id AS subject_id,
       query_at AS occurred_at, vg_source_holder(source) AS answerable,
       'read ' || read_id || ' without match consulted without procedure reference' AS detail
FROM lapi_known_queries(as_of, known_at)
WHERE matched = false AND vg_missing(procedure_ref)
