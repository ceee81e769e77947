"""Tamper evidence (issue #14): a campaign of alterations on a loaded sample estate, each one
caught by the real `vigie verify` (exit 1, naming the batch and what differs); the untouched
estate verifies; configuration errors exit 2; verify runs while a load holds the writer."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest

from tests.conftest import copy_samples, migrated_before, vigie, with_closed_port
from vigie import db, integrity, pipeline
from vigie.config import load_settings
from vigie.simulate.bodycam_server import BodycamServer

TOKEN = "sample-token"
KEY_ENV = "VIGIE_TEST_SIGNING_KEY"
KEY = base64.b64encode(bytes(range(32))).decode()  # any 32 bytes are an Ed25519 private key
ENV = {"BODYCAM_TOKEN": TOKEN, KEY_ENV: KEY}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample estate, loaded once, with signed checkpoints. Each test restores it (`estate`)."""
    estate = copy_samples(tmp_path_factory.mktemp("integrity"))
    with BodycamServer(estate / "bodycam_events.json", token=TOKEN) as server:
        config = estate / "vigie.yml"
        config.write_text(config.read_text().replace("http://127.0.0.1:PORT", server.url)
                          + f"integrity:\n  checkpoints: ../outside/checkpoints.jsonl\n  signing_key_env: {KEY_ENV}\n")
        vigie("run", "--config", str(config), "--as-of", (estate / "as_of.txt").read_text().strip(), env=ENV, check=True)
    shutil.copytree(estate / "var", estate.parent / "var.orig")
    shutil.copytree(estate.parent / "outside", estate.parent / "outside.orig")
    return estate


@pytest.fixture
def estate(loaded: Path):
    """The loaded estate, put back as loaded after the test (same paths: landed_path is absolute)."""
    config, register = loaded / "vigie.yml", loaded / "authorisations.json"
    texts = config.read_text(), register.read_text()
    yield loaded
    config.write_text(texts[0])
    register.write_text(texts[1])
    for name in ("var", "outside"):
        shutil.rmtree(loaded.parent / name if name == "outside" else loaded / name)
        shutil.copytree(loaded.parent / f"{name}.orig", loaded.parent / name if name == "outside" else loaded / name)


def verify(estate: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return vigie("verify", "--config", str(estate / "vigie.yml"), *args, env=ENV if env is None else env)


def verify_json(estate: Path, *args: str, env: dict | None = None) -> tuple[int, dict]:
    proc = verify(estate, "--format", "json", *args, env=env)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    return proc.returncode, json.loads(proc.stdout)


def writer(estate: Path) -> duckdb.DuckDBPyConnection:
    """The attacker's own connection on the writer file (not through Vigie)."""
    return duckdb.connect(str(estate / "var" / "warehouse.duckdb.writer"))


def batch_of(estate: Path, source: str) -> int:
    with writer(estate) as con:
        return con.execute("SELECT max(batch_id) FROM batches WHERE source = ? AND status = 'loaded'",
                           [source]).fetchone()[0]


def landed(estate: Path, source: str, suffix: str) -> tuple[int, Path]:
    return landed_named(estate, source, suffix)[:2]


def landed_named(estate: Path, source: str, suffix: str) -> tuple[int, Path, str]:
    """A landed file of ``source``: its batch, its landed copy, and its name at the source."""
    with writer(estate) as con:
        b, path, name = con.execute("SELECT batch_id, landed_path, name FROM landed_files WHERE source = ? "
                                    "AND name LIKE ? ORDER BY name LIMIT 1", [source, f"%{suffix}"]).fetchone()
    return b, Path(path), name


def breaks_of(out: dict) -> list[dict]:
    return out["breaks"]


def test_an_untouched_estate_verifies_in_both_formats(estate: Path) -> None:
    proc = verify(estate)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "verified" in proc.stdout
    code, out = verify_json(estate)
    assert code == 0 and out["ok"] and out["breaks"] == []
    assert out["copies"] == ["writer", "published copy"]
    with writer(estate) as con:
        loaded_batches = con.execute("SELECT count(*) FROM batches WHERE status = 'loaded'").fetchone()[0]
        files = con.execute("SELECT count(*) FROM landed_files").fetchone()[0]
    assert out["batches_checked"] == loaded_batches == 5  # the register and the four sources
    assert out["files_checked"] == files > 100
    assert out["checkpoints_checked"] == 5
    assert out["head"]["seq"] == 5 and len(out["head"]["manifest_hash"]) == 64
    # The stored findings evaluated again; the published copy is the writer's, byte for byte.
    assert out["evaluations_checked"] == ["writer", "published copy"], out["notes"]
    assert "published copy: byte for byte the writer's state checked above" in out["notes"]
    log = [json.loads(line) for line in (estate.parent / "outside" / "checkpoints.jsonl").read_text().splitlines()]
    assert [c["seq"] for c in log] == [1, 2, 3, 4, 5] and all(c["sig"] for c in log)
    assert log[-1]["manifest_hash"] == out["head"]["manifest_hash"]


def test_a_flipped_byte_in_a_landed_file(estate: Path) -> None:
    b, path, name = landed_named(estate, "lapi-a7", ".csv")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    code, out = verify_json(estate)
    assert code == 1
    (brk,) = breaks_of(out)
    assert brk["batch_id"] == b and brk["what"] == "landed file content changed" and name in brk["where"]


def test_a_truncated_landed_file(estate: Path) -> None:
    b, path = landed(estate, "drones-69", ".csv")
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size - 10)
    proc = verify(estate)
    assert proc.returncode == 1
    assert f"batch {b} (drones-69): landing: " in proc.stderr and "size changed" in proc.stderr
    assert f"expected {size} bytes, found {size - 10} bytes" in proc.stderr


def test_a_deleted_canonical_row(estate: Path) -> None:
    b = batch_of(estate, "vms-lyon")
    with writer(estate) as con:
        con.execute("DELETE FROM vms_audit_log WHERE log_id = (SELECT max(log_id) FROM vms_audit_log)")
    code, out = verify_json(estate)
    assert code == 1
    (brk,) = breaks_of(out)
    assert (brk["batch_id"], brk["source"], brk["where"], brk["what"]) == (b, "vms-lyon", "writer: vms_audit_log",
                                                                          "1 row(s) deleted")
    assert brk["expected"].startswith("123 rows") and brk["found"].startswith("122 rows")


def test_one_field_of_one_row_edited(estate: Path) -> None:
    b = batch_of(estate, "bodycams")
    with writer(estate) as con:
        con.execute("UPDATE bodycam_events SET justification = 'enquête 2026/114' "
                    "WHERE event_id = (SELECT min(event_id) FROM bodycam_events)")
    code, out = verify_json(estate)
    assert code == 1
    (brk,) = breaks_of(out)
    assert (brk["batch_id"], brk["where"], brk["what"]) == (b, "writer: bodycam_events",
                                                            "row content altered (same number of rows)")


def test_a_deleted_quarantine_row(estate: Path) -> None:
    b = batch_of(estate, "lapi-a7")
    with writer(estate) as con:
        con.execute("DELETE FROM quarantine WHERE source = 'lapi-a7' AND location = "
                    "(SELECT min(location) FROM quarantine WHERE source = 'lapi-a7')")
    code, out = verify_json(estate)
    assert code == 1
    assert [(x["batch_id"], x["where"], x["what"]) for x in breaks_of(out)] == [(b, "writer: quarantine",
                                                                                "1 row(s) deleted")]


