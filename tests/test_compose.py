"""docker-compose.yml, checked without a Docker engine (none runs on this machine): against the
Compose specification's JSON schema (vendored by check-jsonschema), then for Vigie's shape."""

from __future__ import annotations

import json
from importlib import resources

import jsonschema
import yaml

from tests.conftest import REPO


def _compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    schema = json.loads(resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text())
    jsonschema.validate(_compose(), schema)


def test_compose_runs_airflow_3_with_celery_postgres_redis_and_vigie_mounted() -> None:
    compose = _compose()
    services = compose["services"]
    assert {"postgres", "redis", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
            "airflow-worker", "airflow-triggerer", "airflow-init"} <= set(services)
    env = services["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql")
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
    assert env["VIGIE_CONFIG"] == "/opt/vigie/conf/vigie.yml"
    for name in ("airflow-scheduler", "airflow-worker", "airflow-dag-processor"):
        volumes = services[name]["volumes"]
        assert "./dags:/opt/airflow/dags:ro" in volumes and "./conf:/opt/vigie/conf:ro" in volumes
        assert "warehouse:/opt/vigie/var" in volumes
    assert "vigie_warehouse 1" in services["airflow-init"]["command"][-1]  # the one-slot writer pool
    assert "warehouse" in compose["volumes"]
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "FROM apache/airflow:3.3.2" in dockerfile and "--require-hashes -r /opt/vigie/requirements.lock" in dockerfile


def test_the_schema_check_does_reject_a_broken_file() -> None:
    import pytest

    schema = json.loads(resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text())
    broken = _compose()
    broken["services"]["redis"]["restartt"] = "always"  # a misspelt key
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
