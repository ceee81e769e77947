"""Tamper evidence (issue #14): a manifest per committed batch, chained by hash; checkpoints
of the chain head outside the warehouse, signed with Ed25519; and `vigie verify`.

    seal(con)                  # in the transaction that commits a batch: chain what is new
    checkpoint(con, settings)  # after the commit: append the head to the checkpoint log
    verify(settings)           # recompute everything, walk the chain, check the checkpoints

A manifest is canonical JSON (sorted keys, no spaces) holding the batch's ledger row, its
landed files (name, path, SHA-256, bytes), for each table that has a ``batch_id`` column the
number and a content hash of the rows the batch added, and the hash of the previous
manifest. A row's text is a JSON array of its values: integers, booleans and text as JSON has
them, instants as microseconds since the epoch, any other value (a float, a date, nested
values as JSON) as a string of DuckDB's text of it. The content hash does not
depend on the order rows are stored in, so it can be recomputed years later:

- a table whose rows keep their delivery order (a NOT NULL ``ord``: the canonical tables) is
  hashed as one document: SHA-256 of the rows' texts, each followed by a newline, in
  (``ord``, text) order, as JSON Lines (``"order": "ord"`` in the manifest's entry). DuckDB
  builds the text and concatenates it, 64 Ki rows at a time so that memory stays bounded
  (small batches several to a query, a large one cut at quantiles of ``ord``);
  Python's hashlib hashes the bytes (OpenSSL's SHA-256 runs about 9 times as fast as
  DuckDB's own `sha256`, which dominated the cost of sealing);
- any other table (quarantine, duplicates, landed files, the register's rows...) is hashed as
  a set: SHA-256 of each row's text, the row hashes sorted within 256 buckets (by their first
  byte) and hashed, then the buckets hashed in order.

That is format 3. Format 2 hashed every table as a set, each row as a JSON list of its values'
text (numbers quoted; twice as slow to build); format 1 hashed a row as a JSON object
(column names repeated in every row, instants formatted in the session's time zone). Their
manifests still verify as they were sealed. The columns hashed are listed in the manifest,
so a column added to a table by a later migration does not break older manifests.

Only committed batches are chained (status ``loaded``, the register's versions included), in
commit order; batches in any other status (failed, held, abandoned...) are left alone.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb

from vigie import db
from vigie.config import ConfigError

FORMAT = 3  # of manifests: how rows are hashed (module doc)
SPAN_ROWS = 65536  # rows of an ordered table concatenated at a time (memory: one span's text)
SPANS_PER_QUERY = 4  # spans built by one query: DuckDB spreads them over its threads
SPAN_FLUSH = "64MB"  # freed memory kept for the next spans (db.bulk_flush)
CHECKPOINT_FORMAT = 1
GENESIS = "0" * 64
# The ledger row of a batch, as sealed (everything but the error text of a failed batch).
LEDGER_FIELDS = ("source", "kind", "started_at", "committed_at", "status", "sha256", "raw_bytes", "files",
                 "received", "loaded", "duplicates", "quarantined", "cursor_before", "cursor_after")
# The text of the manifest `m` (a row of main.manifests): a long one is in parts (migration 013).
MANIFEST_TEXT = ("CASE WHEN m.manifest <> '' THEN m.manifest ELSE coalesce((SELECT string_agg(p.text, '' ORDER BY p.part) "
                 "FROM main.manifest_parts p WHERE p.seq = m.seq AND p.batch_id = m.batch_id), '') END")
# Tables with a batch_id column that are not data a batch added.
NOT_CHAINED = {"batches", "manifests", "manifest_parts", "landed_purges", "source_cursors"}


def canonical(obj: object) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _batch_filter(batch_ids: list[int]) -> str:
    """A filter DuckDB can push into the scan (zone maps on batch_id): ids are integers."""
    ids = sorted({int(b) for b in batch_ids})
    if len(ids) <= 200:
        return f"batch_id IN ({', '.join(map(str, ids))})"
    return f"batch_id >= {ids[0]}"  # the caller keeps only the ids it asked for


# --- what a batch added -----------------------------------------------------------------------

def chained_tables(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """Every table of the warehouse whose rows carry the batch that added them, with its columns."""
    rows = con.execute(
        """SELECT c.table_name, list(c.column_name ORDER BY c.column_index)
           FROM duckdb_columns() c
           JOIN duckdb_tables() t ON t.table_oid = c.table_oid
           WHERE c.database_name = current_database() AND c.schema_name = 'main' AND NOT t.temporary
           GROUP BY 1 HAVING list_contains(list(c.column_name), 'batch_id') ORDER BY 1"""
    ).fetchall()
    return {t: cols for t, cols in rows if t not in NOT_CHAINED and not t.startswith("staging_")}


def column_types(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], str]:
    """(table, column) → type, for every table of the warehouse: one query."""
    return {(t, c): ty for t, c, ty in con.execute(
        "SELECT table_name, column_name, data_type FROM duckdb_columns() WHERE database_name = current_database() "
        "AND schema_name = 'main'").fetchall()}


_INTEGERS = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"}
# Types whose JSON is a plain JSON number, boolean or string (format 3 puts them as they are).
_JSON_AS_IS = {"VARCHAR", "BOOLEAN", *_INTEGERS}


def _row_text(table: str, columns: list[str], fmt: int, types: dict[tuple[str, str], str]) -> str:
    """The SQL of a row's hashed text (see the module's doc)."""
    if fmt == 1:
        return "CAST(to_json({" + ", ".join(f"'{c}': t.{_ident(c)}" for c in columns) + "}) AS VARCHAR)"

    def text(c: str) -> str:  # format 2: every value as DuckDB's text of it
        kind = types.get((table, c), "")
        if kind.startswith("TIMESTAMP"):  # an instant, whatever the session's time zone
            return f"CAST(epoch_us(t.{_ident(c)}) AS VARCHAR)"
        if kind.endswith("]") or kind.startswith(("STRUCT", "MAP", "UNION")):
            return f"CAST(to_json(t.{_ident(c)}) AS VARCHAR)"  # unambiguous, unlike a list's text
        return f"CAST(t.{_ident(c)} AS VARCHAR)"
    if fmt == 2:
        return "CAST(to_json([" + ", ".join(text(c) for c in columns) + "]) AS VARCHAR)"

    def value(c: str) -> str:  # format 3: integers, booleans and text as JSON has them (half the cost)
        kind = types.get((table, c), "")
        if kind.startswith("TIMESTAMP"):
            return f"epoch_us(t.{_ident(c)})"
        return f"t.{_ident(c)}" if kind in _JSON_AS_IS else text(c)  # the rest (floats: NaN) as text
    return "CAST(json_array(" + ", ".join(value(c) for c in columns) + ") AS VARCHAR)"


def content_hashes(con: duckdb.DuckDBPyConnection, table: str, columns: list[str],
                   batch_ids: list[int], fmt: int | None = None,
                   types: dict[tuple[str, str], str] | None = None) -> dict[int, tuple[int, str]]:
    """(rows, content hash) per batch of ``table``, over ``columns``, rows hashed as manifest
    format ``fmt`` (default: the current one); one query, in DuckDB. ``types``: column_types,
    when the caller has it already."""
    text = _row_text(table, columns, fmt or FORMAT, types if types is not None else column_types(con))
    found = con.execute(
        f"""WITH r AS (SELECT batch_id, sha256({text}) AS h
                       FROM main.{_ident(table)} t WHERE {_batch_filter(batch_ids)}),
                 b AS (SELECT batch_id, left(h, 2) AS bucket, count(*) AS n,
                              sha256(string_agg(h, '' ORDER BY h ASC)) AS bh FROM r GROUP BY ALL)
            SELECT batch_id, sum(n)::BIGINT, sha256(string_agg(bucket || bh, '' ORDER BY bucket ASC))
            FROM b GROUP BY batch_id"""
    ).fetchall()
    wanted = set(batch_ids)
    return {b: (n, h) for b, n, h in found if b in wanted}


def ordered_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Tables whose rows all keep their delivery order (a NOT NULL ``ord``): hashed in order."""
    return {t for (t,) in con.execute(
        "SELECT table_name FROM duckdb_columns() WHERE database_name = current_database() AND schema_name = 'main' "
        "AND column_name = 'ord' AND NOT is_nullable").fetchall()}


