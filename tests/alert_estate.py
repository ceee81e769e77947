"""A small estate with retention findings for two holders, and the alerts block that routes them,
for tests/test_alerts*.py. Receivers are real: aiosmtpd and an HTTP server on loopback."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb

from tests.mini_estate import MiniEstate, auth
from vigie import db
from vigie.config import load_settings

AS_OF = "2026-03-20T12:00:00Z"
SMTP_USER, SMTP_PASSWORD = "vigie-mailer", "pw-Smtp-7c1e-secret"
WEBHOOK_SECRET = "whsec-9f2b-Hook-secret"
SECRET_ENV = {"T_SMTP_USER": SMTP_USER, "T_SMTP_PASSWORD": SMTP_PASSWORD, "T_WEBHOOK_SECRET": WEBHOOK_SECRET}


def build(root: Path) -> MiniEstate:
    """Ville A: RA1 (kept, still present), RA2 (deleted late), a late consultation of RA1
    (ACC-03); Ville B: RB1 (kept, still present), RB-LATER (lawful until Mar 26); RA-OLD is
    from before `since`; a consultation without justification (ACC-01) for the digest."""
    e = MiniEstate(root)
    e.register += [auth("A-VA", "VP", retention_days=10, holder="Ville A"),
                   auth("A-VB", "VP", retention_days=10, holder="Ville B")]
    e.cameras += [{"camera_id": "CA", "site": "S", "authorisation_ref": "A-VA", "lat": 45.7, "lon": 4.8},
                  {"camera_id": "CB", "site": "S", "authorisation_ref": "A-VB", "lat": 45.7, "lon": 4.8}]
    r = e.recording
    r("RA1", "CA", "2026-03-01T09:00:00Z", "2026-03-01T10:00:00Z")  # lawful until Mar 12 10:00Z
    r("RA2", "CA", "2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z", deleted_at="2026-03-20T00:00:00Z")
    r("RB1", "CB", "2026-03-01T09:00:00Z", "2026-03-01T10:00:00Z")
    r("RB-LATER", "CB", "2026-03-15T09:00:00Z", "2026-03-15T10:00:00Z")  # lawful until Mar 26 10:00Z
    r("RA-OLD", "CA", "2025-11-01T09:00:00Z", "2025-11-01T10:00:00Z")  # before since: never alerted
    e.log(1, "2026-03-15T08:00:00Z", "PLAYBACK", recording_id="RA1", camera_id="CA", justification="JUD")
    e.log(2, "2026-03-16T08:00:00Z", "PLAYBACK", recording_id="RB-LATER", camera_id="CB", justification=None)
    e.write()
    return e


def configure(root: Path, *, smtp_port: int, webhook_url: str, extra: str = "", sources_extra: str = "",
              copy_immediate: bool = False, operators: bool = True, more_sources: str = "") -> Path:
    config = root / "vigie.yml"
    config.write_text(f"""warehouse: var/w.duckdb
register: register.json
sources:
  - {{name: vms, kind: vms_sql, url: 'sqlite:///vms.sqlite'}}
  - {{name: drones, kind: drone_files, path: drones{sources_extra}}}
  - {{name: lapi, kind: lapi_files, path: lapi, holder: LAPI holder}}
{more_sources}alerts:
  since: 2026-01-01
  escalate_after_days: 7
  view_url: https://airflow.example/vigie
  max_attempts: 2
  backoff_s: 0.05
  smtp: {{host: 127.0.0.1, port: {smtp_port}, sender: vigie@control.example,
         user_env: T_SMTP_USER, password_env: T_SMTP_PASSWORD, timeout_s: 5}}
  webhook: {{url: '{webhook_url}', secret_env: T_WEBHOOK_SECRET, timeout_s: 5}}
  control_body: {{email: [controle@cnil.example], webhook: true, copy_immediate: {str(copy_immediate).lower()}}}
""" + ("  operators: {email: [ops@vigie.example]}\n" if operators else "") + """  holders:
    "Ville A": {email: [permanence@ville-a.example], webhook: true}
    "Ville B": {email: [astreinte@ville-b.example]}
""" + extra)
    return config


def ledger(config: Path, status: str | None = None) -> list[dict]:
    settings = load_settings(config)
    con = db.reader(settings.warehouse)
    try:
        sql = "SELECT * FROM main.alerts" + (" WHERE status = ?" if status else "") + " ORDER BY created_at, alert_id"
        cur = con.execute(sql, [status] if status else [])
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row)) for row in cur.fetchall()]
    finally:
        con.close()


def alert_findings(config: Path, alert_id: str) -> list[str]:
    settings = load_settings(config)
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        return [s for (s,) in con.execute("SELECT subject_id FROM main.alert_findings WHERE alert_id = ? ORDER BY 1",
                                          [alert_id]).fetchall()]


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
