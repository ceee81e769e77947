"""Who gets which alert (issue #10, interface.md "Alerts").

- immediate: new RET-01, RET-04 and ACC-03 findings, one message per holder per run and per
  recipient of that holder (and of the control body when ``copy_immediate``);
- digest: once a day (the local day of the run's as-of), every new finding of any rule to
  the control body;
- escalation: a RET-01/RET-04 finding still open (the recording still present at the run's
  as-of) ``escalate_after_days`` after it was first alerted, to the control body, per holder;
- pipeline: feed silence, a source failing three runs in a row, a batch whose quarantine
  rate is above ``quarantine_rate``, to the operators (else the control body), once per episode.

A finding is alerted once per (kind, channel, recipient): what the ledger already holds is
never planned again, whatever the as-of, so re-runs, backfills and earlier as-ofs send
nothing new. Findings whose ``occurred_at`` is before ``alerts.since`` are never alerted.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from datetime import datetime, time, timedelta, timezone
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

import duckdb

from vigie import health, integrity
from vigie.alerts import ledger
from vigie.alerts.ledger import Alert

IMMEDIATE_RULES = ("RET-01", "RET-04", "ACC-03")
RETENTION_RULES = ("RET-01", "RET-04")
OPEN_MARK = "still present at as-of"  # the retention rules' detail while the recording is kept
CONTROL_BODY = "control body"
OPERATORS = "operators"


def _iso(at: datetime) -> str:
    return at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _parse(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


_DELETED = re.compile(r"deleted (\S+?),")
_AFTER = re.compile(r"consulted after (\S+)")


def lateness(f, as_of: datetime) -> tuple[str | None, float | None]:  # noqa: ANN001
    """(deadline, hours late) for a retention or late-consultation finding, from its data:
    for RET-* the deadline is occurred_at (the end of lawful keeping, grace included) and the
    lateness runs to the deletion or, while still present, to the as-of; for ACC-03 the
    deadline is in the detail and the lateness runs to the consultation."""
    at = f.instant
    if f.rule_code in RETENTION_RULES and at:
        m = _DELETED.search(f.detail or "")
        end = _parse(m.group(1)) if m else as_of
        return _iso(at), round(((end or as_of) - at).total_seconds() / 3600, 1)
    if f.rule_code == "ACC-03" and at:
        m = _AFTER.search(f.detail or "")
        deadline = _parse(m.group(1)) if m else None
        if deadline:
            return _iso(deadline), round((at - deadline).total_seconds() / 3600, 1)
    return None, None


def is_open(f) -> bool:  # noqa: ANN001
    return f.rule_code in RETENTION_RULES and OPEN_MARK in (f.detail or "")


def finding_link(view_url: str | None, f, as_of: datetime) -> str | None:  # noqa: ANN001
    if not view_url:
        return None
    path = "/".join(quote(p, safe="") for p in (f.rule_code, f.source, f.subject_id))
    return f"{view_url}/findings/{path}?{urlencode({'as_of': _iso(as_of)})}"


def finding_json(f, as_of: datetime, view_url: str | None) -> dict:  # noqa: ANN001
    deadline, late = lateness(f, as_of)
    out = {c: getattr(f, c) for c in ("rule_code", "source", "device_class", "device_id", "subject_id", "occurred_at",
                                      "detail", "legal_ref", "holder")}
    out["deadline"], out["late_hours"] = deadline, late
    link = finding_link(view_url, f, as_of)
    if link:
        out["link"] = link
    return out


def alert_id(kind: str, channel: str, recipient: str, topic: str | None, keys: list[tuple]) -> str:
    digest = hashlib.sha256("\0".join([kind, channel, recipient, topic or ""] + ["\x1f".join(k) for k in sorted(keys)])
                            .encode("utf-8")).hexdigest()
    return digest[:32]


def _make(kind: str, channel: str, recipient: str, holder: str | None, topic: str | None, found: list,
          as_of: datetime, now: datetime, view_url: str | None, problem: dict | None = None,
          chain_head: dict | None = None) -> Alert:
    aid = alert_id(kind, channel, recipient, topic, [f.key for f in found] if found else [(topic or "",)])
    body: dict = {"alert_id": aid, "kind": kind, "holder": holder,
                  "findings": [finding_json(f, as_of, view_url) for f in found],
                  "generated_at": _iso(now), "as_of": _iso(as_of)}
    if problem:
        body["problem"] = problem
    if chain_head:  # the digest carries the warehouse's chain head: a copy of it in a mailbox (issue #14)
        body["chain_head"] = chain_head
    payload = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return Alert(aid, kind, channel, recipient, holder, topic, as_of, now, payload, list(found))


def _channels(r, who: str) -> list[tuple[str, str]]:  # noqa: ANN001
    """(channel, recipient) pairs of a Recipients block; the webhook is one recipient per audience."""
    out = [("email", a) for a in r.email]
    if r.webhook:
        out.append(("webhook", f"webhook:{who}"))
    return out


def plan(con: duckdb.DuckDBPyConnection, settings, found: list, as_of: datetime,  # noqa: ANN001
         now: datetime | None = None) -> list[Alert]:
    """The new alerts of this evaluation, not recorded yet."""
    cfg = settings.alerts
    now = now or datetime.now(timezone.utc)
    zone = ZoneInfo(settings.timezone)
    since = datetime.combine(cfg.since, time(0), tzinfo=zone) if cfg.since else None

    def eligible(f) -> bool:  # noqa: ANN001
        at = f.instant
        return since is None or (at is not None and at >= since)

    found = [f for f in found if eligible(f)]
    out: list[Alert] = []

    def new_for(kind: str, channel: str, recipient: str, candidates: list) -> list:
        done = ledger.alerted_keys(con, kind, channel, recipient)
        return [f for f in candidates if f.key not in done]

    # immediate, per holder
    by_holder: dict[str, list] = defaultdict(list)
    for f in found:
        if f.rule_code in IMMEDIATE_RULES:
            by_holder[f.holder].append(f)
    for holder in sorted(by_holder):
        audiences = []
        if holder in cfg.holders:
            audiences.append(_channels(cfg.holders[holder], holder))
        if cfg.control_body and cfg.control_body.copy_immediate:
            audiences.append(_channels(cfg.control_body, CONTROL_BODY))
        for pairs in audiences:
            for channel, recipient in pairs:
                new = new_for("immediate", channel, recipient, by_holder[holder])
                if new:
                    out.append(_make("immediate", channel, recipient, holder, None, new, as_of, now, cfg.view_url))

    cb = cfg.control_body
    if cb:
        # digest: once per local day of the as-of, what the control body has not had in a digest
        day = as_of.astimezone(zone).date().isoformat()
        chain_head = integrity.head(con)
        if cb.digest:
            for channel, recipient in _channels(cb, CONTROL_BODY):
                if ledger.has_topic(con, "digest", channel, recipient, day):
                    continue
                new = new_for("digest", channel, recipient, found)
                if new:
                    out.append(_make("digest", channel, recipient, None, day, new, as_of, now, cfg.view_url,
                                     chain_head=chain_head))
        # escalation: retention findings still open N days after they were first alerted
        first = ledger.first_alerted(con)
        due = [f for f in found if is_open(f) and f.key in first
               and as_of >= first[f.key] + timedelta(days=cfg.escalate_after_days)]
        by_holder = defaultdict(list)
        for f in due:
            by_holder[f.holder].append(f)
        for holder in sorted(by_holder):
            for channel, recipient in _channels(cb, CONTROL_BODY):
                new = new_for("escalation", channel, recipient, by_holder[holder])
                if new:
                    out.append(_make("escalation", channel, recipient, holder, None, new, as_of, now, cfg.view_url))

    out += plan_pipeline(con, settings, now, as_of)
    return out


def pipeline_problems(con: duckdb.DuckDBPyConnection, settings, now: datetime) -> list[dict]:  # noqa: ANN001
    """Feed silence, failing runs and quarantine rates, each with the topic that makes it one episode."""
    cfg = settings.alerts
    problems = []
    for h in health.source_health(con, settings, now):
        if h.silent:
            problems.append({"type": "silence", "source": h.source, "topic": f"silence:{h.source}:{h.last_data_batch}",
                             "since": _iso(h.last_data_at) if h.last_data_at else None,
                             "expected_every": h.expected_every,
                             "detail": f"no new rows for longer than {h.expected_every}"})
        if h.failing_runs >= health.FAILING_RUNS:
            problems.append({"type": "failing", "source": h.source, "topic": f"failing:{h.source}:{h.first_failed_batch}",
                             "runs": h.failing_runs, "detail": h.last_error or "",
                             "since": _iso(h.last_error_at) if h.last_error_at else None})
    since = (datetime.combine(cfg.since, time(0), tzinfo=ZoneInfo(settings.timezone)) if cfg.since
             else datetime(1970, 1, 1, tzinfo=timezone.utc))
    names = [s.name for s in settings.sources]
    if names:
        rows = con.execute(f"""SELECT batch_id, source, received, quarantined, committed_at FROM main.batches
                               WHERE status = 'loaded' AND received > 0 AND committed_at >= ?
                                 AND quarantined > ? * received AND source IN ({', '.join('?' * len(names))})
                               ORDER BY batch_id""", [since, cfg.quarantine_rate, *names]).fetchall()
        for batch_id, source, received, quarantined, committed in rows:
            problems.append({"type": "quarantine", "source": source, "topic": f"quarantine:{source}:{batch_id}",
                             "batch_id": batch_id, "received": received, "quarantined": quarantined,
                             "rate": round(quarantined / received, 4), "threshold": cfg.quarantine_rate,
                             "since": _iso(committed),
                             "detail": f"batch {batch_id}: {quarantined} of {received} rows quarantined"})
    return problems


def plan_pipeline(con: duckdb.DuckDBPyConnection, settings, now: datetime, as_of: datetime) -> list[Alert]:  # noqa: ANN001
    cfg = settings.alerts
    audience = cfg.operators or cfg.control_body
    if audience is None:
        return []
    who = OPERATORS if cfg.operators else CONTROL_BODY
    out = []
    for p in pipeline_problems(con, settings, now):
        topic = p.pop("topic")
        for channel, recipient in _channels(audience, who):
            if not ledger.has_topic(con, "pipeline", channel, recipient, topic):
                out.append(_make("pipeline", channel, recipient, None, topic, [], as_of, now, None, problem=p))
    return out