def ordered_hashes(con: duckdb.DuckDBPyConnection, table: str, columns: list[str], batch_ids: list[int],
                   types: dict[tuple[str, str], str] | None = None, fmt: int | None = None,
                   counts: dict[int, int] | None = None) -> dict[int, tuple[int, str]]:
    """(rows, content hash) per batch of ``table``: SHA-256 of the rows' texts as JSON Lines
    in (ord, text) order (module doc). DuckDB concatenates the text a span of about
    SPAN_ROWS rows at a time: a large batch is cut at quantiles of ``ord``, small batches go
    several to a query; the hash does not depend on where the spans are cut. Runs on the
    caller's connection: a batch is sealed in the transaction that loads it, and another
    cursor would not see its rows. ``counts``: `row_counts`, when the caller has them already."""
    types = types if types is not None else column_types(con)
    if types.get((table, "ord")) not in _INTEGERS:  # its values are written into the SQL below
        raise ValueError(f"{table}.ord is {types.get((table, 'ord'))}, not an integer")
    text = _row_text(table, columns, fmt or FORMAT, types)
    name = f"main.{_ident(table)}"
    counts = sorted((counts if counts is not None else row_counts(con, table, batch_ids)).items())
    # Each query: its SQL, with __ORDER__ for the order; rows come back as (batch, span, rows,
    # distinct ords, text), in batch then span order.
    queries: list[str] = []
    small: list[tuple[int, int]] = []

    def flush_small() -> None:
        if small:
            ids = ", ".join(str(int(b)) for b, _ in small)
            queries.append(f"""SELECT batch_id, 0, count(*), count(DISTINCT ord), encode(string_agg(x, chr(10) ORDER BY __ORDER__))
                               FROM (SELECT t.batch_id, t.ord, {text} AS x FROM {name} t WHERE batch_id IN ({ids}))
                               GROUP BY batch_id ORDER BY batch_id""")
            small.clear()

    for b, n in counts:
        if n <= SPAN_ROWS:
            if small and (sum(m for _, m in small) + n > SPAN_ROWS * SPANS_PER_QUERY or len(small) >= 200):
                flush_small()
            small.append((b, n))
            continue
        flush_small()
        parts = -(-n // SPAN_ROWS)
        fractions = ", ".join(str(i / parts) for i in range(1, parts))
        (found,) = con.execute(f"SELECT quantile_disc(ord, [{fractions}]) FROM {name} WHERE batch_id = {int(b)}").fetchone()
        edges: list[int | None] = [None, *sorted({int(c) for c in found}), None]
        for first in range(0, len(edges) - 1, SPANS_PER_QUERY):
            lo, *inner, hi = edges[first:first + SPANS_PER_QUERY + 1]
            span = "CASE " + " ".join(f"WHEN ord < {c} THEN {i}" for i, c in enumerate(inner)) + \
                f" ELSE {len(inner)} END" if inner else "0"
            where = " AND ".join([f"batch_id = {int(b)}", *([f"ord >= {lo}"] if lo is not None else []),
                                  *([f"ord < {hi}"] if hi is not None else [])])
            queries.append(f"""SELECT {int(b)}, {span} AS span, count(*), count(DISTINCT ord),
                                      encode(string_agg(x, chr(10) ORDER BY __ORDER__))
                               FROM (SELECT t.ord, {text} AS x FROM {name} t WHERE {where}) GROUP BY span ORDER BY span""")
    flush_small()

    def fetch(query: str) -> list[tuple]:
        return con.execute(query).fetchall()

    # Ordered by ord alone, a quarter cheaper; where rows share an ord (none do today), the
    # query runs again in (ord, text) order, text as its UTF-8 bytes (no collation applies).
    # One query at a time on this connection, in a worker thread: the next spans are built
    # while hashlib (which releases the GIL) hashes the last ones.
    by_ord, by_text = "ord ASC", "ord ASC, encode(x) ASC"
    digests: dict[int, tuple] = {}
    with db.bulk_flush(con, SPAN_FLUSH), ThreadPoolExecutor(max_workers=1) as worker:
        ahead = worker.submit(fetch, queries[0].replace("__ORDER__", by_ord)) if queries else None
        for i, query in enumerate(queries):
            spans = ahead.result()
            if i + 1 < len(queries):
                ahead = worker.submit(fetch, queries[i + 1].replace("__ORDER__", by_ord))
            if any(m != distinct for _, _, m, distinct, _ in spans):
                spans = worker.submit(fetch, query.replace("__ORDER__", by_text)).result()
            for b, _, m, _, part in spans:
                digest, rows = digests.get(b) or (hashlib.sha256(), 0)
                digest.update(part)  # bytes: a BLOB comes back without decoding its UTF-8
                digest.update(b"\n")
                digests[b] = (digest, rows + m)
    out = {}
    for b, n in counts:
        digest, rows = digests.get(b) or (hashlib.sha256(), 0)
        # Rows the spans missed (an ord made NULL, which no load writes) must not go unseen.
        out[b] = (n, digest.hexdigest() if rows == n else f"{n - rows} row(s) outside every span")
    return out


def row_counts(con: duckdb.DuckDBPyConnection, table: str, batch_ids: list[int]) -> dict[int, int]:
    found = con.execute(f"SELECT batch_id, count(*) FROM main.{_ident(table)} WHERE {_batch_filter(batch_ids)} "
                        "GROUP BY 1").fetchall()
    wanted = set(batch_ids)
    return {b: n for b, n in found if b in wanted}


def rows_by_table(con: duckdb.DuckDBPyConnection, tables: list[str], batch_ids: list[int]) -> dict[str, dict[int, int]]:
    """`row_counts` of every table in ``tables``, in one query: a batch adds rows to a few
    tables, and one query per table to find none in the others cost a delta's four batches
    about 60 statements."""
    if not tables:
        return {}
    union = " UNION ALL ".join(f"SELECT {i} AS t, batch_id, count(*) AS n FROM main.{_ident(t)} "
                               f"WHERE {_batch_filter(batch_ids)} GROUP BY batch_id" for i, t in enumerate(tables))
    wanted = set(batch_ids)
    out: dict[str, dict[int, int]] = {}
    for i, b, n in con.execute(union).fetchall():  # each table by its place in `tables`: no name in the SQL text
        if b in wanted:
            out.setdefault(tables[i], {})[b] = n
    return out


def ledger_rows(con: duckdb.DuckDBPyConnection, batch_ids: list[int]) -> dict[int, dict]:
    fields = ", ".join(f"'{f}': {_ident(f)}" for f in LEDGER_FIELDS)
    rows = con.execute(f"SELECT batch_id, CAST(to_json({{{fields}}}) AS VARCHAR) FROM main.batches "
                       f"WHERE {_batch_filter(batch_ids)}").fetchall()
    wanted = set(batch_ids)
    return {b: json.loads(text) for b, text in rows if b in wanted}


def landed_rows(con: duckdb.DuckDBPyConnection, batch_ids: list[int]) -> dict[int, list[dict]]:
    rows = con.execute(f"SELECT batch_id, name, landed_path, sha256, bytes FROM main.landed_files "
                       f"WHERE {_batch_filter(batch_ids)} ORDER BY batch_id, name, landed_path").fetchall()
    out: dict[int, list[dict]] = {}
    wanted = set(batch_ids)
    for b, name, path, sha, size in rows:
        if b in wanted:
            out.setdefault(b, []).append({"name": name, "path": path, "sha256": sha, "bytes": size})
    return out


def build(con: duckdb.DuckDBPyConnection, batch_ids: list[int],
          tables: dict[str, list[str]]) -> dict[int, dict]:
    """The manifests of ``batch_ids`` as the warehouse holds them now (without seq and prev)."""
    ledger = ledger_rows(con, batch_ids)
    files = landed_rows(con, batch_ids)
    out = {b: {"format": FORMAT, "batch_id": b, "batch": ledger.get(b), "files": files.get(b, []), "tables": {}}
           for b in batch_ids}
    types = column_types(con)
    ordered = ordered_tables(con) if FORMAT >= 3 else set()  # formats 1 and 2: every table a set
    holding = rows_by_table(con, list(tables), batch_ids)  # a table without rows of these batches is not listed
    for table, columns in tables.items():
        counts = holding.get(table)
        if not counts:
            continue
        if table in ordered:
            for b, (n, h) in ordered_hashes(con, table, columns, list(counts), types, counts=counts).items():
                out[b]["tables"][table] = {"columns": columns, "rows": n, "sha256": h, "order": "ord"}
        else:
            for b, (n, h) in content_hashes(con, table, columns, list(counts), types=types).items():
                out[b]["tables"][table] = {"columns": columns, "rows": n, "sha256": h}
    return out


def seal(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Chain every committed batch not chained yet, in commit order; return their ids.

    Called inside the transaction that commits a batch, so a batch is never loaded without its
    manifest. On a warehouse from before the chain, the first call seals what it holds then."""
    started = time.perf_counter()
    pending = [b for (b,) in con.execute(
        """SELECT batch_id FROM main.batches WHERE status = 'loaded'
             AND batch_id NOT IN (SELECT batch_id FROM main.manifests) ORDER BY committed_at, batch_id""").fetchall()]
    if not pending:
        return []
    seq, prev = con.execute("SELECT seq, manifest_hash FROM main.manifests ORDER BY seq DESC LIMIT 1").fetchone() \
        or (0, GENESIS)
    # Parts left by manifests removed from the chain are not this chain's (a warehouse truncated by hand).
    con.execute("DELETE FROM main.manifest_parts WHERE seq > ?", [seq])
    manifests = build(con, pending, chained_tables(con))
    ms = (time.perf_counter() - started) * 1000 / len(pending)
    now = datetime.now(timezone.utc)
    rows, parts = [], []
    for b in pending:
        seq += 1
        m = manifests[b] | {"seq": seq, "prev": prev}
        text = canonical(m)
        digest = sha256_text(text)
        long = len(text) > db.TEXT_PART  # in parts: whole, each checkpoint would write it again (migration 013)
        rows.append([seq, b, m["batch"]["source"], "" if long else text, prev, digest, now, ms])
        if long:
            parts += [[seq, b, i, part] for i, part in enumerate(db.text_parts(text))]
        prev = digest
    db.insert_rows(con, "manifests", rows)
    db.insert_rows(con, "manifest_parts", parts)
    return pending


def head(con: duckdb.DuckDBPyConnection) -> dict | None:
    """The chain head: the last manifest (seq, batch, hash, when sealed), or None."""
    try:
        row = con.execute("SELECT seq, batch_id, source, manifest_hash, sealed_at FROM main.manifests "
                          "ORDER BY seq DESC LIMIT 1").fetchone()
    except duckdb.CatalogException:  # a warehouse from before the chain
        return None
    if row is None:
        return None
    seq, batch_id, source, digest, sealed_at = row
    return {"seq": seq, "batch_id": batch_id, "source": source, "manifest_hash": digest,
            "sealed_at": sealed_at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")}


# --- keys and checkpoints ---------------------------------------------------------------------

def parse_private_key(text: str, where: str):  # noqa: ANN201
    """An Ed25519 private key: PEM (``openssl genpkey -algorithm ed25519``) or the base64 of
    its 32 raw bytes (``openssl rand -base64 32``)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode(), password=None)
        else:
            raw = base64.b64decode(text, validate=True)
            if len(raw) != 32:
                raise ValueError(f"{len(raw)} bytes, not 32")
            key = Ed25519PrivateKey.from_private_bytes(raw)
    except ValueError as exc:
        raise ConfigError(f"{where}: not an Ed25519 private key (PEM, or base64 of 32 bytes): {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{where}: the key is not an Ed25519 key")
    return key


def signing_key(settings):  # noqa: ANN001, ANN201
    """The private key named by ``integrity.signing_key_env``, or None when signing is off."""
    name = settings.integrity.signing_key_env
    if not name:
        return None
    value = os.environ.get(name)
    if not value:
        raise ConfigError(f"{settings.config_path}: key 'integrity.signing_key_env': variable {name} is not set")
    return parse_private_key(value, f"{settings.config_path}: key 'integrity.signing_key_env': variable {name}")


def verifying_key(settings):  # noqa: ANN001, ANN201
    """The public key that checkpoints must be signed with: ``integrity.public_key`` (an
    inspector needs no secret), else derived from the signing key; None when signing is off."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    path = settings.integrity.public_key
    if path is not None:
        where = f"{settings.config_path}: key 'integrity.public_key': {path}"
        try:
            key = serialization.load_pem_public_key(path.read_bytes())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{where}: not a PEM public key ({exc})") from None
        if not isinstance(key, Ed25519PublicKey):
            raise ConfigError(f"{where}: not an Ed25519 public key")
        return key
    private = signing_key(settings)
    return private.public_key() if private else None


def public_pem(key) -> str:  # noqa: ANN001
    from cryptography.hazmat.primitives import serialization

    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def key_id(public) -> str:  # noqa: ANN001
    from cryptography.hazmat.primitives import serialization

    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def preflight(settings) -> None:  # noqa: ANN001
    """Before a load: the key can be read and the checkpoint log appended to (ConfigError)."""
    signing_key(settings)
    log = settings.integrity.checkpoints
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise ConfigError(f"{settings.config_path}: key 'integrity.checkpoints': {log} cannot be appended to "
                          f"({exc.strerror})") from None


def read_checkpoints(log: Path) -> list[tuple[int, str]]:
    """(line number, text) of each non-empty line."""
    with open(log, encoding="utf-8", errors="replace") as f:
        return [(i, line.strip()) for i, line in enumerate(f, 1) if line.strip()]


def _last_checkpoint_seq(log: Path) -> int:
    if not log.exists():
        return 0
    with open(log, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - 8192))
        lines = [line for line in f.read().splitlines() if line.strip()]
    for line in reversed(lines):
        try:
            return int(json.loads(line)["seq"])
        except (ValueError, KeyError, TypeError):
            continue
    return 0


def checkpoint(con: duckdb.DuckDBPyConnection, settings) -> dict | None:  # noqa: ANN001
    """Append the chain head to the checkpoint log (signed when a key is configured), unless
    the log already holds it. Called after a batch commits."""
    h = head(con)
    log = settings.integrity.checkpoints
    if h is None or _last_checkpoint_seq(log) >= h["seq"]:
        return None
    entry = {"v": CHECKPOINT_FORMAT, "seq": h["seq"], "batch_id": h["batch_id"], "manifest_hash": h["manifest_hash"],
             "at": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")}
    key = signing_key(settings)
    if key is not None:
        entry["key"] = key_id(key.public_key())
        entry["sig"] = base64.b64encode(key.sign(canonical(entry).encode())).decode()
    log.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (canonical(entry) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return entry


# --- retention of the landed copies -----------------------------------------------------------

def purge_landed(con: duckdb.DuckDBPyConnection, settings, now: datetime | None = None) -> int:  # noqa: ANN001
    """Delete the landed files of chained batches committed more than ``keep_landed_days``
    ago; their hashes stay in the manifests and the purge is recorded. Returns how many."""
    days = settings.integrity.keep_landed_days
    if not days:
        return 0
    now = now or datetime.now(timezone.utc)
    rows = con.execute(
        """SELECT f.batch_id, f.name, f.landed_path, b.source FROM main.landed_files f JOIN main.batches b USING (batch_id)
           WHERE b.committed_at < ? AND f.batch_id IN (SELECT batch_id FROM main.manifests)
             AND NOT EXISTS (SELECT 1 FROM main.landed_purges p WHERE p.batch_id = f.batch_id AND p.name = f.name)""",
        [now - timedelta(days=days)]).fetchall()
    # Recorded first: a record whose file is still there is merely checked; a file gone without
    # its record would read as tampering.
    db.insert_rows(con, "landed_purges", [[b, name, now] for b, name, _, _ in rows])
    landing = landing_folder(settings)
    paths = [p for p in (landed_file(landing, source, b, path) for b, _, path, source in rows) if landing in p.parents]
    for path in paths:  # only under this warehouse's landing folder
        path.unlink(missing_ok=True)
    for folder in sorted({path.parent for path in paths}, key=lambda p: len(p.parts), reverse=True):
        while folder != landing and landing in folder.parents:
            try:
                folder.rmdir()  # only when empty: a batch folder whose files are all gone
            except OSError:
                break
            folder = folder.parent
    return len(rows)


def landing_folder(settings) -> Path:  # noqa: ANN001
    """The current landing folder, resolved: what `landed_file` maps landed files under."""
    return (settings.warehouse.parent / "landing").resolve()


def landed_file(landing: Path, source: str | None, batch_id: int, recorded: str) -> Path:
    """Where a landed file is now: its place under the current landing folder (``landing``,
    from `landing_folder`), ``<landing>/<source>/<batch>/...``. Its manifest seals the absolute
    path it was landed at, which names another folder once the warehouse's folder has been
    moved, restored or copied elsewhere: that copy's files are the ones to check and to purge,
    never the original's (they were reported missing, or the original's were checked, and the
    original's purged). String work only: verify calls it for every landed file (91 000 at 20 M)."""
    key = f"{os.sep}landing{os.sep}{source}{os.sep}{batch_id}{os.sep}"
    at = recorded.find(key) if source is not None else -1  # the first: the root's own landing folder
    if at < 0:
        return Path(recorded)
    return Path(f"{landing}{key[len(os.sep) + len('landing'):]}{recorded[at + len(key):]}")


# --- verification -----------------------------------------------------------------------------

@dataclass
class Break:
    """One thing that no longer holds: which batch, where (a file, a table, the chain, the
    checkpoint log, the published copy), what differs."""

    batch_id: int | None
    source: str | None
    where: str
    what: str
    expected: str = ""
    found: str = ""

    def line(self) -> str:
        batch = f"batch {self.batch_id}" + (f" ({self.source})" if self.source else "") if self.batch_id is not None \
            else "chain"
        diff = f": expected {self.expected}, found {self.found}" if self.expected or self.found else ""
        return f"{batch}: {self.where}: {self.what}{diff}"


@dataclass
class Verification:
    breaks: list[Break] = field(default_factory=list)
    purged: list[dict] = field(default_factory=list)  # landed files purged by retention
    notes: list[str] = field(default_factory=list)
    head: dict | None = None
    batches_checked: int = 0
    files_checked: int = 0
    checkpoints_checked: int = 0
    copies: list[str] = field(default_factory=list)  # which warehouse files were recomputed
    evaluations_checked: list[str] = field(default_factory=list)  # whose stored findings were evaluated again

    @property
    def ok(self) -> bool:
        return not self.breaks

    def as_json(self) -> dict:
        return {"ok": self.ok, "head": self.head, "copies": self.copies, "batches_checked": self.batches_checked,
                "files_checked": self.files_checked, "checkpoints_checked": self.checkpoints_checked,
                "evaluations_checked": self.evaluations_checked,
                "breaks": [asdict(b) for b in self.breaks], "purged": self.purged, "notes": self.notes}


@dataclass
class Link:
    seq: int
    batch_id: int
    manifest: dict
    digest: str


def _short(h: str | None) -> str:
    return (h or "")[:16]


def walk_chain(con: duckdb.DuckDBPyConnection, out: Verification, label: str) -> list[Link]:
    """Each manifest hashes to its recorded hash and names the one before it; no gap."""
    parted = con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
                         "AND schema_name = 'main' AND table_name = 'manifest_parts'").fetchone()[0]
    text = MANIFEST_TEXT if parted else "m.manifest"  # a warehouse from before migration 013
    try:
        rows = con.execute(f"SELECT m.seq, m.batch_id, m.source, {text}, m.prev_hash, m.manifest_hash FROM main.manifests m "
                           "ORDER BY m.seq, m.batch_id").fetchall()
    except duckdb.CatalogException:
        out.breaks.append(Break(None, None, f"{label}: manifests", "the table of manifests is missing"))
        return []
    chain: list[Link] = []
    prev, expected_seq, seen = GENESIS, 1, set()
    for seq, batch_id, source, text, prev_hash, digest in rows:
        where = f"{label}: manifest {seq}"
        if seq > expected_seq:
            out.breaks.append(Break(batch_id, source, where, f"manifest(s) {expected_seq}..{seq - 1} missing: "
                                    "batches removed from the chain"))
        elif seq < expected_seq:
            out.breaks.append(Break(batch_id, source, where, "two manifests with the same position"))
        actual = sha256_text(text)
        if actual != digest:
            out.breaks.append(Break(batch_id, source, where, "manifest edited", _short(digest), _short(actual)))
        try:
            m = json.loads(text)
        except json.JSONDecodeError:
            out.breaks.append(Break(batch_id, source, where, "manifest is not JSON"))
            m = {}
        if m.get("prev") != prev or prev_hash != prev:
            out.breaks.append(Break(batch_id, source, where, "chain link broken: does not name the manifest before it",
                                    _short(prev), _short(m.get("prev"))))
        if m.get("batch_id") != batch_id or m.get("seq") != seq:
            out.breaks.append(Break(batch_id, source, where, "manifest names another batch or position",
                                    f"batch {batch_id} at {seq}", f"batch {m.get('batch_id')} at {m.get('seq')}"))
        if batch_id in seen:
            out.breaks.append(Break(batch_id, source, where, "batch chained twice"))
        seen.add(batch_id)
        # The hashed manifest's own batch id is the one to recompute: the column is only an index.
        sealed_id = m.get("batch_id") if isinstance(m.get("batch_id"), int) else batch_id
        chain.append(Link(seq, sealed_id, m, actual))
        prev, expected_seq = actual, max(expected_seq, seq + 1)
    return chain


