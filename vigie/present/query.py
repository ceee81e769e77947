"""The questions inspectors ask, as functions over a read-only warehouse connection.

The report, the Oversight view and the alert e-mails call these and nothing else, so the
numbers on a page, in a filed report and in an e-mail are the same numbers. Findings come
from ``vigie.rules.evaluate`` (the same function as ``vigie findings``); the selection of
interface.md ("Inspectors") is applied to them here.
"""

from __future__ import annotations

import csv
import gc
import hashlib
import io
import threading
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple

import duckdb

from vigie import integrity
from vigie.config import parse_instant
from vigie.rules import COLUMNS, catalogue

REPORT_COLUMNS = COLUMNS + ["holder"]  # the findings CSV's columns, then the holder


class Finding(NamedTuple):
    """One finding, its fields in the order of the report's CSV (``REPORT_COLUMNS``). A tuple,
    not a dataclass: a report over 20 M events holds 700 000 of them."""

    rule_code: str
    source: str
    device_class: str
    device_id: str
    subject_id: str
    occurred_at: str  # ISO-8601 UTC, empty when unknown (a LOG-01 gap after a row without time)
    detail: str
    legal_ref: str
    holder: str

    @property
    def key(self) -> tuple[str, str, str]:
        """What identifies a finding (domain.md): rule, source, subject."""
        return (self.rule_code, self.source, self.subject_id)

    @property
    def instant(self) -> datetime | None:
        return datetime.fromisoformat(self.occurred_at.replace("Z", "+00:00")) if self.occurred_at else None

    def row(self) -> list[str]:
        return list(self)


assert list(Finding._fields) == REPORT_COLUMNS  # row() and the CSV rely on it


@dataclass(frozen=True)
class Selection:
    """Which findings a report or a page shows: interface.md's options, one to one."""

    as_of: datetime
    known_at: datetime
    date_from: date | None = None  # [from, to): local midnights in the configured zone
    date_to: date | None = None
    rules: tuple[str, ...] = ()
    holders: tuple[str, ...] = ()
    device_classes: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()

    @classmethod
    def parse(cls, tz: str, *, as_of: str | None = None, known_at: str | None = None,
              date_from: str | None = None, date_to: str | None = None, rules: Iterable[str] = (),
              holders: Iterable[str] = (), device_classes: Iterable[str] = (), sources: Iterable[str] = (),
              now: datetime | None = None) -> "Selection":
        """From the strings a command line or a query string gives; ValueError names the bad one."""
        now = now or datetime.now(timezone.utc)

        def instant(name: str, text: str | None) -> datetime:
            if not text:
                return now
            try:
                return parse_instant(text, tz)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None

        def day(name: str, text: str | None) -> date | None:
            if not text:
                return None
            try:
                return date.fromisoformat(text.strip())
            except ValueError:
                raise ValueError(f"{name}: {text!r} is not a date (YYYY-MM-DD)") from None

        clean = lambda values: tuple(sorted({v.strip() for v in values if v and v.strip()}))  # noqa: E731
        return cls(as_of=instant("as_of", as_of), known_at=instant("known_at", known_at),
                   date_from=day("from", date_from), date_to=day("to", date_to), rules=clean(rules),
                   holders=clean(holders), device_classes=clean(device_classes), sources=clean(sources))

    def bounds(self, tz: str) -> tuple[datetime | None, datetime | None]:
        start = parse_instant(self.date_from.isoformat(), tz) if self.date_from else None
        end = parse_instant(self.date_to.isoformat(), tz) if self.date_to else None
        return start, end

    def matches(self, f: Finding, start: datetime | None, end: datetime | None) -> bool:
        if self.rules and f.rule_code not in self.rules:
            return False
        if self.holders and f.holder not in self.holders:
            return False
        if self.device_classes and f.device_class not in self.device_classes:
            return False
        if self.sources and f.source not in self.sources:
            return False
        if start is None and end is None:
            return True
        at = f.instant
        # A finding with no time cannot be placed in a period: a period excludes it.
        return at is not None and (start is None or at >= start) and (end is None or at < end)

    def query_params(self) -> list[tuple[str, str]]:
        """The same selection as query parameters (a link that reproduces a page)."""
        params = [("as_of", _iso(self.as_of)), ("known_at", _iso(self.known_at))]
        params += [("from", self.date_from.isoformat())] if self.date_from else []
        params += [("to", self.date_to.isoformat())] if self.date_to else []
        for name, values in (("rule", self.rules), ("holder", self.holders),
                             ("device_class", self.device_classes), ("source", self.sources)):
            params += [(name, v) for v in values]
        return params

    def without_filters(self) -> "Selection":
        return replace(self, rules=(), holders=(), device_classes=(), sources=())


