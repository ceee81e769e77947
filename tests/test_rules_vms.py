"""Rules on VP recordings and VMS consultations, at their edges (domain.md).

Grace 24 h. Calendar months in Europe/Paris. "Later than" is strict.
"""

from __future__ import annotations

import pytest

from tests.mini_estate import MiniEstate, auth

AS_OF = "2026-04-20T12:00:00+02:00"


@pytest.fixture(scope="module")
def vms(tmp_path_factory: pytest.TempPathFactory) -> MiniEstate:
    e = MiniEstate(tmp_path_factory.mktemp("vms"))
    e.register += [auth("A-31", "VP", retention_days=31), auth("A-10", "VP", retention_days=10),
                   auth("A-END", "VP", valid_to="2026-02-01T00:00:00+01:00"), auth("A-DRONE", "DRONE", holder="Drone entry holder")]
    e.cameras += [{"camera_id": c, "site": "S", "authorisation_ref": a, "lat": 45.7, "lon": 4.8}
                  for c, a in (("C31", "A-31"), ("C10", "A-10"), ("CNONE", None), ("CEND", "A-END"), ("CDRONE", "A-DRONE"))]
    r = e.recording
    # Jan 31 10:00 Paris + 1 month = Feb 28 10:00 Paris (09:00Z); + 24 h grace = Mar 1 09:00Z.
    r("R-MONTHEND", "C31", "2026-01-31T08:00:00", "2026-01-31T09:00:00", deleted_at="2026-03-01T09:00:00")
    r("R-MONTHEND-LATE", "C31", "2026-01-31T08:00:00", "2026-01-31T09:00:00Z", deleted_at="2026-03-01T09:00:01Z")
    # 10 days (the authorisation's value) is shorter than the month.
    r("R-SHORT", "C10", "2026-01-10T11:00:00", "2026-01-10T12:00:00", deleted_at="2026-01-21T12:00:01")
    r("R-SHORT-OK", "C10", "2026-01-10T11:00:00", "2026-01-10T12:00:00", deleted_at="2026-01-21T12:00:00")
    # Across the spring change: Mar 10 12:00 Paris (+01) + 1 month = Apr 10 12:00 Paris (+02) = 10:00Z.
    r("R-DST", "C31", "2026-03-10T10:00:00", "2026-03-10T11:00:00")
    # Holds on the one slot: ended Feb 1 00:00Z, deadline Mar 1 00:00Z, + grace Mar 2 00:00Z.
    r("R-HOLD", "C31", "2026-01-31T23:00:00", "2026-02-01T00:00:00", hold_set_at="2026-03-01T23:59:59", hold_ref="PV-1")
    r("R-HOLD-AT-LIMIT", "C31", "2026-01-31T23:00:00", "2026-02-01T00:00:00", hold_set_at="2026-03-02T00:00:00", hold_ref="PV-2")
    r("R-HOLD-NOREF", "C31", "2026-01-31T23:00:00", "2026-02-01T00:00:00", hold_set_at="2026-02-10T00:00:00", hold_ref="")
    r("R-RELEASED", "C31", "2026-01-31T23:00:00", "2026-02-01T00:00:00", hold_set_at="2026-02-05T00:00:00",
      hold_ref="PV-3", hold_released_at="2026-03-10T00:00:00", deleted_at="2026-03-11T00:00:00")
    r("R-RELEASED-LATE", "C31", "2026-01-31T23:00:00", "2026-02-01T00:00:00", hold_set_at="2026-02-05T00:00:00",
      hold_ref="PV-4", hold_released_at="2026-03-10T00:00:00", deleted_at="2026-03-11T00:00:01")
    r("R-RELEASED-EARLY", "C31", "2026-01-31T23:00:00", "2026-02-01T00:00:00", hold_set_at="2026-02-05T00:00:00",
      hold_ref="PV-5", hold_released_at="2026-02-10T00:00:00", deleted_at="2026-03-02T00:00:01")
    # Released after as-of: still protecting at as-of.
    r("R-RELEASE-AFTER-AS-OF", "C31", "2026-01-31T23:00:00", "2026-02-01T00:00:00", hold_set_at="2026-02-05T00:00:00",
      hold_ref="PV-6", hold_released_at="2026-05-01T00:00:00")
    # Authorisation at the recording's start: closed interval [valid_from, valid_to].
    r("R-NOREF", "CNONE", "2026-04-10T00:00:00", "2026-04-10T01:00:00", deleted_at="2026-04-11T00:00:00")
    r("R-AT-END", "CEND", "2026-01-31T23:00:00", "2026-02-01T00:00:00", deleted_at="2026-02-02T00:00:00")
    r("R-AFTER-END", "CEND", "2026-01-31T23:00:01", "2026-02-01T00:00:00", deleted_at="2026-02-02T00:00:00")
    r("R-DRONE-ENTRY", "CDRONE", "2026-04-10T00:00:00", "2026-04-10T01:00:00", deleted_at="2026-04-11T00:00:00")
    r("R-UNKNOWN-CAMERA", "CX", "2026-04-10T00:00:00", "2026-04-10T01:00:00", deleted_at="2026-04-11T00:00:00")
    r("R-FUTURE", "CNONE", "2026-04-21T00:00:00", "2026-04-21T01:00:00")
    # Consultations (PLAYBACK, EXPORT); LIVE_VIEW and LOGIN are not.
    r("R-CONSULTED", "C31", "2026-03-10T10:00:00", "2026-03-10T11:00:00", deleted_at="2026-04-12T00:00:00")
    L = e.log
    L(1, "2026-04-11T10:00:00", "PLAYBACK", recording_id="R-CONSULTED", camera_id="C31", justification="JUD")
    L(2, "2026-04-11T10:00:01", "PLAYBACK", recording_id="R-CONSULTED", camera_id="C31", justification="JUD")
    L(3, "2026-04-01T00:00:00", "PLAYBACK", recording_id="R-HOLD", justification="JUD")
    L(4, "2026-04-01T00:00:00", "PLAYBACK", recording_id="R-UNKNOWN", justification=None)
    L(5, "2026-02-01T00:00:00", "EXPORT", recording_id="R-HOLD", justification="JUD", procedure_ref="PV", recipient=None)
    L(6, "2026-02-01T00:00:00", "EXPORT", recording_id="R-HOLD", justification="JUD", procedure_ref="PV", recipient="TJ")
    L(7, "2026-02-01T00:00:00", "LIVE_VIEW", camera_id="C31")
    L(8, "2026-02-01T00:00:00", "PLAYBACK", recording_id="R-HOLD", justification="ADM", user_login=None)
    L(9, "2026-02-01T00:00:00", "LOGIN", user_login=None)
    L(10, "2026-02-01T00:00:00", "Playback", recording_id="R-HOLD")  # quarantined: still occupies 10
    L(13, "2026-02-02T00:00:00", "LOGIN")                              # 11-12 missing
    L(14, "2026-04-30T00:00:00", "PLAYBACK", recording_id="R-HOLD")    # after as-of: ignored
    e.load()
    return e


