"""vigie.yml -> typed, validated settings (interface.md, "Configuration").

Everything that can be checked before pulling is checked here, so that a bad deployment
fails once, with one line naming the file, the source and the key, and never half-way
through a run.
"""
from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit
from typing import Annotated, Any, Literal, Union
from zoneinfo import ZoneInfo

import yaml
from pydantic import (
    BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, ValidationError,
    ValidationInfo, field_validator, model_validator,
)

from vigie import dburl

__all__ = [
    "ConfigError", "VmsSqlSource", "BodycamApiSource", "DroneFilesSource", "LapiFilesSource",
    "Source", "KINDS", "SmtpSettings", "WebhookSettings", "Recipients", "ControlBody", "AlertsSettings",
    "parse_duration", "IntegritySettings",
    "Settings", "find_config", "load_settings", "parse_instant",
]


class ConfigError(Exception):
    """One clear message naming the file, the source (when there is one) and the key."""


def whole_number_env(name: str, default: int, unit: str, hint: str = "") -> int:
    """The environment variable ``name`` as a whole number of 1 or more (``default`` when it is
    unset); anything else is a configuration error naming it, not int()'s bare message."""
    text = os.environ.get(name, str(default))
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise ConfigError(f"environment variable {name}: {text!r} is not a whole number of {unit} (1 or more{hint})")
    return n


def _line(file: str, text: str, source: str | None = None, key: str | None = None) -> str:
    where = [file] + ([source] if source else []) + ([f"key '{key}'"] if key else [])
    return ": ".join(where + [text])


# --- reusable field types -------------------------------------------------------------------

def _blank_to_none(v: Any) -> Any:
    # domain.md: an empty string counts as missing.
    return None if isinstance(v, str) and not v.strip() else v


def _non_empty(v: Any) -> Any:
    # Path("") would silently mean "the config folder".
    if v is None or (isinstance(v, str) and not v.strip()):
        raise ValueError("must not be empty")
    return v


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _env_name(v: Any) -> Any:
    # Catches a secret pasted where its variable's name belongs; the value is not echoed.
    if isinstance(v, str) and not _ENV_NAME.match(v):
        raise ValueError("must be the name of an environment variable (letters, digits, _), "
                         "not the secret itself")
    return v


def _port_and_host(v: str, echo: bool = True) -> str:
    """Raise ValueError unless ``v`` is an http(s) URL with a host and, if any, a valid port.
    ``echo``: the URL may be quoted in the message (not when it may carry a token)."""
    shown = f"{dburl.without_credentials(v)!r} " if echo else ""
    if not v.startswith(("http://", "https://")):
        raise ValueError(f"{shown}does not start with http:// or https://")
    parts = urlsplit(v)
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0 or (port is None and parts.netloc.endswith(":")):
        raise ValueError(f"{shown}has a port that is not a number from 1 to 65535")
    if not parts.hostname:
        raise ValueError(f"{shown}names no host")
    return v


def _drop_location(v: Any) -> Any:
    """A drop folder: a local path, or ``s3://bucket/prefix`` (kept as a string: a Path would
    fold the ``//``)."""
    v = _non_empty(v)
    if isinstance(v, str) and re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", v):
        if not v.startswith("s3://"):
            raise ValueError(f"{v.split('://')[0]}:// is not a supported drop location (a local folder or s3://bucket/prefix)")
        if not re.match(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/|$)", v):
            raise ValueError(f"{v!r} does not name a bucket (s3://bucket/prefix)")
        return v
    return Path(v) if isinstance(v, str) else v


