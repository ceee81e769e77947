"""Airflow's SmtpNotifier for failed Vigie tasks, whose connection may come from vigie.yml.

Imported only by the DAG file (through ``vigie.orchestration.failure_notifier``): it needs the
smtp provider, which the command line does not.
"""

from __future__ import annotations

import json
import os

from airflow.providers.smtp.notifications.smtp import SmtpNotifier


class VigieSmtpNotifier(SmtpNotifier):
    """``SmtpNotifier``; when ``server`` is given (vigie.yml's ``alerts.smtp`` host, port,
    STARTTLS and the names of the variables holding the login and password), the connection
    ``smtp_conn_id`` is defined from it in this process's environment just before notifying,
    so the secret is read at that moment and never stored in the DAG."""

    def __init__(self, *, server: dict | None = None, **kwargs) -> None:  # noqa: ANN003
        super().__init__(**kwargs)
        self.server = server

    def notify(self, context) -> None:  # noqa: ANN001
        if self.server:
            s = self.server
            conn: dict = {"conn_type": "smtp", "host": s["host"], "port": s["port"],
                          "extra": {"disable_ssl": True, "disable_tls": not s["starttls"], "timeout": s["timeout"],
                                    "retry_limit": 2}}
            if s.get("user_env"):
                conn["login"] = os.environ.get(s["user_env"], "")
                conn["password"] = os.environ.get(s["password_env"] or "", "")
            os.environ[f"AIRFLOW_CONN_{self.smtp_conn_id.upper()}"] = json.dumps(conn)
        super().notify(context)