# A macro stored in the warehouse under the name of a DuckDB function (sha256, json_array...)
# is what an unqualified call in this file's SQL runs: it could hand back the sealed hash of an
# edited row. Vigie's own macros never take such a name, so one that does is a break. The
# catalog functions and every function here are DuckDB's own (`system.main.`): a macro named
# duckdb_functions or lower would otherwise answer for them and hide itself.
_SHADOWS = """SELECT DISTINCT f.function_name FROM system.main.duckdb_functions() f
              WHERE NOT f.internal AND f.database_name = system.main.current_database()
                AND system.main.lower(f.function_name) IN (
                    SELECT system.main.lower(function_name) FROM system.main.duckdb_functions() WHERE internal)
              ORDER BY 1"""


def check_warehouse(con: duckdb.DuckDBPyConnection, out: Verification, label: str,
                    from_batch: int = 1) -> list[Link]:
    """Walk the chain, then recompute the manifests of batches >= from_batch from the tables."""
    for (name,) in con.execute(_SHADOWS).fetchall():
        out.breaks.append(Break(None, None, f"{label}: functions",
                                f"the warehouse defines its own {name}(), the name of one of DuckDB's functions: "
                                "the hashes recomputed from it cannot be trusted"))
    chain = walk_chain(con, out, label)
    out.copies.append(label)
    chained = {link.batch_id for link in chain}
    for b, source in con.execute("SELECT batch_id, source FROM main.batches WHERE status = 'loaded' AND batch_id >= ? "
                                 "ORDER BY batch_id", [from_batch]).fetchall():
        if b not in chained:
            out.breaks.append(Break(b, source, f"{label}: batches", "committed batch that is not in the chain"))
    # One row per batch: nothing in the table refuses a second (no keys: DuckLake has none), which
    # could, say, give a batch another commit instant for `known_at` while the sealed row stays.
    for b, source, n in con.execute("SELECT batch_id, any_value(source), count(*) FROM main.batches "
                                    "WHERE batch_id >= ? GROUP BY ALL HAVING count(*) > 1 ORDER BY ALL",
                                    [from_batch]).fetchall():
        out.breaks.append(Break(b, source, f"{label}: batches", f"batch recorded {n} times in the ledger"))
    links = [link for link in chain if link.batch_id >= from_batch]
    if not links:
        return chain
    ids = [link.batch_id for link in links]
    src = {link.batch_id: (link.manifest.get("batch") or {}).get("source") for link in links}
    ledger = ledger_rows(con, ids)
    files = landed_rows(con, ids)
    for link in links:
        b, m = link.batch_id, link.manifest
        now = ledger.get(b)
        if now is None:
            out.breaks.append(Break(b, src[b], f"{label}: batches", "batch missing from the ledger"))
        else:
            for key in LEDGER_FIELDS:
                was = (m.get("batch") or {}).get(key)
                if now.get(key) != was:
                    out.breaks.append(Break(b, src[b], f"{label}: batches.{key}", "ledger field changed",
                                            canonical(was), canonical(now.get(key))))
        sealed = {f["name"]: f for f in m.get("files", [])}
        held = {f["name"]: f for f in files.get(b, [])}
        for name in sorted(sealed.keys() | held.keys()):
            if name not in held:
                out.breaks.append(Break(b, src[b], f"{label}: landed_files", f"record of landed file {name} deleted"))
            elif name not in sealed:
                out.breaks.append(Break(b, src[b], f"{label}: landed_files", f"landed file {name} added after sealing"))
            elif held[name] != sealed[name]:
                out.breaks.append(Break(b, src[b], f"{label}: landed_files", f"record of landed file {name} changed",
                                        canonical(sealed[name]), canonical(held[name])))
    tables, types = chained_tables(con), column_types(con)
    expected: dict[str, dict[tuple, list[int]]] = {}  # table -> (columns, format, order) -> batches
    for link in links:
        for table, entry in (link.manifest.get("tables") or {}).items():
            key = (tuple(entry["columns"]), int(link.manifest.get("format", 1)), entry.get("order"))
            expected.setdefault(table, {}).setdefault(key, []).append(link.batch_id)
    by_id = {link.batch_id: link for link in links}
    for table in sorted(expected.keys() | tables.keys()):
        if table not in tables:
            for batches in expected[table].values():
                for b in batches:
                    out.breaks.append(Break(b, src[b], f"{label}: {table}", "table missing"))
            continue
        present = set(tables[table])
        for (columns, fmt, order), batches in expected.get(table, {}).items():
            missing = [c for c in columns if c not in present]
            if missing:
                for b in batches:
                    out.breaks.append(Break(b, src[b], f"{label}: {table}", f"column(s) {', '.join(missing)} missing"))
                continue
            if order == "ord" and types.get((table, "ord")) not in _INTEGERS:  # never written so by a load
                for b in batches:
                    out.breaks.append(Break(b, src[b], f"{label}: {table}", "column ord is no longer an integer",
                                            "an integer", str(types.get((table, "ord")))))
                continue
            found = ordered_hashes(con, table, list(columns), batches, types, fmt) if order == "ord" \
                else content_hashes(con, table, list(columns), batches, fmt, types)
            for b in batches:
                sealed = by_id[b].manifest["tables"][table]
                n, h = found.get(b, (0, ""))
                if (n, h) != (sealed["rows"], sealed["sha256"]):
                    out.breaks.append(Break(b, src[b], f"{label}: {table}", _what_changed(sealed["rows"], n),
                                            f"{sealed['rows']} rows {_short(sealed['sha256'])}", f"{n} rows {_short(h)}"))
        # rows added under a chained batch to a table its manifest does not list
        unlisted = [b for b in ids if table not in (by_id[b].manifest.get("tables") or {})]
        if unlisted:
            for b, n in sorted(row_counts(con, table, unlisted).items()):
                out.breaks.append(Break(b, src[b], f"{label}: {table}", "rows added that the manifest does not list",
                                        "0 rows", f"{n} rows"))
    out.batches_checked = max(out.batches_checked, len(links))
    return chain


