"""Property: carrying the stored findings forward (vigie/rules/incremental.py) gives exactly
the findings of a full evaluation, after every step of random phased deliveries (the
simulator's phases: late events, holds set and released, corrections, revisions), register
changes and random as-of sequences, forwards, backwards and across months."""

from __future__ import annotations

import json
import re
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from vigie import db, pipeline, stored_evaluation
from vigie.config import load_settings, parse_instant
from vigie.simulate.bodycam_server import BodycamServer
from vigie.simulate.estate import advance, generate

# One step: deliver the next phase or not, edit the register or not, and the as-of of the
# run as an offset from the estate's as_of.txt (hours; negative: back in time).
STEP = st.tuples(st.booleans(), st.sampled_from([None, "drop", "shorten", "restore"]),
                 st.sampled_from([0, 1, 5, 30, 24 * 3, 24 * 20, 24 * 40, 24 * 100, 24 * 400, -24, -24 * 60]))
MODES: list[str] = []


def _run(estate: Path, as_of: datetime) -> pipeline.RunReport:
    with BodycamServer(estate / "bodycam_events.jsonl", token="sim") as server:
        config = estate / "vigie.yml"
        config.write_text(re.sub(r"http://127\.0\.0\.1:\d+", server.url, config.read_text()))
        report = pipeline.run(load_settings(config), validate=False, as_of=as_of, send_alerts=False)
    assert not report.failed, report.failed[0].error
    return report


def _edit_register(estate: Path, edit: str | None, original: list[dict]) -> None:
    path = estate / "authorisations.json"
    entries = json.loads(path.read_text())
    if edit == "drop" and len(entries) > 1:
        entries = entries[1:]
    elif edit == "shorten":  # every entry ends a month after it starts
        for e in entries:
            start = datetime.fromisoformat(e["valid_from"].replace("Z", "+00:00"))
            e["valid_to"] = (start + timedelta(days=30)).isoformat()
    elif edit == "restore":
        entries = original
    path.write_text(json.dumps(entries))


def _compare(estate: Path, as_of: datetime) -> None:
    settings_ = load_settings(estate / "vigie.yml")
    con = db.reader(settings_.warehouse)
    try:
        # What `vigie verify` checks of a stored evaluation (findings, sequence numbers, horizon)
        # holds after every step, whichever way it was evaluated.
        assert stored_evaluation.check(con, settings_, "warehouse") == ([], [])
        stored = con.execute("SELECT * FROM run_findings ORDER BY ALL").fetchall()
        full = con.execute("SELECT * FROM findings_at(?, 'infinity', ?, ?, ?) ORDER BY ALL",
                           [as_of, settings_.grace_hours, settings_.timezone, settings_.perimeter_tolerance_m]).fetchall()
        (stored_as_of,) = con.execute("SELECT as_of FROM run_evaluation").fetchone()
    finally:
        con.close()
    assert stored_as_of == as_of
    missing, extra = sorted(set(full) - set(stored), key=repr), sorted(set(stored) - set(full), key=repr)
    assert not missing and not extra, f"missing {missing[:5]}, extra {extra[:5]}"
    assert len(stored) == len(full)  # no finding twice


@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(seed=st.integers(0, 10_000), phases=st.integers(2, 4), steps=st.lists(STEP, min_size=3, max_size=6))
def test_incremental_equals_full(seed: int, phases: int, steps: list) -> None:
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        mp.setenv("BODYCAM_TOKEN", "sim")
        info = generate(Path(tmp) / "estate", n_events=2500, seed=seed, phases=phases)
        estate = info.out_dir
        config = estate / "vigie.yml"  # a port for now: each run puts its server's
        config.write_text(config.read_text().replace("http://127.0.0.1:PORT", "http://127.0.0.1:9"))
        original = json.loads((estate / "authorisations.json").read_text())
        tz = load_settings(estate / "vigie.yml").timezone
        delivered = 1
        for deliver, edit, hours in steps:
            if deliver and delivered < phases:
                advance(estate)
                delivered += 1
            _edit_register(estate, edit, original)
            as_of = parse_instant((estate / "as_of.txt").read_text().strip(), tz) + timedelta(hours=hours)
            report = _run(estate, as_of)
            MODES.append(report.evaluation.split(":")[0])
            _compare(estate, as_of)


