"""Schema drift: a change in the shape of what a source delivers, found before a batch loads.

Each stream has an accepted shape (table ``source_shapes``, migration 010). The batch's shape
is compared with it after staging and before anything is merged; on a change the whole
batch is *held* (pipeline.py): nothing of it loads, its cursor does not move, and the
message names the stream, the column or field and the change. ``vigie run --accept-drift
SOURCE`` takes the new shape once an operator has looked, and the batch then loads under
the contract as it stands (rows the contract cannot read are quarantined, never lost).

What a shape is, and what counts as drift, by kind of stream:

- **table** (``vms_sql``): each table's columns and their type family (integer, text,
  real, numeric, datetime, date, boolean, blob...) as the database declares them. Accepted
  at the first load. Drift: a column added, removed or retyped; one removed and one added in
  the same table is reported as a rename.
- **csv** (``lapi_files``, drone ``tracks``): the header's column names. Accepted: the
  contract's header. Drift: a file whose header shares at least one column with an accepted
  header but is not one of them (a column added, removed, renamed or moved). A header that
  shares no column with the contract is a wrong file, not a new shape: as sources.md says,
  its lines are quarantined (the estate's hand-made French export). CSV has no types: a
  value that no longer reads as its type is a quarantined line.
- **json** (``bodycam_api`` events, drone ``flights``): the fields of the contract
  (sources.md) as paths (``seq``, ``device.serial``, ``recordings[].interior``) with their
  JSON type family (string, number, boolean, object, array; null is no type: nullable
  fields may be null or absent), and which of them are required (the suite's not-null
  expectations). Drift, across the whole batch (readable objects only):
  *added*: a field outside the contract and the accepted shape appears in any row;
  *removed*: a required field is absent from every row (every element, for a field of a
  nested object or list) while its parent is there;
  *retyped*: a field that has values in the batch never has an accepted type there.
  A bad value or a missing field in some rows only is not drift: those rows are quarantined.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from vigie.canonical import PriorRows, first_delivery
from vigie.staging import ord_spans
from vigie.sources.drone_files import TRACK_HEADER
from vigie.sources.lapi_files import QUERY_HEADER, READ_HEADER

_S, _N, _B, _O, _A = "string", "number", "boolean", "object", "array"

# The JSON contracts of sources.md: path → type family, and the required paths.
_EVENT = {"seq": _N, "id": _S, "at": _S, "device": _O, "device.serial": _S, "device.kind": _S,
          "actor": _O, "actor.badge": _S, "actor.unit": _S, "action": _S, "evidence_id": _S,
          "purpose": _S, "justification": _S, "procedure_ref": _S, "recipient": _S}
_EVENT_REQUIRED = ["seq", "id", "at", "device", "device.serial", "device.kind", "actor", "actor.unit", "action",
                   "evidence_id"]
_FLIGHT = {"flight_id": _S, "revision": _N, "drone_id": _S, "unit": _S, "pilot": _S, "authorisation_ref": _S,
           "purpose": _S, "takeoff_at": _S, "landing_at": _S, "audio_recorded": _B, "facial_recognition": _B,
           "recordings": _A, "recordings[].recording_id": _S, "recordings[].interior": _B,
           "recordings[].deleted_at": _S, "consultations": _A, "consultations[].event_id": _S,
           "consultations[].at": _S, "consultations[].by": _S, "consultations[].justification": _S,
           "consultations[].recipient": _S}
_FLIGHT_REQUIRED = [p for p in _FLIGHT if p not in {"authorisation_ref", "purpose", "recordings[].deleted_at",
                                                     "consultations[].by"}]


def _json(fields: dict, required: list) -> dict:
    return {"fields": {p: [t] for p, t in fields.items()}, "required": list(required)}


# By contract suite: the shape a stream starts from (None: the first load's, for tables).
CONTRACT = {
    "bodycam_api.events": ("json", _json(_EVENT, _EVENT_REQUIRED)),
    "drone_files.flights": ("json", _json(_FLIGHT, _FLIGHT_REQUIRED)),
    "drone_files.tracks": ("csv", {"headers": [list(TRACK_HEADER)]}),
    "lapi_files.reads": ("csv", {"headers": [list(READ_HEADER)]}),
    "lapi_files.queries": ("csv", {"headers": [list(QUERY_HEADER)]}),
    "vms_sql.cameras": ("table", None),
    "vms_sql.recordings": ("table", None),
    "vms_sql.audit_log": ("table", None),
}

_FAMILY = {"VARCHAR": _S, "BIGINT": _N, "UBIGINT": _N, "DOUBLE": _N, "BOOLEAN": _B, "OBJECT": _O, "ARRAY": _A}
_PLAIN = re.compile(r"^[A-Za-z0-9_]+$")  # names put in a JSON path; others are checked by presence only


@dataclass
class StreamShape:
    stream: str
    recorded: dict | None  # the accepted shape on record (None: none yet)
    changes: list[str] = field(default_factory=list)  # one line each, naming the field and the change
    taken: dict | None = None  # what is recorded if the batch loads (None: nothing to record)


def _q(name: str) -> str:
    """A name from the data, quoted for a one-line message (no raw newline, bounded)."""
    text = repr(name)
    return text if len(text) <= 60 else text[:57] + "...'"


def current(con: duckdb.DuckDBPyConnection, source: str) -> dict[str, dict]:
    rows = con.execute("""SELECT stream, shape FROM main.source_shapes WHERE source = ?
                          QUALIFY row_number() OVER (PARTITION BY stream ORDER BY batch_id DESC) = 1""",
                       [source]).fetchall()
    return {stream: json.loads(shape) for stream, shape in rows}


def check(con: duckdb.DuckDBPyConnection, source: str, pulled, staged: list[tuple], accept: bool = False,  # noqa: ANN001, PLR0913
          prior: PriorRows | None = None) -> list[StreamShape]:
    """Compare each stream's shape in this batch with the accepted one. ``staged`` is the
    pipeline's [(stream, staging table, rows)]; ``pulled`` the connector's Pull. With
    ``accept``, a changed shape is taken (recorded when the batch loads) instead of held.
    ``prior``: the batch's rows found in the warehouse, shared with the merge (`PriorRows`)."""
    recorded = current(con, source)
    out = []
    for stream, table, rows in staged:
        kind, start = CONTRACT.get(stream.suite, (None, None))
        before = recorded.get(stream.name)
        accepted = before or start
        if kind == "table":
            observed = (getattr(pulled, "shapes", None) or {}).get(stream.name)
            if observed is None:
                continue
            changes = _table_changes(stream.name, accepted, observed) if accepted else []
            taken = observed
        elif kind == "csv":
            headers = _headers([f for f in pulled.files if f.stream == stream.name])
            changes, new = _csv_changes(stream.name, accepted, headers)
            taken = {"headers": accepted["headers"] + [h for h in new if h not in accepted["headers"]]}
        elif kind == "json" and rows:
            changes, taken = _json_changes(con, source, stream, table, accepted, prior)
        else:
            continue
        shape = StreamShape(stream.name, before, changes)
        if before is None or (changes and accept):
            shape.taken = taken if (changes and accept) or kind == "table" else accepted
        out.append(shape)
    return out