def _iso(at: datetime) -> str:
    return at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


_gc_lock = threading.Lock()
_gc_holders = 0  # threads inside `_no_gc_pauses` (the view serves several requests at once)
_gc_was_enabled = False


@contextmanager
def _no_gc_pauses() -> Iterator[None]:
    """Python's cycle collector held while hundreds of thousands of findings are built or
    counted: they hold no cycles, and collections that walked them again and again as they
    grew cost 2 s of a report at 20 M events. Counted, so that the last thread out restores
    it (two requests of the view overlapping must not leave it off)."""
    global _gc_holders, _gc_was_enabled
    with _gc_lock:
        if _gc_holders == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_holders += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_holders -= 1
            if _gc_holders == 0 and _gc_was_enabled:
                gc.enable()


def findings(con: duckdb.DuckDBPyConnection, settings, selection: Selection) -> list[Finding]:  # noqa: ANN001
    """The findings of ``vigie findings`` for the selection's as-of and known-at, restricted
    to its period and filters, sorted by rule_code, subject_id, source (code-point order)."""
    from vigie import rules

    start, end = selection.bounds(settings.timezone)
    with _no_gc_pauses():
        rows = rules.evaluate(con, settings, selection.as_of, selection.known_at)
        # Every column is text; one that is NULL is empty (the slow path: a few rows in 100 000).
        out = [Finding._make(r) if None not in r else Finding._make("" if v is None else str(v) for v in r) for r in rows]
        return [f for f in out if selection.matches(f, start, end)]