OptStr = Annotated[str | None, BeforeValidator(_blank_to_none)]
EnvName = Annotated[str | None, BeforeValidator(_env_name), BeforeValidator(_blank_to_none)]
ReqPath = Annotated[Path, BeforeValidator(_non_empty)]
DropPath = Annotated[Union[Path, str], BeforeValidator(_drop_location)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


# --- sources --------------------------------------------------------------------------------

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(v: Any) -> timedelta | None:
    """``6h``, ``30m``, ``2d``, ``90s`` (or a number of seconds) → timedelta."""
    if v is None or isinstance(v, timedelta):
        return v
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        seconds = float(v)
    else:
        m = _DURATION.match(str(v))
        if not m:
            raise ValueError(f"{v!r} is not a duration (a number and a unit: 90s, 30m, 6h, 2d)")
        seconds = float(m.group(1)) * _UNIT_S[m.group(2)]
    if seconds <= 0:
        raise ValueError(f"{v!r} must be longer than zero")
    return timedelta(seconds=seconds)


Duration = Annotated[timedelta | None, BeforeValidator(parse_duration)]


class _SourceBase(_Strict):
    name: str
    holder: OptStr = None  # domain.md, "Holders": the fallback service answerable
    expected_every: Duration = None  # a feed silent for longer than this is alerted (issue #10)

    @field_validator("name")
    @classmethod
    def _check_name(cls, v: str) -> str:
        # Names end up in finding subjects (`<source>:n-n`) and file names: keep them plain.
        if not _NAME.match(v):
            raise ValueError(f"{v!r} is not a valid source name (letters, digits, '_', '.', '-',"
                             " starting with a letter or digit)")
        return v


class VmsSqlSource(_SourceBase):
    kind: Literal["vms_sql"]
    url: OptStr = None  # any SQLAlchemy URL; a relative sqlite path is made absolute
    conn_id: OptStr = None  # an Airflow connection, resolved by the puller
    # Recordings are re-pulled from (last updated_at seen - lookback): a lagging clock or a late
    # commit must not hide a change. A day costs little (unchanged rows are duplicates).
    lookback_minutes: int = Field(1440, ge=0)
    chunk_rows: int = Field(50_000, ge=1)

    @field_validator("url")
    @classmethod
    def _parse_url(cls, v: str | None) -> str | None:
        if v is not None:
            url = dburl.parse(v)  # InvalidUrl does not echo the URL: it may carry a password
            try:
                port = url.port_number()
            except ValueError:
                port = 0
            if port is not None and not 1 <= port <= 65535:
                raise ValueError("has a port that is not a number from 1 to 65535")
        return v

    @model_validator(mode="after")
    def _one_target(self) -> VmsSqlSource:
        if (self.url is None) == (self.conn_id is None):
            raise ValueError("give exactly one of key 'url' or key 'conn_id'")
        return self


class BodycamApiSource(_SourceBase):
    kind: Literal["bodycam_api"]
    base_url: OptStr = None
    token_env: EnvName = None
    conn_id: OptStr = None
    page_size: int = Field(1000, ge=1, le=1000)  # the platform serves at most 1000
    timeout_s: float = Field(30, gt=0)
    max_retries: int = Field(5, ge=0)
    max_backoff_s: float = Field(60, ge=0)
    # Bounds on a misbehaving server (issue #13): a page that trickles, a pull that never ends,
    # a page too large to land. Retry-After is honoured as the server says, within the pull's deadline.
    page_deadline_s: float = Field(120, gt=0)
    pull_deadline_s: float = Field(3600, gt=0)
    max_page_bytes: int = Field(64 << 20, ge=1024)

    @field_validator("base_url")
    @classmethod
    def _http(cls, v: str | None) -> str | None:
        if v is not None:
            _port_and_host(v)
            if "@" in urlsplit(v).netloc:  # httpx would send them as Basic auth, not the bearer token
                raise ValueError(f"{dburl.without_credentials(v)!r} carries credentials (user:password@): "
                                 "the API takes a bearer token, from token_env or conn_id")
        return v.rstrip("/") if v else v  # pullers append "/v1/..."

    @model_validator(mode="after")
    def _reachable(self) -> BodycamApiSource:
        if self.conn_id is None:
            missing = [k for k in ("base_url", "token_env") if getattr(self, k) is None]
            if missing:
                raise ValueError(f"key '{missing[0]}' is missing (or give key 'conn_id')")
        return self


class _FolderSource(_SourceBase):
    """A drop folder: local, or ``s3://bucket/prefix`` on S3-compatible storage (README, "Drop folders")."""

    path: DropPath
    # A new file must keep its size and mtime this long before it is read (local folders).
    settle_seconds: float = Field(2, ge=0, le=3600)
    endpoint_url: OptStr = None  # s3:// only: another S3-compatible service than AWS
    region: OptStr = None
    access_key_env: EnvName = None  # s3:// only: names of the variables holding the keys;
    secret_key_env: EnvName = None  # without them, the usual AWS variables and files apply

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, v: str | None) -> str | None:
        return _port_and_host(v, echo=False) if v is not None else v

    @model_validator(mode="after")
    def _object_keys(self) -> _FolderSource:
        if not isinstance(self.path, str):
            for key in ("endpoint_url", "region", "access_key_env", "secret_key_env"):
                if getattr(self, key) is not None:
                    raise ValueError(f"key '{key}' is only for a path on object storage (s3://...)")
        if (self.access_key_env is None) != (self.secret_key_env is None):
            raise ValueError("give both key 'access_key_env' and key 'secret_key_env', or neither")
        return self