def declared_changes(con: duckdb.DuckDBPyConnection, source: str, shapes: dict | None) -> list[str]:
    """The changes in the tables a source declares, for a pull that failed after reading its
    schema (a retyped key column breaks the incremental query itself): drift, said as such."""
    recorded = current(con, source)
    return [c for table, observed in (shapes or {}).items() if table in recorded
            for c in _table_changes(table, recorded[table], observed)]


def record(con: duckdb.DuckDBPyConnection, source: str, batch_id: int, shapes: list[StreamShape]) -> None:
    """In the batch's transaction: the shapes it loaded with, where they are new."""
    now = datetime.now(timezone.utc)
    for s in shapes:
        if s.taken is not None:
            con.execute("INSERT INTO source_shapes VALUES (?, ?, ?, ?, ?, ?)",
                        [source, s.stream, json.dumps(s.taken), batch_id, now,
                         "first load" if s.recorded is None and not s.changes else "accepted"])


def summary(shapes: list[StreamShape], limit: int = 3) -> str:
    changes = [c for s in shapes for c in s.changes]
    more = f" (and {len(changes) - limit} more)" if len(changes) > limit else ""
    return "; ".join(changes[:limit]) + more


# --- tables ---------------------------------------------------------------------------------

def _table_changes(table: str, accepted: dict, observed: dict) -> list[str]:
    before, now = accepted["columns"], observed["columns"]
    gone = [c for c in before if c not in now]
    new = [c for c in now if c not in before]
    out = []
    if len(gone) == 1 and len(new) == 1:
        out.append(f"{table}: column {_q(gone[0])} renamed to {_q(new[0])}? (gone, and new)")
    else:
        out += [f"{table}: column {_q(c)} removed" for c in gone]
        out += [f"{table}: column {_q(c)} added" for c in new]
    out += [f"{table}: column {_q(c)} retyped {before[c]} → {now[c]}"
            for c in before if c in now and before[c] != now[c]]
    return out


