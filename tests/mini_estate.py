"""A tiny estate written in the real source formats, for rule edge tests.

Tests add rows (register entries, VMS rows, body-camera events, flights, tracks, LAPI lines),
then `load()` runs the real pipeline and `findings()` the real `findings_at` macros. A second
VMS source (`vms2`) can be filled to make identifiers collide across sources, and
`parameters` replaces the shipped limits (versions, valid_from) for the whole estate.
"""

from __future__ import annotations

import csv
import json
import os
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import yaml

from vigie import db, pipeline, rules
from vigie.config import load_settings
from vigie.simulate.bodycam_server import BodycamServer

TOKEN = "mini"
VMS_SCHEMA = """
CREATE TABLE cameras (camera_id TEXT PRIMARY KEY, site TEXT, authorisation_ref TEXT NULL, lat DOUBLE, lon DOUBLE);
CREATE TABLE recordings (recording_id TEXT PRIMARY KEY, camera_id TEXT, started_at TEXT, ended_at TEXT,
    deleted_at TEXT NULL, hold_set_at TEXT NULL, hold_ref TEXT NULL, hold_released_at TEXT NULL, updated_at TEXT);
CREATE TABLE audit_log (log_id INTEGER PRIMARY KEY, logged_at TEXT, user_login TEXT NULL, action TEXT,
    camera_id TEXT NULL, recording_id TEXT NULL, justification TEXT NULL, procedure_ref TEXT NULL, recipient TEXT NULL);
"""


def auth(ref: str, cls: str, valid_from: str = "2025-01-01T00:00:00+01:00", valid_to: str = "2030-01-01T00:00:00+01:00",
         purposes: list[str] | None = None, retention_days: int | None = 30, perimeter: dict | None = None,
         holder: str = "Holder") -> dict:
    return {"authorisation_ref": ref, "device_class": cls, "holder": holder, "valid_from": valid_from,
            "valid_to": valid_to, "purposes": purposes or [], "retention_days": retention_days, "perimeter": perimeter}


class Findings:
    """Findings as rows. ``found[(rule, subject)]`` is the one finding of that pair and fails
    when two sources gave one each (so a test never hides a duplicate); ``found[(rule, source,
    subject)]`` names the source. Iterating gives the (rule, subject) pairs, repeats included."""

    def __init__(self, rows: list[dict]) -> None:
        self.rows = rows

    def where(self, key: tuple) -> list[dict]:
        fields = ("rule_code", "subject_id") if len(key) == 2 else ("rule_code", "source", "subject_id")
        return [r for r in self.rows if tuple(r[f] for f in fields) == tuple(key)]

    def __contains__(self, key: tuple) -> bool:
        return bool(self.where(key))

    def __getitem__(self, key: tuple) -> dict:
        rows = self.where(key)
        if len(rows) != 1:
            raise KeyError(f"{key}: {len(rows)} findings")
        return rows[0]

    def __iter__(self):  # noqa: ANN204
        return iter([(r["rule_code"], r["subject_id"]) for r in self.rows])

    def __len__(self) -> int:
        return len(self.rows)

    def items(self) -> list[tuple[tuple[str, str], dict]]:
        return [((r["rule_code"], r["subject_id"]), r) for r in self.rows]

    def triples(self) -> list[tuple[str, str, str]]:
        return [(r["rule_code"], r["source"], r["subject_id"]) for r in self.rows]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Findings) and self.rows == other.rows