class DroneFilesSource(_FolderSource):
    kind: Literal["drone_files"]


class LapiFilesSource(_FolderSource):
    kind: Literal["lapi_files"]


KINDS: dict[str, type[_SourceBase]] = {
    "vms_sql": VmsSqlSource, "bodycam_api": BodycamApiSource,
    "drone_files": DroneFilesSource, "lapi_files": LapiFilesSource,
}
Source = Annotated[
    Union[VmsSqlSource, BodycamApiSource, DroneFilesSource, LapiFilesSource],
    Field(discriminator="kind"),
]


# --- alerts ---------------------------------------------------------------------------------

class SmtpSettings(_Strict):
    host: OptStr = None
    port: int = Field(25, ge=1, le=65535)
    sender: str
    starttls: bool = False
    user_env: EnvName = None
    password_env: EnvName = None
    conn_id: OptStr = None  # an Airflow SMTP connection (host, port, login, password) instead
    timeout_s: float = Field(30, gt=0)

    @model_validator(mode="after")
    def _server(self) -> SmtpSettings:
        if (self.host is None) == (self.conn_id is None):
            raise ValueError("give exactly one of key 'host' or key 'conn_id'")
        if self.conn_id is not None and (self.user_env or self.password_env):
            raise ValueError("with key 'conn_id' the login and password come from the connection: "
                             "remove 'user_env' and 'password_env'")
        if (self.user_env is None) != (self.password_env is None):
            raise ValueError("give both key 'user_env' and key 'password_env', or neither")
        return self


class WebhookSettings(_Strict):
    url: str
    secret_env: EnvName = None
    conn_id: OptStr = None  # an Airflow connection whose password is the secret
    timeout_s: float = Field(10, gt=0)

    @field_validator("url")
    @classmethod
    def _http(cls, v: str) -> str:
        return _port_and_host(v, echo=False)  # not echoed: a webhook URL may carry a token

    @model_validator(mode="after")
    def _one_secret(self) -> WebhookSettings:
        if (self.secret_env is None) == (self.conn_id is None):
            raise ValueError("give exactly one of key 'secret_env' or key 'conn_id' (the signing secret)")
        return self


