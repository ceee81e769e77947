"""Alert e-mails render for every kind, in both languages, with and without the view's URL."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from vigie.alerts import channels, render, routing
from vigie.present.query import Finding

AS_OF = datetime(2026, 3, 20, 12, tzinfo=timezone.utc)
RET = Finding("RET-01", "vms", "VP", "CA", "RA1", "2026-03-12T10:00:00Z",
              "deadline 2026-03-11T10:00:00Z: still present at as-of, allowed until 2026-03-12T10:00:00Z", "CSI L252-5", "Ville A")
DELETED = Finding("RET-01", "vms", "VP", "CA", "RA2", "2026-03-13T10:00:00Z",
                  "deadline 2026-03-12T10:00:00Z: deleted 2026-03-20T00:00:00Z, allowed until 2026-03-13T10:00:00Z",
                  "CSI L252-5", "Ville A")
ACC = Finding("ACC-03", "vms", "VP", "CA", "7", "2026-03-15T08:00:00Z", "RA1 consulted after 2026-03-12T10:00:00Z without hold",
              "CSI L252-5", "Ville A")


def settings(lang: str, view_url: str | None) -> SimpleNamespace:
    alerts = SimpleNamespace(lang=lang, view_url=view_url, smtp=SimpleNamespace(sender="vigie@x.example"))
    return SimpleNamespace(alerts=alerts, timezone="Europe/Paris")


def test_lateness_and_open() -> None:
    assert routing.lateness(RET, AS_OF) == ("2026-03-12T10:00:00Z", 194.0)
    assert routing.lateness(DELETED, AS_OF) == ("2026-03-13T10:00:00Z", 158.0)
    assert routing.lateness(ACC, AS_OF) == ("2026-03-12T10:00:00Z", 70.0)
    assert routing.is_open(RET) and not routing.is_open(DELETED) and not routing.is_open(ACC)


@pytest.mark.parametrize("lang", ["fr", "en"])
@pytest.mark.parametrize("view_url", [None, "https://airflow.example/vigie"])
def test_every_kind_renders(lang: str, view_url: str | None) -> None:
    s = settings(lang, view_url)
    found = [RET, DELETED, ACC]
    alerts = [routing._make(kind, "email", "x@y.example", holder, topic, found, AS_OF, AS_OF, view_url)
              for kind, holder, topic in (("immediate", "Ville A", None), ("digest", None, "2026-03-20"),
                                          ("escalation", "Ville A", None))]
    for problem in ({"type": "silence", "source": "drones", "since": None, "expected_every": "6h", "detail": "d"},
                    {"type": "failing", "source": "cams", "runs": 3, "detail": "unreachable", "since": None},
                    {"type": "quarantine", "source": "lapi", "batch_id": 4, "received": 2, "quarantined": 1,
                     "rate": 0.5, "threshold": 0.05, "since": None, "detail": "d"}):
        alerts.append(routing._make("pipeline", "email", "x@y.example", None, problem["type"], [], AS_OF, AS_OF, None,
                                    problem=problem))
    for a in alerts:
        msg = render.email(a, s)
        text, html = msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content()
        assert msg["Message-ID"] == f"<{a.alert_id}@vigie>" and msg[channels.ALERT_ID_HEADER] == a.alert_id
        assert a.alert_id in text and a.alert_id in html
        if a.kind != "pipeline":
            assert "CSI L252-5" in text and ("Retard" if lang == "fr" else "Late by") in text
            assert ("/findings/RET-01/vms/RA1?as_of=" in html) == bool(view_url)
        assert render.email(a, s).as_bytes() == msg.as_bytes()  # a repeat is the same message
    assert json.loads(alerts[0].payload)["findings"][0]["late_hours"] == 194.0


def test_signature_is_over_the_exact_bytes() -> None:
    body = '{"a":"é"}'.encode()
    sig = channels.sign("k", body)
    assert channels.verify("k", body, sig) and not channels.verify("k", body + b" ", sig)
    assert not channels.verify("other", body, sig)
