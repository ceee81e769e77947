"""The legal rules: a catalogue (catalogue.yml), versioned limits (parameters.yml), one SQL
file per rule, and the shared derivations they read (subjects.sql).

Each rule file is the body of a DuckDB table macro ``rule_<code>(as_of, known_at,
grace_hours, tz, tolerance_m)`` returning findings without their legal reference; the
catalogue supplies that per device class. ``findings_at`` is the union of all rules. They are
installed in the warehouse by every load (so the published file carries them, and the view
``oversight.findings`` evaluates them as of now), and evaluated read-only by ``vigie findings``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, time
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import yaml

from vigie import db
from vigie.db import MIGRATIONS_DIR

RULES_DIR = Path(__file__).resolve().parent
# The versioned limits, purpose lists and justification (tests point this at another file).
PARAMETERS = RULES_DIR / "parameters.yml"
COLUMNS = ["rule_code", "source", "device_class", "device_id", "subject_id", "occurred_at", "detail", "legal_ref"]


@dataclass(frozen=True)
class Rule:
    code: str
    title: str
    file: str
    legal_ref: dict[str, str]
    parameters: tuple[str, ...]
    subjects: dict[str, str]  # source kind → what its findings are about (see incremental.py)
    scope: str = "subject"  # or "source": a finding spans the whole source (sequence gaps)

    @property
    def macro(self) -> str:
        return "rule_" + self.code.lower().replace("-", "_")

    def sql(self) -> str:
        return (RULES_DIR / self.file).read_text()


@lru_cache(maxsize=None)
def catalogue() -> tuple[Rule, ...]:
    entries = yaml.safe_load((RULES_DIR / "catalogue.yml").read_text())
    return tuple(Rule(e["code"], e["title"], e["file"], e["legal_ref"], tuple(e.get("parameters", ())),
                      e.get("subjects", {}), e.get("scope", "subject")) for e in entries)


# Not a rule: the instants at which a scope's findings can next change (horizon.sql). It runs
# beside the rules that read subjects, sharing their relations, as a pseudo-rule of this code.
HORIZON = "~horizon"


def _instant(value, tz: str) -> datetime:  # noqa: ANN001
    """A parameter's valid_from: a date alone is its midnight in the configured zone
    (domain.md); a date-time without an offset is read in that zone too."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=ZoneInfo(tz))
    return datetime.combine(value, time(), tzinfo=ZoneInfo(tz))


# The fingerprint of a stored evaluation whose rules were replaced since (`install`).
SUPERSEDED = "superseded: other rules installed since"


def install(con: duckdb.DuckDBPyConnection, settings) -> None:  # noqa: ANN001
    """(Re)install parameters, sources, the rule macros and the findings view, unless the
    database already holds exactly these (same fingerprint: a second of every run saved)."""
    digest = fingerprint(settings)
    if installed_fingerprint(con) == digest:
        return
    # The stored evaluation was made with the rules replaced here: first marked as another's, so
    # that nothing serves it or carries it forward beside these (a full evaluation comes next),
    # even when the rules replaced were this very version's (a roll-back, a configuration put
    # back). Then no run leaves a stored evaluation of this version beside other rules, which
    # `vigie verify` can call a break (integrity.check_evaluation).
    if con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
                   "AND schema_name = 'main' AND table_name = 'run_evaluation'").fetchone()[0]:
        try:
            con.execute(f"UPDATE main.run_evaluation SET fingerprint = '{SUPERSEDED}'")
        except (duckdb.BinderException, duckdb.ConversionException, duckdb.ConstraintException):
            con.execute("DROP TABLE main.run_evaluation")  # a record altered out of shape serves nothing
    # Until the rules are whole, none are this version's: a run stopped halfway left the old
    # fingerprint beside rules partly new, which the next install then skipped.
    con.execute("DROP TABLE IF EXISTS main.rule_installed")
    _install(con, settings)
    con.execute("CREATE OR REPLACE TABLE main.rule_installed AS SELECT ?::VARCHAR AS fingerprint", [digest])