def _what_changed(sealed: int, found: int) -> str:
    if found < sealed:
        return f"{sealed - found} row(s) deleted" if found else "all rows deleted"
    if found > sealed:
        return f"{found - sealed} row(s) added"
    return "row content altered (same number of rows)"


def _file_sha256(path: Path) -> tuple[int, str]:
    with open(path, "rb") as f:
        return os.fstat(f.fileno()).st_size, hashlib.file_digest(f, "sha256").hexdigest()


def check_files(con: duckdb.DuckDBPyConnection, settings, chain: list[Link], out: Verification,  # noqa: ANN001
                from_batch: int = 1) -> None:
    """Each landed file still has the bytes and hash its manifest sealed, or was purged by
    retention: recorded as purged, and only once ``keep_landed_days`` had passed since its
    batch committed (a purge record for a younger file is a deletion in disguise)."""
    try:
        purges = {(b, n): at for b, n, at in con.execute(
            "SELECT batch_id, name, purged_at FROM main.landed_purges").fetchall()}
    except duckdb.CatalogException:
        purges = {}
    days = settings.integrity.keep_landed_days
    todo = []
    for link in chain:
        if link.batch_id < from_batch:
            continue
        source = (link.manifest.get("batch") or {}).get("source")
        committed = (link.manifest.get("batch") or {}).get("committed_at")
        for f in link.manifest.get("files", []):
            todo.append((link.batch_id, source, committed, f))

    landing = landing_folder(settings)

    def look(item: tuple) -> tuple:
        path = landed_file(landing, item[1], item[0], item[3]["path"])
        try:
            return item, _file_sha256(path)
        except FileNotFoundError:
            return item, None

    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        for (b, source, committed, f), got in pool.map(look, todo):
            out.files_checked += 1
            where = f"landing: {f['name']}"
            if got is None:
                purged_at = purges.get((b, f["name"]))
                if purged_at is not None and days and committed and purged_at >= _instant(committed) + timedelta(days=days):
                    out.purged.append({"batch_id": b, "source": source, "file": f["name"], "sha256": f["sha256"],
                                       "purged_at": purged_at.isoformat()})
                elif purged_at is not None:
                    out.breaks.append(Break(b, source, where, "landed file deleted, recorded as purged before "
                                            "integrity.keep_landed_days had passed"))
                else:
                    out.breaks.append(Break(b, source, where, "landed file missing", f"{f['bytes']} bytes", "no file"))
                continue
            size, digest = got
            if size != f["bytes"]:
                out.breaks.append(Break(b, source, where, "landed file size changed (truncated or extended)",
                                        f"{f['bytes']} bytes", f"{size} bytes"))
            elif digest != f["sha256"]:
                out.breaks.append(Break(b, source, where, "landed file content changed", _short(f["sha256"]),
                                        _short(digest)))


