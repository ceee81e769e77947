"""A local stand-in for the evidence-management platform's API (sources.md, `bodycam_api`).

    GET /v1/audit-events?after={cursor}&limit={n}   Authorization: Bearer {token}
    -> {"events": [...], "next": "<opaque cursor>" | null}

It serves a file of events: a JSON array (like shared/samples/bodycam_events.json) or JSON
Lines (what vigie.simulate.estate writes), in the file's order, which is the arrival order.
A JSON Lines file is never loaded whole: the server keeps the byte offsets of its lines and
reads a page with one positioned read, returning each event's text as it is in the file.
When a request reaches the end of what is indexed, the file is scanned again for appended
lines, since an estate's file grows between phases.

The cursor encodes a position in that order. `next` is the cursor after the page's last
event when more events exist now, and null when the page reaches the end. Fault injection
for tests: the first `fail_429` requests get 429 with `Retry-After: retry_after_s` (none if None), the
next `fail_5xx` get 503. Misbehaviour, for the connector's bounds (issue #13): `loop_cursor`
sends the cursors A → B → A'… so a pull that trusts them never ends; `trickle_s` sends each
byte of a page's body after that delay (with `trickle_headers`, each byte of the status line
and headers too, before any body); `random_429`, `random_503` and `random_drop` (a
connection closed halfway through a body) hit that share of requests, drawn from `seed`.

    python -m vigie.simulate.bodycam_server EVENTS_FILE [--port 8765] [--token T]
"""
from __future__ import annotations

import argparse
import array
import base64
import json
import os
import random
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

MAX_LIMIT = 1000
PATH = "/v1/audit-events"


class _Events:
    """The served events, in file order, addressable by position."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.lock = threading.Lock()
        with open(self.path, "rb") as f:
            head = f.read(4096).lstrip()
        self.texts: list[bytes] | None = None
        if head.startswith(b"["):  # a JSON array is small: keep its events' texts
            events = json.loads(self.path.read_text(encoding="utf-8"))
            self.texts = [json.dumps(e).encode() for e in events]
        else:
            self.starts, self.ends = array.array("q"), array.array("q")
            self.scanned = 0  # bytes of the file indexed so far (whole lines only)
            self.fd = os.open(self.path, os.O_RDONLY)
            self._scan()

    def close(self) -> None:
        if self.texts is None:
            os.close(self.fd)

    def _scan(self) -> None:
        """Index the complete lines appended since the last scan."""
        size = os.fstat(self.fd).st_size
        pos = self.scanned
        while pos < size:
            block = os.pread(self.fd, min(1 << 20, size - pos), pos)
            end = block.rfind(b"\n")
            if end < 0:
                if len(block) < size - pos:  # a line longer than the block: read it whole
                    block = os.pread(self.fd, size - pos, pos)
                    end = block.rfind(b"\n")
                if end < 0:
                    break  # a line still being written: wait for its newline
            offset = pos
            for line in block[:end].split(b"\n"):
                n = len(line)
                if n and not line.isspace():
                    self.starts.append(offset)
                    self.ends.append(offset + (n - 1 if line.endswith(b"\r") else n))
                offset += n + 1
            pos += end + 1
        self.scanned = pos

    def page(self, pos: int, limit: int) -> tuple[list[bytes], int, bool]:
        """Events [pos, pos+limit), the position after them, and whether more exist now."""
        with self.lock:
            if self.texts is not None:
                texts = self.texts[pos:pos + limit]
                new = pos + len(texts)
                return texts, new, new < len(self.texts)
            if pos + limit >= len(self.starts):
                self._scan()
            n = len(self.starts)
            stop = min(pos + limit, n)
            if pos >= stop:
                return [], max(pos, 0), False
            base = self.starts[pos]
            blob = os.pread(self.fd, self.ends[stop - 1] - base, base)
            texts = [blob[self.starts[i] - base:self.ends[i] - base] for i in range(pos, stop)]
            return texts, stop, stop < n


def encode_cursor(pos: int) -> str:
    return base64.urlsafe_b64encode(f"pos:{pos}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """Position encoded by a cursor; ValueError if it is not one of ours."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except Exception as exc:  # binascii.Error, UnicodeDecodeError
        raise ValueError(cursor) from exc
    if not text.startswith("pos:") or not text[4:].isdigit():
        raise ValueError(cursor)
    return int(text[4:])