def findings_csv(found: Iterable[Finding]) -> bytes:
    """The report's CSV: the findings columns plus ``holder``; the same bytes in every language."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(REPORT_COLUMNS)
    writer.writerows(found)  # each Finding is its row
    return buf.getvalue().encode("utf-8")


def findings_sha256(found: Iterable[Finding]) -> str:
    """``findings-sha256``: the SHA-256 of the bytes ``vigie report --format csv`` writes."""
    return hashlib.sha256(findings_csv(found)).hexdigest()


# --- summaries ---------------------------------------------------------------------------

def family(rule_code: str) -> str:
    return rule_code.split("-", 1)[0]


@dataclass
class Summary:
    by_rule: list[tuple[str, str, str, int]]  # code, title, legal references, count
    by_holder: list[tuple[str, int]]
    by_class: list[tuple[str, int]]
    worst_devices: list[tuple[str, str, str, int]]  # source, class, device, count
    total: int
    weeks: list[date] = field(default_factory=list)  # Monday of each week in the period
    trend: dict[str, list[int]] = field(default_factory=dict)  # family -> count per week


@_no_gc_pauses()
def summarise(found: list[Finding], tz: str, start: datetime | None = None, end: datetime | None = None,
              top: int = 10) -> Summary:
    """Counts per rule (every rule of the catalogue, zero included), holder, class; the
    devices with most findings; findings per week by family over the period."""
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    per_rule = Counter(f.rule_code for f in found)
    refs: dict[str, set[str]] = {}
    for f in found:
        if f.legal_ref:
            refs.setdefault(f.rule_code, set()).add(f.legal_ref)
    by_rule = [(r.code, r.title, ", ".join(sorted(refs.get(r.code) or set(r.legal_ref.values()))), per_rule[r.code])
               for r in catalogue()]
    order = lambda c: sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))  # noqa: E731
    devices = Counter((f.source, f.device_class, f.device_id) for f in found if f.device_id)

    zone = ZoneInfo(tz)
    # Each finding's local day, computed once: 700 000 instants to parse and convert at 20 M.
    days = [(f.rule_code, at.astimezone(zone).date()) for f in found if (at := f.instant)]
    first = (start.astimezone(zone).date() if start else min((d for _, d in days), default=None))
    last = ((end - timedelta(microseconds=1)).astimezone(zone).date() if end else max((d for _, d in days), default=None))
    weeks: list[date] = []
    trend: dict[str, list[int]] = {}
    if first and last and first <= last:
        monday = first - timedelta(days=first.weekday())
        while monday <= last:
            weeks.append(monday)
            monday += timedelta(days=7)
        index = {w: i for i, w in enumerate(weeks)}
        for code, d in days:
            i = index.get(d - timedelta(days=d.weekday()))
            if i is not None:
                trend.setdefault(family(code), [0] * len(weeks))[i] += 1
    return Summary(by_rule=by_rule, by_holder=order(Counter(f.holder for f in found)),
                   by_class=order(Counter(f.device_class or "" for f in found)),
                   worst_devices=[(s, c, d, n) for (s, c, d), n in order(devices)[:top]],
                   total=len(found), weeks=weeks, trend=trend)


# --- evidence: the source rows a finding rests on ------------------------------------------

@dataclass(frozen=True)
class Evidence:
    """One source row, as the warehouse knew it at known-at, and where it came from."""

    kind: str  # recording, audit event, camera, authorisation, event, flight, read, query
    fields: dict
    batch_id: int | None
    location: str  # <file>:<line>, <table>:<key> or seq:<n>
    landed_file: str | None  # the landed copy (var/landing/<source>/<batch>/...)
    landed_sha256: str | None


_HIDDEN = {"batch_id", "location", "ord", "source"}
EVIDENCE_ROWS_MAX = 25  # per finding: a consultation of a busy recording can drag in many events


class _Rows:
    """Rows of one table as known at known-at, fetched by lists of keys: each fetch is one
    query whose filter DuckDB applies while scanning (a join on an OR of keys, or on keys of
    another table, ran for minutes at 5 M events)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, known_at: datetime) -> None:
        self.con, self.known_at = con, known_at

    def fetch(self, kind: str, table: str, where: str, *params) -> list[dict]:  # noqa: ANN002
        """``params`` are $2, $3...: a source name, or lists of keys (none: nothing to fetch)."""
        lists = [p for p in params if isinstance(p, (list, set))]
        if any(not p for p in lists):
            return []
        import json

        sql = (f"SELECT to_json(t) AS row FROM {table}_at($1) t WHERE {where} "
               "ORDER BY t.batch_id, t.location")
        args = [sorted(set(p)) if isinstance(p, (list, set)) else p for p in params]
        out = []
        for (row,) in self.con.execute(sql, [self.known_at, *args]).fetchall():
            r = json.loads(row)
            out.append({"_kind": kind, **r})
        return out


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _gap(f: Finding) -> tuple[int | None, int | None]:
    """The numbers just before and after a LOG-01 gap (`<source>:<first>-<last>`)."""
    if f.rule_code != "LOG-01" or ":" not in f.subject_id:
        return None, None
    first, _, last = f.subject_id.rsplit(":", 1)[1].partition("-")
    a, b = _int(first), _int(last)
    return (a - 1 if a is not None else None), (b + 1 if b is not None else None)


