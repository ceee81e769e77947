"""Summaries for people: the terminal table of a run, the same lines in Airflow's log."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Table

from vigie.pipeline import RunReport


def console(stderr: bool = False) -> Console:
    """A console; wide enough for the summary when output goes to a file or a log."""
    stream = sys.stderr if stderr else sys.stdout
    # soft_wrap: a warning or an error stays on one line in a log (tables keep their width).
    return Console(stderr=stderr) if stream.isatty() else Console(stderr=stderr, width=120, soft_wrap=True)


def run_rows(report: RunReport) -> list[tuple]:
    return [
        (s.source, s.kind, s.counts.received, s.counts.loaded, s.counts.duplicates, s.counts.quarantined,
         "failed" if s.error else "ok")
        for s in report.sources
    ]


def print_run(report: RunReport, console: Console) -> None:
    table = Table(title="vigie run")
    for col in ("source", "kind", "received", "loaded", "duplicates", "quarantined", "status"):
        table.add_column(col, justify="right" if col in ("received", "loaded", "duplicates", "quarantined") else "left")
    for row in run_rows(report):
        table.add_row(*(str(v) for v in row))
    console.print(table)
    for s in report.sources:
        if s.contract.get("error"):
            console.print(f"[yellow]warning:[/] {s.source}: {s.contract['error']}")
    if report.findings_by_rule:
        findings = Table(title=f"findings as of {report.as_of.isoformat()}")
        findings.add_column("rule")
        findings.add_column("findings", justify="right")
        for code, n in report.findings_by_rule.items():
            findings.add_row(code, str(n))
        console.print(findings)
    if report.evaluation:
        console.print(f"rules evaluated: {report.evaluation}", highlight=False)
    if report.register_batch:
        console.print(f"register of authorisations: new version landed (batch {report.register_batch})")
    if report.alerts is not None:
        for line in report.alerts.lines():
            console.print(line, highlight=False, markup=False)
    if report.alerts_error:
        console.print(f"[red]{report.alerts_error}[/]", highlight=False)


def log_lines(report: RunReport) -> list[str]:
    """The run summary as plain lines, for Airflow task logs."""
    return [
        f"{src}: received {r}, loaded {l}, duplicates {d}, quarantined {q} [{status}]"
        for src, _, r, l, d, q, status in run_rows(report)
    ] + [f"{code}: {n} finding(s)" for code, n in report.findings_by_rule.items()] + (
        [f"rules evaluated: {report.evaluation}"] if report.evaluation else []) + (
        report.alerts.lines() if report.alerts is not None else []) + ([report.alerts_error] if report.alerts_error else [])
