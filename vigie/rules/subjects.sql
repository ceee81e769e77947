-- Shared derivations the rules read: time arithmetic, limits, and one row per subject with
-- its deadline and the instant until which keeping or consulting it is lawful.
-- Every macro sees the warehouse as known at `known_at` and ignores what happened after `as_of`.

-- Exact durations: day limits are multiples of 24 hours (domain.md, time conventions).
CREATE OR REPLACE MACRO vg_hours(h) AS to_microseconds(CAST(round(h * 3600000000) AS BIGINT));

-- A local wall-clock time in `tz` as an instant. A time that does not exist (spring forward)
-- moves forward by the gap (DuckDB does so); an ambiguous one (fall back) takes the earlier
-- instant, the summer-time offset, which DuckDB does not: hence the one-hour check.
CREATE OR REPLACE MACRO vg_local_to_instant(local_ts, tz) AS CASE
    WHEN timezone(tz, timezone(tz, local_ts) - INTERVAL 1 HOUR) = local_ts
        THEN timezone(tz, local_ts) - INTERVAL 1 HOUR
    ELSE timezone(tz, local_ts) END;

-- Calendar months in local time, same clock time, day clamped to the month's last day.
CREATE OR REPLACE MACRO vg_add_months(ts, n, tz) AS
    vg_local_to_instant(timezone(tz, ts) + to_months(CAST(n AS INTEGER)), tz);

-- The version of a limit in force at as_of; NULL before its first version came into force
-- (no law, no finding: every rule reading it finds nothing then). valid_from dates are local
-- midnights in the configured zone (converted when the parameters are installed).
CREATE OR REPLACE MACRO vg_limit(limit_name, as_of) AS (
    SELECT value FROM main.rule_limits WHERE name = limit_name AND valid_from <= as_of
    ORDER BY valid_from DESC LIMIT 1);

-- Whether a purpose list for the class is in force at as_of, and whether it allows the code.
CREATE OR REPLACE MACRO vg_purposes_in_force(cls, as_of) AS EXISTS (
    SELECT 1 FROM main.rule_purposes WHERE device_class = cls AND valid_from <= as_of);

CREATE OR REPLACE MACRO vg_allowed_purpose(cls, code, as_of) AS code IN (
    SELECT p.code FROM main.rule_purposes p
    WHERE p.device_class = cls AND p.valid_from = (
        SELECT max(valid_from) FROM main.rule_purposes WHERE device_class = cls AND valid_from <= as_of));

-- A versioned value (the drone consultation justification) in force at as_of, NULL before.
CREATE OR REPLACE MACRO vg_value(value_name, as_of) AS (
    SELECT value FROM main.rule_values WHERE name = value_name AND valid_from <= as_of
    ORDER BY valid_from DESC LIMIT 1);