class BodycamServer:
    """A real HTTP server on loopback, in a daemon thread: start(), url, stop()."""

    def __init__(self, events_path: Path, token: str = "test-token", host: str = "127.0.0.1",
                 port: int = 0, fail_429: int = 0, retry_after_s: float | None = 0, fail_5xx: int = 0,
                 loop_cursor: bool = False, trickle_s: float = 0.0, random_429: float = 0.0,
                 random_503: float = 0.0, random_drop: float = 0.0, seed: int | None = None,
                 trickle_headers: bool = False, tls: ssl.SSLContext | None = None):
        self.events = _Events(events_path)
        self.token, self.host, self.port = token, host, port
        self.fail_429, self.retry_after_s, self.fail_5xx = fail_429, retry_after_s, fail_5xx
        self.loop_cursor, self.trickle_s, self.trickle_headers = loop_cursor, trickle_s, trickle_headers
        self.tls = tls  # a server context: the platform served over HTTPS
        self.random_429, self.random_503, self.random_drop = random_429, random_503, random_drop
        self._rng = random.Random(seed)
        self.requests: list[tuple[str, int]] = []  # (path with query, status), for tests
        self._count = 0
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def start(self) -> "BodycamServer":
        self._httpd = ThreadingHTTPServer((self.host, self.port), _handler(self))
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        if self.tls is not None:
            self._httpd.socket = self.tls.wrap_socket(self._httpd.socket, server_side=True)
        self.url = f"{'https' if self.tls is not None else 'http'}://{self.host}:{self.port}"
        # a short poll interval: stop() returns quickly
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        name="bodycam-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.events.close()

    def __enter__(self) -> "BodycamServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _next_fault(self) -> int | None:
        """The status the next request is failed with, if any: deterministic by count."""
        with self._lock:
            self._count += 1
            if self._count <= self.fail_429:
                return 429
            if self._count <= self.fail_429 + self.fail_5xx:
                return 503
            draw = self._rng.random()
            if draw < self.random_429:
                return 429
            if draw < self.random_429 + self.random_503:
                return 503
        return None

    def drop_this_body(self) -> bool:
        with self._lock:
            return self.random_drop > 0 and self._rng.random() < self.random_drop

    def _log(self, path: str, status: int) -> None:
        with self._lock:
            self.requests.append((path, status))

    def answer(self, path: str, authorization: str | None) -> tuple[int, dict, bytes]:
        """Status, extra headers and JSON body for a GET of `path`."""
        url = urlsplit(path)
        if url.path.rstrip("/") != PATH:
            return _error(404, f"no such resource: {url.path}")
        fault = self._next_fault()
        if fault == 429:
            return _error(429, "too many requests",
                          {} if self.retry_after_s is None else {"Retry-After": f"{self.retry_after_s:g}"})
        if fault == 503:
            return _error(503, "service unavailable, try again later")
        if authorization != f"Bearer {self.token}":
            return _error(401, "invalid or missing bearer token", {"WWW-Authenticate": "Bearer"})
        query = parse_qs(url.query, keep_blank_values=True)
        try:
            limit = int(query.get("limit", [str(MAX_LIMIT)])[-1])
        except ValueError:
            return _error(400, "limit must be an integer")
        if limit < 1:
            return _error(400, "limit must be at least 1")
        limit = min(limit, MAX_LIMIT)
        after = query.get("after", [""])[-1]
        try:
            pos = decode_cursor(after) if after else 0
        except ValueError:
            return _error(400, f"invalid cursor: {after!r}")
        texts, new, more = self.events.page(pos, limit)
        if self.loop_cursor and more:  # back to the page before, then forward again: A → B → A'
            new = pos - limit if pos >= limit else new
        nxt = json.dumps(encode_cursor(new)) if more else "null"
        body = b'{"events": [' + b", ".join(texts) + b'], "next": ' + nxt.encode() + b"}"
        return 200, {}, body


def _error(status: int, message: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    return status, headers or {}, json.dumps({"error": message, "status": status}).encode()


def _handler(server: BodycamServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            try:
                status, headers, body = server.answer(self.path, self.headers.get("Authorization"))
            except Exception as exc:  # a bug here must reach the client as a 500, not hang it
                status, headers, body = _error(500, f"internal error: {exc}")
            server._log(self.path, status)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            if server.trickle_headers and server.trickle_s:
                # http.server buffers the status line and headers: sent here a byte at a time
                head = b"".join(self._headers_buffer) + b"\r\n"
                self._headers_buffer = []
                if not self._trickle(head):
                    return
            else:
                self.end_headers()
            if status == 200 and server.drop_this_body():
                self.wfile.write(body[:len(body) // 2])  # and hang up: the client sees a short body
                self.close_connection = True
            elif status == 200 and server.trickle_s:
                self._trickle(body)
            else:
                self.wfile.write(body)

        def _trickle(self, data: bytes) -> bool:
            """Send ``data`` a byte every ``trickle_s``; False when the client gave up, as it should."""
            try:
                for i in range(len(data)):
                    self.wfile.write(data[i:i + 1])
                    self.wfile.flush()
                    time.sleep(server.trickle_s)
            except OSError:
                self.close_connection = True
                return False
            return True

        def log_message(self, format, *args) -> None:  # quiet: tests and CLIs print enough
            pass

    return Handler


def serve_forever(events_path: Path, host: str = "127.0.0.1", port: int = 8765,
                  token: str | None = None) -> None:
    """Serve events_path until interrupted (blocking)."""
    token = token or os.environ.get("BODYCAM_TOKEN", "test-token")
    server = BodycamServer(events_path, token=token, host=host, port=port)
    httpd = ThreadingHTTPServer((host, port), _handler(server))
    httpd.daemon_threads = True
    print(f"serving {events_path} on http://{host}:{httpd.server_address[1]}", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
        server.events.close()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Serve body-camera events like the platform's API.")
    parser.add_argument("events_path", type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--token", default=None, help="default: $BODYCAM_TOKEN, else test-token")
    args = parser.parse_args(argv)
    serve_forever(args.events_path, args.host, args.port, args.token)


if __name__ == "__main__":
    main()
