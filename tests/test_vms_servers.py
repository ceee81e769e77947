"""vms_sql against the real PostgreSQL and MariaDB servers of this machine.

The sample VMS (SQLite, ISO text) is copied into a fresh database with native types
(timestamptz on PostgreSQL, DATETIME meaning UTC on MariaDB); Vigie must load the same rows
and quarantine the same ones as from SQLite.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import SAMPLES
from vigie import pipeline
from vigie.config import load_settings

SERVERS = {
    "postgresql": ("postgresql+psycopg2://postgres@127.0.0.1:5432/postgres", "TIMESTAMPTZ", "DOUBLE PRECISION"),
    "mariadb": ("mysql+pymysql://root@127.0.0.1:3306/mysql", "DATETIME(6)", "DOUBLE"),
}


def _instant(text: str | None, aware: bool):
    if not text:  # '' in SQLite is what NULL is in a typed column
        return None
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    dt = dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)
    return dt if aware else dt.astimezone(timezone.utc).replace(tzinfo=None)


@pytest.fixture(params=sorted(SERVERS))
def server_vms(request, tmp_path: Path):
    """A fresh database on the real server holding the sample VMS; yields its URL."""
    admin_url, ts, dbl = SERVERS[request.param]
    name = f"vigie_test_{uuid.uuid4().hex[:8]}"
    try:
        admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(sa.text(f"CREATE DATABASE {name}"))
    except sa.exc.OperationalError as exc:  # the server is part of this machine: say so loudly
        pytest.fail(f"{request.param} server not reachable ({exc}); .ci/run starts it")
    url = sa.engine.make_url(admin_url).set(database=name)
    engine = sa.create_engine(url)
    aware = request.param == "postgresql"
    src = sqlite3.connect(SAMPLES / "vms.sqlite")
    with engine.begin() as c:
        c.execute(sa.text(f"CREATE TABLE cameras (camera_id VARCHAR(64) PRIMARY KEY, site VARCHAR(200), "
                          f"authorisation_ref VARCHAR(64) NULL, lat {dbl}, lon {dbl})"))
        c.execute(sa.text(f"CREATE TABLE recordings (recording_id VARCHAR(64) PRIMARY KEY, camera_id VARCHAR(64), "
                          f"started_at {ts} NULL, ended_at {ts} NULL, deleted_at {ts} NULL, hold_set_at {ts} NULL, "
                          f"hold_ref VARCHAR(64) NULL, hold_released_at {ts} NULL, updated_at {ts} NULL)"))
        c.execute(sa.text(f"CREATE TABLE audit_log (log_id INTEGER PRIMARY KEY, logged_at {ts} NULL, "
                          "user_login VARCHAR(64) NULL, action VARCHAR(32), camera_id VARCHAR(64) NULL, "
                          "recording_id VARCHAR(64) NULL, justification VARCHAR(32) NULL, "
                          "procedure_ref VARCHAR(64) NULL, recipient VARCHAR(200) NULL)"))
        for table, instants in (("cameras", ()), ("recordings", (2, 3, 4, 5, 7, 8)), ("audit_log", (1,))):
            rows = src.execute(f"SELECT * FROM {table}").fetchall()
            cols = [d[0] for d in src.execute(f"SELECT * FROM {table} LIMIT 0").description]
            values = [{c: (_instant(v, aware) if i in instants else v) for i, (c, v) in enumerate(zip(cols, row))}
                      for row in rows]
            c.execute(sa.text(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(':' + c for c in cols)})"), values)
    engine.dispose()
    yield url.render_as_string(hide_password=False)
    with admin.connect() as c:
        c.execute(sa.text(f"DROP DATABASE {name}"))
    admin.dispose()


def _load(tmp_path: Path, url: str, name: str):
    (tmp_path / name).mkdir()
    shutil.copy(SAMPLES / "authorisations.json", tmp_path / name / "authorisations.json")
    shutil.copy(SAMPLES / "vms.sqlite", tmp_path / name / "vms.sqlite")
    (tmp_path / name / "vigie.yml").write_text(
        f"warehouse: var/w.duckdb\nregister: authorisations.json\nsources:\n"
        f"  - {{name: vms, kind: vms_sql, url: '{url}'}}\n")
    settings = load_settings(tmp_path / name / "vigie.yml")
    report = pipeline.run(settings, validate=False)
    assert not report.failed, report.failed[0].error
    import duckdb

    con = duckdb.connect(str(settings.warehouse), read_only=True)
    recordings = con.execute("SELECT * EXCLUDE (batch_id, ord) FROM oversight.vms_recordings ORDER BY recording_id").fetchall()
    log = con.execute("SELECT * EXCLUDE (batch_id, ord) FROM oversight.vms_audit_log ORDER BY log_id").fetchall()
    quarantine = con.execute("SELECT location, reason FROM oversight.quarantine ORDER BY location").fetchall()
    return report.sources[0].counts, recordings, log, quarantine


def test_server_vms_loads_like_sqlite(server_vms: str, tmp_path: Path) -> None:
    from_server = _load(tmp_path, server_vms, "server")
    from_sqlite = _load(tmp_path, "sqlite:///vms.sqlite", "sqlite")
    assert from_server[0] == from_sqlite[0]
    assert from_server[1] == from_sqlite[1]  # same instants once typed, whatever the engine
    assert from_server[2] == from_sqlite[2]
    assert from_server[3] == from_sqlite[3]


def test_server_vms_lands_again_only_the_recordings_that_changed(server_vms: str, tmp_path: Path) -> None:
    """From a server as from SQLite: the recordings the lookback brings back unchanged are
    not landed again; one changed in place (its updated_at left as it was) is."""
    from vigie.config import VmsSqlSource
    from vigie.sources.vms_sql import VmsSql

    connector = VmsSql(VmsSqlSource(name="vms", kind="vms_sql", url=server_vms), settings=None)
    first = connector.pull(None, tmp_path / "b1")
    window = first.cursor["recordings_seen"]
    assert window
    again = connector.pull(first.cursor, tmp_path / "b2")
    assert {f.stream: f for f in again.files}["recordings"].bytes == 0
    assert again.cursor == first.cursor
    rid = next(iter(window))
    engine = sa.create_engine(server_vms)
    with engine.begin() as c:
        c.execute(sa.text("UPDATE recordings SET hold_ref = 'PV-1' WHERE recording_id = :r"), {"r": rid})
    engine.dispose()
    third = connector.pull(again.cursor, tmp_path / "b3")
    landed = {f.stream: f for f in third.files}["recordings"].path.read_text().splitlines()
    assert [json.loads(line)["recording_id"] for line in landed] == [rid]


def test_server_vms_lands_the_cameras_again_only_when_they_changed(server_vms: str, tmp_path: Path) -> None:
    """From a server as from SQLite: cameras read again with the bytes landed last are not
    landed again; a change lands them all."""
    from vigie.config import VmsSqlSource
    from vigie.sources.vms_sql import VmsSql

    connector = VmsSql(VmsSqlSource(name="vms", kind="vms_sql", url=server_vms), settings=None)
    first = connector.pull(None, tmp_path / "b1")
    n = len({f.stream: f for f in first.files}["cameras"].path.read_text().splitlines())
    assert n > 0 and first.cursor["cameras_sha256"]
    again = connector.pull(first.cursor, tmp_path / "b2")
    assert {f.stream: f for f in again.files}["cameras"].bytes == 0
    assert again.cursor == first.cursor
    engine = sa.create_engine(server_vms)
    with engine.begin() as c:
        c.execute(sa.text("UPDATE cameras SET site = 'moved' WHERE camera_id = (SELECT min(camera_id) FROM "
                          "(SELECT camera_id FROM cameras) AS k)"))
    engine.dispose()
    third = connector.pull(again.cursor, tmp_path / "b3")
    landed = {f.stream: f for f in third.files}["cameras"].path.read_text().splitlines()
    assert len(landed) == n and "moved" in [json.loads(line)["site"] for line in landed]