def test_incremental_was_exercised() -> None:
    """The property above must have carried findings forward, not only evaluated afresh."""
    if not MODES:
        pytest.skip("runs after test_incremental_equals_full")
    assert "incremental" in MODES and "full" in MODES, MODES


def _loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int) -> tuple[Path, datetime]:
    """A small simulated estate, loaded once as of its as_of.txt."""
    monkeypatch.setenv("BODYCAM_TOKEN", "sim")
    estate = generate(tmp_path / "estate", n_events=2500, seed=seed).out_dir
    config = estate / "vigie.yml"
    config.write_text(config.read_text().replace("http://127.0.0.1:PORT", "http://127.0.0.1:9"))
    as_of = parse_instant((estate / "as_of.txt").read_text().strip(), load_settings(config).timezone)
    _run(estate, as_of)
    return estate, as_of


def test_sequence_numbers_that_fill_split_and_extend_gaps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """LOG-01 is re-evaluated on the range that new numbers fall into (vigie/rules/
    incremental.py): late body-camera events whose numbers close a gap at its start, split
    one, fill one exactly, come before the first number or far after the last, and a number
    seen again with an earlier time, give exactly the findings of a full evaluation."""
    estate, as_of = _loaded(tmp_path, monkeypatch, seed=7)
    events_file = estate / "bodycam_events.jsonl"
    events = [json.loads(line) for line in events_file.read_text().splitlines() if line.strip()]
    seqs = sorted({e["seq"] for e in events if isinstance(e.get("seq"), int)})
    holes = [(p, q) for p, q in zip(seqs, seqs[1:]) if q - p > 1]
    wide = max(holes, key=lambda h: h[1] - h[0])
    assert wide[1] - wide[0] > 4, holes  # the simulator leaves gaps in the numbering
    single = next(((p, q) for p, q in holes if q - p == 2), None)
    inside = [wide[0] + 1, wide[0] + 3] + ([single[0] + 1] if single else [])
    model = next(e for e in events if isinstance(e.get("seq"), int) and isinstance(e.get("at"), str))
    first = next(e for e in events if e.get("seq") == wide[0])
    earlier = (datetime.fromisoformat(first["at"].replace("Z", "+00:00")) - timedelta(days=1)).isoformat()
    deliveries = [  # inside the known numbers first (the range is bounded by its neighbours), then outside
        [model | {"seq": n, "id": f"e-late-{n}"} for n in inside],
        # the number that opens the widest gap, seen again (another event) a day earlier
        [model | {"seq": wide[0], "id": "e-late-again", "at": earlier}],
        [model | {"seq": n, "id": f"e-late-{n}"} for n in (seqs[0] - 2, seqs[-1] + 1, seqs[-1] + 9)],
    ]
    for delivery in deliveries:
        with open(events_file, "a") as f:
            f.writelines(json.dumps(e) + "\n" for e in delivery)
        report = _run(estate, as_of)
        assert report.evaluation.startswith("incremental"), report.evaluation
        _compare(estate, as_of)


