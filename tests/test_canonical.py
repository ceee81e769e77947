"""Telling a batch's rows apart from what the warehouse holds (vigie/canonical.py), at the edges
the sources do not reach through their contracts."""

from __future__ import annotations

import duckdb

from vigie import db
from vigie.canonical import merge
from vigie.sources.base import Stream

THINGS = Stream(name="things", row_kind="thing", suite="none", table="things", staging_sql="", typed_sql="k1, k2, v",
                key=("k1", "k2"), policy="immutable")


def _batch(con: duckdb.DuckDBPyConnection, rows: list[tuple]) -> None:
    con.execute("CREATE OR REPLACE TEMP TABLE staging_things (ord BIGINT, location VARCHAR, ref VARCHAR, seq BIGINT, "
                "reason VARCHAR, raw VARCHAR, k1 VARCHAR, k2 VARCHAR, v VARCHAR)")
    for i, (k1, k2, v) in enumerate(rows, start=1):
        con.execute("INSERT INTO staging_things VALUES (?, ?, ?, NULL, NULL, ?, ?, ?, ?)",
                    [i, f"f:{i}", k1, f"{k1},{k2},{v}", k1, k2, v])


def _things() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    db.migrate(con)
    con.execute("CREATE TABLE things (source VARCHAR, batch_id BIGINT, ord BIGINT, location VARCHAR, "
                "k1 VARCHAR, k2 VARCHAR, v VARCHAR)")
    return con


def test_a_key_holding_null_is_found_again_in_the_warehouse() -> None:
    """The lookup of a batch's keys matches by equality the columns the batch never leaves
    NULL (so DuckDB can prune the scan), the others as IS NOT DISTINCT FROM: delivered again, a
    row whose key holds a NULL is a duplicate, not a second load."""
    con = _things()
    _batch(con, [("a", None, "x"), ("b", "1", "y")])
    first = merge(con, THINGS, "staging_things", "src", 1)
    assert (first.loaded, first.duplicates) == (2, 0)

    _batch(con, [("a", None, "x"), ("b", "1", "y"), ("a", None, "z"), ("c", None, "w")])
    again = merge(con, THINGS, "staging_things", "src", 2)
    assert (again.received, again.loaded, again.duplicates) == (4, 1, 3)
    assert con.execute("SELECT k1, k2, v FROM things WHERE batch_id = 2").fetchall() == [("c", None, "w")]
    # (a, NULL) again with other content conflicts with the first delivery; the same content does not
    assert sorted(con.execute("SELECT ref, conflicting FROM duplicates WHERE batch_id = 2").fetchall()) == \
        [("a", False), ("a", True), ("b", False)]


def test_keys_with_a_null_in_every_column_are_all_found_again() -> None:
    """A batch that leaves each key column NULL somewhere: no column can be matched by equality."""
    con = _things()
    rows = [("a", None, "x"), (None, "1", "y"), (None, None, "z"), ("b", "2", "w")]
    _batch(con, rows)
    assert merge(con, THINGS, "staging_things", "src", 1).loaded == 4
    _batch(con, rows + [(None, "3", "v")])
    again = merge(con, THINGS, "staging_things", "src", 2)
    assert (again.loaded, again.duplicates) == (1, 4)
    assert con.execute("SELECT k1, k2 FROM things WHERE batch_id = 2").fetchall() == [(None, "3")]


def test_a_column_the_batch_fills_does_not_match_null_in_the_warehouse() -> None:
    """k2 is NULL in the warehouse's row and set in every row of the batch (so matched by
    equality): another key, loaded."""
    con = _things()
    _batch(con, [("a", None, "x")])
    merge(con, THINGS, "staging_things", "src", 1)
    _batch(con, [("a", "1", "x")])
    again = merge(con, THINGS, "staging_things", "src", 2)
    assert (again.loaded, again.duplicates) == (1, 0)
    _batch(con, [("a", "1", "x"), ("a", None, "x")])
    third = merge(con, THINGS, "staging_things", "src", 3)
    assert (third.loaded, third.duplicates) == (0, 2)


def test_keys_delivered_several_times_in_one_batch_are_ranked_by_delivery() -> None:
    """Only the keys a batch delivers more than once go through the ranking (the others are
    their own first delivery): with NULLs in keys, unique keys between them, and both policies,
    the first delivery (immutable) or the last (latest) is kept, each other one a duplicate of
    it, conflicting when its content differs."""
    rows = [("a", None, "x"), ("b", "1", "y"), ("a", None, "z"), ("a", None, "x"), ("c", "2", "w"),
            ("b", "1", "y"), (None, None, "q"), (None, None, "r"), ("d", None, "u")]
    for policy, loaded, dups in [
        ("immutable", [(1, "x"), (2, "y"), (5, "w"), (7, "q"), (9, "u")],
         [("f:3", "f:1", True), ("f:4", "f:1", False), ("f:6", "f:2", False), ("f:8", "f:7", True)]),
        ("latest", [(4, "x"), (5, "w"), (6, "y"), (8, "r"), (9, "u")],
         [("f:1", "f:4", False), ("f:2", "f:6", False), ("f:3", "f:4", True), ("f:7", "f:8", True)]),
    ]:
        con = _things()
        _batch(con, rows)
        stream = Stream(**{**THINGS.__dict__, "policy": policy})
        counts = merge(con, stream, "staging_things", "src", 1)
        assert (counts.received, counts.loaded, counts.duplicates) == (9, 5, 4), policy
        assert con.execute("SELECT ord, v FROM things ORDER BY ord").fetchall() == loaded, policy
        assert con.execute("SELECT location, first_location, conflicting FROM duplicates "
                           "ORDER BY location").fetchall() == dups, policy


