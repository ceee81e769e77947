-- Small SQL helpers the expectation suites use, so each check reads as its contract line.

-- An empty string counts as missing (domain.md).
CREATE MACRO vg_missing(x) AS x IS NULL OR x = '';

-- A value quoted for a reason: action: unknown value 'Playback'.
CREATE MACRO vg_q(x) AS '''' || x || '''';

-- Instants that must carry an offset (or Z). NULL when fine, else what is wrong.
CREATE MACRO vg_instant_problem(x) AS CASE
    WHEN vg_missing(x) THEN NULL
    WHEN TRY_CAST(x AS TIMESTAMPTZ) IS NULL THEN 'is not a date'
    WHEN NOT regexp_matches(x, '(Z|z|[+-][0-9][0-9](:?[0-9][0-9])?)$') THEN 'has no UTC offset'
    WHEN NOT regexp_matches(x, '^[0-9]{4}-[0-9][0-9]-[0-9][0-9][T ][0-9][0-9]:[0-9][0-9]') THEN 'is not a date'
    END;

-- Instants of a source whose columns are UTC by contract: no offset is fine.
CREATE MACRO vg_utc_problem(x) AS CASE
    WHEN vg_missing(x) THEN NULL
    WHEN TRY_CAST(x AS TIMESTAMPTZ) IS NULL THEN 'is not a date'
    WHEN NOT regexp_matches(x, '^[0-9]{4}-[0-9][0-9]-[0-9][0-9]([T ][0-9][0-9]:[0-9][0-9]|$)') THEN 'is not a date'
    END;

-- JSON fields: the type a field must have, checked on the parsed line `j`.
CREATE MACRO vg_not_string(j, path) AS json_type(j, path) NOT IN ('VARCHAR', 'NULL');
CREATE MACRO vg_not_integer(j, path) AS json_type(j, path) NOT IN ('UBIGINT', 'BIGINT', 'NULL');
CREATE MACRO vg_not_boolean(j, path) AS json_type(j, path) IS DISTINCT FROM 'BOOLEAN';
CREATE MACRO vg_json_text(j, path) AS coalesce(json_extract(j, path)::VARCHAR, 'missing');

-- A flight line's nested lists: the first thing wrong in them, or NULL.
CREATE MACRO vg_flight_recordings_problem(j) AS CASE
    WHEN json_type(j, '$.recordings') IS DISTINCT FROM 'ARRAY' THEN 'recordings: missing or not a list'
    ELSE list_filter(list_transform(CAST(json_extract(j, '$.recordings') AS JSON[]), lambda r, i:
        'recordings[' || (i - 1) || ']' || CASE
            WHEN json_type(r) IS DISTINCT FROM 'OBJECT' THEN ': not an object'
            WHEN vg_not_string(r, '$.recording_id') THEN '.recording_id: not a string'
            WHEN vg_missing(r ->> 'recording_id') THEN '.recording_id: missing'
            WHEN vg_not_boolean(r, '$.interior') THEN '.interior: ' || vg_json_text(r, '$.interior') || ' is not a boolean'
            WHEN vg_not_string(r, '$.deleted_at') THEN '.deleted_at: not a string'
            WHEN vg_instant_problem(r ->> 'deleted_at') IS NOT NULL
                THEN '.deleted_at: ' || vg_q(r ->> 'deleted_at') || ' ' || vg_instant_problem(r ->> 'deleted_at')
            END), lambda x: x IS NOT NULL)[1]
    END;

CREATE MACRO vg_flight_consultations_problem(j) AS CASE
    WHEN json_type(j, '$.consultations') IS DISTINCT FROM 'ARRAY' THEN 'consultations: missing or not a list'
    ELSE list_filter(list_transform(CAST(json_extract(j, '$.consultations') AS JSON[]), lambda c, i:
        'consultations[' || (i - 1) || ']' || CASE
            WHEN json_type(c) IS DISTINCT FROM 'OBJECT' THEN ': not an object'
            WHEN vg_not_string(c, '$.event_id') THEN '.event_id: not a string'
            WHEN vg_missing(c ->> 'event_id') THEN '.event_id: missing'
            WHEN vg_not_string(c, '$.at') THEN '.at: not a string'
            WHEN vg_missing(c ->> 'at') THEN '.at: missing'
            WHEN vg_instant_problem(c ->> 'at') IS NOT NULL
                THEN '.at: ' || vg_q(c ->> 'at') || ' ' || vg_instant_problem(c ->> 'at')
            WHEN vg_not_string(c, '$.by') THEN '.by: not a string'
            WHEN vg_not_string(c, '$.justification') THEN '.justification: not a string'
            WHEN vg_missing(c ->> 'justification') THEN '.justification: missing'
            WHEN vg_not_string(c, '$.recipient') THEN '.recipient: not a string'
            WHEN vg_missing(c ->> 'recipient') THEN '.recipient: missing'
            END), lambda x: x IS NOT NULL)[1]
    END;

-- A CSV field as written: "a ""b""" → a "b".
CREATE MACRO vg_unquote(f) AS CASE
    WHEN f LIKE '"%"' AND length(f) >= 2 THEN replace(f[2:-2], '""', '"') ELSE f END;
