"""How each configured source is doing: one row per source (interface.md, "Operators: sources").

`vigie sources`, the Oversight view's `/vigie/sources` page and the pipeline alerts (feed
silence, failing runs, quarantine rate) all read `source_health`, so they agree.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone

import duckdb

from vigie import cursors

LAST_BATCHES = 10  # the window of the counts
FAILING_RUNS = 3  # this many failed batches in a row is a pipeline alert


@dataclass
class SourceHealth:
    source: str
    kind: str
    last_batch_id: int | None  # the last successful (loaded) batch
    last_committed_at: datetime | None
    cursor: str | None  # JSON, where the source resumes (its maps by their size: `show_cursor`)
    received: int  # over the last LAST_BATCHES batches
    loaded: int
    duplicates: int
    quarantined: int
    last_error: str | None  # first line of the last failed batch's error
    last_error_at: datetime | None
    expected_every: str | None  # as configured (e.g. 6h)
    last_data_at: datetime | None  # when a batch last brought new rows (loaded or quarantined)
    silent: bool | None  # None when the source has no expected_every
    failing_runs: int  # failed (or held) batches in a row, the latest first
    latest_batch_id: int | None = None  # the last batch, whatever became of it
    latest_status: str | None = None  # pulling | landed | loaded | failed | held (schema drift)...
    # not shown: what the pipeline alerts key their episodes on
    last_data_batch: int = 0
    first_failed_batch: int | None = None

    COLUMNS = ("source", "kind", "last_batch_id", "last_committed_at", "cursor", "received", "loaded",
               "duplicates", "quarantined", "last_error", "last_error_at", "expected_every", "last_data_at",
               "silent", "failing_runs", "latest_batch_id", "latest_status")

    def row(self) -> tuple:
        d = asdict(self)
        return tuple(_show(d[c]) for c in self.COLUMNS)


def _show(v):  # noqa: ANN001, ANN202
    if isinstance(v, datetime):
        return v.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    return v


def format_duration(d: timedelta | None) -> str | None:
    if d is None:
        return None
    s = int(d.total_seconds())
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if s % n == 0:
            return f"{s // n}{unit}"
    return f"{s}s"


def _has_batches(con: duckdb.DuckDBPyConnection) -> bool:
    try:
        con.execute("SELECT 1 FROM main.batches LIMIT 0")
        return True
    except duckdb.CatalogException:
        return False


def source_health(con: duckdb.DuckDBPyConnection, settings, now: datetime | None = None,  # noqa: ANN001
                  unlisted: bool = False) -> list[SourceHealth]:
    """One row per configured source, in configuration order, from the batches on record.
    ``unlisted``: then the others that have batches (the register, a source since removed
    from vigie.yml), by name: the Oversight view shows everything the warehouse holds."""
    now = now or datetime.now(timezone.utc)
    rows = []
    known = _has_batches(con)
    listed = [(s.name, s.kind, getattr(s, "expected_every", None)) for s in settings.sources]
    if unlisted and known:
        names = {name for name, _, _ in listed}
        listed += [(name, kind, None) for name, kind in
                   con.execute("SELECT source, arg_max(kind, batch_id) FROM main.batches GROUP BY 1 ORDER BY 1").fetchall()
                   if name not in names]
    for name, kind, every in listed:
        h = SourceHealth(name, kind, None, None, None, 0, 0, 0, 0, None, None, format_duration(every),
                         None, None, 0)
        if known:
            _fill(con, h)
        if every is not None:
            reference = h.last_data_at or _first_started(con, name) if known else None
            h.silent = reference is not None and now - reference > every
        rows.append(h)
    return rows


def show_cursor(text: str, files: int | None = None) -> str:
    """A cursor as an operator reads it: JSON, each map or list in it by its size (a drop
    folder's ``files``, the VMS recordings kept in its lookback window: thousands of entries,
    megabytes), its other values as they are: ``{"files": 1204}``,
    ``{"recordings_updated_at": "...", "audit_log_id": 127, "recordings_seen": 1}``. A drop
    folder's files are in drop_files: ``files`` is how many are known there."""
    cursor = json.loads(text)
    if isinstance(cursor, dict):
        cursor = {k: len(v) if isinstance(v, (dict, list)) else v for k, v in cursor.items()}
        if files and "files" not in cursor:
            cursor["files"] = files
    return json.dumps(cursor, ensure_ascii=False)


def _first_started(con: duckdb.DuckDBPyConnection, source: str) -> datetime | None:
    return con.execute("SELECT min(started_at) FROM main.batches WHERE source = ?", [source]).fetchone()[0]


def _fill(con: duckdb.DuckDBPyConnection, h: SourceHealth) -> None:
    last = con.execute("""SELECT batch_id, committed_at, cursor_after FROM main.batches
                          WHERE source = ? AND status = 'loaded' ORDER BY batch_id DESC LIMIT 1""", [h.source]).fetchone()
    if last:
        h.last_batch_id, h.last_committed_at = last[0], last[1]
        # Where the source resumes: the cursor itself, not the ledger's digest of a large one.
        now = cursors.load(con, h.source)
        text = now if now is not None else last[2]
        h.cursor = show_cursor(text, cursors.count_files(con, h.source)) if text is not None else None
    sums = con.execute(f"""SELECT coalesce(sum(received), 0), coalesce(sum(loaded), 0), coalesce(sum(duplicates), 0),
                                  coalesce(sum(quarantined), 0)
                           FROM (SELECT * FROM main.batches WHERE source = ? ORDER BY batch_id DESC LIMIT {LAST_BATCHES})""",
                       [h.source]).fetchone()
    h.received, h.loaded, h.duplicates, h.quarantined = (int(v) for v in sums)
    # Any batch that says why it did not load: failed, held on schema drift, abandoned...
    err = con.execute("""SELECT error, started_at FROM main.batches WHERE source = ? AND error IS NOT NULL
                         ORDER BY batch_id DESC LIMIT 1""", [h.source]).fetchone()
    if err:
        h.last_error = (err[0] or "").splitlines()[0] if err[0] else None
        h.last_error_at = err[1]
    data = con.execute("""SELECT batch_id, committed_at FROM main.batches WHERE source = ? AND status = 'loaded'
                          AND (loaded > 0 OR quarantined > 0) ORDER BY batch_id DESC LIMIT 1""", [h.source]).fetchone()
    if data:
        h.last_data_batch, h.last_data_at = data
    latest = con.execute("SELECT batch_id, status FROM main.batches WHERE source = ? ORDER BY batch_id DESC LIMIT 1",
                         [h.source]).fetchone()
    if latest:
        h.latest_batch_id, h.latest_status = latest
    # Failed (or held) batches in a row, the latest first (a batch still pulling is not counted either way).
    streak = con.execute("""SELECT batch_id, status FROM main.batches WHERE source = ?
                            AND status IN ('loaded', 'failed', 'held') ORDER BY batch_id DESC LIMIT 100""",
                         [h.source]).fetchall()
    for batch_id, status in streak:
        if status == "loaded":
            break
        h.failing_runs += 1
        h.first_failed_batch = batch_id


COLUMNS = list(SourceHealth.COLUMNS)
__all__ = ["SourceHealth", "source_health", "COLUMNS", "LAST_BATCHES", "FAILING_RUNS", "format_duration"]
