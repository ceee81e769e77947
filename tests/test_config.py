"""vigie.yml loading: every rule of interface.md's "Configuration" and of vigie/config.py."""
import shutil
import sqlite3
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
import yaml

from vigie.config import (
    BodycamApiSource, ConfigError, DroneFilesSource, LapiFilesSource, Settings, VmsSqlSource,
    find_config, load_settings, parse_instant,
)

SAMPLES = Path("/work/shared/samples")


@pytest.fixture
def deploy(tmp_path, monkeypatch):
    """A deployment folder holding everything the base config points at; cwd is elsewhere."""
    root = tmp_path / "deploy"
    (root / "drones").mkdir(parents=True)
    (root / "lapi").mkdir()
    (root / "authorisations.json").write_text("[]")
    sqlite3.connect(root / "vms.sqlite").close()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # proves paths resolve against the file, not the cwd
    return root


def base() -> dict:
    return {
        "warehouse": "var/warehouse.duckdb",
        "register": "authorisations.json",
        "sources": [
            {"name": "vms-lyon", "kind": "vms_sql", "url": "sqlite:///vms.sqlite"},
            {"name": "bodycams", "kind": "bodycam_api", "base_url": "http://127.0.0.1:8765",
             "token_env": "BODYCAM_TOKEN"},
            {"name": "drones-69", "kind": "drone_files", "path": "drones"},
            {"name": "lapi-a7", "kind": "lapi_files", "path": "lapi", "holder": "DDSP 69"},
        ],
    }


def write(folder: Path, cfg, name: str = "vigie.yml") -> Path:
    path = folder / name
    path.write_text(cfg if isinstance(cfg, str) else yaml.safe_dump(cfg, sort_keys=False))
    return path


def load(folder: Path, cfg) -> Settings:
    return load_settings(write(folder, cfg), env={})


def error(folder: Path, cfg) -> str:
    path = write(folder, cfg)
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    message = str(info.value)
    assert "\n" not in message, "a configuration error is one line"
    assert message.startswith(f"{path}: ")
    return message


def with_source(index: int, **changes) -> dict:
    cfg = base()
    src = cfg["sources"][index]
    for k, v in changes.items():
        if v is None:
            src.pop(k, None)
        else:
            src[k] = v
    return cfg


# --- the sample and the happy path ---------------------------------------------------------

def test_loads_a_copy_of_the_sample(tmp_path):
    estate = tmp_path / "samples"
    shutil.copytree(SAMPLES, estate)
    config = estate / "vigie.yml"
    # The sample's port is a placeholder, refused until it is filled in (issue #13).
    with pytest.raises(ConfigError, match=r"source 'bodycams' \(bodycam_api\): key 'base_url': .*port"):
        load_settings(config, env={})
    config.write_text(config.read_text().replace("127.0.0.1:PORT", "127.0.0.1:8080"))
    s = load_settings(config, env={})

    assert s.config_path == (estate / "vigie.yml").resolve()
    assert s.base_dir == estate.resolve()
    assert s.warehouse == estate.resolve() / "var" / "warehouse.duckdb"
    assert not (estate / "var").exists(), "the warehouse folder is created later, not here"
    assert s.register == estate.resolve() / "authorisations.json"
    assert (s.timezone, s.grace_hours, s.perimeter_tolerance_m) == ("Europe/Paris", 24, 50)
    assert [(x.name, x.kind) for x in s.sources] == [
        ("vms-lyon", "vms_sql"), ("bodycams", "bodycam_api"),
        ("drones-69", "drone_files"), ("lapi-a7", "lapi_files")]
    vms, cams, drones, lapi = s.sources
    assert isinstance(vms, VmsSqlSource)
    assert vms.url == f"sqlite:///{estate.resolve() / 'vms.sqlite'}"
    assert vms.url.startswith("sqlite:////")
    assert isinstance(cams, BodycamApiSource)
    assert cams.base_url == "http://127.0.0.1:8080" and cams.token_env == "BODYCAM_TOKEN"
    assert isinstance(drones, DroneFilesSource) and drones.path == estate.resolve() / "drones"
    assert isinstance(lapi, LapiFilesSource) and lapi.path == estate.resolve() / "lapi"
    assert s.alerts is None
    assert str(s.zone) == "Europe/Paris"


