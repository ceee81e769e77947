"""The pins work together: `airflow dags test` runs a task that uses vigie and DuckDB."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb

FIXTURE_DAGS = Path(__file__).parent / "fixtures" / "dags"


def test_airflow_dags_test_runs_a_vigie_task(tmp_path: Path) -> None:
    airflow = Path(sys.executable).parent / "airflow"
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(FIXTURE_DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_VAR_SPIKE_WAREHOUSE": str(tmp_path / "w.duckdb"),
    }
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    run = subprocess.run([airflow, "dags", "test", "vigie_spike"], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "state=success" in run.stdout + run.stderr
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] >= 4
