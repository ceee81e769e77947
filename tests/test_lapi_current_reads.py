"""Migration 017 picks a LAPI read's current version as migration 007 did, sorting only the
reads delivered more than once: both macros over random deliveries, at several known-at."""

from __future__ import annotations

import random
import re
from datetime import datetime, timedelta, timezone

import duckdb
import pytest

from vigie import db

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _macro_of(migration: str) -> str:
    text = (db.MIGRATIONS_DIR / migration).read_text()
    body = re.search(r"CREATE OR REPLACE MACRO lapi_reads_at\(known_at\) AS TABLE.*?;", text, re.S).group(0)
    return body.replace("MACRO lapi_reads_at(", "MACRO lapi_reads_before_017(")


def _estate(con: duckdb.DuckDBPyConnection, rng: random.Random) -> None:
    """Batches (one failed), reads delivered once, corrected, delivered again unchanged in a later
    file (a duplicate that undoes a correction), duplicates of rows not known yet, conflicting
    ones, two sources with the same read ids, duplicates that name no delivery of their read
    (another read's line, another kind, no first location). Each loaded row has its own
    ``ord``, as loads give them: two deliveries then tie only when they are the same row (a
    line delivered twice again)."""
    n_batches = rng.randint(2, 5)
    for b in range(1, n_batches + 1):
        status = "failed" if rng.random() < 0.15 else "loaded"
        con.execute("INSERT INTO batches (batch_id, source, kind, started_at, committed_at, status) "
                    "VALUES (?, 'lapi', 'lapi_files', ?, ?, ?)", [b, T0, T0 + timedelta(hours=b), status])
    rows, dups = [], []
    ord_ = 0
    for i in range(rng.randint(1, 40)):
        read_id = f"rd-{i}"
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            b = rng.randint(1, n_batches)
            file = f"reads_{rng.randint(1, 4)}.csv"
            line = rng.randint(2, 4)
            ord_ += 1
            location = f"{file}:{line}" if rng.random() > 0.05 else file  # a location without a line
            source = rng.choice(["lapi", "lapi", "lapi-b"])
            rows.append([source, read_id, T0 + timedelta(minutes=i), "CAM-1", f"h{rng.randint(0, 2)}",
                         rng.random() < 0.5, None, file, b, location, ord_])
            if rng.random() < 0.4:  # delivered again, in this or a later batch
                again = rng.randint(b, n_batches) if rng.random() < 0.8 else rng.randint(1, n_batches)
                dups.append([source, again, "read", read_id,
                             f"reads_{rng.randint(1, 5)}.csv:{rng.randint(2, 4)}" if rng.random() > 0.1 else location,
                             location, rng.random() < 0.15])
    # Duplicates that are no delivery of their read: a first row never loaded, another read's
    # line, another kind, no first location, another source's line.
    dups.append(["lapi", 1, "read", "rd-none", "reads_9.csv:2", "reads_1.csv:7", False])
    for _ in range(rng.randint(0, 6)) if rows else ():
        source, read_id, *_, b, location, _ord = rng.choice(rows)
        other = rng.choice(rows)[1]
        dups.append(rng.choice([
            [source, rng.randint(b, n_batches), "read", other, "reads_8.csv:3", location, False],
            [source, rng.randint(b, n_batches), "query", read_id, "queries_1.csv:2", location, False],
            [source, rng.randint(b, n_batches), "read", read_id, "reads_8.csv:4", None, False],
            ["lapi-b" if source == "lapi" else "lapi", rng.randint(b, n_batches), "read", read_id,
             "reads_8.csv:5", location, False],
        ]))
    if rows:
        con.executemany("INSERT INTO main.lapi_reads VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    con.executemany("INSERT INTO main.duplicates VALUES (?, ?, ?, ?, ?, ?, ?)", dups)


@pytest.mark.parametrize("seed", range(40))
def test_current_reads_as_before(seed: int) -> None:
    con = duckdb.connect()
    db.migrate(con)
    con.execute(_macro_of("007_rule_edges.sql"))
    _estate(con, random.Random(seed))
    (n_batches,) = con.execute("SELECT count(*) FROM batches").fetchone()
    for hours in [*range(0, n_batches + 1), 10_000]:
        known_at = T0 + timedelta(hours=hours, minutes=30)
        new = con.execute("SELECT * FROM lapi_reads_at(?::TIMESTAMPTZ) ORDER BY ALL", [known_at]).fetchall()
        old = con.execute("SELECT * FROM lapi_reads_before_017(?::TIMESTAMPTZ) ORDER BY ALL", [known_at]).fetchall()
        assert new == old, (seed, hours)
        assert len(new) == len({(r[0], r[1]) for r in new}), (seed, hours)  # one version per read and source