def install_for_subjects(con: duckdb.DuckDBPyConnection, settings) -> None:  # noqa: ANN001
    """What `incremental` evaluates a delta's scopes with, in its scratch database: the
    parameters and the subject relations, built as `install` builds them. Not the rules'
    macros nor the findings view: they took two thirds of the install (0.12 of 0.18 s), at
    every run that brought anything. `incremental` then makes ``subject_findings_at`` of the
    rules its scopes need (`subject_findings_macro`)."""
    _parameters(con, settings)
    con.execute((RULES_DIR / "subjects.sql").read_text())


def _parameters(con: duckdb.DuckDBPyConnection, settings) -> None:  # noqa: ANN001
    """The tables of limits, purposes, values, sources, settings and legal references the rules
    read; each filled by one statement (`db.insert_rows`: one per row took 20 ms)."""
    params = yaml.safe_load(PARAMETERS.read_text())
    tz = settings.timezone
    tables = {
        "rule_limits (name VARCHAR, value DOUBLE, unit VARCHAR, legal_ref VARCHAR, valid_from TIMESTAMPTZ)":
            [[p["name"], p["value"], p["unit"], p["legal_ref"], _instant(p["valid_from"], tz)] for p in params["limits"]],
        "rule_purposes (device_class VARCHAR, code VARCHAR, legal_ref VARCHAR, valid_from TIMESTAMPTZ)":
            [[p["device_class"], code, p["legal_ref"], _instant(p["valid_from"], tz)]
             for p in params["purposes"] for code in p["codes"]],
        "rule_values (name VARCHAR, value VARCHAR, legal_ref VARCHAR, valid_from TIMESTAMPTZ)":
            [["drone_consultation_justification", v["value"], v["legal_ref"], _instant(v["valid_from"], tz)]
             for v in params["drone_consultation_justification"]],
        "rule_sources (source VARCHAR, kind VARCHAR, holder VARCHAR)":
            [[s.name, s.kind, s.holder] for s in settings.sources],
        "rule_settings (grace_hours DOUBLE, timezone VARCHAR, perimeter_tolerance_m DOUBLE)":
            [[settings.grace_hours, settings.timezone, settings.perimeter_tolerance_m]],
        "rule_legal_refs (rule_code VARCHAR, device_class VARCHAR, legal_ref VARCHAR, title VARCHAR)":
            [[r.code, cls, ref, r.title] for r in catalogue() for cls, ref in r.legal_ref.items()],
    }
    for table, rows in tables.items():
        con.execute(f"CREATE OR REPLACE TABLE {table}")
        db.insert_rows(con, table.partition(" ")[0], rows)


def subject_findings_macro(con: duckdb.DuckDBPyConnection, codes: set[str] | None = None) -> None:
    """``subject_findings_at``: the rules about subjects (those of ``codes``, when given and
    not empty) with their horizon, for the pipeline (vigie/rules/incremental.py)."""
    chosen = [r for r in catalogue() if r.scope == "subject" and (not codes or r.code in codes)]
    _findings_macro(con, "subject_findings_at", [(r.code, r.sql()) for r in chosen]
                    + [(HORIZON, (RULES_DIR / "horizon.sql").read_text())])


