"""Acceptance (slow): inspectors read while loads run.

Twenty readers (ten HTTP clients of the view, served by uvicorn; ten processes with
read-only DuckDB connections on the published file, `db.reader`) query without pause while `vigie run` loads
the phases of an estate one after the other (`vigie simulate estate --phases K`, then
`vigie simulate advance`): no query fails and no load fails. After the last load, the view
reads the final state: the same findings as `vigie findings`.
"""

from __future__ import annotations

import re

import csv
import io
import multiprocessing
import os
import socket
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest
from fastapi import Header, HTTPException

from tests.conftest import vigie
from vigie import db
from vigie.config import load_settings
from vigie.present import query
from vigie.simulate.bodycam_server import BodycamServer

pytestmark = pytest.mark.slow

PHASES = 3
PAUSE_S = 0.2  # between two queries of one reader: 20 readers still overlap, and 2 cores leave the loads some CPU
READERS_HTTP = 10
READERS_DB = 10


def _who(x_test_user: str | None = Header(None)) -> str:
    if not x_test_user:
        raise HTTPException(401, "Not authenticated")
    return x_test_user


def _write(path: Path, text: str) -> None:
    """Replace a file atomically: the view reads vigie.yml at every request."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _load(estate: Path) -> None:
    """`vigie run` as its own process, the body-camera API served for this phase's events."""
    config = estate / "vigie.yml"
    text = config.read_text()
    with BodycamServer(estate / "bodycam_events.jsonl", token="sim") as server:
        _write(config, re.sub(r"http://127\.0\.0\.1:(PORT|\d+)", server.url, text))
        try:
            run = vigie("run", "--config", str(config), "--wait", "600", env={"BODYCAM_TOKEN": "sim"})
        finally:  # a port that parses (readers load this file): the run's server is gone
            _write(config, text.replace("http://127.0.0.1:PORT", "http://127.0.0.1:9"))
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]


