"""Each connector on its own: what it lands, the cursor it returns, how it fails."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
import os
import sqlite3
import time
from pathlib import Path

import pytest

from tests.conftest import SAMPLES
from vigie.config import BodycamApiSource, DroneFilesSource, LapiFilesSource, VmsSqlSource
from vigie.simulate.bodycam_server import BodycamServer
from vigie.sources import SourceError
from vigie.sources.bodycam_api import BodycamApi
from vigie.sources.drone_files import DroneFiles
from vigie.sources.lapi_files import LapiFiles
from vigie.sources.vms_sql import VmsSql

TOKEN = "t0ken"


def _events(path: Path, seqs: range) -> Path:
    with open(path, "a") as f:
        for s in seqs:
            f.write(json.dumps({"seq": s, "id": f"e-{s}", "at": "2026-03-01T10:00:00+01:00"}) + "\n")
    return path


def _bodycam(url: str, **over) -> BodycamApi:
    src = BodycamApiSource(name="bodycams", kind="bodycam_api", base_url=url, token_env="VIGIE_TEST_TOKEN",
                           **({"page_size": 50, "max_retries": 3, "max_backoff_s": 2} | over))
    return BodycamApi(src, settings=None)


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIE_TEST_TOKEN", TOKEN)


def _landed_events(pull) -> list[int]:
    seqs = []
    for line in pull.files[0].path.read_text().splitlines():
        seqs += [e["seq"] for e in json.loads(line)["events"]]
    return seqs


def test_bodycam_pages_through_and_resumes_from_the_last_cursor(tmp_path: Path) -> None:
    events = _events(tmp_path / "events.jsonl", range(1, 121))
    with BodycamServer(events, token=TOKEN) as server:
        connector = _bodycam(server.url)
        first = connector.pull(None, tmp_path / "b1")
        assert _landed_events(first) == list(range(1, 121))
        assert len(first.files[0].path.read_text().splitlines()) == 3  # pages of 50
        # The last page said next=null: the cursor stays on it, so it is served again.
        _events(events, range(121, 131))
        second = connector.pull(first.cursor, tmp_path / "b2")
        assert _landed_events(second) == list(range(101, 131))
        assert len(first.files[0].sha256) == 64 and first.files[0].bytes == first.files[0].path.stat().st_size


def test_bodycam_last_page_served_again_unchanged_is_not_landed_again(tmp_path: Path) -> None:
    """The cursor stays on the last page: served again as it was (nothing new), it lands
    nothing, and the cursor keeps still; once events are added, it lands again with them."""
    events = _events(tmp_path / "events.jsonl", range(1, 121))
    with BodycamServer(events, token=TOKEN) as server:
        connector = _bodycam(server.url)
        first = connector.pull(None, tmp_path / "b1")
        last_page = first.files[0].path.read_bytes().splitlines(keepends=True)[-1]
        assert first.cursor["page_sha256"] == hashlib.sha256(last_page).hexdigest()
        again = connector.pull(first.cursor, tmp_path / "b2")
        assert [(f.bytes, f.path.read_bytes()) for f in again.files] == [(0, b"")]
        assert again.cursor == first.cursor
        _events(events, range(121, 126))
        third = connector.pull(again.cursor, tmp_path / "b3")
        assert _landed_events(third) == list(range(101, 126))
        assert third.cursor["page_sha256"] != first.cursor["page_sha256"]
        # A cursor from before the page's digest: the page lands again, once.
        fourth = connector.pull({"after": third.cursor["after"]}, tmp_path / "b4")
        assert _landed_events(fourth) == list(range(101, 126))
        assert connector.pull(fourth.cursor, tmp_path / "b5").files[0].bytes == 0
    # One page in all: every pull asks for it from the beginning (no cursor yet), the same.
    few = _events(tmp_path / "few.jsonl", range(1, 11))
    with BodycamServer(few, token=TOKEN) as server:
        connector = _bodycam(server.url)
        first = connector.pull(None, tmp_path / "f1")
        assert first.cursor["after"] is None and _landed_events(first) == list(range(1, 11))
        assert connector.pull(first.cursor, tmp_path / "f2").files[0].bytes == 0


def test_bodycam_honours_retry_after_and_retries_5xx(tmp_path: Path) -> None:
    events = _events(tmp_path / "events.jsonl", range(1, 11))
    with BodycamServer(events, token=TOKEN, fail_429=1, retry_after_s=1, fail_5xx=2) as server:
        started = time.monotonic()
        pull = _bodycam(server.url).pull(None, tmp_path / "b")
        assert time.monotonic() - started >= 1.0  # waited as Retry-After said
        assert _landed_events(pull) == list(range(1, 11))
        assert [status for _, status in server.requests] == [429, 503, 503, 200]


def test_bodycam_gives_up_after_bounded_retries(tmp_path: Path) -> None:
    events = _events(tmp_path / "events.jsonl", range(1, 3))
    with BodycamServer(events, token=TOKEN, fail_5xx=10) as server:
        with pytest.raises(SourceError, match="HTTP 503 after 3 attempts"):
            _bodycam(server.url, max_retries=2, max_backoff_s=0.1).pull(None, tmp_path / "b")
        assert len(server.requests) == 3


def test_bodycam_wrong_token_is_a_clear_error_not_a_retry_loop(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("VIGIE_TEST_TOKEN", "wrong")
    with BodycamServer(_events(tmp_path / "e.jsonl", range(1, 3)), token=TOKEN) as server:
        with pytest.raises(SourceError, match="401 Unauthorized"):
            _bodycam(server.url).pull(None, tmp_path / "b")
        assert len(server.requests) == 1


def test_bodycam_unreachable_and_missing_token(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(SourceError, match="unreachable"):
        _bodycam("http://127.0.0.1:9", max_retries=1, max_backoff_s=0.05).pull(None, tmp_path / "b")
    monkeypatch.delenv("VIGIE_TEST_TOKEN")
    with pytest.raises(SourceError, match="VIGIE_TEST_TOKEN"):
        _bodycam("http://127.0.0.1:9").pull(None, tmp_path / "b")


def test_folder_sources_land_each_new_file_once(tmp_path: Path) -> None:
    folder = tmp_path / "lapi"
    folder.mkdir()
    (folder / "reads_2026-01-02.csv").write_text("read_id,read_at,camera_id,plate_hash,matched,deleted_at\n")
    (folder / "queries_2026-01-02.csv").write_text("event_id,at,user,read_id,purpose,procedure_ref\n")
    (folder / "notes.txt").write_text("not ours")
    connector = LapiFiles(LapiFilesSource(name="lapi", kind="lapi_files", path=folder, settle_seconds=0), settings=None)
    first = connector.pull(None, tmp_path / "b1")
    assert sorted((f.stream, f.name) for f in first.files) == [("queries", "queries_2026-01-02.csv"), ("reads", "reads_2026-01-02.csv")]
    assert connector.pull(first.cursor, tmp_path / "b2").files == []
    # A file arriving later, even one whose name sorts first, is landed; a touched one is not.
    (folder / "reads_2026-01-01.csv").write_text("read_id,read_at,camera_id,plate_hash,matched,deleted_at\nr1,,,,,\n")
    (folder / "reads_copy.csv").write_text("read_id,read_at,camera_id,plate_hash,matched,deleted_at\n")
    os.utime(folder / "reads_2026-01-02.csv", ns=(1, 1))
    third = connector.pull(first.cursor, tmp_path / "b3")
    # LAPI reads: a copy is still read (a later file is a delivery, domain.md); its rows are duplicates.
    assert [f.name for f in third.files] == ["reads_2026-01-01.csv", "reads_copy.csv"]
    assert third.duplicates == []
    # Elsewhere the same bytes under another name are one duplicate of the first.
    (folder / "queries_copy.csv").write_text("event_id,at,user,read_id,purpose,procedure_ref\n")
    fourth = connector.pull(third.cursor, tmp_path / "b4")
    assert fourth.files == []
    assert [(d.name, d.first_name) for d in fourth.duplicates] == [("queries_copy.csv", "queries_2026-01-02.csv")]


def test_a_listing_leaves_out_only_the_files_known_with_their_size_and_mtime(tmp_path: Path) -> None:
    """LocalDrops.list(sub, known): a file landed and untouched is not listed again; one whose
    size or mtime moved is, and so is what is not a regular file, known or not."""
    import os

    from vigie.sources.drops import LocalDrops

    folder = tmp_path / "drops" / "tracks"
    folder.mkdir(parents=True)
    for name in ("same.csv", "touched.csv", "grown.csv", "new.csv"):
        (folder / name).write_text("t,lat,lon,alt_m\n")
    (folder / "sub").mkdir()
    os.symlink(folder / "same.csv", folder / "link.csv")
    store = LocalDrops(tmp_path / "drops")
    known = {e.name: {"size": e.size, "mtime_ns": e.mtime_ns, "sha256": "x"} for e in store.list("tracks")}
    (folder / "grown.csv").write_text("t,lat,lon,alt_m\n1,2,3,4\n")
    os.utime(folder / "grown.csv", ns=(0, known["tracks/grown.csv"]["mtime_ns"]))  # the same mtime, not the same size
    os.utime(folder / "touched.csv", ns=(0, known["tracks/touched.csv"]["mtime_ns"] + 1))
    del known["tracks/new.csv"]
    listed = {e.name: e.kind for e in store.list("tracks", known)}
    assert listed == {"tracks/touched.csv": "file", "tracks/grown.csv": "file", "tracks/new.csv": "file",
                      "tracks/sub": "folder", "tracks/link.csv": "link"}
    assert len(store.list("tracks")) == 6  # without `known`, everything


def test_a_folder_left_whole_is_recognised_by_its_listing(tmp_path: Path) -> None:
    """A pull that leaves every file of a folder known keeps one digest of its listing; the next
    pull that finds the very same listing does nothing, without reading the known files. Any
    change to the listing (a file edited in place) compares them again, file by file; an entry
    refused by every pull (a link) keeps no digest."""
    from vigie.config import LapiFilesSource
    from vigie.sources.base import LISTED
    from vigie.sources.lapi_files import LapiFiles

    folder = tmp_path / "lapi"
    folder.mkdir()
    reads = folder / "reads_2026-01-01.csv"
    reads.write_text("read_id,read_at,camera_id,plate_hash,matched,deleted_at\n"
                     "r1,2026-01-01T10:00:00+01:00,LAPI-1,00ab,0,\n")
    settled = time.time_ns() - 60 * 10**9
    os.utime(reads, ns=(settled, settled))
    connector = LapiFiles(LapiFilesSource(name="lapi", kind="lapi_files", path=str(folder)), settings=None)

    def unread() -> dict:
        raise AssertionError("the known files were read")

    first = connector.pull(None, tmp_path / "b1")
    assert [f.name for f in first.files] == [reads.name] and len(first.cursor[LISTED]) == 64
    again = connector.pull({LISTED: first.cursor[LISTED], "files": unread}, tmp_path / "b2")
    assert (again.files, again.seen, again.cursor) == ([], {}, {"files": {}, LISTED: first.cursor[LISTED]})
    with open(reads, "a") as f:  # edited in place: the same name, more bytes, a later mtime
        f.write("r2,2026-01-01T11:00:00+01:00,LAPI-1,00cd,0,\n")
    os.utime(reads, ns=(settled + 10**9, settled + 10**9))
    known = dict(first.cursor["files"])
    third = connector.pull({LISTED: first.cursor[LISTED], "files": lambda: known}, tmp_path / "b3")
    assert [f.name for f in third.files] == [reads.name]  # landed again, as a new delivery
    assert third.cursor[LISTED] not in (None, first.cursor[LISTED])
    (folder / "reads_link.csv").symlink_to(reads)
    fourth = connector.pull({LISTED: third.cursor[LISTED], "files": dict(third.cursor["files"])}, tmp_path / "b4")
    assert [u.name for u in fourth.unreadable] == ["reads_link.csv"] and LISTED not in fourth.cursor
    fifth = connector.pull({"files": dict(fourth.cursor["files"])}, tmp_path / "b5")
    assert [u.name for u in fifth.unreadable] == ["reads_link.csv"]  # refused again, as before


def test_a_file_removed_between_listing_and_reading_is_not_received(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Listed, then deleted before it is opened: nothing was received, so nothing is
    quarantined; the other files land, and the file, back under that name, is read then."""
    folder = tmp_path / "lapi"
    folder.mkdir()
    header = "read_id,read_at,camera_id,plate_hash,matched,deleted_at\n"
    (folder / "reads_2026-01-01.csv").write_text(header + "r1,,,,,\n")
    (folder / "reads_2026-01-02.csv").write_text(header + "r2,,,,,\n")
    connector = LapiFiles(LapiFilesSource(name="lapi", kind="lapi_files", path=folder, settle_seconds=0), settings=None)
    listing = type(connector)._listing

    def listed_then_removed(self, store, seen):  # noqa: ANN001, ANN202
        found = listing(self, store, seen)
        (folder / "reads_2026-01-02.csv").unlink(missing_ok=True)
        return found

    monkeypatch.setattr(type(connector), "_listing", listed_then_removed)
    pull = connector.pull(None, tmp_path / "b1")
    assert [f.name for f in pull.files] == ["reads_2026-01-01.csv"]
    assert pull.unreadable == [] and pull.duplicates == []
    monkeypatch.undo()
    (folder / "reads_2026-01-02.csv").write_text(header + "r2,,,,,\n")
    again = connector.pull(pull.cursor, tmp_path / "b2")
    assert [f.name for f in again.files] == ["reads_2026-01-02.csv"]


