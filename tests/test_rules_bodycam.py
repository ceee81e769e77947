"""Rules on body-worn and vehicle cameras (bodycam_api), at their edges (domain.md)."""

from __future__ import annotations

import pytest

from tests.mini_estate import MiniEstate

AS_OF = "2026-04-20T12:00:00+02:00"


@pytest.fixture(scope="module")
def cams(tmp_path_factory: pytest.TempPathFactory) -> MiniEstate:
    e = MiniEstate(tmp_path_factory.mktemp("cams"))
    ev = e.event

    def recording(evidence, stopped, kind="BWC", started=None, unit="CSP A"):
        ev("recording.started", started or stopped, evidence, kind, purpose="BWC_EVID", actor={"badge": "PN-1", "unit": unit})
        ev("recording.stopped", stopped, evidence, kind)

    # BWC: Jan 31 10:30 Paris + 1 month = Feb 28 10:30; + grace = Mar 1 10:30+01:00.
    recording("ev-A", "2026-01-31T10:30:00+01:00")
    ev("evidence.deleted", "2026-03-01T10:30:00+01:00", "ev-A")
    recording("ev-A-LATE", "2026-01-31T10:30:00+01:00")
    ev("evidence.deleted", "2026-03-01T10:30:00.001+01:00", "ev-A-LATE")
    # VEH: 7 x 24 h across the spring change: Mar 27 11:00Z + 168 h = Apr 3 11:00Z; + grace = Apr 4 11:00Z.
    recording("ev-V", "2026-03-27T12:00:00+01:00", kind="VEH")
    ev("evidence.deleted", "2026-04-04T13:00:00+02:00", "ev-V", "VEH")
    recording("ev-V-LATE", "2026-03-27T12:00:00+01:00", kind="VEH")
    ev("evidence.deleted", "2026-04-04T13:00:01+02:00", "ev-V-LATE", "VEH")
    # Holds in (at, seq) order. Stopped Feb 1 00:00Z: deadline Mar 1 00:00Z, + grace Mar 2 00:00Z.
    recording("ev-H", "2026-02-01T00:00:00Z")
    ev("evidence.hold_set", "2026-02-05T00:00:00Z", "ev-H")                          # no reference: RET-02
    ev("evidence.hold_set", "2026-02-06T00:00:00Z", "ev-H", procedure_ref="PV-1")    # protects
    ev("evidence.hold_released", "2026-03-05T00:00:00Z", "ev-H")                     # until Mar 6 00:00Z
    ev("evidence.hold_set", "2026-03-06T00:00:00Z", "ev-H", procedure_ref="PV-2")    # a re-hold is not considered
    recording("ev-H-AT-LIMIT", "2026-02-01T00:00:00Z")
    ev("evidence.hold_set", "2026-03-02T00:00:00Z", "ev-H-AT-LIMIT", procedure_ref="PV-3")
    recording("ev-H-KEPT", "2026-02-01T00:00:00Z")
    ev("evidence.hold_set", "2026-02-10T00:00:00Z", "ev-H-KEPT", procedure_ref="PV-4")
    ev("evidence.viewed", "2026-04-01T00:00:00Z", "ev-H-KEPT", justification="JUD")  # held: no ACC-03
    recording("ev-H-SAME-INSTANT", "2026-02-01T00:00:00Z")
    ev("evidence.hold_set", "2026-02-10T00:00:00Z", "ev-H-SAME-INSTANT")
    ev("evidence.hold_set", "2026-02-10T00:00:00Z", "ev-H-SAME-INSTANT", procedure_ref="PV-5")
    # Consultations.
    recording("ev-C", "2026-02-01T00:00:00Z", unit="CSP C")
    e.consult_ok = ev("evidence.viewed", "2026-03-02T00:00:00Z", "ev-C", justification="JUD")        # at the limit
    e.consult_late = ev("evidence.viewed", "2026-03-02T00:00:00.001Z", "ev-C", justification="JUD")  # ACC-03
    e.no_justification = ev("evidence.viewed", "2026-02-02T00:00:00Z", "ev-C")
    e.export_no_recipient = ev("evidence.exported", "2026-02-02T00:00:00Z", "ev-C", justification="JUD", procedure_ref="PV")
    e.shared_ok = ev("evidence.shared", "2026-02-02T00:00:00Z", "ev-C", justification="JUD", procedure_ref="PV", recipient="TJ")
    e.no_badge = ev("evidence.viewed", "2026-02-02T00:00:00Z", "ev-C", justification="JUD", actor={"badge": None, "unit": "X"})
    e.deleted_no_badge = ev("evidence.deleted", "2026-02-03T00:00:00Z", "ev-C", actor={"badge": None, "unit": "X"})
    e.unknown_recording = ev("evidence.viewed", "2026-04-01T00:00:00Z", "ev-UNKNOWN", justification="JUD")
    e.after_as_of = ev("evidence.viewed", "2026-04-30T00:00:00Z", "ev-C")
    # Sequence: a quarantined event still occupies its number; 3 numbers go missing.
    ev("evidence.viewed", "2026-02-02T00:00:00", "ev-C", justification="JUD")  # no offset: quarantined
    gap_before = ev("evidence.viewed", "2026-02-02T00:00:00Z", "ev-C", justification="JUD")
    ev("evidence.viewed", "2026-02-02T00:00:00Z", "ev-C", justification="JUD", seq=gap_before["seq"] + 4, id="e-after-gap")
    e.gap = f"cams:{gap_before['seq'] + 1}-{gap_before['seq'] + 3}"
    e.load()
    return e


