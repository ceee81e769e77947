"""`make bench` works end to end on a tiny estate. Its timings are reported, never asserted."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path


def test_bench_measures_every_step_and_writes_results(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "vigie.bench"], capture_output=True, text=True, timeout=1800,
                         env={**os.environ, "BENCH_SIZES": "1500 3000", "BENCH_DIR": str(tmp_path),
                              "BENCH_DELTA_EVENTS": "30", "BENCH_SETTLE_S": "20", "BENCH_DELTA_REPEATS": "2"})
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    # The second size's first run waits for the first size's removed files to age (ext4).
    assert run.stdout.count("(waiting ") == 1, run.stdout
    assert run.stdout.index("(waiting ") > run.stdout.index("== 3000 events")
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["n_events"] == 3000  # the last size is the primary one
    steps = ("floor", "first_run", "noop_run", "delta_run", "delta_same", "findings", "report_html", "report_pdf",
             "verify")
    for step in steps:
        assert set(results[step]) >= {"wall_s", "rows_per_s", "peak_rss_mb", "ratio_to_floor"}, step
        assert results[step]["wall_s"] > 0 and results[step]["peak_rss_mb"] > 0
    assert results["floor"]["ratio_to_floor"] == 1.0
    assert 0 < results["first_run"]["manifest_s"] < results["first_run"]["wall_s"]  # measured, not asserted fast
    assert "first_run" in run.stdout and "x floor" in run.stdout
    # One object per size, each step with its wall time, rows/s and peak RSS.
    assert [size["n_events"] for size in results["sizes"]] == [1500, 3000]
    for size in results["sizes"]:
        for step in steps:
            assert size[step]["wall_s"] > 0 and size[step]["rows_per_s"] > 0 and size[step]["peak_rss_mb"] > 0
    assert results["sizes"][1]["first_run"]["wall_s"] == results["first_run"]["wall_s"]
    assert all(0 < size["first_run"]["manifest_s"] < size["first_run"]["wall_s"] for size in results["sizes"])
    assert results["sizes"][1]["first_run"]["manifest_share"] == results["first_run"]["manifest_share"]
    # Both deltas really were new data: the warehouse loaded them; the second the same at each size.
    assert [size["delta_same"]["rows"] for size in results["sizes"]] == [30, 30]
    import duckdb

    # The short steps ran twice each, a delta from the warehouse as it was before: the second
    # run loaded the new rows again (none of them a duplicate), and left no landing folder
    # of a batch the warehouse does not hold.
    for step in ("noop_run", "delta_run", "delta_same"):
        runs = results[step]["runs_s"]
        assert [size[step]["runs_s"] for size in results["sizes"]][-1] == runs  # per size too
        assert len(runs) == 2 and results[step]["wall_s"] == statistics.median(runs)
    var = tmp_path / "work" / "var"
    with duckdb.connect(str(var / "warehouse.duckdb"), read_only=True) as con:
        for tag in ("delta", "same"):
            assert con.execute(f"SELECT count(*) FROM oversight.lapi_reads WHERE read_id LIKE 'rd-{tag}-%'").fetchone()[0] > 0
            assert con.execute(f"SELECT count(*) FROM oversight.bodycam_events WHERE event_id LIKE 'e-{tag}-%'").fetchone()[0] > 0
        assert con.execute("SELECT count(*) FROM oversight.duplicates WHERE ref LIKE 'e-same-%' OR ref LIKE 'rd-same-%'"
                           ).fetchone()[0] == 0
        # Each of the ten new events loaded, or quarantined where the estate's event it copies
        # breaks the contract (the simulator writes such events too).
        loaded = con.execute("SELECT count(*) FROM oversight.bodycam_events WHERE event_id LIKE 'e-same-%'").fetchone()[0]
        refused = con.execute("SELECT count(*) FROM oversight.quarantine WHERE ref LIKE 'e-same-%'").fetchone()[0]
        assert loaded >= 5 and loaded + refused == 10
        batches = {(s, str(b)) for s, b in con.execute("SELECT source, batch_id FROM oversight.batches").fetchall()}
        # Writer sessions since the first load's compaction: the no-op and the two deltas, once
        # each, however often each was run (they decide when a session compacts).
        assert con.execute("SELECT sessions FROM main.storage_compaction").fetchone()[0] == 3
    landed = {(d.parent.name, d.name) for d in (var / "landing").glob("*/*")}
    assert landed and landed <= batches
    assert not (tmp_path / "work" / "var.snapshot").exists()


def test_a_delivery_copies_distinct_recent_events_of_the_estate(tmp_path: Path) -> None:
    """Each delivery's events copy the simulator's last events, each once, never an earlier
    delivery's: the 50 000-event delta lands on as much history at 20 M as at 5 M."""
    import sqlite3

    from vigie.bench import add_delta

    estate = tmp_path
    (estate / "lapi").mkdir()
    with sqlite3.connect(estate / "vms.sqlite") as con:
        con.execute("CREATE TABLE audit_log (log_id INTEGER PRIMARY KEY, logged_at TEXT, user_login TEXT, action TEXT)")
        con.execute("INSERT INTO audit_log VALUES (1, '2026-04-30T09:00:00', 'u', 'LOGIN')")
    original = [{"seq": i, "id": f"e-{i:012x}", "evidence_id": f"ev-{i // 3}", "action": "evidence.viewed"}
                for i in range(1, 3001)]
    lines = [json.dumps(e) for e in original]
    lines.insert(2990, "{not json")  # an estate holds lines that are not events: skipped
    (estate / "bodycam_events.jsonl").write_text("\n".join(lines) + "\n")

    def delivered(tag: str) -> list[dict]:
        text = (estate / "bodycam_events.jsonl").read_text().splitlines()
        return [json.loads(x) for x in text if f'"e-{tag}-' in x]

    assert add_delta(estate, 1.0, 300, tag="delta") == 300
    first = delivered("delta")
    assert len(first) == 100
    assert [e["evidence_id"] for e in first] == [e["evidence_id"] for e in original[-100:]]
    assert [e["seq"] for e in first] == list(range(3001, 3101))  # after the highest seq
    add_delta(estate, 1.0, 60, tag="same")
    second = delivered("same")
    # The simulator's last 20 events again, not copies of the delivery just before.
    assert [e["evidence_id"] for e in second] == [e["evidence_id"] for e in original[-20:]]
    assert [e["seq"] for e in second] == list(range(3101, 3121))
    # More events wanted than the estate holds: its events, in turn.
    add_delta(estate, 1.0, 3 * 3005, tag="big")
    assert [e["evidence_id"] for e in delivered("big")][:3000] == [e["evidence_id"] for e in original]
