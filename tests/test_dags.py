"""The DAGs: integrity (imports cleanly and fast, policy) and an end-to-end run through Airflow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.conftest import REPO, copy_samples, read_csv, with_closed_port
from vigie.simulate.bodycam_server import BodycamServer
from vigie.simulate.receivers import SmtpSink

DAGS = REPO / "dags"


@pytest.fixture
def estate(tmp_path: Path) -> Path:
    """The sample estate, its placeholder port filled in (a closed one: nothing is pulled from it)."""
    return with_closed_port(copy_samples(tmp_path))


def _airflow_env(home: Path, config: Path, **extra: str) -> dict:
    # PYTHONPATH: the tasks import this checkout's vigie, not whichever one the venv installed.
    return {**os.environ, "PYTHONPATH": str(REPO), "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "VIGIE_CONFIG": str(config), **extra}


def test_dag_files_import_cleanly_fast_and_follow_the_policy(estate: Path) -> None:
    """Parse in a fresh interpreter: no import error, no heavy import, one DAG per source."""
    probe = f"""
import json, sys, time
from airflow.dag_processing.dagbag import DagBag
started = time.perf_counter()
bag = DagBag(dag_folder={str(DAGS)!r})
out = {{"errors": {{k: str(v)[:500] for k, v in bag.import_errors.items()}},
       "seconds": time.perf_counter() - started,
       "heavy": sorted(m for m in ("great_expectations", "duckdb") if m in sys.modules),
       "dags": {{d: {{"tasks": {{t.task_id: {{"pool": t.pool, "retries": t.retries}} for t in dag.tasks}},
                     "schedule": type(dag.timetable).__name__}} for d, dag in bag.dags.items()}}}}
