"""The alert ledger (tables ``alerts`` and ``alert_findings``, migration 008).

It lives in the warehouse writer file and is written only under the writer lock, so the
check "was this finding already alerted to this recipient?" and the insert that follows
cannot race another process, and the ledger is published with the findings it speaks of.
Every write here commits before the caller goes on: an alert is on record as pending before
anything is sent, and as sent only once the channel has accepted it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

import duckdb

COLUMNS = ["alert_id", "kind", "channel", "recipient", "holder", "topic", "findings", "status", "attempts",
           "last_error", "as_of", "created_at", "sent_at"]
STATUSES = ("pending", "sent", "failed")


@dataclass
class Alert:
    """One message to one recipient on one channel."""

    alert_id: str
    kind: str  # immediate | digest | escalation | pipeline
    channel: str  # email | webhook
    recipient: str
    holder: str | None
    topic: str | None
    as_of: datetime
    created_at: datetime
    payload: str  # the webhook body; e-mails are rendered from it
    findings: list = field(default_factory=list)  # vigie.present.query.Finding
    status: str = "pending"
    attempts: int = 0
    last_error: str | None = None


def _now() -> datetime:
    return datetime.now(timezone.utc)


def record(con: duckdb.DuckDBPyConnection, alerts: list[Alert]) -> None:
    """Record new alerts as pending with their findings, in one committed transaction."""
    if not alerts:
        return
    con.execute("BEGIN")
    try:
        for a in alerts:
            con.execute("INSERT INTO main.alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, NULL, NULL, NULL)",
                        [a.alert_id, a.kind, a.channel, a.recipient, a.holder, a.topic, a.as_of, a.created_at, a.payload])
            rows = [[a.alert_id, a.kind, a.channel, a.recipient, f.rule_code, f.source, f.subject_id, f.occurred_at or None]
                    for f in a.findings]
            if rows:
                con.executemany("INSERT INTO main.alert_findings VALUES (?, ?, ?, ?, ?, ?, ?, ?::TIMESTAMPTZ)", rows)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def alerted_keys(con: duckdb.DuckDBPyConnection, kind: str, channel: str, recipient: str) -> set[tuple[str, str, str]]:
    """The findings (rule, source, subject) already alerted to that recipient on that channel for that kind."""
    return set(con.execute("SELECT rule_code, source, subject_id FROM main.alert_findings "
                           "WHERE kind = ? AND channel = ? AND recipient = ?", [kind, channel, recipient]).fetchall())


def has_topic(con: duckdb.DuckDBPyConnection, kind: str, channel: str, recipient: str, topic: str) -> bool:
    return con.execute("SELECT count(*) FROM main.alerts WHERE kind = ? AND channel = ? AND recipient = ? AND topic = ?",
                       [kind, channel, recipient, topic]).fetchone()[0] > 0


def has_alert(con: duckdb.DuckDBPyConnection, alert_id: str, channel: str, recipient: str) -> bool:
    return con.execute("SELECT count(*) FROM main.alerts WHERE alert_id = ? AND channel = ? AND recipient = ?",
                       [alert_id, channel, recipient]).fetchone()[0] > 0


def first_alerted(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str, str], datetime]:
    """When each finding was first alerted (the as-of of its first alert, any kind but pipeline)."""
    rows = con.execute("""SELECT f.rule_code, f.source, f.subject_id, min(a.as_of)
                          FROM main.alert_findings f JOIN main.alerts a
                            ON a.alert_id = f.alert_id AND a.channel = f.channel AND a.recipient = f.recipient
                          WHERE f.kind IN ('immediate', 'digest') GROUP BY ALL""").fetchall()
    return {(r, s, sub): at for r, s, sub, at in rows}


def pending(con: duckdb.DuckDBPyConnection) -> list[Alert]:
    rows = con.execute("""SELECT alert_id, kind, channel, recipient, holder, topic, as_of, created_at, payload, status,
                                 attempts, last_error
                          FROM main.alerts WHERE status = 'pending' ORDER BY created_at, alert_id, recipient""").fetchall()
    return [Alert(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], status=r[9], attempts=r[10], last_error=r[11])
            for r in rows]


def _where(a: Alert) -> list:
    return [a.alert_id, a.channel, a.recipient]


def mark_sent(con: duckdb.DuckDBPyConnection, a: Alert) -> None:
    a.attempts += 1
    a.status = "sent"
    con.execute("UPDATE main.alerts SET status = 'sent', attempts = ?, last_attempt_at = ?, sent_at = ? "
                "WHERE alert_id = ? AND channel = ? AND recipient = ?", [a.attempts, _now(), _now(), *_where(a)])


def mark_attempt(con: duckdb.DuckDBPyConnection, a: Alert, error: str, failed: bool = False) -> None:
    """A failed attempt: pending (to be retried, within the run or later) or failed (permanent)."""
    a.attempts += 1
    a.last_error = error
    a.status = "failed" if failed else "pending"
    con.execute("UPDATE main.alerts SET status = ?, attempts = ?, last_error = ?, last_attempt_at = ? "
                "WHERE alert_id = ? AND channel = ? AND recipient = ?", [a.status, a.attempts, error, _now(), *_where(a)])


def note(con: duckdb.DuckDBPyConnection, a: Alert, error: str) -> None:
    """Why an alert was not tried in this run (its channel stayed down, or is not configured)."""
    a.last_error = error
    con.execute("UPDATE main.alerts SET last_error = ? WHERE alert_id = ? AND channel = ? AND recipient = ?",
                [error, *_where(a)])


def rows(con: duckdb.DuckDBPyConnection, status: str | None = None) -> list[tuple]:
    """The ledger as `vigie alerts` shows it, oldest first."""
    sql = f"SELECT {', '.join(COLUMNS)} FROM oversight.alerts"
    params: list = []
    if status:
        sql += " WHERE status = ?"
        params.append(status)
    return con.execute(sql + " ORDER BY created_at, alert_id, channel, recipient", params).fetchall()
