"""Rules on drone flights (drone_files) and licence-plate readers (lapi_files), at their edges."""

from __future__ import annotations

import pytest

from tests.mini_estate import MiniEstate, auth

AS_OF = "2026-04-20T12:00:00+02:00"
M_PER_DEG = 6371008.8 * 3.141592653589793 / 180  # along a meridian
SQUARE = [[4.84, 45.74], [4.86, 45.74], [4.86, 45.76], [4.84, 45.76], [4.84, 45.74]]
HOLE = [[4.845, 45.745], [4.845, 45.755], [4.855, 45.755], [4.855, 45.745], [4.845, 45.745]]


def north_of_top(metres: float) -> tuple[float, float]:
    return 45.76 + metres / M_PER_DEG, 4.85


@pytest.fixture(scope="module")
def drones(tmp_path_factory: pytest.TempPathFactory) -> MiniEstate:
    e = MiniEstate(tmp_path_factory.mktemp("drones"))
    window = {"valid_from": "2026-03-01T00:00:00+01:00", "valid_to": "2026-03-02T00:00:00+01:00"}
    e.register += [
        auth("AP-D", "DRONE", purposes=["DR2"], perimeter={"type": "Polygon", "coordinates": [SQUARE, HOLE]}, **window),
        auth("AP-NOP", "DRONE", purposes=["DR2"], **window),
        auth("AP-VP", "VP"),
    ]
    f = e.flight
    take, land = "2026-03-01T00:00:00+01:00", "2026-03-02T00:00:00+01:00"  # landing Mar 1 23:00Z
    f("F1", take, land, authorisation_ref="AP-D", purpose="DR2",
      recordings=[
          {"recording_id": "r-ok", "interior": False, "deleted_at": "2026-03-09T23:00:00Z"},        # 7 d + grace exactly
          {"recording_id": "r-late", "interior": False, "deleted_at": "2026-03-09T23:00:00.001Z"},
          {"recording_id": "r-int-ok", "interior": True, "deleted_at": "2026-03-04T23:00:00Z"},     # 48 h + grace exactly
          {"recording_id": "r-int-late", "interior": True, "deleted_at": "2026-03-04T23:00:01Z"},
          {"recording_id": "r-int-present", "interior": True, "deleted_at": None}],
      consultations=[
          {"event_id": "c-ok", "at": "2026-03-03T10:00:00+01:00", "by": "P", "justification": "SIGNAL_JUD", "recipient": "Parquet"},
          {"event_id": "c-lower", "at": "2026-03-03T10:00:00+01:00", "by": "P", "justification": "signal_jud", "recipient": "Parquet"},
          {"event_id": "c-noby", "at": "2026-03-03T10:00:00+01:00", "by": None, "justification": "SIGNAL_JUD", "recipient": "Parquet"},
          {"event_id": "c-future", "at": "2026-04-30T10:00:00+02:00", "by": "P", "justification": "JUD", "recipient": "X"}])
    f("F2", "2026-02-28T22:59:59Z", land, authorisation_ref="AP-D", purpose="DR2")  # a second early
    f("F3", take, land, authorisation_ref="AP-D", purpose="dr2")
    f("F4", take, land, authorisation_ref="AP-D", purpose=None)
    f("F5", take, land, authorisation_ref=None)
    f("F6", take, land, authorisation_ref="AP-VP")
    f("F7", take, land, authorisation_ref="AP-UNKNOWN")
    f("F8", take, land, authorisation_ref="AP-D", purpose="DR2", audio_recorded=True)
    f("F9", take, land, authorisation_ref="AP-D", purpose="DR2", facial_recognition=True)
    f("F10", take, "2026-03-02T00:00:01+01:00", authorisation_ref="AP-D", purpose="DR3")
    f("F-LATE", "2026-04-21T00:00:00+02:00", "2026-04-21T01:00:00+02:00", authorisation_ref=None, audio_recorded=True)
    # Revisions: the highest wins; consultations are kept as first received.
    c1 = {"event_id": "c-r1", "at": "2026-03-03T10:00:00+01:00", "by": "P", "justification": "SIGNAL_JUD", "recipient": "P"}
    f("F-REV", take, land, authorisation_ref="AP-D", purpose="DR2", consultations=[c1])
    f("F-REV", take, land, authorisation_ref="AP-D", purpose="DR9", revision=2,
      consultations=[c1 | {"justification": "JUD"},
                     {"event_id": "c-r2", "at": "2026-03-04T10:00:00+01:00", "by": "P", "justification": "ADM", "recipient": "P"}])
    # Tracks (AUT-03): tolerance 50 m; a point on an edge is inside; a hole is outside.
    t = "2026-03-01T12:00:00+01:00"
    e.tracks["F1"] = [(t, 45.742, 4.842, 30), (t, 45.76, 4.85, 30)]
    e.tracks["F8"] = [(t, *north_of_top(49.9), 30)]
    e.tracks["F9"] = [("2026-03-01T12:00:00+01:00", 45.742, 4.842, 30), ("2026-03-01T12:10:00+01:00", *north_of_top(50.1), 30),
                      ("2026-03-01T12:05:00+01:00", *north_of_top(80), 30)]
    e.tracks["F10"] = [("2026-05-01T00:00:00+02:00", 45.75, 4.85, 30)]  # in the hole, timed after as-of
    f("F-HOVER", take, land, authorisation_ref="AP-D", purpose="DR2")  # equally far three times
    e.tracks["F-HOVER"] = [(f"2026-03-01T12:0{i}:00+01:00", *north_of_top(80), 30) for i in range(3)]
    f("F-NOP", take, land, authorisation_ref="AP-NOP", purpose="DR2")
    e.tracks["F-NOP"] = [(t, 48.85, 2.35, 30)]  # far away, but no perimeter to check

    # LAPI: matched 1 calendar month, without match 15 x 24 h; a later file name corrects.
    def read(rid, at, matched, deleted=""):
        return {"read_id": rid, "read_at": at, "camera_id": "LAPI-1", "plate_hash": "h", "matched": matched, "deleted_at": deleted}
    e.reads["reads_2026-01-31.csv"] = [
        read("rd-m", "2026-01-31T10:00:00+01:00", "1", "2026-03-01T10:00:00+01:00"),
        read("rd-m-late", "2026-01-31T10:00:00+01:00", "1", "2026-03-01T10:00:01+01:00"),
        read("rd-u", "2026-03-20T12:00:00+01:00", "0", "2026-04-05T13:00:00+02:00"),
        read("rd-u-late", "2026-03-20T12:00:00+01:00", "0", "2026-04-05T13:00:01+02:00")]
    e.reads["reads_2026-03-01.csv"] = [read("rd-c", "2026-03-01T00:00:00+01:00", "0")]
    e.reads["reads_2026-03-01_2.csv"] = [read("rd-c", "2026-03-01T00:00:00+01:00", "0", "2026-03-10T00:00:00+01:00")]
    e.reads["reads_2026-03-02.csv"] = [read("rd-old", "2026-03-02T00:00:00+01:00", "0", "2026-03-10T00:00:00+01:00")]
    e.reads["reads_2026-03-01_0.csv"] = [read("rd-old", "2026-03-02T00:00:00+01:00", "0")]

    def query(qid, rid, purpose="LP_THEFT", procedure="", user="OPJ-1"):
        return {"event_id": qid, "at": "2026-04-01T10:00:00+02:00", "user": user, "read_id": rid,
                "purpose": purpose, "procedure_ref": procedure}
    e.queries["queries_2026-04-01.csv"] = [
        query("q-acc4", "rd-u"), query("q-proc", "rd-u", procedure="PV-1"), query("q-matched", "rd-m"),
        query("q-unknown", "rd-zz"), query("q-pur1", "rd-m", purpose="LP_PARKING"), query("q-case", "rd-m", purpose="lp_theft"),
        query("q-pur2", "rd-m", purpose=""), query("q-nouser", "rd-m", user="")]
    e.load()
    return e


