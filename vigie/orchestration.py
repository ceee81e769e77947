"""What the Airflow DAGs run: thin wrappers over the pipeline, testable without a scheduler.

The DAG file (dags/vigie_dags.py) only declares; it imports this module's light part
(`dag_specs`) at parse time. Everything heavy (DuckDB, Great Expectations) is imported
inside the task callables.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

POOL = "vigie_warehouse"  # one slot: tasks that write the warehouse never run two at a time
WRITER_WAIT_S = 900  # beyond the pool, the writer lock also waits for a CLI load to finish

log = logging.getLogger("vigie")


@dataclass(frozen=True)
class SourceSpec:
    name: str
    kind: str
    dag_id: str
    asset_uri: str


def config_path() -> Path:
    """The deployment's vigie.yml, as for the CLI: $VIGIE_CONFIG, else ./vigie.yml."""
    from vigie.config import find_config

    return find_config(None)


def dag_specs(config: Path) -> tuple[Path, list[SourceSpec]]:
    """The warehouse and one spec per configured source; cheap enough for DAG parsing."""
    from vigie.config import load_settings

    settings = load_settings(config)
    specs = [
        SourceSpec(s.name, s.kind, "vigie_source_" + re.sub(r"[^A-Za-z0-9_.-]", "_", s.name),
                   f"vigie://warehouse/{s.name}")
        for s in settings.sources
    ]
    return settings.warehouse, specs


def ingest_source(config: str, source: str) -> dict:
    """Pull one source into the warehouse. Raises on failure, so Airflow retries it; a retry
    is safe, because a load that failed kept nothing and its cursor did not move."""
    from vigie import pipeline
    from vigie.config import load_settings
    from vigie.report import log_lines

    settings = load_settings(config)
    report = pipeline.run(settings, [source], evaluate=False, wait_s=WRITER_WAIT_S)
    for line in log_lines(report):
        log.info(line)
    failed = report.failed
    if failed:
        raise RuntimeError(failed[0].error.splitlines()[0])
    counts = report.sources[0].counts
    return {"source": source, "batch_id": report.sources[0].batch_id, "received": counts.received,
            "loaded": counts.loaded, "duplicates": counts.duplicates, "quarantined": counts.quarantined}


def evaluate(config: str, as_of: str | None = None) -> dict:
    """Evaluate the rules as of ``as_of`` (default now) and refresh the compliance Data Docs."""
    from vigie import pipeline
    from vigie.config import load_settings, parse_instant
    from vigie.report import log_lines

    settings = load_settings(config)
    instant = parse_instant(as_of, settings.timezone) if as_of else None
    report = pipeline.oversee(settings, instant, wait_s=WRITER_WAIT_S)
    for line in log_lines(report):
        log.info(line)
    return {"as_of": report.as_of.isoformat(), "findings_by_rule": report.findings_by_rule}


def write_report(config: str, as_of: str) -> dict:
    """The report of that evaluation for inspectors, under <warehouse dir>/reports/: the
    findings as CSV, and the same as HTML and PDF in French, all with one findings-sha256."""
    from datetime import datetime, timezone

    from vigie import db
    from vigie.config import load_settings, parse_instant
    from vigie.present.query import Selection
    from vigie.present.report import render

    settings = load_settings(config)
    instant = parse_instant(as_of, settings.timezone)
    selection = Selection(as_of=instant, known_at=datetime.now(timezone.utc))
    stem = settings.warehouse.parent / "reports" / f"findings-{instant.strftime('%Y%m%dT%H%M%SZ')}"
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = {}
    con = db.reader(settings.warehouse)
    try:
        for fmt in ("csv", "html", "pdf"):
            report = render(con, settings, selection, fmt, user="airflow")
            path = stem.with_suffix(f".{fmt}")
            path.write_bytes(report.content)
            written[fmt] = str(path)
    finally:
        con.close()
    log.info("%d findings written to %s (findings-sha256 %s)", report.count, ", ".join(written.values()),
             report.findings_sha256)
    return {**written, "findings_sha256": report.findings_sha256, "count": report.count}