def _instant(text: str) -> datetime:
    """An instant as DuckDB's to_json writes it (``2026-03-01 10:00:00.123+00``)."""
    if text[-3] in "+-" and text[-3:].lstrip("+-").isdigit():
        text += ":00"
    return datetime.fromisoformat(text)


def check_published(settings, writer_chain: list[Link] | None, out: Verification,  # noqa: ANN001
                    from_batch: int = 1, rules_reference: dict | None = None) -> list[Link]:
    """The published copy (what inspectors and reports read): its own manifests recomputed, and
    its chain a prefix of the writer's (it lags behind by the loads since it was published).
    Kept in one function: how the warehouse is published is changing (issue #12)."""
    if not settings.warehouse.exists():
        out.notes.append("no published copy yet")
        return []
    con = db.reader(settings.warehouse, sealed=True)
    try:
        rules_clean = check_rules(con, settings, rules_reference, out, "published copy") \
            if rules_reference is not None else False
        chain = check_warehouse(con, out, "published copy", from_batch)
        if rules_reference is not None and from_batch == 1:
            check_evaluation(con, settings, out, "published copy", rules_clean)
    finally:
        con.close()
    if writer_chain is not None:
        writer = {link.seq: link for link in writer_chain}
        for link in chain:
            w = writer.get(link.seq)
            if w is None:
                out.breaks.append(Break(link.batch_id, None, "published copy",
                                        f"manifest {link.seq} is not in the writer's chain"))
            elif (w.batch_id, w.digest) != (link.batch_id, link.digest):
                out.breaks.append(Break(link.batch_id, None, "published copy",
                                        f"manifest {link.seq} differs from the writer's",
                                        f"batch {w.batch_id} {_short(w.digest)}",
                                        f"batch {link.batch_id} {_short(link.digest)}"))
    return chain


