-- An integer too large for BIGINT (a JSON UBIGINT) is a contract breach, not a crash when the
-- row is typed: the integer check now also requires the value to fit.
CREATE OR REPLACE MACRO vg_not_integer(j, path) AS
    json_type(j, path) NOT IN ('UBIGINT', 'BIGINT', 'NULL')
    OR (json_type(j, path) = 'UBIGINT' AND TRY_CAST(json_extract_string(j, path) AS BIGINT) IS NULL);
