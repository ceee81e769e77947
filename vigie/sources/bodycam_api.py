"""bodycam_api: the evidence-management platform's audit events over HTTP (classes BWC, VEH).

Each answer page is landed as one line of JSON, as received, so the raw content is kept and
DuckDB unnests the events. The cursor is the platform's own: when ``next`` is null we stay
on the cursor of the last page, so the next pull sees that page again and its events are
recognised as duplicates. Served again with the very bytes landed last (nothing new since),
it is not landed again: the cursor keeps the page's SHA-256 beside its own.

A server that misbehaves is bounded: a deadline per page and per pull (a body that trickles
ends in a timeout), a cap on a page's bytes, a cursor seen twice in one pull is a loop (an
error, not a hang), and Retry-After is honoured within the pull's deadline.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import ssl
import time
import urllib.parse
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpcore
import httpx

from vigie.sources.base import Connector, Landed, Pull, SourceError, Stream

# Staging column → JSON path; read with one json_extract_string per event (one parse, not one per field).
_EVENT_FIELDS = {
    "event_id": "id", "event_at": "at", "device_serial": "$.device.serial", "device_kind": "$.device.kind",
    "actor_badge": "$.actor.badge", "actor_unit": "$.actor.unit", "action": "action", "evidence_id": "evidence_id",
    "purpose": "purpose", "justification": "justification", "procedure_ref": "procedure_ref", "recipient": "recipient",
    "seq_text": "seq",
}
_PATHS = ", ".join(f"'{p}'" for p in _EVENT_FIELDS.values())
_COLS = ", ".join(f"nullif(v[{i + 1}], '') AS {c}" for i, c in enumerate(_EVENT_FIELDS) if c != "seq_text")
_SEQ = f"v[{len(_EVENT_FIELDS)}]"
# The JSON type of each field the contract wants a string or an integer (jt_<field>), from one
# json_type call: eleven separate checks parsed each event eleven times.
_TYPED = {"seq": "$.seq", "id": "$.id", "at": "$.at", "device_serial": "$.device.serial",
          "actor_badge": "$.actor.badge", "actor_unit": "$.actor.unit", "evidence_id": "$.evidence_id",
          "purpose": "$.purpose", "justification": "$.justification", "procedure_ref": "$.procedure_ref",
          "recipient": "$.recipient",
          # not checked by the suite, but by the drift check: with these, every field it types
          # is typed here, in the same parse, and it parses each event once instead of twice
          "device": "$.device", "device_kind": "$.device.kind", "actor": "$.actor", "action": "$.action"}
_TYPE_PATHS = ", ".join(f"'{p}'" for p in _TYPED.values())
_TYPE_COLS = ", ".join(f"t[{i + 1}] AS jt_{c}" for i, c in enumerate(_TYPED))

EVENTS = Stream(
    name="events", row_kind="event", suite="bodycam_api.events", table="bodycam_events",
    # Pages are checked, then unnested into a table of their own before any field is read:
    # DuckDB unnests and extracts four times faster in two steps than in one (5 M events).
    # Scratch statements read `slice_lines`, a few MB of pages at a time, one landed part
    # after the other (vigie/staging.py); a page's text is kept only when it is quarantined.
    scratch=(
        # One parse of each page lists its events (the wildcard path; the list cast to JSON[]
        # wrote it out and parsed it again: 0.7 s at 5 M). Rebuilt for each slice (`_slice`).
        ("_slice_pages", """
            SELECT file, line, text, error,
                   CASE WHEN error IS NULL THEN try(json_extract(text, '$.events[*]')) END AS e
            FROM slice_lines WHERE text IS NOT NULL OR error IS NOT NULL"""),
        # A page that lists events holds a list of events; an empty list may also be no list
        # (an object, null, no field, not JSON), so only such pages are parsed again, to tell why.
        ("_pages", """
            SELECT file, line, page_error, CASE WHEN page_error IS NOT NULL THEN text END AS raw FROM (
                SELECT file, line, text, CASE
                    WHEN error IS NOT NULL THEN error
                    WHEN len(e) > 0 THEN NULL
                    WHEN try(json_type(text, '$.events')) = 'ARRAY' THEN NULL
                    WHEN NOT json_valid(text) THEN 'page is not valid JSON'
                    WHEN json_type(text, '$.events') IS DISTINCT FROM 'ARRAY' THEN 'page has no events list' END AS page_error
                FROM _slice_pages)"""),
        # Numbered from the list itself: json_array_length parsed each page once more. A null
        # event is NULL, as the cast made it (its quarantine row has no raw text).
        ("_events", """
            SELECT file, line, CASE WHEN j::VARCHAR <> 'null' THEN j END AS j, i FROM (
              SELECT file, line, unnest(e) AS j, unnest(range(1, len(e) + 1)) AS i FROM _slice_pages WHERE len(e) > 0)"""),
    ),
    staging_sql=f"""
        SELECT file, line * 100000 + i AS line,
               -- Written by DuckDB's JSON writer, an event is an object when it starts with a brace:
               -- no third parse of each event.
               CASE WHEN starts_with(j::VARCHAR, '{{') THEN NULL ELSE 'event is not a JSON object' END AS parse_error,
               j::VARCHAR AS raw, j,
               TRY_CAST({_SEQ} AS BIGINT) AS seq,
               -- seq:<n>; an event whose seq cannot be read is placed by its id, stable across re-deliveries
               coalesce('seq:' || TRY_CAST({_SEQ} AS BIGINT), 'seq:' || nullif({_SEQ}, ''),
                        'id:' || nullif(v[1], ''), file || ':' || line || '#' || i) AS location,
               nullif(v[1], '') AS ref,
               {_COLS}, {_TYPE_COLS}
        FROM (SELECT file, line, i, j, json_extract_string(j, [{_PATHS}]) AS v,
                     json_type(j, [{_TYPE_PATHS}]) AS t FROM _events)
        UNION ALL BY NAME  -- a page that could not be read, or holds no list of events, is kept, not lost
        SELECT p.file, p.line * 100000 AS line, p.page_error AS parse_error, p.raw,
               p.file || ':' || p.line AS location
        FROM _pages p WHERE p.page_error IS NOT NULL""",
    typed_sql="""event_id, seq, event_at::TIMESTAMPTZ AS event_at, device_serial, device_kind,
                 actor_badge, actor_unit, action, evidence_id, purpose, justification,
                 procedure_ref, recipient""",
    key=("event_id",),
    policy="immutable",
    type_columns=tuple((path[2:], f"jt_{col}") for col, path in _TYPED.items()),
)


# The answer ends with its cursor: reading it there spares parsing every page in Python
# (the events are parsed by DuckDB when staged, and a malformed page is quarantined there).
_TAIL = re.compile(rb'"next"\s*:\s*(null|"((?:[^"\\]|\\.)*)")\s*}\s*$')


def _next_cursor(url: str, body: bytes) -> str | None:
    match = _TAIL.search(body[-4096:])
    if match:
        return None if match.group(1) == b"null" else json.loads(match.group(1))
    try:
        page = json.loads(body)
    except ValueError as exc:
        raise SourceError(f"{url}: the answer is not JSON ({exc})") from exc
    if not isinstance(page, dict) or not isinstance(page.get("events"), list):
        raise SourceError(f"{url}: the answer has no 'events' list")
    return page.get("next")


class BodycamApi(Connector):
    kind = "bodycam_api"
    streams = (EVENTS,)

    def _token(self) -> str:
        src = self.source
        if src.conn_id:
            from vigie.airflow_connections import connection_secret

            return connection_secret(src.conn_id)
        token = os.environ.get(src.token_env or "")
        if not token:
            raise SourceError(f"environment variable {src.token_env} (token_env) is not set")
        return token

    def _base_url(self) -> str:
        if self.source.base_url:
            return self.source.base_url
        from vigie.airflow_connections import connection_url

        return connection_url(self.source.conn_id)

    def _get(self, client: httpx.Client, url: str, params: dict, pull_ends: float) -> tuple[bytes, str | None]:
        """One page (its body and its ``next``), waiting as Retry-After says on 429 and backing off
        on 5xx, a dropped connection or a page past its deadline, within bounds: ``max_retries``,
        ``max_backoff_s`` per backoff and the pull's deadline overall."""
        src = self.source
        for attempt in range(src.max_retries + 1):
            try:
                status, headers, body = self._fetch(client, url, params, pull_ends)
            except (httpx.TransportError, _PageTimeout) as exc:
                problem = str(exc) or type(exc).__name__
                if attempt == src.max_retries:
                    what = "unreachable" if isinstance(exc, httpx.TransportError) else "too slow"
                    raise SourceError(f"{url}: {what} after {attempt + 1} attempts ({problem})") from exc
                self._wait(url, min(2**attempt * 0.5, src.max_backoff_s), pull_ends, problem)
                continue
            if status == 200:
                return body, _next_cursor(url, body)
            if status == 401:
                raise SourceError(f"{url}: 401 Unauthorized, the token was refused (check {src.token_env or src.conn_id})")
            transient = status == 429 or status >= 500
            if not transient or attempt == src.max_retries:
                raise SourceError(f"{url}: HTTP {status} after {attempt + 1} attempts")
            wait = min(2**attempt * 0.5, src.max_backoff_s)
            if status == 429 and headers.get("Retry-After") is not None:
                # The server's own word, not capped by max_backoff_s: asking again sooner only
                # earns more 429s. A wait past the pull's deadline ends the pull (`_wait`).
                wait = max(_retry_after(headers.get("Retry-After"), wait), 0.0)
            self._wait(url, wait, pull_ends, f"HTTP {status}")
        raise AssertionError("unreachable")

    def _wait(self, url: str, seconds: float, pull_ends: float, why: str) -> None:
        if time.monotonic() + seconds > pull_ends:
            raise SourceError(f"{url}: {why}, and waiting {seconds:g}s more would pass the pull deadline "
                              f"(pull_deadline_s={self.source.pull_deadline_s:g})")
        time.sleep(seconds)

    def _fetch(self, client: httpx.Client, url: str, params: dict, pull_ends: float) -> tuple[int, httpx.Headers, bytes]:
        """GET one page within its deadline and its size cap. A read waits at most ``timeout_s``
        (and no longer than the deadline left); the deadline is checked after each block, so a
        body that trickles a byte at a time ends here, not never."""
        src = self.source
        started = time.monotonic()
        page_ends = min(started + src.page_deadline_s, pull_ends)
        if started >= pull_ends:
            raise SourceError(f"{url}: the pull took longer than its deadline (pull_deadline_s={src.pull_deadline_s:g})")
        timeout = httpx.Timeout(max(0.05, min(src.timeout_s, page_ends - started)))
        self._deadline.at = page_ends  # every read of the socket, the status line and headers included
        try:
            return self._fetch_within(client, url, params, timeout, started, page_ends)
        except httpx.TimeoutException:
            if time.monotonic() < page_ends:
                raise
            raise _PageTimeout(f"page not received within {min(src.page_deadline_s, page_ends - started):g}s "
                               f"(page_deadline_s={src.page_deadline_s:g})") from None
        finally:
            self._deadline.at = None

    def _fetch_within(self, client: httpx.Client, url: str, params: dict, timeout: httpx.Timeout, started: float,
                      page_ends: float) -> tuple[int, httpx.Headers, bytes]:
        src = self.source
        with client.stream("GET", url, params=params, timeout=timeout) as resp:
            if resp.status_code != 200:
                return resp.status_code, resp.headers, b""  # the body of an error is not needed
            declared = resp.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > src.max_page_bytes:
                raise SourceError(f"{url}: a page of {int(declared)} bytes is over max_page_bytes={src.max_page_bytes}")
            blocks, size = [], 0
            for block in resp.iter_bytes():
                size += len(block)
                if size > src.max_page_bytes:
                    raise SourceError(f"{url}: a page over max_page_bytes={src.max_page_bytes} bytes")
                blocks.append(block)
                if time.monotonic() > page_ends:
                    raise _PageTimeout(f"page not received within {min(src.page_deadline_s, page_ends - started):g}s "
                                       f"({size} bytes so far; page_deadline_s={src.page_deadline_s:g})")
            return 200, resp.headers, b"".join(blocks)

    def pull(self, cursor: dict | None, landing: Path) -> Pull:
        after = (cursor or {}).get("after")
        # The page the last pull ended on (asked for with the same `after`, none at all while the
        # platform has held one page only), as it was landed: served again as it was, its events
        # are all loaded already (an hourly run landed it, up to a page of duplicates, each time).
        known_page = (cursor or {}).get("page_sha256")
        url = self._base_url().rstrip("/") + "/v1/audit-events"
        headers = {"Authorization": f"Bearer {self._token()}"}
        landing.mkdir(parents=True, exist_ok=True)
        pull_ends = time.monotonic() + self.source.pull_deadline_s
        seen = {after} if after else set()  # cursors of this pull: one seen again is a loop
        pages = 0
        parts = _Parts(landing)
        self._deadline = _Deadline()
        with httpx.Client(headers=headers, timeout=self.source.timeout_s, transport=_transport(self._deadline, url)) as client, \
                parts:
            while True:
                params = {"limit": self.source.page_size} | ({"after": after} if after else {})
                body, nxt = self._get(client, url, params, pull_ends)
                pages += 1
                # JSON never holds a raw newline inside a string, so this keeps the body exact.
                line = body.replace(b"\r", b" ").replace(b"\n", b" ") + b"\n"
                page_sha256 = hashlib.sha256(line).hexdigest()
                if pages == 1 and page_sha256 == known_page and not nxt:
                    break
                parts.write(line)
                if not nxt:
                    break
                if nxt in seen:
                    raise SourceError(f"{url}: cursor loop, page {pages} sent back cursor {_short(nxt)} "
                                      "already seen in this pull")
                seen.add(nxt)
                after = nxt
        return Pull(files=parts.landed, cursor={"after": after, "page_sha256": page_sha256})


