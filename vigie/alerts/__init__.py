"""Alerts (issue #10): plan what is new, record it as pending, send it, record it as sent.

    process(con, settings, as_of)   # after an evaluation: plan + record + deliver
    deliver(con, settings)          # `vigie alerts --send`: deliver what is pending

Both run on the warehouse writer connection (the ledger lives in the warehouse, see
ledger.py), so two runs can never plan or send the same alert at once.

At least once, never lost: an alert is committed as pending before it is sent and marked
sent after the channel accepted it. A crash in between leaves it pending, and the next
delivery sends it again with the same alert id (``Message-ID: <alert_id@vigie>``,
``X-Vigie-Alert-Id``), so the receiver can recognise the repeat. A channel that is down is
tried ``max_attempts`` times with doubling waits from ``backoff_s``; what is still
undelivered stays pending for the next run. A refusal (webhook 4xx, SMTP 5xx) is final:
the alert is ``failed`` with its reason.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

import duckdb

from vigie.alerts import ledger, routing
from vigie.alerts.channels import EmailChannel, Permanent, Transient, WebhookChannel, scrub
from vigie.alerts.ledger import Alert

log = logging.getLogger("vigie.alerts")


@dataclass
class AlertReport:
    recorded: list[Alert] = field(default_factory=list)  # new alerts of this evaluation
    sent: list[Alert] = field(default_factory=list)
    pending: list[Alert] = field(default_factory=list)  # still to send (a later run, `vigie alerts --send`)
    failed: list[Alert] = field(default_factory=list)

    def lines(self) -> list[str]:
        """How many went to whom, for a terminal or a task log."""
        out = [f"alerts: {len(self.recorded)} new, {len(self.sent)} sent, {len(self.pending)} pending, "
               f"{len(self.failed)} failed"]
        for (channel, recipient, kind), n in sorted(Counter((a.channel, a.recipient, a.kind) for a in self.sent).items()):
            out.append(f"  sent {n} {kind} alert(s) to {recipient} ({channel})")
        for a in self.pending:
            out.append(f"  pending {a.kind} alert {a.alert_id} to {a.recipient} ({a.channel}): {a.last_error or 'not sent yet'}")
        for a in self.failed:
            out.append(f"  failed {a.kind} alert {a.alert_id} to {a.recipient} ({a.channel}): {a.last_error}")
        return out


def current_findings(con: duckdb.DuckDBPyConnection, settings, as_of: datetime) -> list:  # noqa: ANN001
    """The findings of `vigie findings --as-of as_of` (the run's stored evaluation when it is that one)."""
    from vigie.present.query import Selection, findings

    now = datetime.now(timezone.utc)
    return findings(con, settings, Selection(as_of=as_of, known_at=max(now, as_of)))


def process(con: duckdb.DuckDBPyConnection, settings, as_of: datetime, *, send: bool = True,  # noqa: ANN001
            now: datetime | None = None, sleep: Callable[[float], None] = time.sleep) -> AlertReport:
    """Plan the new alerts of the evaluation as of ``as_of``, record them as pending, and
    (unless ``send`` is false) deliver everything pending."""
    report = AlertReport()
    if settings.alerts is None:
        return report
    found = current_findings(con, settings, as_of)
    report.recorded = routing.plan(con, settings, found, as_of, now)
    ledger.record(con, report.recorded)
    for a in report.recorded:
        log.info("alert %s recorded: %s to %s (%s), %d finding(s)", a.alert_id, a.kind, a.recipient, a.channel,
                 len(a.findings))
    if send:
        deliver(con, settings, report, sleep=sleep)
    else:
        report.pending = ledger.pending(con)
    return report


def open_channels(settings) -> dict:  # noqa: ANN001
    cfg = settings.alerts
    out: dict = {}
    if cfg and cfg.smtp:
        out["email"] = EmailChannel(cfg.smtp)
    if cfg and cfg.webhook:
        out["webhook"] = WebhookChannel(cfg.webhook)
    return out


def _send(channel, alert: Alert, settings) -> None:  # noqa: ANN001
    if alert.channel == "email":
        from vigie.alerts.render import email

        channel.send(email(alert, settings))
    else:
        channel.send(alert.alert_id, alert.payload.encode("utf-8"))


def deliver(con: duckdb.DuckDBPyConnection, settings, report: AlertReport | None = None, *,  # noqa: ANN001
            sleep: Callable[[float], None] = time.sleep) -> AlertReport:
    """Send every pending alert: bounded retries with backoff; a channel that stays down is
    left for a later run (its alerts stay pending); a refusal is recorded as failed."""
    report = report or AlertReport()
    if settings.alerts is None:
        return report
    cfg = settings.alerts
    chans = open_channels(settings)
    down: dict[str, str] = {}
    for a in ledger.pending(con):
        channel = chans.get(a.channel)
        if channel is None:
            ledger.note(con, a, f"the {a.channel} channel is not configured")
            report.pending.append(a)
            continue
        if a.channel in down:  # do not wait again for a channel that just stayed down
            if not a.last_error:
                ledger.note(con, a, f"not tried: the {a.channel} channel is down ({down[a.channel]})")
            report.pending.append(a)
            continue
        for attempt in range(cfg.max_attempts):
            try:
                _send(channel, a, settings)
            except Permanent as exc:
                ledger.mark_attempt(con, a, str(exc), failed=True)
                log.error("alert %s to %s (%s) refused: %s", a.alert_id, a.recipient, a.channel, exc)
                report.failed.append(a)
                break
            except Exception as exc:  # noqa: BLE001  Transient, or anything unforeseen: keep it pending
                text = str(exc) if isinstance(exc, Transient) else f"{type(exc).__name__}: {exc}"
                text = scrub(text, channel.secrets())
                ledger.mark_attempt(con, a, text)
                log.warning("alert %s to %s (%s), attempt %d of %d: %s", a.alert_id, a.recipient, a.channel,
                            attempt + 1, cfg.max_attempts, text)
                if attempt + 1 < cfg.max_attempts:
                    sleep(cfg.backoff_s * 2 ** attempt)
                else:
                    down[a.channel] = text
                    report.pending.append(a)
            else:
                ledger.mark_sent(con, a)
                log.info("alert %s sent: %s to %s (%s)", a.alert_id, a.kind, a.recipient, a.channel)
                report.sent.append(a)
                break
    return report


__all__ = ["AlertReport", "process", "deliver", "open_channels", "current_findings"]
