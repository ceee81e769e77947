"""The questions inspectors ask, as functions over a read-only warehouse connection.

The report, the Oversight view and the alert e-mails call these and nothing else, so the
numbers on a page, in a filed report and in an e-mail are the same numbers. Findings come
from ``vigie.rules.evaluate`` (the same function as ``vigie findings``); the selection of
interface.md ("Inspectors") is applied to them here.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from typing import Iterable

import duckdb

from vigie.config import parse_instant
from vigie.rules import COLUMNS, catalogue

REPORT_COLUMNS = COLUMNS + ["holder"]  # the findings CSV's columns, then the holder


@dataclass(frozen=True)
class Finding:
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
        return [getattr(self, c) for c in REPORT_COLUMNS]


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


def findings(con: duckdb.DuckDBPyConnection, settings, selection: Selection) -> list[Finding]:  # noqa: ANN001
    """The findings of ``vigie findings`` for the selection's as-of and known-at, restricted
    to its period and filters, sorted by rule_code, subject_id, source (code-point order)."""
    from vigie import rules

    rows = rules.evaluate(con, settings, selection.as_of, selection.known_at)
    start, end = selection.bounds(settings.timezone)
    out = [Finding(*("" if v is None else str(v) for v in r[:9])) for r in rows]
    return [f for f in out if selection.matches(f, start, end)]


def findings_csv(found: Iterable[Finding]) -> bytes:
    """The report's CSV: the findings columns plus ``holder``; the same bytes in every language."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(REPORT_COLUMNS)
    writer.writerows(f.row() for f in found)
    return buf.getvalue().encode("utf-8")


def findings_sha256(found: Iterable[Finding]) -> str:
    """``findings-sha256``: the SHA-256 of the bytes ``vigie report --format csv`` writes."""
    return hashlib.sha256(findings_csv(found)).hexdigest()


# --- summaries ---------------------------------------------------------------------------

FAMILIES = {"RET": "retention", "ACC": "access", "PUR": "purpose", "AUT": "authorisation",
            "PRO": "prohibited processing", "LOG": "logging"}


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
    local_days = [f.instant.astimezone(zone).date() for f in found if f.instant]
    first = (start.astimezone(zone).date() if start else min(local_days, default=None))
    last = ((end - timedelta(microseconds=1)).astimezone(zone).date() if end else max(local_days, default=None))
    weeks: list[date] = []
    trend: dict[str, list[int]] = {}
    if first and last and first <= last:
        monday = first - timedelta(days=first.weekday())
        while monday <= last:
            weeks.append(monday)
            monday += timedelta(days=7)
        index = {w: i for i, w in enumerate(weeks)}
        for f in found:
            if f.instant:
                d = f.instant.astimezone(zone).date()
                i = index.get(d - timedelta(days=d.weekday()))
                if i is not None:
                    trend.setdefault(family(f.rule_code), [0] * len(weeks))[i] += 1
    return Summary(by_rule=by_rule, by_holder=order(Counter(f.holder for f in found)),
                   by_class=order(Counter(f.device_class or "" for f in found)),
                   worst_devices=[(s, c, d, n) for (s, c, d), n in order(devices)[:top]],
                   total=len(found), weeks=weeks, trend=trend)
