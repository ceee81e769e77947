"""The `vigie` command line: exit codes and one-line errors (interface.md)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import vigie


def test_configuration_errors_exit_2_naming_the_key(estate: Path) -> None:
    config = estate / "vigie.yml"
    config.write_text(config.read_text().replace("path: drones", "path: no-such-folder"))
    run = vigie("run", "--config", str(config))
    assert run.returncode == 2
    assert "drones-69" in run.stderr and "path" in run.stderr
    assert not (estate / "var").exists()  # nothing pulled


def test_unknown_source_and_naive_as_of_are_usage_errors(estate: Path) -> None:
    config = str(estate / "vigie.yml")
    run = vigie("run", "--config", config, "--source", "nope")
    assert run.returncode == 2 and "nope" in run.stderr
    run = vigie("run", "--config", config, "--as-of", "2026-04-20T12:00:00")
    assert run.returncode == 2 and "offset" in run.stderr


def test_an_unreachable_source_fails_the_run_but_not_the_others(estate: Path) -> None:
    config = estate / "vigie.yml"
    text = config.read_text().replace("http://127.0.0.1:PORT", "http://127.0.0.1:9")
    config.write_text(text.replace("token_env: BODYCAM_TOKEN", "token_env: BODYCAM_TOKEN\n    max_retries: 1"))
    run = vigie("run", "--config", str(config), "--no-gx", env={"BODYCAM_TOKEN": "x"})
    assert run.returncode == 1
    assert "bodycams" in run.stderr and "unreachable" in run.stderr
    out = vigie("quarantine", "--config", str(config), "--format", "json", check=True).stdout
    assert '"lapi-a7"' in out and '"vms-lyon"' in out  # the others were loaded


def test_quarantine_before_any_run_says_so(estate: Path) -> None:
    run = vigie("quarantine", "--config", str(estate / "vigie.yml"))
    assert run.returncode == 1 and "vigie run" in run.stderr


def test_simulate_writes_and_advances_an_estate(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    run = vigie("simulate", "estate", str(out), "--events", "3000", "--phases", "2", check=True)
    assert "phase 1 of 2" in run.stdout
    assert (out / "vigie.yml").exists() and (out / "vms.sqlite").exists()
    first = sorted(p.name for p in (out / "lapi").iterdir())
    assert "phase 2 of 2" in vigie("simulate", "advance", str(out), check=True).stdout
    assert set(first) < {p.name for p in (out / "lapi").iterdir()}
    assert vigie("simulate", "advance", str(out)).returncode == 2  # nothing left
