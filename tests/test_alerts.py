"""Alerts (issue #10) against real receivers: aiosmtpd on loopback and an HTTP server for the
webhook. What is asserted is what actually arrived."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.alert_estate import (
    AS_OF, SECRET_ENV, SMTP_PASSWORD, SMTP_USER, WEBHOOK_SECRET, alert_findings, build, configure, instant, ledger,
)
from tests.conftest import vigie
from vigie import pipeline
from vigie.config import load_settings
from vigie.simulate.receivers import SmtpSink, WebhookSink


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in SECRET_ENV.items():
        monkeypatch.setenv(k, v)


def run(config: Path, as_of: str = AS_OF, **kw) -> pipeline.RunReport:  # noqa: ANN003
    report = pipeline.run(load_settings(config), validate=False, as_of=instant(as_of), **kw)
    assert not report.failed and report.alerts_error is None, (report.failed, report.alerts_error)
    return report


def subjects(payload_findings: list[dict]) -> list[str]:
    return sorted(f["subject_id"] for f in payload_findings)


def mail_subjects(msg) -> list[str]:  # noqa: ANN001
    """The subjects listed in an e-mail, read back from its plain-text part."""
    from vigie.present.i18n import gettext

    label = gettext("fr")("Subject") + ":"  # French by default
    text = msg.get_body(("plain",)).get_content()
    return sorted(line.split(":", 1)[1].strip().split(" (")[0] for line in text.splitlines()
                  if line.strip().startswith(label))


def test_grouping_per_holder_digest_signature_and_idempotence(tmp_path: Path) -> None:
    build(tmp_path)
    with SmtpSink(user=SMTP_USER, password=SMTP_PASSWORD) as smtp, WebhookSink(WEBHOOK_SECRET) as hook:
        config = configure(tmp_path, smtp_port=smtp.port, webhook_url=hook.url)
        run(config)
        mail = smtp.by_recipient()
        # one message per holder, with exactly that holder's new RET-01/RET-04/ACC-03 findings
        assert set(mail) == {"permanence@ville-a.example", "astreinte@ville-b.example", "controle@cnil.example"}
        (a,), (b,), (digest,) = (mail["permanence@ville-a.example"], mail["astreinte@ville-b.example"],
                                 mail["controle@cnil.example"])
        assert mail_subjects(a) == ["1", "RA1", "RA2"]  # ACC-03 of log 1, two RET-01
        assert mail_subjects(b) == ["RB1"]
        assert "RA-OLD" not in mail_subjects(digest)  # before alerts.since: reported, never alerted
        assert "2" in mail_subjects(digest)  # the digest carries every rule (ACC-01 here)
        assert a["Subject"].startswith("[Vigie] 3 constat(s) de conservation") and "Ville A" in a["Subject"]
        assert a["Message-ID"] == f"<{a['X-Vigie-Alert-Id']}@vigie>"
        html = a.get_body(("html",)).get_content()
        assert "CSI L252-5" in html and "https://airflow.example/vigie/findings/RET-01/vms/RA1?as_of=" in html
        assert "Retard" in a.get_body(("plain",)).get_content()

        # webhook: Ville A (webhook: true) and the control body's digest, signed, verified by the receiver
        assert all(d.verified and d.status == 200 for d in hook.requests)
        by_kind = {(d.json["kind"], d.json["holder"]): d for d in hook.requests}
        assert set(by_kind) == {("immediate", "Ville A"), ("digest", None)}
        ville_a = by_kind[("immediate", "Ville A")]
        assert subjects(ville_a.json["findings"]) == ["1", "RA1", "RA2"]
        assert ville_a.alert_id == ville_a.json["alert_id"]
        assert set(ville_a.json) >= {"alert_id", "kind", "holder", "findings", "generated_at"}
        assert set(ville_a.json["findings"][0]) >= {"rule_code", "source", "device_class", "device_id", "subject_id",
                                                    "occurred_at", "detail", "legal_ref", "holder"}
        rows = ledger(config)
        assert len(rows) == 5 and {r["status"] for r in rows} == {"sent"}
        assert alert_findings(config, ville_a.alert_id) == ["1", "RA1", "RA2"]

        # idempotence: a second run, an earlier as-of, a re-run of the oversight evaluation
        before = (len(smtp.messages), len(hook.requests))
        run(config)
        run(config, "2026-03-18T12:00:00Z")
        from vigie.orchestration import send_alerts

        pipeline.oversee(load_settings(config), instant(AS_OF), validate=False)  # the oversight DAG's tasks
        send_alerts(str(config), AS_OF)
        assert (len(smtp.messages), len(hook.requests)) == before
        assert len(ledger(config)) == 5

        # escalation: nothing after 5 days; after 8 days the still-present recordings go to the
        # control body, per holder, as escalations (RA2 was deleted: closed); RB-LATER is new
        run(config, "2026-03-25T12:00:00Z")
        assert not [m for m in smtp.messages[before[0]:] if m["X-Vigie-Kind"] == "escalation"]
        mark = len(smtp.messages)
        run(config, "2026-03-28T12:00:00Z")
        new = smtp.messages[mark:]
        esc = sorted((m["Subject"], mail_subjects(m)) for m in new if m["X-Vigie-Kind"] == "escalation")
        assert [s for _, s in esc] == [["RA1"], ["RB1"]]
        assert all("ESCALADE" in subj and m_to == "controle@cnil.example"
                   for (subj, _), m_to in zip(esc, [m["To"] for m in new if m["X-Vigie-Kind"] == "escalation"]))
        immediate = [m for m in new if m["X-Vigie-Kind"] == "immediate"]
        assert [(m["To"], mail_subjects(m)) for m in immediate] == [("astreinte@ville-b.example", ["RB-LATER"])]
        hook_esc = [d.json for d in hook.requests if d.json["kind"] == "escalation"]
        assert sorted((d["holder"], subjects(d["findings"])) for d in hook_esc) == [("Ville A", ["RA1"]), ("Ville B", ["RB1"])]
        mark = len(smtp.messages), len(hook.requests)
        run(config, "2026-03-29T12:00:00Z")  # escalated once: not again the next day
        assert not [m for m in smtp.messages[mark[0]:] if m["X-Vigie-Kind"] == "escalation"]

    # `vigie alerts` shows the ledger
    out = json.loads(vigie("alerts", "--config", str(config), "--format", "json", check=True).stdout)
    assert {r["status"] for r in out} == {"sent"} and {r["kind"] for r in out} >= {"immediate", "digest", "escalation"}
    assert set(out[0]) == {"alert_id", "kind", "channel", "recipient", "holder", "topic", "findings", "status", "attempts",
                           "last_error", "as_of", "created_at", "sent_at"}
    assert vigie("alerts", "--config", str(config), "--status", "pending", check=True).stdout.strip() == \
        "alert_id,kind,channel,recipient,holder,topic,findings,status,attempts,last_error,as_of,created_at,sent_at"


def test_control_body_copy_of_immediate_alerts(tmp_path: Path) -> None:
    build(tmp_path)
    with SmtpSink(user=SMTP_USER, password=SMTP_PASSWORD) as smtp, WebhookSink(WEBHOOK_SECRET) as hook:
        config = configure(tmp_path, smtp_port=smtp.port, webhook_url=hook.url, copy_immediate=True)
        run(config)
        copies = [m for m in smtp.messages if m["To"] == "controle@cnil.example" and m["X-Vigie-Kind"] == "immediate"]
        assert sorted(mail_subjects(m) for m in copies) == [["1", "RA1", "RA2"], ["RB1"]]
        hooks = sorted((d.json["kind"], d.json["holder"] or "") for d in hook.requests)
        assert hooks == [("digest", ""), ("immediate", "Ville A"), ("immediate", "Ville A"), ("immediate", "Ville B")]
        assert len({d.alert_id for d in hook.requests}) == 4  # holder's and control body's copies are two alerts


def test_outage_smtp_refusing_then_back_and_webhook_503_then_200(tmp_path: Path) -> None:
    build(tmp_path)
    smtp = SmtpSink(user=SMTP_USER, password=SMTP_PASSWORD)  # not started: connections are refused
    with WebhookSink(WEBHOOK_SECRET, statuses=[503, 503]) as hook:
        config = configure(tmp_path, smtp_port=smtp.port, webhook_url=hook.url)
        report = run(config)
        assert not report.alerts.sent and len(report.alerts.pending) == 5
        rows = ledger(config)
        assert {r["status"] for r in rows} == {"pending"}
        assert all(r["last_error"] for r in rows)
        email_errors = {r["last_error"] for r in rows if r["channel"] == "email"}
        assert any("unreachable" in e for e in email_errors), email_errors
        assert any("503" in r["last_error"] for r in rows if r["channel"] == "webhook")
        assert len(hook.requests) == 2  # 2 attempts (max_attempts) for the first; the channel is then left for later
        with smtp:
            run(config)  # back: everything pending goes out, once
            run(config)
        assert len(smtp.messages) == 3 and len({m["Message-ID"] for m in smtp.messages}) == 3
        assert len(hook.accepted) == 2 and len({d.alert_id for d in hook.accepted}) == 2
        assert {r["status"] for r in ledger(config)} == {"sent"}
        assert max(r["attempts"] for r in ledger(config) if r["channel"] == "email") == 3  # 2 refused, then sent


def test_webhook_4xx_is_a_failure_with_its_reason_not_a_retry_loop(tmp_path: Path) -> None:
    build(tmp_path)
    with SmtpSink(user=SMTP_USER, password=SMTP_PASSWORD), WebhookSink(WEBHOOK_SECRET, statuses=[410]) as hook:
        config = configure(tmp_path, smtp_port=free_smtp(), webhook_url=hook.url)
        run(config)
        run(config)
        failed = ledger(config, "failed")
        assert len(failed) == 1 and failed[0]["attempts"] == 1 and "410" in failed[0]["last_error"]
        assert len([d for d in hook.requests if d.status == 410]) == 1


def free_smtp() -> int:
    from vigie.simulate.receivers import free_port

    return free_port()


def test_no_alerts_leaves_them_pending_then_vigie_alerts_send(tmp_path: Path) -> None:
    build(tmp_path)
    with SmtpSink(user=SMTP_USER, password=SMTP_PASSWORD) as smtp, WebhookSink(WEBHOOK_SECRET) as hook:
        config = configure(tmp_path, smtp_port=smtp.port, webhook_url=hook.url)
        proc = vigie("run", "--config", str(config), "--as-of", AS_OF, "--no-alerts", env=SECRET_ENV, check=True)
        assert "5 pending" in proc.stdout
        assert not smtp.messages and not hook.requests
        assert len(ledger(config, "pending")) == 5
        proc = vigie("alerts", "--config", str(config), "--send", "--format", "json", env=SECRET_ENV, check=True)
        assert len(smtp.messages) == 3 and len(hook.requests) == 2
        assert {r["status"] for r in json.loads(proc.stdout)} == {"sent"}
        assert "sent 1 immediate alert(s) to permanence@ville-a.example (email)" in proc.stderr


def test_no_secret_in_logs_ledger_errors_or_warehouse(tmp_path: Path) -> None:
    from vigie.simulate.bodycam_server import BodycamServer

    build(tmp_path)
    api_token = "api-Token-2718-secret"
    env = {**SECRET_ENV, "T_API_TOKEN": api_token, "T_WRONG_TOKEN": "wrong-Token-1414-secret"}
    logs = []
    # a wrong SMTP password first (authentication refused), a webhook answering 500 and 400,
    # a body-camera API that wants its token
    with WebhookSink(WEBHOOK_SECRET, statuses=[500, 500, 400]) as hook, \
            BodycamServer(tmp_path / "events.jsonl", token=api_token) as api:
        cams = f"  - {{name: cams, kind: bodycam_api, base_url: '{api.url}', token_env: T_API_TOKEN}}\n"
        with SmtpSink(user=SMTP_USER, password="another") as smtp:
            config = configure(tmp_path, smtp_port=smtp.port, webhook_url=hook.url, more_sources=cams)
            logs.append(vigie("run", "--config", str(config), "--as-of", AS_OF, env=env))
            assert not smtp.messages
        with SmtpSink(user=SMTP_USER, password=SMTP_PASSWORD, port=smtp.port) as smtp:
            logs.append(vigie("alerts", "--config", str(config), "--send", "--format", "json", env=env))
            assert len(smtp.messages) == 3
        assert [d.status for d in hook.requests] == [500, 500, 400, 200]
        config.write_text(config.read_text().replace("T_API_TOKEN", "T_WRONG_TOKEN"))  # a wrong token: refused
        logs.append(vigie("run", "--config", str(config), "--as-of", AS_OF, env=env))
    logs.append(vigie("sources", "--config", str(config), "--format", "json", env=env))
    assert [p.returncode for p in logs] == [0, 0, 1, 0], [p.stderr for p in logs]
    texts = [p.stdout + p.stderr for p in logs]
    texts.append(json.dumps(ledger(config), default=str))
    assert "authentication failed" in texts[0] and "HTTP 500" in texts[0] and "HTTP 400" in texts[1]
    assert "cams" in texts[2]
    warehouse = load_settings(config).warehouse
    blobs = [warehouse.read_bytes(), warehouse.with_name(warehouse.name + ".writer").read_bytes()]
    blobs += [f.read_bytes() for f in (tmp_path / "var").rglob("*") if f.is_file()]  # landing files included
    for secret in (SMTP_PASSWORD, WEBHOOK_SECRET, api_token, "wrong-Token-1414-secret"):
        assert all(secret not in t for t in texts), secret
        assert all(secret.encode() not in b for b in blobs), secret


def test_killed_between_sending_and_recording_nothing_is_lost_and_the_repeat_has_the_same_id(tmp_path: Path) -> None:
    build(tmp_path)
    with SmtpSink(user=SMTP_USER, password=SMTP_PASSWORD) as smtp, WebhookSink(WEBHOOK_SECRET) as hook:
        config = configure(tmp_path, smtp_port=smtp.port, webhook_url=hook.url)
        # The receiver that accepts the first message kills the sender before answering: the
        # message is delivered, and the sender dies before it can record it as sent.
        sender: list[subprocess.Popen] = []

        def kill_the_sender(_message) -> None:  # noqa: ANN001
            smtp.on_accept = hook.on_accept = None  # once
            os.kill(sender[0].pid, signal.SIGKILL)
        smtp.on_accept = hook.on_accept = kill_the_sender  # before the sender starts
        run = subprocess.Popen([sys.executable, "-m", "vigie.cli", "run", "--config", str(config), "--as-of", AS_OF],
                               env={**os.environ, **SECRET_ENV}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        sender.append(run)
        run.communicate(timeout=600)
        assert run.returncode == -signal.SIGKILL
        first = [m["Message-ID"] for m in smtp.messages] + [f"<{d.alert_id}@vigie>" for d in hook.requests]
        assert len(first) == 1
        vigie("run", "--config", str(config), "--as-of", AS_OF, env=SECRET_ENV, check=True)
        ids = [m["Message-ID"] for m in smtp.messages] + [f"<{d.alert_id}@vigie>" for d in hook.accepted]
        assert len(ids) == 6 and len(set(ids)) == 5  # all five delivered; one of them twice...
        assert ids.count(first[0]) == 2  # ...the one in flight, repeated with the same alert id
        assert all(d.verified for d in hook.requests)
        assert {r["status"] for r in ledger(config)} == {"sent"} and len(ledger(config)) == 5
