"""A deterministic generator of estates: the four kinds of source plus the register.

    info = generate(out_dir, n_events=5000, seed=7, phases=1)

writes into `out_dir`, laid out like shared/samples/:

    vigie.yml                     the four sources below; bodycam base_url http://127.0.0.1:PORT
    authorisations.json           the register (VP, BWC, VEH, LAPI and one DRONE entry per
                                  group of flights, with a GeoJSON perimeter)
    as_of.txt                     the instant the data is complete at
    vms.sqlite                    cameras, recordings, audit_log (UTC text, 'Z' or naive)
    bodycam_events.jsonl          the platform's events, one per line, in ARRIVAL order:
                                  serve it with vigie.simulate.bodycam_server
    drones/flights/YYYY-MM-DD.jsonl        flights of the week starting that day
    drones/flights/YYYY-MM-DD_late.jsonl   flights of that week delivered a month late
    drones/flights/corrections_YYYY-MM.jsonl  re-sent flights of that month (revisions)
    drones/tracks/<flight_id>.csv
    lapi/reads_D.csv              reads of day D, exported 17 days later
    lapi/reads_D_2.csv            corrections: reads deleted on day D (deleted_at filled)
    lapi/reads_D_3.csv            a late backfill of day D
    lapi/reads_D_manual.csv       one hand-made export with a wrong header
    lapi/queries_D.csv            queries of day D

`n_events` is the approximate total of rows over all sources (35% VMS, 25% body cameras,
10% drones, 30% LAPI). Everything is streamed (files written day by day, SQLite sorts what
must be sorted), so memory stays bounded at millions of rows. Each source draws from its
own random stream, so the same seed and n give byte-identical files.

Phases. With phases=k>1, generate() builds the complete estate in `out_dir/.vigie-sim/`
and delivers phase 1 only; each `info.advance()` (or `advance(out_dir)`, which reads the
state left in that folder) delivers the next one. The data's time span is cut into k equal
slices and each unit is delivered in the slice of its delivery time:
  - lapi/ and drones/ files are copied whole when due, never touched again; late files
    (`_3`, `_late`, some tracks) come at least one phase after their nominal time, so a
    file may arrive whose name sorts before files already delivered; a track file never
    comes before its flight's file;
  - bodycam_events.jsonl only grows: lines are appended when they arrive, and a few lines
    of each phase are held back to the next one, so late events have a lower seq than
    events already served;
  - vms.sqlite changes in place: recordings appear when finished, deleted_at and holds
    are filled in when they happen (updated_at moves forward), audit_log rows are appended;
  - as_of.txt is rewritten with the end of the phase.
After the last phase the staging folder is removed and the estate holds exactly what
generate(phases=1) writes (bodycam lines possibly in another order).

`EstateInfo.counts` tells what was generated and planted: rows per source, and
`<source>.<defect>` for each planted defect (quarantine cases, duplicates, corrections,
gaps, late arrivals, and data that breaks a rule).
"""
from __future__ import annotations

import argparse
import array
import bisect
import copy
import heapq
import json
import random
import shutil
import sqlite3
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from math import cos, pi, radians, sin
from pathlib import Path

# ------------------------------------------------------------------------------- time

DAY = 86400


def _epoch(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp())


START = _epoch("2026-01-01T00:00:00+01:00")
END = _epoch("2026-05-01T00:00:00+02:00")  # nothing in an estate happens at or after END
N_DAYS = 120
_DST_ON = _epoch("2026-03-29T01:00:00+00:00")
_DST_OFF = _epoch("2026-10-25T01:00:00+00:00")
_DATES: dict[int, str] = {}


def _ymd(day: int) -> str:
    text = _DATES.get(day)
    if text is None:
        text = _DATES[day] = time.strftime("%Y-%m-%d", time.gmtime(day * DAY))
    return text


def _offset(t: int) -> int:
    return 7200 if _DST_ON <= t < _DST_OFF else 3600


def paris(t: int) -> str:
    """Europe/Paris local time with its offset, e.g. 2026-03-01T10:04:05+01:00."""
    off = 7200 if _DST_ON <= t < _DST_OFF else 3600
    day, s = divmod(t + off, DAY)
    return "%sT%02d:%02d:%02d%s" % (_ymd(day), s // 3600, s // 60 % 60, s % 60,
                                    "+02:00" if off == 7200 else "+01:00")


