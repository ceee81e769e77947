"""A failed task notifies the operators through Airflow's SmtpNotifier (issue #10), configured
from vigie.yml; here the notifier really sends, to aiosmtpd on loopback, with authentication."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import copy_samples
from vigie.simulate.receivers import SmtpSink


def test_failure_notifier_is_smtp_notifier_and_sends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    from vigie.orchestration import failure_notifier

    estate = copy_samples(tmp_path)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    monkeypatch.setenv("T_USER", "mailer")
    monkeypatch.setenv("T_PASSWORD", "pw-notifier-31415")
    config = estate / "vigie.yml"
    base = config.read_text().replace("http://127.0.0.1:PORT", "http://127.0.0.1:9")  # the sample's placeholder
    config.write_text(base)
    assert failure_notifier(config) is None  # no alerts block: no notifier
    with SmtpSink(user="mailer", password="pw-notifier-31415") as smtp:
        config.write_text(base + f"""alerts:
  smtp: {{host: 127.0.0.1, port: {smtp.port}, sender: vigie@control.example, user_env: T_USER, password_env: T_PASSWORD}}
  operators: {{email: [ops@vigie.example]}}
  control_body: {{email: [controle@control.example]}}
""")
        notifier = failure_notifier(config)
        assert isinstance(notifier, SmtpNotifier) and notifier.to == ["ops@vigie.example"]
        assert "pw-notifier-31415" not in repr(vars(notifier))  # the DAG never holds the secret
        ti = SimpleNamespace(dag_id="vigie_oversight", task_id="alert", run_id="manual__1", try_number=2,
                             log_url="http://airflow.example/log")
        notifier({"ti": ti, "exception": RuntimeError("warehouse locked"), "dag": None})
        (msg,) = smtp.messages
        assert msg["To"] == "ops@vigie.example" and msg["Subject"] == "[Vigie] Airflow task vigie_oversight.alert failed"
        assert "warehouse locked" in msg.get_body(("html",)).get_content()

    config.write_text(base + """alerts:
  smtp: {conn_id: smtp_default, sender: vigie@control.example}
  control_body: {email: [controle@control.example]}
""")
    notifier = failure_notifier(config)
    assert notifier.smtp_conn_id == "smtp_default" and notifier.to == ["controle@control.example"]
