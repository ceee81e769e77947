"""`vigie report`: the selection of interface.md, reproducibility after more data has landed,
French and English HTML that stands alone, a PDF whose text and chart are really there."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import subprocess
import time
from datetime import date, datetime, time as dtime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import SCREENSHOTS, vigie
from vigie.simulate.bodycam_server import BodycamServer
from vigie.simulate.estate import advance, generate

TOKEN = "sim"


def _load(estate: Path) -> None:
    """`vigie run` on the estate, its body-camera API served on loopback."""
    config = estate / "vigie.yml"
    text = config.read_text()
    with BodycamServer(estate / "bodycam_events.jsonl", token=TOKEN) as server:
        config.write_text(re.sub(r"http://127\.0\.0\.1:(PORT|\d+)", server.url, text))
        try:
            vigie("run", "--config", str(config), env={"BODYCAM_TOKEN": TOKEN}, check=True)
        finally:  # a port that parses (reports load this file): the run's server is gone
            config.write_text(text.replace("http://127.0.0.1:PORT", "http://127.0.0.1:9"))


@pytest.fixture(scope="module")
def phased(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """An estate delivered in three phases; the CSV and HTML of phase 1 are written right
    after it landed, and the rest of the phases are loaded afterwards."""
    root = tmp_path_factory.mktemp("report")
    info = generate(root / "estate", n_events=4000, seed=5, phases=3)
    _load(info.out_dir)
    known_at = datetime.now(timezone.utc).isoformat()
    time.sleep(0.05)
    config = str(info.out_dir / "vigie.yml")
    first = {}
    for fmt in ("csv", "html"):
        out = root / f"first.{fmt}"
        vigie("report", "--config", config, "--as-of", info.as_of, "--known-at", known_at,
              "--format", fmt, "--output", str(out), check=True)
        first[fmt] = out.read_bytes()
    as_of = info.as_of
    for _ in range(2):
        info = advance(info.out_dir)
        _load(info.out_dir)
    return {"root": root, "config": config, "as_of": as_of, "known_at": known_at, "first": first}


def _report(config: str, out: Path, *args: str) -> bytes:
    proc = vigie("report", "--config", config, "--output", str(out), *args, check=True)
    sha = re.search(r"findings-sha256: ([0-9a-f]{64})", proc.stderr)
    assert sha, proc.stderr
    data = out.read_bytes()
    if out.suffix == ".csv":
        assert sha.group(1) == hashlib.sha256(data).hexdigest()
    return data


def _rows(data: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def test_same_question_same_bytes_after_more_data_landed(phased: dict) -> None:
    root, config, first = phased["root"], phased["config"], phased["first"]
    as_of = phased["as_of"]
    again = _report(config, root / "again.csv", "--as-of", as_of, "--known-at", phased["known_at"], "--format", "csv")
    assert again == first["csv"]
    assert _rows(again), "the estate must produce findings for this test to mean anything"
    # The same as-of known now sees the later phases: late events, holds, corrections.
    now = _report(config, root / "now.csv", "--as-of", as_of, "--format", "csv")
    assert now != first["csv"], "the later phases must change what is known, or this proves nothing"
    # The HTML of the first report carries the hash of its CSV.
    assert f"findings-sha256: {hashlib.sha256(first['csv']).hexdigest()}" in first["html"].decode()
    # Every report generated is in the access log: who, the question, the hash.
    log = json.loads(vigie("access-log", "--config", config, "--format", "json", check=True).stdout)
    mine = [e for e in log if e["action"] == "report" and e["findings_sha256"] == hashlib.sha256(again).hexdigest()]
    assert mine and all(e["user"] for e in mine)
    assert any(str(root / "again.csv") in e["target"] for e in mine)
    assert json.loads(mine[-1]["filters"])["as_of"] if isinstance(mine[-1]["filters"], str) else mine[-1]["filters"]["as_of"]


def test_selection_is_vigie_findings_filtered(phased: dict) -> None:
    root, config = phased["root"], phased["config"]
    as_of = phased["as_of"]
    found = json.loads(vigie("findings", "--config", config, "--as-of", as_of, "--format", "json", check=True).stdout)
    assert found
    every = _rows(_report(config, root / "all.csv", "--as-of", as_of, "--format", "csv"))
    assert [{k: v for k, v in r.items() if k != "holder"} for r in every] == [
        {k: ("" if v is None else str(v)) for k, v in f.items()} for f in found]
    assert all(r["holder"] for r in every)  # every subject has a holder (domain.md)
    assert list(every[0]) == ["rule_code", "source", "device_class", "device_id", "subject_id", "occurred_at",
                              "detail", "legal_ref", "holder"]

    # A period in local dates, one rule family and one source, computed here independently.
    days = sorted({r["occurred_at"][:10] for r in every if r["occurred_at"]})
    start, end = date.fromisoformat(days[len(days) // 4]), date.fromisoformat(days[3 * len(days) // 4])
    zone = ZoneInfo("Europe/Paris")
    lo = datetime.combine(start, dtime(0), tzinfo=zone)
    hi = datetime.combine(end, dtime(0), tzinfo=zone)
    rule_codes = sorted({r["rule_code"] for r in every})[:3]
    source = every[0]["source"]
    expected = [r for r in every
                if r["occurred_at"] and lo <= datetime.fromisoformat(r["occurred_at"].replace("Z", "+00:00")) < hi
                and r["rule_code"] in rule_codes and r["source"] == source]
    args = ["--as-of", as_of, "--from", start.isoformat(), "--to", end.isoformat(), "--source", source]
    for code in rule_codes:
        args += ["--rule", code]
    got = _rows(_report(config, root / "some.csv", *args, "--format", "csv"))
    assert got == expected
    holder = every[-1]["holder"]
    by_holder = _rows(_report(config, root / "holder.csv", "--as-of", as_of, "--holder", holder, "--format", "csv"))
    assert by_holder == [r for r in every if r["holder"] == holder]
    cls = every[-1]["device_class"]
    by_class = _rows(_report(config, root / "class.csv", "--as-of", as_of, "--device-class", cls, "--format", "csv"))
    assert by_class == [r for r in every if r["device_class"] == cls]


def test_html_stands_alone_in_french_and_english(phased: dict) -> None:
    root, config = phased["root"], phased["config"]
    fr = _report(config, root / "fr.html", "--format", "html").decode()
    en = _report(config, root / "en.html", "--format", "html", "--lang", "en").decode()
    assert '<html lang="fr">' in fr and '<html lang="en">' in en
    assert "Synthèse" in fr and "Constats" in fr and "Ce que ce rapport n'a pas pu voir" in fr
    assert "Summary" in en and "What this report could not see" in en and "Synthèse" not in en
    for page in (fr, en):
        assert "<svg" in page  # the chart, inline
        assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched from anywhere
        assert "<script" not in page and "<link" not in page
        # dates in the local time zone, with their offset
        assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d\d:\d\d", page)
    # the same data in both: the hash does not depend on the language
    assert re.findall(r"findings-sha256: (\w+)", fr) == re.findall(r"findings-sha256: (\w+)", en)
    # What an inspector sees, in Debian's Chromium (the README's picture: `make screenshots`).
    shot = SCREENSHOTS / "report-html.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--no-first-run", f"--user-data-dir={root / 'chromium'}", "--window-size=1280,1500",
                    f"--screenshot={shot}", (root / "fr.html").as_uri()],
                   check=True, capture_output=True, timeout=120)
    assert shot.stat().st_size > 20_000


def test_pdf_has_the_summary_the_hash_and_the_chart(phased: dict) -> None:
    root, config = phased["root"], phased["config"]
    csv_bytes = _report(config, root / "p.csv", "--format", "csv", "--rule", "RET-01", "--rule", "ACC-03")
    pdf = root / "p.pdf"
    _report(config, pdf, "--format", "pdf", "--rule", "RET-01", "--rule", "ACC-03")
    assert pdf.read_bytes().startswith(b"%PDF-")
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "Synthèse" in text and "Par règle" in text
    assert f"findings-sha256: {hashlib.sha256(csv_bytes).hexdigest()}" in text
    # The page with the summary, as an image, shows the chart: bars in the retention and
    # access colours (it follows the header: page 1 or 2).
    subprocess.run(["pdftoppm", "-r", "60", "-png", "-f", "1", "-l", "2", str(pdf), str(root / "page")], check=True)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)  # the first page (the README's: `make screenshots`)
    subprocess.run(["pdftoppm", "-r", "70", "-png", "-singlefile", "-f", "1", "-l", "1", str(pdf),
                    str(SCREENSHOTS / "report-pdf-page1")], check=True)
    from PIL import Image

    pixels = [p for png in sorted(root.glob("page*.png")) for p in Image.open(png).convert("RGB").getdata()]
    near = lambda rgb, ref: all(abs(a - b) < 24 for a, b in zip(rgb, ref))  # noqa: E731
    assert sum(1 for p in pixels if near(p, (0xD5, 0x5E, 0x00))) > 50  # RET
    assert sum(1 for p in pixels if near(p, (0x00, 0x72, 0xB2))) > 50  # ACC


@pytest.mark.parametrize("args, message", [
    (["--lang", "de"], "--lang"),
    (["--from", "2026-13-01"], "from"),
    (["--as-of", "2026-03-01T10:00:00"], "offset"),
    (["--source", "nowhere"], "nowhere"),
])
def test_usage_errors_exit_2(phased: dict, args: list[str], message: str) -> None:
    proc = vigie("report", "--config", phased["config"], "--format", "csv", "--output",
                 str(phased["root"] / "x.csv"), *args)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr


def test_pdf_without_chromium_says_so(phased: dict) -> None:
    out = phased["root"] / "none.pdf"
    proc = vigie("report", "--config", phased["config"], "--format", "pdf", "--output", str(out),
                 env={"VIGIE_CHROMIUM": str(phased["root"] / "no-chromium")})
    assert proc.returncode == 1
    assert "PDF reports need Chromium" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()
