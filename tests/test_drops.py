"""Drop folders against a hostile corpus (issue #13), on a local folder and on S3 (moto on loopback).

One `vigie run` takes the whole corpus of both folder kinds: exit 0, every good row loaded,
every bad line or file quarantined with its reason (files: kind 'file', their hash in ref),
the same bytes under a second name a duplicate, nothing outside the folder opened, every
batch reconciled, a file still being written left for the next run, and no secret anywhere.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from tests import hostile_drops
from tests.conftest import SAMPLES, vigie
from tests.test_vms_servers import server_vms  # noqa: F401 - the fixture
from tests.hostile_drops import OLD, Expected, Grower

SECRET = "hostile-s3cr3t-7c1e9a"  # in the environment of every run: must end up nowhere


def _estate(root: Path, drones_path: str, lapi_path: str, extra: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(SAMPLES / "authorisations.json", root / "authorisations.json")
    config = root / "vigie.yml"
    config.write_text(f"""warehouse: var/warehouse.duckdb
register: authorisations.json
sources:
  - name: drones
    kind: drone_files
    path: {drones_path}
    settle_seconds: 1{extra}
  - name: lapi
    kind: lapi_files
    path: {lapi_path}
    settle_seconds: 1{extra}
""")
    return config


def _run(config: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    run = vigie("run", "--config", str(config), "--no-gx", "--no-alerts", "--as-of", "2026-05-01",
                env={"VIGIE_SECRET_TOKEN": SECRET, **(env or {})})
    assert run.returncode == 0, run.stdout + run.stderr
    return run


def _check(con: duckdb.DuckDBPyConnection, source: str, exp: Expected, corpus: Path, *, skip: set[str] = frozenset()) -> None:
    """What one run of ``source`` over ``corpus`` must have done."""
    if source == "lapi":
        ids = {r for (r,) in con.execute("SELECT read_id FROM lapi_reads UNION ALL SELECT event_id FROM lapi_queries").fetchall()}
    else:
        ids = {r for (r,) in con.execute("SELECT flight_id FROM drone_flights").fetchall()}
        points = con.execute("SELECT flight_id, count(*) FROM drone_track_points GROUP BY 1 ORDER BY 1").fetchall()
        assert points == [("good-1", 2), ("good-2", 2)]
    assert ids == exp.loaded  # every good row, and nothing from outside the folder

    quarantined = {loc: (kind, ref, reason) for loc, kind, ref, reason in con.execute(
        "SELECT location, kind, ref, reason FROM quarantine WHERE source = ?", [source]).fetchall()}
    want_lines = {f"{f}:{n}" for f, n in exp.bad_lines}
    want_files = {f for f in exp.bad_files if f not in skip}
    assert set(quarantined) == want_lines | want_files
    for (f, n), word in exp.bad_lines.items():
        assert word in quarantined[f"{f}:{n}"][2], (f, n, quarantined[f"{f}:{n}"])
    for f in want_files:
        kind, ref, reason = quarantined[f]
        assert kind == "file" and exp.bad_files[f] in reason, (f, reason)
        opened = f not in exp.os_only
        # A file that was read carries its bytes' hash; a link or a pipe was never opened.
        assert ref == (hashlib.sha256((corpus / f).read_bytes()).hexdigest() if opened else None), f
        assert "\n" not in reason

    dups = con.execute("SELECT location, first_location, ref FROM duplicates WHERE source = ? AND kind = 'file'",
                       [source]).fetchall()
    assert {(loc, first) for loc, first, _ in dups} == set(exp.duplicate_files.items())
    assert all(ref == hashlib.sha256((corpus / loc).read_bytes()).hexdigest() for loc, _, ref in dups)
    rows = con.execute("SELECT location, first_location FROM duplicates WHERE source = ? AND kind <> 'file'",
                       [source]).fetchall()
    assert dict(rows) == exp.duplicate_rows

    batches = con.execute("SELECT status, received, loaded, duplicates, quarantined FROM batches WHERE source = ?",
                          [source]).fetchall()
    assert batches and all(b[0] == "loaded" and b[1] == b[2] + b[3] + b[4] for b in batches), batches
    # Each quarantined line counted once: quarantine + loaded + duplicates = received.
    assert sum(b[4] for b in batches) == len(quarantined)


def _no_secret(*places: Path, texts: tuple[str, ...] = (), secrets: tuple[str, ...] = (SECRET,)) -> None:
    """Neither in any file's bytes (logs, landing, warehouse) nor in any row of the warehouse
    files, the writer's and the published copy, read through DuckDB: a string it compresses
    (dictionary, FSST) would not show in the bytes."""
    warehouses = 0
    for place in places:
        for p in [place] if place.is_file() else place.rglob("*"):
            if p.is_file() and not p.is_symlink():
                data = p.read_bytes()
                for secret in secrets:
                    assert secret.encode() not in data, f"a secret is in {p}"
                if p.name.endswith((".duckdb", ".duckdb.writer")):
                    warehouses += 1
                    with duckdb.connect(str(p), read_only=True) as con:
                        tables = con.execute("SELECT schema_name, table_name FROM duckdb_tables() "
                                             "WHERE database_name = current_database()").fetchall()
                        assert tables
                        for (schema, table), secret in ((t, x) for t in tables for x in secrets):
                            (n,) = con.execute(f'SELECT count(*) FROM "{schema}"."{table}" AS r '
                                               "WHERE CAST(r AS VARCHAR) LIKE ?", [f"%{secret}%"]).fetchone()
                            assert n == 0, f"a secret is in {p}: {schema}.{table}"
    assert warehouses >= 2 or not places  # the writer's file and the published copy
    assert not [x for x in secrets for t in texts if x in t]


def test_hostile_corpus_in_local_folders(tmp_path: Path) -> None:
    root = tmp_path / "estate"
    exp_d = hostile_drops.drones(root / "drones", tmp_path / "elsewhere" / "flight.jsonl")
    exp_l = hostile_drops.lapi(root / "lapi", tmp_path / "elsewhere" / "reads.csv")
    config = _estate(root, "drones", "lapi")
    row = hostile_drops._read("grow", camera="LAPI-A7-02") + "\n"
    with Grower(root / "lapi" / "reads_growing.csv", hostile_drops.READS_HEADER + "\n", row), \
         Grower(root / "drones" / "flights" / "growing.jsonl", "", hostile_drops._flight("grow-0") + "\n"):
        first = _run(config)
    con = duckdb.connect(str(root / "var" / "warehouse.duckdb"), read_only=True)
    try:
        _check(con, "drones", exp_d, root / "drones")
        _check(con, "lapi", exp_l, root / "lapi")
        # Still being written: neither landed nor quarantined, left for the next run.
        assert con.execute("SELECT count(*) FROM landed_files WHERE name IN ('reads_growing.csv', 'flights/growing.jsonl')"
                           ).fetchone() == (0,)
    finally:
        con.close()

    # Once it holds still, the next run takes it whole; everything else was received already.
    for p in (root / "lapi" / "reads_growing.csv", root / "drones" / "flights" / "growing.jsonl"):
        os.utime(p, (OLD, OLD))
    second = _run(config)
    con = duckdb.connect(str(root / "var" / "warehouse.duckdb"), read_only=True)
    try:
        lines = (root / "lapi" / "reads_growing.csv").read_text().count("\n") - 1
        assert con.execute("SELECT count(*) FROM lapi_reads WHERE read_id = 'grow'").fetchone() == (1,)
        last = con.execute("SELECT received, loaded, duplicates, quarantined FROM batches WHERE source = 'lapi' "
                           "ORDER BY batch_id DESC LIMIT 1").fetchone()
        # One read loaded; the same line again is a duplicate; the links, the pipe, the device
        # and the socket, refused again, are duplicates of their quarantine.
        refused = len(exp_l.os_only)
        assert last == (lines + refused, 1, lines - 1 + refused, 0)
        assert con.execute("SELECT count(*) FROM drone_flights WHERE flight_id = 'grow-0'").fetchone() == (1,)
    finally:
        con.close()
    for outside in exp_d.outside + exp_l.outside:
        assert outside.exists()  # untouched: their rows were never loaded (checked above)
    _no_secret(root / "var", texts=(first.stdout, first.stderr, second.stdout, second.stderr))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint():
    """A real S3 endpoint on loopback: moto in server mode, in its own process."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