@pytest.fixture(scope="module")
def found(cams: MiniEstate) -> dict:
    return cams.findings(AS_OF)


def test_ret_01_bwc_month_and_veh_exact_days(found) -> None:
    assert ("RET-01", "ev-A") not in found
    assert found[("RET-01", "ev-A-LATE")]["occurred_at"] == "2026-03-01T09:30:00Z"
    assert found[("RET-01", "ev-A-LATE")]["device_class"] == "BWC"
    assert ("RET-01", "ev-V") not in found
    assert found[("RET-01", "ev-V-LATE")]["occurred_at"] == "2026-04-04T11:00:00Z"
    assert found[("RET-01", "ev-V-LATE")]["legal_ref"] == "CSI L243-1"


def test_holds_first_with_reference_protects_until_the_first_release(found) -> None:
    assert found[("RET-02", "ev-H")]["occurred_at"] == "2026-02-05T00:00:00Z"
    assert found[("RET-01", "ev-H")]["occurred_at"] == "2026-03-06T00:00:00Z"  # re-hold ignored
    assert found[("RET-01", "ev-H-AT-LIMIT")]["occurred_at"] == "2026-03-02T00:00:00Z"
    assert ("RET-01", "ev-H-KEPT") not in found
    assert ("RET-01", "ev-H-SAME-INSTANT") not in found and ("RET-02", "ev-H-SAME-INSTANT") in found


def test_consultations(found, cams: MiniEstate) -> None:
    assert ("ACC-03", cams.consult_ok["id"]) not in found
    late = found[("ACC-03", cams.consult_late["id"])]
    assert late["occurred_at"] == "2026-03-02T00:00:00.001Z" and late["holder"] == "CSP C"
    assert found[("ACC-01", cams.no_justification["id"])]["detail"] == "consultation without justification"
    assert found[("ACC-01", cams.export_no_recipient["id"])]["detail"] == "consultation without recipient"
    assert ("ACC-01", cams.shared_ok["id"]) not in found
    assert ("LOG-08", cams.no_badge["id"]) in found
    assert ("LOG-08", cams.deleted_no_badge["id"]) not in found
    assert not any(s == cams.unknown_recording["id"] for c, s in found if c == "ACC-03")
    assert not any(s == cams.after_as_of["id"] for _, s in found)
    assert not any(s == cams.consult_ok["id"] for c, s in found if c == "ACC-03")


def test_log_01(found, cams: MiniEstate) -> None:
    assert {s for c, s in found if c == "LOG-01"} == {cams.gap}
    assert found[("LOG-01", cams.gap)]["device_class"] == ""
