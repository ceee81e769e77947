"""Vigie's DAGs, generated from vigie.yml ($VIGIE_CONFIG): one per source, and `vigie_oversight`.

Declarations only: each task calls `vigie.orchestration`, which imports the pipeline inside
the task. Tasks that write the warehouse share the one-slot pool `vigie_warehouse`. A source
DAG publishes its asset when its load has landed; the oversight DAG runs when any has, and
at least hourly (asset-or-time schedule), so that a silent feed is noticed. `vigie_verify`
checks the warehouse against its hash chain daily. A failed task notifies the operators
through Airflow's SmtpNotifier when vigie.yml configures alerts.
"""

from __future__ import annotations

from datetime import timedelta
from functools import reduce

import pendulum
from airflow.sdk import DAG, Asset, AssetOrTimeSchedule, CronTriggerTimetable, Param, task

from vigie.orchestration import POOL, config_path, dag_specs, failure_notifier

CONFIG = str(config_path())
WAREHOUSE, SOURCES = dag_specs(CONFIG)
START = pendulum.datetime(2026, 1, 1, tz="UTC")
DEFAULTS = {"retries": 2, "retry_delay": timedelta(minutes=2), "pool": POOL}
NOTIFIER = failure_notifier(CONFIG)
if NOTIFIER is not None:
    DEFAULTS["on_failure_callback"] = NOTIFIER

assets = []
for spec in SOURCES:
    asset = Asset(spec.asset_uri, extra={"source": spec.name, "kind": spec.kind})
    assets.append(asset)
    with DAG(
        dag_id=spec.dag_id, schedule="@hourly", start_date=START, catchup=False, max_active_runs=1,
        default_args=DEFAULTS, tags=["vigie", "source", spec.kind],
        doc_md=f"Pull `{spec.name}` ({spec.kind}) incrementally, check it, load it into `{WAREHOUSE}`.",
    ) as source_dag:

        @task(task_id="ingest", outlets=[asset])
        def ingest(source: str = spec.name) -> dict:
            from vigie.orchestration import ingest_source

            return ingest_source(CONFIG, source)

        ingest()
    globals()[spec.dag_id] = source_dag

# On any load landing, or hourly: feed silence cannot be noticed by a DAG that only runs on loads.
HOURLY = CronTriggerTimetable("0 * * * *", timezone="UTC")
with DAG(
    dag_id="vigie_oversight",
    schedule=AssetOrTimeSchedule(timetable=HOURLY, assets=reduce(lambda a, b: a | b, assets)) if assets else HOURLY,
    start_date=START, catchup=False, max_active_runs=1, default_args=DEFAULTS, tags=["vigie", "oversight"],
    params={"as_of": Param(None, type=["null", "string"], description="ISO-8601 instant; default: now")},
    doc_md="Evaluate the rules once loads have landed (and hourly), refresh the compliance Data Docs, send the "
           "alerts, write the report (CSV, HTML, PDF).",
) as oversight:

    @task(task_id="evaluate")
    def evaluate(params: dict | None = None) -> dict:
        from vigie.orchestration import evaluate as run_rules

        return run_rules(CONFIG, (params or {}).get("as_of"))

    @task(task_id="alert")  # writes the ledger: in the writer pool
    def alert(evaluation: dict) -> dict:
        from vigie.orchestration import send_alerts

        return send_alerts(CONFIG, evaluation["as_of"])

    @task(task_id="report", pool="default_pool")  # reads the published copy: no need for the writer slot
    def report(evaluation: dict) -> dict:
        from vigie.orchestration import write_report

        return write_report(CONFIG, evaluation["as_of"])

    evaluation = evaluate()
    alert(evaluation) >> report(evaluation)

# Daily tamper check: recomputes every manifest and walks the chain; fails (and notifies) on a break.
with DAG(
    dag_id="vigie_verify", schedule=CronTriggerTimetable("30 5 * * *", timezone="UTC"), start_date=START,
    catchup=False, max_active_runs=1, default_args=DEFAULTS, tags=["vigie", "integrity"],
    doc_md="`vigie verify`: recompute every batch's manifest from the landed files and the warehouse, walk the "
           "hash chain, check it against the checkpoint log. Fails when anything was altered.",
) as verify_dag:

    # Reads a private copy: no need for the writer slot. No retry: the same data gives the same answer.
    @task(task_id="verify", pool="default_pool", retries=0)
    def verify() -> dict:
        from vigie.orchestration import verify as run_verify

        return run_verify(CONFIG)

    verify()
