"""Who read what: every report generated and every page of findings or evidence viewed.

The records live in a SQLite file of their own beside the warehouse
(``<warehouse>.access.sqlite``), never in DuckDB: recording a page view must not wait for,
or be refused by, the writer's lock of a load, and a reader of the published copy cannot
write. The file is in WAL mode (concurrent readers and one short writer at a time, with a
busy timeout), and triggers refuse any UPDATE or DELETE, so nobody can edit the log through
Vigie: rows are only ever appended.
"""

from __future__ import annotations

import getpass
import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

COLUMNS = ["id", "at", "user", "action", "target", "filters", "findings", "findings_sha256"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS access_log (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    at              TEXT NOT NULL,     -- ISO-8601 UTC, microseconds
    user            TEXT NOT NULL,     -- the Airflow user, or the OS user for the command line
    action          TEXT NOT NULL,     -- findings, finding, quarantine, sources, report, api_findings...
    target          TEXT,              -- the finding viewed, the report's format and file...
    filters         TEXT NOT NULL,     -- JSON object of the selection (as_of, known_at, from, to, rule...)
    findings        INTEGER,           -- how many findings the page or report showed
    findings_sha256 TEXT               -- the report's findings-sha256
);
CREATE INDEX IF NOT EXISTS access_log_at ON access_log (at);
CREATE TRIGGER IF NOT EXISTS access_log_no_update BEFORE UPDATE ON access_log
BEGIN SELECT RAISE(ABORT, 'the access log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS access_log_no_delete BEFORE DELETE ON access_log
BEGIN SELECT RAISE(ABORT, 'the access log is append-only'); END;
"""


@dataclass(frozen=True)
class Entry:
    id: int
    at: str
    user: str
    action: str
    target: str | None
    filters: dict
    findings: int | None
    findings_sha256: str | None

    def row(self) -> list[Any]:
        return [self.id, self.at, self.user, self.action, self.target,
                json.dumps(self.filters, ensure_ascii=False, sort_keys=True), self.findings, self.findings_sha256]


def path(settings) -> Path:  # noqa: ANN001
    warehouse: Path = settings.warehouse
    return warehouse.with_name(warehouse.name + ".access.sqlite")


def _connect(settings) -> sqlite3.Connection:  # noqa: ANN001
    target = path(settings)
    target.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(target, timeout=30, isolation_level=None)
    con.execute("PRAGMA busy_timeout = 30000")
    con.execute("PRAGMA journal_mode = WAL")
    con.executescript(_SCHEMA)
    return con


def os_user() -> str:
    """Who runs the command line."""
    try:
        return getpass.getuser()
    except Exception:  # no name for this uid (a container): the uid itself
        import os

        return f"uid:{os.getuid()}"


def filters_of(selection) -> dict:  # noqa: ANN001
    """A Selection (vigie.present.query) as the JSON object stored with a record."""
    out: dict[str, Any] = {}
    for name, value in selection.query_params():
        if name in ("as_of", "known_at", "from", "to"):
            out[name] = value
        else:
            out.setdefault(name, []).append(value)
    return out


def record(settings, user: str, action: str, filters: dict | None = None,  # noqa: ANN001
           findings_sha256: str | None = None, target: str | None = None,
           findings: int | None = None) -> int:
    """Append one record; returns its id. ``filters`` is a JSON-able dict (see ``filters_of``)."""
    at = datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
    con = _connect(settings)
    try:
        cur = con.execute(
            "INSERT INTO access_log (at, user, action, target, filters, findings, findings_sha256) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [at, user, action, target, json.dumps(filters or {}, ensure_ascii=False, sort_keys=True),
             findings, findings_sha256])
        return int(cur.lastrowid)
    finally:
        con.close()


def entries(settings, since: datetime | None = None) -> list[Entry]:  # noqa: ANN001
    """The records at or after ``since`` (all when None), oldest first."""
    if not path(settings).exists():
        return []
    con = _connect(settings)
    try:
        if since is None:
            rows = con.execute(f"SELECT {', '.join(COLUMNS)} FROM access_log ORDER BY id").fetchall()
        else:
            bound = since.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
            rows = con.execute(f"SELECT {', '.join(COLUMNS)} FROM access_log WHERE at >= ? ORDER BY id",
                               [bound]).fetchall()
    finally:
        con.close()
    return [Entry(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], r[7]) for r in rows]
