"""Versions and "as known at": a later load changes the present, never the past."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pytest

from tests.conftest import read_csv
from vigie import pipeline
from vigie.config import load_settings
from vigie.simulate.bodycam_server import BodycamServer

TABLES = ("authorisations", "vms_cameras", "vms_recordings", "vms_audit_log", "bodycam_events",
          "drone_flights", "drone_track_points", "lapi_reads", "lapi_queries")


def _state(warehouse: Path, known_at: datetime) -> dict[str, list]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {t: con.execute(f"SELECT * FROM {t}_at(?::TIMESTAMPTZ) ORDER BY ALL", [known_at]).fetchall() for t in TABLES}


@pytest.fixture
def estate_jsonl(estate: Path, monkeypatch: pytest.MonkeyPatch):
    """The samples, with the body-camera events as JSON Lines so the test can append late ones."""
    events = json.loads((estate / "bodycam_events.json").read_text())
    with open(estate / "bodycam_events.jsonl", "w") as f:
        for e in events[:-5]:  # the last five arrive late
            f.write(json.dumps(e) + "\n")
    monkeypatch.setenv("BODYCAM_TOKEN", "t")
    with BodycamServer(estate / "bodycam_events.jsonl", token="t") as server:
        config = estate / "vigie.yml"
        config.write_text(config.read_text().replace("http://127.0.0.1:PORT", server.url))
        yield estate, events[-5:]


def test_known_at_reproduces_an_earlier_state_after_changes(estate_jsonl) -> None:
    estate, late_events = estate_jsonl
    settings = load_settings(estate / "vigie.yml")
    assert not pipeline.run(settings, validate=False).failed
    t1 = datetime.now(timezone.utc)
    before = _state(settings.warehouse, t1)
    time.sleep(0.01)

    # The sources move on: a recording deleted and held, a late event, a LAPI correction,
    # a flight revision, a changed register.
    with sqlite3.connect(estate / "vms.sqlite") as con:
        rec = con.execute("SELECT recording_id FROM recordings WHERE deleted_at IS NULL ORDER BY recording_id LIMIT 1").fetchone()[0]
        con.execute("UPDATE recordings SET deleted_at = '2026-04-21T08:00:00', hold_set_at = '2026-04-20T08:00:00', "
                    "hold_ref = 'PV-1', updated_at = '2026-04-21T08:00:01' WHERE recording_id = ?", [rec])
    with open(estate / "bodycam_events.jsonl", "a") as f:
        for e in reversed(late_events):  # late, and out of order
            f.write(json.dumps(e) + "\n")
    read = (estate / "lapi" / "reads_2026-04-15.csv").read_text().splitlines()[1].split(",")
    corrected = read[:5] + ["2026-04-22T00:00:00+02:00"]
    (estate / "lapi" / "reads_2026-04-22.csv").write_text("read_id,read_at,camera_id,plate_hash,matched,deleted_at\n" + ",".join(corrected) + "\n")
    flight = json.loads((estate / "drones" / "flights" / "2026-01.jsonl").read_text().splitlines()[0])
    revised = flight | {"revision": flight["revision"] + 1, "purpose": "DR3"}
    tampered = flight | {"pilot": "someone else"}
    (estate / "drones" / "flights" / "zz-corrections.jsonl").write_text(json.dumps(revised) + "\n" + json.dumps(tampered) + "\n")
    register = json.loads((estate / "authorisations.json").read_text())
    dropped = register.pop()["authorisation_ref"]
    register[0]["holder"] = "New holder"
    (estate / "authorisations.json").write_text(json.dumps(register))

    report = pipeline.run(settings, validate=False)
    assert not report.failed
    after = _state(settings.warehouse, datetime.now(timezone.utc))

    assert _state(settings.warehouse, t1) == before  # the past is unchanged
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        assert con.execute("SELECT deleted_at IS NOT NULL, hold_ref FROM oversight.vms_recordings WHERE recording_id = ?",
                           [rec]).fetchone() == (True, "PV-1")
        assert con.execute("SELECT count(*) FROM vms_recordings WHERE recording_id = ?", [rec]).fetchone()[0] == 2
        ids = [e["id"] for e in late_events]
        # The late events that break their contract are quarantined, the others loaded.
        quarantined = {int(r["location"].removeprefix("seq:")) for r in read_csv(estate / "expected_quarantine.csv")
                       if r["source"] == "bodycams" and r["location"].startswith("seq:")}
        assert con.execute(f"SELECT count(*) FROM oversight.bodycam_events WHERE event_id IN ({','.join('?' * len(ids))})",
                           ids).fetchone()[0] == len([e for e in late_events if e["seq"] not in quarantined])
        assert con.execute("SELECT file, deleted_at IS NOT NULL FROM oversight.lapi_reads WHERE read_id = ?",
                           [read[0]]).fetchone() == ("reads_2026-04-22.csv", True)
        assert con.execute("SELECT revision, purpose FROM oversight.drone_flights WHERE flight_id = ?",
                           [flight["flight_id"]]).fetchone() == (flight["revision"] + 1, "DR3")
        assert con.execute("SELECT conflicting FROM oversight.duplicates WHERE location = 'flights/zz-corrections.jsonl:2'"
                           ).fetchone() == (True,)
        assert con.execute("SELECT count(*) FROM oversight.authorisations WHERE authorisation_ref = ?", [dropped]).fetchone() == (0,)
        assert con.execute("SELECT holder FROM oversight.authorisations WHERE authorisation_ref = ?",
                           [register[0]["authorisation_ref"]]).fetchone() == ("New holder",)
    assert after != before


def test_a_vms_row_changed_in_place_shows_its_latest_pull(estate: Path) -> None:
    """Valid, then broken, then fixed: the current views follow the latest pull."""
    config = estate / "vigie.yml"
    config.write_text("warehouse: var/w.duckdb\nregister: authorisations.json\nsources:\n"
                      "  - {name: vms-lyon, kind: vms_sql, url: 'sqlite:///vms.sqlite'}\n")
    settings = load_settings(config)
    with sqlite3.connect(estate / "vms.sqlite") as con:
        rec = con.execute("SELECT recording_id FROM recordings WHERE deleted_at IS NULL ORDER BY recording_id LIMIT 1").fetchone()[0]

    def pull_with(deleted_at: str, updated_at: str) -> tuple:
        with sqlite3.connect(estate / "vms.sqlite") as con:
            con.execute("UPDATE recordings SET deleted_at = ?, updated_at = ? WHERE recording_id = ?", [deleted_at, updated_at, rec])
        assert not pipeline.run(settings, validate=False).failed
        with duckdb.connect(str(settings.warehouse), read_only=True) as con:
            current = con.execute("SELECT deleted_at FROM oversight.vms_recordings WHERE recording_id = ?", [rec]).fetchall()
            quarantined = con.execute("SELECT reason FROM oversight.quarantine WHERE location = ?", [f"recordings:{rec}"]).fetchall()
        return current, quarantined

    assert not pipeline.run(settings, validate=False).failed
    assert pull_with("yesterday", "2026-05-01T00:00:00") == ([], [("deleted_at: 'yesterday' is not a date",)])
    assert pull_with("2026-05-01T10:00:00", "2026-05-01T10:00:01") == (
        [(datetime(2026, 5, 1, 10, 0, tzinfo=timezone.utc),)], [])


def test_a_register_entry_that_did_not_change_keeps_its_version_and_its_perimeter_text(tmp_path: Path) -> None:
    """A perimeter is stored as the register's reading wrote it (its JSON, spaced as Python's
    `json.dumps`): a later version of the file compares each entry with that text, so an
    entry whose perimeter did not change gets no new version, whatever else changed."""
    from vigie import db
    from vigie.register import load_register

    square = [[4.8, 45.7], [4.9, 45.7], [4.9, 45.8], [4.8, 45.7]]
    drone = {"authorisation_ref": "AP-D", "device_class": "DRONE", "holder": "Préfecture", "valid_from": "2026-01-01T00:00:00+01:00",
             "valid_to": "2026-12-31T00:00:00+01:00", "purposes": ["DR1", "DR2"], "retention_days": 30,
             "perimeter": {"type": "Polygon", "coordinates": [square]}}
    vp = drone | {"authorisation_ref": "AP-V", "device_class": "VP", "purposes": ["VP05"], "perimeter": None}
    path = tmp_path / "authorisations.json"
    with db.writer(tmp_path / "w.duckdb") as con:
        path.write_text(json.dumps([drone, vp], indent=1))
        first = load_register(con, path, datetime.now(timezone.utc))
        path.write_text(json.dumps([drone, vp | {"retention_days": 15}]))
        second = load_register(con, path, datetime.now(timezone.utc))
        rows = con.execute("SELECT authorisation_ref, batch_id, CAST(perimeter AS VARCHAR), purposes, holder "
                           "FROM authorisations ORDER BY ALL").fetchall()
    assert rows == [("AP-D", first, json.dumps(drone["perimeter"]), ["DR1", "DR2"], "Préfecture"),
                    ("AP-V", first, None, ["VP05"], "Préfecture"), ("AP-V", second, None, ["VP05"], "Préfecture")]
