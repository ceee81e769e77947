"""Pull → land → stage → contract check → canonical, loaded one source at a time.

Per source, one batch:

1. the batch row is written and committed before anything of the source can fail;
2. the connector lands the new raw files, in a thread, while other sources load
   (`PULLS_AT_ONCE`); their hashes and sizes are recorded; each source is loaded (3-5) as
   its pull ends;
3. each stream's lines are staged into text columns (``staging_*`` tables);
4. the batch's shape is checked against the accepted one (vigie/drift.py): a change holds
   the whole batch (status 'held'), before anything of it loads (the check opens the
   batch's transaction, rolled back then);
   Great Expectations validates the staging tables (results and Data Docs);
5. in that transaction: quarantine, duplicates, canonical versions, the batch's counts, the
   source's new cursor and the batch's manifest, chained (vigie/integrity.py). If anything
   fails, nothing of it is kept and the cursor stays. The chain head is then appended to the
   checkpoint log, outside the warehouse.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import traceback
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import duckdb

from vigie import contracts, cursors, db, drift, integrity, leftovers, rules
from vigie.canonical import Counts, PriorRows, merge
from vigie.dburl import without_credentials
from vigie.register import load_register
from vigie.rules import incremental
from vigie.sources import CONNECTORS, SourceError
from vigie.sources.base import FolderConnector
from vigie.staging import stage


@dataclass
class SourceReport:
    source: str
    kind: str
    batch_id: int | None = None
    counts: Counts = field(default_factory=Counts)
    error: str | None = None
    contract: dict = field(default_factory=dict)  # suite → GX outcome


@dataclass
class RunReport:
    sources: list[SourceReport] = field(default_factory=list)
    register_batch: int | None = None
    as_of: datetime | None = None
    findings_by_rule: dict[str, int] = field(default_factory=dict)
    evaluation: str = ""  # how the rules were evaluated: stored, incremental or full (and why)
    compliance: dict = field(default_factory=dict)  # suite → GX outcome
    alerts: object | None = None  # vigie.alerts.AlertReport, when alerts are configured
    alerts_error: str | None = None  # alerts could not be planned or recorded (never a channel being down)

    @property
    def failed(self) -> list[SourceReport]:
        return [s for s in self.sources if s.error]


def _now() -> datetime:
    return datetime.now(timezone.utc)


def landing_root(settings) -> Path:  # noqa: ANN001
    return settings.warehouse.parent / "landing"


def gx_root(settings) -> Path:  # noqa: ANN001
    return settings.warehouse.parent / "gx"


# Pulls running at once, beside the loads of the sources already pulled. Two: a third competes
# with DuckDB for this machine's two cores, and each pull of a VMS holds a scratch DuckDB.
PULLS_AT_ONCE = 2


def run(settings, names: list[str] | None = None, *, validate: bool = True,  # noqa: ANN001
        progress: Callable[[str, str], None] | None = None, wait_s: float = 0.0,
        as_of: datetime | None = None, evaluate: bool = True, send_alerts: bool = True,
        accept_drift: list[str] | tuple = ()) -> RunReport:
    """Pull the named sources (all when empty) into the warehouse, then evaluate the rules and,
    when ``alerts:`` is configured, record the new alerts and send them (``send_alerts``).
    ``accept_drift``: sources whose new shape an operator has reviewed (vigie/drift.py)."""
    selected = settings.select(list(names or []))
    report = RunReport(as_of=as_of or _now())
    integrity.preflight(settings)  # a missing signing key is a configuration error, before anything loads
    with db.writer(settings.warehouse, wait_s=wait_s) as con:
        leftovers.abandon(con, landing_root(settings), _now())  # batches of a killed load
        integrity.seal(con)  # a warehouse loaded before the chain existed: sealed as it stands (else nothing)
        report.register_batch = load_register(con, settings.register, _now())
        integrity.checkpoint(con, settings)
        # Every source's batch is opened in turn, its pull started as soon as it is open, and
        # the pulls run PULLS_AT_ONCE at a time in threads while the main thread opens the next
        # batches, then loads each source as its pull ends: a pull waits on a server, the disk
        # or SQLite while DuckDB loads another source. Loading in the order the pulls end, not
        # the configuration's, keeps a slow pull (a VMS scanning its recordings for the
        # lookback window: 1 s at 20 M events) from holding back the loads after it. Each
        # source's rows are its own, so the order of commits between sources changes no
        # result; a source's batches still commit in the order of their ids, one run after the other.
        pulling: list[_Pulling] = []
        pulls: dict = {}
        done: dict[str, SourceReport] = {}
        scratch: incremental.Scratch | None = None  # the rules' scratch, prepared beside the loads
        try:
            with ThreadPoolExecutor(max_workers=PULLS_AT_ONCE, thread_name_prefix="vigie-pull") as pool:
                try:
                    for source in selected:
                        if progress:
                            progress(source.name, "pulling")
                        pulling.append(_begin(con, settings, source))
                        pulls[pool.submit(_pull, pulling[-1])] = pulling[-1]
                    for pull in as_completed(pulls):
                        p = pulls[pull]
                        rep = _load(con, settings, p, pull.result(), validate=validate, progress=progress,
                                    accept_drift=p.source.name in accept_drift)
                        integrity.checkpoint(con, settings)  # the chain head, outside the warehouse, after each commit
                        done[p.source.name] = rep
                        if progress:
                            progress(p.source.name, "failed" if rep.error else f"done: {rep.counts.received} rows received")
                        # Rows came: the rules will be evaluated again, and their scratch is
                        # prepared while the other sources load (vigie/rules/incremental.py).
                        if evaluate and scratch is None and (rep.counts.loaded or rep.counts.quarantined):
                            scratch = incremental.Scratch.beside(con, settings, report.as_of)
                finally:
                    for pull in pulls:  # on the way out of an error: the pulls not started never start
                        pull.cancel()
            report.sources = [done[p.source.name] for p in pulling]  # reported in the configuration's order
            integrity.purge_landed(con, settings)
            rules.install(con, settings)
            if evaluate and not _same_evaluation(con, settings, report):
                _oversee(con, settings, report, validate, progress, scratch)
        finally:  # the pool waited for every pull: a reader that a pull never started to use is closed
            for p in pulling:
                if p.files_reader is not None:
                    p.files_reader.close()
            if scratch is not None:  # its thread done, before the writer publishes or closes
                scratch.close()
        if evaluate:
            alert(con, settings, report, send=send_alerts, progress=progress)
    return report


def alert(con: duckdb.DuckDBPyConnection, settings, report: RunReport, *, send: bool = True,  # noqa: ANN001
          progress: Callable[[str, str], None] | None = None) -> None:
    """Plan, record and (``send``) deliver the alerts of the evaluation as of ``report.as_of``.
    A failure here is reported, not raised: the loads and the evaluation stand and are published."""
    if settings.alerts is None:
        return
    from vigie import alerts

    if progress:
        progress("alerts", "sending" if send else "recording")
    try:
        report.alerts = alerts.process(con, settings, report.as_of, send=send)
    except Exception as exc:  # noqa: BLE001
        report.alerts_error = f"alerts: {type(exc).__name__}: {exc}".splitlines()[0]
        if progress:
            progress("alerts", "failed")
        return
    if progress:
        a = report.alerts
        progress("alerts", f"done: {len(a.sent)} sent, {len(a.pending)} pending, {len(a.failed)} failed")


def _same_evaluation(con: duckdb.DuckDBPyConnection, settings, report: RunReport) -> bool:  # noqa: ANN001
    """The last evaluation answered this very question (same as-of, rules and settings, no
    data since): it stands, and its counts are reused."""
    if not rules.stored_evaluation(con, settings, report.as_of):
        return False
    counts = dict(con.execute("SELECT rule_code, count(*) FROM run_findings GROUP BY 1").fetchall())
    report.findings_by_rule = {r.code: counts.get(r.code, 0) for r in rules.catalogue()}
    report.evaluation = "stored: nothing changed since the last evaluation at this as-of"
    return True


def oversee(settings, as_of: datetime | None = None, *, validate: bool = True,  # noqa: ANN001
            wait_s: float = 0.0) -> RunReport:
    """Evaluate the rules on what the warehouse holds, without pulling (the oversight DAG)."""
    report = RunReport(as_of=as_of or _now())
    with db.writer(settings.warehouse, wait_s=wait_s) as con:
        rules.install(con, settings)
        _oversee(con, settings, report, validate, None)
    return report


def _oversee(con, settings, report: RunReport, validate: bool, progress,  # noqa: ANN001
             scratch: incremental.Scratch | None = None) -> None:
    if progress:
        progress("rules", "evaluating")
    report.findings_by_rule = evaluate_rules(con, settings, report.as_of, report, scratch)
    if validate:
        report.compliance = contracts.validate_compliance(db.writer_path(settings.warehouse), gx_root(settings))
    if progress:
        progress("rules", f"done: {sum(report.findings_by_rule.values())} findings")


def evaluate_rules(con: duckdb.DuckDBPyConnection, settings, as_of: datetime,  # noqa: ANN001
                   report: RunReport | None = None, scratch: incremental.Scratch | None = None) -> dict[str, int]:
    """Keep the findings of this run (table ``run_findings``) and count them by rule. Only
    what changed since the last evaluation is evaluated again (vigie/rules/incremental.py),
    in ``scratch`` when the run prepared one."""
    done = incremental.evaluate(con, settings, as_of, scratch)
    if report is not None:
        report.evaluation = str(done)
    counts = dict(con.execute("SELECT rule_code, count(*) FROM run_findings GROUP BY 1").fetchall())
    return {r.code: counts.get(r.code, 0) for r in rules.catalogue()}


# A cursor as the ledger (and so the batch's manifest) records it: whole when small. A VMS
# cursor holds its lookback window's recordings, a drop folder's before migration 014 every
# file ever landed (megabytes): sealed whole by every run, it made each run cost more than
# the last. Over this size the ledger keeps its SHA-256 and size, which chain each batch's
# cursor to the one before; the cursor itself is in source_cursor_parts (vigie/cursors.py).
LEDGER_CURSOR_BYTES = 4096


def ledger_cursor(text: str) -> str:
    if len(text) <= LEDGER_CURSOR_BYTES:
        return text
    return json.dumps({"sha256": hashlib.sha256(text.encode()).hexdigest(), "bytes": len(text.encode())})


def _without_files(cursor: dict | None) -> dict:
    return {k: v for k, v in (cursor or {}).items() if k != "files"}


@dataclass
class _Pulling:
    """A source's batch, on record as 'pulling', and what its pull needs."""

    source: object
    connector: object
    rep: SourceReport
    stored_cursor: str | None  # as the warehouse keeps it
    cursor: dict | None  # as the connector reads it (a drop folder's: parsed by `_begin`; else by `_pull`)
    files_in_text: bool  # a drop folder's files still in its cursor's text (before migration 014)
    landing: Path
    # A drop folder's files are read from drop_files by its pull, on this connection, when the
    # folder changed since a pull left it whole: 91 000 rows at 20 M events, 0.05-0.29 s that
    # the main thread spent before opening the next batch and loading the sources already pulled.
    files_reader: duckdb.DuckDBPyConnection | None = None
    after: str | None = None  # the cursor's text once the pull ends (`_cursor_after`), made by `_pull`


