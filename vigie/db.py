"""The one place that opens DuckDB.

DuckDB admits one writing process per file, and a read-write process also locks readers out.
So the warehouse is two files:

- the *writer file* (``<warehouse>.writer``) is opened by one process at a time, under an
  exclusive ``flock`` on ``<warehouse>.lock``; the Airflow pool of one slot is the first
  guard, this lock is the one that holds everywhere (CLI, backfills, tests);
- the *published file* (the ``warehouse:`` path of vigie.yml) is what inspectors, ``vigie
  findings`` and reports open, read-only. After each successful load the writer checkpoints
  and atomically replaces it with a fresh copy (see `publish`), so a reader's open file is
  never modified under it and a load can never make an inspector's query fail.

``vigie verify`` reads a third way, without any lock: a private copy of the writer file (see
`writer_snapshot`), so that it can check the writer's own state while a load runs.

It is also where duckdb-engine's shared-cursor trap is fixed (see `install_cursor_fix`).
"""

from __future__ import annotations

import errno
import fcntl
import functools
import json
import os
import shutil
import struct
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Iterator

import duckdb

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "warehouse"


class WarehouseLocked(RuntimeError):
    """Another process is writing the warehouse."""


def writer_path(warehouse: Path) -> Path:
    return warehouse.with_name(warehouse.name + ".writer")


def lock_path(warehouse: Path) -> Path:
    return warehouse.with_name(warehouse.name + ".lock")


# DuckDB's memory cap; past it, it spills to `<file>.tmp`. DuckDB's default (80 % of RAM)
# let a first load of 5 M events take 8 GB. Loading streams and spills: 1 GB. The full rule
# evaluation does not spill everything and ran out of memory at 1 GB at 20 M: it runs under
# `EVALUATION_MEMORY_LIMIT` (see `memory_limit`). The process holds more than the cap: at
# 20 M, with a 1.28 GB cap throughout, a first load peaked at 1.94 GB while staging 90 000
# drone files (docs/performance-history.md). On a bigger machine, raise VIGIE_DUCKDB_MEMORY_LIMIT
# (the evaluation takes the same unless VIGIE_DUCKDB_EVALUATION_MEMORY_LIMIT says otherwise).
MEMORY_LIMIT = os.environ.get("VIGIE_DUCKDB_MEMORY_LIMIT", "1024MB")
EVALUATION_MEMORY_LIMIT = os.environ.get(
    "VIGIE_DUCKDB_EVALUATION_MEMORY_LIMIT", os.environ.get("VIGIE_DUCKDB_MEMORY_LIMIT", "1280MB"))


def check_memory_limits() -> None:
    """The memory caps (``MEMORY_LIMIT``, ``EVALUATION_MEMORY_LIMIT``, ``SCRATCH_MEMORY_LIMIT``)
    are sizes DuckDB reads, else a configuration error naming the variable, raised before a
    connection opens: handed to DuckDB unchecked, ``lots`` stopped a command with a parser
    traceback, after the writer had taken the lock. Set to nothing, a cap is DuckDB's default."""
    evaluation = ("VIGIE_DUCKDB_EVALUATION_MEMORY_LIMIT" if "VIGIE_DUCKDB_EVALUATION_MEMORY_LIMIT" in os.environ
                  else "VIGIE_DUCKDB_MEMORY_LIMIT")
    for name, value in (("VIGIE_DUCKDB_MEMORY_LIMIT", MEMORY_LIMIT), (evaluation, EVALUATION_MEMORY_LIMIT),
                        ("VIGIE_SCRATCH_MEMORY_LIMIT", SCRATCH_MEMORY_LIMIT)):
        problem = _memory_size_problem(value) if value else None
        if problem:
            from vigie.config import ConfigError

            raise ConfigError(f"environment variable {name}: {value!r} is not a memory size "
                              f"(e.g. 1GB, 1500MB, 2GiB, or nothing for DuckDB's default): {problem}")


