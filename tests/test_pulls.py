"""Sources are pulled two at a time, in threads, beside the loads (pipeline.PULLS_AT_ONCE);
their batches are opened in the configuration's order, and each is loaded and committed as
its pull ends."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import duckdb
import pytest

from tests.conftest import copy_samples, with_closed_port
from vigie import pipeline
from vigie.config import load_settings, parse_instant


def test_two_pulls_run_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    estate = with_closed_port(copy_samples(tmp_path))
    settings = load_settings(estate / "vigie.yml")
    both = threading.Barrier(2, timeout=30)  # passed only if the two pulls are under way together
    seen: list[tuple[str, str]] = []
    real = pipeline._pull

    def pull(p):  # noqa: ANN001, ANN202 - the real pull, once the other one has started too
        seen.append((p.source.name, threading.current_thread().name))
        both.wait()
        return real(p)

    monkeypatch.setattr(pipeline, "_pull", pull)
    report = pipeline.run(settings, ["drones-69", "lapi-a7"], validate=False, send_alerts=False,
                          as_of=parse_instant("2026-04-20T12:00:00+02:00", settings.timezone))
    assert [s.error for s in report.sources] == [None, None]
    assert sorted(name for name, _ in seen) == ["drones-69", "lapi-a7"]
    assert all(thread.startswith("vigie-pull") for _, thread in seen)  # not the thread that loads
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        rows = con.execute("SELECT source, status, received > 0 FROM batches WHERE source <> 'register' "
                           "ORDER BY batch_id").fetchall()
        chained = [s for (s,) in con.execute("SELECT source FROM manifests WHERE source <> 'register' ORDER BY seq").fetchall()]
    finally:
        con.close()
    assert rows == [("drones-69", "loaded", True), ("lapi-a7", "loaded", True)]  # opened in order
    assert sorted(chained) == ["drones-69", "lapi-a7"]  # each sealed once, in whichever order the pulls ended
    assert [s.source for s in report.sources] == ["drones-69", "lapi-a7"]


def test_a_source_loads_as_its_pull_ends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first source's pull is held until the second source is committed: with loads in
    the configuration's order it would wait for ever (here, the 30 s of the event's wait)."""
    estate = with_closed_port(copy_samples(tmp_path))
    settings = load_settings(estate / "vigie.yml")
    lapi_committed = threading.Event()
    waited: list[bool] = []
    real_pull, real_load = pipeline._pull, pipeline._load

    def pull(p):  # noqa: ANN001, ANN202
        if p.source.name == "drones-69":
            waited.append(lapi_committed.wait(timeout=30))
        return real_pull(p)

    def load(con, settings, p, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        rep = real_load(con, settings, p, *args, **kwargs)
        if p.source.name == "lapi-a7":
            lapi_committed.set()
        return rep

    monkeypatch.setattr(pipeline, "_pull", pull)
    monkeypatch.setattr(pipeline, "_load", load)
    report = pipeline.run(settings, ["drones-69", "lapi-a7"], validate=False, send_alerts=False,
                          as_of=parse_instant("2026-04-20T12:00:00+02:00", settings.timezone))
    assert waited == [True]  # the drones' pull went on only once the LAPI batch was committed
    assert [(s.source, s.error) for s in report.sources] == [("drones-69", None), ("lapi-a7", None)]
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        opened = [s for (s,) in con.execute("SELECT source FROM batches WHERE source <> 'register' ORDER BY batch_id").fetchall()]
        committed = [s for (s,) in con.execute("SELECT source FROM batches WHERE source <> 'register' "
                                               "ORDER BY committed_at").fetchall()]
        chained = [s for (s,) in con.execute("SELECT source FROM manifests WHERE source <> 'register' ORDER BY seq").fetchall()]
        findings = con.execute("SELECT count(*) FROM run_findings").fetchone()[0]
    finally:
        con.close()
    assert opened == ["drones-69", "lapi-a7"]
    assert committed == chained == ["lapi-a7", "drones-69"]
    assert findings == sum(report.findings_by_rule.values()) > 0


def test_a_pull_starts_as_soon_as_its_batch_is_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The second source's batch is opened only once the first source's pull is under way:
    the first pull does not wait for every batch to be opened."""
    estate = with_closed_port(copy_samples(tmp_path))
    settings = load_settings(estate / "vigie.yml")
    first_pulling = threading.Event()
    waited: list[bool] = []
    real_begin, real_pull = pipeline._begin, pipeline._pull

    def begin(con, settings, source):  # noqa: ANN001, ANN202
        if source.name == "lapi-a7":
            waited.append(first_pulling.wait(timeout=30))
        return real_begin(con, settings, source)

    def pull(p):  # noqa: ANN001, ANN202
        if p.source.name == "drones-69":
            first_pulling.set()
        return real_pull(p)

    monkeypatch.setattr(pipeline, "_begin", begin)
    monkeypatch.setattr(pipeline, "_pull", pull)
    report = pipeline.run(settings, ["drones-69", "lapi-a7"], validate=False, send_alerts=False,
                          as_of=parse_instant("2026-04-20T12:00:00+02:00", settings.timezone))
    assert waited == [True]
    assert [(s.source, s.error) for s in report.sources] == [("drones-69", None), ("lapi-a7", None)]
    assert report.sources[0].batch_id < report.sources[1].batch_id  # opened in the configuration's order


def test_a_drop_folder_s_known_files_are_read_by_its_pull(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A drop folder's files as last seen (91 000 rows of drop_files at 20 M events) are read
    in its pull's thread, on a connection of its own, not by the thread that loads the other
    sources; and only when the folder's listing changed since a pull left every file in it
    known: a second run on the same folder reads none, a third after a file was touched finds
    every file known."""
    from vigie import cursors

    estate = with_closed_port(copy_samples(tmp_path))
    settings = load_settings(estate / "vigie.yml")
    real_load_files = cursors.load_files
    read: list[tuple[str, int]] = []

    def load_files(con, source):  # noqa: ANN001, ANN202
        files = real_load_files(con, source)
        read.append((threading.current_thread().name, len(files)))
        return files

    monkeypatch.setattr(cursors, "load_files", load_files)
    as_of = parse_instant("2026-04-20T12:00:00+02:00", settings.timezone)
    runs = [pipeline.run(settings, ["drones-69"], validate=False, send_alerts=False, as_of=as_of) for _ in range(2)]
    track = sorted((estate / "drones" / "tracks").iterdir())[0]
    st = track.stat()
    os.utime(track, ns=(st.st_atime_ns, st.st_mtime_ns - 10**10))  # touched: its listing changed, not its bytes
    runs.append(pipeline.run(settings, ["drones-69"], validate=False, send_alerts=False, as_of=as_of))
    assert [s.error for r in runs for s in r.sources] == [None, None, None]
    assert [thread.startswith("vigie-pull") for thread, _ in read] == [True, True]  # the first and third runs
    assert read[0][1] == 0 and read[1][1] > 0  # nothing known at first, every landed file the third time
    assert runs[0].sources[0].counts.loaded > 0 and [r.sources[0].counts.received for r in runs[1:]] == [0, 0]
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        (mtime,) = con.execute("SELECT mtime_ns FROM drop_files WHERE source = 'drones-69' AND name = ? "
                               "ORDER BY batch_id DESC LIMIT 1", [f"tracks/{track.name}"]).fetchone()
    finally:
        con.close()
    assert mtime == st.st_mtime_ns - 10**10  # the touched file known with its new mtime


def test_a_cursor_is_read_and_written_by_its_pull(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A VMS cursor holds its lookback window's recordings (3.5 MB of JSON at 20 M events):
    it is parsed and encoded again in its pull's thread, not by the thread that loads the
    other sources; one that did not move is recorded as it was stored."""
    estate = with_closed_port(copy_samples(tmp_path))
    settings = load_settings(estate / "vigie.yml")
    as_of = parse_instant("2026-04-20T12:00:00+02:00", settings.timezone)
    begun: list[tuple[bool, bool]] = []  # (a cursor is stored, the main thread parsed it)
    encoded: list[tuple[str, str, bool]] = []  # (thread, text, the stored text itself)
    real_begin, real_after = pipeline._begin, pipeline._cursor_after

    def begin(con, settings, source):  # noqa: ANN001, ANN202
        p = real_begin(con, settings, source)
        begun.append((p.stored_cursor is not None, p.cursor is not None))
        return p

    def cursor_after(p, pulled):  # noqa: ANN001, ANN202
        text = real_after(p, pulled)
        encoded.append((threading.current_thread().name, text, text is p.stored_cursor))
        return text

    monkeypatch.setattr(pipeline, "_begin", begin)
    monkeypatch.setattr(pipeline, "_cursor_after", cursor_after)
    runs = [pipeline.run(settings, ["vms-lyon"], validate=False, send_alerts=False, as_of=as_of) for _ in range(2)]
    assert [s.error for r in runs for s in r.sources] == [None, None]
    assert runs[0].sources[0].counts.loaded > 0 and runs[1].sources[0].counts.loaded == 0
    assert begun == [(False, False), (True, False)]
    assert [thread.startswith("vigie-pull") for thread, _, _ in encoded] == [True, True]
    assert [same for _, _, same in encoded] == [False, True]  # the second pull moved nothing
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        stored = con.execute("SELECT string_agg(text, '' ORDER BY part) FROM source_cursor_parts "
                             "WHERE source = 'vms-lyon'").fetchone()[0]
        ledger = con.execute("SELECT cursor_before, cursor_after FROM batches WHERE source = 'vms-lyon' "
                             "ORDER BY batch_id").fetchall()
    finally:
        con.close()
    assert stored == encoded[0][1] == encoded[1][1]
    assert json.loads(stored)["audit_log_id"] is not None
    assert ledger == [("null", pipeline.ledger_cursor(stored)), (pipeline.ledger_cursor(stored),) * 2]
