"""Acceptance: an estate delivered in phases ends in the same state as one full load, and
the state known at the end of each earlier phase stays readable, unchanged."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pytest

from vigie import pipeline
from vigie.config import load_settings
from vigie.simulate.bodycam_server import BodycamServer
from vigie.simulate.estate import advance, generate

N_EVENTS = 20_000
PHASES = 3
TABLES = ("authorisations", "vms_cameras", "vms_recordings", "vms_audit_log", "bodycam_events",
          "drone_flights", "drone_track_points", "lapi_reads", "lapi_queries")


def _state(warehouse: Path, known_at: datetime | str = "infinity") -> dict[str, list]:
    """Content of every table as known at ``known_at``, without load bookkeeping."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        state = {
            t: con.execute(f"SELECT * EXCLUDE (batch_id, ord) FROM {t}_at(?::TIMESTAMPTZ) ORDER BY ALL"
                           if t != "authorisations" else
                           f"SELECT * EXCLUDE (batch_id, location) FROM {t}_at(?::TIMESTAMPTZ) ORDER BY ALL",
                           [known_at]).fetchall()
            for t in TABLES
        }
        state["quarantine"] = con.execute("SELECT source, kind, ref, location, reason FROM oversight.quarantine ORDER BY ALL").fetchall()
    return state


def _load(estate: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BODYCAM_TOKEN", "sim")
    with BodycamServer(estate / "bodycam_events.jsonl", token="sim") as server:
        config = estate / "vigie.yml"
        text = config.read_text()
        config.write_text(text.replace("http://127.0.0.1:PORT", server.url))
        try:
            report = pipeline.run(load_settings(config), validate=False)
        finally:
            config.write_text(text)
    assert not report.failed, report.failed[0].error
    for s in report.sources:
        c = s.counts
        assert c.received == c.loaded + c.duplicates + c.quarantined


def test_phased_delivery_ends_as_one_full_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    full = generate(tmp_path / "full", n_events=N_EVENTS, seed=11, phases=1).out_dir
    _load(full, monkeypatch)

    phased = generate(tmp_path / "phased", n_events=N_EVENTS, seed=11, phases=PHASES)
    snapshots = []
    for phase in range(1, PHASES + 1):
        if phase > 1:
            phased = advance(phased.out_dir)
        _load(phased.out_dir, monkeypatch)
        known_at = datetime.now(timezone.utc)
        snapshots.append((known_at, _state(phased.out_dir / "var" / "warehouse.duckdb", known_at)))
        time.sleep(0.01)

    warehouse = phased.out_dir / "var" / "warehouse.duckdb"
    final, expected = _state(warehouse), _state(full / "var" / "warehouse.duckdb")
    for table in expected:
        assert final[table] == expected[table], table
    assert snapshots[0][1] != snapshots[-1][1]  # phases really delivered different things
    for known_at, state in snapshots:  # each earlier state reads back unchanged
        assert _state(warehouse, known_at) | {"quarantine": None} == state | {"quarantine": None}

    # Running again on the unchanged last phase loads nothing.
    with duckdb.connect(str(warehouse), read_only=True) as con:
        last = con.execute("SELECT max(batch_id) FROM batches").fetchone()[0]
    _load(phased.out_dir, monkeypatch)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("SELECT coalesce(sum(loaded), 0) FROM batches WHERE batch_id > ?", [last]).fetchone()[0] == 0
