"""What every source kind provides: a connector that lands raw files, and its streams.

A connector knows one source kind. ``pull`` writes what is new since ``cursor`` into the
landing folder and returns those files plus the cursor that comes after them. It runs no SQL
on the warehouse and applies no rule. A *stream* says how one kind of landed file becomes
rows: its staging SQL (lines → text columns), its contract suite, its canonical table and
how duplicates and versions are told apart.
"""

from __future__ import annotations

import glob
import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

from vigie.staging import MAX_LINE_BYTES


class SourceError(RuntimeError):
    """The source could not be pulled (unreachable, refused, broken answer)."""


@dataclass(frozen=True)
class Landed:
    stream: str  # which stream of the source reads this file
    name: str  # as the source knows it: a path in its folder, or a page/table file we wrote
    path: Path  # the landed copy
    sha256: str
    bytes: int


@dataclass(frozen=True)
class Unreadable:
    """A file that could not be read at all: quarantined whole, kind 'file'."""

    name: str
    reason: str


@dataclass
class Pull:
    files: list[Landed] = field(default_factory=list)
    unreadable: list[Unreadable] = field(default_factory=list)
    cursor: dict = field(default_factory=dict)
    shapes: dict = field(default_factory=dict)  # stream → its shape at the source, where it declares one (vigie/drift.py)


@dataclass(frozen=True)
class Stream:
    name: str
    row_kind: str  # the quarantine `kind` of its rows
    suite: str  # expectations/<suite>.json
    table: str  # canonical table
    staging_sql: str  # SELECT over `lines` → ord, location, ref, seq, raw, parse_error, fields
    typed_sql: str  # select list over a checked staging row → the canonical columns
    key: tuple[str, ...]  # identity of a row (besides `source`)
    policy: Literal["immutable", "latest"]
    # immutable: first delivery wins; same key, other content is a conflicting duplicate.
    # latest: a new version when the content differs from the current one (rows that change in place).
    scratch: tuple[tuple[str, str], ...] = ()  # (temp table, SELECT) made in order before staging_sql
    max_line_bytes: int = MAX_LINE_BYTES  # a longer line is quarantined as too long to read


class Connector:
    kind: ClassVar[str]
    streams: ClassVar[tuple[Stream, ...]]

    def __init__(self, source, settings) -> None:  # noqa: ANN001 - pydantic models from config
        self.source = source
        self.settings = settings

    def pull(self, cursor: dict | None, landing: Path) -> Pull:
        raise NotImplementedError


def land_copy(src: Path, dest: Path, chunk: int = 1 << 20) -> tuple[str, int]:
    """Copy ``src`` to ``dest`` while hashing it; return (sha256, bytes)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    with open(src, "rb") as fin, open(dest, "wb") as fout:
        while block := fin.read(chunk):
            digest.update(block)
            size += len(block)
            fout.write(block)
    return digest.hexdigest(), size


def file_digest(path: Path, chunk: int = 1 << 20) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


class FolderConnector(Connector):
    """Sources that are a folder of files never edited in place: land each new file once.

    The cursor maps each file already landed to its size, mtime and hash, so a re-run only
    hashes files that are new or changed (a changed file is landed again, as a new delivery).
    """

    patterns: ClassVar[dict[str, str]]  # stream → glob under the folder

    def pull(self, cursor: dict | None, landing: Path) -> Pull:
        seen: dict = dict((cursor or {}).get("files", {}))
        folder = Path(self.source.path)
        if not folder.is_dir():
            raise SourceError(f"folder {folder} is not there")
        out = Pull()
        # Names as strings relative to the folder (glob's root_dir): tens of thousands of track
        # files are listed in a fraction of the time pathlib takes.
        candidates = sorted(
            (name, stream) for stream, pattern in self.patterns.items()
            for name in glob.glob(pattern, root_dir=folder, include_hidden=True)
        )
        for name, stream in candidates:
            path = folder / name
            try:
                st = os.stat(path)  # a dangling link fails here: reported as unreadable, not skipped
                if stat.S_ISDIR(st.st_mode):
                    continue
                known = seen.get(name)
                if known and known["size"] == st.st_size and known["mtime_ns"] == st.st_mtime_ns:
                    continue
                dest = landing / name
                sha, size = land_copy(path, dest)
            except OSError as exc:
                out.unreadable.append(Unreadable(name, f"cannot read the file: {exc.strerror or exc}"))
                continue
            if known and known.get("sha256") == sha:
                dest.unlink()  # touched, not changed
                seen[name] = {**known, "mtime_ns": st.st_mtime_ns}
                continue
            seen[name] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha}
            out.files.append(Landed(stream, name, dest, sha, size))
        out.cursor = {"files": seen}
        return out