@dataclass
class MiniEstate:
    root: Path
    grace_hours: float = 24
    tolerance_m: float = 50
    register: list[dict] = field(default_factory=list)
    cameras: list[dict] = field(default_factory=list)
    recordings: list[dict] = field(default_factory=list)
    audit_log: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    flights: list[dict] = field(default_factory=list)
    tracks: dict[str, list[tuple]] = field(default_factory=dict)
    reads: dict[str, list[dict]] = field(default_factory=dict)  # file name → rows
    queries: dict[str, list[dict]] = field(default_factory=dict)
    vms2: dict[str, list[dict]] = field(default_factory=lambda: {"cameras": [], "recordings": [], "audit_log": []})
    parameters: dict | None = None  # replaces vigie/rules/parameters.yml when set

    # --- builders -------------------------------------------------------------------------
    def recording(self, rid: str, camera: str, started: str, ended: str, **cols) -> None:
        self.recordings.append({"recording_id": rid, "camera_id": camera, "started_at": started, "ended_at": ended,
                                "deleted_at": None, "hold_set_at": None, "hold_ref": None, "hold_released_at": None,
                                "updated_at": ended} | cols)

    def log(self, log_id: int, at: str, action: str, table: list | None = None, **cols) -> None:
        (self.audit_log if table is None else table).append({"log_id": log_id, "logged_at": at, "user_login": "agent", "action": action,
                               "camera_id": None, "recording_id": None, "justification": None,
                               "procedure_ref": None, "recipient": None} | cols)

    def event(self, action: str, at: str, evidence: str, kind: str = "BWC", **cols) -> dict:
        e = {"seq": len(self.events) + 1, "id": f"e-{len(self.events) + 1}", "at": at,
             "device": {"serial": f"{kind}-1", "kind": kind}, "actor": {"badge": "PN-1", "unit": "Unit"},
             "action": action, "evidence_id": evidence, "purpose": None, "justification": None,
             "procedure_ref": None, "recipient": None} | cols
        self.events.append(e)
        return e

    def flight(self, fid: str, takeoff: str, landing: str, **cols) -> dict:
        f = {"flight_id": fid, "revision": 1, "drone_id": "F-1", "unit": "DDSP", "pilot": "P",
             "authorisation_ref": None, "purpose": "DR1", "takeoff_at": takeoff, "landing_at": landing,
             "audio_recorded": False, "facial_recognition": False, "recordings": [], "consultations": []} | cols
        self.flights.append(f)
        return f

    # --- files --------------------------------------------------------------------------
    def write(self, base_url: str = "http://127.0.0.1:9") -> Path:
        root = self.root
        root.mkdir(parents=True, exist_ok=True)
        (root / "register.json").write_text(json.dumps(self.register))
        for name, tables in (("vms", {"cameras": self.cameras, "recordings": self.recordings, "audit_log": self.audit_log}),
                             ("vms2", self.vms2)):
            vms = root / f"{name}.sqlite"
            vms.unlink(missing_ok=True)
            with sqlite3.connect(vms) as con:
                con.executescript(VMS_SCHEMA)
                for table, rows in tables.items():
                    for row in rows:
                        con.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                                    list(row.values()))
        (root / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in self.events))
        (root / "drones" / "flights").mkdir(parents=True, exist_ok=True)
        (root / "drones" / "tracks").mkdir(parents=True, exist_ok=True)
        (root / "drones" / "flights" / "flights.jsonl").write_text("".join(json.dumps(f) + "\n" for f in self.flights))
        for fid, points in self.tracks.items():
            lines = ["t,lat,lon,alt_m"] + [f"{t},{lat!r},{lon!r},{alt}" for t, lat, lon, alt in points]
            (root / "drones" / "tracks" / f"{fid}.csv").write_text("\n".join(lines) + "\n")
        (root / "lapi").mkdir(exist_ok=True)
        for kind, files, header in (("reads", self.reads, "read_id,read_at,camera_id,plate_hash,matched,deleted_at"),
                                    ("queries", self.queries, "event_id,at,user,read_id,purpose,procedure_ref")):
            for name, rows in files.items():
                with open(root / "lapi" / name, "w", newline="") as f:
                    w = csv.writer(f, lineterminator="\n")
                    w.writerow(header.split(","))
                    w.writerows([[r.get(c) or "" for c in header.split(",")] for r in rows])
        (root / "vigie.yml").write_text(
            f"warehouse: var/w.duckdb\nregister: register.json\ngrace_hours: {self.grace_hours}\n"
            f"perimeter_tolerance_m: {self.tolerance_m}\nsources:\n"
            f"  - {{name: vms, kind: vms_sql, url: 'sqlite:///vms.sqlite'}}\n"
            f"  - {{name: vms2, kind: vms_sql, url: 'sqlite:///vms2.sqlite', holder: VMS2 holder}}\n"
            f"  - {{name: cams, kind: bodycam_api, base_url: '{base_url}', token_env: MINI_TOKEN, page_size: 100}}\n"
            f"  - {{name: drones, kind: drone_files, path: drones}}\n"
            f"  - {{name: lapi, kind: lapi_files, path: lapi, holder: LAPI holder}}\n")
        return root / "vigie.yml"

    def load(self) -> None:
        os.environ["MINI_TOKEN"] = TOKEN
        (self.root).mkdir(parents=True, exist_ok=True)
        (self.root / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in self.events))
        with BodycamServer(self.root / "events.jsonl", token=TOKEN) as server, self._parameters():
            config = self.write(server.url)
            report = pipeline.run(load_settings(config), validate=False, evaluate=False)
        assert not report.failed, report.failed[0].error

    @contextmanager
    def _parameters(self):  # noqa: ANN202
        """The estate's own limits in place of the shipped ones, while it loads and evaluates."""
        if self.parameters is None:
            yield
            return
        path = self.root / "parameters.yml"
        path.write_text(yaml.safe_dump(self.parameters))
        shipped, rules.PARAMETERS = rules.PARAMETERS, path
        try:
            yield
        finally:
            rules.PARAMETERS = shipped

    def findings(self, as_of: str, known_at: datetime | None = None) -> Findings:
        settings = load_settings(self.root / "vigie.yml")
        con = db.reader(settings.warehouse)
        try:
            with self._parameters():
                rows = rules.evaluate(con, settings, datetime.fromisoformat(as_of), known_at)
        finally:
            con.close()
        found = Findings([dict(zip(rules.COLUMNS + ["holder"], r)) for r in rows])
        # Identity (domain.md): at most one finding per (rule_code, source, subject_id), sorted
        # by rule_code, subject_id, source as plain strings.
        assert len(set(found.triples())) == len(found.rows)
        order = [(r["rule_code"], r["subject_id"], r["source"]) for r in found.rows]
        assert order == sorted(order)
        return found

    def quarantine(self) -> list[tuple]:
        with duckdb.connect(str(self.root / "var" / "w.duckdb"), read_only=True) as con:
            return con.execute("SELECT location, reason FROM oversight.quarantine ORDER BY ALL").fetchall()
