"""Sources are pulled two at a time, in threads, beside the loads (pipeline.PULLS_AT_ONCE);
their batches are still opened, loaded and committed one after the other, in order."""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb
import pytest

from tests.conftest import copy_samples, with_closed_port
from vigie import pipeline
from vigie.config import load_settings, parse_instant


def test_two_pulls_run_at_once_and_batches_commit_in_source_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
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
    assert rows == [("drones-69", "loaded", True), ("lapi-a7", "loaded", True)]
    assert chained == ["drones-69", "lapi-a7"]  # committed and sealed in the configuration's order
    assert [s.source for s in report.sources] == ["drones-69", "lapi-a7"]
