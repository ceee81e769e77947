"""vigie.db: the duckdb-engine cursor fix, migrations, the writer lock, the published copy."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa

from vigie import db


def test_each_dbapi_cursor_keeps_its_own_result(tmp_path: Path) -> None:
    db.install_cursor_fix()
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'w.duckdb'}")
    raw = engine.raw_connection()
    first, second = raw.cursor(), raw.cursor()
    first.execute("SELECT 1")
    second.execute("SELECT 2")
    # Without the fix both cursors share one DuckDB connection and the first result is gone.
    assert first.fetchall() == [(1,)]
    assert second.fetchall() == [(2,)]
    raw.close()


def test_great_expectations_validates_a_duckdb_table_through_sqlalchemy(tmp_path: Path) -> None:
    import great_expectations as gx
    import great_expectations.expectations as gxe

    db.install_cursor_fix()
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE t AS SELECT i AS id, CASE WHEN i % 10 = 0 THEN NULL ELSE 'x' || i END AS s FROM range(100) r(i)")
    context = gx.get_context(mode="ephemeral")
    asset = context.data_sources.add_sql("w", connection_string=f"duckdb:///{path}").add_table_asset("t", table_name="t")
    batch = asset.add_batch_definition_whole_table("all").get_batch()
    suite = gx.ExpectationSuite("s", expectations=[
        gxe.ExpectColumnValuesToNotBeNull(column="s"),
        # GX reads {n} as a placeholder in this SQL: braces are doubled.
        gxe.UnexpectedRowsExpectation(unexpected_rows_query="SELECT * FROM {batch} WHERE NOT regexp_matches(s, '^x[0-9]{{1,2}}$')"),
    ])
    results = batch.validate(suite).results
    assert results[0].result["unexpected_count"] == 10
    assert results[1].success and results[1].result["observed_value"] == 0


def test_migrations_apply_once_in_order(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "m.duckdb"))
    applied = db.migrate(con)
    assert applied == sorted(applied) and applied[0].startswith("001_")
    assert db.migrate(con) == []
    views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE schema_name = 'oversight'").fetchall()}
    assert {"batches", "quarantine", "duplicates", "vms_recordings"} <= views


# What a DuckLake catalog cannot run, where the storage moves when loads spread over workers.
_NOT_ON_DUCKLAKE = re.compile(r"PRIMARY\s+KEY|\bUNIQUE\b|\bSEQUENCE\b|\bENUM\b|INSERT\s+OR\s+REPLACE|\bREFERENCES\b",
                              re.IGNORECASE)


def test_the_warehouse_declares_no_key_sequence_or_enum(tmp_path: Path) -> None:
    """In the migrations' SQL (comments aside), and in the catalog of a warehouse they made."""
    for path in sorted(db.MIGRATIONS_DIR.glob("*.sql")):
        code = "\n".join(line.split("--")[0] for line in path.read_text().splitlines())
        assert not _NOT_ON_DUCKLAKE.search(code), path.name
    con = duckdb.connect(str(tmp_path / "m.duckdb"))
    db.migrate(con)
    kinds = {k for (k,) in con.execute("SELECT DISTINCT constraint_type FROM duckdb_constraints()").fetchall()}
    assert kinds == {"NOT NULL"}
    assert con.execute("SELECT count(*) FROM duckdb_sequences()").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM duckdb_indexes()").fetchone() == (0,)


