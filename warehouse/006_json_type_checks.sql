-- Contract checks on a JSON type computed once per row (staging column jt_<field>), instead
-- of parsing the row again for each field: a body-camera event is parsed once, not eleven times.
CREATE MACRO vg_not_string_type(t) AS t NOT IN ('VARCHAR', 'NULL');
-- An integer that also fits BIGINT: `n` is the value read as BIGINT (NULL when it does not fit).
CREATE MACRO vg_not_integer_type(t, n) AS t NOT IN ('UBIGINT', 'BIGINT', 'NULL') OR (t = 'UBIGINT' AND n IS NULL);
