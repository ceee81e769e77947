"""End to end on a copy of shared/samples: quarantine, duplicates, reconciliation, idempotence."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import duckdb
import pytest

from tests.conftest import copy_samples, read_csv, vigie
from vigie import pipeline
from vigie.cursors import load as load_cursor
from vigie.simulate.bodycam_server import BodycamServer

TOKEN = "sample-token"


@pytest.fixture(scope="module")
def sample_estate(tmp_path_factory: pytest.TempPathFactory):
    """The sample estate with its body-camera API served on loopback, loaded once."""
    estate = copy_samples(tmp_path_factory.mktemp("samples"))
    with BodycamServer(estate / "bodycam_events.json", token=TOKEN) as server:
        config = estate / "vigie.yml"
        config.write_text(config.read_text().replace("http://127.0.0.1:PORT", server.url))
        _run(estate, "--gx")  # with the Great Expectations report and Data Docs
        yield estate


def _run(estate: Path, *extra: str) -> None:
    vigie("run", "--config", str(estate / "vigie.yml"), "--as-of", (estate / "as_of.txt").read_text().strip(),
          *extra, env={"BODYCAM_TOKEN": TOKEN}, check=True)


def _warehouse(estate: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(estate / "var" / "warehouse.duckdb"), read_only=True)


def test_quarantine_lists_exactly_the_expected_rows(sample_estate: Path) -> None:
    out = vigie("quarantine", "--config", str(sample_estate / "vigie.yml"), "--format", "csv", check=True).stdout
    got = list(csv.DictReader(io.StringIO(out)))
    expected = read_csv(sample_estate / "expected_quarantine.csv")
    assert sorted((r["source"], r["location"]) for r in got) == sorted((r["source"], r["location"]) for r in expected)
    assert all(r["reason"] for r in got)
    assert [(r["source"], r["location"]) for r in got] == sorted((r["source"], r["location"]) for r in got)
    # Kinds and refs follow the expected file too (ref when one can be read).
    by_loc = {(r["source"], r["location"]): r for r in got}
    for r in expected:
        assert by_loc[(r["source"], r["location"])]["kind"] == r["kind"]
        assert by_loc[(r["source"], r["location"])]["ref"] == r["ref"]


def test_expected_duplicates_are_counted_as_duplicates(sample_estate: Path) -> None:
    with _warehouse(sample_estate) as con:
        got = set(con.execute("SELECT source, location, first_location FROM oversight.duplicates WHERE NOT conflicting").fetchall())
    for r in read_csv(sample_estate / "expected_duplicates.csv"):
        first = r["reason"].removeprefix("same row as ")
        assert (r["source"], r["location"], first) in got


def test_every_batch_reconciles(sample_estate: Path) -> None:
    with _warehouse(sample_estate) as con:
        rows = con.execute("SELECT source, received, loaded, duplicates, quarantined, sha256 FROM oversight.batches").fetchall()
        assert {r[0] for r in rows} == {"register", "vms-lyon", "bodycams", "drones-69", "lapi-a7"}
        for source, received, loaded, duplicates, quarantined, sha in rows:
            assert received == loaded + duplicates + quarantined, source
            assert len(sha) == 64
        # What each source loaded is in its canonical table.
        assert con.execute("SELECT count(*) FROM oversight.bodycam_events").fetchone()[0] > 200
        assert con.execute("SELECT count(*) FROM oversight.lapi_reads").fetchone()[0] > 50


def test_a_second_run_on_unchanged_sources_loads_nothing(sample_estate: Path) -> None:
    with _warehouse(sample_estate) as con:
        before = con.execute("SELECT max(batch_id) FROM batches").fetchone()[0]
        counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                  for t in ("vms_recordings", "vms_audit_log", "bodycam_events", "drone_flights", "lapi_reads", "quarantine",
                            "duplicates")}
    _run(sample_estate)
    with _warehouse(sample_estate) as con:
        # Nothing received at all: not the VMS's cameras (read in full) nor the body-camera
        # platform's last page (served again), which each run used to record as duplicates.
        assert con.execute("SELECT coalesce(sum(received), 0), coalesce(sum(loaded), 0), coalesce(sum(quarantined), 0) "
                           "FROM batches WHERE batch_id > ?", [before]).fetchone() == (0, 0, 0)
        for table, n in counts.items():
            assert con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == n, table
        # A drop folder's files are rows of drop_files, none added by a run that found nothing new;
        # its cursor is what is left ({}), each batch's cursor_before that of the batch before it.
        cursors = {source: load_cursor(con, source) for (source,) in con.execute("SELECT source FROM source_cursors").fetchall()}
        ledger = con.execute("SELECT source, CAST(cursor_before AS VARCHAR), CAST(cursor_after AS VARCHAR) "
                             "FROM batches WHERE source = 'lapi-a7' AND status = 'loaded' ORDER BY batch_id").fetchall()
        files = con.execute("SELECT count(*), count(DISTINCT name), max(batch_id) FROM drop_files WHERE source = 'lapi-a7'").fetchone()
        # an unchanged cursor is not written again: it keeps the batch that moved it
        moved = dict(con.execute("SELECT source, batch_id FROM source_cursors").fetchall())
        first_lapi = con.execute("SELECT min(batch_id) FROM batches WHERE source = 'lapi-a7' AND status = 'loaded'").fetchone()[0]
    assert moved["lapi-a7"] == first_lapi <= before
    assert files == (len(list((sample_estate / "lapi").glob("*.csv"))),) * 2 + (first_lapi,)
    # What is left of a drop folder's cursor: the digest of the listing its first pull left whole.
    lapi = cursors["lapi-a7"]
    assert list(json.loads(lapi)) == ["listing_sha256"] and ledger == [("lapi-a7", "null", lapi), ("lapi-a7", lapi, lapi)]
    assert json.loads(cursors["vms-lyon"]) == json.loads(ledger_after(sample_estate, "vms-lyon"))  # small: whole


def ledger_after(estate: Path, source: str) -> str:
    with _warehouse(estate) as con:
        return con.execute("SELECT CAST(cursor_after AS VARCHAR) FROM batches WHERE source = ? AND status = 'loaded' "
                           "ORDER BY batch_id DESC LIMIT 1", [source]).fetchone()[0]


def test_data_docs_are_built_for_the_validation_run(sample_estate: Path) -> None:
    index = sample_estate / "var" / "gx" / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
    assert index.exists()
    html = index.read_text()
    for suite in ("vms_sql.audit_log", "bodycam_api.events", "drone_files.flights", "lapi_files.reads"):
        assert suite in html


def test_findings_are_exactly_the_expected_pairs(sample_estate: Path) -> None:
    as_of = (sample_estate / "as_of.txt").read_text().strip()
    out = vigie("findings", "--config", str(sample_estate / "vigie.yml"), "--as-of", as_of, "--format", "csv",
                check=True).stdout
    got = list(csv.DictReader(io.StringIO(out)))
    assert list(got[0]) == ["rule_code", "source", "device_class", "device_id", "subject_id", "occurred_at", "detail", "legal_ref"]
    expected = read_csv(sample_estate / "expected_findings.csv")
    # Findings are identified by (rule_code, source, subject_id) and sorted by rule_code,
    # subject_id, source (domain.md, interface.md).
    def triple(r: dict) -> tuple:
        return r["rule_code"], r["source"], r["subject_id"]
    assert sorted(map(triple, got)) == sorted(map(triple, expected))
    assert len(set(map(triple, got))) == len(got)
    order = [(r["rule_code"], r["subject_id"], r["source"]) for r in got]
    assert order == sorted(order)
    by_triple = {triple(r): r for r in got}
    for r in expected:  # context columns agree too, though only the triple is the contract
        g = by_triple[triple(r)]
        assert (g["device_class"], g["device_id"], g["occurred_at"], g["legal_ref"]) == (
            r["device_class"], r["device_id"], r["occurred_at"], r["legal_ref"]), r


def test_findings_view_and_compliance_docs(sample_estate: Path) -> None:
    with _warehouse(sample_estate) as con:
        # The view evaluates as of now: everything old enough is overdue by now, so it has rows.
        assert con.execute("SELECT count(*) FROM oversight.findings").fetchone()[0] > 0
        assert con.execute("SELECT count(DISTINCT rule_code) FROM run_findings").fetchone()[0] == 16
    html = (sample_estate / "var" / "gx" / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html").read_text()
    for suite in ("compliance.retention", "compliance.purpose", "compliance.authorisation",
                  "compliance.prohibitions", "compliance.logging"):
        assert suite in html


def test_the_stored_evaluation_answers_only_its_own_question(sample_estate: Path) -> None:
    """`vigie findings` for the run's instant reads `run_findings`: the very rows the rules
    compute; any other instant, settings or an earlier known-at computes them afresh."""
    from datetime import timedelta

    from vigie import rules
    from vigie.config import load_settings, parse_instant

    settings = load_settings(sample_estate / "vigie.yml")
    as_of = parse_instant((sample_estate / "as_of.txt").read_text().strip(), settings.timezone)
    with _warehouse(sample_estate) as con:
        assert rules.stored_evaluation(con, settings, as_of)
        stored = rules.evaluate(con, settings, as_of)
        computed = con.execute(rules.findings_query(), [as_of, "infinity", settings.grace_hours, settings.timezone,
                                                        settings.perimeter_tolerance_m]).fetchall()
        expected = read_csv(sample_estate / "expected_findings.csv")
        assert stored == computed
        assert sorted((r[0], r[1], r[4]) for r in stored) == sorted(
            (r["rule_code"], r["source"], r["subject_id"]) for r in expected)
        (last_commit,) = con.execute("SELECT max(committed_at) FROM batches WHERE loaded > 0 OR quarantined > 0").fetchone()
        assert not rules.stored_evaluation(con, settings, as_of + timedelta(seconds=1))
        assert not rules.stored_evaluation(con, settings, as_of, known_at=last_commit - timedelta(seconds=1))
        assert rules.stored_evaluation(con, settings, as_of, known_at=last_commit)
        assert not rules.stored_evaluation(con, settings.model_copy(update={"grace_hours": 48}), as_of)