def test_the_warehouse_runs_on_a_ducklake_catalog(tmp_path: Path) -> None:
    """The storage will move to DuckLake when loads spread over several workers: every
    migration, the register's load and its sealed manifest, the rules, the findings query and
    verify's walk of the chain already run on a DuckLake catalog (its offline package)."""
    from datetime import datetime, timezone

    from tests.conftest import copy_samples, with_closed_port
    from vigie import integrity, rules
    from vigie.config import load_settings
    from vigie.register import load_register

    settings = load_settings(with_closed_port(copy_samples(tmp_path)) / "vigie.yml")
    con = duckdb.connect()
    db.load_extension(con, "ducklake")
    con.execute(f"ATTACH 'ducklake:{tmp_path / 'catalog.ducklake'}' AS lake (DATA_PATH '{tmp_path / 'lake'}')")
    con.execute("USE lake")
    assert db.migrate(con) == [p.name for p in sorted(db.MIGRATIONS_DIR.glob("[0-9][0-9][0-9]_*.sql"))]
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = 'lake'").fetchone()[0] > 20
    batch = load_register(con, settings.register, datetime.now(timezone.utc))
    entries = con.execute("SELECT count(*) FROM authorisations").fetchone()[0]
    assert entries > 0 and con.execute("SELECT batch_id, status, loaded FROM batches").fetchall() == [(batch, "loaded", entries)]
    rules.install(con, settings)
    assert rules.installed_fingerprint(con) == rules.fingerprint(settings)
    assert con.execute(rules.findings_query(), [datetime(2026, 5, 1, tzinfo=timezone.utc), "infinity", 24,
                                                "Europe/Paris", 50]).fetchall() == []  # a register alone breaks no rule
    out = integrity.Verification()
    assert [link.batch_id for link in integrity.check_warehouse(con, out, "lake")] == [batch] and out.breaks == []
    con.execute("UPDATE authorisations SET purposes = NULL WHERE rowid = (SELECT min(rowid) FROM authorisations)")
    out = integrity.Verification()
    integrity.check_warehouse(con, out, "lake")
    assert [b.where for b in out.breaks] == ["lake: authorisations"]


def test_keys_declared_by_earlier_versions_are_dropped_with_the_rows_kept(tmp_path: Path) -> None:
    """A warehouse made before migration 016 had primary keys on batches and schema_migrations."""
    from tests.conftest import migrated_before

    con = migrated_before(tmp_path, 16)
    columns = ", ".join(f'"{c}" {t}' + (" PRIMARY KEY" if c == "batch_id" else "")
                        for c, t in con.execute("SELECT column_name, data_type FROM duckdb_columns() WHERE "
                                                "schema_name = 'main' AND table_name = 'batches' ORDER BY column_index").fetchall())
    con.execute("DROP TABLE batches")
    con.execute(f"CREATE TABLE batches ({columns})")  # as migration 001 made it then
    con.execute("INSERT INTO batches (batch_id, source, kind, started_at, status, error) VALUES "
                "(3, 'b', 'lapi_files', '2026-01-01 10:00:00+00', 'loaded', NULL), "
                "(1, 'a', 'vms_sql', '2026-01-01 09:00:00+00', 'failed', 'down'), "
                "(2, 'a', 'vms_sql', '2026-01-01 09:30:00+00', 'loaded', NULL)")
    before = con.execute("SELECT * FROM batches").fetchall()
    migrations = con.execute("SELECT version, name, applied_at FROM schema_migrations").fetchall()
    con.execute("CREATE TABLE schema_migrations_pk AS SELECT * FROM schema_migrations")
    con.execute("DROP TABLE schema_migrations")
    con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, "
                "applied_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp)")
    con.execute("INSERT INTO schema_migrations SELECT * FROM schema_migrations_pk")
    con.execute("DROP TABLE schema_migrations_pk")
    assert "PRIMARY KEY" in {k for (k,) in con.execute("SELECT constraint_type FROM duckdb_constraints()").fetchall()}
    assert db.migrate(con) == [p.name for p in sorted(db.MIGRATIONS_DIR.glob("*.sql")) if int(p.name[:3]) >= 16]
    assert con.execute("SELECT * FROM batches").fetchall() == before  # the same rows, in the same order
    assert con.execute("SELECT version, name, applied_at FROM schema_migrations WHERE version < 16").fetchall() == migrations
    assert {k for (k,) in con.execute("SELECT DISTINCT constraint_type FROM duckdb_constraints()").fetchall()} == {"NOT NULL"}
    assert con.execute("SELECT count(*) FROM duckdb_indexes()").fetchone() == (0,)
    assert db.next_batch_id(con) == 4
    assert con.execute("SELECT count(*) FROM oversight.batches").fetchone()[0] >= 2  # the views read the new table


