"""vms_sql: a video-management system's database, through any SQLAlchemy URL (class VP).

Each table is landed as JSON Lines, one row per line, values as the database gave them
(instants as ISO-8601 text, naive meaning UTC by contract). Pulled incrementally:
``audit_log`` by ``log_id``, ``recordings`` by ``updated_at`` with a lookback (a clock can
lag), ``cameras`` in full. Recordings and cameras change in place: the latest pull wins.
What a pull reads again unchanged (the lookback's recordings, the cameras) is not landed
again: see ``SEEN`` and ``CAMERAS_SEEN``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from vigie import dburl
from vigie.sources.base import Connector, Landed, Pull, SourceError, Stream, file_digest

if TYPE_CHECKING:
    import sqlalchemy as sa


# A landed VMS file has one JSON line per row and no blank line, except where DuckDB's JSON
# writer met a value that is not valid UTF-8 (SQLite stores any bytes as text): it writes the
# row as a blank line. Such a row was silently dropped; it is now quarantined.
_BLANK = "a blank line: the row holds text that is not valid UTF-8 at the source and could not be landed"


def _json_staging(fields: list[str], table: str, key: str) -> str:
    """Lines of JSON → text columns; ``location`` is ``<table>:<key value>``, ``ref`` the key.

    Every field comes from one ``json_extract_string`` over a list of keys: the row is parsed
    once, not once per field. Text that is not JSON makes it fail, so only a row left without
    fields is checked with ``json_valid`` (checking and casting every row first parsed each
    one three times: 0.1-0.3 s more per million rows)."""
    keys = ", ".join(f"'{f}'" for f in fields)
    cols = ", ".join(f"nullif(v[{i + 1}], '') AS {f}" for i, f in enumerate(fields))
    k = fields.index(key) + 1
    return f"""
        WITH fields AS (
            SELECT file, line, text AS raw, error,
                   CASE WHEN error IS NULL THEN try(json_extract_string(text, [{keys}])) END AS v
            FROM lines)
        SELECT file, line, raw,
               CASE WHEN error IS NOT NULL THEN error
                    WHEN raw IS NULL THEN '{_BLANK}'
                    WHEN v IS NULL AND NOT json_valid(raw) THEN 'not valid JSON' END AS parse_error,
               {cols},
               '{table}:' || coalesce(v[{k}], file || ':' || line) AS location, v[{k}] AS ref,
               NULL::BIGINT AS seq
        FROM fields"""


CAMERAS = Stream(
    name="cameras", row_kind="camera", suite="vms_sql.cameras", table="vms_cameras",
    staging_sql=_json_staging(["camera_id", "site", "authorisation_ref", "lat", "lon"], "cameras", "camera_id"),
    typed_sql="camera_id, site, authorisation_ref, lat::DOUBLE AS lat, lon::DOUBLE AS lon",
    key=("camera_id",),
    policy="latest",
)

_REC = ["recording_id", "camera_id", "started_at", "ended_at", "deleted_at", "hold_set_at",
        "hold_ref", "hold_released_at", "updated_at"]
RECORDINGS = Stream(
    name="recordings", row_kind="recording", suite="vms_sql.recordings", table="vms_recordings",
    staging_sql=_json_staging(_REC, "recordings", "recording_id"),
    typed_sql="""recording_id, camera_id, started_at::TIMESTAMPTZ AS started_at,
                 ended_at::TIMESTAMPTZ AS ended_at, deleted_at::TIMESTAMPTZ AS deleted_at,
                 hold_set_at::TIMESTAMPTZ AS hold_set_at, hold_ref,
                 hold_released_at::TIMESTAMPTZ AS hold_released_at, updated_at::TIMESTAMPTZ AS updated_at""",
    key=("recording_id",),
    policy="latest",
)

_LOG = ["log_id", "logged_at", "user_login", "action", "camera_id", "recording_id",
        "justification", "procedure_ref", "recipient"]
AUDIT_LOG = Stream(
    name="audit_log", row_kind="audit_log", suite="vms_sql.audit_log", table="vms_audit_log",
    staging_sql=f"""
        SELECT * REPLACE (TRY_CAST(log_id AS BIGINT) AS seq)
        FROM ({_json_staging(_LOG, "audit_log", "log_id")})""",
    typed_sql="""log_id::BIGINT AS log_id, logged_at::TIMESTAMPTZ AS logged_at, user_login, action,
                 camera_id, recording_id, justification, procedure_ref, recipient""",
    key=("log_id",),
    policy="immutable",
)


def _text(value: object) -> object:
    """A database value as JSON can carry it; instants keep their offset when they have one."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def type_family(declared: str) -> str:
    """A column's declared SQL type → its family, in the same words for every engine (SQLite's
    affinity rules first): what schema drift compares (vigie/drift.py)."""
    t = (declared or "").upper()
    if "INT" in t:
        return "integer"
    if any(k in t for k in ("CHAR", "CLOB", "TEXT", "STRING", "UUID", "ENUM")):
        return "text"
    if "BOOL" in t:
        return "boolean"
    if "TIMESTAMP" in t or "DATETIME" in t:
        return "datetime"
    if t == "DATE":
        return "date"
    if "TIME" in t:
        return "time"
    if any(k in t for k in ("REAL", "FLOA", "DOUB")):
        return "real"
    if "BLOB" in t or "BINARY" in t or "BYTEA" in t or not t:
        return "blob"
    return "numeric"