class Recipients(_Strict):
    email: list[str] = []
    webhook: bool = False

    @field_validator("email", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v  # `email: a@b` is a natural shorthand

    @field_validator("email")
    @classmethod
    def _addresses(cls, v: list[str]) -> list[str]:
        for a in v:
            if "@" not in a.strip("@"):
                raise ValueError(f"{a!r} is not an e-mail address")
        return v


class ControlBody(Recipients):
    copy_immediate: bool = False  # also receive the holders' immediate alerts
    digest: bool = True  # the daily digest of every new finding


class AlertsSettings(_Strict):
    since: date | None = None  # older data is reported, not alerted
    escalate_after_days: int = Field(7, ge=0)
    quarantine_rate: float = Field(0.05, ge=0, le=1)  # a batch above it is a pipeline alert
    lang: str = "fr"
    view_url: OptStr = None  # the Oversight view's base URL (…/vigie), for links to findings
    max_attempts: int = Field(3, ge=1, le=20)  # per alert and run; then it waits for the next run
    backoff_s: float = Field(2, ge=0, le=300)  # first wait between attempts, doubled each time
    smtp: SmtpSettings | None = None
    webhook: WebhookSettings | None = None
    control_body: ControlBody | None = None
    operators: Recipients | None = None  # pipeline alerts and failed Airflow tasks; else the control body
    holders: dict[str, Recipients] = {}

    @field_validator("lang")
    @classmethod
    def _lang(cls, v: str) -> str:
        if v not in ("fr", "en"):
            raise ValueError(f"{v!r} is not a supported language (fr, en)")
        return v

    @field_validator("view_url")
    @classmethod
    def _view(cls, v: str | None) -> str | None:
        if v is not None:
            _port_and_host(v)
        return v.rstrip("/") if v else v

    @model_validator(mode="after")
    def _channels_exist(self) -> AlertsSettings:
        # A recipient with no channel to reach it would be an alert silently lost.
        everyone = [r for r in (self.control_body, self.operators) if r]
        everyone += self.holders.values()
        if self.smtp is None and any(r.email for r in everyone):
            raise ValueError("e-mail recipients are listed but there is no 'smtp' block")
        if self.webhook is None and any(r.webhook for r in everyone):
            raise ValueError("webhook: true is set but there is no 'webhook' block")
        return self


# --- integrity ------------------------------------------------------------------------------

class IntegritySettings(_Strict):
    """Tamper evidence (vigie/integrity.py). The checkpoint log must live outside the DuckDB
    files, ideally on another machine or an append-only mount; by default it sits beside the
    warehouse as ``checkpoints.jsonl``."""

    checkpoints: Annotated[Path | None, BeforeValidator(_blank_to_none)] = None
    signing_key_env: EnvName = None  # the variable holding the Ed25519 private key
    public_key: Annotated[Path | None, BeforeValidator(_blank_to_none)] = None  # PEM, to verify without the key
    keep_landed_days: int | None = Field(None, ge=1)  # purge landed files older than this


# --- settings -------------------------------------------------------------------------------

# `register` is the spec's key name; it shadows ABCMeta.register on the class. Field()
# below keeps pydantic from taking that method as the default; the warning is then noise.
warnings.filterwarnings("ignore", message='Field name "register"', category=UserWarning)


class Settings(_Strict):
    config_path: Path
    base_dir: Path  # relative paths in the file resolve against this folder
    warehouse: ReqPath
    timezone: str = "Europe/Paris"
    grace_hours: float = Field(24, ge=0)
    register: ReqPath = Field()
    perimeter_tolerance_m: float = Field(50, ge=0)
    sources: list[Source]
    alerts: AlertsSettings | None = None
    integrity: IntegritySettings = Field(default_factory=IntegritySettings)

    _label: str = PrivateAttr("")  # the file as the user named it, for messages

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (LookupError, ValueError, OSError):
            raise ValueError(f"{v!r} is not a time zone (IANA name, e.g. Europe/Paris)")
        return v

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @model_validator(mode="after")
    def _resolve_and_check(self, info: ValidationInfo) -> Settings:
        # Filesystem checks live here, not in the source models, because they need base_dir.
        # ConfigError is not a ValueError, so pydantic lets it through untouched.
        self._label = (info.context or {}).get("file") or str(self.config_path)

        def fail(text: str, src: _SourceBase | None = None, key: str | None = None):
            label = f"source '{src.name}' ({src.kind})" if src else None
            raise ConfigError(_line(self._label, text, label, key))

        self.config_path = self.config_path.expanduser().resolve()
        self.base_dir = self.base_dir.expanduser().resolve()
        self.register = self._abs(self.register)
        if not self.register.is_file():
            fail(f"file {self.register} does not exist" if not self.register.exists()
                 else f"{self.register} is not a file", key="register")
        self.warehouse = self._abs(self.warehouse)
        if self.warehouse.is_dir():  # its parent is created by the loader, not here
            fail(f"{self.warehouse} is a folder, not a DuckDB file", key="warehouse")
        problem = _uncreatable(self.warehouse.parent) or _uncreatable(self.warehouse.parent / "landing")
        if problem:
            fail(problem, key="warehouse")
        self._resolve_integrity(fail)

        seen: set[str] = set()
        for s in self.sources:
            if s.name in seen:
                fail("another source already has this name", s, "name")
            seen.add(s.name)
            if isinstance(s, VmsSqlSource) and s.url is not None:
                url = dburl.parse(s.url)
                if url.backend == "sqlite":
                    db = url.database
                    if not db or db == ":memory:" or db.startswith("file:"):
                        fail("a sqlite URL must name a database file "
                             "(in-memory and file: URIs are refused)", s, "url")
                    file = self._abs(Path(db))
                    if not file.is_file():
                        # connecting would create an empty database and report nothing
                        fail(f"database file {file} does not exist", s, "url")
                    s.url = url.with_database(str(file)).render()
            elif isinstance(s, (DroneFilesSource, LapiFilesSource)) and not isinstance(s.path, str):
                s.path = self._abs(s.path)
                if not s.path.is_dir():
                    fail(f"folder {s.path} does not exist" if not s.path.exists()
                         else f"{s.path} is not a folder", s, "path")
        return self

    def _resolve_integrity(self, fail) -> None:  # noqa: ANN001
        integrity = self.integrity
        log = self._abs(integrity.checkpoints) if integrity.checkpoints else self.warehouse.parent / "checkpoints.jsonl"
        duckdb_files = {self.warehouse, self.warehouse.with_name(self.warehouse.name + ".writer")}
        if log in duckdb_files or log.name.endswith((".duckdb", ".wal", ".writer")):
            fail(f"{log} is a DuckDB file: the checkpoint log must live outside the warehouse",
                 key="integrity.checkpoints")
        if log.is_dir():
            fail(f"{log} is a folder, not a file", key="integrity.checkpoints")
        integrity.checkpoints = log
        if integrity.public_key is not None:
            integrity.public_key = self._abs(integrity.public_key)
            if not integrity.public_key.is_file():
                fail(f"file {integrity.public_key} does not exist", key="integrity.public_key")

    def _abs(self, p: Path) -> Path:
        return (self.base_dir / p.expanduser()).resolve()


    def source(self, name: str) -> Source:
        for s in self.sources:
            if s.name == name:
                return s
        raise ConfigError(self._unknown([name]))

    def select(self, names: list[str]) -> list[Source]:
        """The sources named (all when none is), in configuration order."""
        if not names:
            return list(self.sources)
        known = {s.name for s in self.sources}
        unknown = [n for n in dict.fromkeys(names) if n not in known]
        if unknown:
            raise ConfigError(self._unknown(unknown))
        return [s for s in self.sources if s.name in names]

    def _unknown(self, names: list[str]) -> str:
        known = ", ".join(s.name for s in self.sources) or "none"
        what = ", ".join(f"'{n}'" for n in names)
        return _line(self._label or str(self.config_path),
                     f"unknown source {what} (configured: {known})")


def _uncreatable(folder: Path) -> str | None:
    """Why ``folder`` can neither be used nor created by this user, or None."""
    probe = folder
    while not probe.exists():
        if probe.is_symlink():
            return f"{probe} is a broken link: the warehouse folder cannot be created"
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is not a folder: the warehouse folder {folder} cannot be created"
    if not os.access(probe, os.W_OK | os.X_OK):
        return (f"{probe} is not writable: the warehouse folder cannot be used" if probe == folder
                else f"{probe} is not writable: the warehouse folder {folder} cannot be created")
    return None


# --- loading --------------------------------------------------------------------------------

def find_config(explicit: str | Path | None, env: Mapping[str, str] = os.environ) -> Path:
    """--config, else VIGIE_CONFIG, else ./vigie.yml (interface.md)."""
    if explicit:
        path, how = Path(explicit), "--config"
    elif env.get("VIGIE_CONFIG"):
        path, how = Path(env["VIGIE_CONFIG"]), "VIGIE_CONFIG"
    else:
        path, how = Path("vigie.yml"), "the default ./vigie.yml"
    path = path.expanduser()
    if not path.is_file():
        problem = "is a folder" if path.is_dir() else "not found"
        raise ConfigError(f"{path}: configuration file {problem} (from {how})")
    return path


class _Loader(yaml.SafeLoader):
    """safe_load, but a key given twice is an error: YAML would silently keep the last."""


def _mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: list[Any] = []
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # `<<: *anchor` may legitimately be overridden
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} is given twice", key_node.start_mark)
        seen.append(key)
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load_settings(path: str | Path | None = None,
                  env: Mapping[str, str] = os.environ) -> Settings:
    config = find_config(path, env)
    file = str(config)
    try:
        raw = yaml.load(config.read_text(encoding="utf-8"), Loader=_Loader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise ConfigError(f"{file}: {where}not valid YAML: {getattr(e, 'problem', None) or e}")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{file}: cannot be read: {e}")
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: expected a mapping of keys (warehouse, register, sources...)")
    for reserved in ("config_path", "base_dir"):  # set by Vigie, not by the file
        if reserved in raw:
            raise ConfigError(_line(file, "unknown key", key=reserved))
    data = {**raw, "config_path": config, "base_dir": config.resolve().parent}
    try:
        return Settings.model_validate(data, context={"file": file})
    except ValidationError as e:
        raise ConfigError(_explain(e, file, raw)) from None


def _explain(exc: ValidationError, file: str, raw: dict) -> str:
    """The first pydantic error as one line naming the source and the key."""
    errors = exc.errors(include_url=False)
    err, loc = errors[0], errors[0]["loc"]
    source, keys = None, loc
    if len(loc) >= 2 and loc[0] == "sources" and isinstance(loc[1], int):
        entries = raw.get("sources")
        entry = entries[loc[1]] if isinstance(entries, list) and loc[1] < len(entries) else {}
        entry = entry if isinstance(entry, dict) else {}
        name, kind = entry.get("name"), entry.get("kind")
        source = f"source '{name}'" if isinstance(name, str) and name else f"source #{loc[1] + 1}"
        if isinstance(kind, str) and kind in KINDS:
            source += f" ({kind})"
        keys = loc[3:] if len(loc) > 2 and loc[2] in KINDS else loc[2:]  # drop the union tag
    key = ".".join(map(str, keys)) or None

    kinds = ", ".join(KINDS)
    kind_ = err["type"]
    if kind_ == "extra_forbidden":
        # Name every unknown key of that block at once: typos often come in pairs.
        extra = [str(e["loc"][-1]) for e in errors
                 if e["type"] == "extra_forbidden" and e["loc"][:-1] == loc[:-1]]
        if len(extra) > 1:
            key = None
            text = "unknown keys " + ", ".join(f"'{k}'" for k in extra)
        else:
            text = "unknown key"
    elif kind_ == "missing":
        text = "required key is missing"
    elif kind_ == "union_tag_invalid":
        key, text = "kind", f"unknown kind {err['ctx']['tag']!r} (known kinds: {kinds})"
    elif kind_ == "union_tag_not_found":
        key, text = "kind", f"required key is missing (known kinds: {kinds})"
    elif kind_ in ("model_type", "model_attributes_type", "dict_type"):
        text = "expected a mapping of keys"
    elif kind_ == "value_error":
        text = str(err["ctx"]["error"])
    else:
        msg = err["msg"]
        text = f"{msg[0].lower()}{msg[1:]} (got {err['input']!r})"
    return _line(file, text, source, key)


# --- instants on the command line -----------------------------------------------------------

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_instant(text: str, tz: str) -> datetime:
    """--as-of / --known-at: ISO-8601 with an offset or Z, or a date meaning its local midnight.

    Returned in UTC. A naive date-time is refused: guessing its zone would shift deadlines.
    """
    s = text.strip()
    if _DATE_ONLY.match(s):
        try:
            d = date.fromisoformat(s)
        except ValueError:
            raise ValueError(f"{text!r} is not a date") from None
        # fold=0: a non-existent midnight moves forward by the gap (domain.md)
        return datetime.combine(d, time(0), tzinfo=ZoneInfo(tz)).astimezone(timezone.utc)
    try:
        at = datetime.fromisoformat(s)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO-8601 instant "
                         "(e.g. 2026-03-01T10:00:00+01:00 or 2026-03-01)") from None
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{text!r} has no UTC offset: add Z or one like +01:00")
    return at.astimezone(timezone.utc)
