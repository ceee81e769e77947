"""Shared fixtures: a writable copy of the sample estate, and the CLI as a subprocess."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Where the tests that take screenshots put them: a test run leaves the checkout as it was.
# `make screenshots` runs those tests with VIGIE_SCREENSHOTS=docs, the README's pictures.
SCREENSHOTS = Path(os.environ.get("VIGIE_SCREENSHOTS") or REPO / "var" / "screenshots").resolve()
SAMPLES = REPO.parent / "shared" / "samples"


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def with_closed_port(root: Path) -> Path:
    """The estate's placeholder port filled in with a closed one: the config parses, and
    nothing is pulled from the body-camera API."""
    config = root / "vigie.yml"
    config.write_text(config.read_text().replace("http://127.0.0.1:PORT", "http://127.0.0.1:9"))
    return root


def copy_samples(parent: Path) -> Path:
    """A writable copy of shared/samples (read-only in CI)."""
    dest = parent / "estate"
    shutil.copytree(SAMPLES, dest)
    for p in [dest, *dest.rglob("*")]:
        p.chmod(p.stat().st_mode | 0o200)
    return dest


@pytest.fixture
def estate(tmp_path: Path) -> Path:
    return copy_samples(tmp_path)


def vigie(*args: str, cwd: Path | None = None, env: dict | None = None, check: bool = False) -> subprocess.CompletedProcess:
    """Run the real `vigie` command line."""
    proc = subprocess.run(
        [sys.executable, "-m", "vigie.cli", *args], cwd=cwd, capture_output=True, text=True,
        env={**os.environ, **(env or {})}, timeout=600,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"vigie {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def migrated_before(tmp_path: Path, version: int):  # noqa: ANN201 - a DuckDB connection
    """An in-memory warehouse as the migrations before ``version`` left it, to test ``version``."""
    import duckdb

    from vigie import db

    earlier = tmp_path / f"migrations-before-{version}"
    earlier.mkdir()
    for path in sorted(db.MIGRATIONS_DIR.glob("[0-9][0-9][0-9]_*.sql")):
        if int(path.name[:3]) < version:
            shutil.copy(path, earlier / path.name)
    con = duckdb.connect()
    db.migrate(con, earlier)
    return con