def test_a_second_writer_is_refused_while_the_first_writes(tmp_path: Path) -> None:
    warehouse = tmp_path / "w.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from vigie import db
        with db.writer(Path({str(warehouse)!r})) as con:
            print("holding", flush=True)
            sys.stdin.readline()
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(db.WarehouseLocked):
            with db.writer(warehouse, wait_s=0.5):
                pass
    finally:
        holder.communicate("go\n", timeout=60)
    with db.writer(warehouse) as con:  # free again
        assert con.execute("SELECT count(*) FROM batches").fetchone() == (0,)


def test_readers_query_the_published_copy_while_a_load_writes(tmp_path: Path) -> None:
    warehouse = tmp_path / "w.duckdb"
    with db.writer(warehouse) as con:
        con.execute("INSERT INTO batches (batch_id, source, kind, started_at, status) VALUES (1, 's', 'k', now(), 'loaded')")
    reader = db.reader(warehouse)
    with db.writer(warehouse) as con:
        con.execute("INSERT INTO batches (batch_id, source, kind, started_at, status) VALUES (2, 's', 'k', now(), 'loaded')")
        # Mid-load, another process can open and query the warehouse.
        out = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
            from pathlib import Path
            from vigie import db
            print(db.reader(Path({str(warehouse)!r})).execute("SELECT count(*) FROM oversight.batches").fetchone()[0])
        """)], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "1"
        assert reader.execute("SELECT count(*) FROM oversight.batches").fetchone() == (1,)
    # The reader's open file is unchanged; once closed, a new reader sees the load.
    assert reader.execute("SELECT count(*) FROM oversight.batches").fetchone() == (1,)
    reader.close()
    assert db.reader(warehouse).execute("SELECT count(*) FROM oversight.batches").fetchone() == (2,)


def test_without_pandas_duckdb_binds_every_parameter_kind_we_use() -> None:
    """In a fresh process: parameters of each Python type still bind, and pandas stays out."""
    code = textwrap.dedent("""
        import sys
        from datetime import datetime, timezone
        from vigie import db
        db.without_pandas()
        import duckdb
        con = duckdb.connect()
        db._configure(con)
        at = datetime(2026, 4, 20, 10, 0, tzinfo=timezone.utc)
        row = con.execute("SELECT $i, $f, $s, $t::TIMESTAMPTZ, $n", {"i": 1, "f": 2.5, "s": "x'y", "t": at, "n": None}).fetchone()
        assert row == (1, 2.5, "x'y", at, None), row
        con.execute("CREATE TABLE t (a BIGINT, b VARCHAR)")
        db.insert_rows(con, "t", [[1, "a"], [2, None]])
        assert con.execute("SELECT * FROM t ORDER BY a").fetchall() == [(1, "a"), (2, None)]
        assert sys.modules["pandas"] is None and "numpy" not in sys.modules
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_insert_rows_keeps_every_value_exactly_as_the_columns_type_it() -> None:
    """insert_rows passes its rows as JSON text: each value must land as a parameter would."""
    from datetime import datetime, timedelta, timezone

    con = duckdb.connect()
    db._configure(con)
    con.execute("CREATE TABLE t (i BIGINT, f DOUBLE, s VARCHAR, t TIMESTAMPTZ, b BOOLEAN, j JSON)")
    at = datetime(2026, 3, 29, 1, 59, 59, 999999, tzinfo=timezone(timedelta(hours=2)))
    rows = [
        [2**62 + 1, 0.1 + 0.2, 'quote " back\\slash\nnewline \x01 é 漢 🎥', at, True, '{"a": [1, "x"]}'],
        [-(2**63), 1e-308, "", datetime(1970, 1, 1, tzinfo=timezone.utc), False, "null"],
        [None, None, None, None, None, None],
    ]
    db.insert_rows(con, "t", rows)
    assert con.execute("SELECT i, f, s, t, b, j::VARCHAR FROM t ORDER BY rowid").fetchall() == [
        (2**62 + 1, 0.1 + 0.2, rows[0][2], at, True, '{"a": [1, "x"]}'),
        (-(2**63), 1e-308, "", rows[1][3], False, "null"),
        (None, None, None, None, None, None),
    ]
    assert json.loads(db.json_list(["a", "b"])) == ["a", "b"]
    with pytest.raises(ValueError):  # NaN is no JSON: refused, not written as text DuckDB would refuse
        db.insert_rows(con, "t", [[1, float("nan"), "x", None, None, None]])
    with pytest.raises(TypeError, match="bytes cannot be passed"):
        db.insert_rows(con, "t", [[1, 1.0, b"x", None, None, None]])


