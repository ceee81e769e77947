"""Body-camera APIs that misbehave (issue #13, item 2), against real HTTP servers on loopback:
a cursor that loops, a body that trickles, 429 with Retry-After, random 503s and dropped
connections. Every pull ends by itself; a failure names the source; the other sources load;
and a server that recovers delivers every event exactly once, even across killed runs."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest
import yaml

from tests.conftest import SAMPLES, vigie
from vigie.config import BodycamApiSource
from vigie.simulate.bodycam_server import BodycamServer
from vigie.sources import SourceError
from vigie.sources.bodycam_api import BodycamApi, _retry_after

TOKEN = "t0ken"
AS_OF = "2026-04-30T00:00:00+02:00"


def _events(path: Path, n: int, first: int = 1) -> Path:
    with open(path, "a") as f:
        for s in range(first, first + n):
            f.write(json.dumps({
                "seq": s, "id": f"e-{s:05d}", "at": "2026-03-01T10:00:00+01:00",
                "device": {"serial": "BWC-1", "kind": "BWC"}, "actor": {"badge": "PN-1", "unit": "CSP"},
                "action": "evidence.viewed", "evidence_id": f"ev-{s}", "purpose": None,
                "justification": None, "procedure_ref": None, "recipient": None}) + "\n")
    return path


def _bodycam(url: str, **over) -> BodycamApi:
    src = BodycamApiSource(name="bodycams", kind="bodycam_api", base_url=url, token_env="VIGIE_TEST_TOKEN",
                           **({"page_size": 20, "max_retries": 2, "max_backoff_s": 0.2} | over))
    return BodycamApi(src, settings=None)


def _landed(pull) -> list[int]:  # noqa: ANN001
    return [e["seq"] for line in pull.files[0].path.read_text().splitlines() for e in json.loads(line)["events"]]


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIE_TEST_TOKEN", TOKEN)


def test_a_cursor_loop_ends_the_pull_with_a_clear_error(tmp_path: Path) -> None:
    with BodycamServer(_events(tmp_path / "e.jsonl", 100), token=TOKEN, loop_cursor=True) as server:
        with pytest.raises(SourceError, match=r"cursor loop, page 3 sent back cursor '.+' already seen"):
            _bodycam(server.url).pull(None, tmp_path / "b")
        assert len(server.requests) == 3  # A, B, A' then B again: stopped there


def test_a_trickling_body_ends_in_a_timeout(tmp_path: Path) -> None:
    with BodycamServer(_events(tmp_path / "e.jsonl", 30), token=TOKEN, trickle_s=0.01) as server:
        # A page of 20 events is ~5 KB: a minute at this pace, against a deadline of half a second.
        with pytest.raises(SourceError, match=r"too slow after 2 attempts \(page not received within 0.5s"):
            _bodycam(server.url, page_deadline_s=0.5, max_retries=1).pull(None, tmp_path / "b")
        assert len(server.requests) == 2


def test_trickling_headers_end_in_a_timeout_too(tmp_path: Path) -> None:
    """The status line and headers a byte at a time: each read gets its byte well within
    timeout_s, so only the page deadline, applied to every read of the socket, ends it
    (it used to cover the body only: ~150 bytes of headers took as long as the server liked)."""
    with BodycamServer(_events(tmp_path / "e.jsonl", 30), token=TOKEN, trickle_s=0.05, trickle_headers=True) as server:
        started = time.monotonic()
        with pytest.raises(SourceError, match=r"too slow after 2 attempts \(page not received within 0.5s"):
            _bodycam(server.url, page_deadline_s=0.5, max_retries=1).pull(None, tmp_path / "b")
        assert time.monotonic() - started < 5
        assert len(server.requests) == 2


def test_the_pull_deadline_bounds_every_page_together(tmp_path: Path) -> None:
    with BodycamServer(_events(tmp_path / "e.jsonl", 30), token=TOKEN, trickle_s=0.01) as server:
        with pytest.raises(SourceError, match="pull deadline|pull_deadline_s=0.6"):
            _bodycam(server.url, page_deadline_s=60, pull_deadline_s=0.6, max_retries=5).pull(None, tmp_path / "b")


def test_a_page_over_the_byte_cap_is_refused(tmp_path: Path) -> None:
    with BodycamServer(_events(tmp_path / "e.jsonl", 50), token=TOKEN) as server:
        with pytest.raises(SourceError, match="over max_page_bytes=2048"):
            _bodycam(server.url, max_page_bytes=2048).pull(None, tmp_path / "b")
        # A page under the cap passes.
        assert _landed(_bodycam(server.url, page_size=5, max_page_bytes=2048).pull(None, tmp_path / "c")) == list(range(1, 51))


def test_retry_after_is_honoured_within_bounds(tmp_path: Path) -> None:
    later = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    assert 25 < _retry_after(later, 1.0) <= 30  # the HTTP-date form
    assert _retry_after("2", 1.0) == 2.0 and _retry_after("soon", 1.0) == 1.0
    events = _events(tmp_path / "e.jsonl", 10)
    # The server's word, past max_backoff_s (0.2 s here): two waits of 1.5 s, then the pages.
    with BodycamServer(events, token=TOKEN, fail_429=2, retry_after_s=1.5) as server:
        started = time.monotonic()
        assert _landed(_bodycam(server.url).pull(None, tmp_path / "b")) == list(range(1, 11))
        assert time.monotonic() - started >= 3.0
        assert [status for _, status in server.requests] == [429, 429, 200]
    # Without Retry-After, a 429 backs off like a 5xx, within max_backoff_s.
    with BodycamServer(events, token=TOKEN, fail_429=2, retry_after_s=None) as server:
        started = time.monotonic()
        assert _landed(_bodycam(server.url).pull(None, tmp_path / "b2")) == list(range(1, 11))
        assert time.monotonic() - started < 3.0
    # A wait that would outlast the pull's deadline ends the pull at once, saying why.
    with BodycamServer(events, token=TOKEN, fail_429=1, retry_after_s=30) as server:
        with pytest.raises(SourceError, match=r"HTTP 429, and waiting 30s more would pass the pull deadline"):
            _bodycam(server.url, max_backoff_s=60, pull_deadline_s=5).pull(None, tmp_path / "c")
        assert len(server.requests) == 1


def test_a_flaky_server_that_recovers_delivers_every_event(tmp_path: Path) -> None:
    with BodycamServer(_events(tmp_path / "e.jsonl", 200), token=TOKEN, random_429=0.1, random_503=0.15,
                       random_drop=0.15, seed=7) as server:
        pull = _bodycam(server.url, max_retries=8, max_backoff_s=0.05).pull(None, tmp_path / "b")
        assert _landed(pull) == list(range(1, 201))
        statuses = [status for _, status in server.requests]
        assert 429 in statuses and 503 in statuses and len(statuses) > 10


# --- the whole pipeline: a failed source never stops the others -----------------------------

def _config(tmp_path: Path, servers: dict[str, str], **bounds) -> Path:
    """vigie.yml with one bodycam source per server (in this order) then the samples' LAPI folder."""
    shutil.copytree(SAMPLES / "lapi", tmp_path / "lapi")
    shutil.copy(SAMPLES / "authorisations.json", tmp_path / "authorisations.json")
    sources = [{"name": name, "kind": "bodycam_api", "base_url": url, "token_env": "VIGIE_TEST_TOKEN",
                "page_size": 20, "max_retries": 2, "max_backoff_s": 0.2, **bounds} for name, url in servers.items()]
    sources.append({"name": "lapi-a7", "kind": "lapi_files", "path": "lapi"})
    config = tmp_path / "vigie.yml"
    config.write_text(yaml.safe_dump({"warehouse": "var/warehouse.duckdb", "timezone": "Europe/Paris",
                                      "register": "authorisations.json", "sources": sources}))
    return config


