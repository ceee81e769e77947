"""Secrets from Airflow connections (``conn_id`` in vigie.yml), imported only when used."""

from __future__ import annotations


def _connection(conn_id: str):  # noqa: ANN202
    from airflow.sdk import BaseHook

    return BaseHook.get_connection(conn_id)


def connection_secret(conn_id: str) -> str:
    conn = _connection(conn_id)
    return conn.password or (conn.extra_dejson or {}).get("token", "")


def connection_url(conn_id: str) -> str:
    conn = _connection(conn_id)
    scheme = conn.schema or conn.conn_type or "http"
    port = f":{conn.port}" if conn.port else ""
    return f"{scheme}://{conn.host}{port}"


def connection_uri(conn_id: str) -> str:
    return _connection(conn_id).get_uri()
