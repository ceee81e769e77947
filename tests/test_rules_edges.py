"""The rules at their edges (issue #11): settings other than the defaults, versions of the
limits, LOG-01, identifiers shared by two sources, late and out-of-order data, as-of cuts.

Every expected instant is derived here from domain.md, not read from a sample.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from tests.mini_estate import MiniEstate, auth
from tests.test_rules_drones_lapi import SQUARE, north_of_top
from vigie import rules

PERIMETER = {"type": "Polygon", "coordinates": [SQUARE]}


def iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def naive(t: datetime) -> str:  # a VMS column: UTC without an offset
    return t.astimezone(timezone.utc).replace(tzinfo=None).isoformat()


# --- grace_hours and perimeter_tolerance_m other than their defaults ---------------------

GRACE = 6.5          # neither the default 24 nor a whole number of hours
TOLERANCE = 120.0    # neither the default 50
VP_END = datetime(2026, 3, 1, tzinfo=timezone.utc)
VP_LAWFUL = VP_END + timedelta(days=10) + timedelta(hours=GRACE)        # 10 x 24 h, shorter than the month
BWC_STOP = datetime(2026, 1, 31, 9, 30, tzinfo=timezone.utc)            # 10:30 in Paris
BWC_LAWFUL = datetime(2026, 2, 28, 9, 30, tzinfo=timezone.utc) + timedelta(hours=GRACE)  # + 1 calendar month
SEC = timedelta(seconds=1)


@pytest.fixture(scope="module")
def settings_estate(tmp_path_factory: pytest.TempPathFactory) -> MiniEstate:
    e = MiniEstate(tmp_path_factory.mktemp("settings"), grace_hours=GRACE, tolerance_m=TOLERANCE)
    e.register += [auth("A-10", "VP", retention_days=10),
                   auth("AP-D", "DRONE", purposes=["DR1"], perimeter=PERIMETER)]
    e.cameras.append({"camera_id": "C10", "site": "S", "authorisation_ref": "A-10", "lat": 45.7, "lon": 4.8})
    start = naive(VP_END - timedelta(hours=1))
    e.recording("R-ON-TIME", "C10", start, naive(VP_END), deleted_at=naive(VP_LAWFUL))
    e.recording("R-LATE", "C10", start, naive(VP_END), deleted_at=naive(VP_LAWFUL + SEC))
    e.recording("R-HELD", "C10", start, naive(VP_END), hold_set_at=naive(VP_LAWFUL - SEC), hold_ref="PV-1")
    e.recording("R-HELD-TOO-LATE", "C10", start, naive(VP_END), hold_set_at=naive(VP_LAWFUL), hold_ref="PV-2")
    e.log(1, naive(VP_LAWFUL), "PLAYBACK", recording_id="R-ON-TIME", justification="JUD")
    e.log(2, naive(VP_LAWFUL + SEC), "PLAYBACK", recording_id="R-ON-TIME", justification="JUD")
    for evidence, deleted in (("ev-ON-TIME", BWC_LAWFUL), ("ev-LATE", BWC_LAWFUL + SEC)):
        e.event("recording.started", BWC_STOP.isoformat(), evidence, purpose="BWC_EVID")
        e.event("recording.stopped", BWC_STOP.isoformat(), evidence)
        e.event("evidence.deleted", deleted.isoformat(), evidence)
    take, land = "2026-03-10T10:00:00+01:00", "2026-03-10T11:00:00+01:00"
    e.flight("F-INSIDE-TOLERANCE", take, land, authorisation_ref="AP-D",
             recordings=[{"recording_id": "r-on-time", "interior": False, "deleted_at": "2026-03-17T16:30:00Z"},
                         {"recording_id": "r-late", "interior": False, "deleted_at": "2026-03-17T16:30:01Z"}])
    e.flight("F-BEYOND", take, land, authorisation_ref="AP-D")
    t = "2026-03-10T10:30:00+01:00"
    e.tracks["F-INSIDE-TOLERANCE"] = [(t, *north_of_top(80), 30), (t, *north_of_top(TOLERANCE - 0.1), 30)]
    e.tracks["F-BEYOND"] = [(t, *north_of_top(TOLERANCE + 0.1), 30)]
    e.load()
    return e


def test_grace_hours_other_than_24_at_its_edge(settings_estate: MiniEstate) -> None:
    found = settings_estate.findings("2026-04-20T12:00:00+02:00")
    assert ("RET-01", "R-ON-TIME") not in found
    assert found[("RET-01", "R-LATE")]["occurred_at"] == iso(VP_LAWFUL)
    assert ("RET-01", "R-HELD") not in found                       # set a second before deadline + grace
    assert found[("RET-01", "R-HELD-TOO-LATE")]["occurred_at"] == iso(VP_LAWFUL)
    assert ("ACC-03", "1") not in found and ("ACC-03", "2") in found
    assert ("RET-01", "ev-ON-TIME") not in found
    assert found[("RET-01", "ev-LATE")]["occurred_at"] == iso(BWC_LAWFUL)
    # Drone: landing 10:00Z + 7 x 24 h + 6.5 h = 17 March 16:30Z.
    assert ("RET-01", "r-on-time") not in found and ("RET-01", "r-late") in found


def test_grace_hours_moves_presence_at_as_of(settings_estate: MiniEstate) -> None:
    # R-HELD-TOO-LATE is present: on time exactly at deadline + grace, late a second after.
    assert ("RET-01", "R-HELD-TOO-LATE") not in settings_estate.findings(VP_LAWFUL.isoformat())
    assert ("RET-01", "R-HELD-TOO-LATE") in settings_estate.findings((VP_LAWFUL + SEC).isoformat())


def test_perimeter_tolerance_other_than_50_at_its_edge(settings_estate: MiniEstate) -> None:
    found = settings_estate.findings("2026-04-20T12:00:00+02:00")
    aut03 = {s for c, s in found if c == "AUT-03"}
    assert aut03 == {"F-BEYOND"}  # 80 m and 119.9 m are within 120 m; 120.1 m is not
    assert "120" in found[("AUT-03", "F-BEYOND")]["detail"]


# --- versions of the limits: before the first, and a second one ---------------------------

FIRST = date(2026, 2, 1)    # every parameter's first version, a local midnight in Paris
SECOND = date(2026, 3, 1)   # a second version of lapi_nomatch_days and of the DRONE purposes


def paris_midnight(d: date) -> datetime:
    from zoneinfo import ZoneInfo
    return datetime(d.year, d.month, d.day, tzinfo=ZoneInfo("Europe/Paris")).astimezone(timezone.utc)


def versioned_parameters() -> dict:
    shipped = yaml.safe_load(rules.PARAMETERS.read_text())
    params = {k: [dict(v, valid_from=FIRST) for v in shipped[k]]
              for k in ("limits", "purposes", "drone_consultation_justification")}
    params["limits"].append({"name": "lapi_nomatch_days", "value": 10, "unit": "day", "legal_ref": "v2",
                             "valid_from": SECOND})
    params["purposes"].append({"device_class": "DRONE", "legal_ref": "v2", "valid_from": SECOND,
                               "codes": ["DR1", "DR2", "DR3", "DR4", "DR5", "DR7"]})
    return params


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> MiniEstate:
    e = MiniEstate(tmp_path_factory.mktemp("versions"), parameters=versioned_parameters())
    e.register += [auth("A-10", "VP", retention_days=10), auth("AP-D", "DRONE", purposes=["DR1", "DR6", "DR7", "DR9"])]
    e.cameras.append({"camera_id": "C10", "site": "S", "authorisation_ref": "A-10", "lat": 45.7, "lon": 4.8})
    # January: everything here is overdue or not allowed once a first version exists.
    e.recording("R-JAN", "C10", "2026-01-01T00:00:00", "2026-01-01T01:00:00")
    e.event("recording.started", "2026-01-01T00:00:00Z", "ev-VEH", "VEH", purpose="VEH_SAFETY")
    e.event("recording.stopped", "2026-01-01T01:00:00Z", "ev-VEH", "VEH")
    e.veh_view = e.event("evidence.viewed", "2026-01-20T00:00:00Z", "ev-VEH", "VEH", justification="JUD")
    e.flight("F-JAN-DR9", "2026-01-10T10:00:00+01:00", "2026-01-10T11:00:00+01:00", authorisation_ref="AP-D",
             purpose="DR9", recordings=[{"recording_id": "r-jan", "interior": True, "deleted_at": None}],
             consultations=[{"event_id": "c-jan", "at": "2026-01-12T10:00:00+01:00", "by": "P",
                             "justification": "JUD", "recipient": "X"}])
    e.flight("F-JAN-NOPURPOSE", "2026-01-10T10:00:00+01:00", "2026-01-10T11:00:00+01:00", authorisation_ref="AP-D",
             purpose=None)
    e.reads["reads_2026-01-01.csv"] = [{"read_id": "rd-jan", "read_at": "2026-01-01T00:00:00Z", "camera_id": "L",
                                        "plate_hash": "h", "matched": "0", "deleted_at": ""}]
    e.queries["queries_2026-01-20.csv"] = [{"event_id": "q-jan", "at": "2026-01-20T00:00:00Z", "user": "U",
                                            "read_id": "rd-jan", "purpose": "LP_PARKING", "procedure_ref": "PV"}]
    # February: judged differently by the first and the second versions.
    e.reads["reads_2026-02-15.csv"] = [{"read_id": "rd-feb", "read_at": "2026-02-15T00:00:00Z", "camera_id": "L",
                                        "plate_hash": "h", "matched": "0", "deleted_at": ""}]
    e.flight("F-DR7", "2026-02-20T10:00:00+01:00", "2026-02-20T11:00:00+01:00", authorisation_ref="AP-D", purpose="DR7")
    e.flight("F-DR6", "2026-02-20T10:00:00+01:00", "2026-02-20T11:00:00+01:00", authorisation_ref="AP-D", purpose="DR6")
    e.load()
    return e


PARAMETER_RULES = {"RET-01", "RET-04", "ACC-03", "ACC-05", "PUR-01"}


def test_nothing_is_found_before_a_parameters_first_version(versions: MiniEstate) -> None:
    first = paris_midnight(FIRST)
    assert iso(first) == "2026-01-31T23:00:00Z"
    before = versions.findings((first - SEC).isoformat())
    at = versions.findings(first.isoformat())
    assert not {c for c, _ in before} & PARAMETER_RULES
    assert ("PUR-02", "F-JAN-NOPURPOSE") in before  # a rule without parameters is unaffected
    for key in [("RET-01", "R-JAN"), ("RET-01", "ev-VEH"), ("ACC-03", versions.veh_view["id"]), ("RET-01", "rd-jan"),
                ("RET-01", "r-jan"), ("RET-04", "r-jan"), ("ACC-05", "c-jan"), ("PUR-01", "F-JAN-DR9"), ("PUR-01", "q-jan")]:
        assert key in at, key
    # R-JAN: 10 x 24 h from the register (shorter than the month), counted once the month limit exists.
    assert at[("RET-01", "R-JAN")]["occurred_at"] == "2026-01-12T01:00:00Z"


def test_a_second_version_applies_from_its_valid_from_local_midnight(versions: MiniEstate) -> None:
    second = paris_midnight(SECOND)
    assert iso(second) == "2026-02-28T23:00:00Z"
    before, at, later = (versions.findings(t.isoformat()) for t in (second - SEC, second, second + timedelta(days=10)))
    # rd-feb without match: 15 x 24 h + grace = 3 March (first version); 10 x 24 h + grace = 26 February (second).
    assert ("RET-01", "rd-feb") not in before
    assert at[("RET-01", "rd-feb")]["occurred_at"] == "2026-02-26T00:00:00Z"
    assert later[("RET-01", "rd-feb")]["occurred_at"] == "2026-02-26T00:00:00Z"
    # The DRONE purpose list: DR7 added, DR6 removed by the second version.
    assert ("PUR-01", "F-DR7") in before and ("PUR-01", "F-DR6") not in before
    assert ("PUR-01", "F-DR7") not in at and ("PUR-01", "F-DR6") in at
    assert ("PUR-01", "F-DR6") in later and ("PUR-01", "F-DR9") not in later  # F-DR9 was never there
    assert ("PUR-01", "F-JAN-DR9") in later


def test_limits_valid_from_a_date_is_a_local_midnight(versions: MiniEstate, tmp_path: Path) -> None:
    import duckdb

    from vigie import db
    from vigie.config import load_settings

    settings = load_settings(versions.root / "vigie.yml")
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        db._configure(con)
        got = con.execute("SELECT DISTINCT vg_iso(valid_from) FROM rule_limits ORDER BY 1").fetchall()
    assert got == [(iso(paris_midnight(FIRST)),), (iso(paris_midnight(SECOND)),)]


# --- LOG-01 and identifiers shared by two sources ------------------------------------------

@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> MiniEstate:
    e = MiniEstate(tmp_path_factory.mktemp("logs"))
    L = e.log
    L(3, "2026-02-01T00:00:00", "LOGIN")                       # the first number: nothing before it
    L(4, "2026-02-01T00:01:00", "LOGIN")
    L(5, "2026-02-01T00:02:00", "PLAYBACK", recording_id="R", justification=None)  # ACC-01, id shared with vms2
    L(7, "2026-02-01T00:03:00", "LOGIN")                       # 6 missing: vms:6-6
    L(8, None, "LOGIN")                                        # quarantined, no time: occupies 8
    L(10, "2026-02-01T00:05:00", "LOGIN")                      # 9 missing after a row without time
    L(11, "2026-02-01T00:06:00", "Playback")                   # quarantined: fills 11
    L(12, "2026-02-01T00:07:00", "LOGIN")
    vms2 = e.vms2["audit_log"]
    L(1, "2026-02-01T00:00:00", "LOGIN", table=vms2)
    L(2, "2026-02-01T00:01:00", "LOGIN", table=vms2)
    L(5, "2026-02-01T00:02:00", "PLAYBACK", table=vms2, recording_id="R", justification=None)  # 3-4 missing
    # Body cameras: e-2 delivered again with other content (another seq, no offset: quarantined),
    # e-3 delivered again with another seq (a conflicting duplicate): neither number counts.
    ev = e.event
    for n in (1, 2, 3):
        ev("evidence.deleted", f"2026-02-01T00:0{n}:00Z", "ev-1", seq=n, id=f"e-{n}")
    ev("evidence.deleted", "2026-02-01T00:02:00", "ev-1", seq=5, id="e-2")
    ev("evidence.deleted", "2026-02-01T00:06:00Z", "ev-1", seq=6, id="e-6")
    ev("evidence.deleted", "2026-02-01T00:03:00Z", "ev-2", seq=8, id="e-3")
    ev("evidence.deleted", "2026-02-01T00:09:00Z", "ev-1", seq=9, id="e-9")
    e.load()
    return e


def test_log_01_numbers_gaps_and_context(logs: MiniEstate) -> None:
    found = logs.findings("2026-04-20T12:00:00+02:00")
    gaps = {(src, s) for c, src, s in found.triples() if c == "LOG-01"}
    assert gaps == {("vms", "vms:6-6"), ("vms", "vms:9-9"), ("vms2", "vms2:3-4"), ("cams", "cams:4-5"), ("cams", "cams:7-8")}
    single = found[("LOG-01", "vms:6-6")]
    assert single["occurred_at"] == "2026-02-01T00:02:00Z" and single["device_class"] == "VP"  # the time of 5
    untimed = found[("LOG-01", "vms:9-9")]  # the row before the gap (8) has no readable time
    assert untimed["occurred_at"] in ("", None)
    assert untimed["device_class"] == "VP" and untimed["holder"] == "vms" and "8" in untimed["detail"]
    assert found[("LOG-01", "vms2:3-4")]["holder"] == "VMS2 holder"
    assert found[("LOG-01", "cams:4-5")]["device_class"] == ""
    assert ("audit_log:8", "logged_at: missing") in logs.quarantine()


def test_the_same_id_in_two_sources_gives_two_findings(logs: MiniEstate) -> None:
    found = logs.findings("2026-04-20T12:00:00+02:00")
    acc01 = found.where(("ACC-01", "5"))
    assert [(f["source"], f["holder"]) for f in acc01] == [("vms", "vms"), ("vms2", "VMS2 holder")]  # sorted by source
    with pytest.raises(KeyError):
        found[("ACC-01", "5")]
    assert found[("ACC-01", "vms2", "5")]["detail"] == "consultation without justification"


# --- late data, revisions, corrections, known-at ------------------------------------------

@pytest.fixture(scope="module")
def timeline(tmp_path_factory: pytest.TempPathFactory):
    e = MiniEstate(tmp_path_factory.mktemp("timeline"))
    e.register += [auth("AP-D", "DRONE", purposes=["DR1", "DR9"], perimeter=PERIMETER)]
    e.cameras.append({"camera_id": "C-L", "site": "S", "authorisation_ref": "A-LATE", "lat": 45.7, "lon": 4.8})
    e.recording("R-L", "C-L", "2026-03-01T00:00:00", "2026-03-01T01:00:00", deleted_at="2026-03-02T00:00:00")
    take, land = "2026-03-10T10:00:00+01:00", "2026-03-10T11:00:00+01:00"
    # Revisions out of order in a file: the highest wins (revision 2's purpose is not allowed).
    e.flight("F-R", take, land, authorisation_ref="AP-D", purpose="DR0", revision=2)
    e.flight("F-R", take, land, authorisation_ref="AP-D", purpose="DR1", revision=1)
    e.flight("F-L", take, land, authorisation_ref="AP-D", audio_recorded=True, revision=3)
    e.flight("F-T", take, land, authorisation_ref="AP-D")  # its track comes later
    read = {"read_id": "rd-x", "read_at": "2026-01-01T00:00:00Z", "camera_id": "L", "plate_hash": "h", "matched": "0"}
    e.reads["reads_2026-01-01.csv"] = [read | {"deleted_at": ""}]
    e.reads["reads_2026-01-02.csv"] = [read | {"deleted_at": "2026-01-10T00:00:00Z"}]  # corrected: on time
    e.load()
    first = e.findings("2026-04-20T12:00:00+02:00")
    t1 = datetime.now(timezone.utc)
    time.sleep(0.01)
    e.register.append(auth("A-LATE", "VP"))
    e.flights.append(e.flights[2] | {"revision": 2, "audio_recorded": False})  # a late, lower revision
    e.tracks["F-T"] = [("2026-03-10T10:30:00+01:00", *north_of_top(200), 30)]
    e.reads["reads_2026-01-03.csv"] = [read | {"deleted_at": ""}]  # the correction undone
    e.load()
    return e, first, t1


def test_revisions_in_any_order_the_highest_wins(timeline) -> None:
    e, first, _ = timeline
    now = e.findings("2026-04-20T12:00:00+02:00")
    for found in (first, now):
        assert ("PUR-01", "F-R") in found
        assert ("PRO-01", "F-L") in found  # revision 2 came late: revision 3 still wins


def test_a_track_arriving_after_its_flight(timeline) -> None:
    e, first, t1 = timeline
    assert ("AUT-03", "F-T") not in first
    assert ("AUT-03", "F-T") in e.findings("2026-04-20T12:00:00+02:00")
    assert ("AUT-03", "F-T") not in e.findings("2026-04-20T12:00:00+02:00", known_at=t1)


def test_the_register_as_known_at_seen_through_aut_01(timeline) -> None:
    e, first, t1 = timeline
    assert first[("AUT-01", "R-L")]["detail"] == "authorisation A-LATE is not a VP entry of the register"
    assert ("AUT-01", "R-L") not in e.findings("2026-04-20T12:00:00+02:00")
    assert e.findings("2026-04-20T12:00:00+02:00", known_at=t1) == first


def test_a_lapi_correction_undone_by_a_later_file(timeline) -> None:
    import duckdb

    e, first, t1 = timeline
    assert ("RET-01", "rd-x") not in first
    now = e.findings("2026-04-20T12:00:00+02:00")
    assert "still present" in now[("RET-01", "rd-x")]["detail"]
    assert ("RET-01", "rd-x") not in e.findings("2026-04-20T12:00:00+02:00", known_at=t1)
    with duckdb.connect(str(e.root / "var" / "w.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM lapi_reads WHERE read_id = 'rd-x'").fetchone() == (2,)  # never loaded twice
        assert con.execute("SELECT first_location FROM oversight.duplicates WHERE location = 'reads_2026-01-03.csv:2'"
                           ).fetchone() == ("reads_2026-01-01.csv:2",)
        assert con.execute("SELECT file FROM oversight.lapi_reads WHERE read_id = 'rd-x'").fetchone() == ("reads_2026-01-01.csv",)


# --- as-of cuts and holds -------------------------------------------------------------------

@pytest.fixture(scope="module")
def cuts(tmp_path_factory: pytest.TempPathFactory) -> MiniEstate:
    e = MiniEstate(tmp_path_factory.mktemp("cuts"))
    window = {"valid_from": "2026-03-01T00:00:00+01:00", "valid_to": "2026-03-02T00:00:00+01:00"}
    e.register += [auth("A-31", "VP", retention_days=31), auth("AP-W", "DRONE", purposes=["DR1"], **window),
                   auth("A-W", "VP", **window)]
    e.cameras += [{"camera_id": "C31", "site": "S", "authorisation_ref": "A-31", "lat": 45.7, "lon": 4.8},
                  {"camera_id": "CW", "site": "S", "authorisation_ref": "A-W", "lat": 45.7, "lon": 4.8}]
    # A hold without a reference set after as-of: not yet a RET-02.
    e.recording("R-HOLD-LATER", "C31", "2026-02-01T00:00:00", "2026-02-01T01:00:00",
                hold_set_at="2026-04-25T00:00:00", hold_ref=None)
    e.event("recording.started", "2026-02-01T00:00:00Z", "ev-HOLD-LATER", purpose="BWC_EVID")
    e.event("recording.stopped", "2026-02-01T01:00:00Z", "ev-HOLD-LATER")
    e.event("evidence.hold_set", "2026-04-25T00:00:00Z", "ev-HOLD-LATER")
    # ACC-03 needs a known recording: the twin whose row breaks its contract is quarantined.
    e.recording("R-VALID", "C31", "2026-01-01T00:00:00", "2026-01-01T01:00:00", deleted_at="2026-01-05T00:00:00")
    e.recording("R-REVERSED", "C31", "2026-01-01T00:00:00", "2025-12-31T23:00:00", deleted_at="2026-01-05T00:00:00")
    e.log(1, "2026-04-01T00:00:00", "PLAYBACK", recording_id="R-VALID", justification="JUD")
    e.log(2, "2026-04-01T00:00:00", "PLAYBACK", recording_id="R-REVERSED", justification="JUD")
    # VEH holds: stopped 1 Feb 00:00Z, deadline 8 Feb 00:00Z (7 x 24 h), + grace 9 Feb 00:00Z.
    def veh(evidence: str) -> None:
        e.event("recording.started", "2026-01-31T23:00:00Z", evidence, "VEH", purpose="VEH_SAFETY")
        e.event("recording.stopped", "2026-02-01T00:00:00Z", evidence, "VEH")
    veh("veh-HELD")
    e.event("evidence.hold_set", "2026-02-08T23:59:59Z", "veh-HELD", "VEH", procedure_ref="PV-1")
    veh("veh-HOLD-AT-LIMIT")
    e.event("evidence.hold_set", "2026-02-09T00:00:00Z", "veh-HOLD-AT-LIMIT", "VEH", procedure_ref="PV-2")
    veh("veh-RELEASED")
    e.event("evidence.hold_set", "2026-02-05T00:00:00Z", "veh-RELEASED", "VEH", procedure_ref="PV-3")
    e.event("evidence.hold_released", "2026-02-20T00:00:00Z", "veh-RELEASED", "VEH")
    # VP authorisation at the start: exactly on valid_from is inside.
    e.recording("R-ON-FROM", "CW", "2026-02-28T23:00:00", "2026-02-28T23:30:00", deleted_at="2026-03-01T00:00:00")
    e.recording("R-BEFORE-FROM", "CW", "2026-02-28T22:59:59", "2026-02-28T23:30:00", deleted_at="2026-03-01T00:00:00")
    # Flights: one lands after its validity, one took off before it; as-of while airborne.
    e.flight("F-LANDS-LATE", "2026-03-01T22:00:00+01:00", "2026-03-02T02:00:00+01:00", authorisation_ref="AP-W")
    e.flight("F-EARLY-AIRBORNE", "2026-02-28T23:00:00+01:00", "2026-03-02T02:00:00+01:00", authorisation_ref="AP-W")
    e.load()
    return e


def test_a_hold_set_after_as_of_is_not_seen(cuts: MiniEstate) -> None:
    before, after = cuts.findings("2026-04-20T12:00:00+02:00"), cuts.findings("2026-04-25T00:00:00Z")
    for subject in ("R-HOLD-LATER", "ev-HOLD-LATER"):
        assert ("RET-02", subject) not in before and ("RET-01", subject) in before
        assert after[("RET-02", subject)]["occurred_at"] == "2026-04-25T00:00:00Z"


def test_acc_03_never_on_a_quarantined_recording(cuts: MiniEstate) -> None:
    found = cuts.findings("2026-04-20T12:00:00+02:00")
    assert ("ACC-03", "1") in found and ("ACC-03", "2") not in found
    assert ("recordings:R-REVERSED", "ended_at: '2025-12-31T23:00:00' is before started_at '2026-01-01T00:00:00'") \
        in cuts.quarantine()


def test_veh_holds(cuts: MiniEstate) -> None:
    found = cuts.findings("2026-04-20T12:00:00+02:00")
    assert ("RET-01", "veh-HELD") not in found
    assert found[("RET-01", "veh-HOLD-AT-LIMIT")]["occurred_at"] == "2026-02-09T00:00:00Z"
    assert found[("RET-01", "veh-RELEASED")]["occurred_at"] == "2026-02-21T00:00:00Z"  # release + grace


def test_a_vp_recording_starting_exactly_on_valid_from(cuts: MiniEstate) -> None:
    found = cuts.findings("2026-04-20T12:00:00+02:00")
    assert ("AUT-01", "R-ON-FROM") not in found
    assert found[("AUT-01", "R-BEFORE-FROM")]["occurred_at"] == "2026-02-28T22:59:59Z"


def test_aut_02_landing_clause_once_landed(cuts: MiniEstate) -> None:
    airborne = cuts.findings("2026-03-02T01:59:59+01:00")
    assert ("AUT-02", "F-LANDS-LATE") not in airborne
    assert airborne[("AUT-02", "F-EARLY-AIRBORNE")]["detail"] == "takeoff before 2026-02-28T23:00:00Z"
    landed = cuts.findings("2026-03-02T02:00:00+01:00")  # landing exactly at as-of: it has happened
    assert landed[("AUT-02", "F-LANDS-LATE")]["detail"] == "landing after 2026-03-01T23:00:00Z"
    assert landed[("AUT-02", "F-EARLY-AIRBORNE")]["detail"] == (
        "takeoff before 2026-02-28T23:00:00Z; landing after 2026-03-01T23:00:00Z")


# --- the stored evaluation's fingerprint ------------------------------------------------------

def test_the_fingerprint_covers_every_file_that_defines_the_rules(tmp_path: Path, monkeypatch) -> None:
    import shutil
    from types import SimpleNamespace

    settings = SimpleNamespace(grace_hours=24, timezone="Europe/Paris", perimeter_tolerance_m=50, sources=[])
    copy = tmp_path / "rules"
    shutil.copytree(rules.RULES_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(rules, "RULES_DIR", copy)
    monkeypatch.setattr(rules, "PARAMETERS", copy / "parameters.yml")
    base = rules.fingerprint(settings)
    for name in ("__init__.py", "subjects.sql", "catalogue.yml", "parameters.yml", "log_01.sql"):
        path = copy / name
        original = path.read_bytes()
        path.write_bytes(original + b"\n")
        assert rules.fingerprint(settings) != base, name
        path.write_bytes(original)
    assert rules.fingerprint(settings) == base