# --- CSV headers ----------------------------------------------------------------------------

def _headers(files: list) -> dict[tuple, str]:
    """Each distinct header of these landed CSV files → the first file (in name order) with it."""
    out: dict[tuple, str] = {}
    parsed: dict[bytes, tuple | None] = {}  # a header's bytes → its names (most files share one)
    for f in sorted(files, key=lambda f: f.name):
        first = f.first_line  # as landing read it, when it kept it
        if first is None:
            try:
                with open(f.path, "rb") as fh:
                    first = fh.readline(1 << 16)
            except OSError:
                continue  # an unreadable file is the file checks' business
        if first not in parsed:
            parsed[first] = _header_names(first)
        if parsed[first] is not None:
            out.setdefault(parsed[first], f.name)
    return out


def _header_names(first: bytes) -> tuple | None:
    """The column names of a CSV file whose first line is ``first``; None when it is no header."""
    text = first.decode("utf-8", "replace").removeprefix("\ufeff").rstrip("\r\n")
    if not text.strip():
        return None
    try:  # a stray CR or a broken quote in the header: the header is no shape, its line is quarantined
        return tuple(next(csv.reader([text]), []))
    except csv.Error:
        return None


def _csv_changes(stream: str, accepted: dict, headers: dict[tuple, str]) -> tuple[list[str], list[list]]:
    known = [list(h) for h in accepted["headers"]]
    changes, new = [], []
    for names, file in headers.items():
        if list(names) in known:
            continue
        near = max(known, key=lambda h: len(set(h) & set(names)))
        if not set(near) & set(names):
            continue  # nothing in common: a wrong file, quarantined line by line, not a new shape
        new.append(list(names))
        gone = [c for c in near if c not in names]
        added = [c for c in names if c not in near]
        where = f"{stream}: header of {file}"
        if len(gone) == 1 and len(added) == 1:
            changes.append(f"{where}: column {_q(gone[0])} renamed to {_q(added[0])}?")
        elif gone or added:
            changes += [f"{where}: column {_q(c)} removed" for c in gone]
            changes += [f"{where}: column {_q(c)} added" for c in added]
        else:
            changes.append(f"{where}: columns moved to {_q(','.join(names))}")
    return changes, new


# --- JSON fields ----------------------------------------------------------------------------