@functools.cache
def _memory_size_problem(value: str) -> str | None:
    """What DuckDB says of ``value`` as a memory limit (None: it reads it). Its own parser, on a
    throwaway connection (about 13 ms, once per value and process), rather than a copy of it."""
    try:
        duckdb.connect(config={"memory_limit": value}).close()
    except duckdb.Error as exc:
        return str(exc).removeprefix("Parser Error: ")
    return None


@contextmanager
def memory_limit(con: duckdb.DuckDBPyConnection, limit: str) -> Iterator[None]:
    """Run a block of the writer under another memory cap, then restore ``MEMORY_LIMIT`` (DuckDB
    reports its setting rounded, so it is not read back). Only for the writer: the cap belongs
    to the DuckDB instance, which every connection of the process to that file shares, and a
    writer runs one statement at a time."""
    if not (limit and MEMORY_LIMIT):  # a cap set to nothing: DuckDB's own default throughout
        yield
        return
    con.execute(f"SET memory_limit = '{limit}'")
    try:
        yield
    finally:
        con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")


# Memory freed at once past this goes back to the system at once (`_configure`).
BULK_FLUSH = "8MB"


@contextmanager
def bulk_flush(con: duckdb.DuckDBPyConnection, threshold: str) -> Iterator[None]:
    """Run a block with freed memory handed back to the system only past ``threshold`` freed at
    once, then restore BULK_FLUSH, which `_configure` gives every connection (not read back:
    DuckDB reports it rounded, and writing that back would drift). Sealing a manifest frees a
    span's text, tens of MB, at every query: at 8 MB each was handed back and asked for again,
    and sealing took half as much CPU again."""
    con.execute(f"SET allocator_bulk_deallocation_flush_threshold = '{threshold}'")
    try:
        yield
    finally:
        try:
            con.execute(f"SET allocator_bulk_deallocation_flush_threshold = '{BULK_FLUSH}'")
        except duckdb.Error:  # a failed statement aborted the transaction: its error is the one to raise
            pass  # left at `threshold` until this process ends: memory given back a little later


def _configure(con: duckdb.DuckDBPyConnection, limit: str = MEMORY_LIMIT) -> None:
    # All instants are stored and compared in UTC; local time only in calendar arithmetic.
    con.execute("SET TimeZone = 'UTC'")
    if limit:
        con.execute(f"SET memory_limit = '{limit}'")
    # Memory DuckDB frees goes back to the system sooner: staging 90 000 drone files at 20 M
    # left 0.9 GB of freed memory in the process, outside the cap, when the rules ran; these
    # settings took it to 0.7 GB.
    con.execute("SET allocator_background_threads = true")
    con.execute("SET allocator_flush_threshold = '8MB'")
    con.execute(f"SET allocator_bulk_deallocation_flush_threshold = '{BULK_FLUSH}'")


