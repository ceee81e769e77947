"""The data contracts: Great Expectations suites in ``expectations/``, run in DuckDB SQL.

A suite is the single source of truth for a stream's contract. It is used twice:

- row by row, in SQL: each expectation becomes a predicate (the row breaks it) and a reason
  (a sentence a person can act on), so failing rows go to quarantine with their reason and
  the rest of the batch loads; no row leaves DuckDB;
- as a Great Expectations validation of the same staging table through SQLAlchemy, which
  gives the official result per expectation and the Data Docs (see `validate_with_gx`).

Only three expectation types are used, because they translate to SQL exactly:
``expect_column_values_to_not_be_null``, ``expect_column_values_to_be_in_set`` (the closed
enums, case-sensitive) and ``unexpected_rows_expectation`` (anything else, as SQL).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

SUITES_DIR = Path(__file__).resolve().parent.parent / "expectations"
_ROWS_PREFIX = "SELECT * FROM {batch} WHERE "


@dataclass(frozen=True)
class Check:
    predicate: str  # SQL, true when a row breaks the expectation
    reason: str  # SQL expression: why, for a person


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def check_of(expectation: dict) -> Check:
    kind, kwargs, meta = expectation["type"], expectation["kwargs"], expectation.get("meta", {})
    if kind == "expect_column_values_to_not_be_null":
        col = kwargs["column"]
        return Check(f"{col} IS NULL", _literal(f"{meta.get('field', col)}: missing"))
    if kind == "expect_column_values_to_be_null":
        col = kwargs["column"]
        return Check(f"{col} IS NOT NULL", meta.get("reason", col))
    if kind == "expect_column_values_to_be_in_set":
        col = kwargs["column"]
        values = ", ".join(_literal(v) for v in kwargs["value_set"])
        label = _literal(f"{meta.get('field', col)}: unknown value ")
        return Check(f"{col} IS NOT NULL AND {col} NOT IN ({values})", f"{label} || vg_q({col})")
    if kind == "unexpected_rows_expectation":
        query = kwargs["unexpected_rows_query"]
        if not query.startswith(_ROWS_PREFIX) or "reason" not in meta:
            raise ValueError(f"unexpected_rows_expectation must read '{_ROWS_PREFIX}<predicate>' and carry meta.reason")
        return Check(query[len(_ROWS_PREFIX):], meta["reason"])
    raise ValueError(f"expectation type {kind} has no SQL translation here")


@lru_cache(maxsize=None)
def load_suite(name: str) -> dict:
    return json.loads((SUITES_DIR / f"{name}.json").read_text())


def checks(suite_name: str) -> list[Check]:
    return [check_of(e) for e in load_suite(suite_name)["expectations"]]


def reason_sql(suite_name: str) -> str:
    """One SQL expression: NULL for a good row, else every reason it breaks, joined by '; '.

    A row that cannot be read at all (parse_error) gets that reason alone: its fields are
    empty, and listing each of them as missing would hide the real cause.
    """
    parts = ", ".join(f"CASE WHEN {c.predicate} THEN {c.reason} END" for c in checks(suite_name))
    return f"coalesce(parse_error, nullif(concat_ws('; ', {parts}), ''))"


COMPLIANCE_SUITES = ("compliance.retention", "compliance.purpose", "compliance.authorisation",
                     "compliance.prohibitions", "compliance.logging")


def validate_compliance(database: Path, gx_root: Path) -> dict[str, dict]:
    """The legal limits as expectations over the run's findings (table ``run_findings``):
    each rule is one expectation whose unexpected rows are its findings, so the Data Docs show
    every limit and how many subjects break it, from the same SQL as `vigie findings`."""
    return validate_with_gx(database, {suite: "run_findings" for suite in COMPLIANCE_SUITES}, gx_root)


def validate_with_gx(database: Path, tables: dict[str, str], gx_root: Path) -> dict[str, dict]:
    """Validate staging ``tables`` {suite name: table} with Great Expectations.

    Returns {suite: {"success": bool, "evaluated": n, "unexpected": {description: count}}}
    and rebuilds the Data Docs under ``gx_root``. Imported lazily: GX costs seconds to load.
    """
    os.environ.setdefault("TQDM_DISABLE", "1")  # GX's per-metric progress bars flood logs
    import great_expectations as gx

    from vigie.db import install_cursor_fix

    install_cursor_fix()
    context = gx.get_context(mode="file", project_root_dir=str(gx_root))
    bars = context.variables.progress_bars  # a dict once read back from the file
    if (bars.get("globally") if isinstance(bars, dict) else getattr(bars, "globally", None)) is not False:
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        context.variables.save()
    datasource = context.data_sources.add_or_update_sql(
        "warehouse", connection_string=f"duckdb:///{database}"
    )
    outcome: dict[str, dict] = {}
    for suite_name, table in tables.items():
        spec = load_suite(suite_name)
        suite = context.suites.add_or_update(
            gx.ExpectationSuite(name=suite_name, expectations=spec["expectations"], meta=spec.get("meta", {}))
        )
        asset_name = suite_name.replace(".", "_")
        try:
            asset = datasource.get_asset(asset_name)
        except LookupError:
            asset = datasource.add_table_asset(asset_name, table_name=table)
        try:
            batch_definition = asset.get_batch_definition("whole")
        except (KeyError, LookupError):
            batch_definition = asset.add_batch_definition_whole_table("whole")
        validation = context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=suite_name, data=batch_definition, suite=suite)
        )
        checkpoint = context.checkpoints.add_or_update(
            gx.Checkpoint(name=suite_name, validation_definitions=[validation],
                          actions=[gx.checkpoint.UpdateDataDocsAction(name="docs")])
        )
        result = checkpoint.run()
        for run in result.run_results.values():
            unexpected = {}
            for r in run.results:
                problem = _raised(r.exception_info)
                if problem:
                    raise RuntimeError(f"suite {suite_name}: {r.expectation_config.type} raised {problem}")
                count = r.result.get("unexpected_count", r.result.get("observed_value"))
                if not r.success:
                    unexpected[r.expectation_config.description or r.expectation_config.type] = count
            outcome[suite_name] = {"success": run.success, "unexpected": unexpected,
                                   "evaluated": run.statistics.get("evaluated_expectations")}
    # Close GX's connections: they share the writer's database instance.
    datasource.get_engine().dispose()
    return outcome


def _raised(info: dict | None) -> str | None:
    """GX reports an expectation's exception either flat or keyed by the metric that raised."""
    if not info:
        return None
    if info.get("raised_exception"):
        return info.get("exception_message") or "an exception"
    for value in info.values():
        if isinstance(value, dict) and value.get("raised_exception"):
            return value.get("exception_message") or "an exception"
    return None


def data_docs_index(gx_root: Path) -> Path:
    return gx_root / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