-- An instant for people: ISO-8601 UTC, milliseconds only when there are some. Its UTC wall
-- clock from its microseconds (make_timestamp), not through timezone('UTC', ts): ICU's
-- calendar took 0.28 s for a million instants, this 0.01 s. The fraction counts up from the
-- second before, before 1970 too (-0.877 s is .123, never .-877).
CREATE OR REPLACE MACRO vg_iso(ts) AS
    strftime(make_timestamp(epoch_us(ts)), '%Y-%m-%dT%H:%M:%S')
    || CASE WHEN epoch_us(ts) % 1000000 = 0 THEN ''
            WHEN epoch_us(ts) % 1000 = 0 THEN '.' || lpad(CAST((epoch_us(ts) % 1000000 + 1000000) % 1000000 // 1000 AS VARCHAR), 3, '0')
            ELSE '.' || lpad(CAST((epoch_us(ts) % 1000000 + 1000000) % 1000000 AS VARCHAR), 6, '0') END || 'Z';

-- Who answers for a source when nothing more precise is known: its `holder` key, else its name.
CREATE OR REPLACE MACRO vg_source_holder(src) AS
    coalesce((SELECT holder FROM main.rule_sources s WHERE s.source = src), src);

-- Lawful keeping: "later than" is strict, so presence or deletion exactly at the limit is on time.
-- That is: lawful_until is finite and before the deletion, or before as_of when not deleted.
-- lawful_until appears once: DuckDB repeats a filter's expression where it is named, not computed
-- once, and a deadline in months costs half a dozen time-zone conversions (RET-01 alone ran 3x longer).
CREATE OR REPLACE MACRO vg_kept_too_long(deleted, lawful_until, as_of) AS
    lawful_until < least(coalesce(deleted, as_of), 'infinity'::TIMESTAMPTZ);

CREATE OR REPLACE MACRO vg_kept_detail(deleted, lawful_until) AS
    CASE WHEN deleted IS NULL THEN 'still present at as-of' ELSE 'deleted ' || vg_iso(deleted) END
    || ', allowed until ' || vg_iso(lawful_until);

-- VP recordings (vms_sql). The deadline is the earlier of the camera's authorisation value
-- (retention_days x 24 h, register entry of class VP) and one calendar month, from the end of
-- the recording. The hold columns of `recordings` are the truth (one hold slot).
CREATE OR REPLACE MACRO vp_recordings(as_of, known_at, grace_hours, tz) AS TABLE
    WITH rec AS (
        SELECT r.source, r.recording_id, r.camera_id, r.started_at, r.ended_at, r.hold_ref,
               CASE WHEN r.deleted_at <= as_of THEN r.deleted_at END AS deleted,
               CASE WHEN r.hold_set_at <= as_of THEN r.hold_set_at END AS hold_set,
               CASE WHEN r.hold_set_at <= as_of AND r.hold_released_at <= as_of THEN r.hold_released_at END AS released
        FROM main.vms_recordings_at(known_at) r
        WHERE r.started_at <= as_of),
    deadlines AS (
        -- least() skips NULLs: before the month limit's first version there is no deadline at all.
        SELECT rec.*, c.camera_id IS NOT NULL AS camera_known, c.authorisation_ref,
               a.authorisation_ref IS NOT NULL AS has_vp_entry, a.valid_from, a.valid_to, named.holder,
               CASE WHEN rec.ended_at <= as_of AND vg_limit('vp_max_months', as_of) IS NOT NULL THEN least(
                   vg_add_months(rec.ended_at, vg_limit('vp_max_months', as_of), tz),
                   coalesce(rec.ended_at + vg_hours(24 * a.retention_days), 'infinity'::TIMESTAMPTZ)) END AS deadline
        FROM rec
        LEFT JOIN main.vms_cameras_at(known_at) c ON c.source = rec.source AND c.camera_id = rec.camera_id
        LEFT JOIN main.authorisations_at(known_at) a ON a.authorisation_ref = c.authorisation_ref AND a.device_class = 'VP'
        -- The holder is that of the register entry named, whatever its class (domain.md, Holders).
        LEFT JOIN main.authorisations_at(known_at) named ON named.authorisation_ref = c.authorisation_ref),
    protection AS (
        SELECT *, hold_set IS NOT NULL AND NOT vg_missing(hold_ref)
                  AND hold_set < deadline + vg_hours(grace_hours) AS protected
        FROM deadlines)
    SELECT *, coalesce(holder, vg_source_holder(source)) AS answerable,
           CASE WHEN deadline IS NULL THEN NULL
                WHEN protected AND released IS NULL THEN 'infinity'::TIMESTAMPTZ
                WHEN protected THEN greatest(deadline, released) + vg_hours(grace_hours)
                ELSE deadline + vg_hours(grace_hours) END AS lawful_until
    FROM protection;

CREATE OR REPLACE MACRO vp_consultations(as_of, known_at) AS TABLE
    SELECT * FROM main.vms_audit_log_at(known_at)
    WHERE action IN ('PLAYBACK', 'EXPORT') AND logged_at <= as_of;

-- Body-worn and vehicle recordings (bodycam_api), one per evidence_id. The clock starts at
-- recording.stopped. Holds are taken in order of (at, seq): the first with a procedure
-- reference set strictly before deadline + grace protects; the first release at or after it
-- ends the protection; a later re-hold is not considered.
CREATE OR REPLACE MACRO bodycam_known_events(as_of, known_at) AS TABLE
    SELECT * FROM main.bodycam_events_at(known_at) WHERE event_at <= as_of;

CREATE OR REPLACE MACRO bodycam_recordings(as_of, known_at, grace_hours, tz) AS TABLE
    WITH ev AS (SELECT * FROM bodycam_known_events(as_of, known_at)),
    rec AS (
        SELECT source, evidence_id,
               min(event_at) FILTER (action = 'recording.stopped') AS stopped_at,
               min(event_at) FILTER (action = 'evidence.deleted') AS deleted,
               coalesce(arg_min(device_kind, event_at) FILTER (action = 'recording.started'),
                        arg_min(device_kind, event_at)) AS device_class,
               coalesce(arg_min(device_serial, event_at) FILTER (action = 'recording.started'),
                        arg_min(device_serial, event_at)) AS device_id,
               arg_min(actor_unit, event_at) FILTER (action = 'recording.started') AS unit
        FROM ev GROUP BY source, evidence_id),
    deadlines AS (
        SELECT *, CASE device_class
                WHEN 'BWC' THEN vg_add_months(stopped_at, vg_limit('bwc_months', as_of), tz)
                WHEN 'VEH' THEN stopped_at + vg_hours(24 * vg_limit('veh_days', as_of)) END AS deadline
        FROM rec),
    protecting AS (
        SELECT h.source, h.evidence_id, h.event_at AS hold_at
        FROM ev h JOIN deadlines d ON d.source = h.source AND d.evidence_id = h.evidence_id
        WHERE h.action = 'evidence.hold_set' AND NOT vg_missing(h.procedure_ref)
          AND h.event_at < d.deadline + vg_hours(grace_hours)
        QUALIFY row_number() OVER (PARTITION BY h.source, h.evidence_id ORDER BY h.event_at, h.seq) = 1),
    released AS (
        SELECT p.source, p.evidence_id, p.hold_at, min(r.event_at) AS released
        FROM protecting p LEFT JOIN ev r
          ON r.source = p.source AND r.evidence_id = p.evidence_id
         AND r.action = 'evidence.hold_released' AND r.event_at >= p.hold_at
        GROUP BY ALL)
    SELECT d.*, r.hold_at IS NOT NULL AS protected, r.released,
           coalesce(d.unit, vg_source_holder(d.source)) AS answerable,
           CASE WHEN d.deadline IS NULL THEN NULL
                WHEN r.hold_at IS NOT NULL AND r.released IS NULL THEN 'infinity'::TIMESTAMPTZ
                WHEN r.hold_at IS NOT NULL THEN greatest(d.deadline, r.released) + vg_hours(grace_hours)
                ELSE d.deadline + vg_hours(grace_hours) END AS lawful_until
    FROM deadlines d LEFT JOIN released r ON r.source = d.source AND r.evidence_id = d.evidence_id;

CREATE OR REPLACE MACRO bodycam_consultations(as_of, known_at) AS TABLE
    SELECT * FROM bodycam_known_events(as_of, known_at)
    WHERE action IN ('evidence.viewed', 'evidence.exported', 'evidence.shared');

-- Drone flights (drone_files): the highest revision known, flown by as_of.
CREATE OR REPLACE MACRO drone_known_flights(as_of, known_at) AS TABLE
    SELECT * FROM main.drone_flights_at(known_at) WHERE takeoff_at <= as_of;

-- (A flight's lists unnested in the select list, read with json_extract: see drone_consultations.)
CREATE OR REPLACE MACRO drone_recordings(as_of, known_at) AS TABLE
    SELECT source, flight_id, drone_id, unit, landing_at,
           r ->> 'recording_id' AS recording_id, CAST(r -> '$.interior' AS BOOLEAN) AS interior,
           CASE WHEN CAST(r ->> 'deleted_at' AS TIMESTAMPTZ) <= as_of THEN CAST(r ->> 'deleted_at' AS TIMESTAMPTZ) END AS deleted
    FROM (SELECT f.source, f.flight_id, f.drone_id, f.unit, f.landing_at, unnest(json_extract(f.recordings, '$[*]')) AS r
          FROM drone_known_flights(as_of, known_at) f WHERE f.landing_at <= as_of);

-- Drone consultations are immutable audit events: every one received in any revision of the
-- flight counts, and a re-delivery with other content keeps the first received.
-- A flight's lists are unnested in the select list, the flight's columns chosen first, never
-- joined laterally (`FROM drone_flights f, unnest(...)`): DuckDB then carried each flight's
-- whole lists beside every element, to this window, which holds its rows (1 000 flights of
-- 300 consultations, lists of 46 KB: 7.8 GB where 1 GB is the cap), or to a DISTINCT (500
-- such flights past a 512 MB cap). And they are read with `json_extract(list, '$[*]')`,
-- never CAST(list AS JSON[]), which holds every parsed list of a vector at once. Both give a
-- loaded flight's elements alike (the contract makes them objects; they differ on null).
CREATE OR REPLACE MACRO drone_consultations(as_of, known_at) AS TABLE
    SELECT * FROM (
        SELECT source, flight_id, drone_id, unit, event_id, consulted_at, consulted_by, justification FROM (
            SELECT source, flight_id, drone_id, unit, batch_id, ord, i,
                   c ->> 'event_id' AS event_id, CAST(c ->> 'at' AS TIMESTAMPTZ) AS consulted_at,
                   c ->> 'by' AS consulted_by, c ->> 'justification' AS justification
            FROM (SELECT source, flight_id, drone_id, unit, batch_id, ord, unnest(l) AS c, unnest(range(1, len(l) + 1)) AS i
                  FROM (SELECT f.source, f.flight_id, f.drone_id, f.unit, f.batch_id, f.ord,
                               json_extract(f.consultations, '$[*]') AS l
                        FROM main.drone_flights f
                        WHERE f.batch_id IN (SELECT batch_id FROM main.known_batch_ids(known_at)))))
        QUALIFY row_number() OVER (PARTITION BY source, event_id ORDER BY batch_id, ord, i) = 1)
    WHERE consulted_at <= as_of;

-- LAPI (lapi_files): reads as last corrected, queries, both by as_of. A read may be kept one
-- calendar month when it matched, else a number of days (domain.md), plus the grace.
CREATE OR REPLACE MACRO lapi_known_reads(as_of, known_at, grace_hours, tz) AS TABLE
    SELECT r.*, CASE WHEN r.deleted_at <= as_of THEN r.deleted_at END AS deleted,
           CASE WHEN r.matched THEN vg_add_months(r.read_at, vg_limit('lapi_match_months', as_of), tz)
                ELSE r.read_at + vg_hours(24 * vg_limit('lapi_nomatch_days', as_of)) END
           + vg_hours(grace_hours) AS lawful_until
    FROM main.lapi_reads_at(known_at) r WHERE r.read_at <= as_of;

CREATE OR REPLACE MACRO lapi_known_queries(as_of, known_at) AS TABLE
    SELECT q.*, r.camera_id, r.matched
    FROM main.lapi_queries_at(known_at) q
    LEFT JOIN main.lapi_reads_at(known_at) r ON r.source = q.source AND r.read_id = q.read_id
    WHERE q.query_at <= as_of;

-- Sequence numbers (LOG-01): every number received for a source (VMS audit_log.log_id,
-- body-camera seq), quarantined rows included when their number can be read, from the first
-- delivery of each event only: a re-delivery with other content (same id, a conflicting
-- duplicate, loaded or quarantined after the first) adds no number. Only deliveries in
-- batches after `after_batch` are listed (-1: all), each judged against every delivery:
-- a later batch can never take the place of an earlier delivery, so the numbers of a
-- warehouse are those it had plus those its new batches add (vigie/rules/incremental.py).
-- seen_at: the row's time when readable.
-- The loaded rows are a macro, not a CTE: DuckDB materialised the CTE, every row of both
-- tables, where the filter on `after_batch` lets the scans skip all but the new batches.
CREATE OR REPLACE MACRO log_loaded(known_at, after_batch) AS TABLE
    SELECT source, CAST(log_id AS VARCHAR) AS id, log_id AS n, batch_id, ord, logged_at AS seen_at
    FROM main.vms_audit_log_at(known_at) WHERE batch_id > after_batch
    UNION ALL
    SELECT source, event_id, seq, batch_id, ord, event_at FROM main.bodycam_events_at(known_at)
    WHERE batch_id > after_batch;

CREATE OR REPLACE MACRO log_numbers(known_at, after_batch) AS TABLE
    -- Every quarantined row with a number, without its text: only the rows of the batches
    -- listed are read again for their time, below (with the text of every one, 113 000 rows
    -- at 20 M events, a 50 000-event delta's new numbers took 0.08 s instead of 0.05 s).
    WITH quarantined AS (
        SELECT q.source, q.ref AS id, q.seq AS n, q.batch_id, coalesce(q.ord, 9223372036854775807) AS ord
        FROM main.quarantine q
        WHERE q.seq IS NOT NULL AND q.batch_id IN (SELECT batch_id FROM main.known_batch_ids(known_at))),
    requeued AS (  -- the few loaded rows whose id was also quarantined in the batches listed:
                   -- only they can come first. An audit row is joined on its number too (which
                   -- its id's text implies): DuckDB then reads only the numbers' row groups, where
                   -- the text alone cast every log_id of the table (0.21 s -> 0.05 s at 20 M).
        SELECT l.source, CAST(l.log_id AS VARCHAR) AS id, l.log_id AS n, l.batch_id, l.ord, l.logged_at AS seen_at
        FROM main.vms_audit_log_at(known_at) l
        SEMI JOIN quarantined q ON q.source = l.source AND TRY_CAST(q.id AS BIGINT) = l.log_id
             AND q.id = CAST(l.log_id AS VARCHAR) AND q.batch_id > after_batch
        UNION ALL
        SELECT l.source, l.event_id, l.seq, l.batch_id, l.ord, l.event_at FROM main.bodycam_events_at(known_at) l
        SEMI JOIN quarantined q ON q.source = l.source AND q.id = l.event_id AND q.batch_id > after_batch)
    -- first deliveries only: nothing of the same id was received before
    SELECT l.source, l.n, l.seen_at FROM log_loaded(known_at, after_batch) l
    WHERE NOT EXISTS (SELECT 1 FROM quarantined q WHERE q.source = l.source AND q.id = l.id
                      AND (q.batch_id < l.batch_id OR (q.batch_id = l.batch_id AND q.ord < l.ord)))
    UNION ALL
    SELECT q.source, q.n, CASE  -- read from the raw row, only for the rows listed
            WHEN q.kind = 'audit_log' AND vg_utc_problem(json_extract_string(q.raw, '$.logged_at')) IS NULL
                THEN TRY_CAST(json_extract_string(q.raw, '$.logged_at') AS TIMESTAMPTZ)
            WHEN q.kind = 'event' AND vg_instant_problem(json_extract_string(q.raw, '$.at')) IS NULL
                THEN TRY_CAST(json_extract_string(q.raw, '$.at') AS TIMESTAMPTZ) END AS seen_at
    FROM (SELECT q.source, q.ref AS id, q.seq AS n, q.batch_id, coalesce(q.ord, 9223372036854775807) AS ord,
                 q.kind, q.raw
          FROM main.quarantine q
          WHERE q.seq IS NOT NULL AND q.batch_id > after_batch
            AND q.batch_id IN (SELECT batch_id FROM main.known_batch_ids(known_at))) q
    WHERE q.id IS NULL OR (
        NOT EXISTS (SELECT 1 FROM requeued l WHERE l.source = q.source AND l.id = q.id
                    AND (l.batch_id < q.batch_id OR (l.batch_id = q.batch_id AND l.ord < q.ord)))
        AND NOT EXISTS (SELECT 1 FROM quarantined p WHERE p.source = q.source AND p.id = q.id
                        AND (p.batch_id < q.batch_id OR (p.batch_id = q.batch_id AND p.ord < q.ord))));

-- One row per number received, with the earliest time seen for it.
CREATE OR REPLACE MACRO log_received(known_at) AS TABLE
    SELECT source, n, min(seen_at) AS seen_at FROM log_numbers(known_at, -1) GROUP BY source, n;