def utc(t: int, z: bool = True) -> str:
    day, s = divmod(t, DAY)
    return "%sT%02d:%02d:%02d%s" % (_ymd(day), s // 3600, s // 60 % 60, s % 60, "Z" if z else "")


def _paris_ms(ms: int) -> str:
    t, frac = divmod(ms, 1000)
    text = paris(t)
    return "%s.%03d%s" % (text[:-6], frac, text[-6:])


def _utc_ms(ms: int) -> str:
    t, frac = divmod(ms, 1000)
    return "%s.%03dZ" % (utc(t, False), frac)


def local_day(t: int) -> int:
    """Number of the Paris calendar day holding instant t."""
    return (t + _offset(t)) // DAY


def local_time(day: int, secs: int = 0) -> int:
    """The instant of local clock `secs` after midnight on Paris day `day`."""
    guess = day * DAY + secs - 3600
    return day * DAY + secs - _offset(guess)


def _next_utc_clock(t: int, secs: int) -> int:
    """First instant at or after t whose UTC clock reads `secs` after midnight: purge jobs."""
    day, s = divmod(t, DAY)
    return day * DAY + secs if s <= secs else (day + 1) * DAY + secs


def _parse_utc(text) -> int | None:
    """VMS text timestamp ('Z' or naive meaning UTC) to epoch seconds; None if unreadable."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp())


_IMPOSSIBLE_DATES = ("2026-02-30", "2026-02-31", "2026-04-31", "2026-13-01", "2026-00-12")


def _impossible(text: str, rng: random.Random) -> str:
    return rng.choice(_IMPOSSIBLE_DATES) + text[10:]


def _naive(text: str) -> str:
    if text.endswith("Z"):
        return text[:-1]
    return text[:-6] if text[-6] in "+-" else text


# ------------------------------------------------------------------------ identifiers


def _hexid(i: int, bits: int, salt: int) -> str:
    """A random-looking but collision-free id: a bijection of the counter i."""
    mask = (1 << bits) - 1
    x = (i * 0x9E3779B97F4A7C15 + salt) & mask  # odd multiplier: bijective modulo 2**bits
    x ^= x >> (bits // 2)  # xor-shift: bijective too
    x = (x * 0xBF58476D1CE4E5B9) & mask
    return format(x, "0%dx" % (bits // 4))


def _pv(rng: random.Random) -> str:
    return "PV-2026-%06d" % rng.randrange(1_000_000)


OPERATORS = ["m.durand", "j.martin", "e.roux", "c.leroy", "s.bernard", "l.girard", "a.petit",
             "n.moreau", "p.fournier", "h.lambert", "r.bonnet", "v.mercier", "t.garnier",
             "f.chevalier", "k.faure", "d.andre", "b.blanc", "g.guerin", "i.muller", "o.henry"]
JUSTIFICATIONS = ["JUD", "ADM", "DISC", "TRAIN", "SIGNAL_JUD"]
RECIPIENTS = ["TJ Lyon", "Parquet de Lyon", "Parquet de Villefranche", "IGPN", "Préfecture du Rhône"]
LP_PURPOSES = ["LP_TERR", "LP_THEFT", "LP_CRIME", "LP_CUSTOMS", "LP_ORDER"]
DR_PURPOSES = ["DR1", "DR2", "DR3", "DR4", "DR5", "DR6"]


# ------------------------------------------------------------------------- planting


class _Plant:
    """Decides which rows carry which planted defect.

    Each kind is drawn at its rate; besides, kind number j falls due on call
    `first + j * every` and is forced on the first call from then on while it has not come
    up, so that even a tiny estate carries every kind at least once. draw() gives at most
    one kind (defects that would hide each other), flags() draws each kind on its own."""

    def __init__(self, rng, counts: Counter, prefix: str, rates: dict[str, float],
                 first: int = 1, every: int = 2):
        self.rng, self.counts, self.prefix = rng, counts, prefix
        self.rates = list(rates.items())
        self.due = [(first + j * every, kind) for j, kind in enumerate(rates)]
        self.calls = 0

    def _overdue(self, i: int) -> list[str]:
        if not self.due or self.due[0][0] > i:
            return []
        self.due = [(at, kind) for at, kind in self.due if not self.counts[self.prefix + kind]]
        return [kind for at, kind in self.due if at <= i]

    def draw(self) -> str | None:
        overdue = self._overdue(self.calls)
        self.calls += 1
        u = self.rng.random()
        kind = overdue[0] if overdue else None
        if kind is None:
            for name, rate in self.rates:
                if u < rate:
                    kind = name
                    break
                u -= rate
        if kind:
            self.counts[self.prefix + kind] += 1
        return kind

    def flags(self) -> frozenset:
        overdue = self._overdue(self.calls)
        self.calls += 1
        hit = []
        for name, rate in self.rates:
            if self.rng.random() < rate or name in overdue:
                hit.append(name)
                self.counts[self.prefix + name] += 1
        return frozenset(hit)

    def undo(self, kind: str) -> None:
        """A planted defect that could not be applied after all (it would fall after END):
        if it was the only one, it falls due again."""
        self.counts[self.prefix + kind] -= 1
        if not self.counts[self.prefix + kind]:
            self.due = sorted(self.due + [(self.calls, kind)])


# ------------------------------------------------------------------------- building


class _Build:
    """What every source generator shares: the folder, the seed, counts and deliveries."""

    def __init__(self, root: Path, n_events: int, seed: int, side: Path | None):
        self.root, self.n, self.seed, self.side = root, n_events, seed, side
        self.counts: Counter = Counter()
        # (relative path, delivery instant, nominal instant, late, path of the file it follows)
        self.files: list[tuple] = []
        vms, bodycam, drones = round(n_events * 0.35), round(n_events * 0.25), round(n_events * 0.10)
        self.budget = {"vms": vms, "bodycam": bodycam, "drones": drones,
                       "lapi": max(0, n_events - vms - bodycam - drones)}

    def rng(self, name: str) -> random.Random:
        # one stream per source: a change in one source leaves the others' bytes alone
        return random.Random(f"vigie-estate:{self.seed}:{name}")

    def salt(self, name: str) -> int:
        return self.rng("salt:" + name).getrandbits(64)

    def deliver(self, rel: str, t: int, nominal: int | None = None, late: bool = False,
                after: str | None = None) -> None:
        self.files.append((rel, int(t), int(nominal if nominal is not None else t), late, after))


class _Register:
    """authorisations.json, streamed: the same bytes as json.dumps(entries, indent=1)."""

    def __init__(self, path: Path):
        self.f = open(path, "w", encoding="utf-8")
        self.f.write("[")
        self.n = 0

    def add(self, entry: dict) -> None:
        text = json.dumps(entry, indent=1, ensure_ascii=False).replace("\n", "\n ")
        self.f.write(("\n " if self.n == 0 else ",\n ") + text)
        self.n += 1

    def close(self) -> None:
        self.f.write("\n]" if self.n else "]")
        self.f.close()


def _entry(ref, device_class, holder, valid_from, valid_to, purposes, retention_days, perimeter=None):
    return {"authorisation_ref": ref, "device_class": device_class, "holder": holder,
            "valid_from": valid_from, "valid_to": valid_to, "purposes": purposes,
            "retention_days": retention_days, "perimeter": perimeter}


# ------------------------------------------------------------------------------- VMS

VMS_DDL = """\
CREATE TABLE cameras (camera_id TEXT PRIMARY KEY, site TEXT, authorisation_ref TEXT NULL,
                      lat DOUBLE, lon DOUBLE);
CREATE TABLE recordings (recording_id TEXT PRIMARY KEY, camera_id TEXT, started_at TEXT,
                         ended_at TEXT, deleted_at TEXT NULL, hold_set_at TEXT NULL,
                         hold_ref TEXT NULL, hold_released_at TEXT NULL, updated_at TEXT);
CREATE TABLE audit_log (log_id INTEGER PRIMARY KEY, logged_at TEXT, user_login TEXT NULL,
                        action TEXT, camera_id TEXT NULL, recording_id TEXT NULL,
                        justification TEXT NULL, procedure_ref TEXT NULL, recipient TEXT NULL);
"""

VP_TOWNS = [("LYO", "Ville de Lyon", ["Presqu'île", "Part-Dieu", "Vieux Lyon", "Confluence",
                                      "Gerland", "Croix-Rousse", "Guillotière", "Monplaisir"]),
            ("VIL", "Ville de Villeurbanne", ["Gratte-Ciel", "Charpennes", "Cusset"]),
            ("VEN", "Ville de Vénissieux", ["Minguettes", "Centre"])]
VP_PLACES = ["Place", "Rue", "Quai", "Avenue", "Parc", "Gare", "Pont", "Cours"]
VP_NAMES = ["Bellecour", "Carnot", "Jaurès", "Hugo", "Perrache", "Terreaux", "Lumière", "Zola"]
_CHUNK = 10_000


def _vp_authorisations(rng, n: int) -> list[dict]:
    entries = []
    width = max(3, len(str(n)))
    for i in range(n):
        _, town, sites = VP_TOWNS[i % len(VP_TOWNS)]
        site = sites[(i // len(VP_TOWNS)) % len(sites)]
        year = 2021 + i % 5
        valid_from = f"{year}-{1 + i % 12:02d}-01T00:00:00+01:00"
        valid_to = "2030-12-31T23:59:59+01:00"
        if i == 1:  # expires inside the estate: later recordings are unauthorised
            valid_to = "2026-03-16T00:00:00+01:00"
        elif i == 2:  # starts inside the estate: earlier recordings are unauthorised
            year, valid_from = 2026, "2026-02-09T00:00:00+01:00"
        purposes = sorted(rng.sample(["VP01", "VP03", "VP04", "VP05", "VP06", "VP07"], rng.randint(1, 2)))
        entries.append(_entry(f"AP-VP-69-{year}-{i + 1:0{width}d}", "VP", f"{town} - {site}",
                              valid_from, valid_to, purposes, rng.choice([7, 10, 15, 21, 30])))
    return entries


def _vp_cameras(rng, n: int, auths: list[dict], counts: Counter) -> list[tuple]:
    cams = []
    for i in range(n):
        code = VP_TOWNS[i % len(VP_TOWNS)][0]
        auth = auths[i % len(auths)]
        ref, days = auth["authorisation_ref"], auth["retention_days"]
        u = rng.random()
        if i == n - 1 or u < 0.02:  # a camera filming with no authorisation at all
            ref, days = None, None
            counts["vms.camera_without_authorisation"] += 1
        elif i == n - 2 or u < 0.03:  # a reference the register does not hold
            ref, days = f"AP-VP-69-2018-{i:04d}", None
            counts["vms.camera_unknown_authorisation"] += 1
        site = f"{rng.choice(VP_PLACES)} {rng.choice(VP_NAMES)}"
        cams.append((f"C-{code}-{i + 1:04d}", site, ref, round(45.70 + rng.random() * 0.1, 6),
                     round(4.78 + rng.random() * 0.14, 6), days))
    return cams


class _AuditSink:
    """VMS audit rows, collected unsorted in a scratch table, then numbered in time order."""

    def __init__(self, b: _Build, rng, scratch: sqlite3.Connection):
        self.rng, self.scratch, self.counts = rng, scratch, b.counts
        self.bad = _Plant(rng, b.counts, "vms.audit_log.",
                          {"action_wrong_case": 0.003, "action_unknown": 0.002,
                           "logged_at_missing": 0.002, "logged_at_impossible": 0.002}, first=5, every=7)
        self.gap = _Plant(rng, b.counts, "vms.", {"audit_log_gap": 0.001}, first=40)
        scratch.execute("CREATE TABLE audit (t INTEGER, k INTEGER, logged_at, user_login, action,"
                        " camera_id, recording_id, justification, procedure_ref, recipient)")
        self.rows: list[tuple] = []
        self.k = 0

    def add(self, t, user, action, camera=None, recording=None, justification=None,
            procedure_ref=None, recipient=None, clean=False) -> None:
        """clean: the row carries a planted finding, which a malformed row would hide."""
        logged = utc(t, self.rng.random() < 0.5)
        bad = None if clean else self.bad.draw()
        if bad == "action_wrong_case":
            action = action.capitalize()  # 'Playback': enums match case-sensitively
        elif bad == "action_unknown":
            action = self.rng.choice(["SNAPSHOT", "PRINT"])
        elif bad == "logged_at_missing":
            logged = self.rng.choice([None, ""])
        elif bad == "logged_at_impossible":
            logged = _impossible(logged, self.rng)
        self.rows.append((t, self.k, logged, user, action, camera, recording, justification,
                          procedure_ref, recipient))
        self.k += 1
        if len(self.rows) >= _CHUNK:
            self.flush()

    def flush(self) -> None:
        self.scratch.executemany("INSERT INTO audit VALUES (?,?,?,?,?,?,?,?,?,?)", self.rows)
        self.rows.clear()

    def finish(self, db: sqlite3.Connection) -> None:
        self.flush()
        log_id, out = 0, []
        for row in self.scratch.execute("SELECT * FROM audit ORDER BY t, k"):
            log_id += 1
            if self.gap.draw():
                log_id += self.rng.randint(1, 3)  # LOG-01: numbers that never reach Vigie
            out.append((log_id,) + row[2:])
            if len(out) >= _CHUNK:
                db.executemany("INSERT INTO audit_log VALUES (?,?,?,?,?,?,?,?,?)", out)
                out.clear()
        db.executemany("INSERT INTO audit_log VALUES (?,?,?,?,?,?,?,?,?)", out)
        self.counts["vms.audit_log"] = self.k
        self.scratch.execute("DROP TABLE audit")


def _build_vms(b: _Build, reg: _Register, scratch: sqlite3.Connection) -> list[str]:
    rng = b.rng("vms")
    n_rec = max(60, round(b.budget["vms"] / 2.93))
    n_cam = max(8, round(n_rec / (N_DAYS * 3)))
    auths = _vp_authorisations(rng, max(4, n_cam // 20))
    for auth in auths:
        reg.add(auth)
    cams = _vp_cameras(rng, n_cam, auths, b.counts)
    path = b.root / "vms.sqlite"
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    db.executescript(VMS_DDL)
    db.executemany("INSERT INTO cameras VALUES (?,?,?,?,?)", [c[:5] for c in cams])
    audit = _AuditSink(b, rng, scratch)
    fates = _Plant(rng, b.counts, "vms.recording.",
                   {"late_deletion": 0.03, "kept": 0.015, "hold": 0.02, "hold_released": 0.01,
                    "hold_without_ref": 0.006, "hold_after_deadline": 0.005}, first=3, every=3)
    bad = _Plant(rng, b.counts, "vms.recording.", {"ended_at_missing": 0.003,
                                                   "started_at_impossible": 0.003}, first=8, every=5)
    consult = _Plant(rng, b.counts, "vms.consultation.",
                     {"without_justification": 0.03, "without_user": 0.02,
                      "export_without_procedure_ref": 0.04, "export_without_recipient": 0.03},
                     first=1, every=3)
    span = END - START - DAY
    cycle = span * n_cam / n_rec
    mean_gap = max(600.0, cycle - 7860)
    rows: list[tuple] = []
    for cam_no, cam in enumerate(cams, 1):
        t = START + int(rng.random() * cycle)
        while True:
            end = t + rng.randint(1200, 4 * 3600)
            if end >= END - 3600:
                break
            rows.append(_vp_recording(rng, cam_no, cam, t, end, audit, fates, bad, consult, b.counts))
            if len(rows) >= _CHUNK:
                db.executemany("INSERT INTO recordings VALUES (?,?,?,?,?,?,?,?,?)", rows)
                rows.clear()
            t = end + 60 + int(rng.expovariate(1.0 / mean_gap))
    db.executemany("INSERT INTO recordings VALUES (?,?,?,?,?,?,?,?,?)", rows)
    audit.finish(db)
    db.commit()
    db.close()
    return [a["authorisation_ref"] for a in auths]


def _vp_recording(rng, cam_no, cam, start, end, audit, fates, bad_plant, consult, counts) -> tuple:
    cam_id, _, _, _, _, retention_days = cam
    counts["vms.recordings"] += 1
    z = rng.random() < 0.5  # the VMS writes both 'Z' and naive UTC text
    # a lawful purge runs inside the deadline: 1 calendar month is never under 28 days
    deadline = end + min(retention_days or 31, 28) * DAY
    deleted = _next_utc_clock(deadline, 2 * 3600 + 600)
    hold_set = hold_ref = released = None
    bad = bad_plant.draw()
    fate = fates.draw() if bad is None else None
    if fate == "late_deletion":
        deleted += rng.randint(2 * DAY, 20 * DAY)
    elif fate == "kept":
        deleted = None
    elif fate in ("hold", "hold_released", "hold_without_ref"):
        hold_set = end + int(rng.uniform(0.1, 0.9) * (deadline - end))
        hold_ref = None if fate == "hold_without_ref" else _pv(rng)
        deleted = None
        if fate == "hold_released":
            released = hold_set + rng.randint(3 * DAY, 40 * DAY)
            deleted = _next_utc_clock(max(deadline, released), 2 * 3600 + 600)
    elif fate == "hold_after_deadline":
        hold_set, hold_ref, deleted = deadline + rng.randint(3 * DAY, 10 * DAY), _pv(rng), None
    # what would happen after END has not happened yet
    if hold_set is not None and hold_set >= END:
        hold_set = hold_ref = released = None
        fates.undo(fate)
    if released is not None and released >= END:
        released = deleted = None
        fates.undo(fate)
    if deleted is not None and deleted >= END:
        deleted = None

    rec_id = "REC-%04d-%s" % (cam_no, utc(start, False).replace("-", "").replace(":", ""))
    user = rng.choice(OPERATORS)
    if rng.random() < 0.4:  # live viewing is logged but is no consultation
        live = start + int(rng.random() * (end - start))
        audit.add(live, user, "LIVE_VIEW", cam_id)
        if rng.random() < 0.35:
            audit.add(live + rng.randint(5, 120), user, "PTZ_MOVE", cam_id)
    n_consult = 1 if rng.random() < 0.2 else 2 if rng.random() < 0.06 else 0
    late = fate in ("kept", "late_deletion", "hold_after_deadline")
    for i in range(n_consult):
        lo = end + 300
        if late and i == 0 and rng.random() < 0.6:
            lo = deadline + 2 * DAY  # consulted while it should be gone: ACC-03
        hi = min(deleted or END, lo + 50 * DAY) - 60
        if hi <= lo:
            continue
        _vp_consultation(rng, lo + int(rng.random() * (hi - lo)), cam_id, rec_id, audit, consult)
    if hold_set is not None:
        audit.add(hold_set, rng.choice(OPERATORS), "HOLD_SET", cam_id, rec_id, "JUD", hold_ref, clean=True)
    if released is not None:
        audit.add(released, rng.choice(OPERATORS), "HOLD_RELEASE", cam_id, rec_id, None, hold_ref,
                  clean=True)
    if deleted is not None and rng.random() < 0.98:
        audit.add(deleted, "svc-purge", "DELETE", cam_id, rec_id)

    changed = max(end, deleted or 0, hold_set or 0, released or 0)
    started_s, ended_s = utc(start, z), utc(end, z)
    if bad == "ended_at_missing":
        ended_s = None
    elif bad == "started_at_impossible":
        started_s = _impossible(started_s, rng)
    fmt = lambda t: None if t is None else utc(t, z)  # noqa: E731
    return (rec_id, cam_id, started_s, ended_s, fmt(deleted), fmt(hold_set), hold_ref,
            fmt(released), utc(changed + 1, z))


def _vp_consultation(rng, t, cam_id, rec_id, audit, plant) -> None:
    user = rng.choice(OPERATORS)
    if rng.random() < 0.7:
        audit.add(t - rng.randint(30, 900), user, "LOGIN")
    export = rng.random() < 0.25
    just = rng.choice(JUSTIFICATIONS[:4])
    proc = _pv(rng) if export or rng.random() < 0.3 else None
    recipient = rng.choice(RECIPIENTS) if export else None
    kind = plant.draw()
    if kind == "without_justification":
        just = None
    elif kind == "without_user":
        user = rng.choice([None, ""])
    elif kind == "export_without_procedure_ref":
        export, proc, recipient = True, None, rng.choice(RECIPIENTS)
    elif kind == "export_without_recipient":
        export, proc, recipient = True, _pv(rng), None
    audit.add(t, user, "EXPORT" if export else "PLAYBACK", cam_id, rec_id, just, proc, recipient,
              clean=kind is not None)


# -------------------------------------------------------------------------- body cameras

BWC_UNITS = ["CSP Lyon 1", "CSP Lyon 3", "CSP Lyon 7", "CSP Villeurbanne", "CSP Vénissieux",
             "BAC 69", "PM Lyon", "PM Villeurbanne"]
BWC_PURPOSES = ["BWC_PREV", "BWC_EVID", "BWC_TRAIN"]
END_MS = END * 1000


class _EventSink:
    """Body-camera events, collected in a scratch table, then numbered and served.

    seq follows the platform's clock (an event uploaded late gets a late seq but keeps its
    old `at`); the file follows the serving order, where a few events come after events
    with a higher seq, and a few are served twice."""

    def __init__(self, b: _Build, rng, scratch: sqlite3.Connection):
        self.b, self.rng, self.scratch, self.counts = b, rng, scratch, b.counts
        self.salt = b.salt("event")
        self.bad = _Plant(rng, b.counts, "bodycam.event.",
                          {"at_naive": 0.003, "at_impossible": 0.002, "action_wrong_case": 0.002,
                           "action_unknown": 0.002, "kind_unknown": 0.003, "field_missing": 0.003},
                          first=4, every=5)
        self.arrival = _Plant(rng, b.counts, "bodycam.",
                              {"uploaded_late": 0.005, "served_late": 0.005, "served_twice": 0.005},
                              first=30, every=11)
        self.gap = _Plant(rng, b.counts, "bodycam.", {"seq_gap": 0.001}, first=25)
        scratch.execute("CREATE TABLE events (platform INTEGER, k INTEGER, serve_delay INTEGER,"
                        " dup_delay INTEGER, payload TEXT)")
        self.rows: list[tuple] = []
        self.k = 0

    def add(self, at_ms, serial, kind, badge, unit, action, evidence, purpose=None,
            justification=None, procedure_ref=None, recipient=None, clean=False) -> None:
        """clean: the event carries a planted finding, which a malformed event would hide."""
        rng = self.rng
        self.k += 1
        at = _utc_ms(at_ms) if kind == "VEH" else _paris_ms(at_ms)
        event = {"id": "e-" + _hexid(self.k, 48, self.salt), "at": at,
                 "device": {"serial": serial, "kind": kind}, "actor": {"badge": badge, "unit": unit},
                 "action": action, "evidence_id": evidence, "purpose": purpose,
                 "justification": justification, "procedure_ref": procedure_ref,
                 "recipient": recipient}
        bad = None if clean else self.bad.draw()
        if bad == "at_naive":
            event["at"] = _naive(at)
        elif bad == "at_impossible":
            event["at"] = _impossible(at, rng)
        elif bad == "action_wrong_case":
            event["action"] = ".".join(p.capitalize() for p in action.split("."))  # Evidence.Viewed
        elif bad == "action_unknown":
            event["action"] = rng.choice(["evidence.printed", "recording.paused"])
        elif bad == "kind_unknown":
            event["device"]["kind"] = rng.choice([kind.lower(), "DASH"])
        elif bad == "field_missing":
            what = rng.randrange(3)
            if what == 0:
                event["evidence_id"] = None
            elif what == 1:
                del event["actor"]["unit"]
            else:
                event["device"]["serial"] = ""
        platform, delays = at_ms, {}
        for late in ("uploaded_late", "served_late", "served_twice"):
            delays[late] = rng.randint(600_000, 3 * DAY * 1000)
        flags = self.arrival.flags()
        for late in ("uploaded_late", "served_late", "served_twice"):
            if late not in flags:
                delays[late] = 0
            elif platform + delays[late] >= END_MS - 60_000:  # every arrival stays in the estate
                delays[late] = 0
                self.arrival.undo(late)
            if late == "uploaded_late":
                platform += delays[late]
        serve_delay, dup_delay = delays["served_late"], delays["served_twice"]
        self.rows.append((platform, self.k, serve_delay, dup_delay, json.dumps(event)))
        if len(self.rows) >= _CHUNK:
            self.flush()

    def flush(self) -> None:
        self.scratch.executemany("INSERT INTO events VALUES (?,?,?,?,?)", self.rows)
        self.rows.clear()

    def finish(self, path: Path) -> None:
        self.flush()
        arrivals = array.array("q")
        side = open(self.b.side / "bodycam_arrivals.q", "wb") if self.b.side else None
        held: list[tuple] = []  # (served at, seq, line): the few lines served out of order
        seq = lines = 0
        with open(path, "w", encoding="utf-8") as out:
            def emit(served, line):
                nonlocal lines
                out.write(line)
                arrivals.append(served)
                lines += 1
                if len(arrivals) >= _CHUNK:
                    if side:
                        arrivals.tofile(side)
                    del arrivals[:]

            cur = self.scratch.execute("SELECT platform, serve_delay, dup_delay, payload"
                                       " FROM events ORDER BY platform, k")
            for platform, serve_delay, dup_delay, payload in cur:
                seq += 1
                if self.gap.draw():
                    seq += self.rng.randint(1, 4)
                line = '{"seq": %d, %s\n' % (seq, payload[1:])
                while held and held[0][0] <= platform:
                    served, _, text = heapq.heappop(held)
                    emit(served, text)
                if serve_delay:
                    heapq.heappush(held, (platform + serve_delay, seq, line))
                else:
                    emit(platform, line)
                if dup_delay:
                    heapq.heappush(held, (platform + dup_delay, seq, line))
            while held:
                served, _, text = heapq.heappop(held)
                emit(served, text)
        if side:
            arrivals.tofile(side)
            side.close()
        self.counts["bodycam.events"] = self.k
        self.counts["bodycam.lines"] = lines
        self.scratch.execute("DROP TABLE events")


def _build_bodycam(b: _Build, scratch: sqlite3.Connection) -> None:
    rng = b.rng("bodycam")
    n_rec = max(40, round(b.budget["bodycam"] / 3.16))
    n_dev = max(8, round(n_rec / (N_DAYS * 1.2)))
    n_veh = max(2, n_dev // 6)
    devices = [(f"BWC-{i + 1:05d}", "BWC", BWC_UNITS[i % len(BWC_UNITS)]) for i in range(n_dev - n_veh)]
    devices += [(f"VEH-{i + 1:04d}", "VEH", BWC_UNITS[(i * 3) % len(BWC_UNITS)]) for i in range(n_veh)]
    badges = {u: ["PN-%06d" % rng.randrange(100000, 1000000) for _ in range(10)] for u in BWC_UNITS}
    sink = _EventSink(b, rng, scratch)
    fates = _Plant(rng, b.counts, "bodycam.recording.",
                   {"late_deletion": 0.03, "kept": 0.015, "hold": 0.02, "hold_released": 0.01,
                    "hold_without_ref": 0.006, "hold_after_deadline": 0.005}, first=2, every=3)
    consult = _Plant(rng, b.counts, "bodycam.consultation.",
                     {"without_justification": 0.03, "without_badge": 0.02,
                      "without_procedure_ref": 0.04, "without_recipient": 0.03}, first=1, every=2)
    salt = b.salt("evidence")
    cycle = (END - START - DAY) * n_dev / n_rec
    mean_gap = max(600.0, cycle - 3800)
    rec_no = 0
    for serial, kind, unit in devices:
        t = START + int(rng.random() * cycle)
        while True:
            stop = t + rng.randint(300, 7200)
            if stop >= END - 3600:
                break
            rec_no += 1
            _bodycam_recording(rng, sink, fates, consult, serial, kind, unit, badges[unit],
                               "ev-" + _hexid(rec_no, 64, salt), t, stop)
            t = stop + 60 + int(rng.expovariate(1.0 / mean_gap))
    b.counts["bodycam.recordings"] = rec_no
    sink.finish(b.root / "bodycam_events.jsonl")


def _bodycam_recording(rng, sink, fates, consult, serial, kind, unit, badges, evidence, start, stop):
    badge = rng.choice(badges)
    start_ms, stop_ms = start * 1000 + rng.randrange(1000), stop * 1000 + rng.randrange(1000)
    purpose = "VEH_SAFETY" if kind == "VEH" else rng.choice(BWC_PURPOSES)
    sink.add(start_ms, serial, kind, badge, unit, "recording.started", evidence, purpose)
    sink.add(stop_ms, serial, kind, badge, unit, "recording.stopped", evidence)
    # the purge deletes a little inside the limit (VEH 7 days, BWC 1 month >= 28 days)
    deadline = stop_ms + (7 if kind == "VEH" else 28) * DAY * 1000
    deleted = _next_utc_clock(deadline // 1000, 5400) * 1000 + rng.randrange(1000)
    hold_set = hold_ref = released = None
    fate = fates.draw()
    if fate == "late_deletion":
        deleted += rng.randint(2 * DAY, 20 * DAY) * 1000
    elif fate == "kept":
        deleted = None
    elif fate in ("hold", "hold_released", "hold_without_ref"):
        hold_set = stop_ms + int(rng.uniform(0.1, 0.9) * (deadline - stop_ms))
        hold_ref = None if fate == "hold_without_ref" else _pv(rng)
        deleted = None
        if fate == "hold_released":
            released = hold_set + rng.randint(3 * DAY, 30 * DAY) * 1000
            deleted = _next_utc_clock(max(deadline, released) // 1000, 5400) * 1000 + 7
    elif fate == "hold_after_deadline":
        hold_set, hold_ref, deleted = deadline + rng.randint(3 * DAY, 10 * DAY) * 1000, _pv(rng), None
    if hold_set is not None and hold_set >= END_MS:
        hold_set = hold_ref = released = None
        fates.undo(fate)
    if released is not None and released >= END_MS:
        released = deleted = None
        fates.undo(fate)
    if deleted is not None and deleted >= END_MS:
        deleted = None

    n_consult = 1 if rng.random() < 0.25 else 2 if rng.random() < 0.07 else 0
    late = fate in ("kept", "late_deletion", "hold_after_deadline")
    for i in range(n_consult):
        lo = stop_ms + 600_000
        if late and i == 0 and rng.random() < 0.6:
            lo = deadline + 2 * DAY * 1000  # consulted while it should be gone: ACC-03
        hi = min(deleted or END_MS, lo + 40 * DAY * 1000) - 60_000
        if hi <= lo:
            continue
        action = rng.choices(["evidence.viewed", "evidence.exported", "evidence.shared"], (7, 2, 1))[0]
        who = rng.choice(badges)
        just = rng.choice(JUSTIFICATIONS[:4])
        full = action != "evidence.viewed"
        proc = _pv(rng) if full or rng.random() < 0.2 else None
        recipient = rng.choice(RECIPIENTS) if full else None
        defect = consult.draw()
        if defect == "without_justification":
            just = None
        elif defect == "without_badge":
            who = None
        elif defect == "without_procedure_ref":
            action, proc, recipient = "evidence.exported", None, rng.choice(RECIPIENTS)
        elif defect == "without_recipient":
            action, proc, recipient = "evidence.shared", _pv(rng), None
        sink.add(lo + int(rng.random() * (hi - lo)), serial, kind, who, unit, action, evidence,
                 None, just, proc, recipient, clean=defect is not None)
    if hold_set is not None:
        sink.add(hold_set, serial, kind, rng.choice(badges), unit, "evidence.hold_set", evidence,
                 None, "JUD", hold_ref, clean=True)
    if released is not None:
        sink.add(released, serial, kind, rng.choice(badges), unit, "evidence.hold_released",
                 evidence, None, None, hold_ref, clean=True)
    if deleted is not None:
        sink.add(deleted, serial, kind, None, "system", "evidence.deleted", evidence)


# -------------------------------------------------------------------------------- drones

DRONE_UNITS = ["DDSP 69", "GGD 69", "DIPN 69"]
DRONES = ["F-HDRN", "F-HDRO", "F-HDRP", "F-HDRQ", "F-HDRR", "F-HDRS"]
M_PER_DEG = 111_320.0


def _polygon(rng, lat, lon, radius_m) -> list[list[float]]:
    """A star-shaped ring around (lat, lon): it holds the disc of radius radius_m / 2."""
    n = rng.randint(7, 12)
    step = 2 * pi / n
    ring = []
    for i in range(n):
        a = step * (i + rng.uniform(-0.2, 0.2))
        r = radius_m * rng.uniform(0.8, 1.0)
        ring.append(_offset_deg(lat, lon, r * cos(a), r * sin(a)))
    ring.append(ring[0])
    return ring


def _hour_floor(t: int) -> int:
    return t - t % 3600  # Paris offsets are whole hours: a whole UTC hour is a whole local one


def _offset_deg(lat, lon, east_m, north_m) -> list[float]:
    return [round(lon + east_m / (M_PER_DEG * cos(radians(lat))), 6),
            round(lat + north_m / M_PER_DEG, 6)]


class _Drones:
    """Flights by groups sharing one authorisation, their tracks, files and corrections."""

    def __init__(self, b: _Build, reg: _Register, vp_refs: list[str]):
        self.b, self.reg, self.vp_refs = b, reg, vp_refs
        self.rng = rng = b.rng("drones")
        counts = b.counts
        n = b.budget["drones"]
        self.n_flights = max(30, round(n / 21))
        self.points = max(3.0, n / self.n_flights - 1.2)
        self.width = max(4, len(str(self.n_flights)))
        self.folder = b.root / "drones"
        (self.folder / "flights").mkdir(parents=True, exist_ok=True)
        (self.folder / "tracks").mkdir(parents=True, exist_ok=True)
        self.bad = _Plant(rng, counts, "drones.flight.",
                          {"invalid_json": 0.003, "time_naive": 0.003, "date_impossible": 0.003,
                           "boolean_wrong_type": 0.002, "required_missing": 0.003,
                           "consultation_recipient_missing": 0.002}, first=1, every=2)
        # what a good flight line may carry: defects that would hide each other are drawn
        # from one exclusive group; late deliveries come first so they are forced early
        self.rule = _Plant(rng, counts, "drones.flight.",
                           {"delivered_late": 0.02, "track_late": 0.03, "track_outside": 0.03,
                            "audio": 0.02, "facial_recognition": 0.01, "recording_late": 0.02,
                            "consultation_not_signal_jud": 0.03, "consultation_without_by": 0.02,
                            "no_track": 0.04}, first=0, every=1)
        self.authorisation = _Plant(rng, counts, "drones.flight.",
                                    {"no_authorisation_ref": 0.02, "unknown_authorisation_ref": 0.01,
                                     "non_drone_authorisation_ref": 0.005, "outside_validity": 0.02},
                                    first=1, every=2)
        self.purpose = _Plant(rng, counts, "drones.flight.",
                              {"purpose_not_authorised": 0.02, "purpose_wrong_case": 0.01,
                               "purpose_unknown": 0.005, "purpose_missing": 0.01}, first=2, every=2)
        self.interior = _Plant(rng, counts, "drones.flight.", {"interior": 0.03, "interior_kept": 0.015},
                               first=3, every=2)
        self.fix = _Plant(rng, counts, "drones.flight.",
                          {"repeated": 0.01, "revision_2": 0.025, "revision_3": 0.005,
                           "conflicting_revision": 0.003}, first=1, every=2)
        self.point_bad = _Plant(rng, counts, "drones.track.",
                                {"t_naive": 0.003, "lat_not_number": 0.002, "field_count": 0.002,
                                 "invalid_utf8": 0.002}, first=3, every=4)
        self.header = _Plant(rng, counts, "drones.track.", {"header_wrong": 0.0005}, first=4)
        self.week = None
        self.week_lines: list[str] = []
        self.late_lines: list[str] = []
        self.corrections: dict[str, list[str]] = defaultdict(list)
        self.auth_no = self.consult_no = 0

    def run(self) -> None:
        rng, i = self.rng, 0
        slot = (END - START - 3 * DAY) / self.n_flights
        while i < self.n_flights:
            u = rng.random()
            g = min(1 if u < 0.6 else 2 if u < 0.85 else 3, self.n_flights - i)
            t = START + 3600 + int((i + rng.random() * 0.5) * slot)
            group = []
            for j in range(g):
                landing = t + rng.randint(15, 110) * 60
                group.append((i + j + 1, t, landing))
                t = landing + rng.randint(20, 90) * 60
            i += g
            self._group(group)
        self._close_week()
        for month in sorted(self.corrections):
            rel = f"flights/corrections_{month}.jsonl"
            (self.folder / rel).write_text("".join(self.corrections[month]), encoding="utf-8")
            self.b.counts["drones.flight_lines"] += len(self.corrections[month])
            y, m = int(month[:4]), int(month[5:])
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
            when = _epoch(f"{y}-{m:02d}-15T12:00:00+02:00")
            self.b.deliver("drones/" + rel, when, when)

    # --- a group of flights under one authorisation
    def _group(self, group) -> None:
        rng = self.rng
        unit, drone = rng.choice(DRONE_UNITS), rng.choice(DRONES)
        lat, lon = 45.72 + rng.random() * 0.08, 4.80 + rng.random() * 0.10
        radius = rng.uniform(500, 1400)
        ring = _polygon(rng, lat, lon, radius)
        purposes = sorted(rng.sample(DR_PURPOSES, rng.randint(1, 2)))
        # the whole group goes into the file of its first takeoff's week (Monday; day 0 was a
        # Thursday): group starts only move forward, so a week's file is never reopened
        day = local_day(group[0][1])
        week = day - (day + 3) % 7
        if week != self.week:
            self._close_week()
            self.week = week
        flights = []
        for no, takeoff, landing in group:
            bad = self.bad.draw()
            flags = frozenset() if bad else self._flags()
            flights.append((no, takeoff, landing, bad, flags))
        shared = [f for f in flights if "outside_validity" not in f[4]]
        group_ref = None
        if shared:
            first, last = min(f[1] for f in shared), max(f[2] for f in shared)
            group_ref = self._authorise(unit, purposes, ring, _hour_floor(first) - 3600 * rng.randint(0, 2),
                                        _hour_floor(last) + 3600 * rng.randint(1, 3))
        for no, takeoff, landing, bad, flags in flights:
            ref = group_ref
            if "outside_validity" in flags:  # its own authorisation starts after takeoff: AUT-02
                ref = self._authorise(unit, purposes, ring, _hour_floor(takeoff) + 3600,
                                      _hour_floor(landing) + 3 * 3600)
            self._flight(no, takeoff, landing, bad, flags, unit, drone, ref, purposes,
                         (lat, lon, radius))

    def _flags(self) -> frozenset:
        flags = self.rule.flags()
        # stray points are only judged under a DRONE authorisation: keep theirs valid
        extra = [None if "track_outside" in flags else self.authorisation.draw(),
                 self.purpose.draw(), self.interior.draw()]
        return flags | {kind for kind in extra if kind}

    def _authorise(self, unit, purposes, ring, valid_from, valid_to) -> str:
        self.auth_no += 1
        ref = f"AP-69-2026-{self.auth_no:0{self.width}d}"
        self.reg.add(_entry(ref, "DRONE", unit, paris(valid_from), paris(valid_to), purposes, 7,
                            {"type": "Polygon", "coordinates": [ring]}))
        return ref

    def _flight(self, no, takeoff, landing, bad, flags, unit, drone, ref, purposes, area) -> None:
        rng, b = self.rng, self.b
        fid = f"FL-69-2026-{no:0{self.width}d}"
        z = rng.random() < 0.25
        fmt = utc if z else paris  # reports come with offsets or in UTC, like the sample
        if "no_authorisation_ref" in flags:
            ref = None
        elif "unknown_authorisation_ref" in flags:
            ref = f"AP-69-2025-{no:0{self.width}d}"  # no DRONE entry has a 2025 reference
        elif "non_drone_authorisation_ref" in flags:
            ref = self.vp_refs[no % len(self.vp_refs)]
        purpose = rng.choice(purposes)
        if "purpose_not_authorised" in flags:
            purpose = rng.choice([p for p in DR_PURPOSES if p not in purposes])
        elif "purpose_wrong_case" in flags:
            purpose = purpose.lower()  # 'dr2' is a PUR-01 finding, never a quarantine
        elif "purpose_unknown" in flags:
            purpose = rng.choice(["DR9", "DR0", "VP05"])
        elif "purpose_missing" in flags:
            purpose = None
        recordings = []
        for j in range(rng.choices((1, 2, 3), (6, 3, 1))[0]):
            interior = j == 0 and bool(flags & {"interior", "interior_kept"})
            if interior and "interior_kept" in flags:
                deleted = landing + rng.randint(60, 140) * 3600  # past 48 h: RET-04
            elif interior:
                deleted = landing + rng.randint(1, 40) * 3600
            elif j == 0 and "recording_late" in flags:
                deleted = None if rng.random() < 0.3 else landing + rng.randint(8, 20) * DAY
            else:
                deleted = landing + rng.randint(2 * 3600, int(6.5 * DAY))
            if deleted is not None and deleted >= END:
                deleted = None
            recordings.append({"recording_id": f"{fid}-r{j + 1}", "interior": interior,
                               "deleted_at": None if deleted is None else fmt(deleted)})
        pilot = "PN-%06d" % rng.randrange(100000, 1000000)
        consultations = []
        first_gone = min((_epoch(r["deleted_at"]) for r in recordings if r["deleted_at"]), default=END)
        n_consult = rng.choices((0, 1, 2), (6, 3, 1))[0]
        if flags & {"consultation_not_signal_jud", "consultation_without_by"}:
            n_consult = max(n_consult, 1)
        for j in range(n_consult):
            lo, hi = landing + 600, min(first_gone, landing + 6 * DAY) - 60
            if hi <= lo:
                break
            self.consult_no += 1
            just = "SIGNAL_JUD"
            by = pilot if rng.random() < 0.7 else "PN-%06d" % rng.randrange(100000, 1000000)
            if j == 0 and "consultation_not_signal_jud" in flags:
                just = rng.choice(["JUD", "ADM", "signal_jud"])
            if j == 0 and "consultation_without_by" in flags:
                by = None
            at = lo + int(rng.random() * (hi - lo))
            consultations.append({"event_id": f"c-{self.consult_no}", "at": fmt(at), "by": by,
                                  "justification": just,
                                  "recipient": rng.choice(["Parquet de Lyon", "Parquet de Villefranche"])})
        obj = {"flight_id": fid, "revision": 1, "drone_id": drone, "unit": unit,
               "pilot": pilot, "authorisation_ref": ref,
               "purpose": purpose, "takeoff_at": fmt(takeoff), "landing_at": fmt(landing),
               "audio_recorded": "audio" in flags, "facial_recognition": "facial_recognition" in flags,
               "recordings": recordings, "consultations": consultations}
        line = self._spoil(obj, bad) if bad else json.dumps(obj) + "\n"
        b.counts["drones.flights"] += 1
        b.counts["drones.flight_lines"] += 1

        late = "delivered_late" in flags
        (self.late_lines if late else self.week_lines).append(line)
        rel = self._week_rel(late)
        delivered = local_time(self.week + 7, 6 * 3600) + (30 * DAY if late else 0)

        fix = None if bad else self.fix.draw()
        if fix:
            self._correct(obj, line, fix, takeoff)
        if "no_track" in flags and "track_outside" in flags:
            self.rule.undo("no_track")  # the stray points matter more
        if "no_track" not in flags or "track_outside" in flags:
            self._track(fid, takeoff, landing, fmt, area, "track_outside" in flags,
                        delivered + rng.randint(0, 2 * DAY), "track_late" in flags, rel)

    def _spoil(self, obj, bad) -> str:
        rng = self.rng
        if bad == "invalid_json":
            text = json.dumps(obj)
            return text[: len(text) * 3 // 5] + "\n"  # a truncated upload: not JSON at all
        if bad == "time_naive":
            obj["landing_at"] = _naive(obj["landing_at"])
        elif bad == "date_impossible":
            obj["takeoff_at"] = _impossible(obj["takeoff_at"], rng)
        elif bad == "boolean_wrong_type":
            if rng.random() < 0.5:
                obj["audio_recorded"] = "false"
            else:
                obj["recordings"][0]["interior"] = "no"
        elif bad == "required_missing":
            if rng.random() < 0.5:
                obj["pilot"] = None
            else:
                del obj["drone_id"]
        elif bad == "consultation_recipient_missing":
            self.consult_no += 1
            obj["consultations"].append({"event_id": f"c-{self.consult_no}", "at": obj["landing_at"],
                                         "by": obj["pilot"], "justification": "SIGNAL_JUD",
                                         "recipient": None})
        return json.dumps(obj) + "\n"

    def _correct(self, obj, line, fix, takeoff) -> None:
        month = _ymd(local_day(takeoff))[:7]
        if fix == "repeated":  # the same line sent again: a duplicate
            self.corrections[month].append(line)
            return
        if fix == "conflicting_revision":  # same revision, other content: the first one wins
            other = copy.deepcopy(obj)
            other["pilot"] = "PN-%06d" % self.rng.randrange(100000, 1000000)
            self.corrections[month].append(json.dumps(other) + "\n")
            return
        rev2 = copy.deepcopy(obj)
        rev2["revision"] = 2
        rev2["landing_at"] = _shift(rev2["landing_at"], self.rng.randint(60, 900))
        if fix == "revision_2":
            self.corrections[month].append(json.dumps(rev2) + "\n")
            return
        # revision 3 comes before revision 2: the highest wins whatever the order
        rev3 = copy.deepcopy(rev2)
        rev3["revision"] = 3
        rev3["pilot"] = "PN-%06d" % self.rng.randrange(100000, 1000000)
        self.corrections[month].append(json.dumps(rev3) + "\n")
        y, m = int(month[:4]), int(month[5:])
        self.corrections[f"{y}-{m + 1:02d}" if m < 12 else f"{y + 1}-01"].append(json.dumps(rev2) + "\n")

    def _week_rel(self, late: bool) -> str:
        return f"flights/{_ymd(max(self.week, local_day(START)))}{'_late' if late else ''}.jsonl"

    def _close_week(self) -> None:
        if self.week is None:
            return
        delivered = local_time(self.week + 7, 6 * 3600)
        for late, lines in ((False, self.week_lines), (True, self.late_lines)):
            if lines:
                rel = self._week_rel(late)
                (self.folder / rel).write_text("".join(lines), encoding="utf-8")
                self.b.deliver("drones/" + rel, delivered + (30 * DAY if late else 0),
                               local_time(self.week), late)
                lines.clear()

    def _track(self, fid, takeoff, landing, fmt, area, outside, delivered, late, flight_rel) -> None:
        rng, counts = self.rng, self.b.counts
        lat0, lon0, radius = area
        n = max(2, round(self.points * rng.uniform(0.5, 1.5)))
        x = y = 0.0
        stray = set()
        if outside:  # 1 to 3 points well beyond the perimeter (>= 150 m out): AUT-03
            k = rng.randrange(1, n) if n > 1 else 0
            stray = set(range(k, min(n, k + rng.randint(1, 3))))
        header = "t,lat,lon,alt_m"
        if not stray and self.header.draw():  # a spoilt file would hide the stray points
            header = "time,latitude,longitude,altitude"  # every line of this file is quarantined
        out = [(header + "\n").encode()]
        for i in range(n):
            t = takeoff + (landing - takeoff) * i // (n - 1)
            x += rng.uniform(-0.12, 0.12) * radius
            y += rng.uniform(-0.12, 0.12) * radius
            d = (x * x + y * y) ** 0.5
            if d > 0.45 * radius:  # stay well inside the perimeter
                x, y = x * 0.45 * radius / d, y * 0.45 * radius / d
            px, py = x, y
            if i in stray:
                a, r = rng.uniform(0, 2 * pi), radius + rng.uniform(150, 800)
                px, py = r * cos(a), r * sin(a)
            lon, lat = _offset_deg(lat0, lon0, px, py)
            row = "%s,%.6f,%.6f,%d" % (fmt(t), lat, lon, rng.randint(30, 120))
            bad = None if stray else self.point_bad.draw()
            if bad == "t_naive":
                row = _naive(row.split(",", 1)[0]) + "," + row.split(",", 1)[1]
            elif bad == "lat_not_number":
                row = row.replace(",%.6f," % lat, ",%.3fN," % lat, 1)
            elif bad == "field_count":
                row += ",GPS"
            data = (row + "\n").encode()
            if bad == "invalid_utf8":
                data = data.replace(b",", b"\xff,", 1)
            out.append(data)
        counts["drones.track_points"] += n
        counts["drones.track_files"] += 1
        rel = f"tracks/{fid}.csv"
        (self.folder / rel).write_bytes(b"".join(out))
        self.b.deliver("drones/" + rel, delivered + (20 * DAY if late else 0), delivered, late,
                       after="drones/" + flight_rel)


def _shift(text: str, seconds: int) -> str:
    t = int(datetime.fromisoformat(text).timestamp()) + seconds
    return utc(t) if text.endswith("Z") else paris(t)


# ---------------------------------------------------------------------------------- LAPI

READS_HEADER = "read_id,read_at,camera_id,plate_hash,matched,deleted_at"
QUERIES_HEADER = "event_id,at,user,read_id,purpose,procedure_ref"


class _Lapi:
    """Daily reads and queries. A read file is exported 17 days after its day, so most
    unmatched reads already carry their deletion; a deletion that comes later arrives as a
    correction in reads_<day of deletion>_2.csv."""

    def __init__(self, b: _Build):
        self.b = b
        self.rng = rng = b.rng("lapi")
        counts = b.counts
        n = b.budget["lapi"]
        self.n_reads = max(100, round(n * 0.87))
        self.query_rate = 0.13
        self.cams = [f"LAPI-A7-{i:02d}" for i in range(1, 4 + self.n_reads // 200_000)]
        self.folder = b.root / "lapi"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.read_salt, self.query_salt = b.salt("read"), b.salt("query")
        self.read_bad = _Plant(rng, counts, "lapi.read.",
                               {"matched_unknown": 0.003, "invalid_utf8": 0.002, "field_count": 0.002,
                                "read_at_naive": 0.003, "read_at_impossible": 0.002,
                                "read_id_missing": 0.002, "camera_missing": 0.002}, first=3, every=5)
        self.read_fate = _Plant(rng, counts, "lapi.read.",
                                {"late_deletion": 0.015, "never_deleted": 0.01}, first=5, every=9)
        self.read_dup = _Plant(rng, counts, "lapi.read.", {"exact_duplicate": 0.005}, first=20)
        self.backfill = _Plant(rng, counts, "lapi.read.", {"late_backfill": 0.003}, first=12)
        self.query_bad = _Plant(rng, counts, "lapi.query.",
                                {"at_naive": 0.003, "at_impossible": 0.002, "read_id_missing": 0.003,
                                 "event_id_missing": 0.002, "field_count": 0.002}, first=2, every=3)
        self.query_rule = _Plant(rng, counts, "lapi.query.",
                                 {"without_user": 0.02, "purpose_missing": 0.02,
                                  "purpose_wrong_case": 0.01, "purpose_unknown": 0.005,
                                  "unknown_read": 0.003}, first=1, every=3)
        self.unmatched_rule = _Plant(rng, counts, "lapi.query.",
                                     {"unmatched_without_procedure_ref": 0.05}, first=2)
        self.query_dup = _Plant(rng, counts, "lapi.query.",
                                {"exact_duplicate": 0.005, "conflicting_duplicate": 0.002}, first=6, every=4)
        self.pending: dict[str, list[bytes]] = defaultdict(list)  # lines due in a later file
        self.queries: dict[int, list[tuple]] = defaultdict(list)  # local day -> (key, line)
        self.read_no = self.query_no = 0
        self.end_day = local_day(START) + N_DAYS

    def run(self) -> None:
        rng, day0 = self.rng, local_day(START)
        per_day = self.n_reads / N_DAYS
        manual_day = day0 + 40
        for d in range(day0, day0 + N_DAYS):
            lo, hi = local_time(d), local_time(d + 1)
            times = sorted(lo + int(rng.random() * (hi - lo))
                           for _ in range(max(1, round(per_day * rng.uniform(0.8, 1.2)))))
            main, backfill = [], []
            for t in times:
                late = self.backfill.draw() is not None
                delivered = local_time(d + (45 if late else 17))
                (backfill if late else main).append(self._read(t, d, delivered))
            name = _ymd(d)
            self._write(f"reads_{name}.csv", READS_HEADER, main + self.pending.pop(f"reads_{name}.csv", []),
                        local_time(d + 17))
            if f"reads_{name}_2.csv" in self.pending:
                self._write(f"reads_{name}_2.csv", READS_HEADER, self.pending.pop(f"reads_{name}_2.csv"),
                            local_time(d + 1, 5 * 3600))
            if backfill:
                self._write(f"reads_{name}_3.csv", READS_HEADER, backfill, local_time(d + 45),
                            local_time(d), late=True)
            if d == manual_day:
                self._manual(d)
            day_queries = sorted(self.queries.pop(d, []))
            if day_queries:
                self._write(f"queries_{name}.csv", QUERIES_HEADER, [q[-1] for q in day_queries],
                            local_time(d + 1, 6 * 3600))
        assert not self.pending and not self.queries, "lines left for a day past the estate"

    def _read(self, t, d, delivered) -> bytes:
        rng, counts = self.rng, self.b.counts
        self.read_no += 1
        rid = "rd-" + _hexid(self.read_no, 40, self.read_salt)
        matched = rng.random() < 0.03
        # purge at 03:00 UTC (04:00 or 05:00 in Paris) after 15 days, or 28 for a match
        deleted = _next_utc_clock(t + (28 if matched else 15) * DAY, 3 * 3600)
        bad = self.read_bad.draw()
        fate = None if bad else self.read_fate.draw()
        if fate == "late_deletion":
            deleted += rng.randint(3 * DAY, 25 * DAY)
        elif fate == "never_deleted":
            deleted = None
        if deleted is not None and deleted >= END:
            deleted = None
        fields = [rid, paris(t), rng.choice(self.cams), "%016x" % rng.getrandbits(64),
                  "1" if matched else "0", paris(deleted) if deleted and deleted <= delivered else ""]
        counts["lapi.reads"] += 1
        if bad == "matched_unknown":
            fields[4] = rng.choice(["2", "true", "Y"])
        elif bad == "field_count":
            fields.append("A7-SUD")
        elif bad == "read_at_naive":
            fields[1] = _naive(fields[1])
        elif bad == "read_at_impossible":
            fields[1] = _impossible(fields[1], rng)
        elif bad == "read_id_missing":
            fields[0] = ""
        elif bad == "camera_missing":
            fields[2] = ""
        line = (",".join(fields) + "\n").encode()
        if bad == "invalid_utf8":
            line = line.replace(fields[3].encode(), b"\xff\xfe" + fields[3][2:].encode())
        if bad:
            return line
        if deleted and deleted > delivered:  # the deletion reaches Vigie as a correction
            fields[5] = paris(deleted)
            self.pending[f"reads_{_ymd(local_day(deleted))}_2.csv"].append((",".join(fields) + "\n").encode())
            counts["lapi.read.correction"] += 1
        elif d + 1 < self.end_day and self.read_dup.draw():
            self.pending[f"reads_{_ymd(d + 1)}.csv"].append(line)
        if rng.random() < self.query_rate:
            self._query(rid, t, deleted, matched)
        return line

    def _query(self, rid, read_at, deleted, matched) -> None:
        rng = self.rng
        qt = read_at + rng.randint(120, 7 * DAY)
        if qt >= min(deleted or END, END) - 60:
            return
        self.query_no += 1
        fields = ["q-" + _hexid(self.query_no, 40, self.query_salt), paris(qt),
                  "OPJ-%05d" % rng.randrange(100000), rid, rng.choice(LP_PURPOSES), _pv(rng)]
        bad = self.query_bad.draw()
        rule = None if bad else self.query_rule.draw()
        if rule == "without_user":
            fields[2] = ""
        elif rule == "purpose_missing":
            fields[4] = ""
        elif rule == "purpose_wrong_case":
            fields[4] = fields[4].lower()
        elif rule == "purpose_unknown":
            fields[4] = rng.choice(["LP_SPEED", "VP05"])
        elif rule == "unknown_read":
            fields[3] = "rd-" + _hexid(10**9 + self.query_no, 40, self.read_salt)
        if not bad and not matched and self.unmatched_rule.draw():
            fields[5] = ""  # ACC-04: an unmatched read consulted outside any procedure
        if bad == "at_naive":
            fields[1] = _naive(fields[1])
        elif bad == "at_impossible":
            fields[1] = _impossible(fields[1], rng)
        elif bad == "read_id_missing":
            fields[3] = ""
        elif bad == "event_id_missing":
            fields[0] = ""
        elif bad == "field_count":
            fields.append("note")
        line = (",".join(fields) + "\n").encode()
        day = local_day(qt)
        self.queries[day].append((0, qt, self.query_no, line))
        self.b.counts["lapi.queries"] += 1
        dup = None if bad or day + 1 >= self.end_day else self.query_dup.draw()
        if dup == "exact_duplicate":
            self.queries[day + 1].append((1, qt, self.query_no, line))
        elif dup == "conflicting_duplicate":  # same event id, other content: the first one wins
            fields[2] = "OPJ-%05d" % rng.randrange(100000)
            self.queries[day + 1].append((1, qt, self.query_no, (",".join(fields) + "\n").encode()))

    def _manual(self, d) -> None:
        """A hand-made export with a French header: the whole file is quarantined."""
        rows = []
        for i in range(3):
            self.read_no += 1
            t = local_time(d, 9 * 3600 + i * 1800)
            rows.append(("rd-%s,%s,%s,%016x,0,\n" % (_hexid(self.read_no, 40, self.read_salt), paris(t),
                                                      self.cams[0], self.rng.getrandbits(64))).encode())
        self._write(f"reads_{_ymd(d)}_manual.csv",
                    "id_lecture,horodatage,camera,empreinte,correspondance,suppression", rows,
                    local_time(d + 2))
        self.b.counts["lapi.file.header_wrong"] += 1

    def _write(self, name, header, lines, delivered, nominal=None, late=False) -> None:
        with open(self.folder / name, "wb") as f:
            f.write((header + "\n").encode())
            f.writelines(lines)
        kind = "lapi.read_rows" if name.startswith("reads_") else "lapi.query_rows"
        self.b.counts[kind] += len(lines)
        self.b.deliver("lapi/" + name, delivered, nominal, late)


# -------------------------------------------------------------------------------- estate

VIGIE_YML = """\
# A generated estate (vigie.simulate.estate, seed {seed}, about {n} rows).
# Paths are relative to this file's folder. Serve bodycam_events.jsonl with
# vigie.simulate.bodycam_server and put its port in place of PORT.
warehouse: var/warehouse.duckdb
timezone: Europe/Paris
grace_hours: 24
register: authorisations.json
sources:
  - name: vms-lyon
    kind: vms_sql
    url: sqlite:///vms.sqlite
  - name: bodycams
    kind: bodycam_api
    base_url: http://127.0.0.1:PORT
    token_env: BODYCAM_TOKEN
  - name: drones-69
    kind: drone_files
    path: drones
  - name: lapi-a7
    kind: lapi_files
    path: lapi
    holder: Préfecture du Rhône