def _batches(config: Path) -> dict[str, tuple]:
    with duckdb.connect(str(config.parent / "var" / "warehouse.duckdb"), read_only=True) as con:
        return {r[0]: r[1:] for r in con.execute(
            "SELECT source, status, loaded, error FROM batches WHERE source <> 'register'").fetchall()}


def test_misbehaving_apis_fail_alone_and_name_themselves(tmp_path: Path) -> None:
    events = _events(tmp_path / "e.jsonl", 60)
    with BodycamServer(events, token=TOKEN, loop_cursor=True) as looping, \
            BodycamServer(events, token=TOKEN, trickle_s=0.01) as trickling, \
            BodycamServer(events, token=TOKEN, random_503=0.3, random_drop=0.2, seed=3) as flaky:
        config = _config(tmp_path, {"looping": looping.url, "trickling": trickling.url, "flaky": flaky.url},
                         page_deadline_s=0.5, max_retries=4)
        run = vigie("run", "--config", str(config), "--as-of", AS_OF, "--no-alerts", env={"VIGIE_TEST_TOKEN": TOKEN})
    assert run.returncode == 1, run.stderr
    assert "could not load looping, trickling" in run.stderr
    assert "source 'looping':" in run.stderr and "cursor loop" in run.stderr
    assert "source 'trickling':" in run.stderr and "too slow" in run.stderr
    got = _batches(config)
    assert got["looping"][0] == got["trickling"][0] == "failed"
    assert got["flaky"][:2] == ("loaded", 60)  # after the failures, and flaky itself: loaded
    assert got["lapi-a7"][0] == "loaded" and got["lapi-a7"][1] > 0