@pytest.mark.parametrize("supported", [True, False])
def test_clone_file_copies_every_byte_with_or_without_copy_file_range(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, supported: bool) -> None:
    """Publication clones the writer file (reflinks where the filesystem has them); where the
    kernel or filesystem refuses copy_file_range, it copies the bytes itself."""
    import errno
    import os

    src = tmp_path / "src"
    src.write_bytes(os.urandom(3 << 20) + b"tail")
    if not supported:
        def refuse(*_args, **_kwargs):  # noqa: ANN002, ANN003, ANN202
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        monkeypatch.setattr(os, "copy_file_range", refuse)
    (tmp_path / "dest").write_bytes(b"an older, longer file" * 500_000)
    db.clone_file(src, tmp_path / "dest")
    assert (tmp_path / "dest").read_bytes() == src.read_bytes()


def test_the_writer_config_is_the_one_duckdb_engine_uses() -> None:
    """Read from package metadata so a load does not import SQLAlchemy; it must still be
    exactly what duckdb-engine sets, or GX could not share the writer's database."""
    import duckdb_engine

    assert db._engine_config()["custom_user_agent"] == \
        f"duckdb_engine/{duckdb_engine.__version__}(sqlalchemy/{sa.__version__})"


def test_rules_are_installed_again_only_when_their_fingerprint_changes(tmp_path: Path, monkeypatch) -> None:
    """Installing the rules cost a second of every run; an unchanged fingerprint skips it,
    and any change of rules or settings installs them afresh."""
    from datetime import datetime, timezone

    from tests.conftest import copy_samples, with_closed_port
    from vigie import rules
    from vigie.config import load_settings

    settings = load_settings(with_closed_port(copy_samples(tmp_path)) / "vigie.yml")
    with db.writer(settings.warehouse) as con:
        rules.install(con, settings)
        con.execute("DROP TABLE rule_limits")  # a marker: only a real install brings it back
        rules.install(con, settings)
        assert not con.execute("SELECT 1 FROM duckdb_tables() WHERE table_name = 'rule_limits'").fetchall()
        rules.install(con, settings.model_copy(update={"grace_hours": 48}))
        assert con.execute("SELECT count(*) FROM rule_limits").fetchone()[0] > 0
        assert con.execute("SELECT grace_hours FROM rule_settings").fetchone() == (48,)
        # What was evaluated with the rules replaced is marked so: nothing serves it or carries it forward.
        rules.record_evaluation(con, settings, datetime(2026, 5, 1, tzinfo=timezone.utc), 0)
        rules.install(con, settings)
        assert con.execute("SELECT fingerprint FROM run_evaluation").fetchone() == (rules.SUPERSEDED,)
        # A record altered out of shape is dropped instead (the next evaluation is a first one).
        con.execute("CREATE OR REPLACE TABLE run_evaluation AS SELECT 1 AS as_of")
        rules.install(con, settings.model_copy(update={"grace_hours": 48}))
        assert not con.execute("SELECT 1 FROM duckdb_tables() WHERE table_name = 'run_evaluation'").fetchall()
        # An install stopped halfway leaves no fingerprint: the next one does not take the rules for whole.
        whole = rules._install

        def halfway(con, settings):  # noqa: ANN001, ANN202
            con.execute("CREATE OR REPLACE TABLE rule_settings AS SELECT 1 AS half")
            raise RuntimeError("stopped")

        monkeypatch.setattr(rules, "_install", halfway)
        with pytest.raises(RuntimeError):
            rules.install(con, settings)
        assert rules.installed_fingerprint(con) is None
        monkeypatch.setattr(rules, "_install", whole)
        rules.install(con, settings)
        assert rules.installed_fingerprint(con) == rules.fingerprint(settings)
        assert con.execute("SELECT grace_hours FROM rule_settings").fetchone() == (settings.grace_hours,)