@pytest.fixture(scope="module")
def found(vms: MiniEstate) -> dict:
    return vms.findings(AS_OF)


def test_ret_01_month_end_clamps_and_the_limit_itself_is_on_time(found) -> None:
    assert ("RET-01", "R-MONTHEND") not in found
    assert found[("RET-01", "R-MONTHEND-LATE")]["occurred_at"] == "2026-03-01T09:00:00Z"


def test_ret_01_authorisation_value_shorter_than_a_month(found) -> None:
    assert ("RET-01", "R-SHORT-OK") not in found
    assert found[("RET-01", "R-SHORT")]["occurred_at"] == "2026-01-21T12:00:00Z"


def test_ret_01_presence_at_as_of_across_the_dst_change(vms: MiniEstate) -> None:
    # Apr 10 10:00Z + 24 h: present exactly then is on time, a second later is not.
    assert ("RET-01", "R-DST") not in vms.findings("2026-04-11T10:00:00Z")
    assert vms.findings("2026-04-11T10:00:01Z")[("RET-01", "R-DST")]["occurred_at"] == "2026-04-11T10:00:00Z"


def test_ret_01_and_ret_02_with_holds(found) -> None:
    assert ("RET-01", "R-HOLD") not in found                       # ref, set a second before deadline + grace
    assert found[("RET-01", "R-HOLD-AT-LIMIT")]["occurred_at"] == "2026-03-02T00:00:00Z"  # not strictly before
    assert ("RET-02", "R-HOLD-AT-LIMIT") not in found
    assert found[("RET-02", "R-HOLD-NOREF")]["occurred_at"] == "2026-02-10T00:00:00Z"
    assert ("RET-01", "R-HOLD-NOREF") in found                     # a hold without a reference protects nothing
    assert ("RET-01", "R-RELEASED") not in found                   # gone by max(deadline, release) + grace
    assert found[("RET-01", "R-RELEASED-LATE")]["occurred_at"] == "2026-03-11T00:00:00Z"
    assert found[("RET-01", "R-RELEASED-EARLY")]["occurred_at"] == "2026-03-02T00:00:00Z"
    assert ("RET-01", "R-RELEASE-AFTER-AS-OF") not in found


def test_aut_01_closed_validity_and_vp_entries_only(found) -> None:
    assert found[("AUT-01", "R-NOREF")]["detail"] == "camera has no authorisation reference"
    assert ("AUT-01", "R-AT-END") not in found
    assert found[("AUT-01", "R-AFTER-END")]["occurred_at"] == "2026-01-31T23:00:01Z"
    assert ("AUT-01", "R-DRONE-ENTRY") in found
    # The VP holder is that of the register entry named, whatever its class (domain.md, Holders).
    assert found[("AUT-01", "R-DRONE-ENTRY")]["holder"] == "Drone entry holder"
    assert found[("AUT-01", "R-NOREF")]["holder"] == "vms"  # no entry: the source's name
    assert ("AUT-01", "R-UNKNOWN-CAMERA") in found
    assert found[("AUT-01", "R-UNKNOWN-CAMERA")]["detail"] == "camera CX is not in the cameras table"
    assert not any(subject == "R-FUTURE" for _, subject in found)  # after as-of: ignored


def test_acc_03_after_the_lawful_instant_only_for_known_unprotected_recordings(found) -> None:
    assert ("ACC-03", "1") not in found
    assert found[("ACC-03", "2")]["occurred_at"] == "2026-04-11T10:00:01Z"
    assert ("ACC-03", "3") not in found  # held
    assert ("ACC-03", "4") not in found and ("ACC-01", "4") in found  # unknown recording


def test_acc_01_and_log_08(found) -> None:
    assert found[("ACC-01", "5")]["detail"] == "consultation without recipient"
    assert ("ACC-01", "6") not in found
    assert ("ACC-01", "7") not in found  # live viewing is not a consultation
    assert ("LOG-08", "8") in found and ("LOG-08", "9") not in found
    assert not any(subject == "14" for _, subject in found)


def test_log_01_gaps_between_numbers_received(found, vms: MiniEstate) -> None:
    gaps = {s for (code, s) in found if code == "LOG-01"}
    assert gaps == {"vms:11-12"}  # 10 was quarantined but its number was read
    assert found[("LOG-01", "vms:11-12")]["device_class"] == "VP"
    assert ("audit_log:10", "action: unknown value 'Playback'") in vms.quarantine()
