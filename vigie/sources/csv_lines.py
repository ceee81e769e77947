"""Staging SQL for CSV files read as lines (see vigie/staging.py).

Splitting happens in DuckDB: a comma is prefixed so that every field match starts with one,
which keeps empty fields (``a,,b``) and lets quoted fields hold commas and doubled quotes.
A line without any quote is split on its commas instead: the same fields, without the regex
(most lines; the regex was the larger part of staging a CSV).
A file whose header is not the contract's has every line quarantined, as sources.md says.
"""

from __future__ import annotations

FIELD = r""",("(?:[^"]|"")*"|[^,"]*)"""


def csv_staging(header: list[str], aliases: dict[str, str] | None = None) -> str:
    """SELECT over ``lines`` giving ord, file, line, raw, parse_error and one text column per field.

    ``aliases`` renames a field's staging column (``at`` is a keyword in DuckDB).
    Empty fields become NULL: an empty string counts as missing.
    """
    aliases = aliases or {}
    expected = ",".join(header)
    cols = ",\n        ".join(
        f"CASE WHEN parse_error IS NULL THEN nullif(vg_unquote(fields[{i + 1}]), '') END AS {aliases.get(f, f)}"
        for i, f in enumerate(header)
    )
    return f"""
    WITH headers AS (
        SELECT file, text AS header FROM lines WHERE line = 1),
    rows AS (
        SELECT l.file, l.line, l.text, l.error, h.header,
               CASE WHEN contains(l.text, '"') THEN regexp_extract_all(',' || l.text, '{FIELD}', 1)
                    ELSE string_split(l.text, ',') END AS fields
        FROM lines l LEFT JOIN headers h USING (file)
        -- a header line that cannot be read is quarantined itself (a file of CR-ended lines is one such line)
        WHERE l.line > 1 AND (l.text IS NOT NULL AND l.text <> '') OR l.error IS NOT NULL),
    parsed AS (
        SELECT *, CASE
            WHEN error IS NOT NULL THEN error
            WHEN header IS DISTINCT FROM '{expected}'
                THEN 'file header is ' || coalesce(vg_q(header), 'unreadable') || ', expected ''{expected}'''
            WHEN len(fields) <> {len(header)}
                THEN 'expected {len(header)} fields, found ' || len(fields)
            END AS parse_error
        FROM rows)
    SELECT file, line, text AS raw, parse_error, nullif(vg_unquote(fields[1]), '') AS first_field,
        {cols}
    FROM parsed
    """
