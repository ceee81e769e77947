"""Acceptance (slow, about two minutes): the Oversight view inside the real Airflow API server.

One `airflow api-server` (SimpleAuthManager, SQLite metadata, AIRFLOW_HOME in tmp, the
repository's plugins/ folder) serves the plugin on a simulated estate loaded with the Great
Expectations report (so /vigie/docs/ has Data Docs). Anonymous and unauthorised requests get
401/403 and no data on every route; a bearer token from `POST /auth/token` gets the pages;
headless Chromium (Debian's, driven by Playwright) signs in through Airflow's login page,
opens the view, applies a filter, opens a finding's evidence and downloads a report. The
numbers on the page are those of `vigie findings`. Screenshots go to var/screenshots/
(docs/ with `make screenshots`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import REPO, SCREENSHOTS, vigie
from vigie import pipeline
from vigie.config import load_settings
from vigie.simulate.bodycam_server import BodycamServer
from vigie.simulate.estate import generate

pytestmark = pytest.mark.slow  # starts Airflow and a browser; runs in `make test`

USER, PASSWORD = "inspector", "inspector-password"
NOBODY, NOBODY_PASSWORD = "nobody", "nobody-password"  # a user without any role
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    root = tmp_path_factory.mktemp("view-airflow")
    info = generate(root / "estate", n_events=3000, seed=7)
    config = info.config_path
    with BodycamServer(info.events_path, token="sim") as server:
        text = config.read_text()
        config.write_text(text.replace("http://127.0.0.1:PORT", server.url))
        os.environ["BODYCAM_TOKEN"] = "sim"
        try:
            report = pipeline.run(load_settings(config), validate=True)  # with Data Docs
        finally:
            del os.environ["BODYCAM_TOKEN"]
    assert not report.failed, report.failed[0].error
    known_at = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")

    home = root / "airflow"
    home.mkdir()
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({USER: PASSWORD, NOBODY: NOBODY_PASSWORD}))
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
           "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:viewer,{NOBODY}:",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
           "AIRFLOW__API_AUTH__JWT_SECRET": hashlib.sha256(str(root).encode()).hexdigest(),
           "AIRFLOW__API__BASE_URL": base, "VIGIE_CONFIG": str(config)}
    bin_dir = Path(sys.executable).parent
    subprocess.run([str(bin_dir / "airflow"), "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    log = open(root / "api-server.log", "wb")
    proc = subprocess.Popen([str(bin_dir / "airflow"), "api-server", "--port", str(port), "--workers", "1"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, (root / "api-server.log").read_text()[-4000:]
            try:
                if httpx.get(f"{base}/api/v2/monitor/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the API server did not start"
            time.sleep(0.5)
        yield {"base": base, "config": config, "as_of": info.as_of, "known_at": known_at, "log": root / "api-server.log"}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server we started, and its workers
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def _token(base: str, user: str, password: str) -> str:
    r = httpx.post(f"{base}/auth/token", json={"username": user, "password": password}, timeout=30)
    assert r.status_code in (200, 201), r.text
    return r.json()["access_token"]


def _cli_findings(a: dict) -> list[dict]:
    out = vigie("findings", "--config", str(a["config"]), "--as-of", a["as_of"], "--known-at", a["known_at"],
                "--format", "csv", check=True).stdout
    return list(csv.DictReader(io.StringIO(out)))


def _routes(first: dict) -> list[str]:
    """Every route of the view's app, its path parameters filled with a real finding."""
    from vigie.present.view import create_app

    app = create_app(user=lambda: "nobody")  # only to list its routes
    paths = sorted(r.path for r in app.routes if getattr(r, "path", "").startswith("/"))
    assert {"/", "/findings/{rule_code}/{source}/{subject_id:path}", "/quarantine", "/sources", "/docs/{path:path}",
            "/report", "/api/findings"} <= set(paths), paths
    fill = {"{rule_code}": first["rule_code"], "{source}": first["source"],
            "{subject_id:path}": quote(first["subject_id"], safe=""), "{path:path}": "index.html"}
    out = []
    for p in paths:
        for k, v in fill.items():
            p = p.replace(k, v)
        out.append("/vigie" + p)
    return out + ["/vigie/docs/", "/vigie/report?format=csv", "/vigie/report?format=pdf", "/vigie/api/findings?rule=RET-01"]