def test_scratch_is_capped_and_spills_where_it_is_told(tmp_path: Path) -> None:
    """Work beside the writer (landing a SQLite VMS) is capped, and a sort larger than the cap
    spills into the folder given, not into the current directory."""
    con = db.scratch(tmp_path / "spill")
    try:
        (limit,) = con.execute("SELECT current_setting('memory_limit')").fetchone()
        assert float(limit.split()[0]) <= 512 and limit.endswith("MiB"), limit
        assert con.execute("SELECT current_setting('temp_directory')").fetchone()[0] == str(tmp_path / "spill")
        con.execute("SET memory_limit = '100MB'")  # smaller than the sort below (about 300 MB)
        out = tmp_path / "sorted.csv"
        con.execute(f"COPY (SELECT md5(i::VARCHAR) || repeat('x', 60) AS t FROM range(3000000) r(i) ORDER BY t) "
                    f"TO '{out}' (HEADER false)")
        with open(out) as f:
            head = [next(f) for _ in range(3)]
        assert head == sorted(head) and head[0].startswith("0000")
        assert out.stat().st_size == 3_000_000 * 93
    finally:
        con.close()


def test_memory_limit_is_raised_for_a_block_and_restored(tmp_path: Path) -> None:
    """The full rule evaluation runs under its own, larger cap; the connection's comes back,
    even when the block fails."""
    con = duckdb.connect()
    try:
        db._configure(con)
        (before,) = con.execute("SELECT current_setting('memory_limit')").fetchone()
        with db.memory_limit(con, "300MB"):
            assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0].startswith("286")  # MiB
        assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0] == before
        with pytest.raises(duckdb.Error), db.memory_limit(con, "300MB"):
            con.execute("SELECT * FROM no_such_table")
        assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0] == before
    finally:
        con.close()


def test_no_cap_means_duckdb_default_throughout(monkeypatch: pytest.MonkeyPatch) -> None:
    """VIGIE_DUCKDB_MEMORY_LIMIT set to nothing lifts the cap; a block under another cap then
    changes nothing instead of failing."""
    monkeypatch.setattr(db, "MEMORY_LIMIT", "")
    con = duckdb.connect()
    try:
        db._configure(con)
        (default,) = con.execute("SELECT current_setting('memory_limit')").fetchone()
        with db.memory_limit(con, "300MB"):
            assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0] == default
        assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0] == default
    finally:
        con.close()


def test_readers_have_the_evaluation_cap_from_the_start(tmp_path: Path) -> None:
    """Readers may evaluate every rule afresh; their cap is set when they open, never per
    evaluation: connections of one process to one file share it, and the Oversight view
    evaluates on several at once (a block that lowered it back failed a neighbour's query)."""
    warehouse = tmp_path / "w.duckdb"
    with db.writer(warehouse):
        pass
    expected = duckdb.connect()
    try:
        expected.execute(f"SET memory_limit = '{db.EVALUATION_MEMORY_LIMIT}'")
        (cap,) = expected.execute("SELECT current_setting('memory_limit')").fetchone()
    finally:
        expected.close()
    first, second = db.reader(warehouse), db.reader(warehouse)
    try:
        for con in (first, second):
            assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0] == cap
    finally:
        first.close()
        second.close()


@pytest.mark.parametrize(("writer_size", "spare_size"), [((3 << 20) + 7, 0), ((3 << 20) + 7, (3 << 20) + 7),
                                                        ((3 << 20) + 7, 5 << 20), (5, 5 << 20), (0, 3 << 20)])
