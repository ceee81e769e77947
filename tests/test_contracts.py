"""Each contract suite, on malformed rows of every kind: the right rows, the right reasons."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from vigie import contracts, db
from vigie.sources.bodycam_api import EVENTS
from vigie.sources.drone_files import FLIGHTS, TRACKS
from vigie.sources.lapi_files import QUERIES, READS
from vigie.sources.vms_sql import _BLANK, AUDIT_LOG, CAMERAS, RECORDINGS
from vigie.staging import stage


def reasons(tmp_path: Path, stream, files: dict[str, str | bytes]) -> dict[str, str | None]:
    """location → reason (None for a good row) after staging ``files`` through ``stream``."""
    con = duckdb.connect()
    db._configure(con)
    db.migrate(con)
    landed = []
    for name, content in files.items():
        path = tmp_path / name.replace("/", "_")
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        landed.append((name, path))
    stage(con, stream, landed, "staged")
    return dict(con.execute("SELECT location, reason FROM staged").fetchall())


def test_every_suite_translates_to_sql() -> None:
    for name in ("vms_sql.cameras", "vms_sql.recordings", "vms_sql.audit_log", "bodycam_api.events",
                 "drone_files.flights", "drone_files.tracks", "lapi_files.reads", "lapi_files.queries"):
        assert contracts.checks(name), name
        assert contracts.load_suite(name)["name"] == name


def test_unexpected_rows_expectations_must_state_a_reason() -> None:
    with pytest.raises(ValueError, match="meta.reason"):
        contracts.check_of({"type": "unexpected_rows_expectation",
                            "kwargs": {"unexpected_rows_query": "SELECT * FROM {batch} WHERE x"}})
    with pytest.raises(ValueError, match="no SQL translation"):
        contracts.check_of({"type": "expect_column_mean_to_be_between", "kwargs": {"column": "x"}})


READ_HEADER = "read_id,read_at,camera_id,plate_hash,matched,deleted_at\n"


def test_lapi_reads(tmp_path: Path) -> None:
    got = reasons(tmp_path, READS, {"reads_1.csv": READ_HEADER + "\n".join([
        "r1,2026-01-01T10:00:00+01:00,C1,h,0,",                      # good, deleted_at empty
        "r2,2026-01-01T10:00:00+01:00,C1,h,2,",                      # enum
        "r3,2026-02-30T10:00:00+01:00,C1,h,1,",                      # impossible date
        "r4,2026-01-01T10:00:00,C1,h,1,",                            # naive
        ",2026-01-01T10:00:00Z,C1,h,1,",                             # missing id
        "r6,2026-01-01T10:00:00Z,C1,h,true,2026-01-02",              # enum and a date without time
        "r7,2026-01-01T10:00:00Z,C1,h",                              # too few fields
        "r8,2026-01-01T10:00:00Z,C1,,0,",                            # empty plate_hash is missing
    ]) + "\n"})
    assert got == {
        "reads_1.csv:2": None,
        "reads_1.csv:3": "matched: unknown value '2'",
        "reads_1.csv:4": "read_at: '2026-02-30T10:00:00+01:00' is not a date",
        "reads_1.csv:5": "read_at: '2026-01-01T10:00:00' has no UTC offset",
        "reads_1.csv:6": "read_id: missing",
        "reads_1.csv:7": "matched: unknown value 'true'; deleted_at: '2026-01-02' is not a date",
        "reads_1.csv:8": "expected 6 fields, found 4",
        "reads_1.csv:9": "plate_hash: missing",
    }


def test_lapi_bad_header_quarantines_every_line_and_bad_bytes_only_their_line(tmp_path: Path) -> None:
    got = reasons(tmp_path, READS, {
        "reads_1.csv": "read_id,read_at,camera,plate_hash,matched,deleted_at\nr1,2026-01-01T10:00:00Z,C1,h,0,\nr2,2026-01-01T10:00:00Z,C1,h,0,\n",
        "reads_2.csv": READ_HEADER.encode() + b"r1,2026-01-01T10:00:00Z,C1,\xff\xfe,0,\nr2,2026-01-01T10:00:00Z,C1,h,0,\n",
    })
    assert got["reads_1.csv:2"].startswith("file header is 'read_id,read_at,camera,")
    assert got["reads_1.csv:3"] == got["reads_1.csv:2"]
    assert got["reads_2.csv:2"] == "invalid UTF-8"
    assert got["reads_2.csv:3"] is None


def test_lapi_queries(tmp_path: Path) -> None:
    got = reasons(tmp_path, QUERIES, {"queries_1.csv": "event_id,at,user,read_id,purpose,procedure_ref\n"
                                      "q1,2026-01-01T10:00:00+01:00,,r1,,\n"
                                      "q2,2026-01-01T10:00:00+01:00,u,,lp_theft,PV\n"
                                      "q3,,u,r1,LP_THEFT,\n"})
    # Purpose is an open code: a wrong one is a finding later, never a quarantine.
    assert got == {"queries_1.csv:2": None, "queries_1.csv:3": "read_id: missing", "queries_1.csv:4": "at: missing"}


def _flight(**over) -> str:
    flight = {"flight_id": "FL-1", "revision": 1, "drone_id": "D", "unit": "U", "pilot": "P",
              "authorisation_ref": None, "purpose": "dr2", "takeoff_at": "2026-03-14T15:00:00+01:00",
              "landing_at": "2026-03-14T16:10:00+01:00", "audio_recorded": False, "facial_recognition": False,
              "recordings": [{"recording_id": "FL-1-r1", "interior": False, "deleted_at": None}],
              "consultations": [{"event_id": "c-1", "at": "2026-03-15T09:12:00+01:00", "by": None,
                                 "justification": "SIGNAL_JUD", "recipient": "Parquet"}]}
    flight.update(over)
    return json.dumps(flight)


def test_drone_flights(tmp_path: Path) -> None:
    lines = [
        _flight(),
        _flight(revision="2"),
        _flight(audio_recorded="no"),
        _flight(landing_at="2026-01-17T12:44:56"),
        _flight(recordings=[{"recording_id": "r", "interior": False, "deleted_at": "2026-13-01T00:00:00Z"}]),
        _flight(consultations=[{"event_id": "c", "at": "2026-03-15T09:12:00+01:00", "by": "x", "justification": "JUD"}]),
        '{"flight_id": "FL-9", "revision": ',
        _flight(pilot=""),
        _flight(recordings="none"),
        _flight(revision=2**64 - 1),  # fits no BIGINT: a breach, not a crash when typed
        "",
    ]
    got = reasons(tmp_path, FLIGHTS, {"flights/a.jsonl": "\n".join(lines) + "\n"})
    assert got == {
        "flights/a.jsonl:1": None,
        "flights/a.jsonl:2": 'revision: "2" is not an integer',
        "flights/a.jsonl:3": 'audio_recorded: "no" is not a boolean',
        "flights/a.jsonl:4": "landing_at: '2026-01-17T12:44:56' has no UTC offset",
        "flights/a.jsonl:5": "recordings[0].deleted_at: '2026-13-01T00:00:00Z' is not a date",
        "flights/a.jsonl:6": "consultations[0].recipient: missing",
        "flights/a.jsonl:7": "not valid JSON",
        "flights/a.jsonl:8": "pilot: missing",
        "flights/a.jsonl:9": "recordings: missing or not a list",
        "flights/a.jsonl:10": "revision: 18446744073709551615 is not an integer",
    }


def test_drone_flight_lines_read_once(tmp_path: Path) -> None:
    """A flight line is parsed once for its fields' types and once for their text: what is not
    JSON, JSON that is no object, lenient JSON (NaN, a trailing comma), a repeated key and
    values of every wrong type get the reasons they got when each field was parsed alone."""
    lines = [
        "[1, 2]", "null", '"FL-1"',
        _flight()[:-1] + ', "extra": NaN,}',
        _flight()[:-1] + ', "flight_id": "FL-2"}',  # the first of a repeated key is read
        _flight(flight_id=7, drone_id=None, unit=["U"], pilot={"id": "P"}, purpose=True),
        _flight(revision=1.5, audio_recorded=None, facial_recognition=0),
        _flight(revision=-3, takeoff_at=20260314, landing_at=None),
        _flight(flight_id=""),
    ]
    got = reasons(tmp_path, FLIGHTS, {"flights/b.jsonl": "\n".join(lines) + "\n"})
    assert got == {
        "flights/b.jsonl:1": "not a JSON object",
        "flights/b.jsonl:2": "not a JSON object",
        "flights/b.jsonl:3": "not a JSON object",
        "flights/b.jsonl:4": None,
        "flights/b.jsonl:5": None,
        "flights/b.jsonl:6": ("flight_id: 7 is not a string; drone_id: missing; unit: [\"U\"] is not a string; "
                              'pilot: {"id":"P"} is not a string; purpose: true is not a string'),
        "flights/b.jsonl:7": ("revision: 1.5 is not an integer; audio_recorded: null is not a boolean; "
                              "facial_recognition: 0 is not a boolean"),
        "flights/b.jsonl:8": ("takeoff_at: 20260314 is not a string; takeoff_at: '20260314' is not a date; "
                              "landing_at: missing"),
        "flights/b.jsonl:9": "flight_id: missing",
    }


def test_drone_tracks(tmp_path: Path) -> None:
    got = reasons(tmp_path, TRACKS, {"tracks/FL-1.csv": "t,lat,lon,alt_m\n2026-03-14T15:00:00+01:00,45.7,4.8,37\n"
                                     "2026-03-14T15:00:00,45.7,4.8,37\n2026-03-14T15:01:00Z,north,4.8,\n"})
    assert got == {
        "tracks/FL-1.csv:2": None,
        "tracks/FL-1.csv:3": "t: '2026-03-14T15:00:00' has no UTC offset",
        "tracks/FL-1.csv:4": "lat: 'north' is not a number; alt_m: missing",
    }


def _event(seq, **over) -> dict:
    event = {"seq": seq, "id": f"e-{seq}", "at": "2026-03-01T10:04:05.120+01:00",
             "device": {"serial": "BWC-1", "kind": "BWC"}, "actor": {"badge": None, "unit": "CSP"},
             "action": "evidence.viewed", "evidence_id": "ev-1", "purpose": None, "justification": None,
             "procedure_ref": None, "recipient": None}
    event.update(over)
    return event


def test_bodycam_events(tmp_path: Path) -> None:
    page = {"events": [
        _event(1),
        _event(2, at="2026-02-24T10:57:07.559"),
        _event(3, action="Evidence.Viewed"),
        _event(4, device={"serial": "X", "kind": "DASH"}),
        _event(5, device={"serial": "X", "kind": "bwc"}),
        _event("6"),
        _event(2**64 - 1, id="e-huge"),
        _event(7, actor={"badge": 42, "unit": "CSP"}),
        _event(8, id=""),
        _event(None, id="e-noseq"),
        "not an event",
    ], "next": None}
    got = reasons(tmp_path, EVENTS, {"pages.jsonl": json.dumps(page) + "\n"})
    assert got == {
        "seq:1": None,
        "seq:2": "at: '2026-02-24T10:57:07.559' has no UTC offset",
        "seq:3": "action: unknown value 'Evidence.Viewed'",
        "seq:4": "device.kind: unknown value 'DASH'",
        "seq:5": "device.kind: unknown value 'bwc'",
        "seq:6": 'seq: "6" is not an integer',
        "seq:18446744073709551615": "seq: missing; seq: 18446744073709551615 is not an integer",
        "seq:7": "actor.badge: 42 is not a string",
        "seq:8": "id: missing",
        "id:e-noseq": "seq: missing",
        "pages.jsonl:1#11": "event is not a JSON object",
    }


def test_bodycam_events_that_are_not_objects_keep_their_text(tmp_path: Path) -> None:
    """Each event is listed from one parse of its page and told an object by its first
    character: what is not an object is quarantined with its text as DuckDB wrote it, a null
    event with none (as when the list was cast, so a re-delivery is still a duplicate)."""
    page = ('{"events": [null, [1, {"a": 2}], 3.5, "{not}", true, {"seq" : 1, "id": "e-1"}, { }, '
            '{"k\\u00e9": "\\"}"}], "next": null}\n')
    con = duckdb.connect()
    db._configure(con)
    db.migrate(con)
    (tmp_path / "pages.jsonl").write_text(page)
    stage(con, EVENTS, [("pages.jsonl", tmp_path / "pages.jsonl")], "staged")
    got = {loc: (raw, reason.split(";")[0] if reason else reason) for loc, raw, reason in
           con.execute("SELECT location, raw, reason FROM staged ORDER BY ord").fetchall()}
    assert got == {
        "pages.jsonl:1#1": (None, "event is not a JSON object"),
        "pages.jsonl:1#2": ('[1,{"a":2}]', "event is not a JSON object"),
        "pages.jsonl:1#3": ("3.5", "event is not a JSON object"),
        "pages.jsonl:1#4": ('"{not}"', "event is not a JSON object"),
        "pages.jsonl:1#5": ("true", "event is not a JSON object"),
        "seq:1": ('{"seq":1,"id":"e-1"}', "at: missing"),
        "pages.jsonl:1#7": ("{}", "seq: missing"),
        "pages.jsonl:1#8": ('{"k\u00e9":"\\"}"}', "seq: missing"),  # as UTF-8, as DuckDB writes it
    }


def test_bodycam_pages_that_hold_no_events_are_quarantined_not_lost(tmp_path: Path) -> None:
    pages = "\n".join([json.dumps({"events": [_event(1)], "next": "x"}), '{"events": {"seq": 2}, "next": "y"}',
                       '{"events": [ broken', json.dumps({"events": [], "next": None}),
                       '[{"events": []}]', '"events"', '{"events": null}', '{"events": [1], "next": "z"} trailing']) + "\n"
    got = reasons(tmp_path, EVENTS, {"pages.jsonl": pages})
    assert got == {"seq:1": None, "pages.jsonl:2": "page has no events list", "pages.jsonl:3": "page is not valid JSON",
                   "pages.jsonl:5": "page has no events list", "pages.jsonl:6": "page has no events list",
                   "pages.jsonl:7": "page has no events list", "pages.jsonl:8": "page is not valid JSON"}


def _rows(rows: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def test_vms_tables(tmp_path: Path) -> None:
    rec = {"recording_id": "R1", "camera_id": "C1", "started_at": "2026-01-06T09:56:26", "ended_at": "2026-01-06 11:25:45",
           "deleted_at": None, "hold_set_at": None, "hold_ref": None, "hold_released_at": None, "updated_at": "2026-01-06T11:25:46Z"}
    got = reasons(tmp_path, RECORDINGS, {"recordings.jsonl": _rows([
        rec, rec | {"recording_id": "R2", "ended_at": None}, rec | {"recording_id": "R3", "deleted_at": "yesterday"}])})
    assert got == {"recordings:R1": None, "recordings:R2": "ended_at: missing",
                   "recordings:R3": "deleted_at: 'yesterday' is not a date"}

    log = {"log_id": 1, "logged_at": "2026-01-08T09:24:35", "user_login": None, "action": "PLAYBACK", "camera_id": None,
           "recording_id": None, "justification": None, "procedure_ref": None, "recipient": None}
    got = reasons(tmp_path, AUDIT_LOG, {"audit_log.jsonl": _rows([
        log, log | {"log_id": 2, "action": "Playback"}, log | {"log_id": 3, "logged_at": ""}, log | {"log_id": 4, "action": "SNAPSHOT"}])})
    assert got == {"audit_log:1": None, "audit_log:2": "action: unknown value 'Playback'",
                   "audit_log:3": "logged_at: missing", "audit_log:4": "action: unknown value 'SNAPSHOT'"}

    got = reasons(tmp_path, CAMERAS, {"cameras.jsonl": _rows([
        {"camera_id": "C1", "site": "S", "authorisation_ref": None, "lat": 45.7, "lon": 4.8},
        {"camera_id": "C2", "site": "S", "authorisation_ref": "A", "lat": "n/a", "lon": 4.8}])})
    assert got == {"cameras:C1": None, "cameras:C2": "lat: 'n/a' is not a number"}


def test_vms_lines_that_are_not_json_objects(tmp_path: Path) -> None:
    """A VMS line is parsed once for its fields; only a line left without them is checked for
    JSON: broken JSON (cut short, two objects, trailing text) is 'not valid JSON', JSON that
    is no object has every field missing, a blank line (text that was not UTF-8 at the source)
    says so, and DuckDB's lenient JSON (NaN, a trailing comma) reads as it did."""
    rec = {"recording_id": "R1", "camera_id": "C1", "started_at": "2026-01-06T09:56:26Z",
           "ended_at": "2026-01-06T11:25:45Z", "deleted_at": None, "hold_set_at": None, "hold_ref": None,
           "hold_released_at": None, "updated_at": "2026-01-06T11:25:46Z"}
    lines = [json.dumps(rec), '{"recording_id": "R2", "camera_id": ', json.dumps(rec | {"recording_id": "R3"}) + " x",
             json.dumps(rec | {"recording_id": "R4"}) * 2, "[1, 2]", "", '"R6"',
             json.dumps(rec | {"recording_id": "R7"})[:-1] + ', "extra": NaN,}']
    got = reasons(tmp_path, RECORDINGS, {"recordings.jsonl": "\n".join(lines) + "\n"})
    missing = ("recording_id: missing; camera_id: missing; started_at: missing; ended_at: missing; "
               "updated_at: missing")
    assert got == {"recordings:R1": None, "recordings:recordings.jsonl:2": "not valid JSON",
                   "recordings:recordings.jsonl:3": "not valid JSON", "recordings:recordings.jsonl:4": "not valid JSON",
                   "recordings:recordings.jsonl:5": missing, "recordings:recordings.jsonl:6": _BLANK,
                   "recordings:recordings.jsonl:7": missing, "recordings:R7": None}