def _install(con: duckdb.DuckDBPyConnection, settings) -> None:  # noqa: ANN001
    _parameters(con, settings)
    con.execute((RULES_DIR / "subjects.sql").read_text())
    for rule in catalogue():
        con.execute(f"CREATE OR REPLACE MACRO {rule.macro}{SIGNATURE} AS TABLE {rule.sql()}")
    rules = catalogue()
    _findings_macro(con, "findings_at", [(r.code, r.sql()) for r in rules])
    # For the pipeline (vigie/rules/incremental.py): the rules about subjects, and those that
    # span a whole source.
    subject_findings_macro(con)
    _findings_macro(con, "source_findings_at", [(r.code, r.sql()) for r in rules if r.scope == "source"])
    # The same over the numbers a run keeps up to date (``run_numbers``) instead of all rows.
    con.execute("CREATE TABLE IF NOT EXISTS main.run_numbers (source VARCHAR, n BIGINT, seen_at TIMESTAMPTZ)")
    _findings_macro(con, "stored_source_findings_at", [(r.code, r.sql().replace(*STORED_NUMBERS))
                                                       for r in rules if r.scope == "source"])
    # ... and over a range of them per source (``run_number_ranges``): where new numbers fell.
    con.execute("CREATE TABLE IF NOT EXISTS main.run_number_ranges (source VARCHAR, lo BIGINT, hi BIGINT)")
    _findings_macro(con, "ranged_source_findings_at", [(r.code, r.sql().replace(*RANGED_NUMBERS))
                                                       for r in rules if r.scope == "source"])
    con.execute("""
        CREATE OR REPLACE VIEW oversight.findings AS
        SELECT * FROM main.findings_at(now(), 'infinity'::TIMESTAMPTZ,
            (SELECT grace_hours FROM main.rule_settings), (SELECT timezone FROM main.rule_settings),
            (SELECT perimeter_tolerance_m FROM main.rule_settings))
    """)


SIGNATURE = "(as_of, known_at, grace_hours, tz, tolerance_m)"
# LOG-01 reads the sequence numbers received; the pipeline keeps them in a table.
STORED_NUMBERS = ("log_received(known_at)", "main.run_numbers")
RANGED_NUMBERS = ("log_received(known_at)", "(SELECT r.* FROM main.run_numbers r JOIN main.run_number_ranges g "
                                            "ON g.source = r.source AND r.n BETWEEN g.lo AND g.hi)")


def _findings_macro(con: duckdb.DuckDBPyConnection, name: str, parts: list[tuple[str, str]]) -> None:
    """Install ``name`` as the union of the rules ``parts`` = [(code, SQL)], one finding each."""
    # Evaluated together, the rules share each subject relation, computed once (a materialised
    # CTE) instead of once per rule that reads it.
    union = "\nUNION ALL BY NAME\n".join(f"SELECT '{code}' AS rule_code, * FROM ({_shared(sql)})" for code, sql in parts)
    used = [n for n in SHARED if SHARED_PREFIX + n in union]
    if used:
        union = f"WITH {', '.join(f'{SHARED_PREFIX}{n} AS MATERIALIZED (SELECT * FROM {n}{SHARED[n]})' for n in used)} {union}"
    # One finding per (rule, source, subject), the earliest; the legal reference comes from the
    # catalogue. GROUP BY, not a window: DuckDB 1.5.5 crashes on a window over this union.
    # The context columns are taken by an ordering key that is never NULL: arg_min skips rows
    # whose key is NULL, and a finding without an instant (a LOG-01 gap after a row without a
    # readable time) must keep its class, detail and holder.
    first = "(coalesce(occurred_at, 'infinity'::TIMESTAMPTZ), detail)"
    con.execute(f"""
        CREATE OR REPLACE MACRO {name}{SIGNATURE} AS TABLE
        SELECT f.rule_code, f.source, f.device_class, f.device_id, f.subject_id, f.occurred_at, f.detail,
               l.legal_ref, f.holder
        FROM (
            SELECT rule_code, source, subject_id, min(occurred_at) AS occurred_at,
                   coalesce(arg_min(device_class, {first}), '') AS device_class,
                   coalesce(arg_min(device_id, {first}), '') AS device_id,
                   arg_min(detail, {first}) AS detail, arg_min(answerable, {first}) AS holder
            FROM ({union})
            GROUP BY rule_code, source, subject_id) f
        LEFT JOIN main.rule_legal_refs l ON l.rule_code = f.rule_code AND l.device_class = f.device_class
    """)


