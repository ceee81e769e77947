"""The Oversight view's logic in-process (FastAPI's TestClient), and the access log.

Airflow's own authentication is tested against the real API server in
tests/test_view_airflow.py; here the app gets a small header-based identity dependency, so
the pages, filters, numbers, evidence, Data Docs guard and access records are checked fast.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sqlite3
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest
from fastapi import Header, HTTPException
from fastapi.testclient import TestClient

from tests.conftest import vigie
from vigie import pipeline
from vigie.config import load_settings
from vigie.present import access_log
from vigie.present.view import create_app
from vigie.simulate.bodycam_server import BodycamServer
from vigie.simulate.estate import generate


def _who(x_test_user: str | None = Header(None)) -> str:
    if not x_test_user:
        raise HTTPException(401, "Not authenticated")
    return x_test_user


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("view")
    info = generate(root / "estate", n_events=3000, seed=7)
    with BodycamServer(info.events_path, token="sim") as server:
        text = info.config_path.read_text()
        info.config_path.write_text(text.replace("http://127.0.0.1:PORT", server.url)
                                    .replace("token_env: BODYCAM_TOKEN", "token_env: VIEW_TEST_TOKEN"))
        import os

        os.environ["VIEW_TEST_TOKEN"] = "sim"
        try:
            report = pipeline.run(load_settings(info.config_path), validate=False)
        finally:
            del os.environ["VIEW_TEST_TOKEN"]
    assert not report.failed
    known_at = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
    out = vigie("findings", "--config", str(info.config_path), "--as-of", info.as_of, "--known-at", known_at,
                check=True).stdout
    return {"config": info.config_path, "as_of": info.as_of, "known_at": known_at,
            "cli": list(csv.DictReader(io.StringIO(out))), "settings": load_settings(info.config_path)}


@pytest.fixture(scope="module")
def client(loaded: dict) -> TestClient:
    return TestClient(create_app(loaded["config"], user=_who), headers={"X-Test-User": "alice", "Accept": "text/html"})


def test_without_identity_every_route_refuses(loaded: dict) -> None:
    anonymous = TestClient(create_app(loaded["config"], user=_who))
    for route in ["/", "/findings/RET-01/vms-lyon/x", "/quarantine", "/sources", "/docs/", "/docs/index.html",
                  "/report?format=csv", "/api/findings"]:
        r = anonymous.get(route)
        assert r.status_code == 401 and "rule_code" not in r.text, route
    # No FastAPI docs or schema of its own: /docs/ belongs to the Data Docs.
    assert anonymous.get("/openapi.json").status_code in (401, 404)


def test_findings_page_and_api_equal_vigie_findings(loaded: dict, client: TestClient) -> None:
    cli = loaded["cli"]
    by_rule = Counter(f["rule_code"] for f in cli)
    params = {"as_of": loaded["as_of"], "known_at": loaded["known_at"]}
    api = client.get("/api/findings", params=params).json()
    assert [{k: f[k] for k in cli[0]} for f in api] == cli
    rule, holder = by_rule.most_common(1)[0][0], api[0]["holder"]
    for filters in ({"rule": rule}, {"holder": holder}, {"rule": [rule, "PUR-01"], "source": "vms-lyon"}):
        got = client.get("/api/findings", params={**params, **filters}).json()
        want = [f for f in api if all(f[{"rule": "rule_code"}.get(k, k)] in ([v] if isinstance(v, str) else v)
                                      for k, v in filters.items())]
        assert got == want and got, filters
    page = client.get("/", params={**params, "rule": rule})
    assert page.status_code == 200
    assert f'id="total-findings" data-count="{by_rule[rule]}"' in page.text
    sha = hashlib.sha256(client.get("/report", params={**params, "rule": rule, "format": "csv"}).content).hexdigest()
    assert f"findings-sha256: {sha}" in page.text
    assert "Constats" in page.text and "Findings" in client.get("/", params={**params, "lang": "en"}).text


def test_period_and_bad_parameters(loaded: dict, client: TestClient) -> None:
    params = {"as_of": loaded["as_of"], "known_at": loaded["known_at"]}
    days = sorted(f["occurred_at"][:10] for f in loaded["cli"] if f["occurred_at"])
    start, end = days[len(days) // 3], days[2 * len(days) // 3]
    got = client.get("/api/findings", params={**params, "from": start, "to": end}).json()
    assert got and len(got) < len(loaded["cli"])
    assert all(start <= f["occurred_at"][:10] <= end for f in got)
    r = client.get("/api/findings", params={"as_of": "2026-02-10T00:00:00"})  # naive: refused
    assert r.status_code == 400 and "as_of" in r.text
    assert client.get("/", params={"from": "yesterday"}).status_code == 400
    assert client.get("/", params={"lang": "de"}).status_code == 400


def test_evidence_page_shows_the_source_rows(loaded: dict, client: TestClient) -> None:
    f = next(f for f in loaded["cli"] if f["rule_code"] == "RET-01")
    r = client.get(f"/findings/{f['rule_code']}/{f['source']}/{f['subject_id']}",
                   params={"as_of": loaded["as_of"], "known_at": loaded["known_at"], "lang": "en"})
    assert r.status_code == 200
    assert f["subject_id"] in r.text and f["legal_ref"] in r.text and "/landing/" in r.text
    missing = client.get(f"/findings/RET-01/{f['source']}/no-such-subject", params={"as_of": loaded["as_of"]})
    assert missing.status_code == 404


def test_pages_say_when_the_rules_are_another_versions(loaded: dict, client: TestClient) -> None:
    """The findings are evaluated with the rules the warehouse holds: installed by another
    version or configuration (or their fingerprint edited), the pages say so, as a report does."""
    import duckdb

    params = {"as_of": loaded["as_of"], "known_at": loaded["known_at"], "lang": "en"}
    assert "installed by another version of Vigie" not in client.get("/", params=params).text
    f = loaded["cli"][0]
    finding = f"/findings/{f['rule_code']}/{f['source']}/{f['subject_id']}"
    with duckdb.connect(str(loaded["settings"].warehouse)) as con:
        (kept,) = con.execute("SELECT fingerprint FROM rule_installed").fetchone()
        con.execute("UPDATE rule_installed SET fingerprint = 'another'")
    try:
        for page in ("/", finding):
            text = client.get(page, params=params).text
            assert "installed by another version of Vigie or another configuration (another)" in text, page
        assert "installées par une autre version de Vigie" in client.get("/", params={**params, "lang": "fr"}).text
    finally:
        with duckdb.connect(str(loaded["settings"].warehouse)) as con:
            con.execute("UPDATE rule_installed SET fingerprint = ?", [kept])
    assert "installed by another version of Vigie" not in client.get(finding, params=params).text


def test_quarantine_and_sources_pages(loaded: dict, client: TestClient) -> None:
    import duckdb

    with duckdb.connect(str(loaded["settings"].warehouse), read_only=True) as con:
        total = con.execute("SELECT count(*) FROM oversight.quarantine").fetchone()[0]
        lapi = con.execute("SELECT count(*) FROM oversight.quarantine WHERE source = 'lapi-a7'").fetchone()[0]
        last = dict(con.execute("SELECT source, max(batch_id) FROM oversight.batches GROUP BY 1").fetchall())
    assert f'data-count="{total}"' in client.get("/quarantine").text
    assert f'data-count="{lapi}"' in client.get("/quarantine", params={"source": "lapi-a7"}).text
    page = client.get("/sources").text
    for s in loaded["settings"].sources:
        assert f'data-source="{s.name}"' in page and f">{last[s.name]}<" in page


def test_data_docs_are_served_from_their_folder_only(loaded: dict, client: TestClient) -> None:
    from vigie.contracts import data_docs_index
    from vigie.pipeline import gx_root

    index = data_docs_index(gx_root(loaded["settings"]))
    assert client.get("/docs/").status_code == 404  # not built yet (no --gx)
    index.parent.mkdir(parents=True, exist_ok=True)
    index.write_text("<html><body>data docs</body></html>")
    (index.parent / "static").mkdir(exist_ok=True)
    (index.parent / "static" / "style.css").write_text("body {}")
    assert client.get("/docs/").text.endswith("data docs</body></html>")
    assert client.get("/docs/static/style.css").headers["content-type"].startswith("text/css")
    for escape in ["/docs/%2e%2e/%2e%2e/%2e%2e/%2e%2e/vigie.yml", "/docs/..%2F..%2F..%2F..%2Fvigie.yml",
                   "/docs/%2Fetc%2Fpasswd", "/docs/....//....//vigie.yml"]:
        r = client.get(escape)
        assert r.status_code == 404 and "sources:" not in r.text and "root:" not in r.text, escape


def test_every_view_is_recorded_and_the_log_refuses_edits(loaded: dict, client: TestClient) -> None:
    settings = loaded["settings"]
    since = datetime.now(timezone.utc)
    params = {"as_of": loaded["as_of"], "known_at": loaded["known_at"], "rule": "RET-01"}
    client.get("/", params=params, headers={"X-Test-User": "bob"})
    report = client.get("/report", params={**params, "format": "csv"}, headers={"X-Test-User": "bob"})
    entries = [e for e in access_log.entries(settings, since) if e.user == "bob"]
    assert [e.action for e in entries] == ["findings", "report"]
    assert entries[0].filters["rule"] == ["RET-01"] and entries[0].filters["as_of"]
    assert entries[1].findings_sha256 == report.headers["x-findings-sha256"] == hashlib.sha256(report.content).hexdigest()
    # The CLI lists them.
    listed = json.loads(vigie("access-log", "--config", str(loaded["config"]), "--since", since.isoformat(),
                              "--format", "json", check=True).stdout)
    assert [(e["user"], e["action"]) for e in listed if e["user"] == "bob"] == [("bob", "findings"), ("bob", "report")]
    # Append-only: UPDATE and DELETE are refused by the store itself.
    con = sqlite3.connect(access_log.path(settings))
    for statement in ("UPDATE access_log SET user = 'eve'", "DELETE FROM access_log"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            con.execute(statement)
    con.close()
    assert len(access_log.entries(settings)) >= 2


def test_access_log_does_not_need_the_writer_lock(loaded: dict) -> None:
    """Recording while a load holds the warehouse's writer lock."""
    from vigie import db

    settings = loaded["settings"]
    with db.writer(settings.warehouse):
        n = access_log.record(settings, "carol", "report", {"rule": ["RET-01"]}, findings_sha256="0" * 64, target="csv fr")
    (entry,) = [e for e in access_log.entries(settings) if e.id == n]
    assert (entry.user, entry.action, entry.filters, entry.findings_sha256) == ("carol", "report", {"rule": ["RET-01"]}, "0" * 64)


@pytest.mark.parametrize("value", ["four", "0", ""])
def test_a_bad_number_of_readers_names_the_variable(value: str) -> None:
    """VIGIE_VIEW_READERS was read with a bare int(): the plugin failed on `invalid literal`."""
    import os
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", "import vigie.present.view"], capture_output=True, text=True,
                          env={**os.environ, "VIGIE_VIEW_READERS": value})
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert "ConfigError" in last and "VIGIE_VIEW_READERS" in last and repr(value) in last, proc.stderr
    ok = subprocess.run([sys.executable, "-c", "import vigie.present.view as v; print(v.READERS_MAX)"],
                        capture_output=True, text=True, env={**os.environ, "VIGIE_VIEW_READERS": "2"})
    assert ok.stdout.strip() == "2", ok.stderr
