"""Evaluate the rules for what changed since the last evaluation, not for the whole warehouse.

The findings of a run are kept in ``run_findings`` (their as-of once, in ``run_evaluation``:
carrying them forward rewrites no row that did not change). The next run re-evaluates only the
*scopes* that may have changed and keeps every other stored finding. A scope is a set of rows
that the rules about subjects only ever read together, so evaluating a scope alone (with the
small shared tables: batches, register, cameras, limits) gives exactly its findings:

- a VMS recording with the audit rows that name it (an audit row naming no recording is its
  own scope),
- a body-camera evidence with all its events,
- a drone flight, all its revisions and track points (flights that share a recording or a
  consultation id are taken together),
- a LAPI read with the queries that name it.

A scope is re-evaluated when

- a new batch brought one of its rows, a new version of its camera, or quarantined one of its
  rows or its camera's (a VMS row that changes in place is hidden by a later quarantined pull);
- its *horizon* has come: the earliest as-of at which one of its findings could change
  (an event becoming visible, a lawful-keeping instant passing; see horizon.sql).

Rules whose findings span a whole source (``scope: source`` in catalogue.yml, sequence gaps)
read its sequence numbers, and each finding only two consecutive ones. For each source whose
new batches brought numbers, they are re-evaluated on the *range* from the last number kept
below the new ones to the first kept above them: a gap lies wholly inside that range or
wholly outside it, and outside it nothing changed. New numbers at the end of a sequence make
a range of a few numbers, not the source's millions.

A full evaluation is done instead, and said so, when there is no usable stored evaluation,
when the rules, limits, settings or schema changed (the fingerprint), when the as-of is earlier
than the stored one, when a version of a limit comes into force in between, or when the
register changed. tests/test_incremental.py checks that both ways agree exactly.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import duckdb

from vigie import db, rules
from vigie.sources import CONNECTORS

# Each table of rows about subjects → the SQL of its rows' scope (unique within a source).
# Putting two things in one scope is always correct (a prefix collision only evaluates more);
# splitting what a rule reads together is not.
SCOPES = {
    "vms_recordings": "recording_id",
    "vms_audit_log": "coalesce(recording_id, '~log:' || log_id)",
    "bodycam_events": "coalesce(evidence_id, '~none')",
    "drone_flights": "flight_id",
    "drone_track_points": "flight_id",
    "lapi_reads": "read_id",
    "lapi_queries": "coalesce(read_id, '~none')",
}
# How a scope's rows are copied, where joining on the scope's SQL would read every row: an
# audit row naming no recording is found by its number (new numbers are at the end of the
# table, and DuckDB prunes the scan to them), not by building '~log:<n>' for millions of rows.
# ('~log:007' from a recording id also copies log 7: more is evaluated, never less.)
COPIES = {
    "vms_audit_log": """
        SELECT t.* FROM {home}.main.vms_audit_log t
        SEMI JOIN {dirty} d ON d.source = t.source AND d.scope = t.recording_id
        UNION ALL
        SELECT t.* FROM {home}.main.vms_audit_log t
        SEMI JOIN (SELECT source, TRY_CAST(substr(scope, 6) AS BIGINT) AS log_id FROM {dirty}
                   WHERE starts_with(scope, '~log:')) d ON d.source = t.source AND d.log_id = t.log_id
        WHERE t.recording_id IS NULL""",
}
# Read whole by the restricted evaluation, across scopes: the scratch reads them where they
# are, through a view (copies held 80 MB more in a 50 000-event delta at 20 M, for ~0.05 s).
WHOLE = ("batches", "authorisations", "vms_cameras")

# The subjects in each table, by type, exactly as the rules name them (catalogue.yml
# `subjects`); the stored findings about the subjects of a re-evaluated scope are replaced.
SUBJECTS = """
    SELECT source, 'recording' AS type, recording_id AS subject_id FROM main.vms_recordings
    UNION ALL SELECT source, 'log', CAST(log_id AS VARCHAR) FROM main.vms_audit_log
    UNION ALL SELECT source, 'evidence', evidence_id FROM main.bodycam_events
    UNION ALL SELECT source, 'event', event_id FROM main.bodycam_events
    UNION ALL SELECT source, 'flight', flight_id FROM main.drone_flights
    UNION ALL SELECT source, 'recording', r ->> 'recording_id'
              FROM (SELECT source, unnest(json_extract(recordings, '$[*]')) AS r FROM main.drone_flights)
    UNION ALL SELECT source, 'consultation', c ->> 'event_id'
              FROM (SELECT source, unnest(json_extract(consultations, '$[*]')) AS c FROM main.drone_flights)
    UNION ALL SELECT source, 'read', read_id FROM main.lapi_reads
    UNION ALL SELECT source, 'query', event_id FROM main.lapi_queries
