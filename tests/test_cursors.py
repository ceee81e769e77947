"""Where each source resumes (vigie/cursors.py): a cursor kept in parts, only the changed
ones written, and the cursors of warehouses from before the parts (migration 012)."""

from __future__ import annotations

import hashlib
import json
import os
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


def test_a_cursor_moved_in_its_first_part_writes_that_part_alone() -> None:
    """A VMS cursor: the audit log id first, which every pull that brings audit rows moves,
    then the lookback window's recordings, unchanged (megabytes at 20 M events)."""
    con = _warehouse()
    seen = {f"REC-{i:04d}": [f"{i:032x}", "2026-04-30T02:10:01"] for i in range(300)}
    before = json.dumps({"recordings_updated_at": "2026-04-30T21:59:15+00:00", "audit_log_id": 1126006,
                         "recordings_seen": seen})
    assert len(before) > 10 * db.TEXT_PART
    cursors.save(con, "vms", None, before, 1)
    kept = _rowids(con, "vms")
    after = before.replace("1126006", "1142672")
    cursors.save(con, "vms", before, after, 2)
    assert cursors.load(con, "vms") == after
    now = _rowids(con, "vms")
    assert sorted(p for p in kept if now[p] != kept[p]) == [0]  # the other parts are the rows written first
    # The same id but one recording more in the middle of the window: the parts from there on
    # shift, and are written again; the ones before it are not.
    middle = len(seen) // 2
    longer = after.replace(f'"REC-{middle:04d}"', f'"REC-{middle:04d}-b": ["{"0" * 32}", "2026-04-30T03:00:00"], "REC-{middle:04d}"')
    cursors.save(con, "vms", after, longer, 3)
    assert cursors.load(con, "vms") == longer
    moved = _rowids(con, "vms")
    first = longer.index(f"REC-{middle:04d}-b") // db.TEXT_PART
    assert all(moved[p] == now[p] for p in range(first))
    assert all(moved[p] != now.get(p) for p in range(first, len(db.text_parts(longer))))


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


def _drop_run(estate: Path, as_of: str = "2026-03-20T00:00:00+01:00"):  # noqa: ANN202 - the run's report
    from vigie import pipeline
    from vigie.config import load_settings, parse_instant

    settings = load_settings(estate / "vigie.yml")
    report = pipeline.run(settings, ["drones-69", "lapi-a7"], validate=False, send_alerts=False,
                          as_of=parse_instant(as_of, settings.timezone))
    assert not [s.error for s in report.sources if s.error]
    return settings, report


def _files(settings, source: str) -> dict[str, tuple]:  # noqa: ANN001
    with db.reader(settings.warehouse) as con:
        return {name: (batch, size, mtime, sha) for name, batch, size, mtime, sha in con.execute(
            "SELECT name, batch_id, size, mtime_ns, sha256 FROM drop_files WHERE source = ?", [source]).fetchall()}


def test_a_drop_folders_files_are_rows_each_batch_adding_those_it_set(tmp_path: Path) -> None:
    """Migration 014: a folder's files are rows of drop_files, not its cursor's text; a batch
    adds the files it landed or found touched, chained in its manifest, and nothing else."""
    from tests.conftest import copy_samples, with_closed_port
    from vigie import health, integrity

    estate = with_closed_port(copy_samples(tmp_path))
    settings, first = _drop_run(estate)
    lapi = _files(settings, "lapi-a7")
    on_disk = sorted(p for p in (estate / "lapi").iterdir() if p.is_file())
    assert sorted(lapi) == sorted(p.name for p in on_disk)
    for p in on_disk:
        st = p.stat()
        assert lapi[p.name][1:] == (st.st_size, st.st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
    assert len(_files(settings, "drones-69")) == sum(1 for p in (estate / "drones").rglob("*") if p.is_file())
    with db.reader(settings.warehouse) as con:
        cursor = json.loads(cursors.load(con, "lapi-a7"))
    assert list(cursor) == ["listing_sha256"]  # the files are not in the cursor's text

    new = estate / "lapi" / "queries_2026-03-19.csv"
    new.write_text(on_disk[0].read_text().replace("2026-01-13", "2026-03-19"))  # new bytes, a new name
    touched = on_disk[1]
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 10**9))
    os.utime(new, ns=(new.stat().st_atime_ns, new.stat().st_mtime_ns - 10**10))  # settled
    settings, second = _drop_run(estate)
    batch = next(s.batch_id for s in second.sources if s.source == "lapi-a7")
    now = _files(settings, "lapi-a7")
    assert {name for name, row in now.items() if row[0] == batch} == {new.name, touched.name}
    assert now[touched.name][1:] == (lapi[touched.name][1], touched.stat().st_mtime_ns, lapi[touched.name][3])
    with db.reader(settings.warehouse) as con:
        assert con.execute("SELECT name FROM landed_files WHERE batch_id = ?", [batch]).fetchall() == [(new.name,)]
        shown = {h.source: h.cursor for h in health.source_health(con, settings)}
    shown = json.loads(shown["lapi-a7"])  # what an operator reads: how many, and the listing left whole
    assert shown == {"files": len(lapi) + 1, "listing_sha256": shown["listing_sha256"]} and len(shown["listing_sha256"]) == 64
    assert integrity.verify(settings).ok  # the rows are chained in their batch's manifest