@pytest.fixture(scope="module")
def found(drones: MiniEstate) -> dict:
    return drones.findings(AS_OF)


def test_drone_retention_and_interior(found) -> None:
    assert ("RET-01", "r-ok") not in found
    assert found[("RET-01", "r-late")]["occurred_at"] == "2026-03-09T23:00:00Z"
    assert ("RET-04", "r-int-ok") not in found
    assert found[("RET-04", "r-int-late")]["occurred_at"] == "2026-03-04T23:00:00Z"
    assert ("RET-01", "r-int-late") not in found
    assert ("RET-04", "r-int-present") in found and ("RET-01", "r-int-present") in found


def test_drone_consultations(found) -> None:
    assert ("ACC-05", "c-ok") not in found
    assert found[("ACC-05", "c-lower")]["detail"] == "drone footage consulted with justification 'signal_jud'"
    assert ("LOG-08", "c-noby") in found and ("ACC-05", "c-noby") not in found
    assert not any(s == "c-future" for _, s in found)
    assert ("ACC-05", "c-r1") not in found  # first received kept
    assert ("ACC-05", "c-r2") in found      # only in revision 2, still counted


def test_flight_authorisation_purpose_prohibitions(found) -> None:
    assert not any(s == "F1" for c, s in found if c.startswith(("AUT", "PUR", "PRO")))  # closed validity
    assert found[("AUT-02", "F2")]["detail"].startswith("takeoff before 2026-02-28T23:00:00Z")
    assert ("PUR-01", "F3") in found and ("AUT-02", "F3") in found
    assert ("PUR-02", "F4") in found and ("AUT-02", "F4") not in found
    assert {s for c, s in found if c == "AUT-01"} == {"F5", "F6", "F7"}
    assert ("PRO-01", "F8") in found and ("PRO-02", "F9") in found
    assert ("PUR-01", "F10") not in found and "landing after" in found[("AUT-02", "F10")]["detail"]
    assert ("PUR-01", "F-REV") in found     # the highest revision's purpose
    assert not any(s == "F-LATE" for _, s in found)