def test_a_whole_batch_deleted_with_its_ledger_entry_and_manifest(estate: Path) -> None:
    # A batch in the middle of the chain: the sources' batches are sealed as their pulls end, in
    # no fixed order, and deleting the last one leaves no gap for the warehouse alone to show.
    with writer(estate) as con:
        seq, b = con.execute("SELECT seq, batch_id FROM manifests WHERE seq = (SELECT max(seq) - 2 FROM manifests)").fetchone()
        for (table,) in con.execute("SELECT DISTINCT table_name FROM information_schema.columns "
                                    "WHERE column_name = 'batch_id' AND table_schema = 'main'").fetchall():
            con.execute(f'DELETE FROM "{table}" WHERE batch_id = ?', [b])
    code, out = verify_json(estate)
    assert code == 1
    found = {(x["batch_id"], x["what"]) for x in breaks_of(out)}
    assert (b, f"checkpointed manifest {seq} is not in the warehouse's chain") in found  # the log outside names it
    assert any(x["what"].startswith(f"manifest(s) {seq}..{seq} missing") for x in breaks_of(out))
    assert any("chain link broken" in x["what"] for x in breaks_of(out))


def test_two_batches_ids_swapped(estate: Path) -> None:
    a, b = batch_of(estate, "vms-lyon"), batch_of(estate, "bodycams")
    with writer(estate) as con:
        tables = [t for (t,) in con.execute("SELECT DISTINCT table_name FROM information_schema.columns "
                                            "WHERE column_name = 'batch_id' AND table_schema = 'main'").fetchall()]
        for t in tables:
            con.execute(f'UPDATE "{t}" SET batch_id = CASE batch_id WHEN ? THEN ? WHEN ? THEN ? END '
                        f"WHERE batch_id IN (?, ?)", [a, b, b, a, a, b])
    code, out = verify_json(estate)
    assert code == 1
    named = {x["batch_id"] for x in breaks_of(out)}
    assert {a, b} <= named
    assert any(x["where"] == "writer: batches.source" for x in breaks_of(out)), breaks_of(out)


def _rewrite_chain(estate: Path, sign_with: str | None) -> None:
    """An attacker with write access to everything: alters a row, re-seals the whole chain with
    Vigie's own code, evaluates the rules afresh (the stored findings would give the deleted row
    away), republishes, and rewrites the checkpoint log from it."""
    settings = load_settings(estate / "vigie.yml")
    with db.writer(settings.warehouse) as con:  # publishes on exit, as a load would
        con.execute("DELETE FROM vms_audit_log WHERE log_id = (SELECT max(log_id) FROM vms_audit_log)")
        con.execute("DELETE FROM manifests")
        integrity.seal(con)
        (as_of,) = con.execute("SELECT as_of FROM run_evaluation").fetchone()
        con.execute("DROP TABLE run_evaluation")  # else the next evaluation carries the findings forward
        pipeline.evaluate_rules(con, settings, as_of)
        _write_log(con, settings.integrity.checkpoints, sign_with)


def _write_log(con: duckdb.DuckDBPyConnection, log: Path, sign_with: str | None) -> None:
    key = integrity.parse_private_key(sign_with, "attacker") if sign_with else None
    lines = []
    for seq, batch_id, digest in con.execute("SELECT seq, batch_id, manifest_hash FROM manifests ORDER BY seq").fetchall():
        entry = {"v": 1, "seq": seq, "batch_id": batch_id, "manifest_hash": digest, "at": "2026-04-30T10:00:00Z"}
        if key is not None:
            entry["key"] = integrity.key_id(key.public_key())
            entry["sig"] = base64.b64encode(key.sign(integrity.canonical(entry).encode())).decode()
        lines.append(integrity.canonical(entry))
    log.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("attacker_key", [None, base64.b64encode(b"\x07" * 32).decode()], ids=["unsigned", "own-key"])
def test_a_checkpoint_log_rewritten_from_the_tampered_warehouse_is_caught_by_the_signatures(
        estate: Path, attacker_key: str | None) -> None:
    _rewrite_chain(estate, attacker_key)
    code, out = verify_json(estate)
    assert code == 1
    whats = {x["what"] for x in breaks_of(out)}
    assert whats == {"checkpoint not signed" if attacker_key is None else "signature does not verify with the public key"}
    assert len(breaks_of(out)) == 5 and {x["batch_id"] for x in breaks_of(out)} == {1, 2, 3, 4, 5}
    # Without signatures, the same rewrite is not detectable from the server alone (README):
    # only a chain head kept elsewhere (a digest e-mail, a filed report) would show it.
    config = estate / "vigie.yml"
    config.write_text(config.read_text().replace(f"  signing_key_env: {KEY_ENV}\n", ""))
    code, out = verify_json(estate, env={})
    assert code == 0
    if attacker_key:
        assert "not checked" in out["notes"][-1]


def test_a_row_deleted_in_the_published_copy_only(estate: Path) -> None:
    b = batch_of(estate, "vms-lyon")
    with duckdb.connect(str(estate / "var" / "warehouse.duckdb")) as con:
        con.execute("DELETE FROM vms_recordings WHERE recording_id = (SELECT min(recording_id) FROM vms_recordings)")
    code, out = verify_json(estate)
    assert code == 1
    assert [(x["batch_id"], x["where"], x["what"]) for x in breaks_of(out)] == [
        (b, "published copy: vms_recordings", "1 row(s) deleted")]


def test_from_batch_recomputes_only_the_later_batches(estate: Path) -> None:
    b = batch_of(estate, "vms-lyon")
    with writer(estate) as con:
        con.execute("DELETE FROM vms_audit_log WHERE log_id = (SELECT max(log_id) FROM vms_audit_log)")
    code, out = verify_json(estate, "--from-batch", str(b + 1))
    assert code == 0 and out["batches_checked"] == 5 - b
    assert out["evaluations_checked"] == [] and "not evaluated again (--from-batch)" in out["notes"][-1]
    code, out = verify_json(estate, "--from-batch", str(b))
    assert code == 1 and out["batches_checked"] == 5 - b + 1


def test_usage_and_configuration_errors_exit_2(estate: Path) -> None:
    assert verify(estate, "--from-batch", "0").returncode == 2
    assert verify(estate, "--format", "csv").returncode == 2
    missing_key = verify(estate, env={KEY_ENV: ""})
    assert missing_key.returncode == 2 and KEY_ENV in missing_key.stderr
    bad_key = verify(estate, env={KEY_ENV: "not-a-key"})
    assert bad_key.returncode == 2 and "Ed25519" in bad_key.stderr
    config = estate / "vigie.yml"
    text = config.read_text()
    config.write_text(text + "  keep_landed_days: 0\n")
    proc = verify(estate)
    assert proc.returncode == 2 and "integrity.keep_landed_days" in proc.stderr
    config.write_text(text.replace("../outside/checkpoints.jsonl", "var/warehouse.duckdb"))
    proc = verify(estate)
    assert proc.returncode == 2 and "outside the warehouse" in proc.stderr
    config.write_text(text.replace(f"  signing_key_env: {KEY_ENV}\n", ""))
    proc = verify(estate, "--public-key")
    assert proc.returncode == 2 and "signing_key_env" in proc.stderr
    config.write_text(text)


