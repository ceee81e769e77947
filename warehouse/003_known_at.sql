-- State "as known at" an instant: the versions whose batch had committed by then, and among
-- them the winner domain.md names for each kind of row. Views in `oversight` are the same
-- macros at 'infinity' (everything known now).

CREATE MACRO known_batch_ids(known_at) AS TABLE
    SELECT batch_id FROM main.batches WHERE status = 'loaded' AND committed_at <= known_at;

-- The register: the latest version of each entry, unless that version removed it.
CREATE MACRO authorisations_at(known_at) AS TABLE
    SELECT * EXCLUDE (removed) FROM (
        SELECT a.* FROM main.authorisations a
        WHERE a.batch_id IN (SELECT batch_id FROM main.known_batch_ids(known_at))
        QUALIFY row_number() OVER (PARTITION BY a.authorisation_ref ORDER BY a.batch_id DESC) = 1)
    WHERE NOT removed;

-- VMS rows change in place: the latest pull wins. When the latest pull of a row was
-- quarantined, its current state is unknown: the row is not shown (it is in the quarantine).
CREATE MACRO quarantined_after(src, loc, after_batch, known_at) AS EXISTS (
    SELECT 1 FROM main.quarantine q
    WHERE q.source = src AND q.location = loc AND q.batch_id > after_batch
      AND q.batch_id IN (SELECT batch_id FROM main.known_batch_ids(known_at)));

CREATE MACRO vms_cameras_at(known_at) AS TABLE
    SELECT * FROM (
        SELECT c.* FROM main.vms_cameras c
        WHERE c.batch_id IN (SELECT batch_id FROM main.known_batch_ids(known_at))
        QUALIFY row_number() OVER (PARTITION BY c.source, c.camera_id ORDER BY c.batch_id DESC, c.ord DESC) = 1) c
    WHERE NOT quarantined_after(c.source, c.location, c.batch_id, known_at);

CREATE MACRO vms_recordings_at(known_at) AS TABLE
    SELECT * FROM (
        SELECT r.* FROM main.vms_recordings r
        WHERE r.batch_id IN (SELECT batch_id FROM main.known_batch_ids(known_at))
        QUALIFY row_number() OVER (PARTITION BY r.source, r.recording_id ORDER BY r.batch_id DESC, r.ord DESC) = 1) r
    WHERE NOT quarantined_after(r.source, r.location, r.batch_id, known_at);

-- Audit events are immutable: only the first delivery was loaded.
CREATE MACRO vms_audit_log_at(known_at) AS TABLE
    SELECT * FROM main.vms_audit_log WHERE batch_id IN (SELECT batch_id FROM main.known_batch_ids(known_at));

CREATE MACRO bodycam_events_at(known_at) AS TABLE
    SELECT * FROM main.bodycam_events WHERE batch_id IN (SELECT batch_id FROM main.known_batch_ids(known_at));

-- A flight's highest revision wins, whatever order it came in.
CREATE MACRO drone_flights_at(known_at) AS TABLE
    SELECT f.* FROM main.drone_flights f
    WHERE f.batch_id IN (SELECT batch_id FROM main.known_batch_ids(known_at))
    QUALIFY row_number() OVER (PARTITION BY f.source, f.flight_id ORDER BY f.revision DESC) = 1;

CREATE MACRO drone_track_points_at(known_at) AS TABLE
    SELECT * FROM main.drone_track_points WHERE batch_id IN (SELECT batch_id FROM main.known_batch_ids(known_at));

-- A LAPI read delivered again with other content is a correction: the later file name wins.
CREATE MACRO lapi_reads_at(known_at) AS TABLE
    SELECT r.* FROM main.lapi_reads r
    WHERE r.batch_id IN (SELECT batch_id FROM main.known_batch_ids(known_at))
    QUALIFY row_number() OVER (PARTITION BY r.source, r.read_id ORDER BY r.file DESC, r.ord DESC) = 1;

CREATE MACRO lapi_queries_at(known_at) AS TABLE
    SELECT * FROM main.lapi_queries WHERE batch_id IN (SELECT batch_id FROM main.known_batch_ids(known_at));

-- The stable reading surface for inspectors.
CREATE SCHEMA oversight;

CREATE VIEW oversight.batches AS
    SELECT batch_id, source, kind, started_at, committed_at, status, received, loaded,
           duplicates, quarantined, sha256, raw_bytes, files, error
    FROM main.batches;

-- The latest word on each place: a row quarantined again (a VMS row that changed in place)
-- shows once, and one whose later pull was loaded is no longer quarantined.
CREATE VIEW oversight.quarantine AS
    SELECT q.source, q.kind, q.ref, q.location, q.reason, q.raw, q.batch_id, b.committed_at AS received_at
    FROM main.quarantine q JOIN main.batches b USING (batch_id)
    WHERE b.status = 'loaded'
      AND NOT EXISTS (SELECT 1 FROM main.vms_recordings r
                      WHERE r.source = q.source AND r.location = q.location AND r.batch_id > q.batch_id)
      AND NOT EXISTS (SELECT 1 FROM main.vms_cameras c
                      WHERE c.source = q.source AND c.location = q.location AND c.batch_id > q.batch_id)
    QUALIFY row_number() OVER (PARTITION BY q.source, q.location ORDER BY q.batch_id DESC) = 1;

CREATE VIEW oversight.duplicates AS
    SELECT d.source, d.kind, d.ref, d.location, d.first_location, d.conflicting, d.batch_id,
           b.committed_at AS received_at
    FROM main.duplicates d JOIN main.batches b USING (batch_id)
    WHERE b.status = 'loaded';

CREATE VIEW oversight.authorisations AS SELECT * FROM main.authorisations_at('infinity'::TIMESTAMPTZ);
CREATE VIEW oversight.vms_cameras AS SELECT * FROM main.vms_cameras_at('infinity'::TIMESTAMPTZ);
CREATE VIEW oversight.vms_recordings AS SELECT * FROM main.vms_recordings_at('infinity'::TIMESTAMPTZ);
CREATE VIEW oversight.vms_audit_log AS SELECT * FROM main.vms_audit_log_at('infinity'::TIMESTAMPTZ);
CREATE VIEW oversight.bodycam_events AS SELECT * FROM main.bodycam_events_at('infinity'::TIMESTAMPTZ);
CREATE VIEW oversight.drone_flights AS SELECT * FROM main.drone_flights_at('infinity'::TIMESTAMPTZ);
CREATE VIEW oversight.drone_track_points AS SELECT * FROM main.drone_track_points_at('infinity'::TIMESTAMPTZ);
CREATE VIEW oversight.lapi_reads AS SELECT * FROM main.lapi_reads_at('infinity'::TIMESTAMPTZ);
CREATE VIEW oversight.lapi_queries AS SELECT * FROM main.lapi_queries_at('infinity'::TIMESTAMPTZ);