def test_patching_the_spare_makes_it_the_writer_file_byte_for_byte(tmp_path: Path, writer_size: int,
                                                                    spare_size: int) -> None:
    """Shorter, as long or longer than the writer file, with chunks equal and chunks not, in
    each thread's half (the second half begins at 2 MB here) and in the last, partial chunk."""
    import random

    rnd = random.Random(spare_size)
    src, spare, dest = tmp_path / "writer", tmp_path / "spare", tmp_path / "dest"
    body = bytearray(rnd.randbytes(writer_size))
    src.write_bytes(body)
    old = bytearray(body[:spare_size]) + bytearray(rnd.randbytes(max(0, spare_size - len(body))))
    for at in ((1 << 20) + 5, (2 << 20) + 3, (3 << 20) + 2):
        if at < min(len(old), len(body)):
            old[at] ^= 0xFF  # one byte differs in this chunk
    spare.write_bytes(old)
    assert db._patch(spare, src, dest)
    assert dest.read_bytes() == src.read_bytes() and not spare.exists()
    assert not db._patch(tmp_path / "missing", src, dest)


def test_a_block_whose_words_moved_is_patched_though_its_checksum_is_the_same(tmp_path: Path) -> None:
    """DuckDB's block checksum is blind to the order of a block's 8-byte words (5381 XOR the
    XOR of each word times a constant): a patch that trusted it left such a block stale in the
    published copy, which DuckDB then read without complaint. Every byte is compared."""
    import shutil
    import struct

    src, spare, dest = tmp_path / "writer.duckdb", tmp_path / "spare", tmp_path / "dest"
    with duckdb.connect(str(src)) as con:
        con.execute("CREATE TABLE t AS SELECT md5(range::VARCHAR) AS s FROM range(50000)")
    shutil.copy(src, spare)
    old = bytearray(spare.read_bytes())
    at = 3 * 4096 + 8 + 4096  # two words inside the first block, after its checksum
    first, second = bytes(old[at:at + 8]), bytes(old[at + 8:at + 16])
    assert first != second
    old[at:at + 8], old[at + 8:at + 16] = second, first
    spare.write_bytes(old)

    def checksum(data: bytes) -> int:  # DuckDB's, of the first block
        out = 5381
        for w in struct.unpack_from(f"<{(262144 - 8) // 8}Q", data, 3 * 4096 + 8):
            out ^= (w * 0xBF58476D1CE4E5B9) % (1 << 64)
        return out
    stored = struct.unpack_from("<Q", src.read_bytes(), 3 * 4096)[0]
    assert checksum(bytes(old)) == checksum(src.read_bytes()) == stored  # the same checksum, as stored...
    assert old[3 * 4096:3 * 4096 + 8] == src.read_bytes()[3 * 4096:3 * 4096 + 8]
    assert db._patch(spare, src, dest)
    assert dest.read_bytes() == src.read_bytes()  # ...and yet the block was rewritten


def _skip_where_publishing_clones(folder: Path) -> None:
    probe = folder / "probe"
    probe.write_bytes(b"x")
    if db._reflink(probe, folder / "probe-clone"):
        pytest.skip("this filesystem has reflinks: publishing clones, no spare is kept")


def _batch(con: duckdb.DuckDBPyConnection, n: int) -> None:
    con.execute("INSERT INTO batches (batch_id, source, kind, started_at, status) VALUES (?, 's', 'k', now(), 'loaded')", [n])