def test_public_key_lets_an_inspector_verify_without_the_secret(estate: Path) -> None:
    proc = verify(estate, "--public-key")
    assert proc.returncode == 0 and proc.stdout.startswith("-----BEGIN PUBLIC KEY-----")
    pem = estate.parent / "inspector.pem"
    pem.write_text(proc.stdout)
    config = estate / "vigie.yml"
    config.write_text(config.read_text().replace(f"  signing_key_env: {KEY_ENV}\n", f"  public_key: {pem}\n"))
    code, out = verify_json(estate, env={})
    assert code == 0 and out["checkpoints_checked"] == 5
    (estate.parent / "outside" / "checkpoints.jsonl").write_text(
        (estate.parent / "outside" / "checkpoints.jsonl").read_text().replace('"seq":5,', '"seq":5,"note":"x",'))
    code, out = verify_json(estate, env={})
    assert code == 1 and out["breaks"][0]["what"] == "signature does not verify with the public key"


def test_purged_landed_files_are_reported_as_purged_not_tampered(estate: Path) -> None:
    config = estate / "vigie.yml"
    config.write_text(config.read_text() + "  keep_landed_days: 30\n")
    settings = load_settings(config)
    with db.writer(settings.warehouse) as con:
        files = con.execute("SELECT count(*) FROM landed_files").fetchone()[0]
        assert integrity.purge_landed(con, settings) == 0  # nothing is old enough yet
        later = datetime.now(timezone.utc) + timedelta(days=31)
        assert integrity.purge_landed(con, settings, later) == files
    assert not list((estate / "var" / "landing").rglob("*.*"))  # the personal data is gone
    code, out = verify_json(estate)
    assert code == 0, out["breaks"]
    assert len(out["purged"]) == files and all(len(p["sha256"]) == 64 for p in out["purged"])
    # The warehouse is still checked after the purge.
    with writer(estate) as con:
        con.execute("DELETE FROM lapi_reads WHERE read_id = (SELECT min(read_id) FROM lapi_reads)")
    code, out = verify_json(estate)
    assert code == 1 and [x["where"] for x in out["breaks"]] == ["writer: lapi_reads"]


def test_a_warehouse_copied_elsewhere_checks_and_purges_its_own_landed_files(estate: Path) -> None:
    """The manifests seal each landed file's absolute path: a warehouse folder moved or
    restored elsewhere had every landed file reported missing and purged none; copied, it
    checked the original's files and purged them. Each copy now has its own."""
    moved = estate.parent / "moved"
    shutil.copytree(estate, moved)
    try:
        code, out = verify_json(moved)
        assert code == 0, out["breaks"]
        assert out["files_checked"] > 0 and not out["purged"]
        b, recorded = landed(moved, "lapi-a7", ".csv")
        path = integrity.landed_file(integrity.landing_folder(load_settings(moved / "vigie.yml")), "lapi-a7", b,
                                     str(recorded))
        assert path.is_relative_to((moved / "var" / "landing").resolve()) and recorded.exists()
        # The evidence of a report made there names the copy's files too, not the original's.
        report = moved / "var" / "report.html"
        proc = vigie("report", "--config", str(moved / "vigie.yml"), "--as-of", (moved / "as_of.txt").read_text().strip(),
                     "--format", "html", "--output", str(report), env=ENV)
        assert proc.returncode == 0, proc.stderr[-2000:]
        html = report.read_text()
        assert str((moved / "var" / "landing").resolve()) in html
        assert str((estate / "var" / "landing").resolve()) not in html
        original = path.read_bytes()
        altered = bytearray(original)
        altered[10] ^= 1
        path.write_bytes(bytes(altered))  # the copy's own file is the one checked
        code, out = verify_json(moved)
        assert code == 1 and [(x["batch_id"], x["what"]) for x in out["breaks"]] == [(b, "landed file content changed")]
        assert verify_json(estate)[0] == 0  # the original's untouched
        path.write_bytes(original)
        (estate / "var" / "landing").rename(estate / "var" / "landing.away")  # moved, not copied
        assert verify_json(moved)[0] == 0
        (estate / "var" / "landing.away").rename(estate / "var" / "landing")
        config = moved / "vigie.yml"
        config.write_text(config.read_text() + "  keep_landed_days: 30\n")
        settings = load_settings(config)
        with db.writer(settings.warehouse) as con:
            files = con.execute("SELECT count(*) FROM landed_files").fetchone()[0]
            assert integrity.purge_landed(con, settings, datetime.now(timezone.utc) + timedelta(days=31)) == files
        assert not list((moved / "var" / "landing").rglob("*.*"))  # purged in the copy...
        assert recorded.exists() and verify_json(estate)[0] == 0  # ...and not in the original
        code, out = verify_json(moved)
        assert code == 0 and len(out["purged"]) == files, out["breaks"]
    finally:
        shutil.rmtree(moved)


def test_a_deleted_landed_file_disguised_as_an_early_purge_is_a_break(estate: Path) -> None:
    config = estate / "vigie.yml"
    config.write_text(config.read_text() + "  keep_landed_days: 30\n")
    b, path = landed(estate, "bodycams", "")
    path.unlink()
    code, out = verify_json(estate)
    assert code == 1 and [(x["batch_id"], x["what"]) for x in out["breaks"]] == [(b, "landed file missing")]
    with writer(estate) as con:
        con.execute("INSERT INTO landed_purges SELECT batch_id, name, now() FROM landed_files WHERE landed_path = ?",
                    [str(path)])
    code, out = verify_json(estate)
    assert code == 1 and "recorded as purged before" in out["breaks"][0]["what"]


def test_verify_runs_without_the_lock_while_a_load_holds_the_writer(estate: Path) -> None:
    """A load holds the writer lock and its DuckDB file, and commits a new register version
    meanwhile: verify reads the writer's committed state from a private copy and exits 0; the
    load, for its part, is never blocked by verify."""
    settings = load_settings(estate / "vigie.yml")
    register = json.loads(settings.register.read_text())
    register[0]["holder"] = "Holder renamed"
    settings.register.write_text(json.dumps(register))
    holding, release = threading.Event(), threading.Event()

    def load() -> None:
        from vigie.register import load_register

        with db.writer(settings.warehouse) as con:
            load_register(con, settings.register, datetime.now(timezone.utc))  # sealed, not checkpointed yet
            holding.set()
            release.wait(300)

    loader = threading.Thread(target=load)
    loader.start()
    try:
        assert holding.wait(120)
        with pytest.raises(db.WarehouseLocked):  # the load really holds the lock
            with db.writer(settings.warehouse):
                pass
        code, out = verify_json(estate)
        assert code == 0, out["breaks"]
        assert out["head"]["seq"] == 6 and "writer" in out["copies"]  # the load's own commit, seen without the lock
        assert any("not checkpointed yet" in n for n in out["notes"])
    finally:
        release.set()
        loader.join()
    code, out = verify_json(estate)
    assert code == 0 and out["head"]["seq"] == 6


def test_manifests_are_sealed_in_commit_order_over_every_committed_batch(estate: Path) -> None:
    with writer(estate) as con:
        rows = con.execute(f"SELECT m.seq, m.batch_id, b.status, {integrity.MANIFEST_TEXT} FROM manifests m "
                           "JOIN batches b USING (batch_id) ORDER BY seq").fetchall()
        unchained = con.execute("SELECT count(*) FROM batches WHERE status = 'loaded' AND batch_id NOT IN "
                                "(SELECT batch_id FROM manifests)").fetchone()[0]
    assert unchained == 0 and [r[0] for r in rows] == [1, 2, 3, 4, 5]
    first = json.loads(rows[0][3])
    assert first["batch"]["source"] == "register" and first["prev"] == integrity.GENESIS
    assert first["tables"]["authorisations"]["rows"] == 37
    # Sources commit as their pulls end: the LAPI batch is found by its source, not its place.
    (lapi,) = [m for m in (json.loads(r[3]) for r in rows) if m["batch"]["source"] == "lapi-a7"]
    assert set(lapi["tables"]) >= {"lapi_reads", "quarantine", "duplicates", "landed_files"}
    assert all(len(f["sha256"]) == 64 and f["bytes"] > 0 for f in lapi["files"])


