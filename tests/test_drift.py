"""Schema drift (issue #13, item 3): a column or field renamed, added, removed or retyped is
found before loading, for each kind of source; the whole batch is held with a message naming
it, nothing of it loads, the cursor stays; `--accept-drift` takes the new shape. A bad value
in one row of an unchanged shape is still a quarantined row."""

from __future__ import annotations

import copy
import json
import os
import shutil
import sqlite3
from pathlib import Path

import duckdb
import pytest

from tests.conftest import vigie
from tests.mini_estate import TOKEN, MiniEstate, auth
from tests.test_vms_servers import server_vms  # noqa: F401 - the fixture
from vigie import cursors, db, pipeline
from vigie.config import load_settings
from vigie.simulate.bodycam_server import BodycamServer

AT = "2026-03-01T10:00:00+01:00"
READ = "read_id,read_at,camera_id,plate_hash,matched,deleted_at"
CANONICAL = {"vms": "vms_audit_log", "cams": "bodycam_events", "drones": "drone_flights", "lapi": "lapi_reads"}


def _event(seq: int, **over) -> dict:
    return {"seq": seq, "id": f"e-{seq}", "at": AT, "device": {"serial": "BWC-1", "kind": "BWC"},
            "actor": {"badge": "PN-1", "unit": "Unit"}, "action": "evidence.viewed", "evidence_id": f"ev-{seq}",
            "purpose": None, "justification": None, "procedure_ref": None, "recipient": None} | over


def _flight(fid: str, **over) -> dict:
    return {"flight_id": fid, "revision": 1, "drone_id": "F-1", "unit": "DDSP", "pilot": "P",
            "authorisation_ref": None, "purpose": "DR1", "takeoff_at": AT, "landing_at": "2026-03-01T11:00:00+01:00",
            "audio_recorded": False, "facial_recognition": False,
            "recordings": [{"recording_id": f"{fid}-r1", "interior": False, "deleted_at": None}],
            "consultations": []} | over


class Estate:
    """A small estate of the four kinds, loaded once; then one source changes its shape.
    Each test gets a copy of one loaded estate, with a server of its own."""

    def __init__(self, root: Path) -> None:
        e = MiniEstate(root)
        e.register = [auth("AP-1", "VP")]
        e.cameras = [{"camera_id": "C1", "site": "S", "authorisation_ref": "AP-1", "lat": 45.7, "lon": 4.8}]
        e.recording("R1", "C1", "2026-03-01T08:00:00Z", "2026-03-01T09:00:00Z")
        e.log(1, "2026-03-01T09:00:00Z", "LOGIN")
        e.log(2, "2026-03-01T09:05:00Z", "PLAYBACK", camera_id="C1", recording_id="R1")
        e.flights = [_flight("FL-1")]
        e.reads = {"reads_2026-03-01.csv": [{"read_id": "rd-1", "read_at": AT, "camera_id": "L1",
                                             "plate_hash": "h1", "matched": "0"}]}
        e.queries = {"queries_2026-03-01.csv": []}
        e.events = [_event(s) for s in (1, 2, 3)]
        self.root = root
        self.events = root / "events.jsonl"
        root.mkdir(parents=True)
        self.events.write_text("".join(json.dumps(x) + "\n" for x in e.events))
        os.environ["MINI_TOKEN"] = TOKEN
        self.server = BodycamServer(self.events, token=TOKEN).start()
        self.config = e.write(self.server.url)  # writes the same events again
        (root / "vms2.sqlite").unlink()
        self.config.write_text("\n".join(line for line in self.config.read_text().splitlines() if "vms2" not in line) + "\n")
        self.settings = load_settings(self.config)
        first = self.run()
        assert not first.failed, first.failed[0].error
        self.server.stop()

    def copy(self, root: Path) -> Estate:
        shutil.copytree(self.root, root)
        other = copy.copy(self)
        other.root, other.events, other.config = root, root / "events.jsonl", root / "vigie.yml"
        other.server = BodycamServer(other.events, token=TOKEN).start()
        other.config.write_text(self.config.read_text().replace(self.server.url, other.server.url))
        other.settings = load_settings(other.config)
        return other

    def run(self, accept: list[str] | tuple = (), only: list[str] | tuple = ()) -> pipeline.RunReport:
        return pipeline.run(self.settings, list(only), validate=False, evaluate=False, accept_drift=accept)

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        with duckdb.connect(str(db.writer_path(self.settings.warehouse)), read_only=True) as con:
            return con.execute(sql, params or []).fetchall()

    def state(self, source: str) -> tuple:
        """What a held batch must not change: the cursor, the rows, the quarantine."""
        with duckdb.connect(str(db.writer_path(self.settings.warehouse)), read_only=True) as con:
            cursor = cursors.load(con, source)
        return (cursor, self.query("SELECT batch_id FROM source_cursors WHERE source = ?", [source]),
                self.query(f"SELECT count(*) FROM {CANONICAL[source]} WHERE source = ?", [source]),
                self.query("SELECT count(*) FROM quarantine WHERE source = ?", [source]))

    # --- what changes, per kind of source ------------------------------------------------------
    def vms(self, sql: str) -> None:
        with sqlite3.connect(self.root / "vms.sqlite") as con:
            con.executescript(sql)
            con.execute("INSERT INTO audit_log (log_id, logged_at, action) VALUES (3, '2026-03-02T10:00:00Z', 'LOGIN')")

    def bodycam(self, *events: dict) -> None:
        with open(self.events, "a") as f:
            f.writelines(json.dumps(e) + "\n" for e in events)

    def flights(self, *flights: dict) -> None:
        (self.root / "drones" / "flights" / "2026-04.jsonl").write_text("".join(json.dumps(f) + "\n" for f in flights))

    def track(self, header: str, *lines: str) -> None:
        (self.root / "drones" / "tracks" / "FL-1.csv").write_text("\n".join([header, *lines]) + "\n")

    def reads(self, header: str, *lines: str) -> None:
        (self.root / "lapi" / "reads_2026-04-01.csv").write_text("\n".join([header, *lines]) + "\n")


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Estate:
    return Estate(tmp_path_factory.mktemp("drift") / "estate")