def test_every_rule_is_one_expectation_of_one_compliance_suite() -> None:
    from vigie.rules import catalogue

    seen = []
    for suite in contracts.COMPLIANCE_SUITES:
        for expectation in contracts.load_suite(suite)["expectations"]:
            assert expectation["kwargs"]["unexpected_rows_query"] == (
                f"SELECT * FROM {{batch}} WHERE rule_code = '{expectation['meta']['rule_code']}'")
            seen.append(expectation["meta"]["rule_code"])
    assert sorted(seen) == sorted(r.code for r in catalogue())


def test_bodycam_pages_staged_a_slice_at_a_time_give_the_same_rows(tmp_path: Path, monkeypatch) -> None:
    """Pages are unnested a few MB at a time (vigie/staging.py): with one page per slice, the
    staged rows, their order and their reasons are those of a single slice."""
    from vigie import staging

    pages = "\n".join([
        json.dumps({"events": [_event(1), _event(2, action="Evidence.Viewed")], "next": "a"}),
        '{"events": [ broken',
        "",
        json.dumps({"events": [_event(3), "not an event"], "next": "b"}),
        '{"events": {"seq": 9}, "next": "c"}',
        json.dumps({"events": [_event(4)], "next": None}),
    ]) + "\n"

    def staged(name: str) -> list[tuple]:
        path = tmp_path / name
        path.write_text(pages)
        con = duckdb.connect()
        db._configure(con)
        db.migrate(con)
        stage(con, EVENTS, [("pages.jsonl", path)], "staged")
        return con.execute("SELECT ord, location, reason FROM staged ORDER BY ord").fetchall()

    whole = staged("one.jsonl")
    monkeypatch.setattr(staging, "SLICE_BYTES", 1)  # every page a slice of its own
    sliced = staged("many.jsonl")
    assert sliced == whole
    assert [loc for _, loc, _ in whole] == ["seq:1", "seq:2", "pages.jsonl:2", "seq:3", "pages.jsonl:4#2",
                                            "pages.jsonl:5", "seq:4"]