def test_a_lapi_correction_undone_is_re_evaluated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A later file that delivers again a read's first content undoes its correction: the line
    is a duplicate of the row first loaded (nothing is loaded), yet the read's current version
    changes, and with it its findings (sources.md, LAPI corrections), then and whenever the read
    is re-evaluated again."""
    estate, as_of = _loaded(tmp_path, monkeypatch, seed=5)
    header = "read_id,read_at,camera_id,plate_hash,matched,deleted_at\n"
    kept = "rd-undo,2026-01-02T10:00:00+01:00,LAPI-A7-01,00000000000000ab,0,\n"  # never deleted: kept too long
    corrected = "rd-undo,2026-01-02T10:00:00+01:00,LAPI-A7-01,00000000000000ab,0,2026-01-03T10:00:00+01:00\n"
    findings = []
    for name, line in (("a", kept), ("b", corrected), ("c", kept)):  # later names win
        (estate / "lapi" / f"reads_2099-01-01_{name}.csv").write_text(header + line)
        report = _run(estate, as_of)
        assert report.evaluation.startswith("incremental"), report.evaluation
        _compare(estate, as_of)
        con = db.reader(load_settings(estate / "vigie.yml").warehouse)
        try:
            findings.append(con.execute("SELECT rule_code FROM run_findings WHERE subject_id = 'rd-undo' "
                                        "ORDER BY ALL").fetchall())
        finally:
            con.close()
    assert findings[0] == findings[2] == [("RET-01",)] and findings[1] == [], findings
    # Re-evaluated later for another reason (a query names it): still the version undone to.
    (estate / "lapi" / "queries_2099-01-01.csv").write_text(
        "event_id,at,user,read_id,purpose,procedure_ref\nq-undo,2026-01-05T10:00:00+01:00,OPJ-1,rd-undo,LP_THEFT,\n")
    report = _run(estate, as_of)
    assert report.evaluation.startswith("incremental"), report.evaluation
    _compare(estate, as_of)


def test_an_evaluation_stopped_half_way_leaves_the_stored_one_whole(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The stored findings change with what they were evaluated from, or not at all: a run
    stopped between replacing findings and recording the evaluation left new findings beside
    the old record, carried forward by the next run as if they were that evaluation's."""
    from vigie.rules import incremental

    estate, as_of = _loaded(tmp_path, monkeypatch, seed=9)
    settings_ = load_settings(estate / "vigie.yml")

    def stored() -> tuple:  # in the writer file, where a stopped run leaves its work (never published)
        con = duckdb.connect(str(db.writer_path(settings_.warehouse)), read_only=True)
        try:
            return (con.execute("SELECT * FROM run_findings ORDER BY ALL").fetchall(),
                    con.execute("SELECT * FROM run_horizon ORDER BY ALL").fetchall(),
                    con.execute("SELECT * FROM run_evaluation").fetchall())
        finally:
            con.close()

    before = stored()
    later = as_of + timedelta(days=40)  # time alone changes findings: scopes are re-evaluated

    def stopped(*args, **kwargs) -> None:
        raise RuntimeError("stopped")

    monkeypatch.setattr(incremental, "_record", stopped)
    with pytest.raises(RuntimeError, match="stopped"):
        _run(estate, later)
    monkeypatch.undo()
    monkeypatch.setenv("BODYCAM_TOKEN", "sim")
    assert stored() == before
    report = _run(estate, later)
    assert report.evaluation.startswith("incremental"), report.evaluation
    _compare(estate, later)
    assert stored()[0] != before[0]  # the run that completes does change them