# The subject relations of subjects.sql that several rules read, with the arguments they take.
SHARED = {
    "vp_recordings": "(as_of, known_at, grace_hours, tz)", "vp_consultations": "(as_of, known_at)",
    "bodycam_known_events": "(as_of, known_at)", "bodycam_recordings": "(as_of, known_at, grace_hours, tz)",
    "bodycam_consultations": "(as_of, known_at)", "drone_known_flights": "(as_of, known_at)",
    "drone_recordings": "(as_of, known_at)", "drone_consultations": "(as_of, known_at)",
    "lapi_known_queries": "(as_of, known_at)", "lapi_known_reads": "(as_of, known_at, grace_hours, tz)",
}
SHARED_PREFIX = "shared_"
_CALL = re.compile(r"\b(" + "|".join(SHARED) + r")\(([^()]*)\)")


def _shared(sql: str) -> str:
    """A rule's SQL reading the shared relations instead of calling their macros."""
    def use(match: re.Match) -> str:
        name, args = match.group(1), "(" + re.sub(r"\s+", " ", match.group(2)).strip() + ")"
        if args != SHARED[name]:  # called otherwise than the shared relation: keep the call
            return match.group(0)
        return SHARED_PREFIX + name
    return _CALL.sub(use, sql)


def findings_query(order: bool = True) -> str:
    """SQL with parameters (as_of, known_at, grace_hours, tz, tolerance_m)."""
    return ("SELECT rule_code, source, device_class, device_id, subject_id, vg_iso(occurred_at) AS occurred_at, "
            "detail, legal_ref, holder FROM findings_at(?::TIMESTAMPTZ, ?::TIMESTAMPTZ, ?, ?, ?)"
            + (" ORDER BY rule_code, subject_id, source" if order else ""))