def send_alerts(config: str, as_of: str) -> dict:
    """Record the new alerts of the evaluation as of ``as_of`` and deliver everything pending.

    A channel that is down leaves its alerts pending for the next run: the task does not fail
    for it (retrying the task would not bring the server back sooner)."""
    from vigie import db, pipeline
    from vigie.config import load_settings, parse_instant

    settings = load_settings(config)
    if settings.alerts is None:
        log.info("no 'alerts' block in %s: nothing to send", config)
        return {"sent": 0, "pending": 0, "failed": 0}
    report = pipeline.RunReport(as_of=parse_instant(as_of, settings.timezone))
    with db.writer(settings.warehouse, wait_s=WRITER_WAIT_S) as con:
        pipeline.alert(con, settings, report)
    if report.alerts_error:
        raise RuntimeError(report.alerts_error)
    for line in report.alerts.lines():
        log.info(line)
    a = report.alerts
    return {"sent": len(a.sent), "pending": len(a.pending), "failed": len(a.failed)}


def verify(config: str) -> dict:
    """`vigie verify` for the daily DAG: raises (so the task fails and its notifier writes)
    when anything was altered, naming the first break; reads without the writer lock."""
    from vigie import integrity
    from vigie.config import load_settings

    settings = load_settings(config)
    result = integrity.verify(settings, key=integrity.verifying_key(settings))
    for note in result.notes:
        log.info("note: %s", note)
    for b in result.breaks:
        log.error("altered: %s", b.line())
    if not result.ok:
        raise RuntimeError(f"verification broken: {len(result.breaks)} break(s), first: {result.breaks[0].line()}")
    log.info("verified: chain head %s; %d batch(es), %d landed file(s), %d purged, %d checkpoint(s)",
             result.head, result.batches_checked, result.files_checked, len(result.purged), result.checkpoints_checked)
    return {"head": result.head, "batches_checked": result.batches_checked, "files_checked": result.files_checked,
            "purged": len(result.purged)}


# --- failed tasks: Airflow's SmtpNotifier -------------------------------------------------

FAILURE_SUBJECT = "[Vigie] Airflow task {{ ti.dag_id }}.{{ ti.task_id }} failed"
FAILURE_HTML = (
    "<p>Task <b>{{ ti.dag_id }}.{{ ti.task_id }}</b> failed (run {{ ti.run_id }}, try {{ ti.try_number }}).</p>"
    "<p>{{ exception }}</p><p><a href=\"{{ ti.log_url }}\">Log</a></p>"
)
VIGIE_SMTP_CONN = "vigie_smtp"


def failure_notifier(config: Path):  # noqa: ANN201
    """The ``on_failure_callback`` of every Vigie task: Airflow's ``SmtpNotifier`` (the smtp
    provider, the path Airflow 3.2+ takes instead of ``email_on_failure``), or None.

    Recipients: ``alerts.operators.email``, else ``alerts.control_body.email``. The server:
    ``alerts.smtp.conn_id`` (e.g. ``smtp_default``) when vigie.yml names a connection; else the
    host, port and credentials of ``alerts.smtp``, handed to the notifier as the connection
    ``vigie_smtp`` in the task's own process environment at the moment it notifies (the
    password is read from ``password_env`` then, and is never in the DAG or its logs).
    """
    from vigie.config import load_settings

    settings = load_settings(config)
    cfg = settings.alerts
    if cfg is None or cfg.smtp is None:
        return None
    audience = cfg.operators if cfg.operators and cfg.operators.email else cfg.control_body
    to = list(audience.email) if audience else []
    if not to:
        return None
    smtp = cfg.smtp
    server = None if smtp.conn_id else {"host": smtp.host, "port": smtp.port, "starttls": smtp.starttls,
                                        "user_env": smtp.user_env, "password_env": smtp.password_env,
                                        "timeout": int(smtp.timeout_s)}
    from vigie.notifier import VigieSmtpNotifier

    return VigieSmtpNotifier(to=to, from_email=smtp.sender, subject=FAILURE_SUBJECT, html_content=FAILURE_HTML,
                             smtp_conn_id=smtp.conn_id or VIGIE_SMTP_CONN, server=server)