def test_a_manifest_lists_exactly_the_tables_its_batch_added_rows_to(estate: Path) -> None:
    """Sealing counts every chained table's rows in one query and hashes only the tables that
    hold some of the batch's: what each manifest lists, with its counts, is what the tables
    hold, batch by batch, and nothing is listed with no rows."""
    with writer(estate) as con:
        tables = integrity.chained_tables(con)
        ids = [b for (b,) in con.execute("SELECT batch_id FROM manifests ORDER BY seq").fetchall()]
        held = {t: integrity.row_counts(con, t, ids) for t in tables}
        assert integrity.rows_by_table(con, list(tables), ids) == {t: c for t, c in held.items() if c}
        assert integrity.rows_by_table(con, [], ids) == {}
        # A table's name is never SQL text: a quote in it (a table added by hand) is no error.
        con.execute('CREATE TABLE "it\'s" AS SELECT batch_id FROM landed_files')
        assert integrity.rows_by_table(con, ["it's", "landed_files"], ids) == \
            {"it's": held["landed_files"], "landed_files": held["landed_files"]}
        con.execute('DROP TABLE "it\'s"')
        for b, text in con.execute(f"SELECT batch_id, {integrity.MANIFEST_TEXT} FROM manifests m").fetchall():
            listed = {t: e["rows"] for t, e in json.loads(text)["tables"].items()}
            assert listed == {t: c[b] for t, c in held.items() if b in c}, b
            assert all(n > 0 for n in listed.values())
        # Built again now, the manifests are those sealed: same tables, counts and hashes.
        rebuilt = integrity.build(con, ids, tables)
        for b, text in con.execute(f"SELECT batch_id, {integrity.MANIFEST_TEXT} FROM manifests m").fetchall():
            assert rebuilt[b]["tables"] == json.loads(text)["tables"], b


def test_a_failed_batch_is_left_out_of_the_chain(tmp_path: Path) -> None:
    """Only committed batches are chained: a source that fails leaves a 'failed' batch that
    verification tolerates."""
    estate = copy_samples(tmp_path)
    config = estate / "vigie.yml"
    config.write_text(config.read_text().replace("http://127.0.0.1:PORT", "http://127.0.0.1:9"))
    proc = vigie("run", "--config", str(config), env={"BODYCAM_TOKEN": TOKEN})
    assert proc.returncode == 1  # the body-camera API is down
    code, out = verify_json(estate, env={})
    assert code == 0, out["breaks"]
    with duckdb.connect(str(estate / "var" / "warehouse.duckdb"), read_only=True) as con:
        statuses = dict(con.execute("SELECT status, count(*) FROM batches GROUP BY 1").fetchall())
    assert statuses["failed"] == 1 and out["batches_checked"] == statuses["loaded"] == 4


@pytest.mark.parametrize("lang, label", [("fr", "Tête de la chaîne"), ("en", "Chain head")])
def test_a_report_states_the_chain_head_it_was_made_at(estate: Path, lang: str, label: str) -> None:
    """How an inspector ties a filed report to a verified state: the head printed in the report
    is a checkpoint of the verified log (same position, same manifest hash)."""
    out = estate.parent / f"report-{lang}.html"
    vigie("report", "--config", str(estate / "vigie.yml"), "--format", "html", "--lang", lang, "--output", str(out),
          "--as-of", (estate / "as_of.txt").read_text().strip(), check=True)
    html = out.read_text()
    code, verified = verify_json(estate)
    assert code == 0
    head = verified["head"]
    assert label in html and head["manifest_hash"] in html
    assert (f"lot {head['batch_id']}, manifeste {head['seq']}" if lang == "fr"
            else f"batch {head['batch_id']}, manifest {head['seq']}") in html
    log = [json.loads(line) for line in (estate.parent / "outside" / "checkpoints.jsonl").read_text().splitlines()]
    assert {"seq": head["seq"], "manifest_hash": head["manifest_hash"]}.items() <= log[-1].items()


def test_the_daily_digest_carries_the_chain_head(estate: Path) -> None:
    from vigie.simulate.receivers import SmtpSink

    config = estate / "vigie.yml"
    with SmtpSink() as smtp, BodycamServer(estate / "bodycam_events.json", token=TOKEN) as server:
        text = config.read_text()
        base = text[text.index("base_url: ") + len("base_url: "):].split("\n")[0]
        config.write_text(text.replace(base, server.url)
                          + f"alerts:\n  smtp: {{host: 127.0.0.1, port: {smtp.port}, sender: vigie@control.example}}\n"
                            "  control_body: {email: [controle@control.example]}\n")
        vigie("run", "--config", str(config), "--as-of", (estate / "as_of.txt").read_text().strip(), env=ENV, check=True)
        digests = [m for m in smtp.messages if m["X-Vigie-Kind"] == "digest"]
    assert len(digests) == 1
    code, verified = verify_json(estate)
    assert code == 0
    head = verified["head"]
    body = digests[0].get_body(("plain",)).get_content()
    assert f"lot {head['batch_id']}, manifeste {head['seq']}, SHA-256 {head['manifest_hash']}" in body
    assert head["manifest_hash"] in digests[0].get_body(("html",)).get_content()


def test_a_load_with_a_signing_key_variable_unset_stops_before_loading(tmp_path: Path) -> None:
    estate = copy_samples(tmp_path)
    config = estate / "vigie.yml"
    config.write_text(config.read_text().replace("http://127.0.0.1:PORT", "http://127.0.0.1:9")
                      + "integrity:\n  signing_key_env: VIGIE_UNSET_KEY\n")
    proc = vigie("run", "--config", str(config), env={"BODYCAM_TOKEN": TOKEN, "VIGIE_UNSET_KEY": ""})
    assert proc.returncode == 2 and "VIGIE_UNSET_KEY" in proc.stderr
    assert not (estate / "var" / "warehouse.duckdb.writer").exists()


def test_a_warehouse_from_before_the_chain_is_sealed_by_the_next_run(estate: Path) -> None:
    for name in ("warehouse.duckdb.writer", "warehouse.duckdb"):  # as loaded before migration 011 sealed anything
        with duckdb.connect(str(estate / "var" / name)) as con:
            con.execute("DELETE FROM manifests")
    (estate.parent / "outside" / "checkpoints.jsonl").unlink()
    code, out = verify_json(estate)
    assert code == 1 and {x["what"] for x in out["breaks"]} == {"committed batch that is not in the chain"}
    vigie("run", "--config", str(estate / "vigie.yml"), "--source", "lapi-a7", "--as-of",
          (estate / "as_of.txt").read_text().strip(), env=ENV, check=True)
    code, out = verify_json(estate)
    assert code == 0, out["breaks"]
    assert out["head"]["seq"] == 6 and out["checkpoints_checked"] == 2  # the old batches sealed as a whole, then the new one


