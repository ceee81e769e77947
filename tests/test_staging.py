"""vigie.staging: every line of every file, at its exact line number, bad ones included."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from vigie import db
from vigie.staging import load_lines


def _lines(tmp_path: Path, files: dict[str, bytes]) -> list[tuple]:
    con = duckdb.connect()
    paths = []
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
        paths.append((name, tmp_path / name))
    load_lines(con, "lines", paths)
    return con.execute("SELECT file, line, text, error FROM lines ORDER BY file, line").fetchall()


def test_bad_lines_keep_their_place_and_good_lines_their_number(tmp_path: Path) -> None:
    rows = _lines(tmp_path, {
        "a.csv": b'h1,h2\n1,x\n\n2,"y,z"\n3\xff,w\n\xfe4,v\n5,u\n',
        "b.csv": b"h\n\xff\nok\n",
    })
    assert rows == [
        ("a.csv", 1, "h1,h2", None), ("a.csv", 2, "1,x", None), ("a.csv", 3, None, None),
        ("a.csv", 4, '2,"y,z"', None), ("a.csv", 5, "3?,w", "invalid UTF-8"),
        ("a.csv", 6, "?4,v", "invalid UTF-8"), ("a.csv", 7, "5,u", None),
        ("b.csv", 1, "h", None), ("b.csv", 2, "?", "invalid UTF-8"), ("b.csv", 3, "ok", None),
    ]


def test_a_control_character_is_an_error_not_a_split(tmp_path: Path) -> None:
    rows = _lines(tmp_path, {"c.jsonl": b'{"a": 1}\n{"a":\x01 2}\n{"a": 3}\n'})
    assert [(r[1], r[3]) for r in rows] == [(1, None), (2, "line holds a control character (0x01)"), (3, None)]


def test_many_lines_are_numbered_in_order(tmp_path: Path) -> None:
    body = b"".join(b"%d\n" % i for i in range(1, 50001))
    body = body.replace(b"\n25000\n", b"\n25\xff000\n")
    rows = _lines(tmp_path, {"big.csv": body})
    assert len(rows) == 50000
    assert all(r[1] == int(r[2]) for r in rows if r[3] is None)
    assert [r[1] for r in rows if r[3]] == [25000]


def _both_ways(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, bytes],
               **kwargs) -> tuple[list, list, list, list]:  # noqa: ANN003
    """The lines of ``files`` read one file at a time, then with every file that can be
    joined (`staging._join`) joined; and what `_join` returned: the files joined, those left."""
    from vigie import staging

    joins = []
    real_join = staging._join
    monkeypatch.setattr(staging, "_join", lambda *a: joins.append(real_join(*a)) or joins[-1])
    paths = []
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
        paths.append((name, tmp_path / name))
    out = []
    for join_from in (len(files) + 1, 1):
        monkeypatch.setattr(staging, "JOIN_FILES", join_from)
        monkeypatch.setattr(staging, "JOIN_FILE_BYTES", 1 << 40)
        con = duckdb.connect()
        load_lines(con, "lines", paths, **kwargs)
        out.append(con.execute("SELECT file, line, text, error FROM lines ORDER BY file, line").fetchall())
        con.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(files)  # the joined file is gone
    assert len(joins) == 1
    parts, alone = joins[0]
    return out[0], out[1], [name for name, _ in parts], [name for name, _ in alone]


@pytest.mark.parametrize("seed", range(6))
def test_many_files_read_joined_give_each_line_its_file_and_number(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  seed: int) -> None:
    """A drop folder's many small files are read as one joined file: every line keeps its
    file, its number, its text and its error, as when each file is read by itself."""
    import random

    rng = random.Random(seed)
    pieces = [b"ok,1", b"", b"\xff bad", b"x\x01y", b'{"a": "\xc3\xa9"}', b"  ", b"last"]
    long = b"z" * 40_000  # half the limit or more: that file is read by itself, beside the joined one
    if seed < 2:
        pieces.append(long)
    files = {}
    for i in range(rng.randint(1, 40)):
        lines = [rng.choice(pieces) for _ in range(rng.choice([0, 1, 2, 5, 30]))]
        body = b"\n".join(lines) + rng.choice([b"", b"\n", b"\n\n"])
        files[f"f{i:03d}-{rng.randint(0, 9)}.csv"] = body
    errors = [(name, 1, "known while landing") for name in list(files)[::7]]
    one_by_one, joined, parts, alone = _both_ways(tmp_path, monkeypatch, files, max_line_bytes=1 << 16, line_errors=errors)
    assert joined == one_by_one
    assert sorted(alone) == sorted(name for name, body in files.items() if long in body)
    assert sorted(parts) == sorted(name for name, body in files.items() if body and long not in body)
    assert {r[0] for r in one_by_one} == {name for name, body in files.items() if body}


def test_files_with_a_carriage_return_or_a_byte_order_mark_are_read_by_themselves(tmp_path: Path,
                                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """DuckDB ends a line at a CR and drops a file's leading BOM: such files (landing gives
    them a readable copy) are not joined, and read as before, beside the joined ones."""
    from vigie.staging import _join

    one_by_one, again, parts, alone = _both_ways(tmp_path, monkeypatch, {"a.csv": b"1\n2\n", "b.csv": b"\xef\xbb\xbfh\n6\n"})
    assert again == one_by_one and parts == ["a.csv"] and alone == ["b.csv"]
    assert [r[2] for r in again] == ["1", "2", "h", "6"]  # the byte-order mark dropped, as DuckDB does
    (tmp_path / "c.csv").write_bytes(b"3\r4\n5")
    parts, alone = _join([("a.csv", tmp_path / "a.csv"), ("c.csv", tmp_path / "c.csv")], tmp_path / "j", 1 << 20)
    assert parts == [("a.csv", 1)] and alone == [("c.csv", tmp_path / "c.csv")]


def test_many_empty_files_give_no_line_not_an_error(tmp_path: Path) -> None:
    """Joined, empty files leave nothing for DuckDB's reader, which refuses an empty list of
    files: a batch of many empty files failed its source."""
    from vigie import staging

    files = []
    for i in range(staging.JOIN_FILES):
        (tmp_path / f"e{i:02d}.csv").write_bytes(b"")
        files.append((f"e{i:02d}.csv", tmp_path / f"e{i:02d}.csv"))
    con = duckdb.connect()
    load_lines(con, "lines", files)
    assert con.execute("SELECT count(*) FROM lines").fetchone() == (0,)
    (tmp_path / "one.csv").write_bytes(b"1\n")
    load_lines(con, "lines", [*files, ("one.csv", tmp_path / "one.csv")])
    assert con.execute("SELECT file, line, text FROM lines").fetchall() == [("one.csv", 1, "1")]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name for name, _ in files] + ["one.csv"])


def test_csv_fields_split_in_sql_keep_empty_and_quoted_fields(tmp_path: Path) -> None:
    from vigie.sources.csv_lines import csv_staging

    con = duckdb.connect()
    db.migrate(con)
    (tmp_path / "r.csv").write_text('a,b,c\n1,,3\n",",x,"q""z"\n,,\n1,2\n')
    (tmp_path / "bad.csv").write_text("x,y,z\n1,2,3\n")
    load_lines(con, "lines", [("r.csv", tmp_path / "r.csv"), ("bad.csv", tmp_path / "bad.csv")])
    rows = con.execute(f"SELECT file, line, parse_error, a, b, c FROM ({csv_staging(['a', 'b', 'c'])}) ORDER BY file, line").fetchall()
    assert rows == [
        ("bad.csv", 2, "file header is 'x,y,z', expected 'a,b,c'", None, None, None),
        ("r.csv", 2, None, "1", None, "3"),
        ("r.csv", 3, None, ",", "x", 'q"z'),
        ("r.csv", 4, None, None, None, None),
        ("r.csv", 5, "expected 3 fields, found 2", None, None, None),
    ]


def test_a_line_longer_than_the_limit_is_an_error_line_not_a_lost_one(tmp_path: Path) -> None:
    (tmp_path / "long.jsonl").write_bytes(b'{"a": 1}\n{"a": "' + b"x" * 5000 + b'"}\n{"a": 3}\n')
    con = duckdb.connect()
    load_lines(con, "lines", [("long.jsonl", tmp_path / "long.jsonl")], max_line_bytes=4096)
    rows = con.execute("SELECT line, text, error FROM lines ORDER BY line").fetchall()
    assert [(r[0], r[2]) for r in rows] == [(1, None), (2, "line too long to read"), (3, None)]
    assert rows[0][1] == '{"a": 1}' and rows[2][1] == '{"a": 3}'


def test_line_ends_nul_and_over_long_lines_spoil_only_their_line(tmp_path: Path) -> None:
    """Issue #13: what DuckDB's reader cannot take is found while landing (text_files), and
    the line keeps its number; the next line after a line too long is read as itself."""
    import io

    from vigie.sources.text_files import copy_and_check, readable_copy, refusal

    raw = (b"\xef\xbb\xbfh\r\n" b"a\n" b"b\rstray\n" b"c\x00\r\n" + b"x" * 5000 + b"\n" b"after\n" b"end")
    landed = tmp_path / "f.raw"
    copied = copy_and_check(io.BytesIO(raw), landed, max_line_bytes=4096)
    assert landed.read_bytes() == raw and copied.needs_readable_copy and refusal(copied) is None
    errors = readable_copy(landed, tmp_path / "f.txt", 4096)
    con = duckdb.connect()
    load_lines(con, "lines", [("f.csv", tmp_path / "f.txt")], 4096, [("f.csv", n, why) for n, why in errors])
    rows = con.execute("SELECT line, text, error FROM lines ORDER BY line").fetchall()
    assert [(r[0], r[2]) for r in rows] == [
        (1, None), (2, None), (3, "carriage return (CR) inside the line"), (4, "NUL byte in the line"),
        (5, "line too long to read (5000 bytes, the limit is 4096)"), (6, None), (7, None)]
    assert [rows[i][1] for i in (0, 1, 5, 6)] == ["h", "a", "after", "end"]


def test_files_that_are_not_text_are_refused_whole(tmp_path: Path) -> None:
    import gzip
    import io

    from vigie.sources.text_files import copy_and_check, refusal

    def why(body: bytes) -> str | None:
        return refusal(copy_and_check(io.BytesIO(body), tmp_path / "x", 1 << 20))

    assert "gzip" in why(gzip.compress(b"a,b\n"))
    assert "UTF-16" in why("a,b\n".encode("utf-16"))
    assert "UTF-16" in why("read_id,read_at\n".encode("utf-16-le"))  # no byte-order mark
    assert "binary" in why(bytes(range(256)) * 4)
    assert why(b"") is None and why("é,è\n".encode("latin-1")) is None  # line by line, as sources.md says
    assert why(b"a\x00b\n" + b"ok\n" * 100) is None  # one NUL: that line only


def test_a_csv_header_that_cannot_be_read_is_quarantined_itself(tmp_path: Path) -> None:
    from vigie.sources.csv_lines import csv_staging

    con = duckdb.connect()
    db.migrate(con)
    (tmp_path / "h.csv").write_bytes(b"a,\xff\n1,2\n")
    load_lines(con, "lines", [("h.csv", tmp_path / "h.csv")])
    rows = con.execute(f"SELECT line, parse_error FROM ({csv_staging(['a', 'b'])}) ORDER BY line").fetchall()
    assert rows[0] == (1, "invalid UTF-8") and rows[1][0] == 2 and rows[1][1].startswith("file header is")


def test_staging_gives_back_the_connection_s_allocator_setting(tmp_path: Path) -> None:
    """A stream is staged with freed memory kept up to `STAGE_FLUSH`; after it, even when it
    fails, the connection frees as every connection does (the rules' evaluation runs next)."""
    from vigie.sources.lapi_files import LapiFiles
    from vigie.staging import stage

    con = duckdb.connect()
    db._configure(con)
    db.migrate(con)
    setting = "SELECT current_setting('allocator_bulk_deallocation_flush_threshold')"
    before = con.execute(setting).fetchone()[0]
    reads = next(s for s in LapiFiles.streams if s.name == "reads")
    (tmp_path / "r.csv").write_bytes(b"read_id,read_at,camera_id,plate_hash,matched,deleted_at\n"
                                     b"rd-1,2026-01-01T00:00:00Z,C1,h,1,\nrd-2,not a date,C1,h,0,\n")
    assert stage(con, reads, [("r.csv", tmp_path / "r.csv")], "st") == 2
    assert con.execute("SELECT count(reason) FROM st").fetchone()[0] == 1  # staged and checked
    assert con.execute(setting).fetchone()[0] == before
    with pytest.raises(duckdb.Error):
        stage(con, reads, [("gone.csv", tmp_path / "gone.csv")], "st2")
    assert con.execute(setting).fetchone()[0] == before


def test_only_many_small_files_are_joined(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Joining copies the bytes once more and holds a file in memory: it pays for many small
    files; a big file is read by itself, and so are a few small ones."""
    from vigie import staging

    joins = []
    real_join = staging._join
    monkeypatch.setattr(staging, "_join", lambda files, *a: joins.append([n for n, _ in files]) or real_join(files, *a))

    def lines(n_small: int, big: bool) -> list[tuple]:
        folder = tmp_path / f"{n_small}-{big}"
        folder.mkdir()
        files = []
        for i in range(n_small):
            (folder / f"s{i:02d}").write_bytes(b"%d\n" % i)
            files.append((f"s{i:02d}", folder / f"s{i:02d}"))
        if big:
            (folder / "big").write_bytes(b"b\n" * (staging.JOIN_FILE_BYTES // 2 + 1))  # over the size
            files.append(("big", folder / "big"))
        con = duckdb.connect()
        load_lines(con, "lines", files)
        return con.execute("SELECT file, count(*) FROM lines GROUP BY file ORDER BY file").fetchall()

    assert lines(staging.JOIN_FILES, big=True) == [("big", staging.JOIN_FILE_BYTES // 2 + 1)] + \
        [(f"s{i:02d}", 1) for i in range(staging.JOIN_FILES)]
    assert joins == [[f"s{i:02d}" for i in range(staging.JOIN_FILES)]]  # the big file read by itself
    assert lines(staging.JOIN_FILES - 1, big=False) == [(f"s{i:02d}", 1) for i in range(staging.JOIN_FILES - 1)]
    assert len(joins) == 1  # too few to join
