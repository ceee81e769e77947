"""`vigie report`: the findings of a selection as CSV, HTML (self-contained) or PDF.

The CSV is the data; HTML and PDF are the same findings for people, with what they rest on
(evidence, quarantine, sources, limits) and the line ``findings-sha256: <hex>``, the SHA-256
of the CSV, so that a filed report can be checked against its data years later.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from vigie import integrity
from vigie.present import query
from vigie.present.access_log import os_user
from vigie.present.i18n import check_lang, environment
from vigie.rules import catalogue, fingerprint, installed_fingerprint

FORMATS = ("csv", "html", "pdf")
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "html": "text/html; charset=utf-8", "pdf": "application/pdf"}

# How much of each rule a document lists, so that thousands of findings keep it usable (and
# an HTML file under 20 MB): the CSV always holds them all, and the hash covers them all.
# A PDF is for filing: it lists less, and says so.
LISTED_PER_RULE = {"html": 1000, "pdf": 100}
EVIDENCE_PER_RULE = {"html": 40, "pdf": 5}
QUARANTINE_LISTED = {"html": 500, "pdf": 50}


@dataclass(frozen=True)
class Report:
    content: bytes
    fmt: str
    findings_sha256: str
    count: int

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.fmt]


def render(con: duckdb.DuckDBPyConnection, settings, selection: query.Selection, fmt: str,  # noqa: ANN001
           lang: str | None = None, user: str | None = None, link=None) -> Report:  # noqa: ANN001
    """The report of ``selection`` in ``fmt``. ``link(finding)`` gives a finding's page in the
    view (HTML only); ``user`` is who asked, printed on the document."""
    if fmt not in FORMATS:
        raise ValueError(f"{fmt!r} is not a report format ({', '.join(FORMATS)})")
    found = query.findings(con, settings, selection)
    csv_bytes = query.findings_csv(found)
    sha = hashlib.sha256(csv_bytes).hexdigest()  # = query.findings_sha256, without writing the CSV twice
    if fmt == "csv":
        return Report(csv_bytes, fmt, sha, len(found))
    html = render_html(con, settings, selection, found, sha, check_lang(lang), fmt, user or os_user(), link)
    if fmt == "html":
        return Report(html.encode("utf-8"), fmt, sha, len(found))
    return Report(html_to_pdf(html), fmt, sha, len(found))


def render_html(con, settings, selection: query.Selection, found: list[query.Finding], sha: str,  # noqa: ANN001
                lang: str, fmt: str = "html", user: str = "", link=None) -> str:  # noqa: ANN001
    from vigie.present.charts import trend_svg

    tz = settings.timezone
    start, end = selection.bounds(tz)
    summary = query.summarise(found, tz, start, end)
    by_rule: dict[str, list[query.Finding]] = {}
    for f in found:
        by_rule.setdefault(f.rule_code, []).append(f)
    rules = [r for r in catalogue() if r.code in by_rule]
    groups = [(r, by_rule[r.code][: LISTED_PER_RULE[fmt]], len(by_rule[r.code])) for r in rules]
    chosen = [f for r in rules for f in by_rule[r.code][: EVIDENCE_PER_RULE[fmt]]]
    rows = query.evidence(con, settings, chosen, selection.known_at)
    evidence_groups = [(r, [(f, rows[f.key]) for f in by_rule[r.code][: EVIDENCE_PER_RULE[fmt]]], len(by_rule[r.code]))
                       for r in rules]
    q_total, q_rows = query.quarantine(con, selection, QUARANTINE_LISTED[fmt])
    filters = [(name, values) for name, values in (("rule", selection.rules), ("holder", selection.holders),
                                                   ("device_class", selection.device_classes),
                                                   ("source", selection.sources)) if values]
    chart = trend_svg(summary.weeks, summary.trend, lang) if summary.weeks else None
    return environment(lang).get_template("report.html").render(
        tz=tz, as_of=selection.as_of, known_at=selection.known_at,
        period_from=selection.date_from.isoformat() if selection.date_from else None,
        period_to=selection.date_to.isoformat() if selection.date_to else None,
        filters=filters, total=len(found), sha256=sha, summary=summary, chart=chart, groups=groups,
        evidence_groups=evidence_groups, link=link, sources=query.sources(con, settings, selection),
        quarantine_total=q_total, quarantine_rows=q_rows, limits=query.limits_in_force(con, selection.as_of),
        config=settings, fingerprint=installed_fingerprint(con), this_fingerprint=fingerprint(settings),
        generated_at=datetime.now(timezone.utc),
        generated_by=user, chain_head=integrity.head(con),
    )


# Debian's Chromium, headless, prints the PDF: WeasyPrint (tried first) took 190 s for the
# 160 pages of a report over 5 M events, Chromium 12 s. Flags: no sandbox (root in
# containers), nothing fetched from the network, a fresh profile.
CHROMIUM = os.environ.get("VIGIE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-extensions", "--no-pdf-header-footer", "--hide-scrollbars"]


class PdfError(RuntimeError):
    """The PDF could not be printed (Chromium missing or failing)."""


def html_to_pdf(html: str, timeout_s: float = 600) -> bytes:
    """PDF for filing: Chromium prints the very HTML of the report (A4 landscape, page
    numbers from the stylesheet's @page rules); nothing is fetched, fonts are local."""
    if not Path(CHROMIUM).exists():
        raise PdfError(f"PDF reports need Chromium ({CHROMIUM} not found: `make sysdeps` or "
                       "`apt-get install chromium`, or set VIGIE_CHROMIUM)")
    with tempfile.TemporaryDirectory(prefix="vigie-pdf-") as tmp:
        page, out = Path(tmp) / "report.html", Path(tmp) / "report.pdf"
        page.write_text(html, encoding="utf-8")
        env = {**os.environ, "DBUS_SESSION_BUS_ADDRESS": "disabled:"}
        try:
            run = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={Path(tmp) / 'profile'}",
                                  f"--print-to-pdf={out}", page.as_uri()],
                                 capture_output=True, text=True, timeout=timeout_s, env=env)
        except subprocess.TimeoutExpired:
            raise PdfError(f"Chromium did not print the PDF within {timeout_s:.0f} s") from None
        if not out.exists() or out.stat().st_size == 0:
            tail = [line for line in run.stderr.splitlines() if "ERROR" in line and "dbus" not in line][-3:]
            raise PdfError(f"Chromium could not print the PDF (exit {run.returncode}): {' | '.join(tail)}")
        return out.read_bytes()
