"""Checked staging rows → quarantine, duplicates and canonical versions, all in SQL.

Runs inside the batch's transaction. For each stream:

1. rows breaking the contract go to ``quarantine`` with their reason (a malformed row
   delivered again at the same place with the same content is a duplicate, not a second
   quarantine entry);
2. the others are typed and told apart, following domain.md:
   - ``immutable`` (audit events, flight revisions, LAPI lines, track points): the first
     delivery of a key is loaded; a later one is a duplicate, *conflicting* when its content
     differs (it may be tampering);
   - ``latest`` (VMS recordings and cameras, which change in place): a row is loaded as a new
     version when it differs from the current one, otherwise it is a duplicate.

Only the keys present in the batch are looked up in the canonical table, so the work grows
with the batch, not with the warehouse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import duckdb

from vigie.sources.base import Stream

_META = ("ord", "location", "ref", "file")  # not part of a row's content


@dataclass
class Counts:
    received: int = 0
    loaded: int = 0
    duplicates: int = 0
    quarantined: int = 0

    def __iadd__(self, other: "Counts") -> "Counts":
        for f in ("received", "loaded", "duplicates", "quarantined"):
            setattr(self, f, getattr(self, f) + getattr(other, f))
        return self


@dataclass
class PriorRows:
    """The rows of ``source`` that its batch's keys name, found once per stream and read by
    both drift's second look (vigie/drift.py: which rows of the batch are new) and `merge`
    (what the warehouse holds of the batch's keys). Each of them read the key column of every
    row of the source, in a table that grows with the warehouse: for the 16 700 body-camera
    events of a 50 000-event delta, 0.02 s at 5 M events and 0.10-0.12 s at 20 M, twice.

    Rows are kept by rowid, which a checkpoint that compacts may renumber: the batch's
    transaction makes and reads them. Only streams whose key columns are loaded as staged, as
    text, share them: where typing changes a key (a revision, a log id), text and typed values
    compare otherwise, and each asks on its own."""

    con: duckdb.DuckDBPyConnection
    source: str
    tables: dict[str, str | None] = field(default_factory=dict)  # canonical table → its temp table

    def lookup(self, stream: Stream, staging: str) -> str | None:
        """A temp table of (``r``: rowid, the key columns): the source's rows of ``stream.table``
        whose key is that of a row of ``staging``; None for a stream whose keys are typed."""
        if stream.table not in self.tables:
            self.tables[stream.table] = self._make(stream, staging) if _text_keys(self.con, stream) else None
        return self.tables[stream.table]

    def _make(self, stream: Stream, staging: str) -> str:
        name = f"_prior_{stream.table}"
        keys = ", ".join(stream.key)
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT k.rowid AS r, {', '.join('k.' + k for k in stream.key)} "
            f"FROM main.{stream.table} k SEMI JOIN (SELECT DISTINCT {keys} FROM {staging}) s "
            f"ON {' AND '.join(f'k.{k} = s.{k}' for k in stream.key)} WHERE k.source = $source",
            {"source": self.source})
        return name

    def drop(self) -> None:
        for name in filter(None, self.tables.values()):
            self.con.execute(f"DROP TABLE IF EXISTS {name}")
        self.tables.clear()


def _text_keys(con: duckdb.DuckDBPyConnection, stream: Stream) -> bool:
    """Whether each key column is loaded as staged (named alone in ``typed_sql``) into a text
    column: then a key compares alike in staging and in the warehouse."""
    if not all(re.search(rf"(?:^|,)\s*{re.escape(k)}\s*(?:,|$)", stream.typed_sql) for k in stream.key):
        return False
    # Bound, not run (duckdb_columns() took 3 ms a call).
    types = con.execute(f"DESCRIBE SELECT {', '.join(stream.key)} FROM main.{stream.table}").fetchall()
    return all(t[1] == "VARCHAR" for t in types)


def _same(cols: list[str], a: str, b: str) -> str:
    return " AND ".join(f"{a}.{c} IS NOT DISTINCT FROM {b}.{c}" for c in cols)


def merge(con: duckdb.DuckDBPyConnection, stream: Stream, staging: str, source: str, batch_id: int,  # noqa: PLR0913
          prior: PriorRows | None = None) -> Counts:
    """``staging`` is checked (its ``reason`` column, see `vigie.staging.stage`). ``prior``:
    the batch's (`PriorRows`), in the transaction that commits it."""
    counts = Counts()
    (counts.received,) = con.execute(f"SELECT count(*) FROM {staging}").fetchone()

    # 1. quarantine
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _bad AS
        SELECT ord, ref, location, seq, reason, raw,
               row_number() OVER (PARTITION BY location, raw ORDER BY ord) > 1
               OR EXISTS (SELECT 1 FROM quarantine q WHERE q.source = $source AND q.location = c.location
                          AND q.raw IS NOT DISTINCT FROM c.raw) AS seen
        FROM {staging} c WHERE reason IS NOT NULL
        """,
        {"source": source},
    )
    con.execute(
        "INSERT INTO quarantine (source, batch_id, kind, ref, location, seq, reason, raw, ord) "
        "SELECT $source, $batch, $kind, ref, location, seq, reason, raw, ord FROM _bad WHERE NOT seen ORDER BY ord",
        {"source": source, "batch": batch_id, "kind": stream.row_kind},
    )
    con.execute(
        "INSERT INTO duplicates SELECT $source, $batch, $kind, ref, location, location, false FROM _bad WHERE seen",
        {"source": source, "batch": batch_id, "kind": stream.row_kind},
    )
    (counts.quarantined,) = con.execute("SELECT count(*) FROM _bad WHERE NOT seen").fetchone()

    # 2. typed rows, classified in one statement (each copy of the batch costs seconds at 5 M)
    typed = f"SELECT ord, location, ref, {stream.typed_sql} FROM {staging} WHERE reason IS NULL"
    columns = [r[0] for r in con.execute(f"DESCRIBE {typed}").fetchall()]
    content = [c for c in columns if c not in _META]
    key = list(stream.key)
    keys = ", ".join(key)
    content_hash = f"hash({', '.join(content)})"
    loaded_cols = ", ".join(c for c in columns if c not in ("ref",))

    # Sorted by `ord`: staging's rows come in row-group-sized runs out of order (LAPI's files
    # far apart), and the zone maps on `ord` are what prune each query of the sealing's spans
    # to its rows. Loaded unsorted, a 5 M first load's merges were not surely quicker (two
    # pairs of runs disagreed) and its sealing took 0.4-1.5 s more (twenty-eighth session; the
    # bench's 20 M sealing 28.2 s unsorted, 19.5 s sorted, in two runs of that session).
    def load(rows: str) -> str:
        return (f"INSERT INTO {stream.table} BY NAME SELECT $source AS source, $batch AS batch_id, {loaded_cols} "
                f"FROM {rows} ORDER BY ord")

    # A source's first delivery to this table: no row of it can be a duplicate of the
    # warehouse, so only the rows whose key the batch repeats are classified; the others are
    # loaded as they came. Classifying a copy of the whole batch first cost a first load
    # 1.3-2.1 s per million rows (6.3 s of a 5 M first run). Keys are told apart by their hash
    # (NULLs hash alike, as the window groups them): a collision only classifies a few more.
    direct = None  # the typed rows loaded without classification
    if first_delivery(con, stream, source):
        all_typed = typed
        con.execute(f"CREATE OR REPLACE TEMP TABLE _repeated AS SELECT hash({keys}) AS kh FROM ({typed}) "
                    "GROUP BY ALL HAVING count(*) > 1")
        direct = f"(SELECT * FROM ({typed}) WHERE hash({keys}) NOT IN (SELECT kh FROM _repeated))"
        typed = f"SELECT * FROM ({typed}) WHERE hash({keys}) IN (SELECT kh FROM _repeated)"
        if not con.execute("SELECT 1 FROM _repeated LIMIT 1").fetchone():  # every row loads
            (counts.loaded,) = con.execute(load(f"({all_typed})"), {"source": source, "batch": batch_id}).fetchone()
            counts.duplicates = con.execute("SELECT count(*) FROM _bad WHERE seen").fetchone()[0]
            for t in ("_bad", "_repeated"):
                con.execute(f"DROP TABLE IF EXISTS {t}")
            return counts

    latest = stream.policy == "latest"
    # immutable: the first delivery of a key wins, in the batch and against the warehouse.
    # latest: the last delivery in the batch is the candidate, compared to the current version.
    in_batch, in_warehouse = ("ord DESC", "e.batch_id DESC, e.ord DESC") if latest else ("ord", "e.batch_id, e.ord")
    e_keys = ", ".join("e." + k for k in key)
    on_prior = _same(key, "p", "r")
    # Only the keys of this batch are looked up in the warehouse, by equality on every key
    # column the batch never leaves NULL (exactly IS NOT DISTINCT FROM there): DuckDB then
    # prunes the scan to the row groups within the batch's range of those keys (new log ids,
    # recent instants). IS NOT DISTINCT FROM alone read every row of the table, with all its
    # columns: a LAPI line's key holds its `deleted_at`, NULL on nearly every line.
    # Where the range spans the table (random event ids, and an API that delivers a few old
    # events again), the rows are found on the key columns alone and then read whole by
    # rowid: joined directly, every column of every row was read (0.40 s of a 50 000-event
    # delta at 20 M, against 0.16 s at 5 M).
    # (A first delivery has no prior row to find: no need to look at its keys.)
    has_null = (False,) * len(key) if direct else \
        con.execute(f"SELECT {', '.join(f'bool_or({k} IS NULL)' for k in key)} FROM ({typed})").fetchone()
    match = " AND ".join(f"k.{k} = t.{k}" if not null else f"k.{k} IS NOT DISTINCT FROM t.{k}"
                         for k, null in zip(key, has_null))
    # The rows found already (drift's second look may have asked), else found here once.
    shared = prior.lookup(stream, staging) if prior is not None and not (direct or any(has_null)) else None
    found = (f"SELECT k.r FROM {shared} k SEMI JOIN (SELECT DISTINCT {keys} FROM typed) t ON {match}" if shared else
             f"SELECT k.rowid AS r FROM {stream.table} k SEMI JOIN (SELECT DISTINCT {keys} FROM typed) t ON {match} "
             "WHERE k.source = $source")
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _classified AS
        WITH typed AS ({typed}),
        -- Only the keys the batch delivers more than once need ranking: a window over every
        -- row sorted the whole batch (1.9 s of 4.0 for 1.26 M body-camera events). Keys are
        -- told apart by their hash here (NULLs hash alike, as the window groups them); a
        -- collision only sends a few more rows through the window, which ranks them exactly.
        again AS (SELECT hash({keys}) AS kh FROM typed GROUP BY ALL HAVING count(*) > 1),
        ranked AS (
            SELECT t.*, {content_hash} AS h, 1::BIGINT AS rn, location AS first_loc, {content_hash} AS first_h
            FROM typed t WHERE hash({keys}) NOT IN (SELECT kh FROM again)
            UNION ALL
            SELECT t.*, {content_hash} AS h, row_number() OVER w AS rn,
                   first_value(location) OVER w AS first_loc, first_value({content_hash}) OVER w AS first_h
            FROM typed t WHERE hash({keys}) IN (SELECT kh FROM again)
            WINDOW w AS (PARTITION BY {keys} ORDER BY {in_batch})),
        prior AS (  -- what the warehouse holds of the batch's keys (of this source only: `first_delivery`)
            SELECT {e_keys}, e.location AS prior_loc, hash({', '.join('e.' + c for c in content)}) AS prior_h
            FROM (SELECT e.* FROM {stream.table} e SEMI JOIN ({found}) s ON s.r = e.rowid) e
            QUALIFY row_number() OVER (PARTITION BY {e_keys} ORDER BY {in_warehouse}) = 1)
        SELECT r.ord, r.ref, r.location, CASE
                WHEN rn > 1 THEN 'duplicate'
                WHEN p.prior_h IS NULL THEN 'load'
                WHEN p.prior_h = r.h THEN 'duplicate'
                WHEN {'true' if latest else 'false'} THEN 'load'
                ELSE 'duplicate' END AS fate,
               CASE WHEN rn > 1 THEN first_loc ELSE p.prior_loc END AS kept_loc,
               CASE WHEN rn > 1 THEN r.h <> r.first_h
                    WHEN {'true' if latest else 'false'} THEN false
                    ELSE p.prior_h IS NOT NULL AND p.prior_h <> r.h END AS conflicting
        FROM ranked r LEFT JOIN prior p ON {on_prior}
        """,
        {} if shared else {"source": source},
    )
    con.execute(
        "INSERT INTO duplicates SELECT $source, $batch, $kind, ref, location, kept_loc, conflicting "
        "FROM _classified WHERE fate = 'duplicate' ORDER BY ord",
        {"source": source, "batch": batch_id, "kind": stream.row_kind},
    )
    # The rows to load, typed again from staging by their `ord` (unique in a batch):
    # `_classified` keeps only what the ledger needs, not a copy of every column of the batch
    # (18 ms less of a 50 000-event delta at 5 M, in process, four runs each).
    classified = (f"SELECT {loaded_cols} FROM ({typed}) t "
                  "SEMI JOIN (SELECT ord FROM _classified WHERE fate = 'load') c ON c.ord = t.ord")
    (counts.loaded,) = con.execute(load(f"(SELECT {loaded_cols} FROM {direct} UNION ALL {classified})" if direct
                                        else f"({classified})"), {"source": source, "batch": batch_id}).fetchone()
    (counts.duplicates,) = con.execute("SELECT count(*) FROM _classified WHERE fate = 'duplicate'").fetchone()
    counts.duplicates += con.execute("SELECT count(*) FROM _bad WHERE seen").fetchone()[0]
    for t in ("_bad", "_classified", "_repeated"):
        con.execute(f"DROP TABLE IF EXISTS {t}")
    return counts


def first_delivery(con: duckdb.DuckDBPyConnection, stream: Stream, source: str) -> bool:
    """Whether the table holds no row of ``source`` yet: then the classification's lookup of
    prior rows, which reads only the source's own (``prior`` in `merge`), finds nothing."""
    return not con.execute(f"SELECT 1 FROM {stream.table} WHERE source = $source LIMIT 1", {"source": source}).fetchone()