def _begin(con: duckdb.DuckDBPyConnection, settings, source) -> _Pulling:  # noqa: ANN001
    connector = CONNECTORS[source.kind](source, settings)
    rep = SourceReport(source.name, source.kind)
    stored_cursor = cursors.load(con, source.name)
    folder = isinstance(connector, FolderConnector)
    # Other cursors are parsed by the pull's thread: a VMS cursor holds its lookback window's
    # recordings (3.5 MB of JSON at 20 M events, 25-35 ms to parse).
    cursor = json.loads(stored_cursor) if stored_cursor and folder else None
    rep.batch_id = db.next_batch_id(con)
    con.execute(
        "INSERT INTO batches (batch_id, source, kind, started_at, status, cursor_before) VALUES (?, ?, ?, ?, 'pulling', ?)",
        [rep.batch_id, source.name, source.kind, _now(), ledger_cursor(stored_cursor or "null")],
    )
    # A drop folder's files are rows of drop_files; a cursor from before migration 014 still
    # holds them in its text, and this batch moves them there whole.
    files_in_text = isinstance(cursor, dict) and "files" in cursor
    reader = db.worker(con) if folder and not files_in_text else None
    return _Pulling(source, connector, rep, stored_cursor, cursor, files_in_text,
                    landing_root(settings) / source.name / str(rep.batch_id), reader)


