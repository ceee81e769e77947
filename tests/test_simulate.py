"""The estate generator and the body-camera API stand-in (vigie.simulate)."""
import csv
import json
import re
import sqlite3
import tracemalloc
import urllib.error
import urllib.request
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from vigie.simulate import estate
from vigie.simulate.bodycam_server import BodycamServer, decode_cursor, encode_cursor

SAMPLES = Path("/work/shared/samples")
PARIS = ZoneInfo("Europe/Paris")
BEGIN = datetime(2026, 1, 1, tzinfo=PARIS)
END = datetime(2026, 5, 1, tzinfo=PARIS)
N = 3000
# the source files that stay as delivered; the db and the JSONL change, as_of.txt is rewritten
MUTABLE = {"vms.sqlite", "bodycam_events.jsonl", "as_of.txt"}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("estate")
    return estate.generate(root, n_events=N, seed=7)


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def tables(db: Path) -> dict[str, list]:
    with sqlite3.connect(db) as con:
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
                for t in ("cameras", "recordings", "audit_log")}


def events(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "bodycam_events.jsonl").read_text().splitlines()]


def flight_lines(root: Path) -> list[tuple[str, str]]:
    out = []
    for path in sorted((root / "drones" / "flights").glob("*.jsonl")):
        out += [(path.name, line) for line in path.read_text().splitlines()]
    return out


def csv_rows(path: Path) -> list[list[str]]:
    """Rows of a CSV file, undecodable lines kept as None."""
    rows = []
    for raw in path.read_bytes().splitlines():
        try:
            rows.append(next(csv.reader([raw.decode("utf-8")])))
        except UnicodeDecodeError:
            rows.append(None)
    return rows


def vms_instant(text: str) -> datetime:
    """A VMS timestamp: naive text means UTC."""
    return instant(text).replace(tzinfo=timezone.utc)


