"""Where each source resumes: its cursor, JSON text, as the warehouse keeps it, and a drop
folder's files as it last saw them.

A cursor is kept in parts (table ``source_cursor_parts``, `db.text_parts`), and only the
parts that changed are written: a long one kept whole (a drop folder's listed every file ever
landed until migration 014, 14 MB at 20 M events), it and its deleted versions were written
again by every checkpoint after any cursor moved (60 MB at 20 M).

A drop folder's files (its connector's ``cursor["files"]``: name → size, mtime, SHA-256) are
rows of ``drop_files`` (migration 014), each batch adding those it set. In the cursor's text,
that map was parsed, compared, encoded and hashed again by every run, 0.3-0.5 s at 20 M.
"""

from __future__ import annotations

import duckdb

from vigie import db


def load(con: duckdb.DuckDBPyConnection, source: str) -> str | None:
    """The cursor of ``source`` (None: it never moved)."""
    try:
        (text,) = con.execute("SELECT string_agg(text, '' ORDER BY part) FROM main.source_cursor_parts "
                              "WHERE source = ?", [source]).fetchone()
    except duckdb.CatalogException:  # a published copy from before migration 012
        row = con.execute("SELECT CAST(cursor AS VARCHAR) FROM main.source_cursors WHERE source = ?",
                          [source]).fetchone()
        text = row[0] if row else None
    return text


def save(con: duckdb.DuckDBPyConnection, source: str, before: str | None, after: str, batch_id: int) -> None:
    """Replace the cursor ``before`` (as `load` gave it) with ``after``, moved by ``batch_id``;
    in the batch's transaction."""
    old, new = db.text_parts(before), db.text_parts(after)
    # Each part that differs from the one at its place, not every part after the first that
    # differs: a VMS cursor's first part holds the audit log id, which every pull that brings
    # audit rows moves, and the lookback window's recordings after it (3.5 MB at 20 M events)
    # were written again whole each time.
    changed = [i for i, text in enumerate(new) if i >= len(old) or old[i] != text]
    con.execute("DELETE FROM main.source_cursor_parts WHERE source = ? AND (part >= ? OR list_contains(?::BIGINT[], part))",
                [source, len(new), changed])
    db.insert_rows(con, "main.source_cursor_parts", [[source, i, new[i]] for i in changed])
    con.execute("DELETE FROM main.source_cursors WHERE source = ?", [source])  # no INSERT OR REPLACE: DuckLake
    con.execute("INSERT INTO main.source_cursors VALUES (?, NULL, ?)", [source, batch_id])


def load_files(con: duckdb.DuckDBPyConnection, source: str) -> dict[str, dict]:
    """A drop folder's files as its connector reads them from ``cursor["files"]``: each name's
    row of the latest batch."""
    # In batch order, each later row of a name replacing the earlier: a third of the time of
    # arg_max grouped by name (0.08 s against 0.28 s for the 91 000 drone files at 20 M events).
    rows = con.execute("SELECT name, size, mtime_ns, sha256 FROM main.drop_files WHERE source = ? ORDER BY batch_id",
                       [source]).fetchall()
    return {name: {"size": size, "mtime_ns": mtime, "sha256": sha} for name, size, mtime, sha in rows}


def save_files(con: duckdb.DuckDBPyConnection, source: str, files: dict[str, dict], batch_id: int) -> None:
    """Record the files a batch set (name → size, mtime_ns, sha256); in the batch's transaction."""
    db.insert_rows(con, "main.drop_files", [[source, batch_id, name, f["size"], f["mtime_ns"], f["sha256"]]
                                            for name, f in sorted(files.items())])


def count_files(con: duckdb.DuckDBPyConnection, source: str) -> int | None:
    """How many files of a drop folder are known (None: a published copy from before migration 014)."""
    try:
        return con.execute("SELECT count(DISTINCT name) FROM main.drop_files WHERE source = ?", [source]).fetchone()[0]
    except duckdb.CatalogException:
        return None