def test_manifests_sealed_in_an_older_format_still_verify_and_still_catch_tampering(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Format 1 hashed rows as JSON objects, format 2 every table as a set of row hashes;
    batches sealed so before an upgrade are recomputed the way they were sealed, next to
    format-3 batches sealed after it."""
    estate = with_closed_port(copy_samples(tmp_path))
    settings = load_settings(estate / "vigie.yml")
    with monkeypatch.context() as m:
        m.setattr(integrity, "FORMAT", 1)
        pipeline.run(settings, ["vms-lyon"], validate=False, evaluate=False)
    with monkeypatch.context() as m:
        m.setattr(integrity, "FORMAT", 2)
        pipeline.run(settings, ["lapi-a7"], validate=False, evaluate=False)
    pipeline.run(settings, ["drones-69"], validate=False, evaluate=False)
    with duckdb.connect(str(estate / "var" / "warehouse.duckdb"), read_only=True) as con:
        text = integrity.MANIFEST_TEXT
        formats = dict(con.execute(f"SELECT source, CAST(({text})::JSON ->> 'format' AS INT) FROM manifests m").fetchall())
        orders = dict(con.execute(f"SELECT source, ({text})::JSON ->> '$.tables.drone_flights.order' FROM manifests m "
                                  "WHERE source = 'drones-69'").fetchall())
    assert formats == {"register": 1, "vms-lyon": 1, "lapi-a7": 2, "drones-69": 3}
    assert orders == {"drones-69": "ord"}
    code, out = verify_json(estate, env={})
    assert code == 0, out["breaks"]
    for name in ("warehouse.duckdb.writer", "warehouse.duckdb"):
        with duckdb.connect(str(estate / "var" / name)) as con:
            con.execute("UPDATE vms_audit_log SET justification = 'edited' WHERE log_id = (SELECT min(log_id) FROM vms_audit_log)")
            con.execute("UPDATE lapi_reads SET camera_id = 'edited' WHERE read_id = (SELECT min(read_id) FROM lapi_reads)")
            con.execute("UPDATE drone_flights SET pilot = 'edited' WHERE flight_id = (SELECT min(flight_id) FROM drone_flights)")
    code, out = verify_json(estate, env={})
    assert code == 1
    assert {(b["source"], b["where"].split(": ")[1], b["what"]) for b in out["breaks"]} == {
        ("vms-lyon", "vms_audit_log", "row content altered (same number of rows)"),
        ("lapi-a7", "lapi_reads", "row content altered (same number of rows)"),
        ("drones-69", "drone_flights", "row content altered (same number of rows)")}


def test_an_ordered_table_hash_is_its_json_lines_whatever_the_spans_or_the_storage_order(
        estate: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Format 3 hashes a canonical table's rows as one JSON Lines document in (ord, text)
    order: anyone can recompute it from an export; it does not depend on where the spans
    are cut, nor on the order the rows are stored in."""
    with duckdb.connect(str(estate / "var" / "warehouse.duckdb.writer")) as con:
        tables, types = integrity.chained_tables(con), integrity.column_types(con)
        assert {"lapi_reads", "vms_audit_log", "bodycam_events", "drone_track_points"} <= integrity.ordered_tables(con)
        assert "quarantine" not in integrity.ordered_tables(con)  # ord is NULL for rows quarantined before 007
        sealed = {(b, t): e for b, text in con.execute(f"SELECT batch_id, {integrity.MANIFEST_TEXT} FROM manifests m").fetchall()
                  for t, e in json.loads(text)["tables"].items()}
        table = "lapi_reads"
        text = integrity._row_text(table, tables[table], 3, types)
        by_batch: dict[int, list[tuple[int, str]]] = {}
        for b, o, x in con.execute(f"SELECT batch_id, ord, {text} FROM main.lapi_reads t").fetchall():
            by_batch.setdefault(b, []).append((o, x))
        assert by_batch
        for b, rows in by_batch.items():
            doc = "".join(x + "\n" for _, x in sorted(rows)).encode()
            assert sealed[(b, table)] == {"columns": tables[table], "rows": len(rows), "order": "ord",
                                          "sha256": hashlib.sha256(doc).hexdigest()}
        monkeypatch.setattr(integrity, "SPAN_ROWS", 2)
        monkeypatch.setattr(integrity, "SPANS_PER_QUERY", 3)
        for b, (n, h) in integrity.ordered_hashes(con, table, tables[table], list(by_batch)).items():
            assert (n, h) == (sealed[(b, table)]["rows"], sealed[(b, table)]["sha256"])
        # Stored in the reverse order: the same hashes.
        con.execute("CREATE TABLE reversed AS SELECT * FROM lapi_reads ORDER BY ord DESC")
        con.execute("DELETE FROM lapi_reads")
        con.execute("INSERT INTO lapi_reads SELECT * FROM reversed")
        con.execute("DROP TABLE reversed")
        # Rows sharing an ord (none do as loaded) are put in the order of their text.
        con.execute("CREATE TEMP TABLE twins AS SELECT * REPLACE ('z-' || read_id AS read_id) FROM lapi_reads")
        con.execute("INSERT INTO twins SELECT * REPLACE ('a-' || read_id AS read_id) FROM lapi_reads")
        con.execute("CREATE TABLE lapi_twins AS SELECT * FROM twins ORDER BY random()")
        twin_text = integrity._row_text("lapi_twins", tables[table], 3, integrity.column_types(con))
        for b in by_batch:
            rows = con.execute(f"SELECT ord, {twin_text} FROM main.lapi_twins t WHERE batch_id = {b}").fetchall()
            doc = "".join(x + "\n" for _, x in sorted(rows)).encode()
            assert integrity.ordered_hashes(con, "lapi_twins", tables[table], [b]) == \
                {b: (len(rows), hashlib.sha256(doc).hexdigest())}
        con.execute("DROP TABLE lapi_twins")
        # A row slipped in with no ord (its NOT NULL dropped first) is outside every span: seen all the same.
        con.execute("ALTER TABLE lapi_reads ALTER ord DROP NOT NULL")
        b = next(iter(by_batch))
        con.execute(f"INSERT INTO lapi_reads SELECT * REPLACE (NULL AS ord) FROM lapi_reads WHERE batch_id = {b} LIMIT 1")
        n, h = integrity.ordered_hashes(con, table, tables[table], [b])[b]
        assert n == sealed[(b, table)]["rows"] + 1 and h != sealed[(b, table)]["sha256"]
        con.execute("DELETE FROM lapi_reads WHERE ord IS NULL")
        con.execute("ALTER TABLE lapi_reads ALTER ord SET NOT NULL")
    shutil.copy(estate / "var" / "warehouse.duckdb.writer", estate / "var" / "warehouse.duckdb")
    code, out = verify_json(estate)
    assert code == 0, out["breaks"]


def test_ordered_hashes_equal_a_json_lines_reference_however_batches_and_spans_fall(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Random tables of many batches (empty, one row, rows sharing an ord, all on one ord,
    NaN, NULLs, newlines, accents), stored shuffled, hashed with spans of every size and
    small batches grouped: always the SHA-256 of the batch's rows as JSON Lines in (ord,
    text) order, computed here in Python."""
    rng = random.Random(20261204)
    con = duckdb.connect()
    db._configure(con)
    cols = ["batch_id", "ord", "v", "d", "seen_at"]
    for trial in range(25):
        con.execute("DROP TABLE IF EXISTS t")
        con.execute("CREATE TABLE t (batch_id BIGINT, ord BIGINT NOT NULL, v VARCHAR, d DOUBLE, seen_at TIMESTAMPTZ)")
        rows = []
        for b in range(1, rng.choice([2, 5, 40]) + 1):
            mode = rng.choice(["unique", "shared", "one"])
            for i in range(rng.choice([0, 1, 5, 17, 40])):
                o = i * 3 if mode == "unique" else rng.randint(0, 4) if mode == "shared" else 7
                rows.append((b, o, rng.choice(["a", "b", "a\nb", None, "é", "z", '"', "null", "B"]),
                             rng.choice([None, 1.5, float("nan"), -0.0]),
                             rng.choice([None, datetime(2026, 1, 1, tzinfo=timezone.utc)])))
        rng.shuffle(rows)
        if rows:
            con.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?)", rows)
        text = integrity._row_text("t", cols, 3, integrity.column_types(con))
        reference: dict[int, list] = {}
        for b, o, x in con.execute(f"SELECT batch_id, ord, {text} FROM t").fetchall():
            reference.setdefault(b, []).append((o, x.encode()))
        expected = {b: (len(r), hashlib.sha256(b"".join(x + b"\n" for _, x in sorted(r))).hexdigest())
                    for b, r in reference.items()}
        for span_rows, per_query in [(65536, 4), (1, 1), (2, 3), (5, 2), (16, 4)]:
            monkeypatch.setattr(integrity, "SPAN_ROWS", span_rows)
            monkeypatch.setattr(integrity, "SPANS_PER_QUERY", per_query)
            assert integrity.ordered_hashes(con, "t", cols, list(range(1, 50))) == expected, (trial, span_rows)


def test_an_ord_turned_into_text_is_a_break_and_never_runs_as_sql(estate: Path, tmp_path: Path) -> None:
    """The span cuts are ord values written into SQL: an attacker who makes ord a text column
    holding SQL gets a break naming the column, and their SQL never runs."""
    marker = tmp_path / "ran.txt"
    payload = f"0 THEN 0 END, 0, 0, 0, '' ; COPY (SELECT 1) TO '{marker}'; SELECT 1 --"
    for name in ("warehouse.duckdb.writer", "warehouse.duckdb"):
        with duckdb.connect(str(estate / "var" / name)) as con:
            con.execute("ALTER TABLE lapi_reads ALTER ord TYPE VARCHAR")
            con.execute("UPDATE lapi_reads SET ord = ?", [payload])
    code, out = verify_json(estate)
    assert code == 1 and not marker.exists()
    assert {(b["source"], b["where"].split(": ")[1], b["what"]) for b in out["breaks"]} == {
        ("lapi-a7", "lapi_reads", "column ord is no longer an integer")}
    with duckdb.connect(str(estate / "var" / "warehouse.duckdb"), read_only=True) as con:
        with pytest.raises(ValueError, match="not an integer"):
            integrity.ordered_hashes(con, "lapi_reads", integrity.chained_tables(con)["lapi_reads"], [1, 2, 3, 4, 5])
    assert not marker.exists()


def test_a_failed_span_query_in_the_loading_transaction_raises_its_own_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inside the transaction that loads a batch, a span query that fails aborts it: the error
    raised is that query's, not the allocator setting's restore refused by the aborted
    transaction."""
    con = duckdb.connect()
    db._configure(con)
    con.execute("CREATE TABLE t (batch_id BIGINT, ord BIGINT NOT NULL, v VARCHAR)")
    con.execute("BEGIN")
    con.execute("INSERT INTO t VALUES (1, 1, 'a'), (1, 2, 'b')")
    monkeypatch.setattr(integrity, "_row_text", lambda *a: "error('span query broke')")
    with pytest.raises(duckdb.Error, match="span query broke"):
        integrity.ordered_hashes(con, "t", ["batch_id", "ord", "v"], [1])
    con.execute("ROLLBACK")


def test_a_long_manifest_is_kept_in_parts_and_an_edited_part_is_caught(estate: Path) -> None:
    """A manifest longer than db.TEXT_PART characters (a batch of many files) is kept in
    manifest_parts (migration 013); editing one part is editing the manifest."""
    with writer(estate) as con:
        long = con.execute("SELECT seq, batch_id FROM manifests WHERE manifest = ''").fetchall()
        parts = con.execute("SELECT count(*), max(length(text)) FROM manifest_parts").fetchone()
        # A part past the first that holds a count of rows: the edit below changes it.
        seq, batch_id, part = con.execute("SELECT seq, batch_id, part FROM manifest_parts WHERE part > 0 "
                                          "AND contains(text, '\"rows\":') ORDER BY seq, part LIMIT 1").fetchone()
    assert long and parts[0] > len(long) and parts[1] == db.TEXT_PART and (seq, batch_id) in long
    for name in ("warehouse.duckdb.writer", "warehouse.duckdb"):
        with duckdb.connect(str(estate / "var" / name)) as con:
            assert con.execute("UPDATE manifest_parts SET text = replace(text, '\"rows\":', '\"rows\": ') "
                               "WHERE seq = ? AND part = ?", [seq, part]).fetchone() == (1,)
    code, out = verify_json(estate)
    assert code == 1
    assert ("manifest edited", batch_id) in {(x["what"], x["batch_id"]) for x in breaks_of(out)}


def test_long_manifests_sealed_before_migration_013_are_split(tmp_path: Path) -> None:
    con = migrated_before(tmp_path, 13)
    long = integrity.canonical({"files": [f"{i:064x}" for i in range(100)], "seq": 1})
    con.execute("INSERT INTO manifests VALUES (1, 7, 'drones', ?, ?, ?, now(), NULL), (2, 8, 'vms', '{\"seq\":2}', ?, ?, now(), NULL)",
                [long, integrity.GENESIS, integrity.sha256_text(long), integrity.sha256_text(long), "0" * 64])
    assert db.migrate(con)[0] == "013_manifest_parts.sql"
    texts = con.execute(f"SELECT {integrity.MANIFEST_TEXT} FROM manifests m ORDER BY seq").fetchall()
    assert texts == [(long,), ('{"seq":2}',)]
    assert con.execute("SELECT manifest FROM manifests ORDER BY seq").fetchall() == [("",), ('{"seq":2}',)]


def test_a_duckdb_function_redefined_in_the_warehouse_is_a_break(estate: Path) -> None:
    """A macro named like one of DuckDB's functions is what verify's SQL would run in its place
    (one that hands back the sealed hash of an edited row would hide the edit). Even one that
    changes nothing is reported: nothing recomputed through it can be trusted."""
    for copy in ("warehouse.duckdb.writer", "warehouse.duckdb"):
        with duckdb.connect(str(estate / "var" / copy)) as con:
            con.execute("CREATE MACRO sha256(x) AS system.main.sha256(x)")
            assert con.execute("SELECT sha256('a')").fetchone()[0].startswith("ca978112")  # the same result
    code, out = verify_json(estate)
    assert code == 1
    found = {(b["batch_id"], b["where"], b["what"].split(",")[0]) for b in breaks_of(out)}
    assert found == {(None, f"{copy}: {where}", what) for copy in ("writer", "published copy") for where, what in
                     [("functions", "the warehouse defines its own sha256()"), ("rules", "macro main.sha256 added")]}


def test_rules_edited_in_a_copy_are_breaks_and_another_configuration_a_note(estate: Path) -> None:
    """Reports evaluate the rules the published copy holds: a limit or a rule's macro edited
    there would change findings while every row still verifies."""
    with duckdb.connect(str(estate / "var" / "warehouse.duckdb")) as con:
        con.execute("UPDATE rule_limits SET value = value * 12 WHERE name = 'bwc_months'")
        con.execute("CREATE OR REPLACE MACRO vg_kept_too_long(deleted, lawful_until, as_of) AS false")
    code, out = verify_json(estate)
    assert code == 1
    assert sorted((b["where"], b["what"]) for b in breaks_of(out)) == [
        ("published copy: rules", "macro main.vg_kept_too_long differs from this version's"),
        ("published copy: rules", "rule_limits differs from this version's")]
    assert "CAST('f' AS BOOLEAN)" in next(b["found"] for b in breaks_of(out) if "vg_kept" in b["what"])
    # Installed for another configuration (changed since the last run): compared at the next run.
    config = estate / "vigie.yml"
    assert "grace_hours: 24" in config.read_text()
    config.write_text(config.read_text().replace("grace_hours: 24", "grace_hours: 5"))
    code, out = verify_json(estate)
    assert code == 0, out
    notes = [n for n in out["notes"] if "installed by another version or configuration" in n]
    assert len(notes) == 2 and all("rule_settings differs" in n for n in notes), notes
    assert "macro main.vg_kept_too_long differs" in notes[1] and "rule_limits differs" in notes[1]


def test_rules_said_to_be_another_versions_beside_this_versions_evaluation_are_a_break(estate: Path) -> None:
    """An edit of the installed rules' fingerprint made verify take edited rules for another
    version's (a note), and skip the stored findings, which this version then served and carried
    forward. The report made from them says the rules it evaluated are not this version's."""
    for name in ("warehouse.duckdb.writer", "warehouse.duckdb"):
        with duckdb.connect(str(estate / "var" / name)) as con:
            con.execute("UPDATE rule_installed SET fingerprint = 'f' || fingerprint")
            con.execute("CREATE OR REPLACE MACRO vg_kept_too_long(deleted, lawful_until, as_of) AS false")
            con.execute("DELETE FROM run_findings WHERE rule_code = 'RET-01'")
            (edited,) = con.execute("SELECT fingerprint FROM rule_installed").fetchone()
    code, out = verify_json(estate)
    assert code == 1
    found = sorted((b["where"], b["what"].split(" (")[0], b["found"]) for b in breaks_of(out))
    assert found == [(f"{copy}: rule_installed", "the stored evaluation says this version's rules made it, the copy's "
                      "rules say another version's: no run of this version writes the two, an edit does",
                      f"installed as {edited[:16]}") for copy in ("published copy", "writer")], found
    notes = [n for n in out["notes"] if "installed by another version or configuration" in n]
    assert len(notes) == 2 and all("macro main.vg_kept_too_long differs" in n for n in notes), notes
    # A reader of this version does not serve that evaluation beside rules it does not hold.
    settings = load_settings(estate / "vigie.yml")
    as_of = datetime.fromisoformat((estate / "as_of.txt").read_text().strip())
    con = db.reader(settings.warehouse)
    try:
        from vigie import rules

        assert rules.installed_fingerprint(con) == edited
        assert not rules.stored_evaluation(con, settings, as_of)
        this = rules.fingerprint(settings)
    finally:
        con.close()
    report = estate / "var" / "report.html"
    proc = vigie("report", "--config", str(estate / "vigie.yml"), "--as-of", as_of.isoformat(), "--format", "html",
                 "--output", str(report), "--lang", "en", env=ENV)
    assert proc.returncode == 0, proc.stderr[-2000:]
    html = report.read_text()
    assert f'<dd class="sha">{this}</dd>' in html
    assert f"installed by another version of Vigie or another configuration ({edited})" in html


def _run_in_process(config: Path, evaluate: bool) -> str:
    """`pipeline.run` of the LAPI folder (no server needed) as its own process, as Airflow's
    ingestion task runs it (``evaluate=False``); the run's evaluation summary."""
    code = ("import sys; from pathlib import Path; from vigie import pipeline; from vigie.config import load_settings; "
            f"print(pipeline.run(load_settings(Path({str(config)!r})), ['lapi-a7'], evaluate={evaluate}).evaluation)")
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, **ENV}, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip()


