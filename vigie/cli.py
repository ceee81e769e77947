"""The `vigie` command: the same pipeline as the DAGs, without a scheduler.

Exit codes (interface.md): 0 the pipeline worked, whatever it found; 2 usage or
configuration error; 1 the pipeline failed (a source unreachable, the warehouse locked).
"""

from __future__ import annotations

import csv
import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from vigie.config import ConfigError, load_settings, parse_instant

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n")[0])
err = Console(stderr=True, soft_wrap=True)  # a message stays on one line, whatever the width

ConfigOpt = Annotated[Optional[Path], typer.Option("--config", help="vigie.yml (else $VIGIE_CONFIG, else ./vigie.yml)")]


class Format(str, Enum):
    csv = "csv"
    json = "json"
    table = "table"


def _settings(config: Path | None):  # noqa: ANN202
    from vigie import db

    try:
        settings = load_settings(config)
        db.check_memory_limits()  # every command opens DuckDB: a bad cap is said here, on one line
        return settings
    except ConfigError as exc:
        err.print(f"[red]configuration error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None


def _instant(option: str, value: str | None, tz: str):  # noqa: ANN202
    if value is None:
        return None
    try:
        return parse_instant(value, tz)
    except ValueError as exc:
        err.print(f"[red]usage error:[/] {option}: {exc}", highlight=False)
        raise typer.Exit(2) from None


def emit(columns: list[str], rows, fmt: Format, title: str) -> None:  # noqa: ANN001
    """Write rows (an iterable of tuples) to stdout as CSV, JSON or a table."""
    if fmt is Format.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(("" if v is None else v for v in r) for r in rows)
    elif fmt is Format.json:
        json.dump([dict(zip(columns, r)) for r in rows], sys.stdout, ensure_ascii=False, indent=1, default=str)
        sys.stdout.write("\n")
    else:
        from rich.table import Table

        table = Table(title=title)
        for c in columns:
            table.add_column(c)
        for r in rows:
            table.add_row(*("" if v is None else str(v) for v in r))
        # Not a terminal (a file, a pipe): as wide as the data, never cut to 80 columns.
        Console(width=None if sys.stdout.isatty() else 1 << 16).print(table)


@app.command()
def run(
    config: ConfigOpt = None,
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="evaluate as of this instant (ISO-8601 with offset)")] = None,
    source: Annotated[Optional[list[str]], typer.Option("--source", help="only this source (repeatable)")] = None,
    gx: Annotated[bool, typer.Option("--gx/--no-gx", help="also validate with Great Expectations and rebuild the Data Docs "
                                     "(the contracts route rows to quarantine in SQL either way)")] = False,
    wait: Annotated[float, typer.Option("--wait", help="seconds to wait for another load to finish")] = 0.0,
    alerts: Annotated[bool, typer.Option("--alerts/--no-alerts", help="send the alerts after evaluating "
                                         "(--no-alerts records them as pending)")] = True,
    accept_drift: Annotated[Optional[list[str]], typer.Option("--accept-drift", help="take this source's new shape "
                            "(schema drift), once reviewed (repeatable)")] = None,
) -> None:
    """Pull every source (or those named), check, load into the warehouse, evaluate, alert."""
    from vigie import db, pipeline
    from vigie.report import console as make_console, print_run

    settings = _settings(config)
    as_of_instant = _instant("--as-of", as_of, settings.timezone)
    if not gx:
        db.without_pandas()
    try:
        settings.select(source or [])
        settings.select(accept_drift or [])
    except ConfigError as exc:
        err.print(f"[red]configuration error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    # One line per source on a terminal; nothing in a log, where the summary says it all.
    bars = Progress(SpinnerColumn(finished_text="✓"), TextColumn("{task.description}"), TimeElapsedColumn(),
                    console=Console(stderr=True), disable=not sys.stderr.isatty())
    lines: dict[str, int] = {}

    def progress(name: str, step: str) -> None:
        if name not in lines:
            lines[name] = bars.add_task(f"{name}: {step}", total=1)
        bars.update(lines[name], description=f"{name}: {step}", completed=1 if step.startswith("done") else 0)

    try:
        with bars:
            report = pipeline.run(settings, source or [], validate=gx, wait_s=wait,
                                  progress=progress, as_of=as_of_instant, send_alerts=alerts,
                                  accept_drift=accept_drift or [])
    except ConfigError as exc:
        err.print(f"[red]configuration error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    except db.WarehouseLocked as exc:
        err.print(f"[red]failed:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
    except Exception as exc:
        if not db.disk_full(exc):
            raise
        # The batches committed before are kept and this run's others were not: they are
        # pulled again (tests/test_disk_full.py frees space and checks the findings).
        reason = " ".join(str(exc).split())
        err.print(f"[red]failed:[/] the disk is full: {reason} (the warehouse is in {settings.warehouse.parent}); "
                  "free space and run again: what this run did not commit is pulled again", highlight=False)
        raise typer.Exit(1) from None
    print_run(report, make_console())
    if report.failed:
        names = ", ".join(s.source for s in report.failed)
        err.print(f"[red]failed:[/] could not load {names}", highlight=False)
        for s in report.failed:
            err.print(f"  {s.error.splitlines()[0]}", highlight=False)
        raise typer.Exit(1)
    if report.alerts_error:
        err.print(f"[red]failed:[/] {report.alerts_error}", highlight=False)
        raise typer.Exit(1)


@app.command()
def findings(
    config: ConfigOpt = None,
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="evaluate as of this instant (default now)")] = None,
    known_at: Annotated[Optional[str], typer.Option("--known-at", help="only what had been loaded by then (default now)")] = None,
    format: Annotated[Format, typer.Option("--format")] = Format.csv,
) -> None:
    """The findings as of an instant, from what the warehouse holds."""
    from datetime import datetime, timezone

    import duckdb

    from vigie import db, rules

    settings = _settings(config)
    db.without_pandas()
    now = datetime.now(timezone.utc)
    as_of_instant = _instant("--as-of", as_of, settings.timezone) or now
    known_at_instant = _instant("--known-at", known_at, settings.timezone) or now
    try:
        con = db.reader(settings.warehouse)
        rows = rules.evaluate(con, settings, as_of_instant, known_at_instant)
    except FileNotFoundError as exc:
        err.print(f"[red]failed:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
    except duckdb.CatalogException:
        err.print("[red]failed:[/] the warehouse has no rules installed yet: run `vigie run` first", highlight=False)
        raise typer.Exit(1) from None
    emit(rules.COLUMNS, [r[: len(rules.COLUMNS)] for r in rows], format, f"Findings as of {as_of_instant.isoformat()}")


@app.command()
def quarantine(
    config: ConfigOpt = None,
    format: Annotated[Format, typer.Option("--format")] = Format.csv,
) -> None:
    """Every quarantined row, with its reason."""
    from vigie import db

    settings = _settings(config)
    try:
        con = db.reader(settings.warehouse)
    except FileNotFoundError as exc:
        err.print(f"[red]failed:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
    rows = con.execute(
        "SELECT source, kind, ref, location, reason FROM oversight.quarantine ORDER BY source, location"
    ).fetchall()
    emit(["source", "kind", "ref", "location", "reason"], rows, format, "Quarantine")


class Status(str, Enum):
    pending = "pending"
    sent = "sent"
    failed = "failed"


@app.command("alerts")
def alerts_command(
    config: ConfigOpt = None,
    status: Annotated[Optional[Status], typer.Option("--status", help="only the alerts in this state")] = None,
    send: Annotated[bool, typer.Option("--send", help="deliver what is pending first")] = False,
    wait: Annotated[float, typer.Option("--wait", help="seconds to wait for another load to finish (with --send)")] = 0.0,
    format: Annotated[Format, typer.Option("--format")] = Format.csv,
) -> None:
    """The alert ledger: alert id, kind, channel, recipient, findings, status, attempts, last error, sent at."""
    import logging

    import duckdb

    from vigie import db
    from vigie.alerts import deliver, ledger

    settings = _settings(config)
    db.without_pandas()
    if send:
        if settings.alerts is None:
            err.print("[red]configuration error:[/] no 'alerts' block in the configuration: nothing to send",
                      highlight=False)
            raise typer.Exit(2)
        logging.basicConfig(level=logging.WARNING, format="%(message)s")
        try:
            with db.writer(settings.warehouse, wait_s=wait) as con:
                report = deliver(con, settings)
                rows = ledger.rows(con, status.value if status else None)
        except db.WarehouseLocked as exc:
            err.print(f"[red]failed:[/] {exc}", highlight=False)
            raise typer.Exit(1) from None
        for line in report.lines():
            err.print(line, highlight=False, markup=False)
    else:
        try:
            con = db.reader(settings.warehouse)
            rows = ledger.rows(con, status.value if status else None)
        except FileNotFoundError as exc:
            err.print(f"[red]failed:[/] {exc}", highlight=False)
            raise typer.Exit(1) from None
        except duckdb.CatalogException:
            rows = []  # a warehouse from before the ledger: nothing alerted yet
    emit(ledger.COLUMNS, rows, format, "Alerts")


@app.command("sources")
def sources_command(
    config: ConfigOpt = None,
    format: Annotated[Format, typer.Option("--format")] = Format.csv,
) -> None:
    """One row per configured source: last batch, cursor, counts over the last 10 batches,
    last error, whether the feed is silent."""
    from vigie import db, health

    settings = _settings(config)
    db.without_pandas()
    try:
        con = db.reader(settings.warehouse)
    except FileNotFoundError:
        con = None
    try:
        if con is None:
            import duckdb

            con = duckdb.connect()  # nothing loaded yet: every source, with no batch
        rows = [h.row() for h in health.source_health(con, settings)]
    finally:
        if con is not None:
            con.close()
    emit(health.COLUMNS, rows, format, "Sources")


class ReportFormat(str, Enum):
    csv = "csv"
    html = "html"
    pdf = "pdf"


@app.command()
def report(
    output: Annotated[Path, typer.Option("--output", "-o", help="file to write")],
    format: Annotated[ReportFormat, typer.Option("--format", help="csv (the data), html or pdf (for people)")],
    config: ConfigOpt = None,
    date_from: Annotated[Optional[str], typer.Option("--from", help="findings on or after this date (local midnight)")] = None,
    date_to: Annotated[Optional[str], typer.Option("--to", help="findings before this date (local midnight)")] = None,
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="evaluate as of this instant (default now)")] = None,
    known_at: Annotated[Optional[str], typer.Option("--known-at", help="only what had been loaded by then (default now)")] = None,
    holder: Annotated[Optional[list[str]], typer.Option("--holder", help="only this holder (repeatable)")] = None,
    device_class: Annotated[Optional[list[str]], typer.Option("--device-class", help="only this class (repeatable)")] = None,
    source: Annotated[Optional[list[str]], typer.Option("--source", help="only this source (repeatable)")] = None,
    rule: Annotated[Optional[list[str]], typer.Option("--rule", help="only this rule code (repeatable)")] = None,
    lang: Annotated[str, typer.Option("--lang", help="fr (default) or en; the CSV is the same in both")] = "fr",
) -> None:
    """The findings of a period and filters, as CSV, HTML or PDF, with findings-sha256."""
    import duckdb

    from vigie import db
    from vigie.present import access_log, query  # access_log: the watchers are watched
    from vigie.present.i18n import LANGS
    from vigie.present.report import PdfError, render

    settings = _settings(config)
    if lang not in LANGS:
        err.print(f"[red]usage error:[/] --lang: {lang!r} is not one of {', '.join(LANGS)}", highlight=False)
        raise typer.Exit(2)
    try:
        selection = query.Selection.parse(
            settings.timezone, as_of=as_of, known_at=known_at, date_from=date_from, date_to=date_to,
            rules=rule or [], holders=holder or [], device_classes=device_class or [], sources=source or [])
    except ValueError as exc:
        err.print(f"[red]usage error:[/] --{exc}", highlight=False)
        raise typer.Exit(2) from None
    unknown = [s for s in selection.sources if s not in {x.name for x in settings.sources}]
    if unknown:
        err.print(f"[red]configuration error:[/] --source: no source named {', '.join(unknown)}", highlight=False)
        raise typer.Exit(2)
    if format is not ReportFormat.pdf:
        db.without_pandas()
    try:
        con = db.reader(settings.warehouse)
    except FileNotFoundError as exc:
        err.print(f"[red]failed:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
    try:
        result = render(con, settings, selection, format.value, lang, user=access_log.os_user())
    except duckdb.CatalogException:
        err.print("[red]failed:[/] the warehouse has no rules installed yet: run `vigie run` first", highlight=False)
        raise typer.Exit(1) from None
    except PdfError as exc:
        err.print(f"[red]failed:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
    finally:
        con.close()
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(result.content)
    access_log.record(settings, access_log.os_user(), "report", access_log.filters_of(selection),
                      findings_sha256=result.findings_sha256, findings=result.count,
                      target=f"{format.value} {lang} {output.resolve()}")
    typer.echo(f"{result.count} finding(s) written to {output} ({format.value})", err=True)
    typer.echo(f"findings-sha256: {result.findings_sha256}", err=True)


@app.command("access-log")
def access_log(
    config: ConfigOpt = None,
    since: Annotated[Optional[str], typer.Option("--since", help="only records at or after this instant")] = None,
    format: Annotated[Format, typer.Option("--format")] = Format.csv,
) -> None:
    """Who generated which report or viewed which findings, when, with which filters."""
    from vigie.present import access_log as log

    settings = _settings(config)
    since_instant = _instant("--since", since, settings.timezone)
    emit(log.COLUMNS, [e.row() for e in log.entries(settings, since_instant)], format, "Access log")


class VerifyFormat(str, Enum):
    table = "table"
    json = "json"


@app.command("verify")
def verify_command(
    config: ConfigOpt = None,
    from_batch: Annotated[int, typer.Option("--from-batch", min=1, help="recompute the batches from this id on "
                                            "(the chain and the checkpoints are always walked whole)")] = 1,
    format: Annotated[VerifyFormat, typer.Option("--format")] = VerifyFormat.table,
    public_key: Annotated[bool, typer.Option("--public-key", help="print the public key of the checkpoints' "
                                             "signing key (PEM) and exit")] = False,
) -> None:
    """Recompute every batch's manifest from the landed files and the warehouse, walk the hash
    chain, check it against the checkpoint log, compare the rules and the stored findings with
    this version's evaluated again. Exit 0 when everything holds, 1 when anything was altered.
    Needs no lock: it runs while loads do."""
    from vigie import db, integrity

    settings = _settings(config)
    db.without_pandas()
    try:
        if public_key:
            key = integrity.signing_key(settings)
            if key is None:
                err.print("[red]configuration error:[/] no 'integrity.signing_key_env' in the configuration: "
                          "checkpoints are not signed", highlight=False)
                raise typer.Exit(2)
            typer.echo(integrity.public_pem(key.public_key()), nl=False)
            typer.echo(f"key id: {integrity.key_id(key.public_key())}", err=True)
            return
        key = integrity.verifying_key(settings)
    except ConfigError as exc:
        err.print(f"[red]configuration error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    try:
        result = integrity.verify(settings, from_batch, key)
    except FileNotFoundError as exc:
        err.print(f"[red]failed:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
    if format is VerifyFormat.json:
        json.dump(result.as_json(), sys.stdout, ensure_ascii=False, indent=1, default=str)
        sys.stdout.write("\n")
    else:
        _print_verification(result, key is not None)
    if not result.ok:
        raise typer.Exit(1)


def _print_verification(result, signed: bool) -> None:  # noqa: ANN001
    from rich.table import Table

    out = Console()
    h = result.head
    head = f"batch {h['batch_id']} (manifest {h['seq']}, {h['manifest_hash']})" if h else "none (nothing loaded)"
    out.print(f"chain head: {head}", highlight=False)
    out.print(f"checked: {', '.join(result.copies) or 'nothing'}; {result.batches_checked} batch(es), "
              f"{result.files_checked} landed file(s), {result.checkpoints_checked} checkpoint(s)"
              f"{' (signatures checked)' if signed else ''}", highlight=False)
    if result.purged:
        out.print(f"purged by retention (hashes kept in the manifests): {len(result.purged)} landed file(s)",
                  highlight=False)
    if result.evaluations_checked:
        out.print(f"stored findings evaluated again: {', '.join(result.evaluations_checked)}", highlight=False)
    for note in result.notes:
        out.print(f"note: {note}", highlight=False, markup=False)
    if result.ok:
        out.print("verified: every manifest recomputes, the chain and the checkpoints hold"
                  + (", the stored findings are the rules' own" if result.evaluations_checked else ""), highlight=False)
        return
    table = Table(title=f"{len(result.breaks)} break(s)")
    for c in ("batch", "source", "where", "what", "expected", "found"):
        table.add_column(c)
    for b in result.breaks:
        table.add_row("" if b.batch_id is None else str(b.batch_id), b.source or "", b.where, b.what, b.expected, b.found)
    out.print(table)
    for b in result.breaks:  # one line each as well, for logs and grep
        err.print(f"altered: {b.line()}", highlight=False, markup=False)


simulate_app = typer.Typer(no_args_is_help=True, help="Write a realistic estate, deliver it in phases, serve its body-camera API.")
app.add_typer(simulate_app, name="simulate")


@simulate_app.command("estate")
def simulate_estate(
    out: Annotated[Path, typer.Argument(help="folder to write the estate into")],
    events: Annotated[int, typer.Option("--events", "-n", help="about how many rows, all sources together")] = 5000,
    seed: Annotated[int, typer.Option("--seed")] = 7,
    phases: Annotated[int, typer.Option("--phases", help="deliver in this many phases (writes phase 1)")] = 1,
) -> None:
    """Write an estate in the four source formats, with its register and vigie.yml."""
    from vigie.simulate.estate import generate

    info = generate(out, n_events=events, seed=seed, phases=phases)
    typer.echo(f"estate written to {info.out_dir} (phase {info.phase} of {info.phases}), "
                    f"as of {info.as_of}; config {info.config_path}")


@simulate_app.command("advance")
def simulate_advance(out: Annotated[Path, typer.Argument(help="a phased estate written by `simulate estate`")]) -> None:
    """Deliver the next phase of a phased estate."""
    from vigie.simulate.estate import advance

    try:
        info = advance(out)
    except RuntimeError as exc:
        err.print(f"[red]usage error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    typer.echo(f"{info.out_dir}: phase {info.phase} of {info.phases} delivered, as of {info.as_of}")


@simulate_app.command("serve")
def simulate_serve(
    events: Annotated[Path, typer.Argument(help="body-camera events: a JSON array or JSON Lines")],
    port: Annotated[int, typer.Option("--port")] = 8765,
    token_env: Annotated[str, typer.Option("--token-env", help="variable holding the bearer token")] = "BODYCAM_TOKEN",
) -> None:
    """Serve the body-camera API on loopback until interrupted."""
    import os

    from vigie.simulate.bodycam_server import serve_forever

    token = os.environ.get(token_env)
    if not token:
        err.print(f"[red]usage error:[/] set {token_env} to the token clients must send", highlight=False)
        raise typer.Exit(2)
    serve_forever(events, "127.0.0.1", port, token)


def main() -> None:
    if sys.stderr.isatty():
        app()  # a usage error in a box, with colours
        return
    # Not a terminal (a log, a scheduler): a usage error is one line, like every other message.
    try:  # Typer ships its own copy of Click (0.22+)
        from typer._click.exceptions import ClickException, NoArgsIsHelpError
    except ImportError:
        from click.exceptions import ClickException, NoArgsIsHelpError

    try:
        code = app(standalone_mode=False)
    except NoArgsIsHelpError as exc:  # `vigie` alone, or a group alone: its help, already printed
        sys.exit(exc.exit_code)
    except ClickException as exc:
        where = f"{exc.ctx.command_path}: " if getattr(exc, "ctx", None) is not None else ""
        message = " ".join(exc.format_message().split())
        print(f"usage error: {where}{message} (see --help)", file=sys.stderr)
        sys.exit(exc.exit_code)
    except typer.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
