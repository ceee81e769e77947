"""Where each source resumes (vigie/cursors.py): a cursor kept in parts, only the changed
ones written, and the cursors of warehouses from before the parts (migration 012)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from tests.conftest import migrated_before
from vigie import cursors, db


def _warehouse() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    db.migrate(con)
    return con


def _rowids(con: duckdb.DuckDBPyConnection, source: str) -> dict[int, int]:
    return dict(con.execute("SELECT part, rowid FROM source_cursor_parts WHERE source = ?", [source]).fetchall())


def test_a_long_cursor_comes_back_whole_and_only_its_changed_parts_are_written() -> None:
    con = _warehouse()
    files = {f"drones/tracks/caf\u00e9-{i:05d}.csv": {"size": i, "mtime_ns": i * 7, "sha256": f"{i:064x}"} for i in range(400)}
    before = json.dumps({"files": files}, ensure_ascii=False)
    assert len(before) > 20 * db.TEXT_PART
    cursors.save(con, "drones", None, before, 1)
    assert cursors.load(con, "drones") == before
    assert con.execute("SELECT cursor, batch_id FROM source_cursors").fetchall() == [(None, 1)]
    kept = _rowids(con, "drones")

    files["drones/tracks/z-new.csv"] = {"size": 1, "mtime_ns": 2, "sha256": "f" * 64}  # a new file: at the end
    after = json.dumps({"files": files}, ensure_ascii=False)
    cursors.save(con, "drones", before, after, 2)
    assert cursors.load(con, "drones") == after
    now = _rowids(con, "drones")
    unchanged = [p for p in kept if now.get(p) == kept[p]]
    assert len(unchanged) == len(kept) - 1  # only the last part was written again, and those after it
    assert con.execute("SELECT cursor, batch_id FROM source_cursors").fetchall() == [(None, 2)]

    cursors.save(con, "drones", after, '{"files":{}}', 3)  # shorter: the parts beyond it go
    assert cursors.load(con, "drones") == '{"files":{}}'
    assert con.execute("SELECT count(*) FROM source_cursor_parts").fetchone() == (1,)


def test_each_source_has_its_own_cursor() -> None:
    con = _warehouse()
    cursors.save(con, "a", None, '{"after": "x"}', 1)
    cursors.save(con, "b", None, "null", 2)
    assert (cursors.load(con, "a"), cursors.load(con, "b"), cursors.load(con, "c")) == ('{"after": "x"}', "null", None)


def test_cursors_kept_whole_before_migration_012_are_split(tmp_path: Path) -> None:
    con = migrated_before(tmp_path, 12)
    long = json.dumps({"files": {f"reads_{i}.csv": {"size": i} for i in range(500)}})
    con.execute("INSERT INTO source_cursors VALUES ('lapi', ?, 4), ('vms', '{\"log_id\": 3}', 5)", [long])
    assert db.migrate(con)[0] == "012_cursor_parts.sql"
    assert (cursors.load(con, "lapi"), cursors.load(con, "vms")) == (long, '{"log_id": 3}')
    assert con.execute("SELECT count(*) FROM source_cursors WHERE cursor IS NOT NULL").fetchone() == (0,)
    assert con.execute("SELECT max(length(text)) FROM source_cursor_parts").fetchone() == (db.TEXT_PART,)