@pytest.fixture
def estate(loaded: Estate, tmp_path: Path):  # noqa: ANN201
    e = loaded.copy(tmp_path / "estate")
    yield e
    e.server.stop()


def _retype_log_id(table: str = "audit_log") -> str:
    return f"""
        CREATE TABLE _t (log_id TEXT PRIMARY KEY, logged_at TEXT, user_login TEXT NULL, action TEXT,
            camera_id TEXT NULL, recording_id TEXT NULL, justification TEXT NULL, procedure_ref TEXT NULL,
            recipient TEXT NULL);
        INSERT INTO _t SELECT * FROM {table}; DROP TABLE {table}; ALTER TABLE _t RENAME TO {table};"""


NEW_READ = "rd-2,2026-04-01T10:00:00+02:00,L1,h2,0,"
TRACK = "t,lat,lon,alt_m"
POINT = "2026-03-01T10:05:00+01:00,45.7,4.8,90"
DRIFTS = {
    # source kind: {change: (source, apply, the message)}
    "vms_sql": {
        "added": ("vms", lambda e: e.vms("ALTER TABLE cameras ADD COLUMN zone TEXT;"), "cameras: column 'zone' added"),
        "removed": ("vms", lambda e: e.vms("ALTER TABLE audit_log DROP COLUMN recipient;"),
                    "audit_log: column 'recipient' removed"),
        "renamed": ("vms", lambda e: e.vms("ALTER TABLE cameras RENAME COLUMN site TO site_name;"),
                    "cameras: column 'site' renamed to 'site_name'?"),
        "retyped": ("vms", lambda e: e.vms(_retype_log_id()), "audit_log: column 'log_id' retyped integer → text"),
    },
    "csv": {
        "added": ("lapi", lambda e: e.reads(READ + ",source_ip", NEW_READ + ",10.0.0.1"),
                  "reads: header of reads_2026-04-01.csv: column 'source_ip' added"),
        "removed": ("lapi", lambda e: e.reads(READ.removesuffix(",deleted_at"), NEW_READ.removesuffix(",")),
                    "reads: header of reads_2026-04-01.csv: column 'deleted_at' removed"),
        "renamed": ("lapi", lambda e: e.reads(READ.replace("camera_id", "camera"), NEW_READ),
                    "reads: header of reads_2026-04-01.csv: column 'camera_id' renamed to 'camera'?"),
        # CSV carries no types: a value that no longer reads as its type is a quarantined line
        # (test below); the fourth change a header can make is an order.
        "moved": ("lapi", lambda e: e.reads("read_at,read_id,camera_id,plate_hash,matched,deleted_at",
                                            "2026-04-01T10:00:00+02:00,rd-2,L1,h2,0,"),
                  "reads: header of reads_2026-04-01.csv: columns moved to 'read_at,read_id,"),
    },
    "csv_tracks": {  # the drone folder's CSV: its track points
        "added": ("drones", lambda e: e.track(TRACK + ",speed_kmh", POINT + ",31"),
                  "tracks: header of tracks/FL-1.csv: column 'speed_kmh' added"),
        "removed": ("drones", lambda e: e.track(TRACK.removesuffix(",alt_m"), POINT.rpartition(",")[0]),
                    "tracks: header of tracks/FL-1.csv: column 'alt_m' removed"),
        "renamed": ("drones", lambda e: e.track(TRACK.replace("alt_m", "altitude"), POINT),
                    "tracks: header of tracks/FL-1.csv: column 'alt_m' renamed to 'altitude'?"),
        "moved": ("drones", lambda e: e.track("lat,lon,t,alt_m", "45.7,4.8,2026-03-01T10:05:00+01:00,90"),
                  "tracks: header of tracks/FL-1.csv: columns moved to 'lat,lon,t,alt_m'"),
    },
    "json_files": {
        "added": ("drones", lambda e: e.flights(_flight("FL-2", weather="rain")), "flights: field 'weather' is new"),
        "removed": ("drones", lambda e: e.flights({k: v for k, v in _flight("FL-2").items() if k != "pilot"}),
                    "flights: field 'pilot' is missing from every flight"),
        "renamed": ("drones", lambda e: e.flights(_flight("FL-2", recordings=[{"recording_id": "r", "indoor": False}])),
                    "flights: field 'recordings[].interior' renamed to 'recordings[].indoor'?"),
        "retyped": ("drones", lambda e: e.flights(_flight("FL-2", revision="1"), _flight("FL-3", revision="2")),
                    "flights: field 'revision' retyped number → string in every flight"),
    },
    "json_api": {
        "added": ("cams", lambda e: e.bodycam(_event(4, gps=[45.7, 4.8])), "events: field 'gps' is new"),
        "removed": ("cams", lambda e: e.bodycam(*({k: v for k, v in _event(s).items() if k != "evidence_id"} for s in (4, 5))),
                    "events: field 'evidence_id' is missing from every event"),
        "renamed": ("cams", lambda e: e.bodycam(_event(4, device={"sn": "BWC-1", "kind": "BWC"})),
                    "events: field 'device.serial' renamed to 'device.sn'?"),
        "retyped": ("cams", lambda e: e.bodycam(_event(4) | {"seq": "4"}, _event(5) | {"seq": "5"}),
                    "events: field 'seq' retyped number → string in every event"),
    },
}
CASES = [(kind, change, *spec) for kind, changes in DRIFTS.items() for change, spec in changes.items()]


