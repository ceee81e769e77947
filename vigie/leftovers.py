"""What a killed load leaves behind, cleared by the next one under the writer lock.

A batch is 'pulling' or 'landed' only while its process holds the writer lock. So a load
that has just taken the lock and finds such a batch knows its process died: the batch is
marked 'abandoned' with when (``abandoned_at``) and why (``error``). Its landing folder is
removed: its cursor never moved, so the next pull lands the same data again, and the batch
row with its ``landed_files`` (names, hashes, sizes) stays on record. Staging tables it left
in the writer file are dropped. The publish's temporary copies are removed by `vigie.db`.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

import duckdb


def abandon(con: duckdb.DuckDBPyConnection, landing: Path, now: datetime | None = None) -> list[int]:
    """Mark the batches of dead processes 'abandoned'; return their ids."""
    now = now or datetime.now(timezone.utc)
    left = con.execute("SELECT batch_id, source, status FROM batches WHERE status IN ('pulling', 'landed') "
                       "ORDER BY batch_id").fetchall()
    for batch_id, source, status in left:
        con.execute(
            "UPDATE batches SET status = 'abandoned', abandoned_at = ?, error = ? WHERE batch_id = ?",
            [now, f"source '{source}': abandoned: its process died while the batch was '{status}' "
                  f"(found at {now.isoformat(timespec='seconds')}); its data will be pulled again", batch_id])
        shutil.rmtree(landing / source / str(batch_id), ignore_errors=True)
    if left:  # a process killed with Great Expectations on leaves its staging tables in the file
        for (table,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE NOT temporary "
                                    "AND schema_name = 'main' AND starts_with(table_name, 'staging_')").fetchall():
            con.execute(f'DROP TABLE IF EXISTS main."{table}"')
    return [b for b, _, _ in left]
