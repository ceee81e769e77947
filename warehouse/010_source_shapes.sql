-- Schema drift (issue #13): the shape of each stream of each source that loads are held to.
-- One row per accepted shape; the current one of a (source, stream) is its latest batch_id.
-- A shape is recorded with the first batch that loads the stream ('first load'), and again
-- when an operator takes a new one with `vigie run --accept-drift SOURCE` ('accepted').
-- Written in the same transaction as that batch: a load that fails records nothing.
-- Plain table (no key, sequence or enum): the same SQL runs on DuckLake.

CREATE TABLE source_shapes (
    source      VARCHAR NOT NULL,
    stream      VARCHAR NOT NULL,     -- the connector's stream: audit_log, reads, events...
    shape       JSON NOT NULL,        -- {"columns": {...}} | {"headers": [[...]]} | {"fields": {...}, "required": [...]}
    batch_id    BIGINT NOT NULL,      -- the batch that loaded with it
    accepted_at TIMESTAMPTZ NOT NULL,
    how         VARCHAR NOT NULL      -- first load | accepted
);

CREATE VIEW oversight.source_shapes AS
    SELECT source, stream, shape, batch_id, accepted_at, how FROM main.source_shapes
    QUALIFY row_number() OVER (PARTITION BY source, stream ORDER BY batch_id DESC) = 1;