def test_the_scratch_is_prepared_beside_the_loads_of_a_run_that_brings_rows(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A re-evaluation's scratch database (incremental.Scratch) is prepared in a thread once a
    batch brought rows, while the other sources load, and the evaluation uses it. A run that
    brings nothing prepares none. A preparation that fails stops the evaluation with its
    error, leaves the stored evaluation as it was, and no thread behind; the next run
    evaluates what the failed one loaded."""
    import threading

    from vigie import rules
    from vigie.rules import incremental

    estate, as_of = _loaded(tmp_path, monkeypatch, seed=13)
    settings_ = load_settings(estate / "vigie.yml")
    made, used = [], []
    init, ready = incremental.Scratch.__init__, incremental.Scratch.ready

    def spy_init(self, con, settings, *, background: bool = False) -> None:  # noqa: ANN001
        made.append("beside" if background else "in place")
        init(self, con, settings, background=background)

    def spy_ready(self) -> None:  # noqa: ANN001
        used.append(self._thread is not None)  # the one prepared in a thread, not one made in place
        ready(self)

    monkeypatch.setattr(incremental.Scratch, "__init__", spy_init)
    monkeypatch.setattr(incremental.Scratch, "ready", spy_ready)

    def evaluation() -> tuple:
        con = duckdb.connect(str(db.writer_path(settings_.warehouse)), read_only=True)
        try:
            return con.execute("SELECT * FROM run_evaluation").fetchone()
        finally:
            con.close()

    assert _run(estate, as_of).evaluation.startswith("stored")  # nothing new
    assert made == [] and used == []

    header = "read_id,read_at,camera_id,plate_hash,matched,deleted_at\n"
    (estate / "lapi" / "reads_2099-01-01_a.csv").write_text(header + "rd-new-a,2026-01-02T10:00:00+01:00,LAPI-A7-01,00000000000000aa,0,\n")
    report = _run(estate, as_of)
    assert report.evaluation.startswith("incremental"), report.evaluation
    assert made == ["beside"] and used == [True], (made, used)
    _compare(estate, as_of)

    def broken(con, settings) -> None:  # noqa: ANN001
        raise RuntimeError("parameters unreadable")

    before, install = evaluation(), rules.install_for_subjects
    monkeypatch.setattr(rules, "install_for_subjects", broken)
    (estate / "lapi" / "reads_2099-01-01_b.csv").write_text(header + "rd-new-b,2026-01-02T11:00:00+01:00,LAPI-A7-01,00000000000000bb,0,\n")
    with pytest.raises(RuntimeError, match="parameters unreadable"):
        _run(estate, as_of)
    assert made == ["beside", "beside"]
    assert evaluation() == before
    assert not [t for t in threading.enumerate() if t.name == "vigie-scratch"]
    monkeypatch.setattr(rules, "install_for_subjects", install)
    report = _run(estate, as_of)  # batch b is loaded: its read is evaluated now
    assert report.evaluation.startswith("incremental"), report.evaluation
    _compare(estate, as_of)
    con = db.reader(settings_.warehouse)
    try:
        assert con.execute("SELECT count(*) FROM run_findings WHERE subject_id = 'rd-new-b'").fetchone()[0] > 0
    finally:
        con.close()


def test_a_re_evaluation_runs_only_the_rules_about_the_subjects_of_its_scopes(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The scratch's ``subject_findings_at`` holds the rules whose catalogue subjects its scopes
    hold, no other: a new LAPI read is re-evaluated by the rules about reads alone, a new
    body-camera event by those about evidences and events. The findings are the full
    evaluation's all the same."""
    from vigie import rules

    estate, as_of = _loaded(tmp_path, monkeypatch, seed=17)
    chosen: list[set[str]] = []
    make = rules.subject_findings_macro

    def spy(con, codes=None) -> None:  # noqa: ANN001
        make(con, codes)
        # The rules the macro made in the scratch holds, read from its definition.
        (text,) = con.execute("SELECT macro_definition FROM duckdb_functions() WHERE function_name = "
                              "'subject_findings_at' AND database_name = current_database()").fetchone()
        chosen.append(set(re.findall(r"'([A-Z]{3}-\d{2})' AS rule_code", text)))

    monkeypatch.setattr(rules, "subject_findings_macro", spy)

    def about(kind: str, *types: str) -> set[str]:
        return {r.code for r in rules.catalogue() if r.subjects.get(kind) in types}

    header = "read_id,read_at,camera_id,plate_hash,matched,deleted_at\n"
    (estate / "lapi" / "reads_2099-01-01_a.csv").write_text(header + "rd-new-a,2026-01-02T10:00:00+01:00,LAPI-A7-01,00000000000000aa,0,\n")
    report = _run(estate, as_of)
    assert report.evaluation.startswith("incremental"), report.evaluation
    assert chosen == [about("lapi_files", "read")] and chosen[0] == {"RET-01"}, chosen
    _compare(estate, as_of)

    events_file = estate / "bodycam_events.jsonl"
    events = [json.loads(line) for line in events_file.read_text().splitlines() if line.strip()]
    top = max(e["seq"] for e in events if isinstance(e.get("seq"), int))
    model = next(e for e in reversed(events) if isinstance(e.get("seq"), int) and isinstance(e.get("at"), str)
                 and e.get("evidence_id"))
    with events_file.open("a") as f:
        f.write(json.dumps(model | {"seq": top + 1, "id": "e-new-1"}) + "\n")
    report = _run(estate, as_of)
    assert report.evaluation.startswith("incremental"), report.evaluation
    assert chosen[1] == about("bodycam_api", "evidence", "event"), chosen
    assert "PRO-01" not in chosen[1] and chosen[1] >= {"RET-01", "ACC-01", "LOG-08"}, chosen  # drones' rules left out
    _compare(estate, as_of)


def test_a_scratch_that_cannot_start_is_not_left_attached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its connection could not be made: the error is raised and the database attached for it
    is detached, so that the next scratch can be attached under the same name."""
    from tests.conftest import copy_samples, with_closed_port
    from vigie.rules import incremental

    settings_ = load_settings(with_closed_port(copy_samples(tmp_path)) / "vigie.yml")
    attached = "SELECT count(*) FROM duckdb_databases() WHERE database_name = ?"
    with db.writer(settings_.warehouse) as con:
        worker = db.worker

        def no_worker(c):  # noqa: ANN001, ANN202
            raise duckdb.ConnectionException("no connection left")

        monkeypatch.setattr(db, "worker", no_worker)
        with pytest.raises(duckdb.ConnectionException, match="no connection left"):
            incremental.Scratch(con, settings_, background=True)
        assert con.execute(attached, [incremental.SCRATCH]).fetchone()[0] == 0
        monkeypatch.setattr(db, "worker", worker)
        scratch = incremental.Scratch(con, settings_)
        scratch.ready()
        assert con.execute(attached, [incremental.SCRATCH]).fetchone()[0] == 1
        assert con.execute(f"SELECT count(*) FROM {incremental.SCRATCH}.main.rule_limits").fetchone()[0] > 0
        scratch.close()
        scratch.close()  # again: nothing
        assert con.execute(attached, [incremental.SCRATCH]).fetchone()[0] == 0


@pytest.mark.parametrize("removed", ["lapi-a7", "bodycams", "drones-69"])
def test_a_source_removed_from_the_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, removed: str) -> None:
    """Its rows stay in the warehouse and the rules still read them. When time alone makes
    its subjects change (a keeping limit passes), they are re-evaluated like any other's:
    neither left as they were nor found twice."""
    estate, as_of = _loaded(tmp_path, monkeypatch, seed=11)
    config = estate / "vigie.yml"
    text = config.read_text()
    block = re.search(rf"  - name: {removed}\n(    .*\n)*", text)
    config.write_text(text.replace(block.group(0), ""))
    assert removed not in config.read_text()
    _run(estate, as_of)  # another configuration: evaluated afresh
    for days in (20, 45, 100, 400):
        later = as_of + timedelta(days=days)
        report = _run(estate, later)
        assert report.evaluation.startswith("incremental"), report.evaluation
        _compare(estate, later)


def test_the_neighbours_of_new_numbers_are_found_however_far() -> None:
    """`_neighbour` widens its window until it finds the nearest number, or there is none."""
    from vigie.rules.incremental import _neighbour

    con = duckdb.connect()
    con.execute("CREATE TABLE run_numbers (source VARCHAR, n BIGINT, seen_at TIMESTAMPTZ)")
    numbers = [-(1 << 62) - 5, -3, 0, 7, 8, 5_000, 40_000_000, (1 << 62) + 9]
    con.execute("INSERT INTO run_numbers SELECT 's', unnest(?), NULL", [numbers])
    con.execute("INSERT INTO run_numbers VALUES ('other', 6, NULL), ('s', NULL, NULL)")
    for n in (-(1 << 62) - 6, -(1 << 62) - 5, -4, 0, 7, 9, 4_999, 5_001, 39_999_999, 40_000_001, 1 << 62, (1 << 62) + 10):
        below = max((m for m in numbers if m < n), default=None)
        above = min((m for m in numbers if m > n), default=None)
        assert (_neighbour(con, "s", n, below=True), _neighbour(con, "s", n, below=False)) == (below, above), n
    assert _neighbour(con, "nobody", 3, below=True) is None

    class Counting:  # the statements `_neighbour` makes
        def __init__(self) -> None:
            self.made = 0

        def execute(self, *args):  # noqa: ANN002, ANN202
            self.made += 1
            return con.execute(*args)

    # Nothing beyond the first window, as above new numbers at the end: asked once, not
    # by widening the window eleven times.
    counting = Counting()
    assert _neighbour(counting, "other", 10, below=False) is None and counting.made == 2
    counting = Counting()
    assert _neighbour(counting, "s", 5_001, below=False) == 40_000_000 and counting.made > 2
