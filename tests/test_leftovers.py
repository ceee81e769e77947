"""What a killed load leaves behind is cleared by the next one (issue #13, item 5)."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from tests.conftest import REPO, SAMPLES, vigie
from vigie import db

READS = "read_id,read_at,camera_id,plate_hash,matched,deleted_at\nr-1,2026-01-01T10:00:00+01:00,LAPI-A7-01,0123456789abcdef,0,\n"
CLOCK_NANOSLEEP, NANOSLEEP = 230, 35  # x86_64 syscall numbers: time.sleep


def _estate(root: Path, settle: int) -> Path:
    (root / "lapi").mkdir(parents=True)
    shutil.copy(SAMPLES / "authorisations.json", root / "authorisations.json")
    (root / "vigie.yml").write_text(f"""warehouse: var/warehouse.duckdb
register: authorisations.json
sources:
  - name: lapi
    kind: lapi_files
    path: lapi
    settle_seconds: {settle}
""")
    return root / "vigie.yml"


def _locked(warehouse: Path) -> bool:
    try:
        with open(db.lock_path(warehouse), "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(f, fcntl.LOCK_UN)
            return False
    except (BlockingIOError, FileNotFoundError):
        return True


def _sleeping(pid: int) -> bool:
    """Whether the process's main thread is in time.sleep (the settle wait)."""
    try:
        call = Path(f"/proc/{pid}/syscall").read_text().split()[0]
    except (OSError, IndexError):
        return False
    return call.isdigit() and int(call) in (CLOCK_NANOSLEEP, NANOSLEEP)


def test_a_load_killed_while_pulling_is_abandoned_by_the_next(tmp_path: Path) -> None:
    config = _estate(tmp_path, settle=3600)
    warehouse = tmp_path / "var" / "warehouse.duckdb"
    drop = tmp_path / "lapi" / "reads_1.csv"
    drop.write_text(READS)
    future = time.time() + 600  # a file "still being written": the pull waits for it to settle
    os.utime(drop, (future, future))
    proc = subprocess.Popen([sys.executable, "-m", "vigie.cli", "run", "--config", str(config), "--no-gx", "--no-alerts"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for _ in range(1200):  # until it holds the lock and waits in the pull, its batch 'pulling'
            if proc.poll() is not None or (warehouse.parent.exists() and _locked(warehouse) and _sleeping(proc.pid)):
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    (warehouse.parent / f".{warehouse.name}.999999999.tmp").write_bytes(b"half a copy")  # a killed publish's copy

    # Its batch is on record as 'pulling' in the writer file (the published copy predates it).
    con = duckdb.connect(str(db.writer_path(warehouse)), read_only=True)
    assert con.execute("SELECT source, status FROM batches WHERE source = 'lapi'").fetchall() == [("lapi", "pulling")]
    con.close()

    os.utime(drop, (time.time() - 3600,) * 2)
    run = vigie("run", "--config", str(config), "--no-gx", "--no-alerts", check=True)
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute("SELECT batch_id, status, abandoned_at IS NOT NULL, error, received, loaded "
                           "FROM batches WHERE source = 'lapi' ORDER BY batch_id").fetchall()
        assert [r[1:3] for r in rows] == [("abandoned", True), ("loaded", False)]
        assert "process died while the batch was 'pulling'" in rows[0][3] and "\n" not in rows[0][3]
        assert rows[1][4:] == (1, 1)
        assert con.execute("SELECT count(*) FROM lapi_reads").fetchone() == (1,)
    finally:
        con.close()
    assert not list(warehouse.parent.glob(".*.tmp")), "the killed publish's copy is removed"
    assert "abandoned" not in run.stderr


def test_a_batch_left_landed_is_abandoned_and_its_landing_removed(tmp_path: Path) -> None:
    config = _estate(tmp_path, settle=0)
    (tmp_path / "lapi" / "reads_1.csv").write_text(READS)
    warehouse = tmp_path / "var" / "warehouse.duckdb"
    vigie("run", "--config", str(config), "--no-gx", "--no-alerts", check=True)
    # What a process killed between landing and loading leaves: its row and its landing folder.
    with db.writer(warehouse) as con:
        con.execute("INSERT INTO batches (batch_id, source, kind, started_at, status) "
                    "VALUES (99, 'lapi', 'lapi_files', now(), 'landed')")
    landing = tmp_path / "var" / "landing" / "lapi" / "99"
    (landing / "reads").mkdir(parents=True)
    (landing / "reads" / "000000.raw").write_text(READS)
    vigie("run", "--config", str(config), "--no-gx", "--no-alerts", check=True)
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        status, when, error = con.execute("SELECT status, abandoned_at, error FROM batches WHERE batch_id = 99").fetchone()
        assert status == "abandoned" and when is not None and "'landed'" in error
        assert con.execute("SELECT count(*) FROM lapi_reads").fetchone() == (1,)
    finally:
        con.close()
    assert not landing.exists()