def test_publishing_patches_the_previous_copy_unless_a_reader_has_it_open(tmp_path: Path) -> None:
    """Without reflinks, the copy published before the last one is patched into the next;
    one a reader still has open is left as it is, and its reader keeps its snapshot."""
    import os

    warehouse = tmp_path / "w.duckdb"
    _skip_where_publishing_clones(tmp_path)
    inodes = []
    for n in (1, 2, 3):
        with db.writer(warehouse) as con:
            _batch(con, n)
        inodes.append(os.stat(warehouse).st_ino)
        assert warehouse.read_bytes() == db.writer_path(warehouse).read_bytes()  # byte for byte
    assert inodes[2] == inodes[0] != inodes[1]  # the third publish patched the first copy
    assert os.stat(db.spare_path(warehouse)).st_ino == inodes[1]

    reader = db.reader(warehouse)  # holds the third copy (the first file, patched)
    with db.writer(warehouse) as con:
        _batch(con, 4)
    assert os.stat(warehouse).st_ino == inodes[1]  # the spare was free: patched
    held = reader.execute("SELECT count(*) FROM oversight.batches").fetchone()
    with db.writer(warehouse) as con:  # the spare is the reader's file now: left, copied whole
        _batch(con, 5)
    assert os.stat(warehouse).st_ino not in inodes
    assert os.stat(db.spare_path(warehouse)).st_ino == inodes[1]
    assert held == reader.execute("SELECT count(*) FROM oversight.batches").fetchone() == (3,)
    reader.close()
    fresh = db.reader(warehouse)
    assert fresh.execute("SELECT count(*) FROM oversight.batches").fetchone() == (5,)
    fresh.close()
    assert warehouse.read_bytes() == db.writer_path(warehouse).read_bytes()
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_patch_that_fails_gives_way_to_the_full_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk (or a read error) while the spare is patched: the spare, half patched and
    reachable by no reader, is removed, and the writer file is copied whole."""
    import errno
    import os

    warehouse = tmp_path / "w.duckdb"
    _skip_where_publishing_clones(tmp_path)
    for n in (1, 2):
        with db.writer(warehouse) as con:
            _batch(con, n)
    assert db.spare_path(warehouse).exists()
    second = os.stat(warehouse).st_ino

    def full(*_args, **_kwargs):  # noqa: ANN002, ANN003, ANN202
        raise OSError(errno.ENOSPC, "No space left on device")
    with monkeypatch.context() as m:
        m.setattr(os, "preadv", full)
        with db.writer(warehouse) as con:
            _batch(con, 3)
    assert warehouse.read_bytes() == db.writer_path(warehouse).read_bytes()
    reader = db.reader(warehouse)
    assert reader.execute("SELECT count(*) FROM oversight.batches").fetchone() == (3,)
    reader.close()
    with db.writer(warehouse) as con:  # and the next publish patches again: the second copy
        _batch(con, 4)
    assert os.stat(warehouse).st_ino == second
    assert warehouse.read_bytes() == db.writer_path(warehouse).read_bytes()


def _row_groups(warehouse: Path, table: str) -> int:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(f"SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('{table}')").fetchone()[0]
    finally:
        con.close()


def _session(warehouse: Path, batch_id: int | None, rows: int = 0) -> None:
    """One writer session: a batch on record (when ``batch_id``) and ``rows`` appended to t."""
    with db.writer(warehouse) as con:
        con.execute("CREATE TABLE IF NOT EXISTS t (i BIGINT, s VARCHAR)")
        if batch_id is not None:
            con.execute("INSERT INTO batches (batch_id, source, kind, started_at, status) "
                        "VALUES (?, 'lapi', 'lapi_files', now(), 'loaded')", [batch_id])
        if rows:
            # Few distinct strings, which DuckDB compresses (a dictionary) where it may.
            con.execute("INSERT INTO t SELECT i, 'row ' || (i % 7) FROM range(?) r(i)", [rows])


def _string_compression(warehouse: Path, table: str) -> dict[int, set[str]]:
    """Each row group's compressions of the strings of ``table`` (its column ``s``)."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute(f"SELECT row_group_id, list(DISTINCT compression) FROM pragma_storage_info('{table}') "
                           "WHERE column_name = 's' AND segment_type = 'VARCHAR' GROUP BY 1").fetchall()
        return {group: set(kinds) for group, kinds in rows}
    finally:
        con.close()


def _sessions(warehouse: Path) -> int:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute("SELECT sessions FROM storage_compaction").fetchone()[0]
    finally:
        con.close()