def test_afirst_delivery_loads_as_the_classification_would(monkeypatch) -> None:  # noqa: ANN001
    """A source's first batch into a table classifies only the rows whose key it repeats and
    loads the others as they came (`first_delivery`): on random batches (NULL keys, repeats
    or none, both policies, another source's rows already there, bad rows beside), the same
    rows, duplicates and counts as when every row goes through the classification. A source
    already in the table is classified whole, even when its keys are all new."""
    import random

    from vigie import canonical

    rng = random.Random(20261205)
    for trial in range(80):
        policy = rng.choice(["immutable", "latest"])
        stream = Stream(**{**THINGS.__dict__, "policy": policy})
        n = rng.choice([0, 1, 3, 12, 30])
        pool = [rng.choice(["a", "b", "c", None]) for _ in range(rng.choice([1, 3, 8]))] if rng.random() < 0.6 else None
        rows = [((rng.choice(pool) if pool else f"k{i}"), rng.choice([None, "1"]), rng.choice(["x", "y"]))
                for i in range(n)]
        other = rng.random() < 0.3  # another source's rows are in the table already
        bad = rng.random() < 0.3  # a row breaking the contract, delivered twice
        outcomes = []
        for first in (True, False):
            con = _things()
            if other:
                con.execute("INSERT INTO things VALUES ('elsewhere', 0, 1, 'g:1', 'a', NULL, 'x')")
            _batch(con, rows)
            if bad:
                for o in (100, 101):
                    con.execute("INSERT INTO staging_things VALUES (?, 'f:bad', NULL, NULL, 'broken', 'raw', NULL, NULL, NULL)", [o])
            if not first:
                monkeypatch.setattr(canonical, "first_delivery", lambda *a: False)
            counts = merge(con, stream, "staging_things", "src", 1)
            monkeypatch.undo()
            outcomes.append((counts, con.execute("SELECT * FROM things ORDER BY source, ord").fetchall(),
                             con.execute("SELECT * FROM duplicates ORDER BY location, first_location").fetchall(),
                             con.execute("SELECT source, kind, location, reason FROM quarantine").fetchall()))
            assert not con.execute("SELECT 1 FROM duckdb_tables() WHERE temporary AND table_name LIKE '\\_%' ESCAPE '\\'").fetchall()
        assert outcomes[0] == outcomes[1], (trial, policy, rows)
        c = outcomes[0][0]
        assert c.received == c.loaded + c.duplicates + c.quarantined == n + 2 * bad

    calls = []
    real = canonical.first_delivery
    monkeypatch.setattr(canonical, "first_delivery", lambda *a: calls.append(real(*a)) or calls[-1])
    con = _things()
    _batch(con, [("a", "1", "x")])
    merge(con, THINGS, "staging_things", "src", 1)
    _batch(con, [("b", "1", "x")])
    assert merge(con, THINGS, "staging_things", "src", 2).loaded == 1
    assert calls == [True, False]


def test_the_rows_found_once_for_drift_and_merge_classify_as_a_lookup_of_their_own() -> None:
    """`PriorRows`: the warehouse's rows of a batch's keys, found once in the batch's
    transaction and read by the merge, give the same rows, duplicates and counts as the
    merge's own lookup, batch after batch (repeats in a batch and across them, conflicting
    content, NULL keys, another source's rows, both policies); a stream whose key is typed
    from text (a number) has none and looks up on its own."""
    import random

    from vigie.canonical import PriorRows

    rng = random.Random(20261206)
    used = 0
    for trial in range(40):
        stream = Stream(**{**THINGS.__dict__, "policy": rng.choice(["immutable", "latest"])})
        batches = [[(rng.choice(["a", "b", "c", "d", None]), rng.choice(["1", "2", None]) if rng.random() < 0.3 else "1",
                     rng.choice(["x", "y"])) for _ in range(rng.choice([1, 4, 10]))] for _ in range(3)]
        outcomes = []
        for shared in (False, True):
            con = _things()
            con.execute("INSERT INTO things VALUES ('elsewhere', 0, 1, 'g:1', 'a', '1', 'z')")
            seen = []
            for b, rows in enumerate(batches, start=1):
                _batch(con, rows)
                prior = PriorRows(con, "src") if shared else None
                con.execute("BEGIN")
                counts = merge(con, stream, "staging_things", "src", b, prior)
                con.execute("COMMIT")
                if prior is not None:
                    used += bool(prior.tables.get("things"))
                    prior.drop()
                seen.append((counts, con.execute("SELECT * FROM things ORDER BY source, batch_id, ord").fetchall(),
                             con.execute("SELECT * FROM duplicates ORDER BY batch_id, location").fetchall()))
            outcomes.append(seen)
        assert outcomes[0] == outcomes[1], (trial, stream.policy, batches)
    assert used >= 20  # batches without a NULL key after the first share the rows found

    typed = Stream(**{**THINGS.__dict__, "typed_sql": "k1, k2::BIGINT AS k2, v"})
    con = _things()
    con.execute("ALTER TABLE things ALTER k2 TYPE BIGINT")
    _batch(con, [("a", "1", "x")])
    assert PriorRows(con, "src").lookup(typed, "staging_things") is None