def test_credentials_in_a_base_url_are_a_configuration_error_that_never_shows_them(tmp_path: Path) -> None:
    """A base_url carrying user:password@ (a connection URI with credentials) would go out as
    Basic auth instead of the bearer token: refused before anything is pulled, exit 2, on one
    line naming the source and the key, the password hidden."""
    config = _config(tmp_path, {"bodycams": "http://api-user:pw-s3cr3t-42@127.0.0.1:9"}, max_retries=0)
    for command in ("run", "sources"):
        proc = vigie(command, "--config", str(config), env={"VIGIE_TEST_TOKEN": TOKEN})
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "bodycams" in lines[0] and "base_url" in lines[0], lines
        assert "api-user:***@127.0.0.1:9" in lines[0] and "carries credentials" in lines[0]
        assert "pw-s3cr3t-42" not in proc.stdout + proc.stderr
    assert not (config.parent / "var").exists()  # nothing pulled, nothing written


def test_credentials_in_an_error_are_hidden_wherever_it_is_kept() -> None:
    """Any message a source's failure produces (a driver quoting its URL) has the password of
    every URL in it hidden, before it is printed or kept in the batch's error."""
    from vigie.dburl import without_credentials

    text = ("source 'vms': OperationalError: could not connect to postgresql://vigie:pw-s3cr3t@db:5432/vms "
            "(via http://u:p@proxy:3128/) nor mysql+pymysql://root@127.0.0.1/x")
    shown = without_credentials(text)
    assert "pw-s3cr3t" not in shown and "u:p@" not in shown
    assert "postgresql://vigie:***@db:5432/vms" in shown and "http://u:***@proxy:3128/" in shown
    assert "mysql+pymysql://root@127.0.0.1/x" in shown  # no password, nothing to hide


def test_killed_runs_against_a_flaky_api_lose_and_double_nothing(tmp_path: Path) -> None:
    """20 runs of `vigie run`, each killed (SIGKILL) at a random point while events keep
    arriving on a server that fails a third of its requests; then one run to completion:
    every event is in the warehouse exactly once, and the LAPI folder too."""
    rng = random.Random(20261203)
    events = _events(tmp_path / "e.jsonl", 40)
    n_events = 40
    with BodycamServer(events, token=TOKEN, random_503=0.15, random_429=0.1, random_drop=0.1, seed=5) as server:
        config = _config(tmp_path, {"bodycams": server.url}, max_retries=10, max_backoff_s=0.05)
        env = {**os.environ, "VIGIE_TEST_TOKEN": TOKEN}
        for i in range(20):
            _events(events, 15, first=n_events + 1)
            n_events += 15
            proc = subprocess.Popen([sys.executable, "-m", "vigie.cli", "run", "--config", str(config), "--as-of", AS_OF,
                                     "--no-alerts", "--wait", "30"], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if i % 2:  # a random point: before, during or after the batch
                time.sleep(rng.uniform(0.3, 4.0))
            else:  # surely mid-batch: the batch is 'pulling' once the server sees this run's first page request
                seen, deadline = len(server.requests), time.monotonic() + 60
                while len(server.requests) == seen and proc.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.01)
                time.sleep(rng.uniform(0, 0.05))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        final = vigie("run", "--config", str(config), "--as-of", AS_OF, "--no-alerts", "--wait", "30",
                      env={"VIGIE_TEST_TOKEN": TOKEN})
    assert final.returncode == 0, final.stderr
    with duckdb.connect(str(config.parent / "var" / "warehouse.duckdb"), read_only=True) as con:
        seqs = [r[0] for r in con.execute("SELECT seq FROM bodycam_events ORDER BY seq").fetchall()]
        reads = con.execute("SELECT count(*), count(DISTINCT (read_id, read_at, file)) FROM lapi_reads").fetchone()
        statuses = dict(con.execute("SELECT status, count(*) FROM batches GROUP BY 1").fetchall())
    assert seqs == list(range(1, n_events + 1))  # every event once: none lost, none doubled
    assert reads[0] == reads[1] > 0
    assert statuses.get("loaded", 0) >= 2  # some killed runs had loaded already, before the last one
    assert sum(n for status, n in statuses.items() if status != "loaded") >= 1  # and some were killed mid-batch


