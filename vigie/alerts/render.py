"""An alert as an e-mail: plain text and HTML parts from ``templates/alerts/``, in the
configured language (French by default), rendered from the payload on record, so that a
repeat is the same message with the same ``Message-ID``."""

from __future__ import annotations

import json
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime

from vigie.alerts.channels import ALERT_ID_HEADER
from vigie.present.i18n import environment, gettext
from vigie.rules import catalogue


def _late(hours: float | None, lang: str) -> str:
    if hours is None:
        return ""
    _ = gettext(lang)
    days, rest = divmod(max(hours, 0), 24)
    if days >= 1:
        return _("%(d)d d %(h)d h") % {"d": days, "h": rest}
    return _("%(h)d h") % {"h": rest}


def subject(payload: dict, lang: str) -> str:
    _ = gettext(lang)
    n = len(payload["findings"])
    kind, holder = payload["kind"], payload.get("holder") or ""
    if kind == "immediate":
        return _("[Vigie] %(n)d retention finding(s) — %(holder)s") % {"n": n, "holder": holder}
    if kind == "escalation":
        return _("[Vigie] ESCALATION: %(n)d retention finding(s) still open — %(holder)s") % {"n": n, "holder": holder}
    if kind == "digest":
        return _("[Vigie] Daily digest: %(n)d new finding(s)") % {"n": n}
    p = payload.get("problem") or {}
    what = {"silence": _("feed silent"), "failing": _("failing runs"), "quarantine": _("quarantine rate")}
    return _("[Vigie] Pipeline: %(what)s — %(source)s") % {"what": what.get(p.get("type"), p.get("type", "")),
                                                           "source": p.get("source", "")}


def context(payload: dict, settings, lang: str) -> dict:  # noqa: ANN001
    titles = {r.code: r.title for r in catalogue()}
    findings = [dict(f, title=titles.get(f["rule_code"], ""), late=_late(f.get("late_hours"), lang))
                for f in payload["findings"]]
    return {"alert": payload, "findings": findings, "problem": payload.get("problem"), "tz": settings.timezone,
            "subject": subject(payload, lang)}


def email(alert, settings) -> EmailMessage:  # noqa: ANN001  (ledger.Alert)
    cfg = settings.alerts
    lang = cfg.lang
    payload = json.loads(alert.payload)
    env = environment(lang)
    ctx = context(payload, settings, lang)
    msg = EmailMessage()
    msg["Subject"] = ctx["subject"]
    msg["From"] = cfg.smtp.sender
    msg["To"] = alert.recipient
    msg["Message-ID"] = f"<{alert.alert_id}@vigie>"
    msg[ALERT_ID_HEADER] = alert.alert_id
    msg["X-Vigie-Kind"] = alert.kind
    msg["Date"] = format_datetime(datetime.fromisoformat(payload["generated_at"].replace("Z", "+00:00")))
    msg["Content-Language"] = lang
    msg.set_content(env.get_template("alerts/message.txt").render(ctx))
    msg.add_alternative(env.get_template("alerts/message.html").render(ctx), subtype="html")
    msg.set_boundary(f"=_vigie_{alert.alert_id}")  # not random: a repeat is the same bytes
    return msg