def test_flights_staged_a_slice_at_a_time_give_the_same_rows_and_shape(tmp_path: Path, monkeypatch) -> None:
    """Long flight lines are staged, checked and observed for drift a few MB at a time
    (`Stream.sliced`): with every line counted long and each line a slice of its own, the
    staged rows, their reasons and typed values, and the shape drift sees are those of one
    statement over all of them, across two files."""
    from vigie import drift, staging

    first = [_flight(), _flight(flight_id="FL-2", audio_recorded="no"), '{"flight_id": "FL-9", "revision": ', "",
             _flight(flight_id="FL-3", consultations=[{"event_id": f"c-{i}", "at": "2026-03-15T09:12:00+01:00",
                                                       "by": "P", "justification": "J", "recipient": "R"}
                                                      for i in range(40)]),
             json.dumps(["not", "an", "object"])]
    second = [_flight(flight_id="FL-4", recordings=[{"recording_id": "r", "interior": "yes", "deleted_at": None}]),
              _flight(flight_id="FL-5", facial_recognition=True, extra={"new": 1})]

    def staged(sub: str) -> tuple[list[tuple], tuple]:
        folder = tmp_path / sub
        folder.mkdir()
        (folder / "a.jsonl").write_text("\n".join(first) + "\n")
        (folder / "b.jsonl").write_text("\n".join(second) + "\n")
        con = duckdb.connect()
        db._configure(con)
        db.migrate(con)
        stage(con, FLIGHTS, [("a.jsonl", folder / "a.jsonl"), ("b.jsonl", folder / "b.jsonl")], "staged")
        rows = con.execute(f"SELECT ord, location, reason, {FLIGHTS.typed_sql} FROM staged ORDER BY ord").fetchall()
        shape = drift._json_changes(con, "s", FLIGHTS, "staged", drift.CONTRACT[FLIGHTS.suite][1])
        return rows, shape

    whole = staged("whole")
    monkeypatch.setattr(staging, "SLICE_BYTES", 1)  # every line long, every line a slice
    sliced = staged("sliced")
    assert sliced == whole
    rows, shape = whole
    assert [(loc, reason) for _, loc, reason, *_ in rows] == [
        ("a.jsonl:1", None), ("a.jsonl:2", 'audio_recorded: "no" is not a boolean'), ("a.jsonl:3", "not valid JSON"),
        ("a.jsonl:5", None), ("a.jsonl:6", "not a JSON object"),
        ("b.jsonl:1", 'recordings[0].interior: "yes" is not a boolean'), ("b.jsonl:2", None)]
    assert len(json.loads(rows[3][-1])) == 40  # FL-3's consultations, typed from the staged lists
    assert shape[0] == ["flights: field 'extra' is new"]


