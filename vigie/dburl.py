"""Database URLs read the way SQLAlchemy reads them, without importing SQLAlchemy.

Importing SQLAlchemy costs half a second, and every `vigie` command reads vigie.yml, whose
VMS sources are SQLAlchemy URLs. A SQLite VMS is read by DuckDB, so SQLAlchemy is imported
only to connect to a database server. The pattern is SQLAlchemy 2's own
(``sqlalchemy.engine.url._parse_url``); tests/test_config.py compares the two.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from urllib.parse import quote, unquote

_PATTERN = re.compile(
    r"""
        (?P<name>[\w\+]+)://
        (?:
            (?P<username>[^:/]*)
            (?::(?P<password>[^@]*))?
        @)?
        (?:
            (?:
                \[(?P<ipv6host>[^/\?]+)\] |
                (?P<ipv4host>[^/:\?]+)
            )?
            (?::(?P<port>[^/\?]*))?
        )?
        (?:/(?P<database>[^\?]*))?
        (?:\?(?P<query>.*))?
    """,
    re.X,
)


class InvalidUrl(ValueError):
    """Not a database URL (dialect+driver://user@host/db). The text is not repeated: it may
    hold a password."""


@dataclass(frozen=True)
class DbUrl:
    drivername: str
    authority: str  # user:password@host:port as written, '' when absent
    port: str | None
    database: str | None  # unquoted, as SQLAlchemy gives it
    query: str | None

    @property
    def backend(self) -> str:
        """The database without its driver: ``postgresql`` for ``postgresql+psycopg``."""
        return self.drivername.split("+", 1)[0]

    def port_number(self) -> int | None:
        """The port, or None when absent; ValueError when it is not a number."""
        return int(self.port) if self.port else None

    def with_database(self, database: str) -> DbUrl:
        return replace(self, database=database)

    def render(self) -> str:
        text = f"{self.drivername}://{self.authority}"
        if self.database is not None:
            text += "/" + quote(self.database, safe="/ +:")
        return text + (f"?{self.query}" if self.query is not None else "")


def parse(text: str) -> DbUrl:
    m = _PATTERN.match(text)
    if m is None:
        raise InvalidUrl("not a valid SQLAlchemy URL (dialect+driver://user@host/db)")
    authority = text[len(m["name"]) + 3: m.start("database") - 1 if m["database"] is not None else
                     (m.start("query") - 1 if m["query"] is not None else len(text))]
    database = unquote(m["database"]) if m["database"] is not None else None
    return DbUrl(m["name"], authority, m["port"], database, m["query"])


# scheme://user:password@ anywhere in a text: the password is replaced by ***
_CREDENTIALS = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/:@]*):[^\s@]*@")


def without_credentials(text: str) -> str:
    """``text`` with the password of every URL in it hidden (``http://user:***@host``): a
    message, an error kept in the warehouse, a value quoted from vigie.yml."""
    return _CREDENTIALS.sub(r"\1:***@", text) if "@" in text else text