def test_a_long_pull_lands_in_parts_that_load_as_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages land in parts of PART_BYTES (staging holds one part at a time: DuckDB cannot
    spill page-sized strings); the events load exactly as from one file, in page order."""
    from vigie import pipeline
    from vigie.config import load_settings
    from vigie.sources import bodycam_api

    monkeypatch.setattr(bodycam_api, "PART_BYTES", 12_000)  # about two pages of 20 events
    events = _events(tmp_path / "e.jsonl", 300)
    with BodycamServer(events, token=TOKEN) as server:
        config = _config(tmp_path, {"bodycams": server.url})
        report = pipeline.run(load_settings(config), ["bodycams"], validate=False, evaluate=False)
    assert not report.failed
    with duckdb.connect(str(config.parent / "var" / "warehouse.duckdb"), read_only=True) as con:
        names = [r[0] for r in con.execute("SELECT name FROM landed_files ORDER BY name").fetchall()]
        seqs = [r[0] for r in con.execute("SELECT seq FROM bodycam_events ORDER BY ord").fetchall()]
        (received,) = con.execute("SELECT received FROM batches WHERE source = 'bodycams'").fetchone()
    assert names[0] == "pages.jsonl" and names[1:] == [f"pages.jsonl.{k:04d}" for k in range(2, len(names) + 1)]
    assert len(names) >= 6
    assert seqs == list(range(1, 301)) and received == 300  # every event once, in delivery order


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that no authority signed, and its key."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "platform.pem", tmp_path / "platform.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_an_https_platform_is_verified_and_a_plain_http_one_loads_no_certificates(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Over HTTPS the pull verifies the platform's certificate (httpx's context, its CA bundle
    or SSL_CERT_FILE); over plain HTTP it loads no bundle at all (20-40 ms of the pull that a
    delta's first load waits for), and its bare context would refuse every certificate."""
    import ssl

    from vigie.sources.bodycam_api import _ssl_context

    bare = _ssl_context("http://127.0.0.1:1")
    assert bare.cert_store_stats()["x509_ca"] == 0 and bare.verify_mode == ssl.CERT_REQUIRED and bare.check_hostname
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    verifying = _ssl_context("HTTPS://platform.example")
    assert verifying.cert_store_stats()["x509_ca"] > 0 and verifying.verify_mode == ssl.CERT_REQUIRED

    cert, key = _self_signed(tmp_path)
    events = _events(tmp_path / "e.jsonl", 30)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    with BodycamServer(events, token=TOKEN, tls=tls) as server:
        url = server.url
        assert url.startswith("https://")
        # A certificate no authority of the bundle signed: refused, and the pull says so.
        with pytest.raises(SourceError, match="unreachable.*CERTIFICATE_VERIFY_FAILED"):
            _bodycam(url, max_retries=0).pull(None, tmp_path / "refused")
        # The platform's authority trusted (SSL_CERT_FILE, as httpx reads it): every event lands.
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        pull = _bodycam(url).pull(None, tmp_path / "landed")
    assert _landed(pull) == list(range(1, 31))