def test_defaults_and_overrides(deploy):
    s = load(deploy, base())
    vms, cams = s.sources[0], s.sources[1]
    assert (vms.lookback_minutes, vms.chunk_rows, vms.conn_id) == (1440, 50_000, None)
    assert (cams.page_size, cams.timeout_s, cams.max_retries, cams.max_backoff_s) == (
        1000, 30, 5, 60)
    assert s.sources[3].holder == "DDSP 69" and s.sources[2].holder is None

    cfg = base() | {"timezone": "America/New_York", "grace_hours": 0,
                    "perimeter_tolerance_m": 12.5}
    cfg["sources"][1] |= {"page_size": 1, "timeout_s": 2.5, "max_retries": 0}
    s = load(deploy, cfg)
    assert (s.timezone, s.grace_hours, s.perimeter_tolerance_m) == ("America/New_York", 0, 12.5)
    assert (s.sources[1].page_size, s.sources[1].timeout_s, s.sources[1].max_retries) == (
        1, 2.5, 0)


def test_relative_and_absolute_paths(deploy, tmp_path):
    outside = tmp_path / "data" / "drones"
    outside.mkdir(parents=True)
    (deploy / "conf").mkdir()
    shutil.move(deploy / "authorisations.json", deploy / "conf" / "reg.json")
    cfg = base() | {"register": "conf/reg.json", "warehouse": str(tmp_path / "wh.duckdb")}
    cfg["sources"][2]["path"] = "../data/drones"
    cfg["sources"][3]["path"] = str(deploy / "lapi")
    s = load(deploy, cfg)
    assert s.register == deploy.resolve() / "conf" / "reg.json"
    assert s.warehouse == (tmp_path / "wh.duckdb").resolve()
    assert s.sources[2].path == outside.resolve()
    assert s.sources[3].path == (deploy / "lapi").resolve()


# --- SQL URLs ------------------------------------------------------------------------------

def test_sqlite_url_is_made_absolute_and_keeps_its_query(deploy):
    (deploy / "db").mkdir()
    sqlite3.connect(deploy / "db" / "v.sqlite").close()
    s = load(deploy, with_source(0, url="sqlite+pysqlite:///db/v.sqlite?timeout=5"))
    assert s.sources[0].url == f"sqlite+pysqlite:///{deploy.resolve()}/db/v.sqlite?timeout=5"
    # an absolute sqlite URL stays what it was
    absolute = f"sqlite:///{deploy.resolve()}/vms.sqlite"
    assert load(deploy, with_source(0, url=absolute)).sources[0].url == absolute


def test_missing_sqlite_file_is_an_error_not_a_new_database(deploy):
    msg = error(deploy, with_source(0, url="sqlite:///nope.sqlite"))
    assert msg.endswith(
        f"source 'vms-lyon' (vms_sql): key 'url': database file "
        f"{deploy.resolve() / 'nope.sqlite'} does not exist")
    assert not (deploy / "nope.sqlite").exists()


@pytest.mark.parametrize("url", ["sqlite:///:memory:", "sqlite://"])
def test_in_memory_sqlite_is_refused(deploy, url):
    msg = error(deploy, with_source(0, url=url))
    assert "source 'vms-lyon' (vms_sql): key 'url':" in msg and "in-memory" in msg


@pytest.mark.parametrize("url", ["postgresql+psycopg2://vigie:s3cret@db.example:5432/vms",
                                 "mysql+pymysql://u@h/vms"])
def test_other_urls_are_left_as_they_are(deploy, url):
    assert load(deploy, with_source(0, url=url)).sources[0].url == url