S3_ENV = {"DROPS_KEY": "testing-key", "DROPS_SECRET": "testing-secret"}


def test_hostile_corpus_on_object_storage(tmp_path: Path, s3_endpoint: str) -> None:
    import s3fs

    fs = s3fs.S3FileSystem(endpoint_url=s3_endpoint, key=S3_ENV["DROPS_KEY"], secret=S3_ENV["DROPS_SECRET"])
    fs.mkdir("drops")
    corpus = tmp_path / "corpus"
    exp_d = hostile_drops.drones(corpus / "drones", tmp_path / "elsewhere" / "flight.jsonl")
    exp_l = hostile_drops.lapi(corpus / "lapi", tmp_path / "elsewhere" / "reads.csv")
    hostile_drops.put_on_s3(fs, corpus / "drones", "drops/site-69/drones")
    hostile_drops.put_on_s3(fs, corpus / "lapi", "drops/site-69/lapi")
    keys = (f"\n    endpoint_url: {s3_endpoint}\n    region: us-east-1"
            "\n    access_key_env: DROPS_KEY\n    secret_key_env: DROPS_SECRET")
    config = _estate(tmp_path / "estate", "s3://drops/site-69/drones", "s3://drops/site-69/lapi", keys)
    first = _run(config, env=S3_ENV)
    wh = tmp_path / "estate" / "var" / "warehouse.duckdb"
    con = duckdb.connect(str(wh), read_only=True)
    try:
        _check(con, "drones", exp_d, corpus / "drones", skip=exp_d.os_only)
        _check(con, "lapi", exp_l, corpus / "lapi", skip=exp_l.os_only)
    finally:
        con.close()

    # Ingested once, keyed on content: a renamed copy is a duplicate (for LAPI reads each of
    # its rows: a later file is a delivery of its own), a re-run takes nothing else.
    fs.copy("drops/site-69/drones/flights/good.jsonl", "drops/site-69/drones/flights/renamed.jsonl")
    fs.copy("drops/site-69/lapi/reads_good.csv", "drops/site-69/lapi/reads_renamed.csv")
    second = _run(config, env=S3_ENV)
    con = duckdb.connect(str(wh), read_only=True)
    try:
        def last(source: str) -> tuple:
            return con.execute("SELECT received, loaded, duplicates, quarantined FROM batches WHERE source = ? "
                               "ORDER BY batch_id DESC LIMIT 1", [source]).fetchone()
        assert last("drones") == (1, 0, 1, 0)
        assert con.execute("SELECT kind, first_location FROM duplicates WHERE location = 'flights/renamed.jsonl'"
                           ).fetchall() == [("file", "flights/good.jsonl")]
        assert last("lapi") == (3, 0, 3, 0)
        assert con.execute("SELECT first_location FROM duplicates WHERE location = 'reads_renamed.csv:2'").fetchall() == [
            ("reads_good.csv:2",)]
        assert con.execute("SELECT count(*) FROM lapi_reads WHERE read_id = 'good-1'").fetchone() == (1,)
    finally:
        con.close()
    _no_secret(tmp_path / "estate" / "var", texts=(first.stdout, first.stderr, second.stdout, second.stderr),
               secrets=(SECRET, S3_ENV["DROPS_SECRET"]))


