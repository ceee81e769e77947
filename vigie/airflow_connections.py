"""Secrets from Airflow connections (`conn_id` in vigie.yml), imported only when used.

- a `vms_sql` source reads the connection's URI (or its extra `sqlalchemy_url`); Airflow's
  `postgres://` and `mysql://` schemes are mapped to the drivers Vigie ships;
- a `bodycam_api` source reads the token from the password (or extra `token`) and the base
  URL from extra `base_url`, else from scheme, host and port.
"""

from __future__ import annotations

_DRIVERS = {"postgres://": "postgresql+psycopg2://", "postgresql://": "postgresql+psycopg2://",
            "mysql://": "mysql+pymysql://", "mariadb://": "mysql+pymysql://"}


def _connection(conn_id: str):  # noqa: ANN202
    from airflow.sdk import BaseHook

    return BaseHook.get_connection(conn_id)


def connection_secret(conn_id: str) -> str:
    conn = _connection(conn_id)
    return conn.password or (conn.extra_dejson or {}).get("token", "")


def connection_url(conn_id: str) -> str:
    conn = _connection(conn_id)
    extra = conn.extra_dejson or {}
    if extra.get("base_url"):
        return extra["base_url"]
    scheme = "https" if conn.conn_type == "https" else "http"
    port = f":{conn.port}" if conn.port else ""
    return f"{scheme}://{conn.host}{port}"


def connection_uri(conn_id: str) -> str:
    conn = _connection(conn_id)
    extra = conn.extra_dejson or {}
    if extra.get("sqlalchemy_url"):
        return extra["sqlalchemy_url"]
    uri = conn.get_uri()
    for prefix, driver in _DRIVERS.items():
        if uri.startswith(prefix):
            return driver + uri[len(prefix):]
    return uri
