"""Time arithmetic of the rules (domain.md, time conventions), and findings as known at."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pytest

from tests.mini_estate import MiniEstate, auth
from vigie import db, rules


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    db._configure(con)
    db.migrate(con)
    rules.install(con, SimpleNamespace(sources=[], grace_hours=24, timezone="Europe/Paris", perimeter_tolerance_m=50))
    return con


@pytest.mark.parametrize("start, months, expected", [
    ("2026-01-31T09:00:00Z", 1, "2026-02-28T09:00:00Z"),   # day clamped, same local clock time
    ("2024-01-31T09:00:00Z", 1, "2024-02-29T09:00:00Z"),   # leap year
    ("2026-03-10T11:00:00Z", 1, "2026-04-10T10:00:00Z"),   # 12:00 Paris winter -> 12:00 Paris summer
    ("2026-09-25T10:00:00Z", 1, "2026-10-25T11:00:00Z"),   # 12:00 summer -> 12:00 winter
    ("2027-02-28T01:30:00Z", 1, "2027-03-28T01:30:00Z"),   # 02:30 does not exist on 28 March 2027: 03:30+02
    ("2026-09-25T00:30:00Z", 1, "2026-10-25T00:30:00Z"),   # 02:30 twice on 25 October 2026: the earlier, +02
    ("2026-12-31T23:30:00Z", 1, "2027-01-31T23:30:00Z"),   # local 1 January 00:30 -> 1 February 00:30
])
def test_calendar_months_in_paris(con, start: str, months: int, expected: str) -> None:
    got = con.execute("SELECT vg_iso(vg_add_months(?::TIMESTAMPTZ, ?, 'Europe/Paris'))", [start, months]).fetchone()[0]
    assert got == expected


def test_day_limits_are_exact_hours_across_dst(con) -> None:
    got = con.execute("SELECT vg_iso(TIMESTAMPTZ '2026-03-27 11:00:00Z' + vg_hours(7 * 24))").fetchone()[0]
    assert got == "2026-04-03T11:00:00Z"


def test_iso_keeps_milliseconds_only_when_there_are_some(con) -> None:
    assert con.execute("SELECT vg_iso(TIMESTAMPTZ '2026-02-07 08:27:50.675Z'), vg_iso(TIMESTAMPTZ '2026-02-07 08:27:50Z')"
                       ).fetchone() == ("2026-02-07T08:27:50.675Z", "2026-02-07T08:27:50Z")


def test_iso_is_the_utc_clock_of_the_instant_in_any_session_time_zone(con) -> None:
    """vg_iso reads an instant's UTC wall clock from its microseconds: the same text as
    Python's, before 1970 and after, on a connection in another time zone too; infinity has
    no text (NULL, as before)."""
    micros = [0, 1, 999, 1000, 675000, 999999, 1_000_000, -1, -1000, -675_000, -626_018_399_877_000,
              1_774_747_800_000_000, 1_792_278_000_123_456, 253_402_300_799_999_999]

    def expected(us: int) -> str:
        t = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=us)
        frac = "" if t.microsecond == 0 else (f".{t.microsecond // 1000:03d}" if t.microsecond % 1000 == 0
                                               else f".{t.microsecond:06d}")
        return t.strftime("%Y-%m-%dT%H:%M:%S") + frac + "Z"
    other = con.cursor()
    other.execute("SET TimeZone = 'America/Sao_Paulo'")
    for c in (con, other):
        got = [r[0] for r in c.execute("SELECT vg_iso(make_timestamptz(u)) FROM unnest(?::BIGINT[]) AS t(u) "
                                       "ORDER BY u", [micros]).fetchall()]
        assert got == [expected(u) for u in sorted(micros)]
        assert c.execute("SELECT vg_iso('infinity'::TIMESTAMPTZ), vg_iso('-infinity'::TIMESTAMPTZ), "
                         "vg_iso(NULL::TIMESTAMPTZ)").fetchone() == (None, None, None)


def test_known_at_reproduces_findings_after_late_events_and_changed_holds(tmp_path: Path) -> None:
    e = MiniEstate(tmp_path / "e")
    e.register.append(auth("A", "VP", retention_days=31))
    e.cameras.append({"camera_id": "C", "site": "S", "authorisation_ref": "A", "lat": 1.0, "lon": 1.0})
    e.recording("R1", "C", "2026-02-01T00:00:00", "2026-02-01T01:00:00")
    e.event("recording.started", "2026-02-01T00:00:00Z", "ev-1")
    e.event("recording.stopped", "2026-02-01T01:00:00Z", "ev-1")
    e.load()
    as_of = "2026-04-20T12:00:00+02:00"
    first = e.findings(as_of)
    assert {("RET-01", "R1"), ("RET-01", "ev-1")} <= set(first)
    t1 = datetime.now(timezone.utc)
    time.sleep(0.01)

    # Later: a hold is set on R1 in the VMS; a late hold event for ev-1 arrives.
    e.recordings[0] |= {"hold_set_at": "2026-02-10T00:00:00", "hold_ref": "PV-9", "updated_at": "2026-04-21T00:00:00"}
    e.event("evidence.hold_set", "2026-02-10T00:00:00Z", "ev-1", procedure_ref="PV-9")
    e.load()
    now = e.findings(as_of)
    assert ("RET-01", "R1") not in now and ("RET-01", "ev-1") not in now
    assert e.findings(as_of, known_at=t1) == first

    # A second load of unchanged sources changes nothing.
    e.load()
    assert e.findings(as_of) == now