"""
STAGING = ".vigie-sim"
_OUTPUTS = ["vigie.yml", "authorisations.json", "as_of.txt", "vms.sqlite", "bodycam_events.jsonl",
            "drones", "lapi", STAGING]
_STATIC = ["vigie.yml", "authorisations.json"]


def _build(root: Path, n_events: int, seed: int, side: Path | None) -> _Build:
    root.mkdir(parents=True, exist_ok=True)
    b = _Build(root, n_events, seed, side)
    reg = _Register(root / "authorisations.json")
    reg.add(_entry("AP-BWC-69-2025-001", "BWC", "DDSP 69", "2025-01-01T00:00:00+01:00",
                   "2030-12-31T23:59:59+01:00", BWC_PURPOSES, 30))
    reg.add(_entry("AP-VEH-69-2025-001", "VEH", "DDSP 69", "2025-01-01T00:00:00+01:00",
                   "2030-12-31T23:59:59+01:00", ["VEH_SAFETY"], 7))
    reg.add(_entry("AP-LAPI-69-2025-001", "LAPI", "Préfecture du Rhône", "2025-01-01T00:00:00+01:00",
                   "2030-12-31T23:59:59+01:00", LP_PURPOSES, 15))
    # SQLite sorts what must be sorted (audit rows, events) on disk: memory stays bounded
    scratch = sqlite3.connect("")
    scratch.execute("PRAGMA journal_mode=OFF")
    scratch.execute("PRAGMA synchronous=OFF")
    try:
        vp_refs = _build_vms(b, reg, scratch)
        _build_bodycam(b, scratch)
        _Drones(b, reg, vp_refs).run()
        _Lapi(b).run()
    finally:
        scratch.close()
        reg.close()
    (root / "vigie.yml").write_text(VIGIE_YML.format(seed=seed, n=n_events), encoding="utf-8")
    (root / "as_of.txt").write_text(paris(END) + "\n", encoding="utf-8")
    c = b.counts
    c["register.entries"] = reg.n
    c["rows"] = (c["vms.recordings"] + c["vms.audit_log"] + c["bodycam.lines"] + c["drones.flight_lines"]
                 + c["drones.track_points"] + c["lapi.read_rows"] + c["lapi.query_rows"])
    return b


@dataclass
class EstateInfo:
    out_dir: Path
    config_path: Path
    seed: int
    n_events: int
    phases: int
    phase: int
    as_of: str  # the end of the current phase: pass it as --as-of
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def events_path(self) -> Path:
        return self.out_dir / "bodycam_events.jsonl"

    @property
    def done(self) -> bool:
        return self.phase >= self.phases

    def advance(self) -> "EstateInfo":
        """Deliver the next phase into out_dir; returns self, updated."""
        nxt = advance(self.out_dir)
        self.phase, self.as_of = nxt.phase, nxt.as_of
        return self


def generate(out_dir: Path, n_events: int = 5000, seed: int = 7, phases: int = 1) -> EstateInfo:
    """Write an estate into out_dir (phase 1 of `phases`); see the module docstring."""
    out_dir = Path(out_dir)
    if phases < 1:
        raise ValueError("phases must be at least 1")
    for name in _OUTPUTS:  # a previous estate's leftovers would break determinism
        path = out_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    if phases == 1:
        b = _build(out_dir, n_events, seed, None)
        return EstateInfo(out_dir, out_dir / "vigie.yml", seed, n_events, 1, 1, paris(END), dict(b.counts))
    side = out_dir / STAGING
    side.mkdir(parents=True)
    b = _build(side / "full", n_events, seed, side)
    state = {"seed": seed, "n_events": n_events, "phases": phases, "phase": 0,
             "counts": dict(b.counts), "files": b.files}
    return _deliver(out_dir, state)


def advance(out_dir: Path) -> EstateInfo:
    """Deliver the next phase of the phased estate in out_dir (state kept in .vigie-sim/)."""
    out_dir = Path(out_dir)
    path = out_dir / STAGING / "state.json"
    if not path.exists():
        raise RuntimeError(f"{out_dir}: no phase left to deliver")
    return _deliver(out_dir, json.loads(path.read_text()))


# ------------------------------------------------------------------------------ phases


def _cuts(k: int) -> list[int]:
    """Ends of phases 1..k-1, at Paris midnights; phase k takes everything left."""
    day0 = local_day(START)
    return [local_time(day0 + round(N_DAYS * i / k)) for i in range(1, k)]


def _phase_of(t: int, cuts: list[int]) -> int:
    return bisect.bisect_right(cuts, t) + 1


def _deliver(out_dir: Path, state: dict) -> EstateInfo:
    p, k = state["phase"] + 1, state["phases"]
    side, cuts = out_dir / STAGING, _cuts(k)
    full = side / "full"
    if p == 1:
        for name in _STATIC:
            shutil.copyfile(full / name, out_dir / name)
    for rel, phase in _file_phases(state["files"], cuts, k).items():
        if phase == p:
            (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(full / rel, out_dir / rel)
    (out_dir / "drones" / "flights").mkdir(parents=True, exist_ok=True)
    (out_dir / "drones" / "tracks").mkdir(parents=True, exist_ok=True)
    (out_dir / "lapi").mkdir(parents=True, exist_ok=True)
    _deliver_events(full / "bodycam_events.jsonl", side / "bodycam_arrivals.q",
                    out_dir / "bodycam_events.jsonl", p, cuts, k)
    _deliver_vms(full / "vms.sqlite", out_dir / "vms.sqlite", p, cuts, k)
    as_of = paris(cuts[p - 1]) if p < k else paris(END)
    (out_dir / "as_of.txt").write_text(as_of + "\n", encoding="utf-8")
    state["phase"] = p
    if p == k:
        shutil.rmtree(side)
    else:
        (side / "state.json").write_text(json.dumps(state))
    return EstateInfo(out_dir, out_dir / "vigie.yml", state["seed"], state["n_events"], k, p, as_of,
                      state["counts"])


def _file_phases(files, cuts, k) -> dict[str, int]:
    phases: dict[str, int] = {}
    for rel, t, nominal, late, after in files:
        if not after:
            p = _phase_of(t, cuts)
            if late:  # late on purpose: always after the files of its own time
                p = max(p, min(k, _phase_of(nominal, cuts) + 1))
            phases[rel] = p
    for rel, t, nominal, late, after in files:
        if after:  # a track never comes before its flight
            p = max(_phase_of(t, cuts), phases[after])
            phases[rel] = max(p, min(k, phases[after] + 1)) if late else p
    return phases


def _deliver_events(full: Path, arrivals_path: Path, out: Path, p: int, cuts, k) -> None:
    """Append the lines arriving in phase p. The file is in arrival order, so each phase is
    a block of lines; a few lines of block p-1 are held back to phase p: they come after
    events with a higher seq that were already served."""
    arrivals = array.array("q")
    with open(arrivals_path, "rb") as f:
        arrivals.frombytes(f.read())
    bounds = [0] + [bisect.bisect_left(arrivals, c * 1000) for c in cuts] + [len(arrivals)]

    def held(i: int, block: int) -> bool:
        a, z = bounds[block - 1], bounds[block]
        return block < k and ((i - a) % 97 == 50 or i == z - 2)

    lo = bounds[max(p - 2, 0)]
    with open(full, "rb") as src, open(out, "ab") as dst:
        for i, line in enumerate(src):
            if i < lo:
                continue
            block = bisect.bisect_right(bounds, i, 1, len(bounds) - 1)
            if block > p:
                break
            if (block == p - 1 and held(i, block)) or (block == p and not held(i, block)):
                dst.write(line)


def _recording_at(row: tuple, cut: int | None) -> tuple | None:
    """A recordings row as the VMS showed it just before `cut` (None: as it is at the end)."""
    if cut is None:
        return row
    rec_id, cam, started, ended, deleted, hold_set, hold_ref, released, updated = row
    t_end = _parse_utc(ended) or _parse_utc(started) or START  # a spoilt row: its other end
    if t_end >= cut:
        return None  # not finished yet: not listed
    seen = [t_end]
    t = _parse_utc(deleted)
    if t is None or t >= cut:
        deleted = None
    else:
        seen.append(t)
    t = _parse_utc(hold_set)
    if t is None or t >= cut:
        hold_set = hold_ref = None
    else:
        seen.append(t)
    t = _parse_utc(released)
    if t is None or t >= cut:
        released = None
    else:
        seen.append(t)
    if (deleted, hold_set, hold_ref, released) == row[4:8]:
        return row
    return (rec_id, cam, started, ended, deleted, hold_set, hold_ref, released,
            utc(max(seen) + 1, updated.endswith("Z")))


def _deliver_vms(full: Path, out: Path, p: int, cuts, k) -> None:
    cut = cuts[p - 1] if p < k else None
    before = cuts[p - 2] if p >= 2 else None
    src, dst = sqlite3.connect(full), sqlite3.connect(out)
    try:
        if p == 1:
            dst.executescript(VMS_DDL)
            dst.executemany("INSERT INTO cameras VALUES (?,?,?,?,?)", src.execute("SELECT * FROM cameras"))
        rows = []
        for row in src.execute("SELECT * FROM recordings ORDER BY recording_id"):
            now = _recording_at(row, cut)
            if now is not None and (p == 1 or now != _recording_at(row, before)):
                rows.append(now)
                if len(rows) >= _CHUNK:
                    dst.executemany("INSERT OR REPLACE INTO recordings VALUES (?,?,?,?,?,?,?,?,?)", rows)
                    rows.clear()
        dst.executemany("INSERT OR REPLACE INTO recordings VALUES (?,?,?,?,?,?,?,?,?)", rows)
        rows.clear()
        # audit rows are numbered in time order: a phase is a run of log_ids
        phase, last = 1, START
        for row in src.execute("SELECT * FROM audit_log ORDER BY log_id"):
            t = _parse_utc(row[1])
            last = t if t is not None else last  # an unreadable time stays with its neighbours
            phase = max(phase, _phase_of(last, cuts))
            if phase == p:
                rows.append(row)
            elif phase > p:
                break
            if len(rows) >= _CHUNK:
                dst.executemany("INSERT INTO audit_log VALUES (?,?,?,?,?,?,?,?,?)", rows)
                rows.clear()
        dst.executemany("INSERT INTO audit_log VALUES (?,?,?,?,?,?,?,?,?)", rows)
        dst.commit()
    finally:
        src.close()
        dst.close()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Generate a Vigie estate.")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("-n", "--n-events", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--phases", type=int, default=1)
    parser.add_argument("--advance", action="store_true", help="deliver the next phase")
    args = parser.parse_args(argv)
    started = time.time()
    if args.advance:
        info = advance(args.out_dir)
    else:
        info = generate(args.out_dir, args.n_events, args.seed, args.phases)
    print(f"{info.out_dir}: phase {info.phase}/{info.phases}, as of {info.as_of}, "
          f"{info.counts.get('rows', 0)} rows, {time.time() - started:.1f}s")


if __name__ == "__main__":
    main()