def _vms(rows: _Rows, source: str, found: list[Finding]) -> dict:
    logs = {n for f in found for n in (_int(f.subject_id), *_gap(f)) if n is not None}
    audit = rows.fetch("audit event", "vms_audit_log", "t.source = $2 AND list_contains($3, t.log_id)", source, list(logs))
    by_log = {a["log_id"]: a for a in audit}
    recording_ids = {f.subject_id for f in found} | {a["recording_id"] for a in audit if a.get("recording_id")}
    recordings = rows.fetch("recording", "vms_recordings", "t.source = $2 AND list_contains($3, t.recording_id)",
                            source, list(recording_ids))
    by_rec = {r["recording_id"]: r for r in recordings}
    camera_ids = {x["camera_id"] for x in audit + recordings if x.get("camera_id")}
    cameras = {c["camera_id"]: c for c in rows.fetch("camera", "vms_cameras", "t.source = $2 AND list_contains($3, t.camera_id)",
                                                       source, list(camera_ids))}
    refs = {c["authorisation_ref"] for c in cameras.values() if c.get("authorisation_ref")}
    auths = {a["authorisation_ref"]: a for a in rows.fetch("authorisation", "authorisations",
                                                             "list_contains($2, t.authorisation_ref)", list(refs))}
    out = {}
    for f in found:
        lo, hi = _gap(f)
        own = [by_log[n] for n in (_int(f.subject_id), lo, hi) if n in by_log]
        recs = [by_rec[r] for r in dict.fromkeys([f.subject_id] + [a.get("recording_id") for a in own]) if r in by_rec]
        cams = [cameras[c] for c in dict.fromkeys([x.get("camera_id") for x in own + recs]) if c in cameras]
        out[f.key] = own + recs + cams + [auths[c["authorisation_ref"]] for c in cams if c.get("authorisation_ref") in auths]
    return out


def _bodycam(rows: _Rows, source: str, found: list[Finding]) -> dict:
    ids = [f.subject_id for f in found]
    seqs = [n for f in found for n in _gap(f) if n is not None]
    direct = rows.fetch("event", "bodycam_events", "t.source = $2 AND (list_contains($3, t.event_id) "
                        "OR list_contains($3, t.evidence_id) OR list_contains($4, t.seq))", source, ids, seqs or [-1])
    evidence_ids = {e["evidence_id"] for e in direct if e.get("evidence_id") and e["event_id"] in set(ids)}
    related = rows.fetch("event", "bodycam_events", "t.source = $2 AND list_contains($3, t.evidence_id)",
                         source, list(evidence_ids))
    events = {e["event_id"]: e for e in direct + related}
    out = {}
    for f in found:
        lo, hi = _gap(f)
        own = events.get(f.subject_id)
        evid = own.get("evidence_id") if own else f.subject_id
        mine = [e for e in events.values() if e["event_id"] == f.subject_id or (evid and e.get("evidence_id") == evid)
                or (e.get("seq") is not None and e["seq"] in (lo, hi))]
        out[f.key] = sorted(mine, key=lambda e: (e.get("seq") is None, e.get("seq") or 0, e["event_id"]))
    return out


def _drone(rows: _Rows, source: str, found: list[Finding]) -> dict:
    ids = [f.subject_id for f in found]
    flights = rows.fetch("flight", "drone_flights", "t.source = $2 AND (list_contains($3, t.flight_id) "
                         "OR list_has_any($3, json_extract_string(t.recordings, '$[*].recording_id')) "
                         "OR list_has_any($3, json_extract_string(t.consultations, '$[*].event_id')))", source, ids)
    refs = {x["authorisation_ref"] for x in flights if x.get("authorisation_ref")}
    auths = {a["authorisation_ref"]: a for a in rows.fetch("authorisation", "authorisations",
                                                             "list_contains($2, t.authorisation_ref)", list(refs))}

    def names(flight: dict, field: str, key: str) -> set:
        value = flight.get(field)
        if isinstance(value, str):
            import json

            try:
                value = json.loads(value)
            except ValueError:
                return set()
        return {x.get(key) for x in value or [] if isinstance(x, dict)}

    # What each flight answers to, read once (not once per finding: 400 x 400 JSON parses).
    named = [(x, {x["flight_id"]} | names(x, "recordings", "recording_id") | names(x, "consultations", "event_id"))
             for x in flights]
    out = {}
    for f in found:
        mine = [x for x, ids in named if f.subject_id in ids]
        out[f.key] = mine + [auths[x["authorisation_ref"]] for x in mine if x.get("authorisation_ref") in auths]
    return out


def _lapi(rows: _Rows, source: str, found: list[Finding]) -> dict:
    ids = [f.subject_id for f in found]
    queries = {q["event_id"]: q for q in rows.fetch("query", "lapi_queries", "t.source = $2 AND list_contains($3, t.event_id)",
                                                     source, ids)}
    read_ids = set(ids) | {q["read_id"] for q in queries.values() if q.get("read_id")}
    reads = {r["read_id"]: r for r in rows.fetch("read", "lapi_reads", "t.source = $2 AND list_contains($3, t.read_id)",
                                                  source, list(read_ids))}
    out = {}
    for f in found:
        q = queries.get(f.subject_id)
        out[f.key] = ([q] if q else []) + [reads[r] for r in dict.fromkeys([f.subject_id, q and q.get("read_id")])
                                           if r in reads]
    return out