def test_aut_03_perimeter(found) -> None:
    aut03 = {s: f for (c, s), f in found.items() if c == "AUT-03"}
    assert set(aut03) == {"F9", "F10", "F-HOVER"}  # F1 on an edge, F8 at 49.9 m: inside tolerance
    assert aut03["F-HOVER"]["detail"] == "3 track point(s) beyond 50.0 m, farthest 80 m (line 2)"  # the first
    assert aut03["F9"]["detail"] == "2 track point(s) beyond 50.0 m, farthest 80 m (line 4)"
    assert aut03["F9"]["occurred_at"] == "2026-03-01T11:05:00Z"  # the first point beyond, in time
    assert aut03["F10"]["occurred_at"] == "2026-04-30T22:00:00Z"  # every point, whatever its time


def test_lapi_retention_and_corrections(found) -> None:
    assert ("RET-01", "rd-m") not in found
    assert found[("RET-01", "rd-m-late")]["occurred_at"] == "2026-03-01T09:00:00Z"
    assert ("RET-01", "rd-u") not in found
    assert found[("RET-01", "rd-u-late")]["occurred_at"] == "2026-04-05T11:00:00Z"
    assert ("RET-01", "rd-c") not in found    # corrected by a later file
    assert ("RET-01", "rd-old") not in found  # a file earlier in name order does not win


def test_lapi_queries(found) -> None:
    assert found[("ACC-04", "q-acc4")]["holder"] == "LAPI holder"
    assert {s for c, s in found if c == "ACC-04"} == {"q-acc4"}
    assert {s for c, s in found if c == "PUR-01"} >= {"q-pur1", "q-case"}
    assert ("PUR-02", "q-pur2") in found
    assert found[("LOG-08", "q-nouser")]["detail"] == "query does not say who"