@contextmanager
def writer(warehouse: Path, wait_s: float = 0.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the writer file under the exclusive lock, migrated, and publish it on success.

    ``wait_s`` is how long to wait for another writer before giving up with WarehouseLocked.
    """
    every = compact_after()
    check_memory_limits()
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path(warehouse), "a+") as lock:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise WarehouseLocked(f"warehouse {warehouse} is locked by another load") from None
                time.sleep(0.2)
        _remove_publish_leftovers(warehouse)
        con = duckdb.connect(str(writer_path(warehouse)), config=_engine_config())
        try:
            _configure(con)
            migrate(con)
            compact, top = _compacting(con, every)
            yield con
            _count_session(con, compact, top)
            publish(con, warehouse, light=not compact)
        finally:
            con.close()
            fcntl.flock(lock, fcntl.LOCK_UN)


# DuckDB's vacuum, at each checkpoint, merges the rows a load appended to a table with the
# last row group before them and compacts row groups that hold deleted rows: it rewrote up to
# 122 880 rows of every table a delta appended to, 0.6-0.9 s of a 50 000-event delta at 20 M
# (0.15-0.3 s without). It runs in a compacting session only: the first load, and then one
# session in `compact_after()` (counted since the last compacting session that committed a
# batch). Between them each session's rows stay in row groups of their own, and the findings
# a re-evaluation deletes stay in place, as a DuckLake catalog's files do until it merges them.
def compact_after() -> int:
    """``VIGIE_COMPACT_AFTER`` (default 8), read as a writer opens: a value that is not a whole
    number of sessions is a configuration error naming the variable, before anything is done
    (read at import, it stopped every command with a traceback)."""
    from vigie.config import whole_number_env

    return whole_number_env("VIGIE_COMPACT_AFTER", 8, "sessions", ": 1 compacts in every session")


def _compacting(con: duckdb.DuckDBPyConnection, every: int) -> tuple[bool, int | None]:
    """Whether this session compacts (else vacuum is off), and the last batch before it."""
    (top,) = con.execute("SELECT max(batch_id) FROM main.batches").fetchone()
    (sessions,) = con.execute("SELECT sessions FROM main.storage_compaction").fetchone()
    compact = top is None or sessions + 1 >= every  # this one is the every-th
    if not compact:
        con.execute("SET max_vacuum_tasks = 0")
    return compact, top


def _count_session(con: duckdb.DuckDBPyConnection, compact: bool, top: int | None) -> None:
    """After a session that succeeded: a compacting one that committed a batch starts the count
    again; one that did not leaves it due, so the next session compacts."""
    (last,) = con.execute("SELECT max(batch_id) FROM main.batches").fetchone()
    if not compact:
        con.execute("UPDATE main.storage_compaction SET sessions = sessions + 1")
    elif last is not None and last != top:
        con.execute("UPDATE main.storage_compaction SET sessions = 0")


def worker(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """A connection of the writer's DuckDB instance for another thread (a connection runs one
    statement at a time), with the session settings `_configure` gives the writer; the
    instance's own (memory, allocator) it shares. Made in the thread that owns ``con``."""
    cur = con.cursor()
    cur.execute("SET TimeZone = 'UTC'")
    return cur


def _engine_config() -> dict:
    """The connection config duckdb-engine uses, so Great Expectations (through SQLAlchemy)
    can share the writer's in-process database: DuckDB refuses a second connection to the
    same file with a different configuration. The versions come from the installed packages'
    metadata: importing them would cost every load a second (tests/test_db.py compares)."""
    from importlib.metadata import version

    return {"custom_user_agent": f"duckdb_engine/{version('duckdb_engine')}(sqlalchemy/{version('sqlalchemy')})"}