def _pull(p: _Pulling) -> tuple:
    """(what was pulled, None, '') or (None, the exception, its traceback). Writes nothing to
    the warehouse (a drop folder's known files are read on ``p.files_reader``): `run` calls it
    in a thread, beside the loads of other sources."""
    try:
        if p.stored_cursor and not isinstance(p.connector, FolderConnector):
            p.cursor = json.loads(p.stored_cursor)
        try:
            if p.files_reader is not None:  # committed rows only: this source's change with its batch
                reader, source = p.files_reader, p.source.name
                # Read only if the folder changed since it was last left whole (FolderConnector.pull).
                p.cursor = {**(p.cursor or {}), "files": lambda: cursors.load_files(reader, source)}
            pulled = p.connector.pull(p.cursor, p.landing)
        finally:
            if p.files_reader is not None:
                p.files_reader.close()
                p.files_reader = None
        p.after = _cursor_after(p, pulled)
        return pulled, None, ""
    except Exception as exc:  # noqa: BLE001 - whatever a connector meets, the next sources are pulled
        return None, exc, traceback.format_exc()


def _cursor_after(p: _Pulling, pulled) -> str:  # noqa: ANN001
    """The text of the source's cursor after ``pulled``: the stored one when it did not move,
    else encoded anew (a VMS cursor: 3.5 MB at 20 M events, 25-35 ms, in the pull's thread
    beside the loads rather than in the thread that loads). A drop folder's files are not in
    it: they go to drop_files (`_load`)."""
    folder = isinstance(p.connector, FolderConnector)
    moved, was = (_without_files(pulled.cursor), _without_files(p.cursor)) if folder else (pulled.cursor, p.cursor)
    return p.stored_cursor if p.stored_cursor and not p.files_in_text and moved == was else json.dumps(moved)