def instant(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None


# ------------------------------------------------------------------- determinism, layout


def test_same_seed_same_bytes_other_seed_other_data(small, tmp_path):
    again = estate.generate(tmp_path / "again", n_events=N, seed=7)
    assert files(again.out_dir) == files(small.out_dir)  # the sqlite file included
    assert again.counts == small.counts
    other = estate.generate(tmp_path / "other", n_events=N, seed=8)
    assert files(other.out_dir)["bodycam_events.jsonl"] != files(small.out_dir)["bodycam_events.jsonl"]
    assert tables(other.out_dir / "vms.sqlite") != tables(small.out_dir / "vms.sqlite")


def test_layout_and_config(small):
    root = small.out_dir
    assert small.config_path == root / "vigie.yml"
    assert (small.phases, small.phase) == (1, 1) and small.done
    for name in ("authorisations.json", "vms.sqlite", "bodycam_events.jsonl", "as_of.txt"):
        assert (root / name).is_file()
    assert list((root / "drones" / "flights").glob("*.jsonl"))
    assert list((root / "drones" / "tracks").glob("FL-*.csv"))
    assert list((root / "lapi").glob("reads_*.csv")) and list((root / "lapi").glob("queries_*.csv"))
    conf = yaml.safe_load(small.config_path.read_text())
    assert conf["warehouse"] == "var/warehouse.duckdb"
    assert conf["register"] == "authorisations.json" and conf["timezone"] == "Europe/Paris"
    kinds = {s["kind"]: s for s in conf["sources"]}
    assert set(kinds) == {"vms_sql", "bodycam_api", "drone_files", "lapi_files"}
    assert kinds["vms_sql"]["url"] == "sqlite:///vms.sqlite"
    assert kinds["bodycam_api"]["base_url"] == "http://127.0.0.1:PORT"
    assert kinds["bodycam_api"]["token_env"] == "BODYCAM_TOKEN"
    assert (kinds["drone_files"]["path"], kinds["lapi_files"]["path"]) == ("drones", "lapi")
    assert (root / "as_of.txt").read_text().strip() == small.as_of == "2026-05-01T00:00:00+02:00"


def test_rows_add_up_to_n_split_by_source(tmp_path):
    n = 40_000
    c = estate.generate(tmp_path / "e", n_events=n, seed=1).counts
    shares = {"vms": c["vms.recordings"] + c["vms.audit_log"], "bodycam": c["bodycam.lines"],
              "drones": c["drones.flight_lines"] + c["drones.track_points"],
              "lapi": c["lapi.read_rows"] + c["lapi.query_rows"]}
    assert sum(shares.values()) == c["rows"]
    assert abs(c["rows"] - n) < 0.05 * n
    for source, share in {"vms": 0.35, "bodycam": 0.25, "drones": 0.10, "lapi": 0.30}.items():
        assert abs(shares[source] - share * n) < 0.15 * share * n, source
    db = tables(tmp_path / "e" / "vms.sqlite")
    assert len(db["recordings"]) == c["vms.recordings"] and len(db["audit_log"]) == c["vms.audit_log"]


# ----------------------------------------------------------------------------- contents


def test_vms_schema_formats_and_planted_rows(small):
    root = small.out_dir
    with sqlite3.connect(root / "vms.sqlite") as con, sqlite3.connect(SAMPLES / "vms.sqlite") as sample:
        schema = "SELECT name, sql FROM sqlite_master WHERE type='table' ORDER BY name"
        assert con.execute(schema).fetchall() == sample.execute(schema).fetchall()
    db = tables(root / "vms.sqlite")
    stamps = [r[1] for r in db["audit_log"] if r[1]]
    stamps += [v for r in db["recordings"] for v in r[2:6] + r[7:9] if v]
    parsed = [instant(s) for s in stamps]
    assert all(p is None or p.tzinfo in (None, timezone.utc) for p in parsed)  # UTC text only
    assert any(s.endswith("Z") for s in stamps) and any(s[-1].isdigit() for s in stamps)
    assert sum(p is None for p in parsed) >= 1  # impossible dates
    assert all(BEGIN <= p.replace(tzinfo=timezone.utc) < END for p in parsed if p)

    audit = db["audit_log"]
    ids = [r[0] for r in audit]
    assert ids == sorted(ids) and ids[0] == 1
    assert any(b - a > 1 for a, b in zip(ids, ids[1:]))  # LOG-01 gaps
    actions = Counter(r[3] for r in audit)
    valid = {"LOGIN", "LIVE_VIEW", "PTZ_MOVE", "PLAYBACK", "EXPORT", "DELETE", "HOLD_SET", "HOLD_RELEASE"}
    assert valid <= set(actions)
    wrong = set(actions) - valid
    assert any(a.upper() in valid for a in wrong) and any(a.upper() not in valid for a in wrong)
    assert any(not r[1] for r in audit)  # missing logged_at
    consultations = [r for r in audit if r[3] in ("PLAYBACK", "EXPORT")]
    assert any(r[6] is None for r in consultations) and any(not r[2] for r in consultations)
    assert any(r[3] == "EXPORT" and (r[7] is None or r[8] is None) for r in consultations)

    recs = db["recordings"]
    assert any(r[3] is None for r in recs)  # ended_at missing
    assert any(r[5] and r[6] for r in recs) and any(r[5] and not r[6] for r in recs)  # holds
    assert any(r[7] for r in recs)  # a released hold
    old = datetime(2026, 3, 25, tzinfo=timezone.utc)  # over a month before the end
    kept = [r for r in recs if r[3] and not r[4] and not r[5] and vms_instant(r[3]) < old]
    assert kept  # still there long after any deadline: RET-01
    for r in recs:
        times = [vms_instant(v) for v in (r[2], r[3], r[4], r[5], r[7]) if instant(v)]
        assert vms_instant(r[8]) > max(times)  # updated_at follows every change
    cams = db["cameras"]
    assert any(c[2] is None for c in cams)
    register = {e["authorisation_ref"]: e for e in json.loads((root / "authorisations.json").read_text())}
    vp = [c for c in cams if c[2] in register and register[c[2]]["device_class"] == "VP"]
    assert len(vp) > len(cams) / 2 and any(c[2] and c[2] not in register for c in cams)


def test_bodycam_events_arrival_order_gaps_and_defects(small):
    lines = (small.out_dir / "bodycam_events.jsonl").read_text().splitlines()
    evs = [json.loads(line) for line in lines]  # every line is JSON: the server passes it on as is
    assert list(evs[0]) == ["seq", "id", "at", "device", "actor", "action", "evidence_id", "purpose",
                            "justification", "procedure_ref", "recipient"]
    seqs = [e["seq"] for e in evs]
    distinct = sorted(set(seqs))
    assert any(b - a > 1 for a, b in zip(distinct, distinct[1:]))  # seq gaps
    assert any(s < max(seqs[:i]) for i, s in enumerate(seqs) if i)  # served after higher seqs
    assert Counter(lines).most_common(1)[0][1] == 2  # re-served events: same line twice
    assert len({e["id"] for e in evs}) == len(set(lines))  # ids are unique per event
    assert any(e["action"] == "Evidence.Viewed" or e["action"][0].isupper() for e in evs)
    assert any(e["device"]["kind"] not in ("BWC", "VEH") for e in evs)
    ats = [instant(e["at"]) for e in evs]
    assert any(a is None for a in ats) and any(a and a.tzinfo is None for a in ats)
    uploaded_late = False
    for e, at in zip(evs, ats):
        if at is None or at.tzinfo is None:
            continue
        assert BEGIN <= at < END
        assert at.utcoffset() in (at.astimezone(PARIS).utcoffset(), timezone.utc.utcoffset(None))
    by_seq = sorted((e["seq"], a) for e, a in zip(evs, ats) if a and a.tzinfo)
    uploaded_late = any(a2 < a1 for (_, a1), (_, a2) in zip(by_seq, by_seq[1:]))
    assert uploaded_late  # an event's `at` older than an earlier seq's
    actions = Counter(e["action"] for e in evs)
    for action in ("recording.started", "recording.stopped", "evidence.viewed", "evidence.exported",
                   "evidence.shared", "evidence.deleted", "evidence.hold_set", "evidence.hold_released"):
        assert actions[action], action
    holds = [e for e in evs if e["action"] == "evidence.hold_set"]
    assert any(e["procedure_ref"] for e in holds) and any(not e["procedure_ref"] for e in holds)
    consultations = [e for e in evs if e["action"] in ("evidence.viewed", "evidence.exported", "evidence.shared")]
    assert any(not e["justification"] for e in consultations)
    assert any(e["actor"]["badge"] is None for e in consultations)
    assert any(not e["procedure_ref"] for e in consultations if e["action"] != "evidence.viewed")


def point_in_ring(lon, lat, ring) -> bool:
    inside = False
    for (x1, y1), (x2, y2) in zip(ring, ring[1:]):
        if (y1 > lat) != (y2 > lat) and lon < x1 + (lat - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def test_drone_flights_tracks_and_register(small):
    root = small.out_dir
    register = json.loads((root / "authorisations.json").read_text())
    refs = [e["authorisation_ref"] for e in register]
    assert len(refs) == len(set(refs))
    assert {e["device_class"] for e in register} == {"VP", "BWC", "VEH", "LAPI", "DRONE"}
    by_ref = {e["authorisation_ref"]: e for e in register}
    for e in register:
        if e["device_class"] == "DRONE":
            ring = e["perimeter"]["coordinates"][0]
            assert e["perimeter"]["type"] == "Polygon" and ring[0] == ring[-1] and len(ring) >= 8
        else:
            assert e["perimeter"] is None

    lines = flight_lines(root)
    flights, broken = [], 0
    for name, line in lines:
        try:
            flights.append((name, json.loads(line)))
        except json.JSONDecodeError:
            broken += 1
    assert broken >= 1
    names = {name for name, _ in lines}
    assert any(n.startswith("corrections_") for n in names) and any(n.endswith("_late.jsonl") for n in names)
    revisions = Counter(f["revision"] for _, f in flights if isinstance(f.get("revision"), int))
    assert revisions[2] and revisions[3]
    assert Counter(line for _, line in lines).most_common(1)[0][1] == 2  # a line sent twice
    originals = [f for name, f in flights if not name.startswith("corrections_")]
    assert any(f["authorisation_ref"] is None for f in originals)
    assert any(f["authorisation_ref"] and f["authorisation_ref"] not in by_ref for f in originals)
    assert any(f["purpose"] and f["purpose"] != f["purpose"].upper() for f in originals)  # 'dr2'
    assert any(f["purpose"] is None for f in originals)
    assert any(f["audio_recorded"] is True for f in originals)
    assert any(f["facial_recognition"] is True for f in originals)
    assert any(r["interior"] is True for f in originals for r in f["recordings"])
    assert any(c["justification"] != "SIGNAL_JUD" for f in originals for c in f["consultations"])
    assert any(isinstance(f.get("audio_recorded"), str) or isinstance(f["recordings"][0].get("interior"), str)
               for f in originals)  # a string where a JSON boolean is due
    ok_times = [instant(f[k]) for f in originals for k in ("takeoff_at", "landing_at")]
    assert any(t is None or t.tzinfo is None for t in ok_times)
    assert all(BEGIN <= t < END for t in ok_times if t and t.tzinfo)
    drone_auth = [(f, by_ref[f["authorisation_ref"]]) for f in originals
                  if by_ref.get(f["authorisation_ref"], {}).get("device_class") == "DRONE"]
    assert all(instant(a["valid_from"]) < instant(a["valid_to"]) for _, a in drone_auth)
    assert any(instant(f["takeoff_at"]) < instant(a["valid_from"]) for f, a in drone_auth
               if instant(f["takeoff_at"]) and instant(f["takeoff_at"]).tzinfo)  # AUT-02

    tracks = {p.stem: p for p in (root / "drones" / "tracks").glob("*.csv")}
    assert 0 < len(tracks) < small.counts["drones.flights"]  # some flights have no track
    outside = 0
    for f in originals:
        auth = by_ref.get(f["authorisation_ref"])
        if f["flight_id"] not in tracks or not auth or auth["device_class"] != "DRONE":
            continue
        ring = auth["perimeter"]["coordinates"][0]
        rows = csv_rows(tracks[f["flight_id"]])
        if rows[0] != ["t", "lat", "lon", "alt_m"]:
            continue
        points = [(float(r[2]), float(r[1])) for r in rows[1:]
                  if r and len(r) == 4 and r[1].replace(".", "").isdigit()]
        outside += any(not point_in_ring(lon, lat, ring) for lon, lat in points)
    assert outside >= 1  # AUT-03
    all_rows = [row for p in tracks.values() for row in csv_rows(p)]
    assert None in all_rows  # invalid UTF-8
    assert any(row and len(row) == 5 for row in all_rows)
    assert any(row == ["time", "latitude", "longitude", "altitude"] for row in all_rows)


def test_lapi_reads_queries_corrections_and_defects(small):
    lapi = small.out_dir / "lapi"
    reads: dict[str, list[tuple[str, list[str]]]] = {}
    bad_utf8 = wrong_width = 0
    matched_values = Counter()
    for path in sorted(lapi.glob("reads_*.csv")):
        rows = csv_rows(path)
        if rows[0] != estate.READS_HEADER.split(","):
            assert path.name.endswith("_manual.csv")
            continue
        for row in rows[1:]:
            if row is None:
                bad_utf8 += 1
            elif len(row) != 6:
                wrong_width += 1
            else:
                matched_values[row[4]] += 1
                reads.setdefault(row[0], []).append((path.name, row))
    assert bad_utf8 and wrong_width and set(matched_values) - {"0", "1"} and matched_values["1"]
    corrections = [(rid, v) for rid, v in reads.items()
                   if len(v) > 1 and v[0][1][5] == "" and v[-1][1][5] and v[-1][0] > v[0][0]]
    duplicates = [rid for rid, v in reads.items() if len(v) > 1 and v[0][1] == v[1][1] and v[1][0] > v[0][0]]
    assert corrections and duplicates
    assert any(instant(r[1]) is None for v in reads.values() for _, r in v)  # 2026-02-30
    assert any(instant(r[1]) and instant(r[1]).tzinfo is None for v in reads.values() for _, r in v)
    for v in reads.values():
        for _, r in v:
            t = instant(r[1])
            if t and t.tzinfo:
                assert BEGIN <= t < END and t.utcoffset() == t.astimezone(PARIS).utcoffset()

    queries = [row for p in sorted(lapi.glob("queries_*.csv")) for row in csv_rows(p)[1:]]
    matched = {rid: v[0][1][4] for rid, v in reads.items()}
    assert any(q and len(q) == 6 and matched.get(q[3]) == "0" and q[5] == "" for q in queries)  # ACC-04
    whole = [q for q in queries if q and len(q) == 6]
    assert len(whole) < len(queries)  # a line with a wrong number of fields
    assert any(q[4] == "" for q in whole) and any(q[2] == "" for q in whole)
    assert any(q and len(q) == 6 and q[4] and q[4] != q[4].upper() for q in queries)
    ids = Counter(q[0] for q in queries if q and q[0])
    assert any(n > 1 for n in ids.values())  # re-delivered queries


# -------------------------------------------------------------------------------- phases


@pytest.mark.parametrize("phases", [3, 5])
def test_phased_delivery_ends_as_the_one_shot_estate(small, tmp_path, phases):
    root = tmp_path / "phased"
    info = estate.generate(root, n_events=small.n_events, seed=small.seed, phases=phases)
    assert (info.phases, info.phase) == (phases, 1) and not info.done
    seen = files(root)
    delivered_at = {name: 1 for name in seen}
    served_seqs = [json.loads(line)["seq"] for line in seen["bodycam_events.jsonl"].splitlines()]
    late_events, name_before_delivered = 0, Counter()
    updated_moves = 0
    while not info.done:
        db_before = tables(root / "vms.sqlite")
        info = info.advance() if info.phase % 2 else estate.advance(root)  # both ways work
        now = files(root)
        for name, data in seen.items():  # a delivered file is never edited nor removed
            if name not in MUTABLE and not name.startswith(estate.STAGING):
                assert now[name] == data, name
        old_jsonl = seen["bodycam_events.jsonl"]
        assert now["bodycam_events.jsonl"][:len(old_jsonl)] == old_jsonl  # append-only
        appended = [json.loads(x)["seq"] for x in now["bodycam_events.jsonl"][len(old_jsonl):].splitlines()]
        late_events += sum(seq < max(served_seqs) for seq in appended)
        served_seqs += appended
        new = [n for n in now if n not in seen and not n.startswith(estate.STAGING)]
        for name in new:
            delivered_at[name] = info.phase
            folder = name.rsplit("/", 1)[0]
            if any(o.rsplit("/", 1)[0] == folder and o > name for o in seen):
                name_before_delivered[folder] += 1
        db_now = tables(root / "vms.sqlite")
        assert db_now["audit_log"][:len(db_before["audit_log"])] == db_before["audit_log"]
        before = {r[0]: r for r in db_before["recordings"]}
        for row in db_now["recordings"]:
            old = before.get(row[0])
            if old and old != row:
                assert row[8].rstrip("Z") > old[8].rstrip("Z") and old[4] is None
                updated_moves += 1
        assert (root / "as_of.txt").read_text().strip() == info.as_of
        seen = now
    assert late_events and updated_moves
    assert name_before_delivered["lapi"] and name_before_delivered["drones/flights"]
    with pytest.raises(RuntimeError):
        estate.advance(root)

    # track files never come before their flight
    flights = {}
    for name, line in flight_lines(root):
        fid = re.search(r'"flight_id": "([^"]+)"', line).group(1)  # truncated lines too
        flights.setdefault(fid, delivered_at[f"drones/flights/{name}"])
        flights[fid] = min(flights[fid], delivered_at[f"drones/flights/{name}"])
    for name, phase in delivered_at.items():
        if name.startswith("drones/tracks/"):
            assert phase >= flights[name.split("/")[-1][:-4]]

    # the end: the same estate as in one go
    one, end = files(small.out_dir), files(root)
    assert sorted(one) == sorted(end)
    for name in one:
        if name not in ("vms.sqlite", "bodycam_events.jsonl"):
            assert one[name] == end[name], name
    jsonl = "bodycam_events.jsonl"
    assert sorted(one[jsonl].splitlines()) == sorted(end[jsonl].splitlines())  # the same events
    assert tables(small.out_dir / "vms.sqlite") == tables(root / "vms.sqlite")
    assert info.counts == small.counts


def test_bounded_memory_at_scale(tmp_path):
    # Memory, not speed: speed is for `make bench` (a wall-time limit failed here under load).
    tracemalloc.start()
    try:
        info = estate.generate(tmp_path / "big", n_events=200_000, seed=3)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 200 * 2**20
    assert abs(info.counts["rows"] - 200_000) < 10_000
    assert sum(1 for _ in open(info.events_path, "rb")) == info.counts["bodycam.lines"]


# ---------------------------------------------------------------------------- the server


def get(url: str, token: str | None = "test-token"):
    """(status, headers, JSON body) of a GET."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, json.load(response)
    except urllib.error.HTTPError as err:
        return err.code, err.headers, json.loads(err.read() or b"null")


def pull(server: BodycamServer, limit: int, after: str | None = None):
    """Every page from `after` until `next` is null: (events, last cursor sent, pages)."""
    got, pages = [], []
    while True:
        query = f"limit={limit}" + (f"&after={after}" if after else "")
        status, _, body = get(f"{server.url}/v1/audit-events?{query}")
        assert status == 200
        got += body["events"]
        pages.append(len(body["events"]))
        if body["next"] is None:
            return got, after, pages
        after = body["next"]


def test_server_pages_through_the_sample():
    sample = json.loads((SAMPLES / "bodycam_events.json").read_text())
    assert len(sample) == 227
    with BodycamServer(SAMPLES / "bodycam_events.json") as server:
        got, _, pages = pull(server, 50)
        assert pages == [50, 50, 50, 50, 27]
        assert got == sample
        status, _, body = get(f"{server.url}/v1/audit-events")  # default limit: everything here
        assert status == 200 and body["events"] == sample and body["next"] is None
        assert [s for _, s in server.requests] == [200] * 6


def test_server_serves_a_growing_jsonl_file_as_is(tmp_path, small):
    source = (small.out_dir / "bodycam_events.jsonl").read_text().splitlines(keepends=True)
    path = tmp_path / "events.jsonl"
    path.write_text("".join(source[:120]))
    with BodycamServer(path, token="s3cret") as server:
        status, _, body = get(f"{server.url}/v1/audit-events?limit=50", token="s3cret")
        assert status == 200 and len(body["events"]) == 50 and body["next"]
        with urllib.request.urlopen(urllib.request.Request(
                f"{server.url}/v1/audit-events?limit=50&after={body['next']}",
                headers={"Authorization": "Bearer s3cret"})) as response:
            raw = response.read().decode()
        assert "".join(source[50:100]).replace("\n", ", ").rstrip(", ") in raw  # texts as in the file
        server.token = "test-token"
        got, last_after, pages = pull(server, 50)
        assert pages == [50, 50, 20] and [json.dumps(e) + "\n" for e in got] == source[:120]
        # the file grows: a pull resumes from the last cursor it sent and sees the new lines
        with open(path, "a") as f:
            f.write("".join(source[120:150]) + source[150][:40])  # the last line is half written
        more, _, pages = pull(server, 50, last_after)
        assert pages == [50] and [json.dumps(e) + "\n" for e in more] == source[100:150]
        with open(path, "a") as f:
            f.write(source[150][40:] + "\n")  # finished, plus an empty line
        more, _, _ = pull(server, 50, last_after)
        assert [json.dumps(e) + "\n" for e in more] == source[100:151]


def test_server_refuses_bad_tokens_and_bad_parameters():
    with BodycamServer(SAMPLES / "bodycam_events.json", token="right") as server:
        for token in ("wrong", None):
            status, headers, body = get(f"{server.url}/v1/audit-events", token=token)
            assert status == 401 and "error" in body
            assert headers["Content-Type"] == "application/json"
        assert get(f"{server.url}/v1/audit-events?limit=abc", "right")[0] == 400
        assert get(f"{server.url}/v1/audit-events?limit=0", "right")[0] == 400
        assert get(f"{server.url}/v1/audit-events?after=nonsense!", "right")[0] == 400
        assert get(f"{server.url}/v2/other", "right")[0] == 404
        assert [s for _, s in server.requests] == [401, 401, 400, 400, 400, 404]


def test_server_clamps_limit_to_1000(tmp_path):
    info = estate.generate(tmp_path / "e", n_events=12_000, seed=2)
    lines = info.events_path.read_text().splitlines()
    assert len(lines) > 2000
    with BodycamServer(info.events_path) as server:
        status, _, body = get(f"{server.url}/v1/audit-events?limit=5000")
        assert status == 200 and len(body["events"]) == 1000 and decode_cursor(body["next"]) == 1000
        got, _, pages = pull(server, 5000)
        assert all(p == 1000 for p in pages[:-1]) and len(got) == len(lines)
        assert [json.dumps(e) for e in got] == lines
    assert decode_cursor(encode_cursor(12345)) == 12345


def test_server_fault_injection_is_deterministic():
    with BodycamServer(SAMPLES / "bodycam_events.json", fail_429=2, retry_after_s=3, fail_5xx=1) as server:
        url = f"{server.url}/v1/audit-events?limit=10"
        first, second, third, fourth = get(url), get(url), get(url), get(url)
        assert first[0] == second[0] == 429
        assert first[1]["Retry-After"] == "3" and "error" in first[2]
        assert third[0] == 503 and "error" in third[2]
        assert fourth[0] == 200 and len(fourth[2]["events"]) == 10
        assert server.requests == [("/v1/audit-events?limit=10", s) for s in (429, 429, 503, 200)]