def throwaway(path: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A DuckDB file that is not the warehouse (verify's fresh install of the rules to compare
    with), configured as the warehouse's connections are (UTC, the memory cap)."""
    con = duckdb.connect(str(path), read_only=read_only)
    _configure(con)
    return con


# The cap of `scratch`, which runs beside the writer's DuckDB and must leave it room.
SCRATCH_MEMORY_LIMIT = os.environ.get("VIGIE_SCRATCH_MEMORY_LIMIT", "512MB")


def scratch(spill: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB for work outside the warehouse (landing a SQLite VMS), capped and
    spilling into ``spill``: uncapped, the first pull of a 20 M estate's VMS sorted 4.5 M audit
    rows in memory and took the process to 1.8 GB, the peak of the whole load."""
    check_memory_limits()
    spill.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(config={"temp_directory": str(spill), "memory_limit": SCRATCH_MEMORY_LIMIT})
    con.execute("SET TimeZone = 'UTC'")
    return con


def _publish_tmp(warehouse: Path, pid: int, what: str = "") -> Path:
    return warehouse.with_name(f".{warehouse.name}.{pid}{what}.tmp")


def spare_path(warehouse: Path) -> Path:
    """The published copy before the last one, kept to be patched into the next (`publish`)."""
    return warehouse.with_name(f".{warehouse.name}.spare")


def _remove_publish_leftovers(warehouse: Path) -> None:
    """Remove the temporary files of publishes whose process was killed. Under the lock no
    publish is under way, so every such file is a leftover."""
    prefix, suffix = f".{warehouse.name}.", ".tmp"
    for name in os.listdir(warehouse.parent):
        middle = name[len(prefix):-len(suffix)].removesuffix(".keep")
        if name.startswith(prefix) and name.endswith(suffix) and middle.isdigit():
            (warehouse.parent / name).unlink(missing_ok=True)


# What a session that does not compact leaves out at its last checkpoint: DuckDB's analysis of
# FSST and dictionary compression for strings took half of it (0.09 s of a 50 000-event delta
# at 5 M events, 0.04 s without), for 6 MB more on disk. Such a session's rows are in row groups
# of their own (vacuum is off), which the next compacting session merges with their neighbours
# and compresses as usual. What stays uncompressed is bounded: the checkpoints DuckDB makes by
# itself during a session, past 16 MB of WAL, compress as usual.
LIGHT_CHECKPOINT_OFF = "fsst,dictionary"


def publish(con: duckdb.DuckDBPyConnection, warehouse: Path, light: bool = False) -> None:
    """Replace the published file with a consistent copy of the writer file, atomically: a
    reader's open file is never written to, whichever way the copy is made.

    1. Where the filesystem has reflinks (XFS, Btrfs), a clone: it shares the blocks.
    2. Else the previous published copy (the *spare*), once no reader has it open, is patched
       into the new one: only the blocks that differ from the writer file are written. Each
       reader holds a lock on its file (DuckDB's), so a spare in use is detected and left.
    3. Else a full copy, as every publish did before (0.9 GB at 20 M events: 2.5 s on ext4
       with the CHECKPOINT, against 0.34 s for a patch that reads both files and writes what
       changed).
    The copy that is replaced becomes the next spare: on ext4 the warehouse takes three
    times its size on disk (writer, published, spare). ``light``: a session that did not
    compact, whose last checkpoint leaves its strings uncompressed (LIGHT_CHECKPOINT_OFF)."""
    if light:
        con.execute(f"SET disabled_compression_methods = '{LIGHT_CHECKPOINT_OFF}'")
    try:
        con.execute("CHECKPOINT")
    finally:
        if light:
            try:
                con.execute("RESET disabled_compression_methods")
            except duckdb.Error:  # a failed CHECKPOINT (a full disk) is the error to raise
                pass  # the connection closes after it
    src, spare = writer_path(warehouse), spare_path(warehouse)
    tmp = _publish_tmp(warehouse, os.getpid())
    keep = None
    try:
        cloned = _reflink(src, tmp)
        if not cloned and not _patch(spare, src, tmp):
            clone_file(src, tmp)
        if not cloned:  # the copy about to be replaced is kept as the next spare
            keep = _publish_tmp(warehouse, os.getpid(), ".keep")
            try:
                os.link(warehouse, keep)
            except OSError:  # the first publish, or no hard links here: no spare
                keep = None
    except BaseException:  # a full disk, say: a half copy as big as the warehouse is not left behind
        tmp.unlink(missing_ok=True)
        if keep:
            keep.unlink(missing_ok=True)
        raise
    os.replace(tmp, warehouse)  # atomic: readers see the old file or the new one, never half
    if keep:
        os.replace(keep, spare)  # a spare still open by a reader lives on until it closes it
    else:
        spare.unlink(missing_ok=True)


def disk_full(exc: BaseException | None) -> bool:
    """Whether ``exc``, or an exception it was raised from, says the disk is full: an OSError
    (ENOSPC, EDQUOT), or DuckDB's error, which carries only the system's words for it."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if isinstance(exc, duckdb.Error) and any(w in str(exc) for w in ("No space left on device", "Disk quota exceeded")):
            return True
        # What it was raised from, or while handling, unless that was hidden on purpose (`from None`).
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    return False


def _reflink(src: Path, dest: Path) -> bool:
    """Clone ``src`` into ``dest`` (FICLONE), where the filesystem shares blocks."""
    with open(src, "rb") as fin, open(dest, "wb") as fout:
        try:
            fcntl.ioctl(fout.fileno(), _FICLONE, fin.fileno())
            return True
        except OSError:  # ext4, tmpfs...: no reflinks
            pass
    dest.unlink()
    return False


_FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int)
_PATCH_CHUNK = 1 << 20


def _patch(spare: Path, src: Path, dest: Path) -> bool:
    """Make ``spare`` a byte-for-byte copy of ``src`` by writing only the chunks that differ,
    then move it to ``dest``. False, untouched, when it is missing or a reader has it open:
    an open file description lock (F_OFD_SETLK, Linux) conflicts with the lock DuckDB holds
    on a file it reads, in this process or another, and while it is held no reader can open
    it. This relies on readers' locks being seen here: a local filesystem (README). False
    too, the spare removed, when patching fails (a read error, a full disk): the full copy
    then takes its room, and the next publish does not meet it again."""
    setlk = getattr(fcntl, "F_OFD_SETLK", None)
    if setlk is None:  # not Linux: no telling whether a reader holds the spare
        return False
    try:
        fd = os.open(spare, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        try:
            fcntl.fcntl(fd, setlk, struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 0, 0))
        except OSError:  # in use by a reader
            return False
        try:
            _write_differences(fd, src)
            os.replace(spare, dest)  # still locked: only this name reaches it, until published
        except OSError:
            spare.unlink(missing_ok=True)  # half patched, and no reader can reach it
            return False
        return True
    finally:
        os.close(fd)  # releases the lock


# Reading both files is most of a publish by patch (1.6 GB at 20 M events), and nothing else
# runs then: each half is compared in its own thread, with positional reads and writes.
_PATCH_THREADS = 2


def _write_differences(fd: int, src: Path) -> None:
    sfd = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(sfd).st_size
        step = -(-size // _PATCH_THREADS // _PATCH_CHUNK) * _PATCH_CHUNK  # whole chunks
        ranges = [(lo, min(size, lo + step)) for lo in range(0, size, step)] if size else []
        with ThreadPoolExecutor(max(1, len(ranges)), thread_name_prefix="vigie-patch") as pool:
            for done in [pool.submit(_patch_range, fd, sfd, lo, hi, src) for lo, hi in ranges]:
                done.result()
    finally:
        os.close(sfd)
    os.ftruncate(fd, size)
    os.fsync(fd)  # what changed is on disk before the rename publishes it


def _patch_range(fd: int, sfd: int, lo: int, hi: int, src: Path) -> None:
    new, old = bytearray(_PATCH_CHUNK), bytearray(_PATCH_CHUNK)
    at = lo
    while at < hi:
        want = min(_PATCH_CHUNK, hi - at)
        n = os.preadv(sfd, [memoryview(new)[:want]], at)
        if n < want:
            raise OSError(f"{src} ended at {at + n} bytes, before its size")
        m = os.preadv(fd, [memoryview(old)[:want]], at)
        if n == m == _PATCH_CHUNK and new == old:  # the common case: one memcmp
            at += n
            continue
        if n != m or new[:n] != old[:n]:
            os.pwrite(fd, memoryview(new)[:n], at)
        at += n


def clone_file(src: Path, dest: Path) -> None:
    """Copy ``src`` to ``dest`` with ``copy_file_range``. Where the filesystem has reflinks
    (XFS, Btrfs, ZFS with block cloning) the copy shares the blocks, which the writer's later
    writes then copy on write: it costs in proportion to the file's extents, not its bytes
    (README, Performance). Elsewhere the kernel copies the bytes, as ``shutil`` would."""
    with open(src, "rb") as fin, open(dest, "wb") as fout:
        size, done = os.fstat(fin.fileno()).st_size, 0
        try:
            while done < size:
                n = os.copy_file_range(fin.fileno(), fout.fileno(), size - done)
                if n == 0:
                    break
                done += n
        except (OSError, AttributeError):  # not supported here (another kernel, filesystem or platform)
            fin.seek(0)
            fout.seek(0)
            fout.truncate()
            shutil.copyfileobj(fin, fout, 1 << 20)


def reader(warehouse: Path, *, sealed: bool = False) -> duckdb.DuckDBPyConnection:
    """A read-only connection on the published file.

    It reads the copy that was published when it opened, however many loads land meanwhile.
    Close it when done: DuckDB shares one instance per path within a process, so an open
    connection also pins that copy for the next ones opened in the same process.
    ``sealed``: no file, extension or network outside the warehouse (`VERIFYING`).
    """
    check_memory_limits()
    if not warehouse.exists():
        raise FileNotFoundError(f"warehouse {warehouse} does not exist yet: run `vigie run` first")
    con = duckdb.connect(str(warehouse), read_only=True, config=VERIFYING if sealed else {})
    # A reader loads nothing but may evaluate every rule afresh (`vigie findings`, reports).
    # Its cap is set once, not per evaluation: the connections of one process to one file
    # share it, and the Oversight view evaluates on several at once.
    _configure(con, EVALUATION_MEMORY_LIMIT if MEMORY_LIMIT else "")
    return con


# `vigie verify` reads a warehouse it does not trust: what it runs there reaches nothing else.
VERIFYING = {"enable_external_access": False}


class WriterBusy(RuntimeError):
    """The writer file kept changing while it was being copied."""


def _stamp(path: Path) -> tuple | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


@contextmanager
def writer_snapshot(warehouse: Path, attempts: int = 5) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection on a private copy of the writer file (and its WAL), taken
    without the writer lock, so that `vigie verify` can run while a load does.

    A writer never blocks reading the file's bytes, but DuckDB would refuse to open the file
    itself (and a reader on it would make the next load fail). DuckDB appends committed
    transactions to the WAL and rewrites the file only at checkpoints, so a copy during which
    neither file changed is a committed state; otherwise it retries, then raises WriterBusy.
    """
    src = writer_path(warehouse)
    wal = src.with_name(src.name + ".wal")
    if not src.exists():
        raise FileNotFoundError(f"warehouse {src} does not exist yet: run `vigie run` first")
    with tempfile.TemporaryDirectory(dir=warehouse.parent, prefix=".verify-") as tmp:
        copy = Path(tmp) / "writer.duckdb"
        copy_wal = copy.with_name(copy.name + ".wal")
        for attempt in range(attempts):
            before = (_stamp(src), _stamp(wal))
            clone_file(src, copy)
            try:
                clone_file(wal, copy_wal)
            except FileNotFoundError:
                copy_wal.unlink(missing_ok=True)
            if (_stamp(src), _stamp(wal)) == before:
                break
            time.sleep(0.2 * (attempt + 1))
        else:
            raise WriterBusy(f"warehouse {src} kept changing while being copied ({attempts} attempts)")
        con = duckdb.connect(str(copy), read_only=True, config=VERIFYING)
        try:
            # Verify evaluates every rule on it (vigie/stored_evaluation.py): a reader's cap.
            _configure(con, EVALUATION_MEMORY_LIMIT if MEMORY_LIMIT else "")
            yield con
        finally:
            con.close()


def migrate(con: duckdb.DuckDBPyConnection, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply the ordered migrations of ``warehouse/`` not applied yet; return their names."""
    # No key: DuckLake has none. One writer at a time applies them (the writer lock).
    con.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER NOT NULL, name VARCHAR NOT NULL, "
                "applied_at TIMESTAMPTZ NOT NULL)")
    done = {v for (v,) in con.execute("SELECT version FROM schema_migrations").fetchall()}
    applied = []
    for path in sorted(directory.glob("[0-9][0-9][0-9]_*.sql")):
        version = int(path.name[:3])
        if version in done:
            continue
        con.execute("BEGIN")
        try:
            con.execute(path.read_text())
            con.execute("INSERT INTO schema_migrations VALUES (?, ?, now())", [version, path.name])
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        applied.append(path.name)
    return applied


def load_extension(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Load a DuckDB extension from its `duckdb-extension-<name>` package: offline, no download."""
    import importlib

    package = importlib.import_module(f"duckdb_extension_{name}")
    (path,) = Path(package.__file__).parent.glob(f"extensions/v{duckdb.__version__}/{name}.duckdb_extension")
    con.execute(f"LOAD '{path}'")


def insert_rows(con: duckdb.DuckDBPyConnection, table: str, rows: list[list]) -> None:
    """Insert ``rows`` in one statement, passed as one JSON text (`json_list`) whose values the
    insert casts to the table's columns. ``executemany`` runs one statement per row, which took
    seconds for the 20 000 track files of a 5 M-event estate."""
    if not rows:
        return
    values = ", ".join(f"r[{i + 1}]" for i in range(len(rows[0])))
    con.execute(f"INSERT INTO {table} SELECT {values} FROM (SELECT unnest(from_json($1, '[[\"VARCHAR\"]]')) AS r)",
                [json_list(rows)])


# A long text is kept in parts of at most this many characters (8 KB of UTF-8 at most), which
# DuckDB keeps in its column's own blocks. A longer text goes to overflow blocks that each
# checkpoint writes again whole once anything is appended to its table: a drop folder's
# cursor (vigie/cursors.py) and the manifest of its first batch (vigie/integrity.py), 14 and
# 17 MB at 20 M events, were written again by every run.
TEXT_PART = 2000


def text_parts(text: str | None) -> list[str]:
    return [text[i:i + TEXT_PART] for i in range(0, len(text or ""), TEXT_PART)]


def json_list(values: list) -> str:
    """``values`` (a list, or a list of lists) as JSON text for one parameter, to be read with
    ``from_json``; instants as ISO 8601. A Python list as a parameter costs DuckDB 10 µs a value
    where pandas is kept out (`without_pandas`): it tries to import pandas for each one. The
    23 000 files of a 5 M-event drone folder took 1.2-1.8 s to record that way, 0.1 s this way."""
    return json.dumps(values, allow_nan=False, ensure_ascii=False, default=_json_value)


def _json_value(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} cannot be passed as JSON: {value!r}")


def next_batch_id(con: duckdb.DuckDBPyConnection) -> int:
    """The next batch id. Safe because one process writes at a time (the writer lock); a
    DuckDB sequence is not, as its use in a read-only statement is not logged."""
    return con.execute("SELECT coalesce(max(batch_id), 0) + 1 FROM batches").fetchone()[0]


def without_pandas() -> None:
    """Keep DuckDB from importing pandas, in a process that never uses it.

    DuckDB 1.5.5 imports pandas (1.2 s, with numpy and pyarrow) the first time it binds any
    Python parameter, only to recognise pandas values; when pandas cannot be imported it
    skips that check. The command line calls this before its first query, except when Great
    Expectations (which needs pandas) runs in the same process. Tested in tests/test_db.py.
    """
    if "pandas" not in sys.modules:
        sys.modules["pandas"] = None  # type: ignore[assignment]  # import pandas now fails at once


def install_cursor_fix() -> None:
    """Give each DBAPI cursor of duckdb-engine its own DuckDB cursor.

    duckdb-engine 0.17 hands every SQLAlchemy cursor the same DuckDB connection, so when
    Great Expectations runs a second query before fetching the first one's rows, the first
    result is lost and every expectation fails with ``list index out of range``.
    ``connection.cursor()`` in DuckDB is a new connection on the same database, with its own
    result set, and closing the DBAPI cursor closes it. Idempotent; tested in tests/test_db.py.
    """
    import duckdb_engine

    if getattr(duckdb_engine.ConnectionWrapper.cursor, "_vigie_fix", False):
        return

    class OwnCursor(duckdb_engine.CursorWrapper):
        def close(self) -> None:  # duckdb-engine's is a no-op; this cursor is ours to close
            self._CursorWrapper__c.close()

    def cursor(self):  # type: ignore[no-untyped-def]
        return OwnCursor(self._ConnectionWrapper__c.cursor(), self)

    cursor._vigie_fix = True  # type: ignore[attr-defined]
    duckdb_engine.ConnectionWrapper.cursor = cursor