def test_anonymous_and_unauthorised_requests_get_401_or_403_and_no_data(airflow: dict) -> None:
    base = airflow["base"]
    cli = _cli_findings(airflow)
    assert cli
    routes = _routes(cli[0])
    nobody = _token(base, NOBODY, NOBODY_PASSWORD)
    attempts = {
        "anonymous": {},
        "anonymous browser": {"Accept": "text/html"},
        "bad bearer": {"Authorization": "Bearer not-a-jwt"},
        "bad cookie": {"Cookie": "_token=not-a-jwt"},
        "user without the right to read DAGs": {"Authorization": f"Bearer {nobody}"},
    }
    secrets = {cli[0]["device_id"], cli[0]["legal_ref"], "rule_code"}  # not in the route itself
    for route in routes:
        for who, headers in attempts.items():
            r = httpx.get(base + route, headers=headers, timeout=60)
            assert r.status_code in (401, 403), (route, who, r.status_code, r.text[:300])
            assert not any(s in r.text for s in secrets), (route, who, r.text[:300])
    # and the same routes answer with a valid token
    token = _token(base, USER, PASSWORD)
    for route in routes:
        if "/docs" in route or "format=pdf" in route:  # both checked below
            continue
        r = httpx.get(base + route, headers={"Authorization": f"Bearer {token}"}, timeout=120)
        assert r.status_code == 200, (route, r.status_code, r.text[:300])


def test_a_token_reads_the_findings_of_vigie_findings(airflow: dict) -> None:
    base, token = airflow["base"], _token(airflow["base"], USER, PASSWORD)
    auth = {"Authorization": f"Bearer {token}"}
    cli = _cli_findings(airflow)
    columns = list(cli[0])
    params = {"as_of": airflow["as_of"], "known_at": airflow["known_at"]}
    r = httpx.get(f"{base}/vigie/api/findings", params=params, headers=auth, timeout=120)
    assert r.status_code == 200
    assert [{c: f[c] for c in columns} for f in r.json()] == cli
    rule = Counter(f["rule_code"] for f in cli).most_common(1)[0][0]
    r = httpx.get(f"{base}/vigie/api/findings", params={**params, "rule": rule}, headers=auth, timeout=120)
    assert [{c: f[c] for c in columns} for f in r.json()] == [f for f in cli if f["rule_code"] == rule]
    # The CSV report: the findings columns plus holder, and its findings-sha256 in a header.
    r = httpx.get(f"{base}/vigie/report", params={**params, "format": "csv"}, headers=auth, timeout=120)
    assert r.status_code == 200
    assert r.headers["x-findings-sha256"] == hashlib.sha256(r.content).hexdigest()
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [{c: f[c] for c in columns} for f in rows] == cli and all("holder" in f for f in rows)
    # The PDF of a selection, rendered in the server's thread pool, states the same findings-sha256.
    r = httpx.get(f"{base}/vigie/report", params={**params, "rule": rule, "format": "pdf", "lang": "en"},
                  headers=auth, timeout=300)
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    sha = hashlib.sha256(httpx.get(f"{base}/vigie/report", params={**params, "rule": rule, "format": "csv"},
                                   headers=auth, timeout=120).content).hexdigest()
    assert r.headers["x-findings-sha256"] == sha
    text = subprocess.run(["pdftotext", "-", "-"], input=r.content, capture_output=True, check=True).stdout.decode()
    assert f"findings-sha256: {sha}" in text.replace("\n", " ") or sha in text.replace("\n", "")
    # Data Docs from the GX run, served under /vigie/docs/ and nothing outside their folder.
    r = httpx.get(f"{base}/vigie/docs/", headers=auth, timeout=60)
    assert r.status_code == 200 and "<html" in r.text.lower()
    for escape in ("/vigie/docs/..%2F..%2F..%2Fvigie.yml", "/vigie/docs/%2e%2e/%2e%2e/%2e%2e/%2e%2e/vigie.yml",
                   "/vigie/docs/..%2f..%2f..%2f..%2f..%2fetc%2fpasswd"):
        r = httpx.get(base + escape, headers=auth, timeout=60)
        assert r.status_code == 404 and "sources:" not in r.text and "root:" not in r.text, escape
    # The plugin and its navigation entry, as Airflow lists them.
    plugins = httpx.get(f"{base}/api/v2/plugins", headers=auth, timeout=60).json()["plugins"]
    (plugin,) = [p for p in plugins if p["name"] == "vigie"]
    assert plugin["fastapi_apps"][0]["url_prefix"] == "/vigie"
    assert plugin["external_views"][0]["href"] == "/vigie/" and plugin["external_views"][0]["destination"] == "nav"


