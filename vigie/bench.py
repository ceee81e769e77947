"""`make bench`: the pipeline's speed and memory against DuckDB's raw load of the same files.

For each size of BENCH_SIZES (space-separated event counts, e.g. "1000000 5000000
20000000"; else BENCH_N, default 1 000 000), writes an estate with the simulator, then
measures, each as a whole process (start-up included), wall time and peak RSS:

  floor       DuckDB alone reading the same sources into tables (the floor)
  first_run   `vigie run` from empty to complete
  noop_run    `vigie run` again, nothing new
  delta_run   `vigie run` after 1 % new events (the new LAPI file settled: see `add_delta`)
  delta_same  `vigie run` after BENCH_DELTA_EVENTS new events (default 50 000, 1 % of 5 M)
              whatever the size: how a run's cost grows with the warehouse, new data held
              constant (issue #12 compares it across sizes). Each delivery's events copy the
              estate's most recent events, each once (`recent_events`)
  findings    `vigie findings` over the result
  verify      `vigie verify`: every manifest recomputed, the chain and the checkpoints walked

The three short steps (noop_run, delta_run, delta_same) vary from one run to the next by as
much as issue #12's margins: each runs BENCH_DELTA_REPEATS times (default 3) from the same
warehouse, restored between runs, and reports the median (``runs_s``: every run).

The first run's manifests (issue #14) are timed as they are sealed (``manifests.seal_ms``):
``first_run.manifest_s`` and ``manifest_share`` say what the chain adds to a first load.

Results go to var/bench/results.json (the last size's steps at the top level as before, every
size under "sizes") and tables on the terminal. Timings are never test
assertions; tests/test_bench.py runs this harness on a tiny estate to check that it works.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

from vigie.simulate.bodycam_server import BodycamServer
from vigie.simulate.estate import generate

REPO = Path(__file__).resolve().parent.parent
TOKEN = "bench"


def measure(args: list[str], env: dict | None = None) -> dict:
    """Run a command; wall seconds and the process tree's peak RSS (MB), from wait4."""
    started = time.perf_counter()
    proc = subprocess.Popen(args, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{stderr[-3000:]}")
    return {"wall_s": round(wall, 3), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


def floor(estate: Path, out: Path) -> None:
    """DuckDB alone: every source file into a table, with no checks (run as its own process)."""
    import duckdb

    from vigie.db import load_extension

    out.unlink(missing_ok=True)
    con = duckdb.connect(str(out))
    load_extension(con, "sqlite_scanner")
    for table in ("cameras", "recordings", "audit_log"):
        con.execute(f"CREATE TABLE vms_{table} AS SELECT * FROM sqlite_scan(?, '{table}')", [str(estate / "vms.sqlite")])
    # Explicit columns, as the pipeline's staging: no type sniffing of thousands of small files.
    text = lambda *cols: "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in cols) + "}"  # noqa: E731
    json_opts = "format = 'newline_delimited', ignore_errors = true, maximum_object_size = 16777216"
    con.execute(f"CREATE TABLE events AS SELECT * FROM read_json(?, {json_opts})", [str(estate / "bodycam_events.jsonl")])
    con.execute(f"CREATE TABLE flights AS SELECT * FROM read_json(?, {json_opts})", [str(estate / "drones/flights/*.jsonl")])
    csv_opts = "header = true, ignore_errors = true, filename = true"
    for table, pattern, cols in (("tracks", "drones/tracks/*.csv", ("t", "lat", "lon", "alt_m")),
                                 ("reads", "lapi/reads_*.csv", ("read_id", "read_at", "camera_id", "plate_hash", "matched", "deleted_at")),
                                 ("queries", "lapi/queries_*.csv", ("event_id", "at", "user", "read_id", "purpose", "procedure_ref"))):
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM read_csv(?, columns = {text(*cols)}, {csv_opts})",
                    [str(estate / pattern)])
    con.close()