# Pages are landed in parts of about this size: staging holds one part's pages in memory at
# a time, and DuckDB cannot spill strings of a page's size (330 KB): a first pull of 20 M
# events (1.7 GB of pages) in one file ran out of its 1 GB.
PART_BYTES = 128 << 20


class _Parts:
    """``pages.jsonl``, then ``pages.jsonl.0002``... (names sort in page order), each hashed."""

    def __init__(self, landing: Path) -> None:
        self.landing, self.landed, self._out = landing, [], None

    def _open(self) -> None:
        n = len(self.landed) + 1
        self._name = "pages.jsonl" if n == 1 else f"pages.jsonl.{n:04d}"
        self._out, self._digest, self._size = open(self.landing / self._name, "wb"), hashlib.sha256(), 0
        self.landed.append(None)

    def _close(self) -> None:
        self._out.close()
        self.landed[-1] = Landed("events", self._name, self.landing / self._name, self._digest.hexdigest(), self._size)
        self._out = None

    def write(self, line: bytes) -> None:
        if self._out is not None and self._size + len(line) > PART_BYTES:
            self._close()
        if self._out is None:
            self._open()
        self._digest.update(line)
        self._size += len(line)
        self._out.write(line)

    def __enter__(self) -> "_Parts":
        self._open()  # an empty pull still lands its (empty) first part
        return self

    def __exit__(self, *exc) -> None:  # noqa: ANN002
        if self._out is not None:
            self._close()