def _sqlite_shapes(path: Path) -> dict:
    """The declared columns of the three tables, read-only."""
    con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return {t: {"columns": {name: type_family(declared) for _, name, declared, *_ in
                                con.execute(f"PRAGMA table_info({t})").fetchall()}}
                for t in TABLES}
    finally:
        con.close()


def _instant(value: object) -> datetime | None:
    try:
        dt = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace(" ", "T"))
    except ValueError:
        return None
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


TABLES = ("cameras", "recordings", "audit_log")

# Recordings come back for the whole lookback (a day by default) on every pull, changed or
# not: at 20 M events, 45 000 rows landed, staged, classified and recorded as duplicates by
# every hourly run, a year of which is 400 M rows of `duplicates`. The cursor keeps, for the
# rows of the next pull's window, each recording's last landed content hash (and the text or
# instant of its `updated_at`, to know when it leaves the window); a row that comes back with
# that very content is not landed again. Any change lands it, `updated_at` moving or not.
SEEN = "recordings_seen"
_NORM = "replace(replace(updated_at, ' ', 'T'), 'Z', '')"  # the text a window compares


def _row_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _next_seen(seen: dict, landed: list[tuple], keep, repeated: set | frozenset = frozenset()) -> dict:  # noqa: ANN001
    """The cursor's ``recordings_seen`` after a pull: the entries still within the next window,
    each recording landed now replacing its earlier entry. A ``repeated`` id (several rows in
    the source under one id) keeps no entry: its rows all land, as before, rather than one
    being kept back in turn."""
    out = {rid: entry for rid, entry in seen.items() if keep(entry[1])}
    for rid, digest, updated in landed:
        if rid is None:
            continue
        if keep(updated) and str(rid) not in repeated:
            out[str(rid)] = [digest, updated]
        else:
            out.pop(str(rid), None)
    for rid in repeated:
        out.pop(str(rid), None)
    return out


# The cameras come in full on every pull (sources.md), changed or not: at 20 M events, 6 636
# rows staged, classified and recorded as duplicates by every run, a year of hourly runs 58 M
# rows of `duplicates`. The cursor keeps the SHA-256 of the cameras last landed; a pull that
# reads the very same bytes lands none of them (an empty file): they are the versions the
# warehouse holds already. Any change lands them all again, as before. Where an id repeats
# (no key in the source), every pull lands them all, as it does such recordings.
CAMERAS_SEEN = "cameras_sha256"
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def _cameras_again(landed: Landed, known: str | None, repeated: bool) -> tuple[Landed, str | None]:
    """The cameras' landed file, emptied when its bytes are those last landed (``known``), and
    the digest the cursor keeps next (None where an id repeats: they land on every pull)."""
    if repeated:
        return landed, None
    if known is not None and landed.sha256 == known:
        landed.path.write_bytes(b"")
        return Landed(landed.stream, landed.name, landed.path, _EMPTY_SHA256, 0), known
    return landed, landed.sha256