def test_vms_recordings_in_order_and_holds_released_after_set(tmp_path: Path) -> None:
    """sources.md: a recording ending before it starts, or a release before (or without) its
    hold, is quarantined; the same instant is in order (naive columns are UTC)."""
    rec = {"recording_id": "R", "camera_id": "C1", "started_at": "2026-01-06T10:00:00", "ended_at": "2026-01-06T11:00:00",
           "deleted_at": None, "hold_set_at": None, "hold_ref": None, "hold_released_at": None, "updated_at": "2026-01-07T00:00:00"}
    got = reasons(tmp_path, RECORDINGS, {"recordings.jsonl": _rows([
        rec | {"recording_id": "ok"},
        rec | {"recording_id": "instant", "ended_at": "2026-01-06T10:00:00"},                  # zero length: in order
        rec | {"recording_id": "reversed", "ended_at": "2026-01-06T09:59:59"},
        rec | {"recording_id": "offset", "ended_at": "2026-01-06T10:30:00+01:00"},             # 09:30Z: before 10:00Z
        rec | {"recording_id": "released", "hold_set_at": "2026-01-08T00:00:00", "hold_ref": "PV",
               "hold_released_at": "2026-01-08T00:00:00"},                                      # same instant: in order
        rec | {"recording_id": "early", "hold_set_at": "2026-01-08T00:00:00", "hold_ref": "PV",
               "hold_released_at": "2026-01-07T23:59:59"},
        rec | {"recording_id": "nohold", "hold_released_at": "2026-01-08T00:00:00"}])})
    assert got == {
        "recordings:ok": None, "recordings:instant": None, "recordings:released": None,
        "recordings:reversed": "ended_at: '2026-01-06T09:59:59' is before started_at '2026-01-06T10:00:00'",
        "recordings:offset": "ended_at: '2026-01-06T10:30:00+01:00' is before started_at '2026-01-06T10:00:00'",
        "recordings:early": "hold_released_at: '2026-01-07T23:59:59' is before hold_set_at '2026-01-08T00:00:00'",
        "recordings:nohold": "hold_released_at: '2026-01-08T00:00:00' without hold_set_at",
    }


