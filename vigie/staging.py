"""Read landed files into DuckDB as numbered lines, without losing a single one.

Every source format here is line-based (JSON Lines, CSV, API pages stored one per line), so
the one primitive is: each line of each file, with its file and line number. DuckDB reads
them in bulk (no row passes through Python); a line it cannot read (invalid UTF-8, too long)
comes back with ``text`` NULL and ``error`` set, at its exact line number, so it is
quarantined instead of silently skipped.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

# A byte that cannot stand unescaped in JSON and never in our CSVs: the reader sees each
# line as one column. A line that does contain it is rejected with a clear reason.
_NO_DELIM = "\x01"


def load_lines(con: duckdb.DuckDBPyConnection, table: str, files: list[tuple[str, Path]]) -> None:
    """Create TEMP ``table(file, line, text, error)`` from ``files`` = [(name, landed path)].

    A line with ``error`` set keeps in ``text`` what could be read of it (bad bytes replaced).

    ``line`` is 1-based and counts every physical line (header and blank lines included).
    Blank lines are kept (text NULL, error NULL) so callers decide; they are not rows.
    """
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {table} (file VARCHAR, line BIGINT, text VARCHAR, error VARCHAR)"
    )
    if not files:
        return
    names = {str(p): name for name, p in files}
    con.execute("CREATE OR REPLACE TEMP TABLE _file_names (path VARCHAR, name VARCHAR)")
    con.executemany("INSERT INTO _file_names VALUES (?, ?)", [[k, v] for k, v in names.items()])
    paths = [str(p) for _, p in files]
    con.execute("DROP TABLE IF EXISTS _lines_raw")
    con.execute(
        "CREATE TEMP TABLE _lines_raw AS SELECT filename, text FROM read_csv(?, "
        " columns = {'text': 'VARCHAR'}, header = false, delim = ?, quote = '', escape = '',"
        " comment = '', auto_detect = false, filename = true, null_padding = false, strict_mode = true,"
        " max_line_size = 8388608,"  # 8 MB: the reader buffers a multiple of it
        " store_rejects = true, rejects_scan = '_rej_scan', rejects_table = '_rej_lines')",
        [paths, _NO_DELIM],
    )
    # Number the lines DuckDB read, per file, in file order (rowid is insertion order), then
    # shift each past the rejected lines before it: the k-th line read sits at
    # k + #{rejected r_j : r_j - j < k}.
    con.execute(
        f"""
        INSERT INTO {table}
        WITH read_lines AS (
            SELECT filename, text,
                   row_number() OVER (PARTITION BY filename ORDER BY rowid) AS k
            FROM _lines_raw),
        rejects AS (
            SELECT s.file_path AS filename, e.line AS r, e.error_type, e.error_message, e.csv_line,
                   row_number() OVER (PARTITION BY s.file_path ORDER BY e.line) AS j
            FROM _rej_lines e JOIN _rej_scan s USING (scan_id, file_id)),
        steps AS (
            SELECT filename, r - j AS g, max(j) AS j FROM rejects GROUP BY ALL)
        SELECT n.name, l.k + coalesce(s.j, 0), l.text, NULL
        FROM read_lines l
        JOIN _file_names n ON n.path = l.filename
        ASOF LEFT JOIN steps s ON s.filename = l.filename AND s.g < l.k
        UNION ALL
        SELECT n.name, r.r, r.csv_line,  -- what DuckDB could read of it, for the record
               CASE r.error_type
                   WHEN 'INVALID ENCODING' THEN 'invalid UTF-8'
                   WHEN 'TOO MANY COLUMNS' THEN 'line holds a control character (0x01)'
                   WHEN 'LINE SIZE OVER MAXIMUM' THEN 'line too long to read'
                   ELSE lower(r.error_type) || ': ' || r.error_message END
        FROM rejects r JOIN _file_names n ON n.path = r.filename
        """
    )
    con.execute("DROP TABLE _lines_raw")
    con.execute("DROP TABLE IF EXISTS _rej_lines")
    con.execute("DROP TABLE IF EXISTS _rej_scan")
