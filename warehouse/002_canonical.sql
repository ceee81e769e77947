-- Canonical tables. Every row carries the batch that brought it and where it came from.
-- Nothing is updated in place: a change is a new version row, so any earlier state can be
-- read back (see 003_known_at.sql).

CREATE TABLE authorisations (
    authorisation_ref VARCHAR NOT NULL,
    device_class      VARCHAR NOT NULL,
    holder            VARCHAR,
    valid_from        TIMESTAMPTZ NOT NULL,
    valid_to          TIMESTAMPTZ NOT NULL,
    purposes          VARCHAR[],
    retention_days    INTEGER,
    perimeter         JSON,
    removed           BOOLEAN NOT NULL DEFAULT false,   -- a version saying the entry left the register
    batch_id          BIGINT NOT NULL,
    location          VARCHAR NOT NULL
);

-- vms_sql ------------------------------------------------------------------------------
CREATE TABLE vms_cameras (
    source VARCHAR NOT NULL, camera_id VARCHAR NOT NULL, site VARCHAR,
    authorisation_ref VARCHAR, lat DOUBLE, lon DOUBLE,
    batch_id BIGINT NOT NULL, location VARCHAR NOT NULL, ord BIGINT NOT NULL
);
CREATE TABLE vms_recordings (
    source VARCHAR NOT NULL, recording_id VARCHAR NOT NULL, camera_id VARCHAR,
    started_at TIMESTAMPTZ, ended_at TIMESTAMPTZ, deleted_at TIMESTAMPTZ,
    hold_set_at TIMESTAMPTZ, hold_ref VARCHAR, hold_released_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ,
    batch_id BIGINT NOT NULL, location VARCHAR NOT NULL, ord BIGINT NOT NULL
);
CREATE TABLE vms_audit_log (
    source VARCHAR NOT NULL, log_id BIGINT NOT NULL, logged_at TIMESTAMPTZ,
    user_login VARCHAR, action VARCHAR, camera_id VARCHAR, recording_id VARCHAR,
    justification VARCHAR, procedure_ref VARCHAR, recipient VARCHAR,
    batch_id BIGINT NOT NULL, location VARCHAR NOT NULL, ord BIGINT NOT NULL
);

-- bodycam_api ----------------------------------------------------------------------------
CREATE TABLE bodycam_events (
    source VARCHAR NOT NULL, event_id VARCHAR NOT NULL, seq BIGINT, event_at TIMESTAMPTZ,
    device_serial VARCHAR, device_kind VARCHAR, actor_badge VARCHAR, actor_unit VARCHAR,
    action VARCHAR, evidence_id VARCHAR, purpose VARCHAR, justification VARCHAR,
    procedure_ref VARCHAR, recipient VARCHAR,
    batch_id BIGINT NOT NULL, location VARCHAR NOT NULL, ord BIGINT NOT NULL
);

-- drone_files ----------------------------------------------------------------------------
CREATE TABLE drone_flights (
    source VARCHAR NOT NULL, flight_id VARCHAR NOT NULL, revision BIGINT NOT NULL,
    drone_id VARCHAR, unit VARCHAR, pilot VARCHAR, authorisation_ref VARCHAR, purpose VARCHAR,
    takeoff_at TIMESTAMPTZ, landing_at TIMESTAMPTZ,
    audio_recorded BOOLEAN, facial_recognition BOOLEAN,
    recordings JSON, consultations JSON,       -- as received; unnested in the views
    batch_id BIGINT NOT NULL, location VARCHAR NOT NULL, ord BIGINT NOT NULL
);
CREATE TABLE drone_track_points (
    source VARCHAR NOT NULL, flight_id VARCHAR NOT NULL, t TIMESTAMPTZ,
    lat DOUBLE, lon DOUBLE, alt_m DOUBLE,
    batch_id BIGINT NOT NULL, location VARCHAR NOT NULL, ord BIGINT NOT NULL
);

-- lapi_files -----------------------------------------------------------------------------
CREATE TABLE lapi_reads (
    source VARCHAR NOT NULL, read_id VARCHAR NOT NULL, read_at TIMESTAMPTZ,
    camera_id VARCHAR, plate_hash VARCHAR, matched BOOLEAN, deleted_at TIMESTAMPTZ,
    file VARCHAR NOT NULL,                      -- a later file name wins (a correction)
    batch_id BIGINT NOT NULL, location VARCHAR NOT NULL, ord BIGINT NOT NULL
);
CREATE TABLE lapi_queries (
    source VARCHAR NOT NULL, event_id VARCHAR NOT NULL, query_at TIMESTAMPTZ,
    "user" VARCHAR, read_id VARCHAR, purpose VARCHAR, procedure_ref VARCHAR,
    batch_id BIGINT NOT NULL, location VARCHAR NOT NULL, ord BIGINT NOT NULL
);