_BY_KIND = {"vms_sql": _vms, "bodycam_api": _bodycam, "drone_files": _drone, "lapi_files": _lapi}


def evidence(con: duckdb.DuckDBPyConnection, settings, found: list[Finding],  # noqa: ANN001
             known_at: datetime) -> dict[tuple[str, str, str], list[Evidence]]:
    """The source rows each finding rests on, as known at ``known_at``: the audit event or
    consultation, the recording, its camera and register entry, the body-camera events of the
    evidence, the flight line, the LAPI read and query; for a LOG-01 gap, the rows around it.
    A few queries per source whatever the number of findings."""
    kinds = {s.name: s.kind for s in settings.sources}
    rows = _Rows(con, known_at)
    per_source: dict[str, list[Finding]] = {}
    for f in found:
        per_source.setdefault(f.source, []).append(f)
    raw: dict[tuple[str, str, str], list[dict]] = {}
    for source, items in per_source.items():
        gather = _BY_KIND.get(kinds.get(source, ""))
        if gather:
            raw.update(gather(rows, source, items))
    landed = _landed_files(con, {(r.get("batch_id"), r.get("location")) for rs in raw.values() for r in rs},
                           integrity.landing_folder(settings))
    out: dict[tuple[str, str, str], list[Evidence]] = {}
    for f in found:
        items = []
        for r in raw.get(f.key, [])[:EVIDENCE_ROWS_MAX]:
            fields = {k: v for k, v in r.items() if not k.startswith("_") and k not in _HIDDEN and v not in (None, "")}
            path, sha = landed.get((r.get("batch_id"), r.get("location")), (None, None))
            items.append(Evidence(r["_kind"], fields, r.get("batch_id"), r.get("location") or "", path, sha))
        out[f.key] = items
    return out


def _landed_files(con: duckdb.DuckDBPyConnection, where: set[tuple[int, str]], landing: Path) -> dict:
    """The landed file of each (batch, location): `<file>:<line>` names the file; a VMS
    `<table>:<key>` was landed as `<table>.jsonl`; a body-camera `seq:n`, in the batch's pages.
    Its path is where it is now, under ``landing``: the one recorded names the folder it was
    landed in, another once the warehouse's folder has moved (as `vigie verify` maps it)."""
    where = {(b, loc) for b, loc in where if b is not None and loc}
    if not where:
        return {}
    batches = sorted({b for b, _ in where})
    files = con.execute("SELECT batch_id, source, name, landed_path, sha256 FROM main.landed_files WHERE batch_id IN "
                        "(SELECT unnest($1))", [batches]).fetchall()
    by_batch: dict[int, dict[str, tuple[str, str]]] = {}
    for b, source, name, path, sha in files:
        by_batch.setdefault(b, {})[name] = (str(integrity.landed_file(landing, source, b, path)), sha)
    out = {}
    for b, loc in where:
        names = by_batch.get(b, {})
        head = loc.rsplit(":", 1)[0]
        hit = names.get(head) or next((v for n, v in names.items() if n.split(".")[0] == head), None)
        if hit is None and len(names) == 1:
            hit = next(iter(names.values()))
        out[(b, loc)] = hit or (None, None)
    return out


# --- what the report could not see, and what it rests on ------------------------------------

@dataclass(frozen=True)
class SourceState:
    name: str
    kind: str
    holder: str
    last_batch: int | None  # the last batch loaded as known at known-at
    last_committed: datetime | None
    received: int  # over the batches committed in the period (all, without a period)
    loaded: int
    duplicates: int
    quarantined: int
    failed: int  # failed batches in the period
    last_error: str | None

    @property
    def silent(self) -> bool:
        """Nothing loaded in the period: the report cannot see this source there."""
        return self.loaded == 0 and self.quarantined == 0 and self.duplicates == 0


