"""A full disk under the warehouse: `vigie run` fails on one line naming it (it stopped with a
DuckDB or OSError traceback), leaves no half copy behind, and once space is freed the next
run loads what the failed one did not commit: the sample's findings and quarantine, exactly.

The disk is a small tmpfs mounted for the test (root: `make test` runs as root here)."""

from __future__ import annotations

import csv
import io
import subprocess
from pathlib import Path

import pytest

from tests.conftest import copy_samples, read_csv, vigie
from vigie.simulate.bodycam_server import BodycamServer

TOKEN = "sample-token"


@pytest.fixture
def small_disk(tmp_path: Path):
    """A tmpfs of its own, unmounted after the test; the test resizes it with `remount`."""
    mount = tmp_path / "disk"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {proc.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def _resize(mount: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(mount)], check=True)


def _triples(estate: Path) -> list[tuple]:
    out = vigie("findings", "--config", str(estate / "vigie.yml"), "--as-of", (estate / "as_of.txt").read_text().strip(),
                "--format", "csv", check=True).stdout
    return sorted((r["rule_code"], r["source"], r["subject_id"]) for r in csv.DictReader(io.StringIO(out)))


# 6 MB fills while DuckDB checkpoints the writer file (a FatalException); 16 MB while the
# published copy is written (an OSError). The sample's warehouse is about 9.4 MB.
@pytest.mark.parametrize(("size", "where"), [("6m", "Failed to create checkpoint"), ("16m", "[Errno 28]")])
def test_a_full_disk_fails_on_one_line_and_the_next_run_loads_everything(small_disk: Path, size: str, where: str) -> None:
    estate = copy_samples(small_disk)
    as_of = (estate / "as_of.txt").read_text().strip()
    with BodycamServer(estate / "bodycam_events.json", token=TOKEN) as server:
        config = estate / "vigie.yml"
        config.write_text(config.read_text().replace("http://127.0.0.1:PORT", server.url))
        _resize(small_disk, size)
        run = vigie("run", "--config", str(config), "--as-of", as_of, env={"BODYCAM_TOKEN": TOKEN})
        assert run.returncode == 1, run.stderr[-3000:]
        assert "Traceback" not in run.stderr and "╭" not in run.stderr, run.stderr[-3000:]
        failed = [line for line in run.stderr.splitlines() if line.startswith("failed:")]
        assert len(failed) == 1 and "the disk is full" in failed[0] and str(estate / "var") in failed[0], run.stderr
        assert "No space left on device" in failed[0] and where in failed[0]  # the checkpoint, or the publish's copy
        # No publish's half copy left to hold the space.
        assert not [p.name for p in (estate / "var").iterdir() if p.name.endswith(".tmp")]

        _resize(small_disk, "64m")
        vigie("run", "--config", str(config), "--as-of", as_of, env={"BODYCAM_TOKEN": TOKEN}, check=True)
    expected = sorted((r["rule_code"], r["source"], r["subject_id"]) for r in read_csv(estate / "expected_findings.csv"))
    assert _triples(estate) == expected
    out = vigie("quarantine", "--config", str(estate / "vigie.yml"), "--format", "csv", check=True).stdout
    assert sorted((r["source"], r["location"]) for r in csv.DictReader(io.StringIO(out))) == sorted(
        (r["source"], r["location"]) for r in read_csv(estate / "expected_quarantine.csv"))
    verify = vigie("verify", "--config", str(estate / "vigie.yml"))
    assert verify.returncode == 0, verify.stdout[-3000:] + verify.stderr[-3000:]