def fingerprint(settings) -> str:  # noqa: ANN001
    """What findings depend on besides the data and the two instants: every file that defines
    the rules (their SQL, catalogue and limits, the Python that assembles them into
    ``findings_at``), the warehouse's macros (migrations), the sources' holders and the settings,
    and DuckDB's version."""
    digest = hashlib.sha256()
    files = sorted({*RULES_DIR.glob("*.sql"), *RULES_DIR.glob("*.yml"), *RULES_DIR.glob("*.py"), PARAMETERS})
    for path in files + sorted(MIGRATIONS_DIR.glob("*.sql")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    digest.update(repr((settings.grace_hours, settings.timezone, settings.perimeter_tolerance_m,
                        sorted((s.name, s.kind, s.holder or "") for s in settings.sources))).encode())
    # DuckDB writes a stored macro out in its own way, which may change between versions:
    # `vigie verify` compares the rules a warehouse holds with a fresh install (integrity.py).
    digest.update(duckdb.__version__.encode())
    return digest.hexdigest()


# Batches that can change a finding: rows loaded or quarantined, a register version...
_LOADING = """SELECT batch_id, committed_at FROM main.batches
              WHERE batch_id > $after AND status = 'loaded' AND (loaded > 0 OR quarantined > 0 OR source = 'register')"""
# ... or a LAPI read delivered again, unchanged, in a later file: a duplicate (nothing is
# loaded), yet it undoes a correction, since the later file wins (`lapi_reads_at`). The
# duplicates are read from `after` on only: they are appended in batch order, and DuckDB
# skips the row groups before it (many runs add a few: the API's last page, landed again
# with its new events).
_REDELIVERING = """SELECT batch_id, committed_at FROM main.batches
                   WHERE batch_id > $after AND status = 'loaded' AND batch_id IN (
                       SELECT batch_id FROM main.duplicates WHERE batch_id > $after AND kind = 'read'
                       AND NOT conflicting AND location <> first_location)"""


def data_batches(con: duckdb.DuckDBPyConnection, after: int = -1) -> list[tuple]:
    """(batch_id, committed_at) of the loaded batches after ``after`` that can change a finding,
    in id order. Empty batches (a no-op run) change nothing."""
    return sorted(set(con.execute(_LOADING, {"after": after}).fetchall())
                  | set(con.execute(_REDELIVERING, {"after": after}).fetchall()))


def data_version(con: duckdb.DuckDBPyConnection) -> tuple[int, datetime | None]:
    """The last batch that can change a finding (0: none), and the last such commit."""
    top, at = con.execute("SELECT coalesce(max(batch_id), 0), max(committed_at) FROM (" + _LOADING + ")",
                          {"after": -1}).fetchone()
    later = data_batches(con, top)  # only redeliveries can come after it: rare
    if later:
        top, at = later[-1][0], max([t for _, t in later if t is not None] + ([at] if at else []), default=None)
    return top, at


def record_evaluation(con: duckdb.DuckDBPyConnection, settings, as_of: datetime, watermark: int) -> None:  # noqa: ANN001
    """Note what ``run_findings`` was computed from, so the same question is answered from it
    and the next run carries it forward (``watermark``: the last batch it had seen)."""
    (version, _) = data_version(con)
    con.execute("CREATE OR REPLACE TABLE run_evaluation AS SELECT ?::TIMESTAMPTZ AS as_of, ?::BIGINT AS data_version, "
                "?::VARCHAR AS fingerprint, ?::BIGINT AS watermark", [as_of, version, fingerprint(settings), watermark])


def stored_evaluation(con: duckdb.DuckDBPyConnection, settings, as_of: datetime,  # noqa: ANN001
                      known_at: datetime | None = None) -> bool:
    """True when ``run_findings`` holds exactly the findings as of ``as_of`` known at
    ``known_at``: same instant, same rules and settings, no data loaded since, and
    ``known_at`` (None: everything) after the last load that could change them."""
    try:
        row = con.execute("SELECT as_of, data_version, fingerprint FROM main.run_evaluation").fetchone()
    except duckdb.CatalogException:
        return False
    digest = fingerprint(settings)
    if row is None or row[0] != as_of or row[2] != digest:
        return False
    # Only beside this version's rules: a question it does not answer is evaluated with the rules
    # installed, and those are the ones the answer must come from (a report names them).
    if installed_fingerprint(con) != digest:
        return False
    version, last_commit = data_version(con)
    return row[1] == version and (known_at is None or last_commit is None or known_at >= last_commit)


def installed_fingerprint(con: duckdb.DuckDBPyConnection) -> str | None:
    """The fingerprint of the rules installed in the warehouse (None: none installed). The rules
    that reports, the view and `vigie findings` evaluate are these, whichever version reads them."""
    try:
        row = con.execute("SELECT fingerprint FROM main.rule_installed").fetchone()
    except (duckdb.CatalogException, duckdb.BinderException):  # none, or altered out of shape
        return None
    return row[0] if row else None


def evaluate(con: duckdb.DuckDBPyConnection, settings, as_of: datetime,  # noqa: ANN001
             known_at: datetime | None = None) -> list[tuple]:
    """Findings as of ``as_of`` from what had been loaded by ``known_at`` (default: all).

    When the last run evaluated that very question, its stored findings are the answer (the
    same rows the rules would compute, at 5 M events in a fraction of the time)."""
    if stored_evaluation(con, settings, as_of, known_at):
        return con.execute(
            "SELECT rule_code, source, device_class, device_id, subject_id, vg_iso(occurred_at) AS occurred_at, "
            "detail, legal_ref, holder FROM main.run_findings ORDER BY rule_code, subject_id, source").fetchall()
    return con.execute(findings_query(), [as_of, known_at or "infinity", settings.grace_hours,
                                          settings.timezone, settings.perimeter_tolerance_m]).fetchall()