def _json_changes(con: duckdb.DuckDBPyConnection, source: str, stream, table: str,  # noqa: ANN001, PLR0913
                  accepted: dict, prior: PriorRows | None = None) -> tuple[list[str], dict]:
    fields: dict[str, list[str]] = accepted["fields"]
    required: list[str] = accepted["required"]
    readable = f"(SELECT * FROM {table} s WHERE s.parse_error IS NULL AND s.j IS NOT NULL)"
    typed = _type_columns(con, stream, table)
    # A stream of long JSON lines is observed a slice at a time, as it was staged (each
    # parse holds a whole vector of rows); the tallies add up across slices.
    spans = ord_spans(con, table) if stream.sliced else None
    # The batch's new rows are those whose shape counts (below). Where the merge finds the
    # batch's rows in the warehouse anyway (`PriorRows`: keys loaded as text), each row is
    # marked new or not in the same pass that observes them all: a second pass over the new
    # rows parsed each of them again (26 ms of a 50 000-event delta at 5 M).
    first = first_delivery(con, stream, source)
    found = prior.lookup(stream, table) if prior is not None and not first else None
    same = " AND ".join(f"c.{k}::VARCHAR = s.{k}" for k in stream.key)
    if found:
        marked = (f"(SELECT *, NOT EXISTS (SELECT 1 FROM {found} c WHERE {same}) AS {_NEW} FROM {table} s "
                  "WHERE s.parse_error IS NULL AND s.j IS NOT NULL)")
        (seen, parents, present), new = _observe(con, marked, {}, fields, typed, split=True, spans=spans)
    else:
        seen, parents, present = _observe(con, readable, {}, fields, typed, spans=spans)
    if _conforms(fields, required, seen, parents, present):
        # No readable row strays from the accepted shape, so neither can the new ones: which
        # rows are new (below) is a lookup of the batch's keys in a table that grows with the
        # warehouse, 0.15 s of a 50 000-event delta at 20 M, not needed then (but where the
        # merge makes it anyway, above).
        return [], accepted
    # The batch's new rows: an API serves its last page again, and rows already loaded say
    # nothing about the shape now (a field gone from every new event would hide among them).
    # At a source's first delivery every row is new: observed above already (observing them
    # again cost a 5 M first load 1.9 s).
    if found:
        seen, parents, _ = new
    elif not first:
        rows = (f"(SELECT * FROM {table} s WHERE s.parse_error IS NULL AND s.j IS NOT NULL AND NOT EXISTS "
                f"(SELECT 1 FROM main.{stream.table} c WHERE c.source = $source AND {same}))")
        seen, parents, _ = _observe(con, rows, {"source": source}, fields, typed, spans=spans)
    kind = stream.row_kind
    added = [p for p in seen if p not in fields]
    gone = [p for p in required if p not in seen and parents.get(_parent(p), 0) > 0]
    missing = list(gone)  # no longer required once the shape is taken
    changes = []
    for p in list(gone):  # one gone and one new under the same parent: a rename
        twins = [a for a in added if _parent(a) == _parent(p)]
        if len(twins) == 1 and len([g for g in gone if _parent(g) == _parent(p)]) == 1:
            changes.append(f"{stream.name}: field {_q(p)} renamed to {_q(twins[0])}? "
                           f"(missing from every {kind}, and new)")
            gone.remove(p)
            added.remove(twins[0])
    changes += [f"{stream.name}: field {_q(p)} is new" for p in added]
    changes += [f"{stream.name}: field {_q(p)} is missing from every {kind}" for p in gone]
    retyped = {p: sorted(types) for p, types in seen.items()
               if p in fields and fields[p] and types and not types & set(fields[p])}
    changes += [f"{stream.name}: field {_q(p)} retyped {'/'.join(fields[p])} → {'/'.join(t)} in every {kind}"
                for p, t in retyped.items()]
    taken = {"fields": {**{p: sorted(set(fields.get(p, [])) | seen.get(p, set())) for p in {*fields, *seen}}},
             "required": [p for p in required if p not in missing]}
    taken["fields"] = dict(sorted(taken["fields"].items()))
    return changes, taken


def _type_columns(con: duckdb.DuckDBPyConnection, stream, table: str) -> dict[str, str]:  # noqa: ANN001
    """Field path → the staging column that holds its JSON type (`Stream.type_columns`),
    for the columns ``table`` has."""
    have = {name for name, *_ in con.execute(f"DESCRIBE {table}").fetchall()}
    return {path: col for path, col in stream.type_columns if col in have}


def _conforms(fields: dict, required: list, seen: dict, parents: dict, present: dict) -> bool:
    """Whether no subset of the rows observed can differ from the accepted shape: no field
    outside it, no value of a type it does not accept, and each required field in every
    object (or list element) where its parent is counted. Then `_json_changes` finds no
    change in any subset (added: a subset's fields are among these; retyped: its types too;
    missing from every one: each of its objects has the field)."""
    return (all(p in fields for p in seen)
            and all(not fields[p] or types <= set(fields[p]) for p, types in seen.items())
            and all(present.get((parent, p[len(parent):]), 0) >= parents.get(parent, 0)
                    for p in required for parent in [_parent(p)]))


def _parent(path: str) -> str:
    """``device.serial`` → ``device.``; ``recordings[].interior`` → ``recordings[].``; top → ''."""
    cut = path.rfind(".")
    return path[:cut + 1] if cut >= 0 else ""


_NEW = "_vg_new"  # the column of ``rows_sql`` that marks a row new, for `_observe` with ``split``