def test_rules_installed_by_another_configuration_then_put_back_are_no_break(estate: Path) -> None:
    """An ingestion run (no evaluation, as the Airflow DAG's) under another configuration installs
    its rules; the configuration put back, verify finds this version's evaluation beside them.
    Installing other rules marks the stored evaluation superseded first: a note, not a break."""
    config = estate / "vigie.yml"
    text = config.read_text()
    assert "grace_hours: 24" in text
    config.write_text(text.replace("grace_hours: 24", "grace_hours: 5"))
    _run_in_process(config, evaluate=False)
    config.write_text(text)
    code, out = verify_json(estate)
    assert (code, breaks_of(out)) == (0, []), out
    assert any("stored findings not re-checked: its rules are not this version's" in n for n in out["notes"])
    settings = load_settings(config)
    con = db.reader(settings.warehouse)
    try:
        from vigie import rules

        assert con.execute("SELECT fingerprint FROM run_evaluation").fetchone() == (rules.SUPERSEDED,)
        assert not rules.stored_evaluation(con, settings, datetime.fromisoformat((estate / "as_of.txt").read_text().strip()))
    finally:
        con.close()
    _run_in_process(config, evaluate=False)  # this version's rules again, beside the evaluation marked superseded
    con = db.reader(settings.warehouse)
    try:
        assert rules.installed_fingerprint(con) == rules.fingerprint(settings)
        assert not rules.stored_evaluation(con, settings, datetime.fromisoformat((estate / "as_of.txt").read_text().strip()))
    finally:
        con.close()
    evaluation = _run_in_process(config, evaluate=True)  # and evaluates afresh
    assert evaluation.startswith("full: rules, limits, settings or schema changed"), evaluation
    assert verify_json(estate)[0] == 0