def test_an_unreachable_endpoint_is_a_source_error_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vigie.config import LapiFilesSource
    from vigie.sources import SourceError
    from vigie.sources.lapi_files import LapiFiles

    port = _free_port()  # nothing listens there
    monkeypatch.setenv("DROPS_KEY", "k")
    monkeypatch.setenv("DROPS_SECRET", "s3cr3t-value")
    src = LapiFilesSource(name="lapi", kind="lapi_files", path="s3://drops/lapi", endpoint_url=f"http://127.0.0.1:{port}",
                          access_key_env="DROPS_KEY", secret_key_env="DROPS_SECRET")
    with pytest.raises(SourceError, match=f"cannot be listed: .*127.0.0.1:{port}") as info:
        LapiFiles(src, settings=None).pull(None, tmp_path / "b")
    assert "s3cr3t-value" not in str(info.value) and "\n" not in str(info.value)
    monkeypatch.delenv("DROPS_SECRET")
    with pytest.raises(SourceError, match="DROPS_SECRET is not set"):
        LapiFiles(src, settings=None).pull(None, tmp_path / "b")


@pytest.mark.parametrize("server_vms", ["postgresql"], indirect=True)
def test_no_credential_anywhere_once_every_kind_ran(tmp_path: Path, server_vms: str) -> None:
    """The secrets of every kind of source, after the hostile corpus, a VMS on PostgreSQL whose
    URL carries a password, a body-camera API with its token (a flaky server, then one that
    refuses the token) and a VMS that cannot be reached: in no log (stdout, stderr, `vigie
    sources`, `vigie quarantine`), landing file, quarantine row or warehouse file."""
    import json

    from tests.test_api_misbehaving import _events
    from vigie.simulate.bodycam_server import BodycamServer

    pg_password, token = "pg-pa55-8d2f41", "bwc-t0ken-5e07a9"
    root = tmp_path / "estate"
    hostile_drops.lapi(root / "lapi", tmp_path / "elsewhere" / "reads.csv")
    vms_url = server_vms.replace("postgres@", f"postgres:{pg_password}@")  # trust: accepted, not checked
    dead_url = f"postgresql+psycopg2://postgres:{pg_password}@127.0.0.1:{_free_port()}/vms"
    events = _events(tmp_path / "events.jsonl", 50)
    with BodycamServer(events, token=token, random_503=0.2, random_drop=0.2, seed=11) as flaky, \
            BodycamServer(events, token="another-token") as refusing:
        extra = (f"\n  - {{name: vms, kind: vms_sql, url: '{vms_url}'}}"
                 f"\n  - {{name: vms-down, kind: vms_sql, url: '{dead_url}'}}"
                 f"\n  - {{name: cams, kind: bodycam_api, base_url: '{flaky.url}', token_env: BWC_TOKEN, max_retries: 8,"
                 f" max_backoff_s: 0.05, page_size: 7}}"
                 f"\n  - {{name: cams-refused, kind: bodycam_api, base_url: '{refusing.url}', token_env: BWC_TOKEN}}")
        config = _estate(root, "drones", "lapi")
        (root / "drones" / "flights").mkdir(parents=True)
        config.write_text(config.read_text() + extra.lstrip("\n") + "\n")
        env = {"VIGIE_SECRET_TOKEN": SECRET, "BWC_TOKEN": token}
        runs = [vigie("run", "--config", str(config), "--no-gx", "--no-alerts", "--as-of", "2026-05-01", env=env)
                for _ in range(2)]
    assert [r.returncode for r in runs] == [1, 1], runs[0].stderr
    assert "source 'vms-down':" in runs[0].stderr and "source 'cams-refused':" in runs[0].stderr
    assert "postgres:***@" in runs[0].stderr or pg_password not in runs[0].stderr
    with duckdb.connect(str(root / "var" / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM bodycam_events").fetchone() == (50,)
        assert con.execute("SELECT count(*) FROM vms_audit_log").fetchone()[0] > 0
        assert con.execute("SELECT count(*) FROM lapi_reads").fetchone()[0] > 0
    outputs = [vigie(cmd, "--config", str(config), "--format", "json", check=True).stdout
               for cmd in ("sources", "quarantine", "findings")]
    assert json.loads(outputs[0])  # something to look at
    _no_secret(root / "var", texts=tuple(t for r in runs for t in (r.stdout, r.stderr)) + tuple(outputs),
               secrets=(SECRET, pg_password, token))


def test_a_pull_that_cannot_be_recorded_fails_its_source_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a connector pulled but the ledger cannot record (here a name no UTF-8 text can
    hold, as a name that is not UTF-8 was before `as_text`) fails that source, with why; the
    other sources load, and the next run takes the files again."""
    from vigie import pipeline
    from vigie.config import load_settings
    from vigie.sources.base import Landed
    from vigie.sources.lapi_files import LapiFiles

    root = tmp_path / "estate"
    hostile_drops._write(root / "drones" / "flights" / "f.jsonl", (hostile_drops._flight("fl-1") + "\n").encode())
    hostile_drops._write(root / "lapi" / "reads_1.csv",
                         f"{hostile_drops.READS_HEADER}\n{hostile_drops._read('rd-1')}\n".encode())
    for p in root.rglob("*.*"):
        os.utime(p, (OLD, OLD))
    settings = load_settings(_estate(root, "drones", "lapi"))
    pull = LapiFiles.pull

    def unrecordable(self, cursor, landing):  # noqa: ANN001, ANN202
        out = pull(self, cursor, landing)
        out.files.append(Landed(out.files[0].stream, "reads_caf\udce9.csv", out.files[0].path, "0" * 64, 1))
        return out
    with monkeypatch.context() as m:
        m.setattr(LapiFiles, "pull", unrecordable)
        report = pipeline.run(settings, validate=False, evaluate=False)
    by_source = {s.source: s for s in report.sources}
    assert by_source["drones"].error is None and by_source["drones"].counts.loaded == 1
    assert "source 'lapi': what was pulled could not be recorded: UnicodeEncodeError" in by_source["lapi"].error
    report = pipeline.run(settings, validate=False, evaluate=False)
    assert all(s.error is None for s in report.sources)
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        assert con.execute("SELECT status FROM batches WHERE source = 'lapi' ORDER BY batch_id").fetchall() == [
            ("failed",), ("loaded",)]
        assert con.execute("SELECT read_id FROM lapi_reads").fetchall() == [("rd-1",)]
    finally:
        con.close()