def _observe(con: duckdb.DuckDBPyConnection, rows_sql: str, params: dict, fields: dict,  # noqa: PLR0913
             type_columns: dict[str, str] | None = None, split: bool = False,
             spans: list[tuple[int, int]] | None = None):  # noqa: ANN202
    """Across the batch's readable objects: each path seen → its type families (null is none),
    each parent (``''``, ``device.``, ``recordings[].``) → how many objects it has, and each
    (parent, key) → in how many of the parent's objects it is a key (by parent, not by joined
    path: a top-level key named ``device.serial`` is not the field ``serial`` of ``device``).
    One parse per row for its keys, one more for the types of the paths that no staging
    column of ``type_columns`` holds (none of the contracts' fields), grouped by signature:
    a few distinct rows come back. With ``split``: these three for every row, and the same
    for the rows whose column ``_vg_new`` is true, from the same pass. ``spans``: (first, last)
    ``ord`` of each slice of the rows to observe one after the other (`staging.ord_spans`)."""
    objects = [p for p, t in fields.items() if _O in t and "." not in p and _PLAIN.match(p)
               and any(q.startswith(p + ".") for q in fields)]
    lists = [p for p, t in fields.items() if _A in t and "." not in p and _PLAIN.match(p)
             and any(q.startswith(p + "[].") for q in fields)]
    typed = [p for p in fields if "[]" not in p and all(_PLAIN.match(x) for x in p.split("."))]
    every: tuple[dict[str, set], dict[str, int], dict[tuple[str, str], int]] = ({}, {}, {})  # seen, parents, present
    new: tuple[dict[str, set], dict[str, int], dict[tuple[str, str], int]] = ({}, {}, {})
    flag = _NEW if split else "false"
    key_paths = ", ".join(["'$'"] + [f"'$.{p}'" for p in objects])
    columns = type_columns or {}
    parsed = [p for p in typed if p not in columns]  # typed here by one json_type: `_pt[i]`
    type_list = ", ".join(columns[p] if p in columns else f"_pt[{parsed.index(p) + 1}]" for p in typed)
    parse_paths = ", ".join(f"'$.{p}'" for p in parsed)
    parse = f", json_type(j, [{parse_paths}]) AS _pt" if parsed else ""
    parts = [f"(SELECT * FROM {rows_sql} WHERE ord BETWEEN {int(lo)} AND {int(hi)})" for lo, hi in spans] \
        if spans is not None else [rows_sql]
    rows = [r for part in parts for r in con.execute(
        f"""SELECT json_keys(j, [{key_paths}]) AS k, [{type_list}]::VARCHAR[] AS t, {flag} AS f, count(*)
            FROM (SELECT *{parse} FROM {part}) GROUP BY ALL""", params).fetchall()]
    for keys, types, is_new, n in rows:
        for seen, parents, present in (every, new) if is_new else (every,):
            parents[""] = parents.get("", 0) + n
            _tally(seen, parents, present, keys, types, n, objects, typed, "")
    for lst in lists:
        sub = [p[len(lst) + 3:] for p in fields if p.startswith(lst + "[].") and _PLAIN.match(p[len(lst) + 3:])]
        type_paths = ", ".join(f"'$.{p}'" for p in sub) or "'$'"
        # (json_extract of '[*]', not a cast to JSON[]: see drone_consultations in subjects.sql)
        rows = [r for part in parts for r in con.execute(f"""
            SELECT json_keys(x) AS k, json_type(x, [{type_paths}]) AS t, f, count(*) FROM (
                SELECT unnest(json_extract(j, '$.{lst}[*]')) AS x, {flag} AS f FROM {part}
                WHERE json_type(j, '$.{lst}') = 'ARRAY')
            WHERE json_type(x) = 'OBJECT' GROUP BY ALL""", params).fetchall()]
        for keys, types, is_new, n in rows:
            for seen, parents, present in (every, new) if is_new else (every,):
                parents[lst + "[]."] = parents.get(lst + "[].", 0) + n
                _tally(seen, parents, present, [keys], types, n, [], sub, lst + "[].")
    return (every, new) if split else every


def _tally(seen: dict, parents: dict, present: dict, keys: list, types: list, n: int, objects: list,  # noqa: PLR0913
           typed: list, prefix: str) -> None:
    """One group of ``n`` objects alike (their keys and typed paths' types) into the tallies."""
    # Each key once: an object may repeat one ({"a": 1, "a": 2}), and `present` counts objects.
    for k in dict.fromkeys(keys[0] or []):
        seen.setdefault(prefix + k, set())
        present[prefix, k] = present.get((prefix, k), 0) + n
    for obj, sub in zip(objects, keys[1:]):
        if sub is None:
            continue
        for k in dict.fromkeys(sub):  # keys only where it is an object (json_keys gives [] for others)
            seen.setdefault(f"{obj}.{k}", set())
            present[f"{obj}.", k] = present.get((f"{obj}.", k), 0) + n
    for path, ty in zip(typed, types or []):
        family = _FAMILY.get(ty or "")
        if family:
            seen.setdefault(prefix + path, set()).add(family)
            if family == _O and prefix + path + "." in {f"{o}." for o in objects}:
                parents[prefix + path + "."] = parents.get(prefix + path + ".", 0) + n