def sources(con: duckdb.DuckDBPyConnection, settings, selection: Selection) -> list[SourceState]:  # noqa: ANN001
    """Per configured source (within the selection's source filter): its last batch as known
    at known-at, and its batches of the period: counts, failures, the last error."""
    start, end = selection.bounds(settings.timezone)
    rows = {r[0]: r[1:] for r in con.execute("""
        SELECT source,
               max(batch_id) FILTER (WHERE status = 'loaded'),
               max(committed_at) FILTER (WHERE status = 'loaded'),
               coalesce(sum(received) FILTER (WHERE in_period AND status = 'loaded'), 0),
               coalesce(sum(loaded) FILTER (WHERE in_period AND status = 'loaded'), 0),
               coalesce(sum(duplicates) FILTER (WHERE in_period AND status = 'loaded'), 0),
               coalesce(sum(quarantined) FILTER (WHERE in_period AND status = 'loaded'), 0),
               count(*) FILTER (WHERE in_period AND status = 'failed'),
               arg_max(error, started_at) FILTER (WHERE status = 'failed')
        FROM (SELECT *, coalesce(committed_at, started_at) AS at,
                     ($2::TIMESTAMPTZ IS NULL OR coalesce(committed_at, started_at) >= $2)
                     AND ($3::TIMESTAMPTZ IS NULL OR coalesce(committed_at, started_at) < $3) AS in_period
              FROM main.batches WHERE coalesce(committed_at, started_at) <= $1)
        GROUP BY source""", [selection.known_at, start, end]).fetchall()}
    out = []
    for s in settings.sources:
        if selection.sources and s.name not in selection.sources:
            continue
        r = rows.get(s.name) or (None, None, 0, 0, 0, 0, 0, None)
        out.append(SourceState(s.name, s.kind, s.holder or s.name, *r))
    return out


def quarantine(con: duckdb.DuckDBPyConnection, selection: Selection, limit: int | None = None,
               source_names: Iterable[str] | None = None) -> tuple[int, list[tuple]]:
    """Rows quarantined as known at known-at (the selected sources): how many, and the first
    ``limit`` of them (source, kind, ref, location, reason, batch), sorted as `vigie quarantine`."""
    names = list(selection.sources or source_names or [])
    where = "WHERE q.batch_id IN (SELECT batch_id FROM main.known_batch_ids($1))" + (
        " AND q.source IN (SELECT unnest($2))" if names else "")
    params: list = [selection.known_at] + ([names] if names else [])
    total = con.execute(f"SELECT count(*) FROM main.quarantine q {where}", params).fetchone()[0]
    rows = con.execute(f"SELECT q.source, q.kind, q.ref, q.location, q.reason, q.batch_id FROM main.quarantine q {where} "
                       f"ORDER BY q.source, q.location" + (f" LIMIT {int(limit)}" if limit else ""), params).fetchall()
    return total, rows


def limits_in_force(con: duckdb.DuckDBPyConnection, as_of: datetime) -> list[tuple]:
    """The version of each limit, purpose list and justification in force at as-of:
    (name, value, unit, legal reference, valid from). What the rules read, from the warehouse."""
    return con.execute("""
        SELECT name, CAST(value AS VARCHAR), unit, legal_ref, valid_from FROM main.rule_limits
        WHERE valid_from <= $1 QUALIFY row_number() OVER (PARTITION BY name ORDER BY valid_from DESC) = 1
        UNION ALL
        SELECT 'purposes ' || device_class, string_agg(code, ' ' ORDER BY code), 'codes', any_value(legal_ref), valid_from
        FROM main.rule_purposes p
        WHERE valid_from = (SELECT max(valid_from) FROM main.rule_purposes x
                            WHERE x.device_class = p.device_class AND x.valid_from <= $1)
        GROUP BY device_class, valid_from
        UNION ALL
        SELECT name, value, 'code', legal_ref, valid_from FROM main.rule_values
        WHERE valid_from <= $1 QUALIFY row_number() OVER (PARTITION BY name ORDER BY valid_from DESC) = 1
        ORDER BY 1""", [as_of]).fetchall()