# An incremental pull from a SQLite VMS filters inside SQLite (``sqlite_query``), so that the
# rows it skips are never converted for DuckDB: a no-op run at 5 M events scanned 1.7 M rows
# (0.8 s) to keep a few thousand. What SQLite keeps is a superset of what the pull wants; the
# exact filter, on the text of each value as before, runs in DuckDB on what comes back.
# SQLite compares across types (NULL < numbers < text < blob) and applies a column's
# affinity to the other operand (a TEXT column compares 10 with '9' as text): the filters
# below keep every value that is not what they can compare exactly.


def _in_sqlite(query: str) -> str:
    return f"sqlite_query('vms', '{query.replace(chr(39), chr(39) * 2)}')"


def _sqlite_filters(path: Path) -> tuple[bool, bool, bool]:
    """(whether ``audit_log.log_id`` is the table's rowid, whether the file stores UTF-8,
    whether ``recordings.updated_at`` is a table's column of TEXT affinity)."""
    con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        kind = con.execute("SELECT type FROM sqlite_master WHERE name = 'audit_log'").fetchone()
        keys = [(name.lower(), declared.upper()) for _, name, declared, _, _, pk in
                con.execute("PRAGMA table_info(audit_log)").fetchall() if pk]
        # WITHOUT ROWID: the primary key is an index of origin 'pk', and not the rowid
        clustered = any(origin == "pk" for *_, origin, _ in con.execute("PRAGMA index_list(audit_log)").fetchall())
        rowid = kind == ("table",) and keys == [("log_id", "INTEGER")] and not clustered
        (encoding,) = con.execute("PRAGMA encoding").fetchone()
        # SQLite's affinity rules, in their order: a declared type holding INT is INTEGER,
        # then one holding CHAR, CLOB or TEXT is TEXT. A view's column has no such guarantee.
        rec_kind = con.execute("SELECT type FROM sqlite_master WHERE name = 'recordings'").fetchone()
        declared = {name.lower(): (t or "").upper() for _, name, t, *_ in
                    con.execute("PRAGMA table_info(recordings)").fetchall()}.get("updated_at", "")
        text = rec_kind == ("table",) and "INT" not in declared and any(k in declared for k in ("CHAR", "CLOB", "TEXT"))
        return rowid, encoding.upper() == "UTF-8", text
    finally:
        con.close()


def _recordings_since(start: str, utf8: bool, text: bool = False) -> str:
    """Rows whose text form, normalised (' ' → 'T', no 'Z'), is at or after ``start``.

    In a UTF-8 file whose ``updated_at`` has TEXT affinity, a value is text, a blob or NULL,
    and SQLite orders text as DuckDB does (bytes). Then ``replace(updated_at, ' ', 'T') >=
    start`` keeps every row the exact filter keeps: dropping a 'Z' can only lower a text
    where the 'Z' (above every character of ``start``) already decided the order. A blob
    sorts after any text and is kept by the plain comparison.

    The ``replace`` is only called where it can matter, which leaves SQLite one comparison and
    one scan for a space per row (0.28 s against 0.52 s over 2.4 M recordings at 20 M events;
    0.43 s where every instant is written with a space). ``start`` holds no space. Where a
    text is below it and its replaced form is not, the first character where the text and
    ``start`` differ is a space: the text holds a space, and either it begins with the date of
    ``start`` and a space (or more of ``start``: at or above ``'<date> '``), or its first
    space comes before the date's end.

    Otherwise values that are not text (SQLite enforces no type) always come back, their text
    as DuckDB reads it decides; so does text with other than printable ASCII in a file stored
    as UTF-16, where SQLite's order of text is not that of UTF-8."""
    if utf8 and text:
        day = start.index("T") if "T" in start else len(start)  # 10, as `start` is written
        return (f"SELECT * FROM recordings WHERE updated_at >= '{start}' "
                f"OR (updated_at GLOB '* *' AND (updated_at >= '{start[:day]} ' OR instr(updated_at, ' ') BETWEEN 1 AND {day}) "
                f"AND replace(updated_at, ' ', 'T') >= '{start}')")
    odd = "" if utf8 else " OR updated_at GLOB '*[^ -~]*'"
    return ("SELECT * FROM recordings WHERE typeof(updated_at) <> 'text' "
            f"OR replace(replace(updated_at, ' ', 'T'), 'Z', '') >= '{start}'{odd}")