def test_unreadable_file_is_reported_whole(tmp_path: Path) -> None:
    folder = tmp_path / "drones"
    (folder / "flights").mkdir(parents=True)
    (folder / "flights" / "2026-01.jsonl").write_text("{}\n")
    (folder / "flights" / "2026-02.jsonl").symlink_to(folder / "gone.jsonl")  # a link: never followed
    connector = DroneFiles(DroneFilesSource(name="d", kind="drone_files", path=folder, settle_seconds=0), settings=None)
    pull = connector.pull(None, tmp_path / "b")
    assert [f.name for f in pull.files] == ["flights/2026-01.jsonl"]
    assert [u.name for u in pull.unreadable] == ["flights/2026-02.jsonl"]
    assert pull.unreadable[0].reason.startswith("a symbolic link: not followed")


def test_many_small_files_are_joined_as_they_land_and_staged_as_each_read_alone(tmp_path: Path,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder's many small files: the pull writes their lines to one file as it lands them
    (`Pull.joined`), and staging reads that file once, every line keeping its file, number,
    text and error as when each file is read by itself. What the line reader reads otherwise
    (a CR, a byte-order mark, a NUL: a readable copy) and a big file are read by themselves.
    The joined file is no landed file, and is gone once staged. The drift check's headers come
    from the first lines landing read, the same as read from the files."""
    import dataclasses

    import duckdb

    from vigie import db, drift, pipeline, staging

    tracks = tmp_path / "drones" / "tracks"
    tracks.mkdir(parents=True)
    header, point = b"t,lat,lon,alt_m\n", b"2026-01-14T18:20:00+01:00,45.75,4.85,80\n"
    # (each file's bytes its own: the same bytes under another name are a duplicate, not landed)
    bodies = {f"fl-{i:03d}.csv": header + point * (i % 4) + b"#%d\n" % i for i in range(staging.JOIN_FILES + 3)}
    alone = {  # read by themselves
        "fl-crlf.csv": (header + point).replace(b"\n", b"\r\n"),
        "fl-bom.csv": b"\xef\xbb\xbf" + header + point,
        "fl-nul.csv": header + point.replace(b"45", b"4\x005"),
        "fl-big.csv": header + point * (staging.JOIN_FILE_BYTES // len(point) + 1),
    }
    bodies |= alone | {
        "fl-empty.csv": b"",
        "fl-latin1.csv": header + point.replace(b"80", b"\xe980"),
        "fl-no-lf.csv": header + point + point.rstrip(b"\n"),
        "fl-other-header.csv": b"t,lat,lon\n" + point,
        "fl-long-header.csv": b"t," + b"x" * 600 + b"\n" + point,
        "fl-bad-line.csv": header + b"not a point\n" + point,
    }
    for name, body in bodies.items():
        (tracks / name).write_bytes(body)
    connector = DroneFiles(DroneFilesSource(name="d", kind="drone_files", path=tmp_path / "drones", settle_seconds=0),
                           settings=None)
    pull = connector.pull(None, tmp_path / "b")
    joined = pull.joined["tracks"]
    name_of = {str(f.readable): f.name.removeprefix("tracks/") for f in pull.files}
    assert sorted(name_of[p] for p in joined.taken) == sorted(set(bodies) - set(alone))
    assert {name for name, _ in joined.parts} == {f"tracks/{n}" for n, body in bodies.items() if body and n not in alone}
    assert joined.path.exists() and joined.path not in [f.path for f in pull.files]

    def staged(*, as_landed: bool) -> list[tuple]:
        con = duckdb.connect()
        db.migrate(con)
        if as_landed:
            (stream, table, n), = pipeline._stage(con, connector, pull, for_gx=False)
        else:
            with monkeypatch.context() as m:
                m.setattr(staging, "JOIN_FILES", 1 << 30)  # every file read by itself
                table = "one_by_one"
                n = staging.stage(con, connector.streams[1], [(f.name, f.readable) for f in pull.files], table,
                                  line_errors=[(f.name, k, why) for f in pull.files for k, why in f.line_errors])
        rows = con.execute(f"SELECT * FROM {table} ORDER BY ord").fetchall()
        assert len(rows) == n
        return rows

    rows = staged(as_landed=True)
    assert not joined.path.exists()  # staged, then removed
    assert rows == staged(as_landed=False)
    assert {r[1] for r in rows} == {f"tracks/{n}" for n, body in bodies.items() if body.count(b"\n") > 1 or n == "fl-no-lf.csv"}
    assert sorted(p.name for p in (tmp_path / "b" / "tracks").iterdir()) == sorted(
        {f.path.name for f in pull.files} | {f.readable.name for f in pull.files})  # the landed files, and no other

    landed = {f.name: f for f in pull.files}
    assert landed["tracks/fl-001.csv"].first_line == header and landed["tracks/fl-long-header.csv"].first_line is None
    assert drift._headers(pull.files) == drift._headers([dataclasses.replace(f, first_line=None) for f in pull.files])
    assert set(drift._headers(pull.files)) >= {("t", "lat", "lon", "alt_m"), ("t", "lat", "lon"), ("t", "x" * 600)}


def _vms(tmp_path: Path) -> tuple[Path, VmsSql]:
    db_path = tmp_path / "vms.sqlite"
    db_path.write_bytes((SAMPLES / "vms.sqlite").read_bytes())
    return db_path, VmsSql(VmsSqlSource(name="vms", kind="vms_sql", url=f"sqlite:///{db_path}"), settings=None)


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_vms_pulls_incrementally(tmp_path: Path) -> None:
    db_path, connector = _vms(tmp_path)
    first = connector.pull(None, tmp_path / "b1")
    files = {f.stream: f for f in first.files}
    with sqlite3.connect(db_path) as con:
        n_log, max_log = con.execute("SELECT count(*), max(log_id) FROM audit_log").fetchone()
        n_rec = con.execute("SELECT count(*) FROM recordings").fetchone()[0]
        n_cam = con.execute("SELECT count(*) FROM cameras").fetchone()[0]
    assert len(_jsonl(files["audit_log"].path)) == n_log
    assert len(_jsonl(files["recordings"].path)) == n_rec
    assert first.cursor["audit_log_id"] == max_log

    with sqlite3.connect(db_path) as con:
        con.execute("INSERT INTO audit_log (log_id, logged_at, action) VALUES (?, '2026-04-20T10:00:00', 'LOGIN')", [max_log + 1])
        con.execute("UPDATE recordings SET deleted_at = '2026-04-20T09:00:00', updated_at = '2026-04-20T09:00:01' "
                    "WHERE recording_id = (SELECT min(recording_id) FROM recordings)")
    second = connector.pull(first.cursor, tmp_path / "b2")
    files = {f.stream: f for f in second.files}
    assert [int(r["log_id"]) for r in _jsonl(files["audit_log"].path)] == [max_log + 1]
    changed = _jsonl(files["recordings"].path)
    assert "2026-04-20T09:00:00" in [r["deleted_at"] for r in changed]
    assert len(changed) < n_rec  # only rows within the lookback of the watermark
    assert files["cameras"].bytes == 0  # read in full, the same as landed before: not landed again
    assert not list(tmp_path.glob("*.spill"))  # DuckDB's spill folder goes with the pull

    with sqlite3.connect(db_path) as con:
        con.execute("UPDATE cameras SET site = 'moved' WHERE camera_id = (SELECT min(camera_id) FROM cameras)")
    third = connector.pull(second.cursor, tmp_path / "b3")
    assert len(_jsonl({f.stream: f for f in third.files}["cameras"].path)) == n_cam  # one changed: all, in full


def test_vms_cameras_read_again_unchanged_are_not_landed_again(tmp_path: Path) -> None:
    """Cameras come in full on every pull: when their bytes are those landed last, none lands
    (an hourly run recorded every camera as a duplicate each time), and the cursor keeps
    still. Any change lands them all; so does a pull after one that failed (its cursor did
    not move)."""
    db_path, connector = _vms(tmp_path)
    first = connector.pull(None, tmp_path / "b1")
    cams = {f.stream: f for f in first.files}["cameras"]
    assert cams.bytes > 0 and first.cursor["cameras_sha256"] == cams.sha256
    again = connector.pull(first.cursor, tmp_path / "b2")
    landed = {f.stream: f for f in again.files}["cameras"]
    assert (landed.bytes, landed.path.read_bytes(), landed.sha256) == (0, b"", hashlib.sha256(b"").hexdigest())
    assert again.cursor == first.cursor
    with sqlite3.connect(db_path) as con:
        con.execute("INSERT INTO cameras (camera_id, site, lat, lon) VALUES ('C-NEW', 'new', 45.0, 4.0)")
    third = connector.pull(again.cursor, tmp_path / "b3")
    landed = {f.stream: f for f in third.files}["cameras"]
    assert "C-NEW" in [r["camera_id"] for r in _jsonl(landed.path)] and len(_jsonl(landed.path)) > 1
    assert third.cursor["cameras_sha256"] == landed.sha256 != first.cursor["cameras_sha256"]
    # Without the digest (a cursor from before it), they land in full, once.
    fourth = connector.pull({k: v for k, v in third.cursor.items() if k != "cameras_sha256"}, tmp_path / "b4")
    assert {f.stream: f for f in fourth.files}["cameras"].sha256 == landed.sha256


def test_vms_cameras_with_a_repeated_or_missing_id_land_on_every_pull(tmp_path: Path) -> None:
    """Cameras without a key in the source: two rows under one id, or a row without one, land
    on every pull, as such recordings do (what the warehouse made of them is not assumed)."""
    connector = _plain_vms(tmp_path / "rep.sqlite")
    with sqlite3.connect(tmp_path / "rep.sqlite") as con:
        con.execute("DROP TABLE cameras")
        con.execute("CREATE TABLE cameras (camera_id TEXT, site TEXT, authorisation_ref TEXT, lat REAL, lon REAL)")
        con.executemany("INSERT INTO cameras (camera_id, site) VALUES (?, ?)", [("C-1", "a"), ("C-1", "b"), ("C-2", "c")])
    cursor, landed = None, []
    for i in range(3):
        pull = connector.pull(cursor, tmp_path / f"b{i}")
        landed.append(len(_jsonl({f.stream: f for f in pull.files}["cameras"].path)))
        cursor = pull.cursor
    assert landed == [3, 3, 3] and cursor["cameras_sha256"] is None
    with sqlite3.connect(tmp_path / "rep.sqlite") as con:
        con.execute("UPDATE cameras SET camera_id = NULL WHERE site = 'b'")
    assert [len(_jsonl({f.stream: f for f in connector.pull(cursor, tmp_path / f"n{i}").files}["cameras"].path))
            for i in range(2)] == [3, 3]




def test_vms_recordings_within_the_lookback_land_again_only_when_they_changed(tmp_path: Path) -> None:
    """The lookback (a day) brings recordings back on every pull: those landed before with the
    very same content are not landed again, so an hourly run does not record a day of
    recordings as duplicates each time. A change lands the row, its updated_at moved or not."""
    db_path, connector = _vms(tmp_path)
    first = connector.pull(None, tmp_path / "b1")
    window = first.cursor["recordings_seen"]
    with sqlite3.connect(db_path) as con:
        in_window = con.execute("SELECT count(*) FROM recordings WHERE replace(replace(updated_at, ' ', 'T'), 'Z', '') "
                                ">= ?", [(datetime.fromisoformat(first.cursor["recordings_updated_at"]) - timedelta(days=1))
                                         .strftime("%Y-%m-%dT%H:%M:%S")]).fetchone()[0]
    assert 0 < len(window) == in_window  # what the next pull's window holds, and no more

    again = connector.pull(first.cursor, tmp_path / "b2")
    assert {f.stream: f for f in again.files}["recordings"].bytes == 0  # nothing changed: nothing landed
    assert again.cursor == first.cursor  # so the cursor is not rewritten

    rid = next(iter(window))
    with sqlite3.connect(db_path) as con:  # changed in place, updated_at left as it was (a careless VMS)
        con.execute("UPDATE recordings SET hold_ref = 'PV-1' WHERE recording_id = ?", [rid])
    third = connector.pull(again.cursor, tmp_path / "b3")
    assert [r["recording_id"] for r in _jsonl({f.stream: f for f in third.files}["recordings"].path)] == [rid]
    assert third.cursor["recordings_seen"][rid] != window[rid]



def _plain_vms(db_path: Path) -> VmsSql:
    """A SQLite VMS whose recordings have no key: the source may repeat an id."""
    with sqlite3.connect(db_path) as con:
        con.execute("CREATE TABLE cameras (camera_id TEXT PRIMARY KEY, site TEXT, authorisation_ref TEXT, lat REAL, lon REAL)")
        con.execute("CREATE TABLE recordings (recording_id TEXT, camera_id TEXT, started_at TEXT, ended_at TEXT, "
                    "deleted_at TEXT, hold_set_at TEXT, hold_ref TEXT, hold_released_at TEXT, updated_at TEXT)")
        con.execute("CREATE TABLE audit_log (log_id INTEGER PRIMARY KEY, logged_at TEXT, user_login TEXT, action TEXT, "
                    "camera_id TEXT, recording_id TEXT, justification TEXT, procedure_ref TEXT, recipient TEXT)")
        con.executemany("INSERT INTO recordings (recording_id, hold_ref, updated_at) VALUES (?, ?, '2026-04-20T10:00:00')",
                        [("r-1", "A"), ("r-1", "B"), ("r-2", "C")])
    return VmsSql(VmsSqlSource(name="vms", kind="vms_sql", url=f"sqlite:///{db_path}"), settings=None)


def test_vms_a_repeated_recording_id_lands_all_its_rows_every_time(tmp_path: Path) -> None:
    """Two rows under one id: neither is kept back in turn (which would flip the recording's
    version on every run); both land on every pull, the lone id only once."""
    connector = _plain_vms(tmp_path / "rep.sqlite")
    cursor, landed = None, []
    for i in range(4):
        pull = connector.pull(cursor, tmp_path / f"b{i}")
        landed.append(sorted((r["recording_id"], r["hold_ref"]) for r in
                             _jsonl({f.stream: f for f in pull.files}["recordings"].path)))
        cursor = pull.cursor
    assert landed[0] == [("r-1", "A"), ("r-1", "B"), ("r-2", "C")]
    assert landed[1:] == [[("r-1", "A"), ("r-1", "B")]] * 3
    assert list(cursor["recordings_seen"]) == ["r-2"]


def test_vms_a_recording_that_is_not_utf8_does_not_stop_the_source(tmp_path: Path) -> None:
    """A value that is not valid UTF-8 in the lookback window: the incremental pull still runs
    (a DuckDB table of the window's rows refused it, and the source stopped on every run)."""
    db_path = tmp_path / "bad.sqlite"
    connector = _plain_vms(db_path)
    first = connector.pull(None, tmp_path / "b1")
    with sqlite3.connect(db_path) as con:
        con.execute("INSERT INTO recordings (recording_id, hold_ref, updated_at) "
                    "VALUES ('r-3', CAST(X'6162ff' AS TEXT), '2026-04-20T10:30:00')")
        con.execute("INSERT INTO audit_log (log_id, action) VALUES (1, 'LOGIN')")
    second = connector.pull(first.cursor, tmp_path / "b2")  # raised SourceError: invalid unicode
    assert second.cursor["audit_log_id"] == 1


@pytest.mark.parametrize("log_id_type", ["INTEGER PRIMARY KEY", "INTEGER", "TEXT", "", "NUMERIC"])
def test_vms_sqlite_incremental_filter_keeps_what_the_cursor_asks(tmp_path: Path, log_id_type: str) -> None:
    """SQLite narrows an incremental pull before DuckDB reads it; what it keeps must include
    every row that the exact filter (on each value's text) keeps, whatever the columns'
    declared types and whatever SQLite holds in them: text sorts after numbers, and a TEXT
    column would compare '10' < '9'."""
    db_path = tmp_path / "odd.sqlite"
    with sqlite3.connect(db_path) as con:
        con.execute("CREATE TABLE cameras (camera_id TEXT PRIMARY KEY, site TEXT, authorisation_ref TEXT, lat REAL, lon REAL)")
        con.execute("CREATE TABLE recordings (recording_id TEXT PRIMARY KEY, camera_id TEXT, started_at TEXT, ended_at TEXT, "
                    "deleted_at TEXT, hold_set_at TEXT, hold_ref TEXT, hold_released_at TEXT, updated_at)")
        con.execute(f"CREATE TABLE audit_log (log_id {log_id_type}, logged_at TEXT, user_login TEXT, action TEXT, "
                    "camera_id TEXT, recording_id TEXT, justification TEXT, procedure_ref TEXT, recipient TEXT)")
        con.executemany("INSERT INTO audit_log (log_id, action) VALUES (?, 'LOGIN')", [(i,) for i in range(1, 10)])
        con.executemany("INSERT INTO recordings (recording_id, updated_at) VALUES (?, ?)",
                        [("r-old", "2026-04-01T00:00:00Z"), ("r-new", "2026-04-20 10:00:00"), ("r-z", "2026-04-20T09:00:00Z")])
    connector = VmsSql(VmsSqlSource(name="vms", kind="vms_sql", url=f"sqlite:///{db_path}"), settings=None)
    first = connector.pull(None, tmp_path / "b1")
    assert first.cursor["audit_log_id"] == 9
    with sqlite3.connect(db_path) as con:
        # 10 and 11 as numbers, then as text; '12' as text that reads as a number; a value
        # that is no number at all (skipped, as before: it reads as no id)
        rows = [(10,), (11,)] if "PRIMARY KEY" in log_id_type else [(10,), ("11",), ("12",), ("x13",)]
        con.executemany("INSERT INTO audit_log (log_id, action) VALUES (?, 'LOGIN')", rows)
        con.execute("INSERT INTO recordings (recording_id, updated_at) VALUES ('r-late', '2026-04-20 11:00:00')")
        con.executemany("INSERT INTO recordings (recording_id, updated_at) VALUES (?, ?)", [("r-1000", 1000), ("r-2026", 20260420)])
    # without the recordings landed as they are (SEEN): what the filters alone keep
    second = connector.pull(first.cursor | {"recordings_seen": {}}, tmp_path / "b2")
    files = {f.stream: f for f in second.files}
    wanted = [10, 11] if "PRIMARY KEY" in log_id_type else [10, 11, 12]
    assert [int(r["log_id"]) for r in _jsonl(files["audit_log"].path)] == wanted
    assert second.cursor["audit_log_id"] == wanted[-1]
    # within the lookback (24 h) of the watermark 2026-04-20T10:00, compared as text: not
    # r-old, nor the number 1000 ('1000' < '2026-04-19T10:00:00'), but 20260420 ('0' > '-')
    assert [r["recording_id"] for r in _jsonl(files["recordings"].path)] == ["r-2026", "r-late", "r-new", "r-z"]


@pytest.mark.parametrize("schema", [
    # a view whose key is text (its declared type reads as none, its affinity is TEXT)
    ["CREATE TABLE log_rows (log_id INTEGER, action TEXT)",
     "CREATE VIEW audit_log AS SELECT CAST(log_id AS TEXT) AS log_id, NULL AS logged_at, NULL AS user_login, action, "
     "NULL AS camera_id, NULL AS recording_id, NULL AS justification, NULL AS procedure_ref, NULL AS recipient FROM log_rows"],
    # a primary key that is not the rowid
    ["CREATE TABLE log_rows (log_id INTEGER PRIMARY KEY, action TEXT) WITHOUT ROWID",
     "CREATE VIEW audit_log AS SELECT log_id, NULL AS logged_at, NULL AS user_login, action, NULL AS camera_id, "
     "NULL AS recording_id, NULL AS justification, NULL AS procedure_ref, NULL AS recipient FROM log_rows"],
])
def test_vms_sqlite_incremental_filter_on_views_and_other_keys(tmp_path: Path, schema: list[str]) -> None:
    """The audit log as a view, or keyed otherwise than by the rowid: SQLite's filter still
    keeps every row after the cursor (10, 11 and 100 after 9, compared as numbers)."""
    db_path = tmp_path / "view.sqlite"
    with sqlite3.connect(db_path) as con:
        con.execute("CREATE TABLE cameras (camera_id TEXT PRIMARY KEY, site TEXT, authorisation_ref TEXT, lat REAL, lon REAL)")
        con.execute("CREATE TABLE recordings (recording_id TEXT PRIMARY KEY, camera_id TEXT, started_at TEXT, ended_at TEXT, "
                    "deleted_at TEXT, hold_set_at TEXT, hold_ref TEXT, hold_released_at TEXT, updated_at TEXT)")
        for statement in schema:
            con.execute(statement)
        con.executemany("INSERT INTO log_rows VALUES (?, 'LOGIN')", [(i,) for i in range(1, 10)])
    connector = VmsSql(VmsSqlSource(name="vms", kind="vms_sql", url=f"sqlite:///{db_path}"), settings=None)
    first = connector.pull(None, tmp_path / "b1")
    assert first.cursor["audit_log_id"] == 9
    with sqlite3.connect(db_path) as con:
        con.executemany("INSERT INTO log_rows VALUES (?, 'LOGIN')", [(10,), (11,), (100,)])
    second = connector.pull(first.cursor, tmp_path / "b2")
    log = {f.stream: f for f in second.files}["audit_log"].path
    assert [int(r["log_id"]) for r in _jsonl(log)] == [10, 11, 100]


def test_vms_sqlite_text_updated_at_takes_the_cheaper_filter_and_loses_nothing(tmp_path: Path) -> None:
    """A TEXT ``updated_at`` in a UTF-8 file is narrowed in SQLite by a comparison, and by a
    ``replace`` only where the text holds a space that can matter (vms_sql._recordings_since). On values made to trip it (spaces and 'Z' anywhere, prefixes
    of the date, letters, numbers stored as text, non-ASCII), the pull returns exactly the rows
    whose normalised text is at or after the lookback's start; a blob still reaches DuckDB."""
    import random

    from vigie.sources.vms_sql import _recordings_since, _sqlite_filters

    db_path = tmp_path / "text.sqlite"
    with sqlite3.connect(db_path) as con:
        con.execute("CREATE TABLE cameras (camera_id TEXT PRIMARY KEY, site TEXT, authorisation_ref TEXT, lat REAL, lon REAL)")
        con.execute("CREATE TABLE recordings (recording_id TEXT PRIMARY KEY, camera_id TEXT, started_at TEXT, ended_at TEXT, "
                    "deleted_at TEXT, hold_set_at TEXT, hold_ref TEXT, hold_released_at TEXT, updated_at VARCHAR(32))")
        con.execute("CREATE TABLE audit_log (log_id INTEGER PRIMARY KEY, logged_at TEXT, user_login TEXT, action TEXT, "
                    "camera_id TEXT, recording_id TEXT, justification TEXT, procedure_ref TEXT, recipient TEXT)")
        con.execute("INSERT INTO recordings (recording_id, updated_at) VALUES ('r-seed', '2026-04-20T10:00:00')")
    assert _sqlite_filters(db_path)[1:] == (True, True)  # UTF-8, TEXT affinity: the cheaper filter
    connector = VmsSql(VmsSqlSource(name="vms", kind="vms_sql", url=f"sqlite:///{db_path}"), settings=None)
    first = connector.pull(None, tmp_path / "b1")
    start = "2026-04-19T10:00:00"  # the watermark less the lookback (24 h)

    rng = random.Random(12)
    odd = ["Z", " ", "T", "-", ":", "a", "z", "/", "\u00e9", "0", "9", "1"]
    values = [20260420, 2026, "", " ", "Z", "2026-04-19 10:00:00", "2026-04-19T10:00:00Z", "2026 04-19", "2026-04-1Z9",
              "20269-04-19T10:00:00", "infinity",  # instants Python cannot hold: they broke the pull
              " 2026", "2026-04-1 T", "2026-04-19 09:59:59", "2026-04-19T09 ", "2026-04-18T23:59:59", "2026-04-18 23:59:59"]
    for _ in range(3000):
        text = list(start[:rng.randrange(len(start) + 1)])
        for _ in range(rng.randrange(4)):  # insert, replace or add odd characters anywhere
            text.insert(rng.randrange(len(text) + 1), rng.choice(odd))
        if text and rng.random() < 0.5:
            text[rng.randrange(len(text))] = rng.choice(odd)
        values.append("".join(text))
    with sqlite3.connect(db_path) as con:
        con.executemany("INSERT INTO recordings (recording_id, updated_at) VALUES (?, ?)",
                        [(f"r-{i:05d}", v) for i, v in enumerate(values)])
        con.execute("INSERT INTO recordings (recording_id, updated_at) VALUES ('r-blob', X'323032362D30342D3230')")
        kept_by_sqlite = {r for (r,) in con.execute(_recordings_since(start, True, True).replace("*", "recording_id", 1))}
    assert "r-blob" in kept_by_sqlite
    # Only what can reach the start comes back: an older instant, written either way, does not.
    assert not {f"r-{i:05d}" for i, v in enumerate(values) if v in ("2026-04-18T23:59:59", "2026-04-18 23:59:59")} & kept_by_sqlite
    second = connector.pull(first.cursor | {"recordings_seen": {}}, tmp_path / "b2")  # the filters alone
    got = {r["recording_id"] for r in _jsonl({f.stream: f for f in second.files}["recordings"].path)} - {"r-blob"}
    wanted = {"r-seed"} | {f"r-{i:05d}" for i, v in enumerate(values)
                           if str(v).replace(" ", "T").replace("Z", "") >= start}
    assert 300 < len(wanted) < len(values) - 300  # the values straddle the start
    assert got == wanted


def test_vms_sqlite_in_utf16_keeps_recordings_its_order_would_drop(tmp_path: Path) -> None:
    """A SQLite file stored as UTF-16 orders text by UTF-16 code units, not as DuckDB does:
    a value with a character beyond ASCII must still reach the exact filter (here
    '2026-04-2Ā' sorts after the lookback's start, 2026-04-20T09:00:00, in UTF-8, before it in
    UTF-16LE)."""
    db_path = tmp_path / "utf16.sqlite"
    with sqlite3.connect(db_path) as con:
        con.execute("PRAGMA encoding = 'UTF-16le'")
        con.execute("CREATE TABLE cameras (camera_id TEXT PRIMARY KEY, site TEXT, authorisation_ref TEXT, lat REAL, lon REAL)")
        con.execute("CREATE TABLE recordings (recording_id TEXT PRIMARY KEY, camera_id TEXT, started_at TEXT, ended_at TEXT, "
                    "deleted_at TEXT, hold_set_at TEXT, hold_ref TEXT, hold_released_at TEXT, updated_at TEXT)")
        con.execute("CREATE TABLE audit_log (log_id INTEGER PRIMARY KEY, logged_at TEXT, user_login TEXT, action TEXT, "
                    "camera_id TEXT, recording_id TEXT, justification TEXT, procedure_ref TEXT, recipient TEXT)")
        con.execute("INSERT INTO recordings (recording_id, updated_at) VALUES ('r-1', '2026-04-21T09:00:00')")
    connector = VmsSql(VmsSqlSource(name="vms", kind="vms_sql", url=f"sqlite:///{db_path}"), settings=None)
    first = connector.pull(None, tmp_path / "b1")
    with sqlite3.connect(db_path) as con:
        con.executemany("INSERT INTO recordings (recording_id, updated_at) VALUES (?, ?)",
                        [("r-odd", "2026-04-2\u0100"), ("r-old", "2026-04-01T00:00:00")])
    second = connector.pull(first.cursor | {"recordings_seen": {}}, tmp_path / "b2")  # the filters alone
    recordings = {f.stream: f for f in second.files}["recordings"].path
    assert [r["recording_id"] for r in _jsonl(recordings)] == ["r-1", "r-odd"]


def test_vms_sqlite_row_not_valid_utf8_is_quarantined_not_lost(tmp_path: Path) -> None:
    """A recording holding bytes that are not UTF-8 (SQLite keeps any bytes as text) comes out
    of DuckDB's JSON writer as a blank line: it is received and quarantined, never dropped."""
    from vigie import pipeline
    from vigie.config import load_settings

    db_path, _ = _vms(tmp_path)
    with sqlite3.connect(db_path) as con:
        n = con.execute("SELECT count(*) FROM recordings").fetchone()[0]
        (rid,) = con.execute("SELECT min(recording_id) FROM recordings").fetchone()
        con.execute("UPDATE recordings SET hold_ref = CAST(X'6162ff' AS TEXT) WHERE recording_id = ?", [rid])
    (tmp_path / "authorisations.json").write_bytes((SAMPLES / "authorisations.json").read_bytes())
    (tmp_path / "vigie.yml").write_text("warehouse: var/w.duckdb\nregister: authorisations.json\nsources:\n"
                                        f"  - {{name: vms, kind: vms_sql, url: 'sqlite:///{db_path}'}}\n")
    report = pipeline.run(load_settings(tmp_path / "vigie.yml"), validate=False, evaluate=False)
    assert not report.failed
    import duckdb

    with duckdb.connect(str(tmp_path / "var" / "w.duckdb"), read_only=True) as con:
        loaded = con.execute("SELECT count(*) FROM oversight.vms_recordings").fetchone()[0]
        quarantined = con.execute("SELECT reason FROM oversight.quarantine WHERE kind = 'recording'").fetchall()
    assert loaded + len(quarantined) == n  # every recording of the source, one way or the other
    assert any("not valid UTF-8" in reason for (reason,) in quarantined)


def test_vms_sqlite_values_of_the_wrong_type_are_landed_as_they_are(tmp_path: Path) -> None:
    """SQLite does not enforce column types: text in a DOUBLE column must reach the contract."""
    db_path, connector = _vms(tmp_path)
    with sqlite3.connect(db_path) as con:
        con.execute("INSERT INTO cameras VALUES ('C-BAD', 'S', NULL, 'n/a', 4.8)")
    cameras = {r["camera_id"]: r for r in _jsonl({f.stream: f for f in connector.pull(None, tmp_path / "b").files}["cameras"].path)}
    assert cameras["C-BAD"]["lat"] == "n/a"


def test_vms_missing_table_is_a_source_error(tmp_path: Path) -> None:
    db_path, connector = _vms(tmp_path)
    with sqlite3.connect(db_path) as con:
        con.execute("DROP TABLE cameras")
    with pytest.raises(SourceError, match="cameras"):
        connector.pull(None, tmp_path / "b")


def test_a_subfolder_that_is_a_link_is_refused_not_followed(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "secret.jsonl").write_text('{"flight_id": "FL-1"}\n')
    folder = tmp_path / "drones"
    folder.mkdir()
    (folder / "flights").symlink_to(elsewhere, target_is_directory=True)
    (folder / "tracks").mkdir()
    connector = DroneFiles(DroneFilesSource(name="d", kind="drone_files", path=folder, settle_seconds=0), settings=None)
    pull = connector.pull(None, tmp_path / "b")
    assert pull.files == []
    assert [(u.name, u.reason.split(":")[0], u.sha256) for u in pull.unreadable] == [("flights", "a symbolic link", None)]
    assert not (tmp_path / "b").exists()  # nothing landed


def test_a_file_written_while_listed_waits_for_the_next_pull(tmp_path: Path) -> None:
    from tests.hostile_drops import Grower

    folder = tmp_path / "lapi"
    folder.mkdir()
    connector = LapiFiles(LapiFilesSource(name="l", kind="lapi_files", path=folder, settle_seconds=0.5), settings=None)
    header = "read_id,read_at,camera_id,plate_hash,matched,deleted_at\n"
    with Grower(folder / "reads_1.csv", header, "r,2026-01-01T10:00:00+01:00,C,0123456789abcdef,0,\n"):
        pull = connector.pull(None, tmp_path / "b1")
    assert pull.files == [] and pull.unreadable == [] and pull.waiting == ["reads_1.csv"]
    assert "reads_1.csv" not in pull.cursor["files"]
    old = time.time() - 60
    os.utime(folder / "reads_1.csv", (old, old))
    again = connector.pull(pull.cursor, tmp_path / "b2")
    assert [f.name for f in again.files] == ["reads_1.csv"] and again.waiting == []
    assert again.files[0].path.read_bytes() == (folder / "reads_1.csv").read_bytes()


def test_vms_the_last_line_of_a_landed_file_is_read_from_its_end(tmp_path: Path) -> None:
    """The highest audit number of an incremental pull is its last line's (`_last_line`):
    whatever the lines' lengths, one line alone, a last line longer than a read."""
    from vigie.sources.vms_sql import _last_line

    path = tmp_path / "audit_log.jsonl"
    for lines in ([b'{"log_id":"7"}'], [b"x" * 10, b'{"log_id":"12"}'], [b"a" * 5000, b"b" * 70000],
                  [b"c" * 4095, b"d"], [b"e", b"f" * 4096]):
        path.write_bytes(b"\n".join(lines) + b"\n")
        assert _last_line(path) == lines[-1]
