"""The `vigie` command line: exit codes and one-line errors (interface.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import copy_samples, vigie, with_closed_port


@pytest.fixture
def estate(tmp_path: Path) -> Path:
    """The sample estate, its placeholder port filled in (a closed one: nothing is pulled from it)."""
    return with_closed_port(copy_samples(tmp_path))


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


@pytest.mark.parametrize("args", [("run", "--bogus"), ("sources", "--format", "xml"), ("run", "--wait", "soon"),
                                  ("quarantine", "extra-argument"), ("nope",)])
def test_a_usage_error_is_one_line_when_stderr_is_not_a_terminal(estate: Path, args: tuple) -> None:
    """Issue #13: messages stay on one line in a log (Typer drew a box over several lines)."""
    run = vigie(*args[:1], "--config", str(estate / "vigie.yml"), *args[1:]) if args[0] != "nope" else vigie(*args)
    assert run.returncode == 2
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert run.stderr.startswith("usage error: ") and "Traceback" not in run.stderr
    assert vigie("sources", "--help").returncode == 0  # and help is still help


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


def _register_error(estate: Path, edit) -> tuple[int, str, str]:  # noqa: ANN001
    import json

    path = estate / "authorisations.json"
    entries = json.loads(path.read_text())
    ref = edit(entries)
    path.write_text(json.dumps(entries))
    run = vigie("run", "--config", str(estate / "vigie.yml"), "--source", "lapi-a7")
    return run.returncode, run.stderr, ref


def test_a_duplicate_register_reference_exits_2_naming_it(estate: Path) -> None:
    def duplicate(entries: list) -> str:
        entries.append(dict(entries[0]) | {"holder": "someone else"})
        return entries[0]["authorisation_ref"]
    code, err, ref = _register_error(estate, duplicate)
    assert code == 2 and ref in err and "authorisation_ref" in err
    assert not (estate / "var" / "warehouse.duckdb").exists()  # nothing loaded


def test_a_reversed_validity_exits_2_naming_the_reference(estate: Path) -> None:
    def reverse(entries: list) -> str:
        e = entries[-1]
        e["valid_from"], e["valid_to"] = "2026-03-02T00:00:00+01:00", "2026-03-01T23:59:59+01:00"
        return e["authorisation_ref"]
    code, err, ref = _register_error(estate, reverse)
    assert code == 2 and ref in err and "valid_to" in err
    # The same instant on both ends is a valid (closed) interval.
    def instant(entries: list) -> str:
        entries[-1]["valid_from"] = entries[-1]["valid_to"] = "2026-03-01T00:00:00+01:00"
        return entries[-1]["authorisation_ref"]
    code, err, _ = _register_error(estate, instant)
    assert code == 0, err


_SQUARE = [[4.8, 45.7], [4.9, 45.7], [4.9, 45.8], [4.8, 45.7]]


@pytest.mark.parametrize("perimeter", [
    "a polygon", {"type": "Point", "coordinates": [4.8, 45.7]}, {"type": "Polygon"},
    {"type": "Polygon", "coordinates": []}, {"type": "Polygon", "coordinates": [_SQUARE[:3]]},
    {"type": "Polygon", "coordinates": [_SQUARE, "ring"]}, {"type": "Polygon", "coordinates": [[*_SQUARE[:3], [4.8]]]},
    {"type": "Polygon", "coordinates": [[*_SQUARE[:3], [4.8, "45.7"]]]}, {"type": "Polygon", "coordinates": [[*_SQUARE[:3], "4.8"]]},
])
def test_a_perimeter_that_is_not_a_polygon_of_points_is_refused_naming_the_entry(tmp_path: Path, perimeter) -> None:  # noqa: ANN001
    import json

    from vigie.config import ConfigError
    from vigie.register import read_register

    entry = {"authorisation_ref": "AP-DRONE-1", "device_class": "DRONE", "valid_from": "2026-01-01T00:00:00+01:00",
             "valid_to": "2026-12-31T00:00:00+01:00", "purposes": ["DR_ORDER"]}
    path = tmp_path / "authorisations.json"
    path.write_text(json.dumps([entry | {"perimeter": {"type": "Polygon", "coordinates": [_SQUARE, _SQUARE[::-1]]}}]))
    assert json.loads(read_register(path)[0]["perimeter"])["coordinates"][1] == _SQUARE[::-1]  # holes kept
    path.write_text(json.dumps([entry, entry | {"authorisation_ref": "AP-DRONE-2", "perimeter": perimeter}]))
    with pytest.raises(ConfigError, match=r"entry 2 \(AP-DRONE-2\): key 'perimeter': not a GeoJSON Polygon"):
        read_register(path)


def test_a_bad_port_is_a_configuration_error_on_one_line_before_anything_is_pulled(estate: Path) -> None:
    """Issue #13: it used to pass validation and fail mid-run with a traceback."""
    config = estate / "vigie.yml"
    config.write_text(config.read_text().replace("http://127.0.0.1:9", "http://127.0.0.1:abc"))
    run = vigie("run", "--config", str(config), "--no-gx", env={"BODYCAM_TOKEN": "x"})
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr  # one line, however long, when stderr is not a terminal
    assert "source 'bodycams' (bodycam_api): key 'base_url'" in lines[0] and "port" in lines[0]
    assert "Traceback" not in run.stderr
    assert not (estate / "var").exists()  # nothing pulled, no batch left 'pulling'


def test_a_bad_compaction_period_is_a_configuration_error_on_one_line(estate: Path) -> None:
    """VIGIE_COMPACT_AFTER was read at import: a bad value stopped every command with a traceback."""
    run = vigie("run", "--config", str(estate / "vigie.yml"), "--no-gx",
                env={"BODYCAM_TOKEN": "x", "VIGIE_COMPACT_AFTER": "eight"})
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "VIGIE_COMPACT_AFTER" in lines[0] and "'eight'" in lines[0], run.stderr
    assert "Traceback" not in run.stderr
    assert not (estate / "var" / "warehouse.duckdb.writer").exists()


@pytest.mark.parametrize(("variable", "value"), [("VIGIE_DUCKDB_MEMORY_LIMIT", "lots"),
                                                 ("VIGIE_DUCKDB_EVALUATION_MEMORY_LIMIT", "1.2 gigs"),
                                                 ("VIGIE_SCRATCH_MEMORY_LIMIT", "512")])
def test_a_bad_memory_cap_is_a_configuration_error_on_one_line(estate: Path, variable: str, value: str) -> None:
    """The caps were handed to DuckDB unchecked: `lots` stopped a run with a parser traceback
    once the writer held the lock, and every reading command the same way."""
    env = {"BODYCAM_TOKEN": "x", variable: value}
    for args in (["run", "--no-gx"], ["findings"], ["verify"]):
        proc = vigie(*args, "--config", str(estate / "vigie.yml"), env=env)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2, (args, proc.stderr)
        assert len(lines) == 1 and variable in lines[0] and repr(value) in lines[0], (args, proc.stderr)
        assert "Traceback" not in proc.stderr
    assert not (estate / "var").exists()  # refused before the warehouse, or anything, was opened