def _load(con: duckdb.DuckDBPyConnection, settings, p: _Pulling, outcome: tuple, *, validate: bool = True,  # noqa: ANN001
          progress: Callable[[str, str], None] | None = None, accept_drift: bool = False) -> SourceReport:
    """Record what ``p``'s pull landed (or why it failed), stage, check and load it, and commit."""
    source, connector, rep, landing = p.source, p.connector, p.rep, p.landing
    stored_cursor, files_in_text = p.stored_cursor, p.files_in_text
    pulled, exc, trace = outcome
    if exc is not None:
        rep.error = without_credentials(f"source '{source.name}': {exc}" if isinstance(exc, SourceError) else
                                        f"source '{source.name}': {type(exc).__name__}: {exc}")
        changes = [] if accept_drift else drift.declared_changes(con, source.name, getattr(exc, "shapes", None))
        if changes:  # the pull broke on a changed schema: held as drift, the pull's error after it
            _hold(con, rep, f"{'; '.join(changes)}", f" ({exc})")
        else:
            _fail(con, rep, None if isinstance(exc, SourceError) else trace)
        shutil.rmtree(landing, ignore_errors=True)
        return rep

    # Landed: record the raw files before any parsing can fail.
    try:
        digest = hashlib.sha256()
        for f in sorted(pulled.files, key=lambda f: f.name):
            digest.update(f"{f.name}\0{f.sha256}\n".encode())
        con.execute("BEGIN")
        if pulled.files:
            db.insert_rows(con, "landed_files",
                           [[rep.batch_id, source.name, f.name, str(f.path), f.sha256, f.bytes] for f in pulled.files])
        con.execute(
            "UPDATE batches SET status = 'landed', sha256 = ?, raw_bytes = ?, files = ? WHERE batch_id = ?",
            [digest.hexdigest(), sum(f.bytes for f in pulled.files), len(pulled.files), rep.batch_id],
        )
        con.execute("COMMIT")
    except Exception as exc:  # noqa: BLE001 - as a failed pull: this source fails, the next ones are pulled
        try:
            con.execute("ROLLBACK")
        except duckdb.Error:
            pass  # it failed before BEGIN
        rep.error = without_credentials(f"source '{source.name}': what was pulled could not be recorded: "
                                        f"{type(exc).__name__}: {exc}")
        _fail(con, rep, traceback.format_exc())
        shutil.rmtree(landing, ignore_errors=True)  # the cursor did not move: pulled again next time
        return rep

    staged: list[tuple] = []
    prior = PriorRows(con, source.name)
    try:
        if progress:
            progress(source.name, "checking")
        staged = _stage(con, connector, pulled, for_gx=validate)
        # Drift is checked in the batch's transaction: the rows it finds in the warehouse are
        # kept by rowid for the merge (`PriorRows`), and only a transaction keeps rowids still.
        con.execute("BEGIN")
        shapes = drift.check(con, source.name, pulled, staged, accept=accept_drift, prior=prior)
        if any(s.changes for s in shapes) and not accept_drift:  # held whole: nothing loads, the cursor stays
            con.execute("ROLLBACK")
            _hold(con, rep, drift.summary(shapes))
            return rep
        if progress:
            progress(source.name, "loading")
        for stream, table, _ in staged:
            rep.counts += merge(con, stream, table, source.name, rep.batch_id, prior)
        for bad in pulled.unreadable:  # a file that cannot be read at all: one row, kind 'file'
            rep.counts.received += 1
            sha = bad.sha256  # its bytes' hash, as ref, when it was opened
            known = con.execute(
                "SELECT 1 FROM quarantine WHERE source = ? AND kind = 'file' AND location = ? AND ref IS NOT DISTINCT FROM ?",
                [source.name, bad.name, sha]).fetchone()
            if known:  # still unreadable since an earlier run
                con.execute("INSERT INTO duplicates VALUES (?, ?, 'file', ?, ?, ?, false)",
                            [source.name, rep.batch_id, sha, bad.name, bad.name])
                rep.counts.duplicates += 1
            else:
                con.execute("INSERT INTO quarantine (source, batch_id, kind, ref, location, seq, reason, raw) "
                            "VALUES (?, ?, 'file', ?, ?, NULL, ?, NULL)",
                            [source.name, rep.batch_id, sha, bad.name, bad.reason])
                rep.counts.quarantined += 1
        for dup in pulled.duplicates:  # the same bytes under another name
            rep.counts.received += 1
            rep.counts.duplicates += 1
            con.execute("INSERT INTO duplicates VALUES (?, ?, 'file', ?, ?, ?, false)",
                        [source.name, rep.batch_id, dup.sha256, dup.name, dup.first_name])
        c = rep.counts
        if c.received != c.loaded + c.duplicates + c.quarantined:  # never commit a batch that loses rows
            raise RuntimeError(f"reconciliation broken: {c}")
        # A drop folder's files go to drop_files, the rest of its cursor stays JSON (`_cursor_after`).
        files = pulled.cursor.get("files") if isinstance(connector, FolderConnector) else None
        after = p.after
        con.execute(
            """UPDATE batches SET status = 'loaded', committed_at = ?, received = ?, loaded = ?,
                   duplicates = ?, quarantined = ?, cursor_after = ? WHERE batch_id = ?""",
            [_now(), c.received, c.loaded, c.duplicates, c.quarantined, ledger_cursor(after), rep.batch_id],
        )
        drift.record(con, source.name, rep.batch_id, shapes)
        # Unchanged, it is not written again (its batch_id stays that of the batch that moved it).
        if after != stored_cursor:
            cursors.save(con, source.name, stored_cursor, after, rep.batch_id)
        if files is not None:
            cursors.save_files(con, source.name, files if files_in_text else pulled.seen, rep.batch_id)
        integrity.seal(con)  # the batch's manifest, chained, in the transaction that commits it
        con.execute("COMMIT")
        # The contract report, for what is new: a batch of duplicates only (rows delivered
        # again) changes nothing to report, and GX costs seconds to start.
        if validate and (c.loaded or c.quarantined):
            if progress:
                progress(source.name, "contract report")
            rep.contract = _contract_report(settings, staged)
    except Exception as exc:  # the batch stays on record as failed, with why
        try:
            con.execute("ROLLBACK")
        except duckdb.Error:
            pass  # no transaction was open: it failed while staging
        rep.error = without_credentials(f"source '{source.name}': {type(exc).__name__}: {exc}")
        _fail(con, rep, traceback.format_exc())
    finally:
        pulled.remove_joined()  # when staging did not reach them
        prior.drop()
        for _, table, _ in staged:
            con.execute(f"DROP TABLE IF EXISTS {table}")
    return rep