@pytest.mark.timeout(1500)  # two cores for twenty readers and the loads: minutes, not seconds
def test_twenty_readers_during_a_sequence_of_loads(tmp_path: Path) -> None:
    import uvicorn

    from vigie.present.view import create_app

    estate = tmp_path / "estate"
    vigie("simulate", "estate", str(estate), "--events", "3000", "--seed", "5", "--phases", str(PHASES), check=True)
    _load(estate)  # phase 1: the published file exists before the readers start
    config = estate / "vigie.yml"
    settings = load_settings(config)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(config, user=_who), host="127.0.0.1", port=port,
                                           log_level="warning"))
    serving = threading.Thread(target=server.run, daemon=True)
    serving.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline and serving.is_alive(), "the view did not start"
        time.sleep(0.1)

    stop = threading.Event()
    failures: list[str] = []
    done: Counter = Counter()
    batches_seen: dict[str, set] = {"http": set(), "db": set()}
    lock = threading.Lock()
    slowest = [0.0]

    def http_reader(i: int) -> None:
        routes = ["/api/findings", "/", "/sources", "/quarantine", "/api/findings?rule=RET-01",
                  "/report?format=csv&rule=AUT-01"]
        with httpx.Client(base_url=base, headers={"X-Test-User": f"reader-{i}"}, timeout=600) as client:
            n = i
            while not stop.is_set():
                route = routes[n % len(routes)]
                n += 1
                try:
                    started = time.monotonic()
                    r = client.get(route)
                    with lock:
                        slowest[0] = max(slowest[0], time.monotonic() - started)
                    if r.status_code != 200:
                        raise AssertionError(f"{r.status_code} {r.text[:200]}")
                    if route == "/sources":
                        seen = {int(b) for b in _last_batches(r.text)}
                        with lock:
                            batches_seen["http"] |= seen
                    with lock:
                        done["http"] += 1
                except Exception as exc:  # noqa: BLE001 - every failure is the finding of this test
                    with lock:
                        failures.append(f"http {route}: {exc!r}")
                stop.wait(PAUSE_S)

    ctx = multiprocessing.get_context("spawn")
    db_stop, results = ctx.Event(), ctx.Queue()
    db_readers = [ctx.Process(target=_db_reader, args=(i, str(config), db_stop, results)) for i in range(READERS_DB)]
    for p in db_readers:
        p.start()

    def collect() -> None:
        while True:
            kind, value = results.get()
            with lock:
                if kind == "ok":
                    done["db"] += 1
                    batches_seen["db"].add(value)
                elif kind == "failed":
                    failures.append(f"db: {value}")
                else:
                    return

    collector = threading.Thread(target=collect)
    collector.start()
    readers = [threading.Thread(target=http_reader, args=(i,)) for i in range(READERS_HTTP)]
    for t in readers:
        t.start()
    try:
        before = dict(done)
        for _ in range(2, PHASES + 1):
            vigie("simulate", "advance", str(estate), check=True)
            _load(estate)  # asserts the load succeeded
        during = dict(done)
    finally:
        stop.set()
        db_stop.set()
        for t in readers:
            t.join(timeout=600)
        for p in db_readers:
            p.join(timeout=600)
        results.put(("end", None))
        collector.join(timeout=60)
    assert not any(t.is_alive() for t in readers) and not any(p.is_alive() for p in db_readers)
    assert all(p.exitcode == 0 for p in db_readers)
    assert failures == [], failures[:10]
    # Everyone really read during the loads.
    assert during.get("http", 0) - before.get("http", 0) >= READERS_HTTP
    assert during.get("db", 0) - before.get("db", 0) >= READERS_DB

    # Once the loads are over and the readers gone, the view reads the final published state.
    known_at = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
    with httpx.Client(base_url=base, headers={"X-Test-User": "check"}, timeout=120) as client:
        got = client.get("/api/findings", params={"known_at": known_at, "as_of": known_at}).json()
    server.should_exit = True
    serving.join(timeout=30)
    cli = list(csv.DictReader(io.StringIO(vigie("findings", "--config", str(config), "--as-of", known_at,
                                                 "--known-at", known_at, check=True).stdout)))
    assert [{k: f[k] for k in cli[0]} for f in got] == cli
    con = db.reader(settings.warehouse)
    try:
        loads = con.execute("SELECT count(*) FROM oversight.batches WHERE status = 'loaded' AND source <> 'register'").fetchone()[0]
        failed = con.execute("SELECT count(*) FROM oversight.batches WHERE status = 'failed'").fetchone()[0]
    finally:
        con.close()
    assert failed == 0 and loads >= PHASES * len(settings.sources) - 4  # a phase may bring nothing to a source
    print(f"\nreads: {dict(done)}; slowest page {slowest[0]:.1f} s; last batches seen by HTTP readers {sorted(batches_seen['http'])}, "
          f"by DuckDB readers {sorted(batches_seen['db'])}", file=os.sys.stderr)


def _db_reader(i: int, config: str, stop, results) -> None:  # noqa: ANN001
    """Another process reading the published file, as an inspector's DuckDB client would."""
    settings = load_settings(Path(config))
    while not stop.is_set():
        try:
            con = db.reader(settings.warehouse)
            try:
                if i % 2:
                    con.execute("SELECT count(*) FROM oversight.findings").fetchone()
                else:
                    query.findings(con, settings, query.Selection.parse(settings.timezone))
                (last,) = con.execute("SELECT max(batch_id) FROM oversight.batches").fetchone()
            finally:
                con.close()
            results.put(("ok", last))
        except Exception as exc:  # noqa: BLE001 - every failure is the finding of this test
            results.put(("failed", repr(exc)))
        stop.wait(PAUSE_S)


def _last_batches(html: str) -> list[str]:
    """The 'last batch' column of /sources (third cell of each source row)."""
    import re

    return re.findall(r'<tr data-source="[^"]+"><td>[^<]*</td><td>[^<]*</td><td class="n">(\d+)</td>', html)