print(json.dumps(out))
"""
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300,
                         env=_airflow_env(estate / "airflow", estate / "vigie.yml"))
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["errors"] == {}
    assert out["heavy"] == []  # DuckDB and Great Expectations are imported inside tasks only
    assert set(out["dags"]) == {"vigie_source_vms-lyon", "vigie_source_bodycams", "vigie_source_drones-69",
                                "vigie_source_lapi-a7", "vigie_oversight", "vigie_verify"}
    for dag_id, dag in out["dags"].items():
        for task_id, t in dag["tasks"].items():
            assert t["retries"] >= 1 or task_id == "verify", (dag_id, task_id)  # a re-check would say the same
            if task_id in ("ingest", "evaluate"):  # they write the warehouse
                assert t["pool"] == "vigie_warehouse", (dag_id, task_id)
    # runs when a load has landed, or hourly (feed silence): Airflow 3's asset-or-time schedule
    assert out["dags"]["vigie_oversight"]["schedule"] == "AssetOrTimeSchedule"
    assert out["dags"]["vigie_oversight"]["tasks"]["alert"]["pool"] == "vigie_warehouse"  # writes the ledger
    assert out["dags"]["vigie_verify"]["tasks"]["verify"]["pool"] == "default_pool"  # lock-free: never waits for loads
    assert out["seconds"] < 20, out["seconds"]


def test_a_bad_configuration_is_an_import_error_naming_the_key(estate: Path) -> None:
    config = estate / "vigie.yml"
    config.write_text(config.read_text().replace("path: lapi", "path: nowhere"))
    probe = f"""
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder={str(DAGS)!r})
print(" | ".join(str(e) for e in bag.import_errors.values()))
"""
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300,
                         env=_airflow_env(estate / "airflow", config))
    assert "lapi-a7" in run.stdout and "path" in run.stdout


def test_source_dags_and_oversight_through_airflow_match_the_expected_findings(tmp_path: Path) -> None:
    """Every DAG runs with `airflow dags test` on a copy of the samples; the body-camera
    source goes through an Airflow connection. The report's findings are the expected ones
    (`expected_findings.csv`, on the triple rule, source, subject), in the contract's order. The
    oversight DAG sends the alerts (to an SMTP server on loopback), and run again sends none."""
    estate = copy_samples(tmp_path)
    as_of = (estate / "as_of.txt").read_text().strip()
    with BodycamServer(estate / "bodycam_events.json", token="from-connection") as server, SmtpSink() as smtp:
        config = estate / "vigie.yml"
        config.write_text(config.read_text().replace(
            "base_url: http://127.0.0.1:PORT\n    token_env: BODYCAM_TOKEN", "conn_id: vigie_bodycams")
            + f"alerts:\n  smtp: {{host: 127.0.0.1, port: {smtp.port}, sender: vigie@control.example}}\n"
              "  control_body: {email: [controle@control.example], copy_immediate: true}\n")
        connection = json.dumps({"conn_type": "http", "password": "from-connection", "extra": {"base_url": server.url}})
        env = _airflow_env(tmp_path / "airflow", config, AIRFLOW_CONN_VIGIE_BODYCAMS=connection)
        airflow = str(Path(sys.executable).parent / "airflow")
        subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
        subprocess.run([airflow, "pools", "set", "vigie_warehouse", "1", "Vigie writer"], env=env, check=True,
                       capture_output=True, timeout=120)
        for dag_id, conf in [("vigie_source_vms-lyon", None), ("vigie_source_bodycams", None),
                             ("vigie_source_drones-69", None), ("vigie_source_lapi-a7", None),
                             ("vigie_oversight", json.dumps({"as_of": as_of}))]:
            run = subprocess.run([airflow, "dags", "test", dag_id] + (["-c", conf] if conf else []), env=env,
                                 capture_output=True, text=True, timeout=600)
            assert run.returncode == 0 and "state=success" in run.stdout + run.stderr, (dag_id, (run.stdout + run.stderr)[-4000:])
        kinds = sorted(m["X-Vigie-Kind"] for m in smtp.messages)
        assert "digest" in kinds and "immediate" in kinds, kinds
        assert {m["To"] for m in smtp.messages} == {"controle@control.example"}
        sent = len(smtp.messages)
        run = subprocess.run([airflow, "dags", "test", "vigie_oversight", "-c", json.dumps({"as_of": as_of})], env=env,
                             capture_output=True, text=True, timeout=600)
        assert run.returncode == 0 and "state=success" in run.stdout + run.stderr
        assert len(smtp.messages) == sent  # a re-run of the oversight DAG sends nothing new

    reports = sorted((estate / "var" / "reports").glob("findings-*.csv"))
    assert len(reports) == 1
    from_airflow = read_csv(reports[0])
    expected = read_csv(estate / "expected_findings.csv")
    assert sorted((r["rule_code"], r["source"], r["subject_id"]) for r in from_airflow) == sorted(
        (r["rule_code"], r["source"], r["subject_id"]) for r in expected)
    order = [(r["rule_code"], r["subject_id"], r["source"]) for r in from_airflow]
    assert order == sorted(order)


def test_the_verify_dag_holds_then_fails_and_notifies_once_a_row_is_deleted(tmp_path: Path) -> None:
    """`vigie_verify` through `airflow dags test` on a sample estate loaded by the CLI: success,
    then, after a row is deleted from the warehouse, a failed run whose SmtpNotifier writes."""
    from tests.conftest import vigie

    estate = copy_samples(tmp_path)
    with BodycamServer(estate / "bodycam_events.json", token="t") as server, SmtpSink() as smtp:
        config = estate / "vigie.yml"
        config.write_text(config.read_text().replace("http://127.0.0.1:PORT", server.url)
                          + f"alerts:\n  smtp: {{host: 127.0.0.1, port: {smtp.port}, sender: vigie@control.example}}\n"
                            "  control_body: {email: [controle@control.example], digest: false}\n")
        vigie("run", "--config", str(config), "--no-alerts", env={"BODYCAM_TOKEN": "t"}, check=True)
        env = _airflow_env(tmp_path / "airflow", config)
        airflow = str(Path(sys.executable).parent / "airflow")
        subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
        run = subprocess.run([airflow, "dags", "test", "vigie_verify"], env=env, capture_output=True, text=True,
                             timeout=300)
        assert run.returncode == 0 and "state=success" in run.stdout + run.stderr, (run.stdout + run.stderr)[-4000:]
        with duckdb.connect(str(estate / "var" / "warehouse.duckdb.writer")) as con:
            con.execute("DELETE FROM vms_audit_log WHERE log_id = (SELECT min(log_id) FROM vms_audit_log)")
        run = subprocess.run([airflow, "dags", "test", "vigie_verify"], env=env, capture_output=True, text=True,
                             timeout=300)
        assert "state=failed" in run.stdout + run.stderr, (run.stdout + run.stderr)[-4000:]
        assert "vms_audit_log" in run.stdout + run.stderr
        failures = [m for m in smtp.messages if "vigie_verify.verify" in m["Subject"]]
        assert failures and failures[0]["To"] == "controle@control.example", [m["Subject"] for m in smtp.messages]