class _Deadline:
    """The instant (``time.monotonic``) by which the page in flight must be whole, or None."""

    at: float | None = None


class _DeadlineStream(httpcore.NetworkStream):
    """A socket whose every read waits no later than the page's deadline. httpx's timeouts
    are per read: a server sending its status line and headers a byte at a time, each within
    ``timeout_s``, was never cut (the body is also checked between blocks, in `_fetch`)."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: _Deadline) -> None:
        self._inner, self._deadline = inner, deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        at = self._deadline.at
        if at is not None:
            left = at - time.monotonic()
            if left <= 0:
                raise httpcore.ReadTimeout("page deadline passed")
            timeout = left if timeout is None else min(timeout, left)
        return self._inner.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context, server_hostname: str | None = None,  # noqa: ANN001
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, timeout), self._deadline)

    def get_extra_info(self, info: str):  # noqa: ANN201
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, deadline: _Deadline) -> None:
        self._inner, self._deadline = httpcore.SyncBackend(), deadline

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options=None) -> httpcore.NetworkStream:  # noqa: ANN001
        return _DeadlineStream(self._inner.connect_tcp(host, port, timeout, local_address, socket_options),
                               self._deadline)

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options=None) -> httpcore.NetworkStream:  # noqa: ANN001
        return _DeadlineStream(self._inner.connect_unix_socket(path, timeout, socket_options), self._deadline)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _transport(deadline: _Deadline, url: str) -> httpx.HTTPTransport:
    """httpx's own transport, on sockets that keep the page deadline (`_DeadlineStream`).
    httpx has no public way to pass a network backend: its pool is replaced by an equal one."""
    context = _ssl_context(url)
    transport = httpx.HTTPTransport(verify=context)  # given the context, it does not build its own
    transport._pool = httpcore.ConnectionPool(  # the arguments HTTPTransport passes by default
        ssl_context=context, max_connections=100, max_keepalive_connections=20,
        keepalive_expiry=5.0, network_backend=_DeadlineBackend(deadline))
    return transport


def _ssl_context(url: str) -> ssl.SSLContext:
    """httpx's verifying context (its CA bundle loaded) for an HTTPS platform. Loading the
    bundle takes 20-40 ms, in the pull that the first load waits for: a plain-HTTP platform
    (redirects are not followed) gets a bare context that no connection uses, and that would
    refuse every certificate if one did."""
    if urllib.parse.urlsplit(url).scheme.lower() == "https":
        return httpx.create_ssl_context()
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


class _PageTimeout(Exception):
    """A page that did not arrive whole within its deadline (transient: retried, bounded)."""


def _short(cursor: str) -> str:
    return repr(cursor if len(cursor) <= 40 else cursor[:37] + "...")


def _retry_after(value: str | None, default: float) -> float:
    """Retry-After in seconds or as an HTTP date (RFC 9110); ``default`` when absent or unreadable."""
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return (when - datetime.now(timezone.utc)).total_seconds()