def test_a_folders_files_come_back_as_their_latest_batch_set_them() -> None:
    """`load_files`: each name as the latest batch that set it left it, whatever the order in
    which the rows were written; other sources' files are not among them."""
    con = _warehouse()
    row = lambda batch, name, size: {name: {"size": size, "mtime_ns": batch * 10, "sha256": f"{batch:064x}"}}  # noqa: E731
    cursors.save_files(con, "drones", row(9, "a.csv", 3) | row(9, "b.csv", 1), 9)
    cursors.save_files(con, "drones", row(4, "a.csv", 2) | row(4, "c.csv", 5), 4)
    cursors.save_files(con, "drones", row(12, "c.csv", 6), 12)
    cursors.save_files(con, "lapi", row(15, "a.csv", 7), 15)
    assert cursors.load_files(con, "drones") == row(9, "a.csv", 3) | row(9, "b.csv", 1) | row(12, "c.csv", 6)
    assert cursors.load_files(con, "nothing") == {}


def test_a_cursor_that_still_lists_its_files_has_them_moved_by_its_next_batch(tmp_path: Path) -> None:
    """A warehouse from before migration 014 keeps a folder's files in its cursor's text: the
    next batch reads them there (nothing is landed again), records them all in drop_files,
    chained in its manifest, and leaves the cursor without them."""
    from tests.conftest import copy_samples, with_closed_port
    from vigie import integrity

    estate = with_closed_port(copy_samples(tmp_path))
    settings, _ = _drop_run(estate)
    lapi = _files(settings, "lapi-a7")
    old = json.dumps({"files": {name: {"size": size, "mtime_ns": mtime, "sha256": sha}
                                for name, (_, size, mtime, sha) in lapi.items()}})
    with db.writer(settings.warehouse) as con:  # as the cursor was before migration 014
        con.execute("DELETE FROM drop_files WHERE source = 'lapi-a7'")
        cursors.save(con, "lapi-a7", cursors.load(con, "lapi-a7"), old, 2)
    settings, again = _drop_run(estate)
    rep = next(s for s in again.sources if s.source == "lapi-a7")
    assert (rep.counts.received, rep.counts.loaded) == (0, 0)  # nothing landed again
    assert _files(settings, "lapi-a7") == {name: (rep.batch_id, *row[1:]) for name, row in lapi.items()}
    with db.reader(settings.warehouse) as con:
        cursor = json.loads(cursors.load(con, "lapi-a7"))
    assert list(cursor) == ["listing_sha256"]  # the files gone from it; the listing it left whole
    assert integrity.verify(settings, from_batch=rep.batch_id).ok


def test_the_ledger_keeps_a_long_cursor_by_its_digest() -> None:
    """A cursor over 4 KB (a VMS lookback window of thousands of recordings) is in the ledger,
    and so in the manifests, by its SHA-256 and size; a short one whole."""
    from vigie import pipeline

    short = '{"audit_log_id": 127}'
    long = json.dumps({"recordings_seen": {str(i): f"{i:064x}" for i in range(100)}})
    assert len(long) > pipeline.LEDGER_CURSOR_BYTES
    assert pipeline.ledger_cursor(short) == short
    assert json.loads(pipeline.ledger_cursor(long)) == {"sha256": hashlib.sha256(long.encode()).hexdigest(),
                                                       "bytes": len(long.encode())}