def test_coordinates_out_of_range_are_quarantined(tmp_path: Path) -> None:
    cam = {"camera_id": "C", "site": "S", "authorisation_ref": "A", "lat": 45.7, "lon": 4.8}
    got = reasons(tmp_path, CAMERAS, {"cameras.jsonl": _rows([
        cam | {"camera_id": "edges", "lat": -90, "lon": 180},
        cam | {"camera_id": "north", "lat": 90.0001},
        cam | {"camera_id": "west", "lon": -180.5},
        cam | {"camera_id": "swapped", "lat": 4.8, "lon": 145.7},
        cam | {"camera_id": "both", "lat": 100, "lon": 200}])})
    assert got == {"cameras:edges": None, "cameras:swapped": None,
                   "cameras:north": "lat: '90.0001' is outside [-90, 90]",
                   "cameras:west": "lon: '-180.5' is outside [-180, 180]",
                   "cameras:both": "lat: '100' is outside [-90, 90]; lon: '200' is outside [-180, 180]"}
    got = reasons(tmp_path, TRACKS, {"tracks/FL-1.csv": "t,lat,lon,alt_m\n"
                                     "2026-03-14T15:00:00Z,90,-180,37\n2026-03-14T15:00:01Z,-91,4.8,37\n"
                                     "2026-03-14T15:00:02Z,45.7,181,37\n2026-03-14T15:00:03Z,NaN,4.8,37\n"})
    assert got == {"tracks/FL-1.csv:2": None, "tracks/FL-1.csv:3": "lat: '-91' is outside [-90, 90]",
                   "tracks/FL-1.csv:4": "lon: '181' is outside [-180, 180]",
                   "tracks/FL-1.csv:5": "lat: 'NaN' is outside [-90, 90]"}


def test_a_flight_landing_before_takeoff_is_quarantined(tmp_path: Path) -> None:
    lines = [_flight(takeoff_at="2026-03-14T15:00:00+01:00", landing_at="2026-03-14T15:00:00+01:00"),   # same instant
             _flight(takeoff_at="2026-03-14T15:00:00+01:00", landing_at="2026-03-14T14:59:59+01:00"),
             _flight(takeoff_at="2026-03-14T15:00:00+01:00", landing_at="2026-03-14T15:30:00+02:00")]  # 13:30Z
    got = reasons(tmp_path, FLIGHTS, {"flights/a.jsonl": "\n".join(lines) + "\n"})
    assert got == {
        "flights/a.jsonl:1": None,
        "flights/a.jsonl:2": "landing_at: '2026-03-14T14:59:59+01:00' is before takeoff_at '2026-03-14T15:00:00+01:00'",
        "flights/a.jsonl:3": "landing_at: '2026-03-14T15:30:00+02:00' is before takeoff_at '2026-03-14T15:00:00+01:00'",
    }