def check_checkpoints(settings, chain: list[Link], out: Verification, key) -> None:  # noqa: ANN001
    """Every checkpoint names a manifest of the chain, signed when a key is known; the head is
    checkpointed (a head beyond the last checkpoint is noted: a load may be committing)."""
    from cryptography.exceptions import InvalidSignature

    log = settings.integrity.checkpoints
    by_seq = {link.seq: link for link in chain}
    if not log.exists():
        if chain:
            out.breaks.append(Break(None, None, f"checkpoints: {log}", "checkpoint log missing"))
        return
    last_seq, signed_unchecked = 0, 0
    for n, text in read_checkpoints(log):
        where = f"checkpoints: line {n}"
        try:
            entry = json.loads(text)
            seq, batch_id, digest = int(entry["seq"]), int(entry["batch_id"]), str(entry["manifest_hash"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            out.breaks.append(Break(None, None, where, "not a checkpoint"))
            continue
        out.checkpoints_checked += 1
        if key is not None:
            sig = entry.pop("sig", None)
            try:
                if sig is None:
                    raise InvalidSignature
                key.verify(base64.b64decode(sig), canonical(entry).encode())
            except (InvalidSignature, ValueError):
                out.breaks.append(Break(batch_id, None, where, "checkpoint not signed" if sig is None
                                        else "signature does not verify with the public key"))
        elif "sig" in entry:
            signed_unchecked += 1
        if seq <= last_seq:
            out.breaks.append(Break(batch_id, None, where, "checkpoints out of order", f"after {last_seq}", str(seq)))
        last_seq = max(last_seq, seq)
        link = by_seq.get(seq)
        if link is None:
            out.breaks.append(Break(batch_id, None, where, f"checkpointed manifest {seq} is not in the warehouse's chain",
                                    f"batch {batch_id} {_short(digest)}", "none"))
        elif (link.batch_id, link.digest) != (batch_id, digest):
            out.breaks.append(Break(batch_id, None, where, f"manifest {seq} differs from its checkpoint",
                                    f"batch {batch_id} {_short(digest)}", f"batch {link.batch_id} {_short(link.digest)}"))
    if chain and chain[-1].seq > last_seq:
        out.notes.append(f"manifests {last_seq + 1}..{chain[-1].seq} are not checkpointed yet "
                         "(a load committing now, or one that stopped before its checkpoint)")
    if signed_unchecked:
        out.notes.append(f"{signed_unchecked} signed checkpoint(s) not checked: no key configured "
                         "(integrity.public_key or integrity.signing_key_env)")


# What the rules are made of in a warehouse, besides its data: macros, views and the tables
# `rules.install` writes (limits, purposes, holders, settings). None of it is in a manifest.
_RULE_PARTS = {
    # Every version of a macro (its parameters, their types, its body), as DuckDB writes them.
    "macros": """SELECT schema_name || '.' || function_name, system.main.string_agg(d, ' | ' ORDER BY d) FROM (
                     SELECT schema_name, function_name,
                            parameters::VARCHAR || ' ' || parameter_types::VARCHAR || ' ' || macro_definition AS d
                     FROM system.main.duckdb_functions() WHERE NOT internal
                     AND database_name = system.main.current_database() AND function_type IN ('macro', 'table_macro'))
                 GROUP BY ALL""",
    "views": """SELECT schema_name || '.' || view_name, sql FROM system.main.duckdb_views()
                WHERE NOT internal AND NOT temporary AND database_name = system.main.current_database()""",
    # A stored type named json would change what the rules' casts to JSON make.
    "types": """SELECT schema_name || '.' || type_name, logical_type FROM system.main.duckdb_types()
                WHERE NOT internal AND database_name = system.main.current_database()""",
    **{table: f"SELECT NULL, system.main.to_json(system.main.list(t ORDER BY t))::VARCHAR FROM main.{table} t"
       for table in ("rule_limits", "rule_purposes", "rule_values", "rule_sources", "rule_settings", "rule_legal_refs")},
}


def rule_parts(con: duckdb.DuckDBPyConnection) -> dict[str, dict]:
    """Each part of the installed rules: name → definition (a table's rows as one JSON text;
    a table dropped: nothing)."""
    parts = {}
    for part, query in _RULE_PARTS.items():
        try:
            parts[part] = {name: _as_written(text) for name, text in con.execute(query).fetchall()}
        except duckdb.CatalogException:
            parts[part] = {}
        except duckdb.Error as exc:  # a table turned into a view that fails, say: told, not a crash
            parts[part] = {None: f"unreadable: {' '.join(str(exc).split())[:200]}"}
    return parts


def _as_written(text: str | None) -> str | None:
    """A definition as DuckDB writes it out, in one order: it writes the columns of an
    ``EXCLUDE (...)`` in the order of a hash set, which a checkpoint can change."""
    if text is None:
        return None
    return re.sub(r"EXCLUDE \(([^()]*)\)", lambda m: "EXCLUDE (" + ", ".join(sorted(m.group(1).split(", "))) + ")",
                  text)


def reference_rules(settings) -> dict[str, dict]:  # noqa: ANN001
    """The rules as this version installs them for ``settings``, in a database of its own,
    read back from its file: DuckDB writes a definition out differently before it is stored
    (a type name in quotes) and after."""
    import tempfile

    from vigie import rules

    with tempfile.TemporaryDirectory(prefix="vigie-rules-") as tmp:
        path = Path(tmp) / "rules.duckdb"
        con = db.throwaway(path)
        try:
            db.migrate(con)
            rules.install(con, settings)
        finally:
            con.close()
        con = db.throwaway(path, read_only=True)  # instants written in UTC, as on the warehouse's connections
        try:
            return rule_parts(con)
        finally:
            con.close()


def check_rules(con: duckdb.DuckDBPyConnection, settings, reference: dict, out: Verification, label: str) -> bool:  # noqa: ANN001
    """Reports and the view evaluate the rules stored in the warehouse: a macro, a view or a
    limit edited there would change every finding while the data still verifies. Compared with
    ``reference``; when they were installed by another version or configuration (their
    fingerprint), what differs is a note, not a break: the next run installs them again, as it
    would rules whose fingerprint was edited to hide an edit. True when they are this version's."""
    from vigie import rules

    found = rule_parts(con)
    differences = []
    for part, want in reference.items():
        have = found[part]
        for name in sorted(want.keys() | have.keys(), key=str):
            what = part if name is None else f"{part[:-1]} {name}"
            if name not in have:
                differences.append((f"{what} removed", "", ""))
            elif name not in want:
                differences.append((f"{what} added", "", ""))
            elif have[name] != want[name]:
                differences.append((f"{what} differs from this version's", _short_text(want[name]),
                                    _short_text(have[name])))
    try:
        (stored,) = con.execute("SELECT fingerprint FROM main.rule_installed").fetchone()
    except (duckdb.Error, TypeError):
        stored = None
    if stored != rules.fingerprint(settings):
        whats = [d[0] for d in differences]
        out.notes.append(f"{label}: its rules were installed by another version or configuration (the next run "
                         f"installs these); differing: {'; '.join(whats[:5]) or 'nothing'}"
                         + (f" and {len(whats) - 5} more" if len(whats) > 5 else ""))
        return False
    out.breaks += [Break(None, None, f"{label}: rules", what, expected, found) for what, expected, found in differences]
    return not differences


def check_evaluation(con: duckdb.DuckDBPyConnection, settings, out: Verification, label: str,  # noqa: ANN001
                     rules_clean: bool) -> None:
    """The stored evaluation against the rules evaluated again (vigie/stored_evaluation.py), with
    the copy's own rules once they are this version's, and its data once it verifies."""
    from vigie import rules, stored_evaluation

    if not rules_clean:
        claimed = stored_evaluation.claims_this_version(con, settings)
        installed = rules.installed_fingerprint(con)
        if claimed and installed != rules.fingerprint(settings):
            # The evaluation says this version's rules made it, the copy's rules (their
            # fingerprint) another version's: no run of this version writes the two (installing
            # other rules marks the evaluation superseded first, `rules.install`), an edit of
            # either does, or an ingestion run of a version before that mark, rolled back to.
            # Its findings are then served by no one, but cannot be evaluated again either.
            out.breaks.append(Break(None, None, f"{label}: rule_installed",
                                    "the stored evaluation says this version's rules made it, the copy's rules "
                                    "say another version's: no run of this version writes the two, an edit does "
                                    "(or an ingestion run of a version from before 2026-12-05, rolled back to)",
                                    f"rules installed as {_short(rules.fingerprint(settings))}",
                                    f"installed as {_short(installed) if installed else 'none'}"))
            return
        out.notes.append(f"{label}: stored findings not re-checked: its rules are not this version's")
        return
    if any(b.where.startswith(f"{label}:") for b in out.breaks):  # their own breaks say what to look at first
        out.notes.append(f"{label}: stored findings not re-checked: the data they were evaluated on does not verify")
        return
    differences, notes = stored_evaluation.check(con, settings, label)
    out.notes += notes
    out.breaks += [Break(None, None, f"{label}: {table}", what, expected, found)
                   for table, what, expected, found in differences]
    if not notes and not differences:
        out.evaluations_checked.append(label)


def _published_is_snapshot(con: duckdb.DuckDBPyConnection, warehouse: Path) -> bool:
    """Whether the published file holds, byte for byte, the writer's state open on ``con`` (its
    private copy, with no WAL pending): what was checked there holds for it. A publish copies
    the writer file whole after a checkpoint, so until the next load they are the same bytes."""
    (path,) = con.execute("SELECT path FROM system.main.duckdb_databases() "
                          "WHERE database_name = system.main.current_database()").fetchone()
    snapshot = Path(path)
    for wal in (snapshot.with_name(snapshot.name + ".wal"), warehouse.with_name(warehouse.name + ".wal")):
        if wal.exists() and wal.stat().st_size:  # beside the published file, readers would replay it
            return False
    try:
        with open(snapshot, "rb") as a, open(warehouse, "rb") as b:
            if os.fstat(a.fileno()).st_size != os.fstat(b.fileno()).st_size:
                return False
            while True:
                x, y = a.read(1 << 20), b.read(1 << 20)
                if x != y:
                    return False
                if not x:
                    return True
    except OSError:  # no published copy yet: it is checked (and said) as such
        return False


def _short_text(text: str | None, limit: int = 200) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def verify(settings, from_batch: int = 1, key=None) -> Verification:  # noqa: ANN001
    """Recompute and check everything: the writer's state (a private copy, no lock), the landed
    files, the published copy, the checkpoint log, and the rules both copies hold.
    ``key`` is the public key (or None)."""
    out = Verification()
    chain: list[Link] | None = None
    reference = reference_rules(settings)
    identical = False
    try:
        with db.writer_snapshot(settings.warehouse) as con:
            rules_clean = check_rules(con, settings, reference, out, "writer")
            chain = check_warehouse(con, out, "writer", from_batch)
            check_files(con, settings, chain, out, from_batch)
            out.head = head(con)
            if from_batch == 1:  # a partial verify (--from-batch) is the quick one: the evaluation costs most
                check_evaluation(con, settings, out, "writer", rules_clean)
            identical = _published_is_snapshot(con, settings.warehouse)
    except db.WriterBusy as exc:
        out.notes.append(f"{exc}: the writer's state was not checked, only the published copy")
    if identical:  # checked above, to the last byte: what was found there holds for it
        published = chain
        out.copies.append("published copy")
        out.evaluations_checked += ["published copy"] if "writer" in out.evaluations_checked else []
        out.breaks += [replace(b, where="published copy:" + b.where.removeprefix("writer:"))
                       for b in out.breaks if b.where.startswith("writer:")]
        out.notes += ["published copy:" + n.removeprefix("writer:") for n in out.notes if n.startswith("writer:")]
        out.notes.append("published copy: byte for byte the writer's state checked above")
    else:
        published = check_published(settings, chain, out, from_batch, reference)
    if from_batch > 1:
        out.notes.append("the stored findings were not evaluated again (--from-batch): a whole verify does it")
    if chain is None:
        chain = published
        out.head = head_of(chain)
    check_checkpoints(settings, chain, out, key)
    out.breaks.sort(key=lambda b: (b.batch_id is None, b.batch_id or 0))  # by batch; stable within one
    return out


def head_of(chain: list[Link]) -> dict | None:
    if not chain:
        return None
    last = chain[-1]
    return {"seq": last.seq, "batch_id": last.batch_id, "source": (last.manifest.get("batch") or {}).get("source"),
            "manifest_hash": last.digest}