def _contract_report(settings, staged: list[tuple]) -> dict:  # noqa: ANN001
    """Great Expectations on the staging tables; the batch is already committed, so a failure
    here is reported, not fatal: the quarantine has already applied the same suites in SQL."""
    try:
        return contracts.validate_with_gx(db.writer_path(settings.warehouse),
                                          {stream.suite: table for stream, table, n in staged if n}, gx_root(settings))
    except Exception as exc:  # noqa: BLE001
        return {"error": f"Great Expectations could not validate: {type(exc).__name__}: {exc}"}


def _hold(con: duckdb.DuckDBPyConnection, rep: SourceReport, changes: str, after: str = "") -> None:
    """Schema drift: the batch is kept on record as 'held', with what changed, on one line."""
    rep.error = without_credentials(f"source '{rep.source}': schema drift, batch {rep.batch_id} held: {changes}; "
                                    f"once reviewed: vigie run --accept-drift {rep.source}{after}")
    con.execute("UPDATE batches SET status = 'held', error = ? WHERE batch_id = ?", [rep.error, rep.batch_id])


def _fail(con: duckdb.DuckDBPyConnection, rep: SourceReport, detail: str | None = None) -> None:
    con.execute(
        "UPDATE batches SET status = 'failed', error = ? WHERE batch_id = ?",
        [rep.error if not detail else f"{rep.error}\n{without_credentials(detail)}", rep.batch_id],
    )


def _stage(con: duckdb.DuckDBPyConnection, connector, pulled, for_gx: bool) -> list[tuple]:  # noqa: ANN001
    """Stage and check each stream's landed files into ``staging_<suite>``; return
    (stream, table, rows). A TEMP table unless Great Expectations is to read it: TEMP is
    not written to the warehouse file (half the cost of staging at 1 M events)."""
    out = []
    for stream in connector.streams:
        mine = [f for f in pulled.files if f.stream == stream.name]
        if not mine:
            continue
        files = [(f.name, f.readable) for f in mine]
        line_errors = [(f.name, line, why) for f in mine for line, why in f.line_errors]
        # For GX in the main schema: its column reflection ignores schemas on DuckDB.
        table = "staging_" + stream.suite.replace(".", "_")
        joined = pulled.joined.get(stream.name)
        try:
            out.append((stream, table, stage(con, stream, files, table, temp=not for_gx, line_errors=line_errors,
                                             joined=joined)))
        finally:
            if joined is not None:
                joined.remove()
    return out