def test_a_batch_recorded_twice_in_the_ledger_is_a_break(estate: Path) -> None:
    """Nothing in the table refuses a second row for a batch (DuckLake has no keys): one that gives
    a batch another commit instant would change what `--known-at` sees, the sealed row intact."""
    b = batch_of(estate, "lapi-a7")
    with writer(estate) as con:  # the sealed row stored after the other: the one a lookup by id found
        con.execute("CREATE TEMP TABLE sealed AS FROM batches WHERE batch_id = ?", [b])
        con.execute("DELETE FROM batches WHERE batch_id = ?", [b])
        con.execute("INSERT INTO batches SELECT * REPLACE (committed_at + INTERVAL 1 YEAR AS committed_at) FROM sealed")
        con.execute("INSERT INTO batches FROM sealed")
    code, out = verify_json(estate)
    assert code == 1
    assert [(x["batch_id"], x["where"], x["what"]) for x in breaks_of(out)] == [
        (b, "writer: batches", "batch recorded 2 times in the ledger")], out["breaks"]


def test_a_rule_table_dropped_is_a_break_not_a_crash(estate: Path) -> None:
    with duckdb.connect(str(estate / "var" / "warehouse.duckdb")) as con:
        con.execute("DROP TABLE rule_purposes")
    code, out = verify_json(estate)
    assert code == 1
    assert [(b["where"], b["what"]) for b in breaks_of(out)] == [("published copy: rules", "rule_purposes removed")]


def test_verify_reads_nothing_outside_the_warehouse(estate: Path) -> None:
    """What verify runs in a warehouse it does not trust reaches no file, extension or network."""
    settings = load_settings(estate / "vigie.yml")
    outside = estate / "vigie.yml"
    with db.writer_snapshot(settings.warehouse) as con:
        with pytest.raises(duckdb.PermissionException):
            con.execute("SELECT * FROM read_text(?)", [str(outside)])
    con = db.reader(settings.warehouse, sealed=True)
    try:
        with pytest.raises(duckdb.PermissionException):
            con.execute("SELECT * FROM read_text(?)", [str(outside)])
    finally:
        con.close()
    con = db.reader(settings.warehouse)  # reports and the view may load extensions
    try:
        assert con.execute("SELECT count(*) FROM read_text(?)", [str(outside)]).fetchone() == (1,)
    finally:
        con.close()