def test_browser_signs_in_filters_opens_evidence_and_downloads_a_report(airflow: dict, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    base = airflow["base"]
    cli = _cli_findings(airflow)
    by_rule = Counter(f["rule_code"] for f in cli)
    rule = by_rule.most_common(1)[0][0]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    started = datetime.now(timezone.utc)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
            # Without a session the view refuses, and offers Airflow's login page.
            response = page.goto(f"{base}/vigie/")
            assert response is not None and response.status == 401
            page.goto(f"{base}/auth/login?next={quote(base + '/vigie/', safe='')}")
            page.fill("input[name=username]", USER)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/vigie/**", timeout=60_000)
            page.wait_for_selector("#total-findings")

            # Apply a filter through the form: one rule, the estate's as-of, a fixed known-at.
            page.select_option("select[name=rule]", [rule])
            page.fill("input[name=as_of]", airflow["as_of"])
            page.fill("input[name=known_at]", airflow["known_at"])
            page.click("#apply")
            page.wait_for_url("**rule=*", timeout=60_000)
            page.wait_for_selector("#total-findings")
            assert int(page.get_attribute("#total-findings", "data-count")) == by_rule[rule]
            counts = {}
            for row in page.query_selector("#summary table").query_selector_all("tbody tr"):
                cells = row.query_selector_all("td")
                counts[cells[0].inner_text().strip()] = int("".join(ch for ch in cells[-1].inner_text() if ch.isdigit()))
            assert counts == {code: (by_rule[rule] if code == rule else 0) for code in counts} and rule in counts
            sections = page.query_selector_all("#findings section")
            assert [s.get_attribute("id") for s in sections] == [f"rule-{rule}"]
            shown = [td.inner_text().strip() for td in page.query_selector_all(f"#rule-{rule} tbody tr td:first-child")]
            assert shown == [f["subject_id"] for f in cli if f["rule_code"] == rule][: len(shown)] and shown
            assert len(shown) == min(by_rule[rule], 1000)
            page.screenshot(path=str(SCREENSHOTS / "view-findings.png"), full_page=False)

            # One finding's evidence: the source rows, with batch and landed file.
            first = next(f for f in cli if f["rule_code"] == rule)
            page.click(f"#rule-{rule} tbody tr:first-child a")
            page.wait_for_selector("#finding")
            text = page.inner_text("body")
            assert first["subject_id"] in text and first["legal_ref"] in text
            evidence = page.query_selector_all("#evidence tbody tr")
            assert evidence, text[:2000]
            assert any("/landing/" in row.inner_text() for row in evidence)  # the landed file it came from
            page.screenshot(path=str(SCREENSHOTS / "view-evidence.png"), full_page=True)
            page.go_back()

            # Download the report of the selection.
            page.wait_for_selector("#report-csv")
            with page.expect_download() as download:
                page.click("#report-csv")
            saved = tmp_path / "report.csv"
            download.value.save_as(saved)
            rows = list(csv.DictReader(io.StringIO(saved.read_text(encoding="utf-8"))))
            assert [(r["rule_code"], r["subject_id"]) for r in rows] == [(f["rule_code"], f["subject_id"]) for f in cli if f["rule_code"] == rule]

            # The same page in English.
            page.click("a[hreflang=en]")
            page.wait_for_selector("#total-findings")
            assert "Findings" in page.inner_text("h1")
        finally:
            browser.close()

    # Every page and the report were recorded, with the Airflow user and the filters.
    log = json.loads(vigie("access-log", "--config", str(airflow["config"]), "--since", started.isoformat(),
                           "--format", "json", check=True).stdout)
    mine = [e for e in log if e["user"] == USER]
    actions = Counter(e["action"] for e in mine)
    assert actions["findings"] >= 2 and actions["finding"] >= 1 and actions["report"] >= 1, actions
    filtered = [e for e in mine if e["action"] == "findings" and json.loads(e["filters"]).get("rule") == [rule]]
    assert filtered and filtered[0]["findings"] == by_rule[rule]
    (report,) = [e for e in mine if e["action"] == "report"]
    assert report["findings_sha256"] == hashlib.sha256(saved.read_bytes()).hexdigest()