@pytest.mark.parametrize(("kind", "change", "source", "apply", "message"), CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_drift_holds_the_whole_batch_until_accepted(estate: Estate, kind: str, change: str, source: str, apply,  # noqa: ANN001
                                                    message: str) -> None:
    before = estate.state(source)
    apply(estate)
    held = estate.run()
    failed = {s.source: s.error for s in held.failed}
    assert list(failed) == [source]  # the others load as usual
    assert message in failed[source] and f"--accept-drift {source}" in failed[source]
    assert "\n" not in failed[source]
    (status, error), = estate.query("SELECT status, error FROM batches WHERE source = ? ORDER BY batch_id DESC LIMIT 1",
                                    [source])
    assert status == "held" and error == failed[source]
    assert estate.state(source) == before  # nothing half-loaded, the cursor did not move

    taken = estate.run(accept=[source], only=[source])
    assert not taken.failed
    assert estate.state(source) != before  # loaded now, under the contract as it stands
    (how,), = estate.query("SELECT how FROM oversight.source_shapes WHERE source = ? ORDER BY batch_id DESC LIMIT 1",
                           [source])
    assert how == "accepted"
    estate.reads(READ, NEW_READ) if kind == "csv" else None
    assert not estate.run(only=[source]).failed  # the new shape stands


@pytest.mark.parametrize("source", ["vms", "lapi", "drones", "cams"])
def test_a_bad_value_in_one_row_of_an_unchanged_shape_is_a_quarantined_row(estate: Estate, source: str) -> None:
    {"vms": lambda: estate.vms("UPDATE audit_log SET action = action;"
                               "INSERT INTO audit_log (log_id, logged_at, action) VALUES (4, 'x', 'SNAPSHOT');"),
     "lapi": lambda: estate.reads(READ, NEW_READ, "rd-3,2026-04-01T10:00:00+02:00,L1,h3,2,"),
     "drones": lambda: estate.flights(_flight("FL-2"), _flight("FL-3", revision="two")),
     "cams": lambda: estate.bodycam(_event(4), _event(5) | {"seq": "five"}, _event(6, action="Evidence.Viewed")),
     }[source]()
    run = estate.run(only=[source])
    assert not run.failed
    (status, loaded, quarantined), = estate.query(
        "SELECT status, loaded, quarantined FROM batches WHERE source = ? ORDER BY batch_id DESC LIMIT 1", [source])
    assert status == "loaded" and loaded >= 1 and quarantined == (2 if source == "cams" else 1)


def test_first_load_records_each_stream_shape(estate: Estate) -> None:
    shapes = {(s, t): (json.loads(shape), how) for s, t, shape, how in
              estate.query("SELECT source, stream, shape, how FROM oversight.source_shapes")}
    assert shapes[("vms", "audit_log")][0]["columns"]["log_id"] == "integer"
    assert shapes[("vms", "cameras")][0]["columns"]["lat"] == "real"
    assert shapes[("lapi", "reads")][0] == {"headers": [READ.split(",")]}
    assert shapes[("cams", "events")][0]["fields"]["device.serial"] == ["string"]
    assert "recordings[].interior" in shapes[("drones", "flights")][0]["required"]
    assert {how for _, how in shapes.values()} == {"first load"}


def test_cli_accept_drift(estate: Estate) -> None:
    estate.bodycam(_event(4, gps=[1, 2]))
    env = {"MINI_TOKEN": TOKEN}
    held = vigie("run", "--config", str(estate.config), "--as-of", "2026-04-30T00:00:00Z", "--no-alerts", env=env)
    assert held.returncode == 1
    assert "source 'cams': schema drift" in held.stderr and "field 'gps' is new" in held.stderr
    unknown = vigie("run", "--config", str(estate.config), "--accept-drift", "nope", env=env)
    assert unknown.returncode == 2 and "nope" in unknown.stderr
    taken = vigie("run", "--config", str(estate.config), "--as-of", "2026-04-30T00:00:00Z", "--no-alerts",
                  "--accept-drift", "cams", env=env)
    assert taken.returncode == 0, taken.stderr
    assert estate.query("SELECT count(*) FROM bodycam_events WHERE event_id = 'e-4'") == [(1,)]


def _loaded_from_a_server(server_vms: str, tmp_path: Path):  # noqa: ANN202
    """Settings for one VMS source on a database server, loaded once (its shapes recorded)."""
    (tmp_path / "authorisations.json").write_text("[]")
    config = tmp_path / "vigie.yml"
    config.write_text(f"warehouse: var/w.duckdb\nregister: authorisations.json\nsources:\n"
                      f"  - {{name: vms, kind: vms_sql, url: '{server_vms}'}}\n")
    settings = load_settings(config)
    assert not pipeline.run(settings, validate=False, evaluate=False).failed
    return settings


def test_drift_on_postgresql_and_mariadb(server_vms: str, tmp_path: Path) -> None:
    """The same words for the same types on every engine, and a retyped column held."""
    import sqlalchemy as sa

    settings = _loaded_from_a_server(server_vms, tmp_path)
    with duckdb.connect(str(db.writer_path(settings.warehouse)), read_only=True) as con:
        shapes = {t: json.loads(s)["columns"] for t, s in con.execute("SELECT stream, shape FROM source_shapes").fetchall()}
    assert shapes["audit_log"]["log_id"] == "integer" and shapes["audit_log"]["action"] == "text"
    assert shapes["recordings"]["started_at"] == "datetime" and shapes["cameras"]["lat"] == "real"
    engine = sa.create_engine(server_vms)
    with engine.begin() as c:
        c.execute(sa.text("ALTER TABLE audit_log ALTER COLUMN log_id TYPE VARCHAR(20)" if engine.dialect.name == "postgresql"
                          else "ALTER TABLE audit_log MODIFY log_id VARCHAR(20)"))
    engine.dispose()
    held = pipeline.run(settings, validate=False, evaluate=False)
    assert "audit_log: column 'log_id' retyped integer → text" in held.failed[0].error


def test_columns_added_removed_renamed_on_postgresql_and_mariadb(server_vms: str, tmp_path: Path) -> None:
    """The other three drifts on a database server (the shape is read from its catalogue,
    not SQLite's): each held with its message, then accepted."""
    import sqlalchemy as sa

    settings = _loaded_from_a_server(server_vms, tmp_path)
    engine = sa.create_engine(server_vms)
    pg = engine.dialect.name == "postgresql"
    for change, message in (
            ("ALTER TABLE cameras ADD COLUMN zone VARCHAR(20)", "cameras: column 'zone' added"),
            ("ALTER TABLE audit_log DROP COLUMN recipient", "audit_log: column 'recipient' removed"),
            ("ALTER TABLE cameras RENAME COLUMN site TO site_name" if pg else
             "ALTER TABLE cameras CHANGE site site_name VARCHAR(200)", "cameras: column 'site' renamed to 'site_name'?")):
        with engine.begin() as c:
            c.execute(sa.text(change))
        held = pipeline.run(settings, validate=False, evaluate=False)
        assert held.failed and message in held.failed[0].error, (change, held.failed and held.failed[0].error)
        assert not pipeline.run(settings, validate=False, evaluate=False, accept_drift=["vms"]).failed
        assert not pipeline.run(settings, validate=False, evaluate=False).failed  # the new shape stands
    engine.dispose()


def test_sources_command_and_view_show_the_same_held_batch(estate: Estate) -> None:
    """`vigie sources` and the view's sources page read one function (vigie/health.py):
    a held batch shows in both as the last error, the feed's expected_every too."""
    from fastapi import Header
    from fastapi.testclient import TestClient

    from vigie.present.view import create_app

    estate.config.write_text(estate.config.read_text().replace("path: lapi,", "path: lapi, expected_every: 6h,"))
    estate.bodycam(_event(4, gps=[1, 2]))
    estate.settings = load_settings(estate.config)
    estate.run(only=["cams"])
    rows = {r["source"]: r for r in json.loads(vigie("sources", "--config", str(estate.config), "--format", "json",
                                                     check=True).stdout)}
    cams = rows["cams"]
    assert cams["latest_status"] == "held" and cams["last_error"].startswith("source 'cams': schema drift")
    assert cams["last_batch_id"] < cams["latest_batch_id"] and cams["failing_runs"] == 1
    assert rows["lapi"]["expected_every"] == "6h" and rows["lapi"]["silent"] is False
    assert rows["vms"]["expected_every"] is None and rows["vms"]["silent"] is None
    # The cursor where each resumes, readable: a drop folder's files and the VMS lookback's
    # recordings by their number (the ledger keeps only a digest of a large one).
    cursors = {name: json.loads(r["cursor"]) for name, r in rows.items()}
    # (and a folder's listing, as its last pull left it whole: FolderConnector.pull)
    assert {k: v for k, v in cursors["lapi"].items() if k != "listing_sha256"} == {"files": 2}
    assert {k: v for k, v in cursors["drones"].items() if k != "listing_sha256"} == {"files": 1}
    assert cursors["vms"]["audit_log_id"] == 2 and isinstance(cursors["vms"]["recordings_seen"], int)
    assert set(cursors["cams"]) == {"after", "page_sha256"}  # the last page, and its bytes as landed
    table = vigie("sources", "--config", str(estate.config), "--format", "table", check=True).stdout
    assert "latest_status" in table and '"files": 2' in table  # in a file: whole, not cut to 80 columns
    assert all(len(c.get("listing_sha256", "")) in (0, 64) and c.get("listing_sha256", "") in table for c in cursors.values())

    def who(x_test_user: str | None = Header(None)) -> str:
        return x_test_user or "inspector"

    page = TestClient(create_app(estate.config, user=who)).get("/sources").text
    assert 'data-source="cams"' in page and ">held<" in page and "field &#39;gps&#39; is new" in page
    assert f'>{cams["latest_batch_id"]}<' in page and f'>{cams["last_batch_id"]}<' in page
    assert "&#34;files&#34;: 2" in page and cursors["lapi"]["listing_sha256"] in page  # the cursor, as `vigie sources` shows it
    assert 'data-source="register"' in page  # the view shows every source with batches, the register too


def _mutated(rng, base: dict, paths: list[str]) -> object:  # noqa: ANN001
    """``base`` with a few random changes: a field dropped, added, set to another type, a
    nested object or list element changed; now and then no object at all."""
    if rng.random() < 0.03:
        return rng.choice([[1, 2], "text", 7, None])
    if rng.random() < 0.05:  # a top-level key named like a nested field
        return base | {rng.choice([p for p in paths if "." in p]): "x"}
    if rng.random() < 0.05:  # a key twice in one object, as text: JSON allows it
        name = rng.choice([p for p in paths if "." not in p])
        return json.dumps(base)[:-1] + f', "{name}": {json.dumps(base.get(name))}}}'
    row = copy.deepcopy(base)
    others = [None, "x", 3, 2.5, True, {"a": 1}, [1], [{"recording_id": "r"}], {}]
    for _ in range(rng.choice([0, 1, 1, 2])):
        path = rng.choice(paths + ["extra", "device.extra", "recordings[].extra"])
        head, _, leaf = path.partition(".")
        lst = head.endswith("[]")
        parent = row.get(head.removesuffix("[]")) if leaf else row
        targets = ([x for x in parent if isinstance(x, dict)] if lst and isinstance(parent, list)
                   else [parent] if isinstance(parent, dict) else [])
        for target in targets[:rng.choice([1, 2])]:
            name = leaf or head
            if rng.random() < 0.4:
                target.pop(name, None)
            else:
                target[name] = rng.choice(others)
    return row


@pytest.mark.parametrize("suite", ["bodycam_api.events", "drone_files.flights"])
def test_drift_reads_staging_types_and_skips_the_lookup_when_every_row_conforms(suite: str, tmp_path: Path) -> None:
    """The drift check as it was (each row parsed for its fields' types, the new rows looked
    up in the warehouse) against today's (the types staging computed, no lookup when every
    readable row fits the accepted shape; with the rows the merge finds, `PriorRows`, the
    new rows marked in the one pass that observes them all): random batches staged as the source stages them
    (fields dropped, added, retyped, in nested objects and list elements, keys given twice,
    lines that are no object), some rows already loaded, the same changes found."""
    import random

    from vigie import drift
    from vigie.canonical import PriorRows
    from vigie.sources.bodycam_api import EVENTS
    from vigie.sources.drone_files import FLIGHTS
    from vigie.staging import stage

    stream = {"bodycam_api.events": EVENTS, "drone_files.flights": FLIGHTS}[suite]
    accepted = drift.CONTRACT[suite][1]
    paths = list(accepted["fields"])
    con = duckdb.connect()
    db.migrate(con)
    rng = random.Random(20261205)
    seen = {"conforms": 0, "changes": 0, "only old rows stray": 0}
    landed = tmp_path / "landed.jsonl"
    for case in range(200):
        rows = []
        same = rng.random() < 0.5 and rng.random()  # the same change in every changed row, or each its own
        for i in range(rng.randint(1, 8)):
            base = _event(i) if stream is EVENTS else _flight(f"FL-{i}")
            rows.append(_mutated(random.Random(same) if same else rng, base, paths) if rng.random() < (0.8 if same else 0.3)
                        else base)
        texts = [row if isinstance(row, str) and row.startswith("{") else json.dumps(row) for row in rows]
        landed.write_text('{"events": [' + ", ".join(texts) + '], "next": null}\n' if stream is EVENTS
                          else "".join(t + "\n" for t in texts))
        assert stage(con, stream, [("landed.jsonl", landed)], "stg") == len(rows)
        con.execute(f"DELETE FROM main.{stream.table}")
        for i in range(len(rows)):  # some of them loaded already: a page served again
            if rng.random() < 0.5:
                keys = {"event_id": f"e-{i}"} if stream is EVENTS else {"flight_id": f"FL-{i}", "revision": 1}
                con.execute(f"INSERT INTO main.{stream.table} (source, batch_id, ord, location, {', '.join(keys)}) "
                            f"VALUES ('s', 1, {i}, 'x', {', '.join('?' for _ in keys)})", list(keys.values()))
        got = drift._json_changes(con, "s", stream, "stg", accepted)
        # The new rows found through the rows kept for the merge (`PriorRows`: body-camera
        # events, whose keys are text) are the same.
        prior = PriorRows(con, "s")
        assert drift._json_changes(con, "s", stream, "stg", accepted, prior) == got, (case, rows)
        if prior.tables:  # asked (some rows stray from the shape): kept for events, whose keys are text
            assert (prior.tables[stream.table] is not None) == (stream is EVENTS)
        prior.drop()
        conforms, type_columns = drift._conforms, drift._type_columns
        drift._conforms, drift._type_columns = (lambda *a: False), (lambda *a: {})
        try:
            before = drift._json_changes(con, "s", stream, "stg", accepted)
        finally:
            drift._conforms, drift._type_columns = conforms, type_columns
        assert got[0] == before[0], (case, rows)
        assert got[1] == before[1] or not got[0]  # the shape taken only matters with changes
        fits = conforms(accepted["fields"], accepted["required"], *drift._observe(
            con, "(SELECT * FROM stg WHERE parse_error IS NULL AND j IS NOT NULL)", {}, accepted["fields"]))
        seen["conforms" if fits else "changes" if before[0] else "only old rows stray"] += 1
    assert min(seen.values()) >= 20, seen  # each path taken, changes found


def test_a_key_given_twice_counts_once() -> None:
    """An old row naming `evidence_id` twice must not stand for a new row without it."""
    from vigie import drift
    from vigie.sources.bodycam_api import EVENTS

    con = duckdb.connect()
    con.execute("CREATE TABLE main.bodycam_events (source VARCHAR, event_id VARCHAR)")
    con.execute("INSERT INTO main.bodycam_events VALUES ('s', 'e-1')")
    twice = json.dumps(_event(1))[:-1] + ', "evidence_id": "ev-1"}'
    without = json.dumps({k: v for k, v in _event(2).items() if k != "evidence_id"})
    con.execute("CREATE TEMP TABLE stg AS SELECT NULL::VARCHAR AS parse_error, j::JSON AS j, event_id "
                "FROM (VALUES (?, 'e-1'), (?, 'e-2')) v(j, event_id)", [twice, without])
    changes, _ = drift._json_changes(con, "s", EVENTS, "stg", drift.CONTRACT["bodycam_api.events"][1])
    assert changes == ["events: field 'evidence_id' is missing from every event"]


@pytest.mark.parametrize(("suite", "loaded", "new", "change"), [
    ("bodycam_api.events", _event(1) | {"device.serial": "x"}, _event(2, device={"kind": "BWC"}),
     "events: field 'device.serial' is missing from every event"),
    ("drone_files.flights", _flight("FL-1") | {"recordings[].recording_id": "x"},
     _flight("FL-2", recordings=[{"interior": False}]), "flights: field 'recordings[].recording_id' is missing from every flight"),
])
def test_a_top_level_key_named_like_a_nested_field_stands_for_no_nested_field(suite: str, loaded: dict, new: dict,
                                                                              change: str) -> None:
    """A row loaded already whose top-level key is named ``device.serial`` must not make up
    for a new row whose ``device`` has no ``serial``: the lookup of the new rows is done."""
    from vigie import drift
    from vigie.sources.bodycam_api import EVENTS
    from vigie.sources.drone_files import FLIGHTS

    stream = {"bodycam_api.events": EVENTS, "drone_files.flights": FLIGHTS}[suite]
    key = stream.key
    con = duckdb.connect()
    con.execute(f"CREATE TABLE main.{stream.table} (source VARCHAR, {', '.join(f'{k} VARCHAR' for k in key)})")
    keys = (["e-1"], ["e-2"]) if stream is EVENTS else (["FL-1", "1"], ["FL-2", "1"])
    con.execute(f"INSERT INTO main.{stream.table} VALUES ('s', {', '.join('?' for _ in key)})", keys[0])
    # (ord and raw as staging has them: flights are observed a slice of lines at a time)
    con.execute(f"CREATE TEMP TABLE stg (ord BIGINT, raw VARCHAR, parse_error VARCHAR, j JSON, "
                f"{', '.join(f'{k} VARCHAR' for k in key)})")
    for i, (row, k) in enumerate(zip((loaded, new), keys)):
        con.execute(f"INSERT INTO stg VALUES (?, ?, NULL, ?, {', '.join('?' for _ in key)})",
                    [i + 1, json.dumps(row), json.dumps(row), *k])
    changes, _ = drift._json_changes(con, "s", stream, "stg", drift.CONTRACT[suite][1])
    assert changes == [change]