def manifest_seconds(warehouse: Path) -> float:
    """Time the first run spent sealing its batches' manifests, as it recorded it."""
    from vigie import db

    con = db.reader(warehouse)
    try:
        return (con.execute("SELECT coalesce(sum(seal_ms), 0) FROM manifests").fetchone()[0] or 0) / 1000
    finally:
        con.close()


def add_delta(estate: Path, share: float = 0.01, n_events: int = 0, tag: str = "delta") -> int:
    """Deliver about `share` x n_events new rows: body-camera events, VMS audit rows, a LAPI file.
    ``tag`` names the new events and reads, so that a second delivery is new too.

    The new events copy the estate's most recent ones, each once (``recent_events``): later
    events of the most recent evidences, as a day's delivery brings, whatever the size."""
    k = max(3, int(n_events * share))
    events = estate / "bodycam_events.jsonl"
    with open(events, "rb") as f:  # the last lines give the highest seq (earlier deliveries' included)
        f.seek(max(0, events.stat().st_size - 200_000))
        seq = max(e["seq"] for e in _events(f.read().splitlines()[1:]) if isinstance(e.get("seq"), int))
    recent = recent_events(estate, k // 3)
    with open(events, "a") as f:
        for i in range(k // 3):
            e = dict(recent[i % len(recent)])
            seq += 1
            e.update(seq=seq, id=f"e-{tag}-{seq}")
            f.write(json.dumps(e) + "\n")
    with sqlite3.connect(estate / "vms.sqlite") as con:
        (top,) = con.execute("SELECT max(log_id) FROM audit_log").fetchone()
        con.executemany("INSERT INTO audit_log (log_id, logged_at, user_login, action) VALUES (?, '2026-04-30T10:00:00', 'bench', 'LOGIN')",
                        [(top + 1 + i,) for i in range(k // 3)])
    reads = estate / "lapi" / f"reads_2026-12-31_{tag}.csv"
    with open(reads, "w") as f:
        f.write("read_id,read_at,camera_id,plate_hash,matched,deleted_at\n")
        for i in range(k - 2 * (k // 3)):
            f.write(f"rd-{tag}-{i},2026-04-30T10:00:00+02:00,LAPI-A7-01,{i:016x},0,\n")
    # Dropped a minute ago, as a delivery between two scheduled runs: settled when the run lists
    # it. Written just before, the run would wait up to `settle_seconds` (2 s) for it to hold
    # still, and the delta runs would measure that wait (until 2026-12-05 they did: at 5 M,
    # where the other loads end sooner, it weighed on the delta more than at 20 M).
    minute_ago = time.time_ns() - 60 * 10**9
    os.utime(reads, ns=(minute_ago, minute_ago))
    return k


def _events(lines: list[bytes]) -> list[dict]:
    """The lines that are JSON objects (an estate also holds lines that are not)."""
    out = []
    for line in lines:
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if isinstance(e, dict):
            out.append(e)
    return out


def recent_events(estate: Path, n: int) -> list[dict]:
    """The last ``n`` events the simulator wrote, before any delivery of the bench's.

    Until 2026-12-06 every delivery copied the last 200 KB of the file over and over (about 600
    events), so that the 1 % delta piled 66 000 events onto some 560 evidences at 20 M (16 000
    at 5 M), and the 50 000-event delta after it landed on the same evidences: it re-read
    100 000 events of their history at 20 M against 18 000 at 5 M, the new data not the same
    at both sizes. Copying distinct recent events gives each touched evidence a few more
    events, as the estate's own (3.1 per evidence at every size)."""
    events = estate / "bodycam_events.jsonl"
    mark = estate / ".estate_events_bytes"  # where the simulator's events end: deliveries come after
    if not mark.exists():
        mark.write_text(str(events.stat().st_size))
    end = int(mark.read_text())
    span = 200_000
    while True:  # read back until n events (lines are about 350 bytes)
        with open(events, "rb") as f:
            f.seek(max(0, end - span))
            lines = f.read(min(end, span)).splitlines()
        found = _events(lines if span >= end else lines[1:])  # the first line may be cut
        if len(found) >= n or span >= end:
            return found[-n:]  # n is at least 1 (`add_delta`); found[-0:] would be all of them
        span *= 2


STEPS = ("floor", "first_run", "noop_run", "delta_run", "delta_same", "findings", "report_html", "report_pdf", "verify")

# New events of `delta_same`: the same number at every size (1 % of 5 M). `delta_run` brings
# 1 % of each size, so 4 times more data at 20 M than at 5 M; a cost that follows the new data
# and not the warehouse shows as a flat `delta_same` across sizes.
DELTA_EVENTS = int(os.environ.get("BENCH_DELTA_EVENTS", "50000").replace("_", ""))


# A delta's wall time varies from one run to the next by up to 0.9 s at 5 M (2.2 s at 20 M)
# on the machines measured so far, more than the margins of issue #12's targets: the no-op
# and each delta run this many times from the same warehouse (restored between runs) and
# report the median, every run's time beside it.
DELTA_REPEATS = int(os.environ.get("BENCH_DELTA_REPEATS", "3"))


def _copy_uncached(src: Path, dest: Path, uncached: Path) -> None:
    """Copy ``src`` to ``dest``, then drop ``uncached`` (one of them) from the page cache: the
    snapshot's copies (the warehouse's three files, 6 GB at 20 M) are not to push the estate's
    files out of the cache, which a run without copies finds there."""
    shutil.copyfile(src, dest)
    fd = os.open(uncached, os.O_RDONLY)
    try:
        if uncached == dest:  # written pages are dropped once on disk only
            os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


class WarehouseSnapshot:
    """The pipeline's state in ``var/`` (the warehouse files and the integrity checkpoints
    beside them), put back as it was; the landing folders of batches made since are removed.
    The sources are not touched: the delta that was added to them stays, and comes again.
    The copy is kept out of the page cache, the files put back stay in it, as a run leaves them."""

    def __init__(self, var: Path) -> None:
        self.var, self.copy = var, var.with_name("var.snapshot")
        shutil.rmtree(self.copy, ignore_errors=True)
        self.copy.mkdir()
        # What a run writes beside the warehouse; not the floor's database, which no run touches.
        self.files = [f.name for f in var.iterdir() if f.is_file() and f.name != "floor.duckdb"]
        for name in self.files:
            _copy_uncached(var / name, self.copy / name, uncached=self.copy / name)
        self.entries = set(self._entries())
        subprocess.run(["sync"], check=True)  # the copy's writeback not inside the next run

    def _entries(self) -> list[Path]:
        """What ``var`` holds, one level into each source's landing folder (a batch each)."""
        landing = self.var / "landing"
        top = [e for e in self.var.iterdir() if e != landing]
        return top + ([b for s in landing.iterdir() if s.is_dir() for b in s.iterdir()] if landing.is_dir() else [])

    def restore(self) -> None:
        for entry in self._entries():
            if entry not in self.entries:
                shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
        for name in self.files:
            _copy_uncached(self.copy / name, self.var / name, uncached=self.copy / name)
        subprocess.run(["sync"], check=True)

    def drop(self) -> None:
        shutil.rmtree(self.copy, ignore_errors=True)


def measure_repeated(args: list[str], env: dict, var: Path) -> dict:
    """``measure`` DELTA_REPEATS times from the same state: the median's wall time, the highest
    peak RSS, and each run's wall time (``runs_s``). The state the last run left stays."""
    snapshot = WarehouseSnapshot(var) if DELTA_REPEATS > 1 else None
    runs = []
    try:
        for i in range(DELTA_REPEATS):
            if i:
                snapshot.restore()
            runs.append(measure(args, env))
    finally:
        if snapshot:
            snapshot.drop()
    return median_of(runs)


def median_of(runs: list[dict]) -> dict:
    walls = [r["wall_s"] for r in runs]
    return {"wall_s": statistics.median(walls), "peak_rss_mb": max(r["peak_rss_mb"] for r in runs), "runs_s": walls}


def _runs(result: dict) -> str:
    runs = result.get("runs_s", [])
    return f" (median of {', '.join(map(str, runs))})" if len(runs) > 1 else ""


# ext4 does not give a new file an inode freed in the last 30 to 55 seconds: creating a file
# then walks past every one of them. Removing the last run's folder (50 000 files at 5 M)
# just before the first run made its landing of 23 000 drone files cost 5 to 6 s more
# (docs/performance-history.md), a cost of the harness that no scheduled load pays.
SETTLE_S = float(os.environ.get("BENCH_SETTLE_S", "60"))


def _settle(removed_at: float | None) -> None:
    """Wait until SETTLE_S seconds have passed since the harness removed a folder."""
    left = SETTLE_S - (time.monotonic() - removed_at) if removed_at is not None else 0
    if left > 0:
        print(f"(waiting {left:.0f} s: the files removed before this size are still recent for ext4)", flush=True)
        time.sleep(left)


def sizes() -> list[int]:
    """BENCH_SIZES (space-separated event counts), else BENCH_N, else one million."""
    text = os.environ.get("BENCH_SIZES") or os.environ.get("BENCH_N", "1000000")
    return [int(n.replace("_", "")) for n in text.split()]


def bench(n: int, root: Path) -> dict:
    """Every step on an estate of ``n`` events, in ``root/work``."""
    estate = root / f"estate-{n}"
    marker = estate / ".complete"
    if not marker.exists():
        print(f"writing an estate of {n} events ...", flush=True)
        generate(estate, n_events=n, seed=1)
        marker.write_text("ok")
    work = root / "work"
    removed_at = None
    if work.exists():  # the last run's folder: tens of thousands of files
        subprocess.run(["rm", "-rf", str(work)], check=True)
        removed_at = time.monotonic()
    subprocess.run(["cp", "-r", str(estate), str(work)], check=True)
    (work / "var").mkdir(exist_ok=True)
    as_of = (work / "as_of.txt").read_text().strip()
    vigie = [sys.executable, "-m", "vigie.cli"]
    results: dict = {"n_events": n}
    with BodycamServer(work / "bodycam_events.jsonl", token=TOKEN) as server:
        config = work / "vigie.yml"
        config.write_text(config.read_text().replace("http://127.0.0.1:PORT", server.url))
        env = {"BODYCAM_TOKEN": TOKEN}
        steps = [
            ("floor", [sys.executable, "-m", "vigie.bench", "floor", str(work), str(work / "var" / "floor.duckdb")], n),
            ("first_run", vigie + ["run", "--config", str(config), "--as-of", as_of], n),
            ("noop_run", vigie + ["run", "--config", str(config), "--as-of", as_of], n),
        ]
        for name, args, rows in steps:
            if name == "first_run":
                _settle(removed_at)
            print(f"{name} ...", end="", flush=True)
            # A no-op too is put back between its runs: each counts as a writer session, and
            # the sessions decide when one compacts (`db.compact_after`), the deltas' included.
            results[name] = (measure_repeated(args, env, work / "var") if name == "noop_run"
                             else measure(args, env)) | {"rows": rows}
            print(f" {results[name]['wall_s']} s" + _runs(results[name]), flush=True)
            if name == "first_run":
                sealing = manifest_seconds(work / "var" / "warehouse.duckdb")
                results[name] |= {"manifest_s": round(sealing, 3),
                                  "manifest_share": round(sealing / results[name]["wall_s"], 4)}
                print(f"  of which manifests {sealing:.2f} s ({results[name]['manifest_share']:.1%})", flush=True)
        run = vigie + ["run", "--config", str(config), "--as-of", as_of]
        for step, rows in (("delta_run", lambda: add_delta(work, 0.01, n)),
                           ("delta_same", lambda: add_delta(work, 1.0, DELTA_EVENTS, tag="same"))):
            added = rows()
            print(f"{step} ...", end="", flush=True)
            results[step] = measure_repeated(run, env, work / "var") | {"rows": added}
            print(f" {results[step]['wall_s']} s" + _runs(results[step]), flush=True)
        print("findings ...", end="", flush=True)
        results["findings"] = measure(vigie + ["findings", "--config", str(config), "--as-of", as_of]) | {"rows": n}
        print(f" {results['findings']['wall_s']} s", flush=True)
        for fmt in ("html", "pdf"):  # issue #9: a report over the whole estate in under 30 s
            key = f"report_{fmt}"
            print(f"{key} ...", end="", flush=True)
            out = work / "var" / f"report.{fmt}"
            results[key] = measure(vigie + ["report", "--config", str(config), "--as-of", as_of, "--format", fmt,
                                            "--output", str(out)]) | {"rows": n, "bytes": out.stat().st_size}
            print(f" {results[key]['wall_s']} s, {results[key]['bytes'] / 1e6:.1f} MB", flush=True)
        print("verify ...", end="", flush=True)
        results["verify"] = measure(vigie + ["verify", "--config", str(config)]) | {"rows": n}
        print(f" {results['verify']['wall_s']} s", flush=True)
    floor_s = results["floor"]["wall_s"]
    for key in STEPS:
        r = results[key]
        r["rows_per_s"] = round(r["rows"] / r["wall_s"]) if r["wall_s"] else None
        r["ratio_to_floor"] = round(r["wall_s"] / floor_s, 2)
    return results


def main() -> int:
    if DELTA_REPEATS < 1:
        print(f"BENCH_DELTA_REPEATS must be 1 or more, not {DELTA_REPEATS}", file=sys.stderr)
        return 2
    root = Path(os.environ.get("BENCH_DIR", REPO / "var" / "bench"))
    machine = f"{os.cpu_count()} cores, {os.uname().machine}"
    per_size = []
    for n in sizes():
        print(f"\n== {n} events", flush=True)
        per_size.append(bench(n, root))
    # The last size is the primary one: its steps keep the top-level keys of one-size runs.
    results = per_size[-1] | {"machine": machine, "sizes": [
        {"n_events": r["n_events"]} | {k: {f: r[k][f] for f in ("wall_s", "rows", "rows_per_s", "peak_rss_mb", "runs_s",
                                                                 "manifest_s", "manifest_share")
                                           if f in r[k]} for k in STEPS} for r in per_size]}
    (root / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    for r in per_size:
        print(f"\nn_events = {r['n_events']}   ({machine})")
        print(f"{'step':<11} {'wall_s':>8} {'rows/s':>10} {'peak_rss_mb':>12} {'x floor':>8}")
        for key in STEPS:
            x = r[key]
            print(f"{key:<11} {x['wall_s']:>8} {x['rows_per_s']:>10} {x['peak_rss_mb']:>12} {x['ratio_to_floor']:>8}")
    if len(per_size) > 1:  # how each cost grows: wall s / rows per s / peak RSS MB, one column per size
        print("\nwall s / rows per s / peak RSS MB")
        print(f"{'step':<11} " + " ".join(f"{r['n_events']:>28}" for r in per_size))
        for key in STEPS:
            cells = [f"{r[key]['wall_s']} / {r[key]['rows_per_s']} / {r[key]['peak_rss_mb']}" for r in per_size]
            print(f"{key:<11} " + " ".join(f"{c:>28}" for c in cells))
        # Cost against the warehouse's size, new data held constant (issue #12: 20 M within 1.3x of 5 M).
        for before, r in zip(per_size, per_size[1:]):
            print(f"delta_same at {r['n_events']} events: {r['delta_same']['wall_s'] / before['delta_same']['wall_s']:.2f} x "
                  f"the one at {before['n_events']}")
    print(f"\nresults: {root / 'results.json'}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "floor":
        floor(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        sys.exit(main())
