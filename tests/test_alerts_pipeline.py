"""Pipeline alerts (issue #10): feed silence, a source failing three runs in a row, a batch's
quarantine rate, each alerted once per episode; `vigie sources` shows the same health."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.alert_estate import AS_OF, SECRET_ENV, SMTP_PASSWORD, SMTP_USER, WEBHOOK_SECRET, build, configure, instant, ledger
from tests.conftest import vigie
from vigie import alerts, db, pipeline
from vigie.config import load_settings
from vigie.simulate.receivers import SmtpSink, WebhookSink


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in SECRET_ENV.items():
        monkeypatch.setenv(k, v)


def check_at(config: Path, now: datetime) -> alerts.AlertReport:
    """The oversight step at wall-clock instant ``now`` (what an hourly run would see then)."""
    settings = load_settings(config)
    with db.writer(settings.warehouse) as con:
        return alerts.process(con, settings, instant(AS_OF), now=now)


def pipeline_mail(smtp: SmtpSink) -> list[str]:
    return [m["Subject"] for m in smtp.messages if m["X-Vigie-Kind"] == "pipeline"]


def test_feed_silence_alerted_once_per_episode(tmp_path: Path) -> None:
    estate = build(tmp_path)
    with SmtpSink(user=SMTP_USER, password=SMTP_PASSWORD) as smtp, WebhookSink(WEBHOOK_SECRET) as hook:
        config = configure(tmp_path, smtp_port=smtp.port, webhook_url=hook.url,
                           sources_extra=", expected_every: 1h")
        pipeline.run(load_settings(config), validate=False, as_of=instant(AS_OF))
        assert pipeline_mail(smtp) == []  # just pulled: not silent yet
        now = datetime.now(timezone.utc)
        check_at(config, now + timedelta(minutes=90))
        assert pipeline_mail(smtp) == ["[Vigie] Chaîne de collecte : flux silencieux — drones"]
        assert smtp.messages[-1]["To"] == "ops@vigie.example"  # the operators
        check_at(config, now + timedelta(hours=2))  # the hourly check again: same silence, no new alert
        check_at(config, now + timedelta(hours=3))
        pipeline.run(load_settings(config), validate=False, as_of=instant(AS_OF))
        assert len(pipeline_mail(smtp)) == 1

        # `vigie sources` agrees: drones silent at +90 min is what the view shows too
        rows = {r["source"]: r for r in json.loads(vigie("sources", "--config", str(config), "--format", "json",
                                                         check=True).stdout)}
        assert rows["drones"]["expected_every"] == "1h" and rows["drones"]["silent"] is False  # now: not yet
        assert rows["vms"]["silent"] is None and rows["vms"]["loaded"] > 0 and rows["vms"]["last_batch_id"]

        # the feed speaks again, then falls silent again: a new episode, a new alert
        estate.flight("F-1", "2026-03-19T08:00:00Z", "2026-03-19T09:00:00Z")
        estate.write()
        config = configure(tmp_path, smtp_port=smtp.port, webhook_url=hook.url, sources_extra=", expected_every: 1h")
        pipeline.run(load_settings(config), validate=False, as_of=instant(AS_OF))
        check_at(config, datetime.now(timezone.utc) + timedelta(minutes=30))
        assert len(pipeline_mail(smtp)) == 1
        check_at(config, datetime.now(timezone.utc) + timedelta(minutes=90))
        assert len(pipeline_mail(smtp)) == 2
    topics = sorted(r["topic"] for r in ledger(config) if r["kind"] == "pipeline")
    assert len(topics) == 2 and all(t.startswith("silence:drones:") for t in topics)


def test_failing_three_runs_in_a_row_and_quarantine_rate(tmp_path: Path) -> None:
    estate = build(tmp_path)
    estate.reads["reads_2026-03-10.csv"] = [
        {"read_id": "rd-1", "read_at": "2026-03-10T10:00:00+01:00", "camera_id": "L1", "plate_hash": "h", "matched": "0"},
        {"read_id": "rd-2", "read_at": "not a date", "camera_id": "L1", "plate_hash": "h", "matched": "0"}]
    estate.write()
    dead = ("  - {name: cams, kind: bodycam_api, base_url: 'http://127.0.0.1:9', token_env: T_SMTP_USER, "
            "max_retries: 0, timeout_s: 1}\n")
    with SmtpSink(user=SMTP_USER, password=SMTP_PASSWORD) as smtp, WebhookSink(WEBHOOK_SECRET) as hook:
        config = configure(tmp_path, smtp_port=smtp.port, webhook_url=hook.url, more_sources=dead)
        for i in range(4):
            report = pipeline.run(load_settings(config), validate=False, as_of=instant(AS_OF))
            assert [s.source for s in report.failed] == ["cams"]
            subjects = pipeline_mail(smtp)
            if i == 0:  # the LAPI batch: 1 of 2 rows quarantined, above 5 %
                assert subjects == ["[Vigie] Chaîne de collecte : taux de quarantaine — lapi"]
            elif i < 2:
                assert len(subjects) == 1
        assert pipeline_mail(smtp) == ["[Vigie] Chaîne de collecte : taux de quarantaine — lapi",
                                       "[Vigie] Chaîne de collecte : échecs répétés — cams"]  # once, not at run 4
        text = [m for m in smtp.messages if m["X-Vigie-Kind"] == "pipeline"][-1].get_body(("plain",)).get_content()
        assert "3 fois de suite" in text and "unreachable" in text
    rows = {r["source"]: r for r in json.loads(vigie("sources", "--config", str(config), "--format", "json",
                                                     check=True).stdout)}
    assert rows["cams"]["failing_runs"] == 4 and "unreachable" in rows["cams"]["last_error"]
    assert rows["lapi"]["quarantined"] == 1 and rows["lapi"]["received"] == 2
