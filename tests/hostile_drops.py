"""A hostile drop corpus (issue #13): what the field drops, for both folder kinds.

`lapi(folder)` and `drones(folder)` write the corpus and return what a run must make of it:
the rows to load, the lines and files to quarantine (with a word of their reason), the files
that are duplicates of another, and the files outside the folder that must never be opened.
`put_on_s3` copies the regular files of a corpus to a bucket (links and pipes do not exist
there). A file that grows while it is read is in `Grower`, started by the test itself.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import socket
import stat
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

READS_HEADER = "read_id,read_at,camera_id,plate_hash,matched,deleted_at"
QUERIES_HEADER = "event_id,at,user,read_id,purpose,procedure_ref"
LONG_LINE_BYTES = 50 << 20  # over the 8 MB limit of reads and flights
OLD = time.time() - 3600  # the corpus was dropped an hour ago: settled


@dataclass
class Expected:
    loaded: set[str] = field(default_factory=set)  # ids of the rows to load
    bad_lines: dict[tuple[str, int], str] = field(default_factory=dict)  # (file, line) → reason word
    bad_files: dict[str, str] = field(default_factory=dict)  # file → reason word (kind 'file')
    duplicate_files: dict[str, str] = field(default_factory=dict)  # file → the first name of its bytes
    duplicate_rows: dict[str, str] = field(default_factory=dict)  # file:line → where it was first received
    outside: list[Path] = field(default_factory=list)  # files a link points to: never opened
    os_only: set[str] = field(default_factory=set)  # links, pipes, devices, sockets: no such thing on S3


def _read(i: str, matched: str = "0", camera: str = "LAPI-A7-01") -> str:
    return f"{i},2026-01-01T10:00:00+01:00,{camera},0123456789abcdef,{matched},"


def _flight(i: str) -> str:
    return json.dumps({
        "flight_id": i, "revision": 1, "drone_id": "F-HDRQ", "unit": "DDSP 69", "pilot": "PN-230733",
        "authorisation_ref": None, "purpose": "DR6", "takeoff_at": "2026-01-14T18:19:30+01:00",
        "landing_at": "2026-01-14T18:44:30+01:00", "audio_recorded": False, "facial_recognition": False,
        "recordings": [], "consultations": []})


def _binary() -> bytes:
    rnd = random.Random(13)
    return b"\x89PNG\r\n\x1a\n" + bytes(rnd.randrange(256) for _ in range(4096))


def _write(path: Path, body: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)


def _common(folder: Path, sub: str, ext: str, header: str | None, good, exp: Expected, outside: Path,
            whole_file_duplicates: bool = True) -> None:
    """The cases both kinds share, in ``folder/sub`` with names ``*.ext``."""
    d = folder / sub if sub else folder
    pre = "reads_" if not sub else ""
    h = f"{header}\n" if header else ""
    hl = 1 if header else 0  # lines before the first row

    def name(stem: str) -> str:
        return f"{sub}/{pre}{stem}{ext}" if sub else f"{pre}{stem}{ext}"

    def rows(*ids: str) -> str:
        exp.loaded.update(ids)
        return "".join(good(i) + "\n" for i in ids)

    good_body = (h + rows("good-1", "good-2", "good-3")).encode()
    _write(folder / name("good"), good_body)
    _write(folder / name("zz-copy"), good_body)  # the same bytes under a second name
    if whole_file_duplicates:
        exp.duplicate_files[name("zz-copy")] = name("good")
    else:  # LAPI reads: a later file counts as a delivery (domain.md), its rows are duplicates
        exp.duplicate_rows.update({f"{name('zz-copy')}:{hl + i}": f"{name('good')}:{hl + i}" for i in (1, 2, 3)})
    _write(folder / name("*"), (h + rows("star-1")).encode())  # glob characters, literal
    _write(folder / name("[1]"), (h + rows("bracket-1")).encode())
    _write(folder / name("crlf"), (h.replace("\n", "\r\n") + good("crlf-1") + "\r\n" + good("crlf-2") + "\n"
                                   + good("crlf-3") + "\r\n").encode())
    exp.loaded.update({"crlf-1", "crlf-2", "crlf-3"})
    _write(folder / name("cr"), (h + rows("cr-1") + good("cr-bad") + "\r" + "tail\n" + rows("cr-2")).encode())
    exp.bad_lines[(name("cr"), hl + 2)] = "carriage return"
    _write(folder / name("cr-only"), (h + good("mac-1") + "\n" + good("mac-2") + "\n").replace("\n", "\r").encode())  # classic Mac
    exp.bad_lines[(name("cr-only"), 1)] = "carriage return"  # one line: counted, never lost
    _write(folder / name("nul"), (h + rows("nul-1")).encode() + good("nul-bad").encode() + b"\x00\n"
           + rows("nul-2").encode())
    exp.bad_lines[(name("nul"), hl + 2)] = "NUL"
    _write(folder / name("latin1"), (h + rows("latin-1")).encode() + good("latin-bad").replace("-bad", "-\xe9").encode("latin-1")
           + b"\n" + rows("latin-2").encode())
    exp.bad_lines[(name("latin1"), hl + 2)] = "UTF-8"
    # A name that is not UTF-8 (Latin-1 'café', from an old share): its rows load under the
    # name with the bad byte spelt \xe9, and a bad line in it is quarantined at that name.
    _write(folder / name(os.fsdecode(b"caf\xe9")), (h + rows("cafe-1")).encode() + good("cafe-bad").encode() + b"\x00\n"
           + rows("cafe-2").encode())
    exp.bad_lines[(name("caf\\xe9"), hl + 2)] = "NUL"
    with open(folder / name("long"), "wb") as f:  # a 50 MB line: counted once, the next line is a row
        f.write((h + rows("long-1")).encode())
        f.write(b"x" * LONG_LINE_BYTES + b"\n")
        f.write(rows("long-2", "long-3").encode())
    exp.bad_lines[(name("long"), hl + 2)] = "too long"
    _write(folder / name("truncated"), (h + rows("trunc-1") + good("trunc-bad")[:-9]).encode())  # no newline either
    exp.bad_lines[(name("truncated"), hl + 2)] = ""
    _write(folder / name("utf16"), (h + good("utf16-1") + "\n").encode("utf-16"))
    exp.bad_files[name("utf16")] = "UTF-16"
    _write(folder / name("empty"), b"")  # nothing received, nothing to refuse
    _write(folder / name("empty-too"), b"")  # and not a copy of the other
    _write(folder / name("binary"), _binary())
    exp.bad_files[name("binary")] = "binary"
    _write(folder / name("gzipped"), gzip.compress((h + good("gz-1") + "\n").encode(), mtime=0))
    exp.bad_files[name("gzipped")] = "gzip"
    # Not regular files inside the folder: refused without being opened.
    (d / f"{pre}environ{ext}").symlink_to("/proc/self/environ")
    (d / f"{pre}outside{ext}").symlink_to(outside)
    os.mkfifo(d / f"{pre}pipe{ext}")
    specials = [("environ", "symbolic link"), ("outside", "symbolic link"), ("pipe", "named pipe")]
    try:  # /dev/zero's numbers: read, it would never end
        os.mknod(d / f"{pre}zero{ext}", 0o644 | stat.S_IFCHR, os.makedev(1, 5))
        specials.append(("zero", "device"))
    except PermissionError:  # not root: no device then
        pass
    here = os.getcwd()
    os.chdir(d)  # a socket's path is limited to 108 bytes: bound by its relative name
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(f"{pre}socket{ext}")
    finally:
        os.chdir(here)
    specials.append(("socket", "socket"))
    for stem, word in specials:
        exp.bad_files[name(stem)] = word
        exp.os_only.add(name(stem))
    exp.outside.append(outside)
    for p in [d, *d.rglob("*")]:
        if not p.is_symlink() and p.is_file():
            os.utime(p, (OLD, OLD))


def lapi(folder: Path, outside: Path) -> Expected:
    """A LAPI drop folder: every case on reads, and a good queries file."""
    exp = Expected()
    folder.mkdir(parents=True, exist_ok=True)
    _write(outside, (READS_HEADER + "\n" + _read("outside-1") + "\n").encode())  # would load if opened
    _common(folder, "", ".csv", READS_HEADER, _read, exp, outside, whole_file_duplicates=False)
    _write(folder / "queries_good.csv",
           f"{QUERIES_HEADER}\nq-1,2026-01-13T16:59:09+01:00,OPJ-1,good-1,LP_ORDER,PV-1\n".encode())
    os.utime(folder / "queries_good.csv", (OLD, OLD))
    exp.loaded.add("q-1")
    return exp


def drones(folder: Path, outside: Path) -> Expected:
    """A drone drop folder: every case on flights, a good track and one with a line too long."""
    exp = Expected()
    _write(outside, (_flight("outside-1") + "\n").encode())
    _common(folder, "flights", ".jsonl", None, _flight, exp, outside)
    tracks = folder / "tracks"
    _write(tracks / "good-1.csv", b"t,lat,lon,alt_m\n2026-01-14T18:19:30+01:00,45.7,4.8,91\n"
                                  b"2026-01-14T18:29:30+01:00,45.8,4.8,116\n")
    _write(tracks / "good-2.csv", b"t,lat,lon,alt_m\n2026-01-14T18:19:30+01:00,45.7,4.8,91\n"
           + b"9" * (2 << 20) + b"\n2026-01-14T18:39:30+01:00,45.9,4.8,120\n")  # 2 MB over a 1 MB limit
    exp.bad_lines[("tracks/good-2.csv", 3)] = "too long"
    for p in tracks.iterdir():
        os.utime(p, (OLD, OLD))
    return exp


class Grower:
    """Appends a line to ``path`` every few milliseconds until stopped: a file being written."""

    def __init__(self, path: Path, first: str, line: str) -> None:
        self.path, self.line = path, line
        path.write_text(first)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            with open(self.path, "a") as f:
                f.write(self.line)
            time.sleep(0.02)

    def __enter__(self) -> Grower:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def put_on_s3(fs, folder: Path, prefix: str) -> None:  # noqa: ANN001 - an s3fs filesystem
    """Upload the regular files of ``folder`` under ``prefix`` (links and pipes have no S3 form)."""
    for p in sorted(folder.rglob("*")):
        if p.is_symlink() or not p.is_file():
            continue
        # An S3 key is UTF-8: a name that is not is uploaded as a share synced there spells it.
        key = os.fsencode(p.relative_to(folder).as_posix()).decode("utf-8", "backslashreplace")
        fs.pipe_file(f"{prefix}/{key}", p.read_bytes())