def _big_flights(path, prefix: str, flights: int, consultations: int) -> None:  # noqa: ANN001
    """``flights`` lines of ``consultations`` consultations each (46 KB for 300); the first
    consultation of each flight says nobody (LOG-08)."""
    import json

    with open(path, "w") as f:
        for i in range(flights):
            fid = f"{prefix}-{i:04d}"
            f.write(json.dumps({
                "flight_id": fid, "revision": 1, "drone_id": "F-HDRQ", "unit": "DDSP 69", "pilot": "PN-1",
                "authorisation_ref": "AP-69-2026-001", "purpose": "DR6", "takeoff_at": "2026-04-14T18:19:30+02:00",
                "landing_at": "2026-04-14T18:44:30+02:00", "audio_recorded": False, "facial_recognition": False,
                "recordings": [{"recording_id": f"{fid}-r1", "interior": False, "deleted_at": "2026-04-15T22:06:05+02:00"}],
                "consultations": [{"event_id": f"{fid}-c{k}", "at": "2026-04-16T14:44:58+02:00", "by": None if k == 0 else "PN-2",
                                   "justification": "SIGNAL_JUD", "recipient": "Parquet de Villefranche"}
                                  for k in range(consultations)]}) + "\n")


def test_flights_of_hundreds_of_consultations_load_under_a_small_memory_cap(tmp_path) -> None:  # noqa: ANN001
    """Flights of 300 consultations are lines of 46 KB. DuckDB's JSON functions and the
    contract's checks of each element hold a whole vector of 2 048 lines at once: 500 such
    flights (23 MB) failed the drone source at a 512 MB cap, in staging (and 1 000 at the
    default 1 GB), at every run. Staged a slice at a time, their lists taken out once while
    staged and read by the rules without a cast to JSON[], they load, a second delivery
    re-evaluates incrementally, every consultation is counted, and the chain verifies."""
    import duckdb

    from tests.conftest import copy_samples, vigie, with_closed_port

    estate = with_closed_port(copy_samples(tmp_path))
    config, cap = str(estate / "vigie.yml"), {"VIGIE_DUCKDB_MEMORY_LIMIT": "512MB"}
    as_of = (estate / "as_of.txt").read_text().strip()
    _big_flights(estate / "drones" / "flights" / "2026-04-big.jsonl", "FL-BIG", 500, 300)
    vigie("run", "--config", config, "--source", "drones-69", "--as-of", as_of, env=cap, check=True)
    _big_flights(estate / "drones" / "flights" / "2026-04-more.jsonl", "FL-MORE", 100, 300)
    again = vigie("run", "--config", config, "--source", "drones-69", "--as-of", as_of, env=cap, check=True)
    assert "incremental" in again.stdout
    vigie("verify", "--config", config, env=cap, check=True)
    con = duckdb.connect(str(estate / "var" / "warehouse.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT status, count(*) FROM batches WHERE source = 'drones-69' GROUP BY ALL").fetchall() == [
            ("loaded", 2)]
        (n,) = con.execute("SELECT count(*) FROM drone_flights, unnest(json_extract(consultations, '$[*]')) "
                           "WHERE starts_with(flight_id, 'FL-BIG') OR starts_with(flight_id, 'FL-MORE')").fetchone()
        assert n == 600 * 300
        nobody = {s for (s,) in con.execute("SELECT subject_id FROM run_findings WHERE rule_code = 'LOG-08' "
                                            "AND subject_id LIKE 'FL-%-c0'").fetchall()}
        assert nobody == {f"FL-BIG-{i:04d}-c0" for i in range(500)} | {f"FL-MORE-{i:04d}-c0" for i in range(100)}
    finally:
        con.close()