def _last_line(path: Path) -> bytes:
    """The last line of a landed file, read from its end: reading the 16 700 audit rows of a
    50 000-event delta back for their highest number took 44 ms, in a pull beside the loads."""
    with open(path, "rb") as f:
        end = f.seek(0, os.SEEK_END)
        step = 4096
        while True:
            start = max(0, end - step)
            f.seek(start)
            body = f.read(end - start).rstrip(b"\n")
            cut = body.rfind(b"\n")
            if cut >= 0 or start == 0:
                return body[cut + 1:]
            step *= 4


def _log_after(last: int, rowid: bool) -> str:
    """Rows after ``last``. When ``log_id`` is the rowid, every value is an integer and the
    rowid's order reads them directly. Otherwise, in one scan: the integers above ``last``
    compared without the column's affinity (``+log_id``), and every value that is not an
    integer (text, a REAL that DuckDB's text of it may round, a blob)."""
    if rowid:
        return f"SELECT * FROM audit_log WHERE log_id > {int(last)}"
    return f"SELECT * FROM audit_log WHERE typeof(log_id) <> 'integer' OR +log_id > {int(last)}"


class VmsSql(Connector):
    kind = "vms_sql"
    streams = (CAMERAS, RECORDINGS, AUDIT_LOG)

    def _url(self) -> str:
        if self.source.url:
            return self.source.url
        from vigie.airflow_connections import connection_uri

        return connection_uri(self.source.conn_id)

    _shapes: dict | None = None

    def pull(self, cursor: dict | None, landing: Path) -> Pull:
        cursor = dict(cursor or {})
        url = dburl.parse(self._url())
        if url.backend == "sqlite" and url.database:
            return self._pull_sqlite(Path(url.database), cursor, landing)
        import sqlalchemy as sa  # only to connect to a server: it costs half a second to import

        try:
            engine = sa.create_engine(self._url())
            with engine.connect() as conn:
                return self._pull(conn, cursor, landing)
        except sa.exc.SQLAlchemyError as exc:
            error = SourceError(f"database: {str(exc).splitlines()[0]}")
            error.shapes = self._shapes  # a changed schema may be why: the pipeline says so
            raise error from exc
        finally:
            if "engine" in locals():
                engine.dispose()

    def _pull(self, conn: sa.Connection, cursor: dict, landing: Path) -> Pull:
        import sqlalchemy as sa

        meta = sa.MetaData()
        tables = {n: sa.Table(n, meta, autoload_with=conn) for n in TABLES}
        out = Pull()
        out.shapes = self._shapes = {n: {"columns": {c.name: type_family(c.type.compile(dialect=conn.dialect)) for c in t.columns}}
                      for n, t in tables.items()}

        cams = tables["cameras"]
        camera_ids: list = []  # rows come in order of camera_id: a repeated id follows itself

        def track_camera(row: dict) -> None:
            camera_ids.append(row.get("camera_id"))

        landed_cams = self._land(conn, sa.select(cams).order_by(cams.c.camera_id), landing, "cameras", track_camera)
        cams_repeated = None in camera_ids or len(set(camera_ids)) < len(camera_ids)
        landed_cams, cams_seen = _cameras_again(landed_cams, cursor.get(CAMERAS_SEEN), cams_repeated)
        out.files.append(landed_cams)

        recs = tables["recordings"]
        query = sa.select(recs)
        since = cursor.get("recordings_updated_at")
        if since:
            start = datetime.fromisoformat(since) - timedelta(minutes=self.source.lookback_minutes)
            if conn.dialect.name == "sqlite":
                # Text instants in SQLite: compare on a normalised form ('T', no 'Z').
                norm = sa.func.replace(sa.func.replace(recs.c.updated_at, " ", "T"), "Z", "")
                query = query.where(norm >= start.strftime("%Y-%m-%dT%H:%M:%S"))
            else:
                query = query.where(recs.c.updated_at >= start)
        watermark = [_instant(since) if since else None]
        lookback = timedelta(minutes=self.source.lookback_minutes)
        known = dict(cursor.get(SEEN) or {})
        landed: dict = {}  # recording id → (digest, updated_at instant) of what this pull lands

        def track(row: dict) -> None:
            seen = _instant(row.get("updated_at")) if row.get("updated_at") is not None else None
            if seen and (watermark[0] is None or seen > watermark[0]):
                watermark[0] = seen

        repeated: set = set()
        previous = [None]  # rows come in order of recording_id: a repeated id is the one before

        def unchanged(row: dict, line: str) -> bool:
            rid = row.get("recording_id")
            if rid is None:
                return False
            again, previous[0] = rid == previous[0], rid
            if again:
                repeated.add(str(rid))
            instant = _instant(row["updated_at"]) if row.get("updated_at") is not None else None
            if not known and (instant is None or instant < watermark[0] - lookback):
                return False  # a first pull, outside the next window (the watermark only rises)
            digest = _row_digest(line)
            if not again and known.get(str(rid), [None])[0] == digest:
                return True
            # Every row an incremental pull lands is kept here, so that its older entry goes;
            # a first pull, in no order of time and with no entry to replace, keeps the window.
            landed[rid] = (digest, instant)
            if not known and len(landed) % 100_000 == 0:
                for r in [r for r, (_, i) in landed.items() if i < watermark[0] - lookback]:
                    del landed[r]
            return False

        out.files.append(self._land(conn, query.order_by(recs.c.recording_id), landing, "recordings", track, unchanged))

        log = tables["audit_log"]
        last = cursor.get("audit_log_id")
        query = sa.select(log).order_by(log.c.log_id)
        if last is not None:
            query = query.where(log.c.log_id > last)
        highest = [last]

        def track_log(row: dict) -> None:
            if isinstance(row.get("log_id"), int) and (highest[0] is None or row["log_id"] > highest[0]):
                highest[0] = row["log_id"]

        out.files.append(self._land(conn, query, landing, "audit_log", track_log))
        window = watermark[0] - lookback if watermark[0] else None
        keep = lambda iso: window is not None and iso is not None and _instant(iso) >= window  # noqa: E731
        out.cursor = {
            "recordings_updated_at": watermark[0].isoformat() if watermark[0] else None,
            "audit_log_id": highest[0],
            SEEN: _next_seen(known, [(r, d, i.isoformat() if i else None) for r, (d, i) in landed.items()], keep,
                             repeated),
            CAMERAS_SEEN: cams_seen,
        }
        return out

    def _pull_sqlite(self, path: Path, cursor: dict, landing: Path) -> Pull:
        """The same pull for a SQLite file, by DuckDB's offline sqlite scanner: each table is
        landed with one COPY, no row passes through Python. Every value is read as text, as
        SQLite does not enforce column types and a bad value must reach the contract check."""
        import duckdb

        from vigie.db import json_list, load_extension, scratch

        landing.mkdir(parents=True, exist_ok=True)
        since = cursor.get("recordings_updated_at")
        start = ((datetime.fromisoformat(since) - timedelta(minutes=self.source.lookback_minutes))
                 .strftime("%Y-%m-%dT%H:%M:%S") if since else "")
        last = cursor.get("audit_log_id")
        known = dict(cursor.get(SEEN) or {})
        landed: list[tuple] = []  # (recording id, digest, normalised updated_at) of what lands
        repeated: set = set()  # ids landed more than once: several rows under one id
        params = {"start": start, "last": last}
        spill = landing.with_name(landing.name + ".spill")
        con = scratch(spill)
        try:
            shapes = _sqlite_shapes(path)  # read before the rows: what they were written under
            rowid, utf8, text = _sqlite_filters(path)
            load_extension(con, "sqlite_scanner")
            con.execute("SET sqlite_all_varchar = true")
            # DuckDB rewrites `count(*) OVER (PARTITION BY recording_id)` below into a join with
            # an aggregate, which runs the SQLite query twice: a second scan of the recordings
            # table, 0.45 s of every run at 20 M events.
            con.execute("SET disabled_optimizers = 'window_self_join'")
            con.execute(f"ATTACH '{path.as_posix().replace(chr(39), chr(39) * 2)}' AS vms (TYPE sqlite, READ_ONLY)")
            # A row's content digest (see SEEN): every value as the text DuckDB reads, in order.
            columns = list(shapes["recordings"]["columns"])
            digest = ("left(sha256(CAST(to_json([" + ", ".join('"' + c.replace('"', '""') + '"' for c in columns)
                      + "]) AS VARCHAR)), 32)")
            # The window's rows are streamed to the landing file, never stored in a DuckDB table:
            # a table checks that text is valid UTF-8, and one bad value would stop the source.
            # What was landed as it is stays back, unless its id is repeated in the window.
            con.execute("CREATE TEMP TABLE _seen AS SELECT unnest(from_json($i, '[\"VARCHAR\"]')) AS i, "
                        "unnest(from_json($h, '[\"VARCHAR\"]')) AS h",
                        {"i": json_list(list(known)), "h": json_list([e[0] for e in known.values()])})
            queries = {
                "cameras": "SELECT * FROM vms.cameras ORDER BY camera_id",
                "recordings": f"""SELECT * EXCLUDE (_vigie_h, _vigie_n) FROM (
                                      SELECT *, {digest} AS _vigie_h, count(*) OVER (PARTITION BY recording_id) AS _vigie_n
                                      FROM {_in_sqlite(_recordings_since(start, utf8, text))} WHERE {_NORM} >= $start) r
                                  WHERE _vigie_n > 1 OR NOT EXISTS (
                                      SELECT 1 FROM _seen s WHERE s.i = r.recording_id AND s.h = r._vigie_h)
                                  ORDER BY recording_id"""
                              if since else "SELECT * FROM vms.recordings ORDER BY recording_id",
                "audit_log": f"SELECT * FROM {_in_sqlite(_log_after(int(last), rowid))} "
                             "WHERE TRY_CAST(log_id AS BIGINT) > $last ORDER BY TRY_CAST(log_id AS BIGINT)"
                             if last is not None else "SELECT * FROM vms.audit_log ORDER BY TRY_CAST(log_id AS BIGINT)",
            }
            out = Pull(shapes=shapes)
            for stream, query in queries.items():
                dest = landing / f"{stream}.jsonl"
                used = {k: v for k, v in params.items() if f"${k}" in query}
                con.execute(f"COPY ({query}) TO '{dest.as_posix()}' (FORMAT json)", used)
                sha, size = file_digest(dest)
                out.files.append(Landed(stream, f"{stream}.jsonl", dest, sha, size))
            # An id repeated, or missing, among the cameras landed: they land on every pull.
            cams = next(i for i, f in enumerate(out.files) if f.stream == "cameras")
            (cams_repeated,) = con.execute(
                "SELECT count(*) <> count(DISTINCT camera_id) FROM read_json(?, columns = {'camera_id': 'VARCHAR'})",
                [str(out.files[cams].path)]).fetchone() if out.files[cams].bytes else (False,)
            out.files[cams], cams_seen = _cameras_again(out.files[cams], cursor.get(CAMERAS_SEEN), cams_repeated)
            # An instant Python cannot hold (infinity, a year past 9999) moves no watermark, as
            # in the pull from a server (`_instant`); it came back as text and broke the pull.
            (watermark,) = con.execute(
                "SELECT max(t) FILTER (WHERE isfinite(t) AND t < '10000-01-01 00:00:00+00') FROM "
                "(SELECT TRY_CAST(updated_at AS TIMESTAMPTZ) AS t FROM read_json(?, columns = {'updated_at': 'VARCHAR'}))",
                [str(landing / "recordings.jsonl")]).fetchone() if (landing / "recordings.jsonl").stat().st_size else (None,)
            audit = landing / "audit_log.jsonl"
            if not audit.stat().st_size:
                highest = None
            elif last is not None:  # in order of the number, each a number: the last line's is the highest
                (highest,) = con.execute("SELECT TRY_CAST(json_extract_string(?, '$.log_id') AS BIGINT)",
                                         [_last_line(audit).decode("utf-8", "replace")]).fetchone()
            else:  # a first pull lands every row, those whose number cannot be read last
                (highest,) = con.execute(
                    "SELECT max(TRY_CAST(log_id AS BIGINT)) FROM read_json(?, columns = {'log_id': 'VARCHAR'})",
                    [str(audit)]).fetchone()
            previous = _instant(since) if since else None
            watermark = max((w for w in (watermark, previous) if w is not None), default=None)
            window = ((watermark - timedelta(minutes=self.source.lookback_minutes)).strftime("%Y-%m-%dT%H:%M:%S")
                      if watermark else None)
            if window and (landing / "recordings.jsonl").stat().st_size:
                # What landed, read back: its digests, and its ids landed more than once. A first
                # pull keeps only the next window (the whole table came); an incremental one all
                # it landed, so that each landed recording's older entry goes.
                typed = "{" + ", ".join("'" + c.replace("'", "''") + "': 'VARCHAR'" for c in columns) + "}"
                rows = con.execute(
                    f"SELECT recording_id, {digest}, {_NORM}, count(*) OVER (PARTITION BY recording_id) "
                    f"FROM read_json(?, columns = {typed}) WHERE ? OR {_NORM} >= ?",
                    [str(landing / "recordings.jsonl"), bool(since), window]).fetchall()
                landed = [r[:3] for r in rows]
                repeated = {str(r[0]) for r in rows if r[3] > 1 and r[0] is not None}
        except (duckdb.Error, sqlite3.Error) as exc:
            raise SourceError(f"database {path}: {str(exc).splitlines()[0]}") from exc
        finally:
            con.close()
            shutil.rmtree(spill, ignore_errors=True)
        keep = lambda updated: window is not None and updated is not None and updated >= window  # noqa: E731
        out.cursor = {
            "recordings_updated_at": watermark.astimezone(timezone.utc).isoformat() if watermark else None,
            "audit_log_id": max((h for h in (highest, last) if h is not None), default=None),
            SEEN: _next_seen(known, landed, keep, repeated),
            CAMERAS_SEEN: cams_seen,
        }
        return out

    def _land(self, conn: sa.Connection, query, landing: Path, stream: str, track=None,  # noqa: ANN001
              unchanged=None) -> Landed:  # noqa: ANN001
        """Stream a query's rows into ``<stream>.jsonl`` in chunks: memory stays bounded.
        ``unchanged(row, line)``: a row already landed as it is, not landed again."""
        landing.mkdir(parents=True, exist_ok=True)
        dest = landing / f"{stream}.jsonl"
        digest, size = hashlib.sha256(), 0
        result = conn.execution_options(stream_results=True).execute(query)
        with open(dest, "wb") as out:
            while rows := result.mappings().fetchmany(self.source.chunk_rows):
                chunk = []
                for row in rows:
                    row = dict(row)
                    if track:
                        track(row)
                    line = json.dumps({k: _text(v) for k, v in row.items()}, ensure_ascii=False)
                    if unchanged and unchanged(row, line):
                        continue
                    chunk.append(line)
                if not chunk:
                    continue
                data = ("\n".join(chunk) + "\n").encode()
                digest.update(data)
                size += len(data)
                out.write(data)
        return Landed(stream, f"{stream}.jsonl", dest, digest.hexdigest(), size)