def test_row_groups_are_compacted_once_every_few_sessions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DuckDB's vacuum is off between compacting sessions (VIGIE_COMPACT_AFTER): each session's
    rows stay in a row group of their own, then a compacting session merges them; one that
    commits no batch leaves the compaction due."""
    monkeypatch.setenv("VIGIE_COMPACT_AFTER", "3")
    warehouse = tmp_path / "warehouse.duckdb"
    _session(warehouse, 1, 1000)  # the first load compacts
    assert (_sessions(warehouse), _row_groups(warehouse, "t")) == (0, 1)
    assert "Uncompressed" not in _string_compression(warehouse, "t")[0]
    for n in (2, 3):
        _session(warehouse, n, 1000)
    assert (_sessions(warehouse), _row_groups(warehouse, "t")) == (2, 3)  # one per session, not merged
    # Their last checkpoint wrote their strings uncompressed (db.LIGHT_CHECKPOINT_OFF)...
    assert [_string_compression(warehouse, "t")[g] for g in (1, 2)] == [{"Uncompressed"}] * 2
    _session(warehouse, None)  # the third: it compacts, but commits nothing, so the next one compacts
    assert _sessions(warehouse) == 2
    _session(warehouse, 4, 1000)
    assert (_sessions(warehouse), _row_groups(warehouse, "t")) == (0, 1)  # merged
    assert "Uncompressed" not in _string_compression(warehouse, "t")[0]  # ... and compacting compressed them
    monkeypatch.setenv("VIGIE_COMPACT_AFTER", "1")  # every session compacts (what it merges is DuckDB's choice)
    _session(warehouse, 5, 1000)
    assert _sessions(warehouse) == 0
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        assert con.execute("SELECT count(*), count(DISTINCT i) FROM t").fetchone() == (5000, 1000)
    finally:
        con.close()


@pytest.mark.parametrize("value", ["eight", "0", "-3", "2.5", ""])
def test_a_compaction_period_that_is_not_a_number_of_sessions_is_a_configuration_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    from vigie.config import ConfigError

    monkeypatch.setenv("VIGIE_COMPACT_AFTER", value)
    with pytest.raises(ConfigError, match="VIGIE_COMPACT_AFTER"):
        with db.writer(tmp_path / "warehouse.duckdb"):
            pass
    assert not (tmp_path / "warehouse.duckdb.writer").exists()  # refused before anything was opened


@pytest.mark.parametrize(("name", "value"), [("MEMORY_LIMIT", "lots"), ("EVALUATION_MEMORY_LIMIT", "1.5 gigs"),
                                             ("SCRATCH_MEMORY_LIMIT", "512")])
def test_a_memory_cap_duckdb_does_not_read_is_a_configuration_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    from vigie.config import ConfigError

    monkeypatch.setattr(db, name, value)
    with pytest.raises(ConfigError, match="is not a memory size"):
        with db.writer(tmp_path / "warehouse.duckdb"):
            pass
    assert not (tmp_path / "warehouse.duckdb.writer").exists()  # refused before anything was opened
    with pytest.raises(ConfigError, match="is not a memory size"):
        db.scratch(tmp_path / "spill")
    assert not (tmp_path / "spill").exists()


@pytest.mark.parametrize("value", ["1GB", "1500MB", "2GiB", " 1 GB ", "none", ""])
def test_the_memory_caps_duckdb_reads_are_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   value: str) -> None:
    for name in ("MEMORY_LIMIT", "EVALUATION_MEMORY_LIMIT", "SCRATCH_MEMORY_LIMIT"):
        monkeypatch.setattr(db, name, value)
    db.check_memory_limits()  # nothing raised; empty: DuckDB's default
    with db.writer(tmp_path / "warehouse.duckdb") as con:
        assert con.execute("SELECT count(*) FROM main.batches").fetchone() == (0,)


def test_a_full_disk_is_told_by_the_error_or_what_it_was_raised_from() -> None:
    import errno

    enospc = OSError(errno.ENOSPC, "No space left on device")
    assert db.disk_full(enospc)
    assert db.disk_full(duckdb.IOException('Could not write file "w.duckdb": No space left on device'))
    assert not db.disk_full(OSError(errno.EACCES, "Permission denied"))

    def raised(inner: BaseException, hide: bool) -> BaseException:
        try:
            try:
                raise inner
            except OSError:
                if hide:
                    raise ValueError("another fault") from None
                raise ValueError("another fault")  # noqa: B904 - while handling: its context
        except ValueError as exc:
            return exc
    assert db.disk_full(raised(enospc, hide=False))
    assert not db.disk_full(raised(enospc, hide=True))  # hidden on purpose: not said to be a full disk
    try:
        raise RuntimeError("publish") from enospc
    except RuntimeError as exc:
        assert db.disk_full(exc)