@pytest.mark.parametrize("tampering, expected", [
    # The catalog function verify asks is itself redefined, to hide the sha256 beside it.
    (["CREATE MACRO sha256(x) AS system.main.sha256(x)",
      "CREATE MACRO duckdb_functions() AS TABLE SELECT * FROM system.main.duckdb_functions() "
      "WHERE function_name NOT IN ('sha256', 'duckdb_functions')"],
     {("functions", "the warehouse defines its own duckdb_functions()"),
      ("functions", "the warehouse defines its own sha256()"),
      ("rules", "macro main.duckdb_functions added"), ("rules", "macro main.sha256 added")}),
    (["CREATE TYPE json AS VARCHAR"], {("rules", "type main.json added")}),
    # A second version of a rule's macro (another number of arguments) beside the right one.
    (["CREATE OR REPLACE MACRO vg_kept_too_long(deleted, lawful_until, as_of) AS "
      "lawful_until < least(coalesce(deleted, as_of), 'infinity'::TIMESTAMPTZ), (a, b, c, d) AS false"],
     {("rules", "macro main.vg_kept_too_long differs from this version's")}),
    (["DROP TABLE rule_limits", "CREATE VIEW rule_limits AS SELECT error('no limits') AS name"],
     {("rules", "view main.rule_limits added"), ("rules", "rule_limits differs from this version's")}),
])
def test_what_would_hide_an_edit_from_verify_is_itself_a_break(estate: Path, tampering: list[str],
                                                               expected: set) -> None:
    with duckdb.connect(str(estate / "var" / "warehouse.duckdb")) as con:
        for statement in tampering:
            con.execute(statement)
    code, out = verify_json(estate, env={**ENV, "TZ": "Europe/Paris"})  # and on a machine outside UTC
    assert code == 1
    found = {(b["where"].removeprefix("published copy: "), b["what"].split(",")[0].split(":")[0])
             for b in breaks_of(out)}
    assert found == expected, breaks_of(out)
    if "rule_limits" in tampering[0]:  # told, not a crash
        assert "unreadable" in next(b["found"] for b in breaks_of(out) if b["what"].startswith("rule_limits"))


def test_an_untouched_estate_verifies_outside_utc(estate: Path) -> None:
    code, out = verify_json(estate, env={**ENV, "TZ": "Europe/Paris"})
    assert (code, breaks_of(out)) == (0, [])


def test_stored_findings_edited_in_either_copy_are_breaks(estate: Path) -> None:
    """Reports serve the stored findings when they answer their question, and each run carries
    them forward: a finding deleted or made up there, a scope's next re-evaluation pushed away
    and a sequence number removed (LOG-01 reads them) are breaks, though every manifest holds."""
    with duckdb.connect(str(estate / "var" / "warehouse.duckdb")) as con:  # what inspectors read
        first, second = con.execute("SELECT rule_code, source, subject_id FROM run_findings "
                                    "WHERE rule_code LIKE 'RET-%' ORDER BY ALL LIMIT 2").fetchall()
        con.execute("DELETE FROM run_findings WHERE (rule_code, source, subject_id) = (?, ?, ?)", list(first))
        con.execute("INSERT INTO run_findings SELECT * REPLACE ('REC-MADE-UP' AS subject_id) FROM run_findings "
                    "WHERE (rule_code, source, subject_id) = (?, ?, ?)", list(second))
    with writer(estate) as con:
        scope = con.execute("SELECT source, scope FROM run_horizon ORDER BY ALL LIMIT 1").fetchone()
        con.execute("UPDATE run_horizon SET next_at = 'infinity' WHERE (source, scope) = (?, ?)", list(scope))
        number = con.execute("SELECT source, n FROM run_numbers WHERE n IS NOT NULL ORDER BY ALL LIMIT 1").fetchone()
        con.execute("DELETE FROM run_numbers WHERE (source, n) = (?, ?)", list(number))
    code, out = verify_json(estate)
    assert code == 1
    found = sorted((b["where"], " ".join(b["what"].split()[:3])) for b in breaks_of(out))
    assert found == [("published copy: run_findings", "1 finding(s) as"),
                     ("published copy: run_findings", "1 stored finding(s)"),
                     ("writer: run_horizon", "1 scope(s) due"),
                     ("writer: run_numbers", "sequence numbers kept")], found
    missing = next(b for b in breaks_of(out) if b["what"].startswith("1 finding(s)"))
    assert f"{first[0]} {first[1]} {first[2]}" in missing["expected"] and missing["found"] == "absent"
    made_up = next(b for b in breaks_of(out) if "stored finding(s)" in b["what"])
    assert "REC-MADE-UP" in made_up["found"] and made_up["expected"] == "absent"
    assert "(1 missing, 0 added)" in next(b["what"] for b in breaks_of(out) if b["where"] == "writer: run_numbers")
    horizon = next(b for b in breaks_of(out) if b["where"] == "writer: run_horizon")
    assert f"{scope[0]} {scope[1]} at" in horizon["expected"] and horizon["found"] == "at infinity"


def test_stored_findings_are_checked_when_loads_came_after_the_evaluation(estate: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Airflow's ingestion loads without evaluating; the oversight DAG evaluates later. Until it
    does, the stored findings are those of the batches the last evaluation had seen, and are
    re-checked on those batches alone."""
    monkeypatch.setenv(KEY_ENV, KEY)
    settings = load_settings(estate / "vigie.yml")
    (estate / "lapi" / "reads_2026-12-31_late.csv").write_text(
        "read_id,read_at,camera_id,plate_hash,matched,deleted_at\n"
        "rd-late-1,2026-02-27T10:00:00+01:00,LAPI-A7-01,00000000000000aa,0,\n")
    try:
        report = pipeline.run(settings, ["lapi-a7"], evaluate=False, as_of=datetime(2026, 3, 1, tzinfo=timezone.utc))
    finally:
        (estate / "lapi" / "reads_2026-12-31_late.csv").unlink()
    assert report.sources[0].counts.loaded == 1 and report.evaluation == ""
    code, out = verify_json(estate)
    assert (code, breaks_of(out)) == (0, [])
    assert out["evaluations_checked"] == ["writer", "published copy"], out["notes"]
    with duckdb.connect(str(estate / "var" / "warehouse.duckdb")) as con:
        con.execute("DELETE FROM run_findings WHERE rule_code = (SELECT min(rule_code) FROM run_findings)")
    code, out = verify_json(estate)
    assert code == 1
    assert [b["where"] for b in breaks_of(out)] == ["published copy: run_findings"]


@pytest.mark.parametrize("tampering, where", [
    # Moved on: old findings would be served as those of every batch loaded since.
    (["UPDATE run_evaluation SET data_version = data_version + 100"], "run_evaluation"),
    (["UPDATE run_evaluation SET watermark = 0"], "run_evaluation"),
    (["ALTER TABLE run_evaluation ALTER watermark TYPE VARCHAR"], "run_evaluation"),
    # Two columns' names swapped: alerts would go to the legal reference as a holder.
    (["ALTER TABLE run_findings RENAME holder TO h", "ALTER TABLE run_findings RENAME legal_ref TO holder",
      "ALTER TABLE run_findings RENAME h TO legal_ref"], "run_findings"),
    (["ALTER TABLE run_numbers DROP COLUMN seen_at"], "run_numbers"),
])
def test_the_record_and_shape_of_the_stored_evaluation_are_checked(estate: Path, tampering: list[str],
                                                                    where: str) -> None:
    with duckdb.connect(str(estate / "var" / "warehouse.duckdb")) as con:
        for statement in tampering:
            con.execute(statement)
    code, out = verify_json(estate)
    assert code == 1
    assert {b["where"] for b in breaks_of(out)} == {f"published copy: {where}"}, breaks_of(out)