"""

# The ids that rules match across drone flights: a flight shares a scope with every flight
# holding one of its recording or consultation ids. (A flight's lists are unnested in the
# select list, with json_extract: see drone_consultations in subjects.sql.)
DRONE_IDS = """
    SELECT DISTINCT source, flight_id, 'recording' AS type, r ->> 'recording_id' AS id
    FROM (SELECT source, flight_id, unnest(json_extract(recordings, '$[*]')) AS r FROM main.drone_flights)
    UNION SELECT DISTINCT source, flight_id, 'consultation', c ->> 'event_id'
    FROM (SELECT source, flight_id, unnest(json_extract(consultations, '$[*]')) AS c FROM main.drone_flights)
"""

SCRATCH = "vigie_incremental"
# Each source's kind, from its batches: the rows of a source removed from the configuration
# stay, the rules read them, and their findings are re-evaluated and replaced like any other's.
SOURCE_KINDS = "(SELECT DISTINCT source, kind FROM main.batches)"


@dataclass
class Evaluation:
    mode: str  # "full", "incremental" or "stored"
    reason: str  # why a full evaluation, or what was re-evaluated

    def __str__(self) -> str:
        return f"{self.mode}: {self.reason}"


def _params(settings, as_of: datetime) -> list:  # noqa: ANN001
    return [as_of, "infinity", settings.grace_hours, settings.timezone, settings.perimeter_tolerance_m]


def evaluate(con: duckdb.DuckDBPyConnection, settings, as_of: datetime,  # noqa: ANN001
             scratch: Scratch | None = None) -> Evaluation:
    """Bring ``run_findings`` (and ``run_horizon``) to ``as_of``, everything known; installed
    rules (``rules.install``) are assumed. ``scratch``: one prepared beside the loads
    (`Scratch.beside`), else a re-evaluation prepares its own; the caller closes it."""
    why = _why_full(con, settings, as_of)
    if why:
        _full(con, settings, as_of)
        return Evaluation("full", why)
    return _incremental(con, settings, as_of, scratch)


class Scratch:
    """The in-memory database a re-evaluation works in (`_reevaluate`), attached to the
    writer's DuckDB and given the warehouse's schema, the parameters and the subject relations
    the rules read. Nothing of it depends on the rows loaded.

    A run prepares it beside its loads (`beside`), in a thread on a connection of its own, once
    a batch brought rows: some 90 statements, 0.1 s that a delta's main thread, which loads one
    source after the other and then evaluates, no longer spends. A run that loads nothing, or
    whose evaluation will be full, prepares none."""

    def __init__(self, con: duckdb.DuckDBPyConnection, settings, *, background: bool = False) -> None:  # noqa: ANN001
        (self.home,) = con.execute("SELECT current_database()").fetchone()
        self._con, self._error, self._thread = con, None, None
        con.execute(f"ATTACH ':memory:' AS {SCRATCH}")  # one DuckDB: every connection of it sees it
        try:
            worker = db.worker(con)  # made here: a connection is made in the thread that owns `con`
            if background:
                self._thread = threading.Thread(target=self._fill, args=(worker, settings), name="vigie-scratch",
                                                daemon=True)
                self._thread.start()
            else:
                self._fill(worker, settings)
        except BaseException:  # no Scratch to close: not left attached, where the next one would be
            con.execute(f"DETACH DATABASE IF EXISTS {SCRATCH}")
            raise

    @classmethod
    def beside(cls, con: duckdb.DuckDBPyConnection, settings, as_of: datetime) -> Scratch | None:  # noqa: ANN001
        """A scratch being prepared in a thread, unless the evaluation at ``as_of`` will be full
        (`evaluate` decides again: a scratch it does not use costs only its preparation)."""
        return None if _why_full(con, settings, as_of) else cls(con, settings, background=True)

    def _fill(self, worker: duckdb.DuckDBPyConnection, settings) -> None:  # noqa: ANN001
        try:
            worker.execute(f"USE {SCRATCH}")
            db.migrate(worker)
            rules.install_for_subjects(worker, settings)
            for table in WHOLE:
                worker.execute(f"DROP TABLE main.{table}")
                worker.execute(f"CREATE VIEW main.{table} AS SELECT * FROM {self.home}.main.{table}")
        except BaseException as exc:  # noqa: BLE001 - raised by `ready`, in the thread that evaluates
            self._error = exc
        finally:
            worker.close()

    def ready(self) -> None:
        """Wait until it is prepared; what stopped the preparation is raised here."""
        self._wait()
        if self._error is not None:
            raise self._error

    def _wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def close(self) -> None:
        """Detach it, once its preparation is over (used or not; again: nothing)."""
        self._wait()
        self._con.execute(f"DETACH DATABASE IF EXISTS {SCRATCH}")


def _watermark(con: duckdb.DuckDBPyConnection) -> int:
    """Every batch up to this id is finished: its rows will never change."""
    return con.execute("SELECT coalesce(max(batch_id), 0) FROM main.batches").fetchone()[0]


def _record(con: duckdb.DuckDBPyConnection, settings, as_of: datetime, watermark: int) -> None:  # noqa: ANN001
    rules.record_evaluation(con, settings, as_of, watermark)


@contextmanager
def _stored_whole(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """The stored evaluation (findings, horizon, numbers and what they were made from) changes
    whole or not at all: a run killed half-way through left findings replaced beside the old
    `run_evaluation`, which the next run carried forward; and `vigie verify`, which copies any
    committed state of the writer, compared such a state with the rules."""
    con.execute("BEGIN")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _full(con: duckdb.DuckDBPyConnection, settings, as_of: datetime) -> None:  # noqa: ANN001
    watermark = _watermark(con)
    with db.memory_limit(con, db.EVALUATION_MEMORY_LIMIT):  # not every operator of it spills
        con.execute("CREATE OR REPLACE TEMP TABLE _evaluated AS SELECT * FROM subject_findings_at(?, ?, ?, ?, ?)",
                    _params(settings, as_of))
    with _stored_whole(con):
        con.execute("CREATE OR REPLACE TABLE run_horizon AS SELECT source, subject_id AS scope, occurred_at AS next_at "
                    "FROM _evaluated WHERE rule_code = $h", {"h": rules.HORIZON})
        # In number order: the bounds of later runs read only the row groups near them (`_neighbour`).
        con.execute("CREATE OR REPLACE TABLE run_numbers AS SELECT * FROM log_received('infinity') ORDER BY source, n")
        con.execute(
            "CREATE OR REPLACE TABLE run_findings AS SELECT * FROM _evaluated WHERE rule_code <> $h "
            "UNION ALL SELECT * FROM stored_source_findings_at($as_of, 'infinity', $g, $tz, $tol)",
            {"h": rules.HORIZON, "as_of": as_of, "g": settings.grace_hours, "tz": settings.timezone,
             "tol": settings.perimeter_tolerance_m})
        _record(con, settings, as_of, watermark)
    con.execute("DROP TABLE _evaluated")


def _why_full(con: duckdb.DuckDBPyConnection, settings, as_of: datetime) -> str | None:  # noqa: ANN001
    """Why the stored evaluation cannot be carried forward to ``as_of`` (None: it can)."""
    try:
        row = con.execute("SELECT as_of, fingerprint, watermark FROM main.run_evaluation").fetchone()
        con.execute("SELECT 1 FROM main.run_horizon, main.run_numbers LIMIT 0")
    except duckdb.Error:
        return "first evaluation"
    if row is None or row[2] is None:
        return "first evaluation"
    previous, fingerprint, watermark = row
    if fingerprint != rules.fingerprint(settings):
        return "rules, limits, settings or schema changed"
    if as_of < previous:
        return "as-of earlier than the last evaluation"
    coming = con.execute(
        "SELECT name FROM (SELECT name, valid_from FROM main.rule_limits UNION ALL "
        "SELECT 'purposes of ' || device_class, valid_from FROM main.rule_purposes UNION ALL "
        "SELECT name, valid_from FROM main.rule_values) WHERE valid_from > ? AND valid_from <= ? LIMIT 1",
        [previous, as_of]).fetchone()
    if coming:
        return f"a version of {coming[0]} came into force"
    if con.execute("SELECT 1 FROM main.authorisations WHERE batch_id > ? LIMIT 1", [watermark]).fetchone():
        return "the register changed"
    return None


def _incremental(con: duckdb.DuckDBPyConnection, settings, as_of: datetime,  # noqa: ANN001
                 scratch: Scratch | None) -> Evaluation:
    (watermark,) = con.execute("SELECT watermark FROM main.run_evaluation").fetchone()
    new_watermark = _watermark(con)
    _dirty_scopes(con, watermark, as_of)
    (scopes,) = con.execute("SELECT count(*) FROM _dirty").fetchone()
    gaps = [s for (s,) in con.execute(
        "SELECT DISTINCT source FROM main.batches WHERE batch_id > ? AND status = 'loaded' "
        "AND (loaded > 0 OR quarantined > 0) AND source <> 'register'", [watermark]).fetchall()]
    if scopes:
        _reevaluate(con, settings, as_of, scratch)
    source_rules = [r.code for r in rules.catalogue() if r.scope == "source"]
    with _stored_whole(con):
        if scopes:
            _replace(con)
        if gaps and source_rules:
            _renumber(con, settings, as_of, watermark, source_rules)
        _record(con, settings, as_of, new_watermark)
    con.execute("DROP TABLE IF EXISTS _dirty")
    return Evaluation("incremental", f"{scopes} scope(s) and {len(gaps)} source(s) re-evaluated")


def _renumber(con: duckdb.DuckDBPyConnection, settings, as_of: datetime, watermark: int,  # noqa: ANN001
              source_rules: list[str]) -> None:
    """Add to ``run_numbers`` the sequence numbers the batches after ``watermark`` brought (a
    number seen again keeps its earliest time), and re-evaluate the source rules on the range
    of numbers they fall into, per source (see the module's doc)."""
    con.execute("CREATE OR REPLACE TEMP TABLE _added AS SELECT * FROM log_numbers('infinity', ?)", [watermark])
    con.execute("DELETE FROM main.run_number_ranges")
    ranges = [(source, _neighbour(con, source, lo, below=True), lo, hi, _neighbour(con, source, hi, below=False))
              for source, lo, hi in con.execute("SELECT source, min(n), max(n) FROM _added WHERE n IS NOT NULL "
                                                "GROUP BY source").fetchall()]
    db.insert_rows(con, "main.run_number_ranges", [[source, lo if before is None else before, hi if after is None else after]
                                                   for source, before, lo, hi, after in ranges])
    params = {"as_of": as_of, "g": settings.grace_hours, "tz": settings.timezone,
              "tol": settings.perimeter_tolerance_m, "rules": source_rules}
    ranged = "SELECT * FROM ranged_source_findings_at($as_of, 'infinity', $g, $tz, $tol) WHERE list_contains($rules, rule_code)"
    # What the ranges held before the new numbers, as stored: replaced by what they hold after.
    con.execute(f"""
        DELETE FROM main.run_findings f USING ({ranged}) o
        WHERE f.rule_code = o.rule_code AND f.source = o.source AND f.subject_id IS NOT DISTINCT FROM o.subject_id""",
                params)
    # Numbers by equality (the join's range of new numbers prunes the scan of run_numbers), the
    # NULL number apart: IS NOT DISTINCT FROM read every number.
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _merged AS
        SELECT source, n, min(seen_at) AS seen_at FROM (
            SELECT * FROM _added
            UNION ALL SELECT r.* FROM main.run_numbers r SEMI JOIN _added a ON a.source = r.source AND a.n = r.n
            UNION ALL SELECT r.* FROM main.run_numbers r
            SEMI JOIN (SELECT source FROM _added WHERE n IS NULL) a ON a.source = r.source WHERE r.n IS NULL)
        GROUP BY source, n""")
    con.execute("DELETE FROM main.run_numbers r USING _merged m WHERE r.source = m.source AND r.n = m.n")
    con.execute("DELETE FROM main.run_numbers r USING (SELECT source FROM _merged WHERE n IS NULL) m "
                "WHERE r.source = m.source AND r.n IS NULL")
    con.execute("INSERT INTO main.run_numbers SELECT * FROM _merged")
    con.execute(f"INSERT INTO main.run_findings {ranged}", params)
    con.execute("DELETE FROM main.run_number_ranges")
    con.execute("DROP TABLE _added")
    con.execute("DROP TABLE _merged")


def _neighbour(con: duckdb.DuckDBPyConnection, source: str, n: int, below: bool) -> int | None:
    """The number of ``source`` in ``run_numbers`` nearest below (or above) ``n``, None if there
    is none. Looked for in windows that widen 32 times each step: ``run_numbers`` is kept in
    number order (the full evaluation writes it so, and new numbers mostly come after the
    last), so DuckDB reads only the row groups of the window, not every number. When the
    first window is empty, whether there is any number beyond it at all is asked once: above
    the new numbers at the end of a sequence there is none, and the windows widened eleven
    times to say so (22 statements, 15 ms of a 50 000-event delta at 5 M)."""
    agg, op, edge_op = ("max", "<", ">=") if below else ("min", ">", "<=")
    width = 1 << 10
    while width < 1 << 60:
        edge = n - width if below else n + width
        if abs(edge) >= 1 << 62:  # out of BIGINT's range soon: the last, unbounded look
            break
        (found,) = con.execute(f"SELECT {agg}(n) FROM main.run_numbers WHERE source = ? AND n {op} ? AND n {edge_op} ?",
                               [source, n, edge]).fetchone()
        if found is not None:
            return found
        if width == 1 << 10 and not con.execute(f"SELECT 1 FROM main.run_numbers WHERE source = ? AND n {op} ? LIMIT 1",
                                                 [source, edge]).fetchone():
            return None  # nothing beyond the window (the row groups before it are skipped, by their bounds)
        width <<= 5
    return con.execute(f"SELECT {agg}(n) FROM main.run_numbers WHERE source = ? AND n {op} ?", [source, n]).fetchone()[0]


def _dirty_scopes(con: duckdb.DuckDBPyConnection, watermark: int, as_of: datetime) -> None:
    """TEMP ``_dirty(source, scope)``: the scopes to re-evaluate (see the module's doc)."""
    new_rows = " UNION ".join(f"SELECT source, {key} AS scope FROM main.{table} WHERE batch_id > $w"
                              for table, key in SCOPES.items())
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _dirty AS
        WITH quarantined AS (  -- places of rows quarantined since: a VMS row hidden by its later pull
            SELECT DISTINCT source, location FROM main.quarantine WHERE batch_id > $w),
        cameras AS (  -- cameras with a new version or a pull quarantined since
            SELECT source, camera_id FROM main.vms_cameras WHERE batch_id > $w
            UNION SELECT c.source, c.camera_id FROM main.vms_cameras c SEMI JOIN quarantined q USING (source, location))
        {new_rows}
        UNION SELECT r.source, r.recording_id FROM main.vms_recordings r SEMI JOIN quarantined q USING (source, location)
        UNION SELECT r.source, r.recording_id FROM main.vms_recordings r SEMI JOIN cameras c USING (source, camera_id)
        UNION SELECT source, scope FROM main.run_horizon WHERE next_at <= $as_of
        -- a read delivered again unchanged in a later file: its current version may be another
        UNION SELECT source, ref FROM main.duplicates WHERE batch_id > $w AND kind = 'read'
              AND NOT conflicting AND location <> first_location
    """, {"w": watermark, "as_of": as_of})
    # Drone flights that hold an id of a flight to re-evaluate go with it, to a fixed point.
    if not con.execute(f"SELECT 1 FROM _dirty SEMI JOIN {SOURCE_KINDS} s ON s.source = _dirty.source "
                       "AND s.kind = 'drone_files' LIMIT 1").fetchone():
        return
    con.execute(f"CREATE OR REPLACE TEMP TABLE _drone_ids AS {DRONE_IDS}")
    while con.execute("""
            INSERT INTO _dirty
            SELECT DISTINCT o.source, o.flight_id FROM _drone_ids d
            SEMI JOIN _dirty x ON x.source = d.source AND x.scope = d.flight_id
            JOIN _drone_ids o ON o.source = d.source AND o.type = d.type AND o.id = d.id
            ANTI JOIN _dirty y ON y.source = o.source AND y.scope = o.flight_id
            """).fetchone()[0]:
        pass
    con.execute("DROP TABLE _drone_ids")


def _reevaluate(con: duckdb.DuckDBPyConnection, settings, as_of: datetime,  # noqa: ANN001
                scratch: Scratch | None) -> None:
    """Evaluate the rules about subjects on the rows of the ``_dirty`` scopes alone, in the
    in-memory `Scratch` (the one given, else one prepared here): TEMP ``_evaluated`` (their
    findings and horizon), ``_subjects`` and ``_rulemap`` (whose stored findings they replace,
    by `_replace`)."""
    scratch = scratch or Scratch(con, settings)
    home = scratch.home
    try:
        scratch.ready()
        con.execute(f"USE {SCRATCH}")
        kinds = {stream.table: kind for kind, connector in CONNECTORS.items() for stream in connector.streams}
        # The tables of the kinds that no scope is of are left empty, as their copies would be
        # (5 ms each, planned and pruned for nothing: a delta without drone files).
        dirty_kinds = {kind for (kind,) in con.execute(
            f"SELECT DISTINCT s.kind FROM _dirty d JOIN {SOURCE_KINDS} s ON s.source = d.source").fetchall()}
        for table, key in SCOPES.items():
            if kinds[table] not in dirty_kinds:
                continue
            # Only the scopes of the sources that fill this table: DuckDB prunes the scan to the
            # row groups within the range of their keys (else it spans every source's). A
            # source's kind as its batches say: one removed from the configuration still counts.
            dirty = (f"(SELECT d.* FROM _dirty d SEMI JOIN {SOURCE_KINDS} s "
                     f"ON s.source = d.source AND s.kind = '{kinds[table]}')")
            rows = COPIES.get(table) or (
                f"SELECT t.* FROM {{home}}.main.{table} t SEMI JOIN {{dirty}} d ON d.source = t.source AND d.scope = {key}"
                if key.isidentifier() else
                # A scope that is an expression prunes nothing, and the join read every column of
                # every row: the rows are found on the key's columns alone, then read whole by
                # rowid, the scan pruned to their range (0.29 s against 0.37-0.44 s for the
                # events of 561 evidences at 20 M). DuckLake keeps a rowid too.
                f"SELECT t.* FROM {{home}}.main.{table} t SEMI JOIN (SELECT k.rowid AS r FROM {{home}}.main.{table} k "
                f"SEMI JOIN {{dirty}} d ON d.source = k.source AND d.scope = {key}) s ON s.r = t.rowid")
            con.execute(f"INSERT INTO main.{table} {rows.replace('{home}', home).replace('{dirty}', dirty)}")
        # A LAPI read's deliveries again (`lapi_reads_at` picks its version among them: one
        # that undoes a correction wins). Without them, a read re-evaluated for any reason
        # took its corrected version back.
        con.execute(f"""
            INSERT INTO main.duplicates SELECT d.* FROM {home}.main.duplicates d
            SEMI JOIN main.lapi_reads r ON r.source = d.source AND r.read_id = d.ref
            WHERE d.kind = 'read'""")
        # What hides a VMS row that changes in place: its later pulls that were quarantined.
        con.execute(f"""
            INSERT INTO main.quarantine SELECT q.* FROM {home}.main.quarantine q
            SEMI JOIN (SELECT source, location FROM main.vms_recordings UNION SELECT source, location FROM main.vms_cameras) p
                 ON p.source = q.source AND p.location = q.location""")
        kinds = [(r.code, kind, subject) for r in rules.catalogue() for kind, subject in r.subjects.items()]
        # The stored findings to replace: each subject of the scopes (`_subjects`), by every rule
        # about its type for its source's kind (`_rulemap`, a few rows). Kept apart, not joined
        # into one row per finding to replace (350 000 at 20 M, made distinct): 0.06 s instead
        # of 0.11-0.13 s with the deletion (20 M events), 0.05-0.07 s instead of 0.08-0.10 s at 5 M.
        con.execute(f"CREATE OR REPLACE TEMP TABLE _subjects AS SELECT DISTINCT source, type, subject_id FROM ({SUBJECTS})")
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _rulemap AS
            SELECT DISTINCT k.code AS rule_code, src.source, k.subject AS type
            FROM {SOURCE_KINDS} src
            JOIN (SELECT unnest($kinds, recursive := true)) k ON k.kind = src.kind
            SEMI JOIN (SELECT DISTINCT source, type FROM _subjects) p ON p.source = src.source AND p.type = k.subject
        """, {"kinds": [{"code": c, "kind": k, "subject": t} for c, k, t in kinds]})
        # Only the rules about the subjects the scopes hold (their codes in `_rulemap`): a rule
        # finds nothing in a scratch without its subjects, yet DuckDB planned and ran all
        # fifteen. A delta of body-camera events, audit rows and LAPI reads needs five: its
        # evaluation took 0.12 s instead of 0.18-0.19 s (20 M events), the same findings.
        codes = {code for (code,) in con.execute("SELECT DISTINCT rule_code FROM _rulemap").fetchall()}
        rules.subject_findings_macro(con, codes)
        con.execute("CREATE OR REPLACE TEMP TABLE _evaluated AS SELECT * FROM subject_findings_at(?, ?, ?, ?, ?)",
                    _params(settings, as_of))
    finally:
        con.execute(f"USE {home}")
        scratch.close()


def _replace(con: duckdb.DuckDBPyConnection) -> None:
    """Put the findings and horizon `_reevaluate` made in place of the stored ones."""
    con.execute("""
        DELETE FROM main.run_findings f USING _rulemap m, _subjects s
        WHERE f.rule_code = m.rule_code AND f.source = m.source AND s.source = m.source AND s.type = m.type
          AND f.subject_id IS NOT DISTINCT FROM s.subject_id""")
    con.execute("INSERT INTO main.run_findings SELECT * FROM _evaluated WHERE rule_code <> ?", [rules.HORIZON])
    con.execute("DELETE FROM main.run_horizon h USING _dirty d WHERE h.source = d.source AND h.scope = d.scope")
    con.execute("INSERT INTO main.run_horizon SELECT source, subject_id, occurred_at FROM _evaluated WHERE rule_code = ?",
                [rules.HORIZON])
    con.execute("DROP TABLE _evaluated")
    con.execute("DROP TABLE _subjects")
    con.execute("DROP TABLE _rulemap")