def test_unparsable_url_is_an_error_that_does_not_echo_it(deploy):
    msg = error(deploy, with_source(0, url="s3cret-not-a-url"))
    assert "source 'vms-lyon' (vms_sql): key 'url': not a valid SQLAlchemy URL" in msg
    assert "s3cret" not in msg


@pytest.mark.parametrize("url", [
    "sqlite:///vms.sqlite", "sqlite:////abs/dir/vms.sqlite?timeout=5", "sqlite+pysqlite:///a%20b/v.sqlite",
    "sqlite://", "sqlite:///:memory:", "postgresql+psycopg://vigie:p%40ss:w@db.example:5432/vms?sslmode=require",
    "mysql+pymysql://u@h/vms", "postgresql://[::1]:5433/vms", "postgresql://h:abc/vms", "postgresql://h/",
    "mariadb://h?x=1", "s3cret-not-a-url"])
def test_urls_are_read_as_sqlalchemy_reads_them(url):
    """vigie.dburl spares every command SQLAlchemy's import; it must read URLs as SQLAlchemy does."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from vigie import dburl

    try:
        theirs = make_url(url)
    except ArgumentError:
        with pytest.raises(dburl.InvalidUrl):
            dburl.parse(url)
        return
    except ValueError:  # a port that is not a number
        with pytest.raises(ValueError):
            dburl.parse(url).port_number()
        return
    ours = dburl.parse(url)
    assert (ours.backend, ours.port_number(), ours.database) == (theirs.get_backend_name(), theirs.port, theirs.database)
    assert make_url(ours.render()) == theirs
    moved = ours.with_database("/srv/vms data/v.sqlite")
    assert make_url(moved.render()) == theirs.set(database="/srv/vms data/v.sqlite")


def test_vms_needs_exactly_one_of_url_and_conn_id(deploy):
    s = load(deploy, with_source(0, url=None, conn_id="vms_lyon_db"))
    assert s.sources[0].conn_id == "vms_lyon_db" and s.sources[0].url is None
    for changes in ({"conn_id": "x"}, {"url": None}, {"url": ""}):
        msg = error(deploy, with_source(0, **changes))
        assert "source 'vms-lyon' (vms_sql): give exactly one of key 'url' or key 'conn_id'" in msg


# --- the body-camera API -------------------------------------------------------------------

def test_bodycam_conn_id_replaces_url_and_token(deploy):
    s = load(deploy, with_source(1, base_url=None, token_env=None, conn_id="bodycam_api"))
    assert s.sources[1].conn_id == "bodycam_api" and s.sources[1].base_url is None
    s = load(deploy, with_source(1, token_env=None, conn_id="bodycam_api"))
    assert s.sources[1].base_url == "http://127.0.0.1:8765"


@pytest.mark.parametrize("missing", ["base_url", "token_env"])
def test_bodycam_needs_base_url_and_token_or_conn_id(deploy, missing):
    msg = error(deploy, with_source(1, **{missing: None}))
    assert msg.endswith(f"source 'bodycams' (bodycam_api): key '{missing}' is missing "
                        "(or give key 'conn_id')")


@pytest.mark.parametrize("size", [0, 1001, -5])
def test_bodycam_page_size_is_1_to_1000(deploy, size):
    msg = error(deploy, with_source(1, page_size=size))
    assert f"source 'bodycams' (bodycam_api): key 'page_size': input should be" in msg
    assert f"(got {size})" in msg


def test_bodycam_rejects_a_non_http_url_and_a_secret_in_token_env(deploy):
    msg = error(deploy, with_source(1, base_url="ftp://x"))
    assert "key 'base_url': 'ftp://x' does not start with http:// or https://" in msg
    msg = error(deploy, with_source(1, token_env="eyJhbGciOi.J9-secret"))
    assert "key 'token_env': must be the name of an environment variable" in msg
    assert "secret" not in msg.replace("not the secret itself", "")


# --- folders and files ---------------------------------------------------------------------

def test_missing_source_folder_names_file_source_and_key(deploy):
    path = write(deploy, with_source(2, path="x/y"))
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert str(info.value) == (f"{path}: source 'drones-69' (drone_files): key 'path': "
                               f"folder {deploy.resolve() / 'x' / 'y'} does not exist")


def test_source_path_must_be_a_folder(deploy):
    (deploy / "reads.csv").write_text("")
    msg = error(deploy, with_source(3, path="reads.csv"))
    assert msg.endswith(f"source 'lapi-a7' (lapi_files): key 'path': "
                        f"{deploy.resolve() / 'reads.csv'} is not a folder")


@pytest.mark.parametrize("path", ["", None])
def test_source_path_is_required(deploy, path):
    cfg = with_source(2, path="drones")
    cfg["sources"][2]["path"] = path
    if path is None:
        del cfg["sources"][2]["path"]
    msg = error(deploy, cfg)
    assert "source 'drones-69' (drone_files): key 'path':" in msg


def test_register_must_be_an_existing_file(deploy):
    msg = error(deploy, base() | {"register": "missing.json"})
    assert msg.endswith(f"key 'register': file {deploy.resolve() / 'missing.json'} "
                        "does not exist")
    msg = error(deploy, base() | {"register": "drones"})
    assert msg.endswith(f"key 'register': {deploy.resolve() / 'drones'} is not a file")


def test_warehouse_may_not_exist_yet_but_may_not_be_a_folder(deploy):
    s = load(deploy, base() | {"warehouse": "deep/er/wh.duckdb"})
    assert s.warehouse == deploy.resolve() / "deep" / "er" / "wh.duckdb"
    assert not (deploy / "deep").exists()
    msg = error(deploy, base() | {"warehouse": "lapi"})
    assert msg.endswith(f"key 'warehouse': {deploy.resolve() / 'lapi'} is a folder, "
                        "not a DuckDB file")


# --- scalars -------------------------------------------------------------------------------

def test_timezone_must_be_an_iana_zone(deploy):
    path = write(deploy, base() | {"timezone": "Europe/Pariss"})
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert str(info.value) == (f"{path}: key 'timezone': 'Europe/Pariss' is not a time zone "
                               "(IANA name, e.g. Europe/Paris)")
    for bad in ("Europe", "/etc/passwd", ""):
        assert "key 'timezone':" in error(deploy, base() | {"timezone": bad})


@pytest.mark.parametrize("key", ["grace_hours", "perimeter_tolerance_m"])
def test_non_negative_numbers(deploy, key):
    msg = error(deploy, base() | {key: -1})
    assert f"key '{key}': input should be greater than or equal to 0 (got -1)" in msg
    assert f"key '{key}':" in error(deploy, base() | {key: "lots"})


# --- names, kinds, keys --------------------------------------------------------------------

def test_source_names_are_unique(deploy):
    cfg = base()
    cfg["sources"][3]["name"] = "drones-69"
    msg = error(deploy, cfg)
    assert msg.endswith("source 'drones-69' (lapi_files): key 'name': "
                        "another source already has this name")


@pytest.mark.parametrize("name", ["", "-lead", "has space", "é", "a/b"])
def test_source_names_are_plain(deploy, name):
    msg = error(deploy, with_source(2, name=name))
    label = f"source '{name}'" if name else "source #3"
    assert f"{label} (drone_files): key 'name': {name!r} is not a valid source name" in msg


def test_plain_names_with_dots_and_underscores_pass(deploy):
    s = load(deploy, with_source(2, name="Drones_69.v2"))
    assert s.sources[2].name == "Drones_69.v2"


def test_unknown_kind_lists_the_known_kinds(deploy):
    msg = error(deploy, with_source(2, kind="drone_file"))
    assert msg.endswith("source 'drones-69': key 'kind': unknown kind 'drone_file' "
                        "(known kinds: vms_sql, bodycam_api, drone_files, lapi_files)")
    msg = error(deploy, with_source(2, kind=None))
    assert msg.endswith("source 'drones-69': key 'kind': required key is missing "
                        "(known kinds: vms_sql, bodycam_api, drone_files, lapi_files)")


def test_unknown_keys_in_a_source_are_named(deploy):
    msg = error(deploy, with_source(2, pth="drones"))
    assert msg.endswith("source 'drones-69' (drone_files): key 'pth': unknown key")
    msg = error(deploy, with_source(0, lookback="5", chunk=1))
    assert msg.endswith("source 'vms-lyon' (vms_sql): unknown keys 'lookback', 'chunk'")
    # a key valid for another kind is still unknown here
    assert "key 'token_env': unknown key" in error(deploy, with_source(2, token_env="T"))


def test_unknown_and_reserved_top_level_keys(deploy):
    assert error(deploy, base() | {"grace_hour": 2}).endswith("key 'grace_hour': unknown key")
    assert error(deploy, base() | {"base_dir": "/"}).endswith("key 'base_dir': unknown key")


@pytest.mark.parametrize("key", ["warehouse", "register", "sources"])
def test_required_top_level_keys(deploy, key):
    cfg = base()
    del cfg[key]
    assert error(deploy, cfg).endswith(f"key '{key}': required key is missing")


def test_source_without_name_is_named_by_position(deploy):
    msg = error(deploy, with_source(1, name=None))
    assert msg.endswith("source #2 (bodycam_api): key 'name': required key is missing")
    cfg = base()
    cfg["sources"][1] = "bodycams"
    assert error(deploy, cfg).endswith("source #2: expected a mapping of keys")


def test_empty_holder_counts_as_missing(deploy):
    assert load(deploy, with_source(3, holder="")).sources[3].holder is None


# --- YAML itself ---------------------------------------------------------------------------

def test_invalid_yaml_reports_the_line(deploy):
    text = "warehouse: w.duckdb\nregister: authorisations.json\nsources: [\n  {name: a\n"
    msg = error(deploy, text)
    assert "not valid YAML" in msg and "line " in msg
    msg = error(deploy, "warehouse: w.duckdb\n  register: x\n")
    assert ": line 2: not valid YAML" in msg


def test_a_key_given_twice_is_an_error(deploy):
    text = yaml.safe_dump(base(), sort_keys=False) + "warehouse: other.duckdb\n"
    msg = error(deploy, text)
    assert "not valid YAML: key 'warehouse' is given twice" in msg
    assert f": line {text.count(chr(10))}: " in msg


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just text\n"])
def test_top_level_must_be_a_mapping(deploy, text):
    assert error(deploy, text).endswith("expected a mapping of keys (warehouse, register, "
                                        "sources...)")


# --- alerts --------------------------------------------------------------------------------

ALERTS = """
alerts:
  since: 2026-01-01
  escalate_after_days: 7
  smtp: {host: 127.0.0.1, port: 25, sender: vigie@control.example,
         starttls: false, user_env: SMTP_USER, password_env: SMTP_PASSWORD}
  webhook: {url: https://hooks.example/vigie, secret_env: VIGIE_WEBHOOK_SECRET}
  control_body: {email: [controle@control.example], webhook: true}
  holders:
    "DDSP 69": {email: [permanence@ddsp69.example]}
"""


def test_alerts_block_of_the_interface(deploy):
    s = load(deploy, yaml.safe_dump(base()) + ALERTS)
    a = s.alerts
    assert a.since == date(2026, 1, 1) and a.escalate_after_days == 7
    assert (a.smtp.host, a.smtp.port, a.smtp.starttls, a.smtp.password_env) == (
        "127.0.0.1", 25, False, "SMTP_PASSWORD")
    assert a.webhook.url == "https://hooks.example/vigie"
    assert a.control_body.email == ["controle@control.example"] and a.control_body.webhook
    assert a.holders["DDSP 69"].email == ["permanence@ddsp69.example"]
    assert a.holders["DDSP 69"].webhook is False


def test_alerts_are_optional_and_checked(deploy):
    s = load(deploy, base() | {"alerts": {"since": "2026-02-01"}})
    assert s.alerts.since == date(2026, 2, 1) and s.alerts.holders == {}
    msg = error(deploy, base() | {"alerts": {"control_body": {"email": ["a@b.example"]}}})
    assert msg.endswith("key 'alerts': e-mail recipients are listed but there is no 'smtp' block")
    msg = error(deploy, base() | {"alerts": {"holders": {"X": {"webhook": True}}}})
    assert msg.endswith("key 'alerts': webhook: true is set but there is no 'webhook' block")
    msg = error(deploy, base() | {"alerts": {"smtp": {"host": "h", "sender": "s@x", "tls": 1}}})
    assert msg.endswith("key 'alerts.smtp.tls': unknown key")
    msg = error(deploy, base() | {"alerts": {"since": "yesterday"}})
    assert "key 'alerts.since':" in msg


# --- finding the file ----------------------------------------------------------------------

def test_find_config_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("explicit.yml", "env.yml", "vigie.yml"):
        (tmp_path / name).write_text("")
    env = {"VIGIE_CONFIG": str(tmp_path / "env.yml")}
    assert find_config("explicit.yml", env) == Path("explicit.yml")
    assert find_config(None, env) == tmp_path / "env.yml"
    assert find_config(None, {}) == Path("vigie.yml")
    assert find_config(None, {"VIGIE_CONFIG": ""}) == Path("vigie.yml")


def test_find_config_missing_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"^vigie.yml: configuration file not found "
                                          r"\(from the default ./vigie.yml\)$"):
        find_config(None, {})
    (tmp_path / "vigie.yml").write_text("")
    with pytest.raises(ConfigError, match=r"nope.yml: configuration file not found "
                                          r"\(from --config\)"):
        find_config("nope.yml", {})  # an explicit file never falls back
    with pytest.raises(ConfigError, match=r"from VIGIE_CONFIG"):
        find_config(None, {"VIGIE_CONFIG": str(tmp_path / "gone.yml")})
    with pytest.raises(ConfigError, match="is a folder"):
        find_config(tmp_path, {})


def test_load_settings_uses_vigie_config(deploy):
    path = write(deploy, base(), name="prod.yml")
    s = load_settings(env={"VIGIE_CONFIG": str(path)})
    assert s.config_path == path.resolve() and len(s.sources) == 4


# --- choosing sources ----------------------------------------------------------------------

def test_source_and_select(deploy):
    s = load(deploy, base())
    assert s.source("lapi-a7").kind == "lapi_files"
    assert s.select([]) == s.sources
    assert [x.name for x in s.select(["lapi-a7", "vms-lyon"])] == ["vms-lyon", "lapi-a7"]
    with pytest.raises(ConfigError, match=r"unknown source 'lapi' \(configured: vms-lyon, "
                                          r"bodycams, drones-69, lapi-a7\)"):
        s.source("lapi")
    with pytest.raises(ConfigError) as info:
        s.select(["vms-lyon", "x", "y"])
    assert str(info.value).startswith(f"{deploy / 'vigie.yml'}: unknown source 'x', 'y'")


# --- instants on the command line ----------------------------------------------------------

def test_parse_instant_with_offset_or_z():
    utc = timezone.utc
    assert parse_instant("2026-03-01T10:04:05Z", "Europe/Paris") == datetime(
        2026, 3, 1, 10, 4, 5, tzinfo=utc)
    at = parse_instant("2026-03-01T10:04:05.120+01:00", "Europe/Paris")
    assert at == datetime(2026, 3, 1, 9, 4, 5, 120000, tzinfo=utc)
    assert at.utcoffset().total_seconds() == 0


def test_parse_instant_date_is_local_midnight():
    assert parse_instant("2026-01-15", "Europe/Paris") == datetime(
        2026, 1, 14, 23, tzinfo=timezone.utc)
    assert parse_instant("2026-07-15", "Europe/Paris") == datetime(
        2026, 7, 14, 22, tzinfo=timezone.utc)
    assert parse_instant("2026-07-15", "UTC") == datetime(2026, 7, 15, tzinfo=timezone.utc)


@pytest.mark.parametrize("text", ["2026-03-01T10:00:00", "2026-03-01 10:00"])
def test_parse_instant_refuses_naive(text):
    with pytest.raises(ValueError, match="has no UTC offset"):
        parse_instant(text, "Europe/Paris")


@pytest.mark.parametrize("text", ["", "now", "2026-13-01", "2026-02-30", "01/03/2026"])
def test_parse_instant_refuses_garbage(text):
    with pytest.raises(ValueError):
        parse_instant(text, "Europe/Paris")


# --- built in Python, without a file -------------------------------------------------------

def test_settings_built_directly_resolve_against_base_dir(deploy):
    s = Settings(config_path=deploy / "none.yml", base_dir=deploy, warehouse=Path("w.duckdb"),
                 register=Path("authorisations.json"),
                 sources=[{"name": "d", "kind": "drone_files", "path": "drones"}])
    assert s.sources[0].path == deploy.resolve() / "drones"
    assert s.register == deploy.resolve() / "authorisations.json"
    from pydantic import ValidationError
    with pytest.raises(ValidationError, match="register"):  # required, with no default
        Settings(config_path=deploy / "none.yml", base_dir=deploy, warehouse=Path("w"),
                 sources=[])


def test_alerts_extensions_of_issue_10(deploy):
    s = load(deploy, yaml.safe_dump(base()) + ALERTS)
    assert s.alerts.quarantine_rate == 0.05 and s.alerts.lang == "fr" and s.alerts.view_url is None
    assert s.alerts.control_body.copy_immediate is False and s.alerts.operators is None
    cfg = base()
    cfg["sources"][0]["expected_every"] = "6h"
    cfg["alerts"] = {"quarantine_rate": 0.1, "view_url": "https://airflow.example/vigie/",
                     "smtp": {"conn_id": "smtp_default", "sender": "v@x.example"},
                     "webhook": {"url": "https://h.example/x", "conn_id": "vigie_webhook"},
                     "operators": {"email": "ops@x.example"},
                     "control_body": {"email": ["c@x.example"], "copy_immediate": True}}
    s = load(deploy, cfg)
    assert s.sources[0].expected_every.total_seconds() == 6 * 3600
    assert s.alerts.view_url == "https://airflow.example/vigie" and s.alerts.operators.email == ["ops@x.example"]
    assert s.alerts.control_body.copy_immediate
    for every, text in (("6 hours", "is not a duration"), ("0h", "longer than zero")):
        cfg["sources"][0]["expected_every"] = every
        msg = error(deploy, cfg)
        assert "key 'expected_every'" in msg and text in msg and "\n" not in msg
    cfg["sources"][0]["expected_every"] = "30m"
    cfg["alerts"]["quarantine_rate"] = 5
    assert "key 'alerts.quarantine_rate'" in error(deploy, cfg)
    cfg["alerts"]["quarantine_rate"] = 0.05
    cfg["alerts"]["webhook"] = {"url": "https://h.example/x"}
    assert error(deploy, cfg).endswith("key 'alerts.webhook': give exactly one of key 'secret_env' or key "
                                       "'conn_id' (the signing secret)")
    cfg["alerts"]["webhook"] = {"url": "https://h.example/x", "secret_env": "s3cr3t-value!"}
    msg = error(deploy, cfg)
    assert "alerts.webhook.secret_env" in msg and "s3cr3t-value!" not in msg


# --- checked up front (issue #13): every URL, port and path, and the warehouse location -----

@pytest.mark.parametrize("url", ["http://127.0.0.1:abc", "http://127.0.0.1:", "http://127.0.0.1:0",
                                 "http://127.0.0.1:70000", "http://:8080/api"])
def test_bodycam_url_needs_a_host_and_a_real_port(deploy, url):
    msg = error(deploy, with_source(1, base_url=url))
    assert "source 'bodycams' (bodycam_api): key 'base_url'" in msg
    assert "port" in msg or "host" in msg


@pytest.mark.parametrize("url", ["http://api:s3cr3t-pw@127.0.0.1:abc", "http://api:s3cr3t-pw@:8080/x",
                                 "ftp://api:s3cr3t-pw@host/x"])
def test_a_bodycam_url_is_quoted_without_its_password(deploy, url):
    msg = error(deploy, with_source(1, base_url=url))
    assert "key 'base_url'" in msg and "s3cr3t-pw" not in msg and "api:***@" in msg


@pytest.mark.parametrize("url", ["postgresql://u:pw@127.0.0.1:abc/db", "mysql+pymysql://root:pw@127.0.0.1:0/x"])
def test_vms_url_port_is_checked_without_echoing_the_url(deploy, url):
    msg = error(deploy, with_source(0, url=url))
    assert "source 'vms-lyon' (vms_sql): key 'url'" in msg and "port" in msg
    assert "pw" not in msg


def test_alert_urls_are_checked(deploy):
    cfg = base() | {"alerts": {"view_url": "http://127.0.0.1:port/vigie"}}
    assert "key 'alerts.view_url'" in error(deploy, cfg)
    cfg = base() | {"alerts": {"webhook": {"url": "https://hooks.example:x/t0k3n", "secret_env": "S"}}}
    msg = error(deploy, cfg)
    assert "key 'alerts.webhook.url'" in msg and "port" in msg and "t0k3n" not in msg


def test_a_warehouse_folder_that_cannot_be_created_is_a_configuration_error(deploy):
    (deploy / "a-file").write_text("")
    msg = error(deploy, base() | {"warehouse": "a-file/sub/warehouse.duckdb"})
    assert "key 'warehouse'" in msg and "cannot be created" in msg
    (deploy / "var").mkdir()
    (deploy / "var" / "landing").write_text("")  # where the landing folder must go
    msg = error(deploy, base())
    assert "key 'warehouse'" in msg and "landing" in msg


def test_drop_folders_on_object_storage(deploy):
    cfg = with_source(3, path="s3://drops-69/lapi/", endpoint_url="http://127.0.0.1:9000",
                      access_key_env="DROPS_KEY", secret_key_env="DROPS_SECRET", region="eu-west-3")
    s = load(deploy, cfg)
    lapi = s.sources[3]
    assert lapi.path == "s3://drops-69/lapi/" and lapi.endpoint_url == "http://127.0.0.1:9000"
    assert s.sources[2].settle_seconds == 2  # the stability rule's default, local folders
    assert "key 'endpoint_url'" in error(deploy, with_source(3, path="s3://drops-69/lapi", endpoint_url="http://h:x"))
    assert "key 'path'" in error(deploy, with_source(3, path="ftp://drops/lapi"))
    assert "key 'path'" in error(deploy, with_source(3, path="s3:///lapi"))
    msg = error(deploy, with_source(3, endpoint_url="http://127.0.0.1:9000"))  # a local folder
    assert "key 'endpoint_url' is only for a path on object storage" in msg
    msg = error(deploy, with_source(3, path="s3://drops-69/lapi", access_key_env="K"))
    assert "secret_key_env" in msg
    assert "name of an environment variable" in error(deploy, with_source(3, path="s3://drops-69/l", access_key_env="AKIA/xyz",
                                                                          secret_key_env="S"))
