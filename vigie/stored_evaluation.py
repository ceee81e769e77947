"""`vigie verify`: the stored evaluation against the rules evaluated again.

What a run evaluated is kept in the warehouse: the findings (``run_findings``), when each scope
is next due (``run_horizon``) and the sequence numbers received (``run_numbers``, read by
LOG-01). Reports, the Oversight view and `vigie findings` serve ``run_findings`` as the answer
when it answers their very question (`rules.stored_evaluation`), and each run carries all three
forward, re-evaluating only what changed (rules/incremental.py). None of it is in a manifest:
a finding deleted or edited there went on being served and carried forward while every
manifest still recomputed. So verify evaluates the rules again, on the batches that evaluation
had seen, and compares:

- findings and numbers exactly (tests/test_incremental.py holds runs to the same);
- the horizon one way: a scope the rules would re-evaluate sooner than stored (or never
  stored) leaves its findings stale; a scope due earlier than needed only costs a re-evaluation.

The rules evaluated are those the copy holds, once `check_rules` has found them identical to
this version's: with other rules (another version or configuration), nothing would serve the
stored evaluation (the next run evaluates afresh), and it is not checked.
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from vigie import rules

# Compared by name: a column renamed in place (holder and legal_ref swapped) is a difference.
_FINDINGS = ", ".join([*rules.COLUMNS, "holder"])
_EXAMPLES = 3


def check(con: duckdb.DuckDBPyConnection, settings, label: str) -> tuple[list[tuple[str, str, str, str]], list[str]]:  # noqa: ANN001
    """Differences (table, what, expected, found) and notes for the copy on ``con``."""
    try:
        return _check(con, settings, label)
    except (duckdb.OutOfMemoryException, duckdb.IOException):
        raise  # this machine's limits, not the warehouse's content: verify fails, it does not accuse
    except duckdb.Error as exc:  # a record altered out of shape: told, and the rest of verify goes on
        return [("run_evaluation", "stored evaluation unreadable", "", _error(exc))], []


def claims_this_version(con: duckdb.DuckDBPyConnection, settings) -> bool:  # noqa: ANN001
    """Whether the stored evaluation says it was made with this version's rules and settings:
    beside those rules, this version serves it (`rules.stored_evaluation`) and carries it forward."""
    try:
        row = con.execute("SELECT fingerprint FROM main.run_evaluation").fetchone()
    except duckdb.Error:  # none, or altered out of shape: `check` says which
        return False
    return row is not None and row[0] == rules.fingerprint(settings)


def _check(con: duckdb.DuckDBPyConnection, settings, label: str) -> tuple[list, list]:  # noqa: ANN001
    try:  # by name: a record written by an older version lacks columns, and is another version's
        found = con.execute("SELECT * FROM main.run_evaluation")
        names, row = [d[0] for d in found.description], found.fetchone()
    except duckdb.CatalogException:
        names, row = [], None
    if row is None:
        return [], [f"{label}: no stored evaluation (the rules are evaluated afresh for each question)"]
    record = dict(zip(names, row))
    as_of, fingerprint, watermark, version = (record.get(k) for k in ("as_of", "fingerprint", "watermark", "data_version"))
    if fingerprint == rules.SUPERSEDED:
        return [], [f"{label}: the stored evaluation was superseded by rules installed since: not re-checked "
                    "(nothing serves it; the next run evaluates afresh)"]
    if fingerprint != rules.fingerprint(settings):
        return [], [f"{label}: the stored evaluation was made by another version or configuration: not re-checked "
                    "(nothing serves it; the next run evaluates afresh)"]
    # Written by `rules.record_evaluation` from the batches it had seen: anything else was
    # altered (a data version moved on serves old findings as current; a watermark moved back
    # re-checks them on fewer batches).
    shaped = isinstance(as_of, datetime) and isinstance(watermark, int) and isinstance(version, int)
    seen = [b for b in rules.data_batches(con) if shaped and b[0] <= watermark]
    if not shaped or version != (seen[-1][0] if seen else 0):
        return [("run_evaluation", "the record of the stored evaluation was altered",
                 f"data version {seen[-1][0] if seen else 0} from the batches up to its watermark",
                 f"as of {as_of}, watermark {watermark}, data version {version}")], []
    later = rules.data_batches(con, watermark)
    known_at = "infinity"
    if later:  # loads since, not evaluated yet (Airflow's ingestion before the oversight DAG)
        known_at = max((t for _, t in seen if t is not None), default=None)
        if known_at is None or any(t is None or t <= known_at for _, t in later):
            return [], [f"{label}: batches loaded since the stored evaluation cannot be told from those it had seen "
                        "by their commit instants: it is not re-checked (the next run re-evaluates them)"]
    params = {"as_of": as_of, "k": known_at, "g": settings.grace_hours, "tz": settings.timezone,
              "tol": settings.perimeter_tolerance_m}
    try:  # each fresh side once: it is read twice, against the stored rows and from them
        # Under the evaluation's memory cap, which verify's connections have (`db.reader`,
        # `db.writer_snapshot`), as a run's full evaluation does (rules/incremental.py).
        con.execute("CREATE OR REPLACE TEMP TABLE _fresh AS "
                    "SELECT * FROM main.subject_findings_at($as_of, $k, $g, $tz, $tol)", params)
        con.execute("CREATE OR REPLACE TEMP TABLE _fresh_numbers AS SELECT * FROM main.log_received($k)", {"k": known_at})
        differences = _numbers(con)
        # Over the numbers received, the rules that span a source give what they give over the
        # numbers stored, which are the same (one pass over the sources' logs saved).
        source = "main.stored_source_findings_at" if not differences else "main.source_findings_at"
        con.execute(f"""CREATE OR REPLACE TEMP TABLE _fresh_findings AS
                        SELECT {_FINDINGS} FROM _fresh WHERE rule_code <> $h
                        UNION ALL SELECT {_FINDINGS} FROM {source}($as_of, $k, $g, $tz, $tol)""",
                    params | {"h": rules.HORIZON})
        differences = _findings(con, as_of) + differences
        if not later:  # the horizon reads every row of the tables: only those it had seen
            differences += _horizon(con, as_of)
    finally:
        for table in ("_fresh", "_fresh_numbers", "_fresh_findings"):
            con.execute(f"DROP TABLE IF EXISTS {table}")
    return differences, []


def _compare(con: duckdb.DuckDBPyConnection, fresh: str, stored: str) -> tuple[list, list]:
    """Rows of ``fresh`` not in ``stored``, and the other way round (as multisets), a few of each
    with the count: [(count, row...)]."""
    def some(a: str, b: str) -> list:
        return con.execute(f"SELECT count(*) OVER (), * FROM (FROM {a} EXCEPT ALL FROM {b}) d "
                           f"ORDER BY ALL LIMIT {_EXAMPLES}").fetchall()
    return some(fresh, stored), some(stored, fresh)


def _findings(con: duckdb.DuckDBPyConnection, as_of) -> list[tuple[str, str, str, str]]:  # noqa: ANN001
    try:
        missing, extra = _compare(con, "_fresh_findings", f"(SELECT {_FINDINGS} FROM main.run_findings)")
    except duckdb.Error as exc:
        return [("run_findings", "stored findings unreadable", "", _error(exc))]
    out = []
    if missing:
        out.append(("run_findings", f"{missing[0][0]} finding(s) as of {as_of} missing from the stored evaluation",
                    _finding_list(missing), "absent"))
    if extra:
        out.append(("run_findings", f"{extra[0][0]} stored finding(s) as of {as_of} that the rules do not give",
                    "absent", _finding_list(extra)))
    return out


def _numbers(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str, str]]:
    try:
        missing, extra = _compare(con, "(SELECT source, n, seen_at FROM _fresh_numbers)",
                                  "(SELECT source, n, seen_at FROM main.run_numbers)")
    except duckdb.Error as exc:
        return [("run_numbers", "stored sequence numbers unreadable", "", _error(exc))]
    if not missing and not extra:
        return []
    return [("run_numbers", "sequence numbers kept for LOG-01 differ from those received "
             f"({missing[0][0] if missing else 0} missing, {extra[0][0] if extra else 0} added)",
             _row_list(missing), _row_list(extra))]


def _horizon(con: duckdb.DuckDBPyConnection, as_of) -> list[tuple[str, str, str, str]]:  # noqa: ANN001
    try:
        late = con.execute(f"""
            SELECT count(*) OVER (), f.source, f.subject_id, f.occurred_at::VARCHAR, s.next_at::VARCHAR
            FROM _fresh f
            LEFT JOIN (SELECT source, scope, min(next_at) AS next_at FROM main.run_horizon GROUP BY ALL) s
                   ON s.source = f.source AND s.scope = f.subject_id
            WHERE f.rule_code = $h AND (s.next_at IS NULL OR s.next_at > f.occurred_at)
            ORDER BY ALL LIMIT {_EXAMPLES}""", {"h": rules.HORIZON}).fetchall()
    except duckdb.Error as exc:
        return [("run_horizon", "stored horizon unreadable", "", _error(exc))]
    if not late:
        return []
    return [("run_horizon", f"{late[0][0]} scope(s) due for re-evaluation later than the rules say, or never, "
             f"after {as_of}: their findings would not change when they should",
             "; ".join(f"{r[1]} {r[2]} at {r[3]}" for r in late), "; ".join(f"at {r[4] or 'never'}" for r in late))]


def _finding_list(rows: list) -> str:
    return "; ".join(f"{r[1]} {r[2]} {r[5]}" for r in rows) + (" ..." if rows[0][0] > len(rows) else "")


def _row_list(rows: list) -> str:
    return "; ".join(" ".join(str(v) for v in r[1:]) for r in rows) + (" ..." if rows and rows[0][0] > len(rows) else "")


def _error(exc: Exception) -> str:
    return " ".join(str(exc).split())[:200]
