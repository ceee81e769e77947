"""Read landed files into DuckDB as numbered lines, without losing a single one.

Every source format here is line-based (JSON Lines, CSV, API pages stored one per line), so
the one primitive is: each line of each file, with its file and line number. DuckDB reads
them in bulk (no row passes through Python); a line it cannot read (invalid UTF-8, too long)
comes back with ``text`` NULL and ``error`` set, at its exact line number, so it is
quarantined instead of silently skipped.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from vigie.contracts import reason_sql
from vigie.db import bulk_flush, insert_rows

# A byte that cannot stand unescaped in JSON and never in our CSVs: the reader sees each
# line as one column. A line that does contain it is rejected with a clear reason.
_NO_DELIM = "\x01"
_BOM = b"\xef\xbb\xbf"  # UTF-8's byte-order mark


def _drop(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Drop ``name``, a view or a table (DuckDB's DROP names the kind)."""
    kind = con.execute("SELECT 'VIEW' FROM duckdb_views() WHERE view_name = $n AND temporary "
                       "UNION ALL SELECT 'TABLE' FROM duckdb_tables() WHERE table_name = $n AND temporary",
                       {"n": name}).fetchone()
    if kind:
        con.execute(f"DROP {kind[0]} {name}")


def drop_lines(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Free what `load_lines` holds: ``table`` and the lines it reads."""
    _drop(con, table)
    for name in ("_lines_raw", "_file_start", "_file_names"):
        con.execute(f"DROP TABLE IF EXISTS {name}")


# The longest line read, by default: a longer one is an error line ("line too long to read"),
# quarantined. The reader's buffer is the same size: DuckDB's default (a multiple of it) made
# reading five times slower for big files; thousands of small files read faster still with
# a smaller one (a stream may lower its limit).
MAX_LINE_BYTES = 8 << 20


# Many small files are read by DuckDB as one: joined into a file of their lines (`_join`),
# which Python writes faster than DuckDB opens them. DuckDB spends about 125 µs on each file
# it opens: the 22 808 drone track files of the 5 M estate (1 KB each) took 2.8-3.0 s to read,
# against 0.83-0.91 s to join them and read the joined file. Joining copies the bytes once
# more and holds one file in memory, which pays for small files only: files of
# JOIN_FILE_BYTES or less are joined when there are JOIN_FILES of them or more; the others
# (the LAPI folder's files of 300 KB) are read by themselves, beside the joined file.
JOIN_FILES = 16
JOIN_FILE_BYTES = 64 << 10


def _size(path: Path) -> float:
    """A file's size; infinite when it cannot be read (DuckDB, reading it alone, says why)."""
    try:
        return path.stat().st_size
    except OSError:
        return float("inf")


def _joinable(data: bytes, max_line_bytes: int) -> bool:
    """Whether the line reader reads ``data`` joined to other files' lines as it reads it
    alone: not with a carriage return (a line end to DuckDB), a byte-order mark (dropped at a
    file's start), or a line of half the limit or more (DuckDB cuts the one past its limit
    where its buffers happen to end, so the lines after it would depend on the files before).
    Landing leaves none of them in a drop folder's files (`vigie.sources.text_files`)."""
    half = max_line_bytes // 2
    return not (b"\r" in data or data.startswith(_BOM) or (
        len(data) >= half and max(map(len, data.split(b"\n"))) >= half))


class Joiner:
    """Write the lines of files, one after the other, to ``into``: each file's ending with a
    line feed as the line reader reads it (a last line without one is still a line). ``parts``
    holds (name, its first line in ``into``) for each file added that has lines, ``taken`` the
    paths of the files added (an empty one has no part: nothing to read). A line never spans
    two files, so a line DuckDB rejects in ``into`` is the same line of one file. ``into`` is
    made at the first line written."""

    def __init__(self, into: Path, max_line_bytes: int) -> None:
        self.path, self.max_line_bytes = into, max_line_bytes
        self.parts: list[tuple[str, int]] = []
        self.taken: set[str] = set()
        self._out = None
        self._next = 1

    def add(self, name: str, path: Path, data: bytes) -> bool:
        """Add the file ``name`` landed at ``path``, whose bytes are ``data``; False when it
        is to be read by itself (`_joinable`)."""
        if not _joinable(data, self.max_line_bytes):
            return False
        self.taken.add(str(path))
        if not data:
            return True
        if self._out is None:
            self._out = open(self.path, "wb")  # noqa: SIM115 - closed by close()
        self._out.write(data)
        n = data.count(b"\n")
        if not data.endswith(b"\n"):
            self._out.write(b"\n")
            n += 1
        self.parts.append((name, self._next))
        self._next += n
        return True

    def close(self) -> None:
        if self._out is not None:
            self._out.close()

    def remove(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


def _join(files: list[tuple[str, Path]], into: Path, max_line_bytes: int) -> tuple[list[tuple[str, int]], list]:
    """Join ``files`` into ``into`` (`Joiner`); return its parts and the files left to be
    read by themselves."""
    joiner, alone = Joiner(into, max_line_bytes), []
    try:
        for name, path in files:
            with open(path, "rb") as f:
                data = f.read()
            if not joiner.add(name, path, data):
                alone.append((name, path))
    finally:
        joiner.close()
    return joiner.parts, alone


def load_lines(con: duckdb.DuckDBPyConnection, table: str, files: list[tuple[str, Path]],
               max_line_bytes: int = MAX_LINE_BYTES, line_errors: list[tuple[str, int, str]] = (),
               joined: Joiner | None = None) -> None:
    """Create TEMP ``table(file, line, text, error)`` from ``files`` = [(name, landed path)].

    ``line_errors`` = [(name, line, reason)]: lines already known to be unreadable (found
    while landing, see `vigie.sources.text_files`); their reason wins over what DuckDB says.

    A line with ``error`` set keeps in ``text`` what could be read of it (bad bytes replaced).

    ``line`` is 1-based and counts every physical line (header and blank lines included).
    Blank lines are kept (text NULL, error NULL) so callers decide; they are not rows.

    When every line could be read (the usual case) ``table`` is a view over the lines as
    DuckDB read them, numbered from their position: no copy of the text. Many small files are
    read as one joined file (`_join`), each line named back to its file and line; ``joined``,
    files already joined while they were landed (`vigie.sources.base`), closed: those of
    ``files`` it took are read there.
    """
    drop_lines(con, table)
    if not files:
        con.execute(f"CREATE TEMP TABLE {table} (file VARCHAR, line BIGINT, text VARCHAR, error VARCHAR)")
        return
    # What DuckDB reads → the files' names: (path, name, the name's first line in the path).
    con.execute("CREATE TEMP TABLE _file_names (path VARCHAR, name VARCHAR, first_line BIGINT)")
    alone = list({str(p): (name, p) for name, p in files}.values())  # each path once
    landed = []  # [path, name, first line] of the files joined while landed
    if joined is not None and joined.taken:
        alone = [(name, p) for name, p in alone if str(p) not in joined.taken]
        landed = [[str(joined.path), name, first] for name, first in joined.parts]
    small = [(name, p) for name, p in alone if _size(p) <= JOIN_FILE_BYTES]
    here, parts = None, []
    if len(small) >= JOIN_FILES:
        # Beside the first small file, on the warehouse's disk; removed once read.
        here = small[0][1].with_name(f".joined-{os.getpid()}-{table}")
        try:
            parts, odd = _join(small, here, max_line_bytes)
        except BaseException:
            here.unlink(missing_ok=True)
            raise
        taken = {str(p) for _, p in small} - {str(p) for _, p in odd}
        alone = [(name, p) for name, p in alone if str(p) not in taken]
        if not parts:
            here.unlink(missing_ok=True)
            here = None
    insert_rows(con, "_file_names", landed + [[str(here), name, first] for name, first in parts] +
                [[str(p), name, 1] for name, p in alone])
    paths = ([str(joined.path)] if landed else []) + ([str(here)] if here else []) + [str(p) for _, p in alone]
    if not paths:  # every file empty, so joined and left out: DuckDB's reader refuses an empty list
        con.execute("DROP TABLE _file_names")
        con.execute(f"CREATE TEMP TABLE {table} (file VARCHAR, line BIGINT, text VARCHAR, error VARCHAR)")
        return
    # Each physical line to the file it came from: in a joined file, the last one starting at
    # or before it (an ASOF join); else the file read by itself (an equality join, cheaper).
    named = ("ASOF JOIN _file_names n ON n.path = p.filename AND n.first_line <= p.line" if landed or here else
             "JOIN _file_names n ON n.path = p.filename")
    try:
        con.execute(
            "CREATE TEMP TABLE _lines_raw AS SELECT filename, text FROM read_csv(?, "
            " columns = {'text': 'VARCHAR'}, header = false, delim = ?, quote = '', escape = '',"
            " comment = '', auto_detect = false, filename = true, null_padding = false, strict_mode = true,"
            " max_line_size = ?, buffer_size = ?,"
            " store_rejects = true, rejects_scan = '_rej_scan', rejects_table = '_rej_lines')",
            [paths, _NO_DELIM, max_line_bytes, max_line_bytes],
        )
    finally:
        if here is not None:
            here.unlink(missing_ok=True)
    # rowid is insertion order, and a file's lines arrive together and in order: a line read
    # is numbered from its file's first rowid, with no sort of the lines.
    con.execute("CREATE TEMP TABLE _file_start AS SELECT filename, min(rowid) AS first_row FROM _lines_raw GROUP BY ALL")
    (rejected,) = con.execute("SELECT count(*) FROM _rej_lines").fetchone()
    if not rejected and not line_errors:
        con.execute(f"""
            CREATE TEMP VIEW {table} AS
            SELECT n.name AS file, p.line - n.first_line + 1 AS line, p.text, NULL::VARCHAR AS error
            FROM (SELECT l.filename, l.rowid - f.first_row + 1 AS line, l.text
                  FROM _lines_raw l JOIN _file_start f USING (filename)) p
            {named}""")
    else:
        # Shift each line read past the rejected lines before it: the k-th line read sits at
        # k + #{rejected r_j : r_j - j < k}.
        con.execute(
            f"""
            CREATE TEMP TABLE {table} AS
            WITH read_lines AS (
                SELECT l.filename, l.text, l.rowid - f.first_row + 1 AS k
                FROM _lines_raw l JOIN _file_start f USING (filename)),
            rejects AS (
                SELECT s.file_path AS filename, e.line AS r, e.error_type, e.error_message, e.csv_line,
                       row_number() OVER (PARTITION BY s.file_path ORDER BY e.line) AS j
                FROM _rej_lines e JOIN _rej_scan s USING (scan_id, file_id)),
            steps AS (
                SELECT filename, r - j AS g, max(j) AS j FROM rejects GROUP BY ALL),
            physical AS (
                SELECT l.filename, l.k + coalesce(s.j, 0) AS line, l.text, NULL::VARCHAR AS error
                FROM read_lines l
                ASOF LEFT JOIN steps s ON s.filename = l.filename AND s.g < l.k
                UNION ALL
                -- What DuckDB could read of it, for the record; without the blank lines before
                -- it, which DuckDB gives with it (a file's first line: the last file's).
                SELECT r.filename, r.r, ltrim(r.csv_line, chr(10)),
                       CASE r.error_type
                           WHEN 'INVALID ENCODING' THEN 'invalid UTF-8'
                           WHEN 'TOO MANY COLUMNS' THEN 'line holds a control character (0x01)'
                           WHEN 'LINE SIZE OVER MAXIMUM' THEN 'line too long to read'
                           ELSE lower(r.error_type) || ': ' || r.error_message END
                FROM rejects r)
            SELECT n.name AS file, p.line - n.first_line + 1 AS line, p.text, p.error
            FROM physical p {named}
            """
        )
        con.execute("DROP TABLE _lines_raw")
        if line_errors:
            con.execute("CREATE OR REPLACE TEMP TABLE _line_errors (file VARCHAR, line BIGINT, reason VARCHAR)")
            insert_rows(con, "_line_errors", [list(e) for e in line_errors])
            con.execute(f"UPDATE {table} t SET error = e.reason FROM _line_errors e "
                        "WHERE t.file = e.file AND t.line = e.line")
            con.execute("DROP TABLE _line_errors")
    con.execute("DROP TABLE IF EXISTS _rej_lines")
    con.execute("DROP TABLE IF EXISTS _rej_scan")


# Memory freed at once past this goes back to the system at once, while a stream is staged
# (`db.bulk_flush`). At the 8 MB every connection has (`db._configure`), each slice of API
# pages parsed handed its memory back and faulted it in again: staging the 5 M estate's
# streams took 22.6 s against 18.2 s at 64 MB (the body-camera pages 9.5 s against 6.9 s;
# 32 MB does as well, 16 MB not), for 26 MB more at the peak. The rules' evaluation and the
# drift check gained nothing from it, and the connection goes back to 8 MB after.
STAGE_FLUSH = "64MB"


# Text of the lines one scratch statement reads at a time. DuckDB's JSON functions keep the
# parsed documents of a whole vector (2 048 rows) until it is done: for 330 KB API pages that
# is gigabytes, past any sensible memory limit. A few MB of lines at a time keeps it bounded.
SLICE_BYTES = 8 << 20


def _scratch_by_file(con: duckdb.DuckDBPyConnection, stream, files: list[tuple[str, Path]],  # noqa: ANN001
                     line_errors: list[tuple[str, int, str]]) -> None:
    """Fill the stream's scratch tables one landed file at a time, then leave ``lines`` empty
    and ``_file_order`` as `stage` makes it: DuckDB cannot spill lines as long as API pages,
    so only one file (a part of at most PART_BYTES, see bodycam_api) is held at a time."""
    con.execute("CREATE OR REPLACE TEMP TABLE _files_read (file VARCHAR)")
    for k, (name, path) in enumerate(sorted(files) or [(None, None)]):
        group = [(name, path)] if path is not None else []
        load_lines(con, "lines", group, stream.max_line_bytes, [e for e in line_errors if e[0] == name])
        con.execute("INSERT INTO _files_read SELECT DISTINCT file FROM lines")
        _scratch(con, stream, create=k == 0)
    con.execute("CREATE OR REPLACE TEMP TABLE _file_order AS "
                "SELECT file, row_number() OVER (ORDER BY file) AS file_no FROM (SELECT DISTINCT file FROM _files_read)")
    con.execute("DROP TABLE _files_read")
    load_lines(con, "lines", [])  # what staging reads of the lines is in the scratch tables


def _scratch(con: duckdb.DuckDBPyConnection, stream, create: bool = True) -> None:  # noqa: ANN001
    """Fill the stream's scratch tables (made when ``create``) from ``slice_lines``: ``lines``
    a slice at a time."""
    n, total = con.execute("SELECT count(*), coalesce(sum(strlen(text)), 0) FROM lines").fetchone()
    per_slice = max(1, min(2048, SLICE_BYTES * n // max(total, 1)))
    con.execute("CREATE OR REPLACE TEMP TABLE _slices AS SELECT file, line, "
                "(row_number() OVER (ORDER BY file, line) - 1) // ? AS slice FROM lines", [per_slice])
    (slices,) = con.execute("SELECT coalesce(max(slice) + 1, 0) FROM _slices").fetchone()
    for k in range(max(slices, 1)):
        con.execute("CREATE OR REPLACE TEMP VIEW slice_lines AS "
                    f"SELECT l.* FROM lines l SEMI JOIN (SELECT file, line FROM _slices WHERE slice = {k}) s USING (file, line)")
        for name, select in stream.scratch:
            if name.startswith("_slice"):  # this slice's alone, rebuilt for the next
                con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {select}")
            else:
                con.execute(f"CREATE TEMP TABLE {name} AS {select}" if k == 0 and create else f"INSERT INTO {name} {select}")
    con.execute("DROP VIEW slice_lines")
    con.execute("DROP TABLE _slices")


def _long_lines(con: duckdb.DuckDBPyConnection, rows: str, text: str) -> bool:
    """Whether a vector of ``rows`` (2 048 of them, DuckDB's unit of work) can hold more than
    SLICE_BYTES of ``text``: then statements that parse them go a slice at a time."""
    (longest,) = con.execute(f"SELECT coalesce(max(strlen({text})), 0) FROM {rows}").fetchone()
    return longest * 2048 > SLICE_BYTES


def _byte_slices(text: str, order: str) -> str:
    """SQL of each row's slice number, rows in ``order``: about SLICE_BYTES of ``text`` a slice."""
    return f"(sum(coalesce(strlen({text}), 0)) OVER (ORDER BY {order}) - 1) // {SLICE_BYTES}"


def ord_spans(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[int, int]] | None:
    """(first, last) ``ord`` of each slice of a staging ``table`` whose lines are long (about
    SLICE_BYTES of ``raw`` text to a slice, in order), else None (all at once): for
    statements over a stream's lines that must not hold a whole vector of them (`Stream.sliced`)."""
    if not _long_lines(con, table, "raw"):
        return None
    return con.execute(f"SELECT min(ord), max(ord) FROM (SELECT ord, {_byte_slices('raw', 'ord')} AS k "
                       f"FROM {table}) GROUP BY k ORDER BY 1").fetchall()


def _stage_by_slice(con: duckdb.DuckDBPyConnection, table: str, temp: bool, checked: str) -> None:
    """Create ``table`` from ``checked`` (the staging and contract SQL over ``lines``), run on
    a slice of the lines at a time where they are long (`_long_lines`). DuckDB's JSON
    functions and the contract's checks of each list element hold a whole vector of lines at
    once: 1 000 drone flights of 46 KB (300 consultations each) took staging past its 1 GB
    cap. The lines are then copied once, grouped by slice, so that each slice's statement
    reads only its own."""
    create = f"CREATE OR REPLACE {'TEMP TABLE' if temp else 'TABLE'} {table} AS {checked}"
    if not _long_lines(con, "lines", "text"):
        con.execute(create)
        return
    # numbered 0, 1, ... without gaps: a line longer than a slice leaves one in the quotients
    con.execute("CREATE OR REPLACE TEMP TABLE _sliced AS SELECT * EXCLUDE (k), dense_rank() OVER (ORDER BY k) - 1 AS slice "
                f"FROM (SELECT *, {_byte_slices('text', 'file, line')} AS k FROM lines) ORDER BY slice")
    drop_lines(con, "lines")
    (slices,) = con.execute("SELECT coalesce(max(slice) + 1, 0) FROM _sliced").fetchone()
    for k in range(max(slices, 1)):  # an empty slice 0 still makes the table
        con.execute(f"CREATE OR REPLACE TEMP VIEW lines AS SELECT file, line, text, error FROM _sliced WHERE slice = {k}")
        con.execute(create if k == 0 else f"INSERT INTO {table} {checked}")
    con.execute("DROP VIEW lines")
    con.execute("DROP TABLE _sliced")


def stage(con: duckdb.DuckDBPyConnection, stream, files: list[tuple[str, Path]], table: str,  # noqa: ANN001
          *, temp: bool = True, line_errors: list[tuple[str, int, str]] = (), joined: Joiner | None = None) -> int:
    """Stage one stream's landed ``files`` into ``table`` and check its contract; return its rows.

    ``table`` holds ``ord`` (delivery order: files in name order, then lines), the stream's
    staging columns and ``reason``: NULL for a row that keeps the contract, else every
    expectation of its suite that it breaks, for a person. The check is computed as the rows
    are staged, so the batch is not copied once more for it. ``temp``: not written to the
    warehouse file (Great Expectations, which needs a real table in ``main``, sets it False).
    ``joined``: files joined while landed (`load_lines`).
    """
    with bulk_flush(con, STAGE_FLUSH):
        if stream.scratch:
            _scratch_by_file(con, stream, files, line_errors)
        else:
            load_lines(con, "lines", files, stream.max_line_bytes, line_errors, joined)
            # Numbered without sorting every row: a file's rank, then its line.
            con.execute("CREATE OR REPLACE TEMP TABLE _file_order AS "
                        "SELECT file, row_number() OVER (ORDER BY file) AS file_no FROM (SELECT DISTINCT file FROM lines)")
        checked = (f"SELECT *, {reason_sql(stream.suite)} AS reason FROM ("
                   f"  SELECT o.file_no * 1000000000000 + s.line AS ord, s.* "
                   f"  FROM ({stream.staging_sql}) s JOIN _file_order o USING (file))")
        if stream.sliced:
            _stage_by_slice(con, table, temp, checked)
        else:
            con.execute(f"CREATE OR REPLACE {'TEMP TABLE' if temp else 'TABLE'} {table} AS {checked}")
        drop_lines(con, "lines")  # free their memory now
        for name in ["_file_order", *(name for name, _ in stream.scratch)]:
            con.execute(f"DROP TABLE {name}")
    return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
